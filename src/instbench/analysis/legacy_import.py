"""`instbench import legacy`: the earlier Go collector's result files into the mirror.

What happens to each `*.json` found (under PATH/results when PATH is a checkout of the old
repository, else under PATH):
  1. read with a bound (MAX_FILE_BYTES; the collector's files are ~2 KB), strict JSON;
  2. checked by analysis/legacy.py (every variant of the collector's history; the type's
     architecture from the name parser, contradicting labels/images/flags recorded);
  3. across the batch and the legacy documents already in the mirror: figures identical
     for different instance types are placeholders (the collector wrote 41.9 GB/s triad
     for dozens of types): every such file is quarantined;
  4. the accepted ones are stored under
     raw/legacy-{kind}/{type}/{region}/{YYYY}/{MM}/{DD}/go-{sha256[:16]}-0.json
     as a wrapper holding the original verbatim, its source path and sha256. The key
     comes from the source bytes' sha256, so importing the same file again finds it
     ("already imported") and writes nothing.

A rejected file is copied to quarantine/legacy-import/{sha256[:16]}-{name} with a
`.reason` beside it (nothing under raw/ is written for it). With `dry_run` nothing at
all is written; the counts are the same.

Known limit: a placeholder set split across two separate imports is caught for the files
of the later import; the earlier file, already stored, is caught by the ingest's own
cross-document rule only when another stored document shares its figures.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instbench.analysis.legacy import (
    BENCHMARKS,
    LegacyResult,
    TypeFacts,
    instance_type_of,
    is_legacy_import,
    parse_go_collector,
    wrap,
)
from instbench.errors import InvalidInstanceType, InvalidResult, UserError
from instbench.instance_types import parse_instance_type
from instbench.results.validate import load_json
from instbench.storage.layout import raw_key
from instbench.storage.local import AlreadyExists, LocalStore

MAX_FILE_BYTES = 1 << 20
"""A Go-collector file is ~2 KB; anything above 1 MiB is not one (and is not read whole)."""
MAX_FILES = 100_000
"""More files than this under PATH is not the old repository: refuse before reading."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one source file."""

    path: str
    """Path relative to PATH (as recorded in the stored document)."""
    status: str
    """imported, already imported, or quarantined."""
    reason: str = ""
    key: str = ""
    flags: tuple[str, ...] = ()


@dataclass
class ImportReport:
    """Counts for the terminal table, and each file's outcome."""

    source: Path
    dry_run: bool
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def found(self) -> int:
        return len(self.outcomes)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    def quarantined_by_reason(self) -> list[tuple[str, int]]:
        """Reason class (the reason without its file-specific details) -> files."""
        counts = Counter(reason_class(o.reason) for o in self.outcomes if o.status == "quarantined")
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    def flagged(self) -> list[tuple[str, int]]:
        counts = Counter(
            f for o in self.outcomes if o.status != "quarantined" for f in set(o.flags)
        )
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def reason_class(reason: str) -> str:
    """A reason without its parenthesised details (the list of types), for counting."""
    cut = reason.find(" (")
    return reason[:cut] if cut > 0 else reason


@dataclass(frozen=True)
class _Parsed:
    rel: str
    raw: bytes
    sha256: str
    data: dict[str, Any]
    result: LegacyResult


def source_dir(path: Path) -> Path:
    """The directory holding the files: PATH/results in a checkout, else PATH itself."""
    if not path.exists():
        raise UserError(f"legacy path {path} does not exist: pass the old repository's checkout")
    if not path.is_dir():
        raise UserError(f"legacy path {path} is not a directory: pass the directory of results")
    results = path / "results"
    return results if results.is_dir() else path


def _commit(path: Path) -> str | None:
    """The checkout's HEAD commit, when PATH is a git checkout (provenance only)."""
    if not (path / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    head = out.stdout.strip()
    return head if len(head) == 40 else None


def _find(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(".json") and not name.startswith("."):
                found.append(Path(dirpath) / name)
                if len(found) > MAX_FILES:
                    raise UserError(
                        f"more than {MAX_FILES} JSON files under {root}: this is not the Go "
                        "collector's results directory; pass that directory"
                    )
    return found


def _read(path: Path) -> bytes:
    """The file's bytes, refusing (InvalidResult) a non-regular or oversized file."""
    try:
        st = path.lstat()
        if not path.is_file() or path.is_symlink():
            raise InvalidResult("not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            raise InvalidResult(
                f"file is {st.st_size} bytes, above the {MAX_FILE_BYTES}-byte bound for a "
                "Go-collector result"
            )
        with path.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InvalidResult(f"unreadable: {exc.strerror or exc}") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise InvalidResult(f"file grew above the {MAX_FILE_BYTES}-byte bound while read")
    return raw


def _stored_fingerprints(store: LocalStore) -> dict[str, set[str]]:
    """Fingerprint -> instance types, of the legacy documents already in the mirror."""
    seen: dict[str, set[str]] = {}
    for benchmark in BENCHMARKS.values():
        for key in store.keys(f"raw/{benchmark}"):
            try:
                if store.path(key).stat().st_size > 4 * MAX_FILE_BYTES:
                    continue
                data = load_json(store.read(key))
                if not is_legacy_import(data):
                    continue
                result = parse_go_collector(data.get("original"))
            except (OSError, InvalidResult):
                continue  # the ingest quarantines it with its reason
            seen.setdefault(result.fingerprint(), set()).add(result.instance_type)
    return seen


def _valid(name: str) -> bool:
    try:
        parse_instance_type(name)
    except InvalidInstanceType:
        return False
    return True


def _key(result: LegacyResult, sha256: str) -> str:
    return raw_key(
        result.benchmark,
        result.instance_type,
        result.region,
        result.timestamp,
        f"go-{sha256[:16]}",
        0,
    )


Describe = Callable[[list[str]], TypeFacts]
"""Instance type names -> (architecture, manufacturer) of those AWS knows (the CLI asks
DescribeInstanceTypes); types it leaves out fall back to the name parser."""


def import_legacy(
    path: Path,
    output_dir: Path,
    *,
    dry_run: bool = False,
    describe: Describe | None = None,
) -> ImportReport:
    """Import every Go-collector result under `path` into the mirror at `output_dir`."""
    src = source_dir(path)
    commit = _commit(path)
    store = LocalStore(output_dir)
    if not dry_run:
        store.check_writable()
    report = ImportReport(source=src, dry_run=dry_run)
    rejected: list[tuple[str, bytes, str]] = []
    loaded: list[tuple[str, bytes, Any]] = []
    for file in _find(src):
        rel = file.relative_to(path if src != path else src).as_posix()
        raw = b""
        try:
            raw = _read(file)
            data = load_json(raw)
        except InvalidResult as exc:
            rejected.append((rel, raw, exc.reason))
            continue
        except RecursionError:
            rejected.append((rel, raw, "JSON nested too deeply for a Go-collector result"))
            continue
        loaded.append((rel, raw, data))
    facts: TypeFacts = {}
    if describe is not None:
        names = sorted({n for _, _, d in loaded if (n := instance_type_of(d)) and _valid(n)})
        facts = describe(names) if names else {}
    parsed: list[_Parsed] = []
    for rel, raw, data in loaded:
        try:
            if is_legacy_import(data):
                raise InvalidResult("already an instbench import document, not a source file")
            result = parse_go_collector(data, facts)
        except InvalidResult as exc:
            rejected.append((rel, raw, exc.reason))
            continue
        parsed.append(_Parsed(rel, raw, hashlib.sha256(raw).hexdigest(), data, result))

    types_of = _stored_fingerprints(store)
    for p in parsed:
        types_of.setdefault(p.result.fingerprint(), set()).add(p.result.instance_type)

    batch: set[str] = set()
    for p in parsed:
        types = types_of[p.result.fingerprint()]
        if len(types) > 1:
            names = sorted(types)
            listed = ", ".join(names[:4]) + (
                f", and {len(names) - 4} more" if len(names) > 4 else ""
            )
            rejected.append(
                (
                    p.rel,
                    p.raw,
                    f"placeholder figures: identical {p.result.benchmark} figures for "
                    f"{len(types)} instance types ({listed})",
                )
            )
            continue
        key = _key(p.result, p.sha256)
        flags = tuple(dict.fromkeys(f["code"] for f in p.result.flags))
        if key in batch or store.exists(key):  # the same bytes under another path, or before
            report.outcomes.append(Outcome(p.rel, "already imported", key=key, flags=flags))
            continue
        batch.add(key)
        doc = wrap(
            p.data,
            p.result,
            source_path=p.rel,
            source_sha256=p.sha256,
            source_bytes=len(p.raw),
            repository_commit=commit,
        )
        body = (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
        if not dry_run:
            try:
                store.put_new(key, body)
            except AlreadyExists:
                report.outcomes.append(Outcome(p.rel, "already imported", key=key, flags=flags))
                continue
        report.outcomes.append(Outcome(p.rel, "imported", key=key, flags=flags))

    for rel, raw, reason in rejected:
        report.outcomes.append(Outcome(rel, "quarantined", reason=reason))
        if not dry_run:
            name = f"{hashlib.sha256(raw).hexdigest()[:16]}-{Path(rel).name}"
            store.put_replace(f"quarantine/legacy-import/{name}", raw)
            store.put_replace(
                f"quarantine/legacy-import/{name}.reason",
                f"{rel}: {reason.rstrip()}\n".encode(),
            )
    report.outcomes.sort(key=lambda o: o.path)
    return report
