"""Ingest: every raw document of the mirror, validated once, as rows of a DuckDB table.

What happens to one file under raw/ (docs/statistics.md has the rules in prose):
  1. strict JSON (no NaN), then either the v1 schema + plausibility rules (ours) or, for a
     document of kind `instbench-legacy-import` (written by `instbench import legacy`),
     the Go collector's checks on its original (legacy.py: its own series, never ours); a
     Go-collector file placed by hand is not read; failure -> quarantined with the reason;
  2. sha256 of the canonical JSON (`results.validate.content_sha256`) is recorded;
  3. its figures become tidy rows (tidy.py).
Then, across files: documents with the same sha256 are counted once (the first key in
sorted order stands for them; the others are `duplicate`), and documents of *different*
instance types carrying identical figures are quarantined as placeholders.

Quarantine copies the file to `quarantine/{key}` and writes `quarantine/{key}.reason`;
nothing under raw/ is ever modified or deleted.

Why a cache: raw results are immutable (`LocalStore.put_new` never overwrites), so a file
validated once need not be parsed again while its size and mtime are unchanged. The cache
is a DuckDB database under `{root}/.instbench/`; a publication after a sync parses only
the new files, and the walk lists only the directories whose mtime changed (`scan_raw`;
`rescan=True` stats every file again, for a mirror edited by hand). The cache is rebuilt
from scratch when `CACHE_VERSION` (the rules, the schema's data_version, the tidy
columns, the cache's layout) changes. New files are validated in parallel
worker processes, each writing CSV chunks that DuckDB loads in bulk.
"""

from __future__ import annotations

import csv
import hashlib
import multiprocessing
import operator
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from instbench.analysis import file_status
from instbench.analysis.generator import generator_digest
from instbench.analysis.legacy import imported_rows, is_go_collector, is_legacy_import
from instbench.analysis.limits import apply_memory_limit
from instbench.analysis.plausibility import check_document
from instbench.analysis.sweep import Sweep
from instbench.analysis.tidy import COLUMN_NAMES, COLUMNS, Row, document_rows, figures_fingerprint
from instbench.errors import InvalidResult, StorageError, UserError
from instbench.results.schema import DATA_VERSION
from instbench.results.validate import (
    MAX_RESULT_BYTES,
    QUARANTINE_PREFIX_BYTES,
    content_sha256,
    load_json,
    validate_document,
)
from instbench.storage.local import LocalStore

RULES_VERSION = 4
"""Bump when a validation or plausibility rule changes: every file is re-examined."""

LAYOUT_VERSION = 3
"""Bump when the cache's tables, or the SQL that derives file_status and accepted_rows,
change: the cache is rebuilt (2: directory mtimes, derived tables kept between runs;
3: each row stored once, in accepted_rows or held_rows, no longer also in `rows`)."""

CACHE_VERSION = (
    f"layout={LAYOUT_VERSION};rules={RULES_VERSION};data={DATA_VERSION};columns="
    + hashlib.sha256(",".join(f"{c.name}:{c.sql_type}" for c in COLUMNS).encode()).hexdigest()[:12]
)

CACHE_DIR = ".instbench"
CACHE_FILE = "ingest.duckdb"
PARALLEL_THRESHOLD = 2000
"""Below this many new files, validation runs in-process (worker start-up costs more)."""
CHUNK = 2000

_FILE_COLUMNS = (
    ("key", "VARCHAR"),
    ("size", "BIGINT"),
    ("mtime_ns", "BIGINT"),
    ("status", "VARCHAR"),
    ("reason", "VARCHAR"),
    ("sha256", "VARCHAR"),
    ("fingerprint", "VARCHAR"),
    ("instance_type", "VARCHAR"),
    ("source_format", "VARCHAR"),
)

Progress = Callable[[int, int], None]
"""(files validated so far, files to validate) -> None."""


@dataclass(frozen=True)
class IngestReport:
    """What ingest found: counts for index.json and the terminal, rejections with reasons."""

    files: int
    """Files under raw/ (every *.json)."""
    validated_now: int
    """Files parsed in this call (new or changed since the cache was written)."""
    listed_dirs: int
    """Directories under raw/ whose entries were read (the others were unchanged)."""
    accepted: int
    """Distinct valid documents (duplicates counted once)."""
    duplicates: int
    rejected: int
    rejections: list[tuple[str, str]] = field(default_factory=list)
    """(key, reason), sorted by key."""


# ----------------------------------------------------------------------- one file


def examine(raw: bytes, key: str) -> tuple[str, list[Row]]:
    """Validate one file's bytes; (sha256, rows), or `InvalidResult` with the reason."""
    data = load_json(raw)
    sha = content_sha256(data)
    if is_legacy_import(data):
        return sha, imported_rows(data, key, sha)
    if is_go_collector(data):
        raise InvalidResult(
            "a Go-collector file placed by hand: bring it in with `instbench import legacy "
            "PATH --output-dir MIRROR` (its own series, never pooled with ours)"
        )
    doc = validate_document(data)
    check_document(doc, key)
    rows = document_rows(doc, key, sha)
    if not rows:
        raise InvalidResult("no benchmark figures in performance_data")
    return sha, rows


def read_bounded(store: LocalStore, key: str) -> tuple[bytes, int | None]:
    """(bytes, None) for a file within MAX_RESULT_BYTES; else (its first
    QUARANTINE_PREFIX_BYTES, its size). A huge file in the mirror is never read whole."""
    with store.path(key).open("rb") as fh:
        raw = fh.read(MAX_RESULT_BYTES + 1)
        if len(raw) <= MAX_RESULT_BYTES:
            return raw, None
        fh.seek(0, os.SEEK_END)
        return raw[:QUARANTINE_PREFIX_BYTES], fh.tell()


def quarantine(store: LocalStore, key: str, raw: bytes, reason: str) -> None:
    """Copy a rejected file to quarantine/{key} with its reason beside it (raw/ untouched).

    Callers pass an oversized file's prefix only (`read_bounded`), never the whole."""
    store.put_replace(f"quarantine/{key}", raw)
    store.put_replace(f"quarantine/{key}.reason", (reason.rstrip() + "\n").encode())


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, float):
        return repr(value)
    return value


_row_values = operator.itemgetter(*COLUMN_NAMES)
_CONVERTED = [i for i, c in enumerate(COLUMNS) if c.sql_type in {"TIMESTAMP", "BOOLEAN"}]
"""Columns whose Python values need `_csv_value`; the csv module writes the others as
DuckDB reads them (None as '', floats by repr). Converting only these halves the cost of
writing rows."""


def _process_chunk(root: str, entries: list[tuple[str, int, int]], out: str, index: int) -> int:
    """Validate `entries` (key, size, mtime_ns); write rows-N.csv and files-N.csv to `out`."""
    store = LocalStore(Path(root))
    rows_path = Path(out) / f"rows-{index:06d}.csv"
    files_path = Path(out) / f"files-{index:06d}.csv"
    with (
        rows_path.open("w", newline="", encoding="utf-8") as rows_fh,
        files_path.open("w", newline="", encoding="utf-8") as files_fh,
    ):
        rows_w = csv.writer(rows_fh)
        files_w = csv.writer(files_fh)
        for key, size, mtime_ns in entries:
            try:
                raw, oversize = read_bounded(store, key)
            except OSError as exc:
                files_w.writerow(
                    [key, size, mtime_ns, "rejected", f"unreadable: {exc}", "", "", "", ""]
                )
                continue
            try:
                if oversize is not None:
                    raise InvalidResult(
                        f"result is {oversize} bytes, above the {MAX_RESULT_BYTES} limit "
                        f"(only its first {len(raw)} bytes are kept in quarantine)"
                    )
                sha, rows = examine(raw, key)
            except Exception as exc:  # any parser failure is one bad file, never fatal
                reason = (
                    exc.reason
                    if isinstance(exc, InvalidResult)
                    else f"unreadable result: {type(exc).__name__}: {exc}"
                )
                quarantine(store, key, raw, reason)
                files_w.writerow([key, size, mtime_ns, "rejected", reason, "", "", "", ""])
                continue
            fingerprint = hashlib.sha256(figures_fingerprint(rows).encode()).hexdigest()
            first = rows[0]
            files_w.writerow(
                [
                    key,
                    size,
                    mtime_ns,
                    "ok",
                    "",
                    sha,
                    fingerprint,
                    first["instance_type"],
                    first["source_format"],
                ]
            )
            for row in rows:
                values = list(_row_values(row))
                for i in _CONVERTED:
                    values[i] = _csv_value(values[i])
                rows_w.writerow(values)
    return len(entries)


# ----------------------------------------------------------------------- the walk

RACY_NS = 2_000_000_000
"""A directory modified less than this long before the walk is listed again next time.

The walk trusts a directory whose mtime is unchanged: every writer (LocalStore, sync)
adds or replaces files by rename, which changes the directory's mtime. But the mtime has
the file system clock's coarse resolution: a file renamed in after the listing, within the
same tick, would leave the mtime as recorded. So a directory touched that recently is
recorded as unknown (-1) and read again (git calls this the racy-clean problem)."""


@dataclass(frozen=True)
class Scan:
    """What one walk of raw/ saw."""

    dirs: dict[str, int]
    """Every directory under raw/ (key-style path, 'raw/stream/...') -> its mtime_ns,
    or -1 when it was too recently modified to be trusted next time (RACY_NS)."""
    listed: frozenset[str]
    """Directories whose entries were read (all of them on a full walk)."""
    files: list[tuple[str, int, int]]
    """(key, size, mtime_ns) of every *.json directly inside a listed directory, sorted."""


def scan_raw(root: Path, known: Mapping[str, int] | None = None) -> Scan:
    """Walk root/raw; with `known` (the previous walk's `dirs`), skip unchanged directories.

    A directory whose mtime equals the one recorded has the same entries as last time, so
    its files are not listed or stat'ed again, and its subdirectories are taken from
    `known`: on a warm mirror of 100,000 results the walk stats ~10,000 directories
    instead of 110,000 entries. Without `known` every directory is listed (a full walk).
    """
    children: dict[str, list[str]] = {}
    for path in known or ():
        children.setdefault(path.rpartition("/")[0], []).append(path)
    base = str(root)
    now = time.time_ns()
    dirs: dict[str, int] = {}
    listed: set[str] = set()
    files: list[tuple[str, int, int]] = []

    def visit(rel: str) -> None:
        try:
            mtime = os.stat(os.path.join(base, rel)).st_mtime_ns  # before the listing
        except FileNotFoundError:
            return  # removed since its parent was listed: its files leave the dataset
        dirs[rel] = mtime if now - mtime > RACY_NS else -1
        if known is not None and known.get(rel) == mtime:
            for child in children.get(rel, ()):
                visit(child)
            return
        listed.add(rel)
        with os.scandir(os.path.join(base, rel)) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            if entry.name.startswith("."):
                continue  # temporary files of LocalStore and of sync
            key = f"{rel}/{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                visit(key)
            elif entry.name.endswith(".json") and entry.is_file(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                files.append((key, st.st_size, st.st_mtime_ns))

    visit("raw")
    files.sort()
    return Scan(dirs=dirs, listed=frozenset(listed), files=files)


# ----------------------------------------------------------------------- the cache


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path))
    except duckdb.IOException as exc:
        raise StorageError(
            f"cannot open the ingest cache {path}: {exc} (is another instbench running?)"
        ) from exc


def _create_tables(con: duckdb.DuckDBPyConnection) -> None:
    files = ", ".join(f"{n} {t}" for n, t in _FILE_COLUMNS)
    con.execute("CREATE TABLE meta (cache_version VARCHAR, generation BIGINT)")
    con.execute("INSERT INTO meta VALUES (?, 0)", [CACHE_VERSION])
    # digest_memo.py: which documents changed at each generation, and the digests of
    # windows and partitions remembered at one.
    con.execute("CREATE TABLE changed_docs (generation BIGINT, timestamp TIMESTAMP)")
    con.execute(
        "CREATE TABLE digest_memo (generator VARCHAR, scope VARCHAR, name VARCHAR, "
        "digest VARCHAR, rows BIGINT, generation BIGINT)"
    )
    con.execute(f"CREATE TABLE files ({files})")
    con.execute("CREATE TABLE dirs (path VARCHAR, mtime_ns BIGINT)")


def _open_cache(root: Path) -> duckdb.DuckDBPyConnection:
    cache_dir = root / CACHE_DIR
    try:
        cache_dir.mkdir(exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot write to {cache_dir}: {exc.strerror or exc}") from exc
    path = cache_dir / CACHE_FILE
    con = _connect(path)
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "meta" in tables:
        version = con.execute("SELECT cache_version FROM meta").fetchone()
        if version is not None and version[0] == CACHE_VERSION:
            return con
    con.close()
    path.unlink(missing_ok=True)
    Path(f"{path}.wal").unlink(missing_ok=True)
    con = _connect(path)
    _create_tables(con)
    return con


def _csv_glob(out: Path, kind: str, columns: list[tuple[str, str]]) -> str:
    spec = ", ".join(f"'{n}': '{t}'" for n, t in columns)
    return (
        f"read_csv('{out.as_posix()}/{kind}-*.csv', header=false, columns={{{spec}}}, "
        "auto_detect=false, quote='\"', escape='\"', nullstr='')"
    )


def _validate_new(
    root: Path,
    todo: list[tuple[str, int, int]],
    out: Path,
    workers: int,
    progress: Progress | None,
    first_chunk: int = 0,
) -> int:
    """Validate `todo` into CSV chunks in `out`, numbered from `first_chunk`; the number
    after the last one written."""
    chunks = [todo[i : i + CHUNK] for i in range(0, len(todo), CHUNK)]
    done = 0
    if progress:
        progress(0, len(todo))
    if workers <= 1 or len(todo) < PARALLEL_THRESHOLD:
        for i, chunk in enumerate(chunks, start=first_chunk):
            done += _process_chunk(str(root), chunk, str(out), i)
            if progress:
                progress(done, len(todo))
        return first_chunk + len(chunks)
    # forkserver: no DuckDB or botocore state is inherited by the workers.
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [
            pool.submit(_process_chunk, str(root), chunk, str(out), i)
            for i, chunk in enumerate(chunks, start=first_chunk)
        ]
        for future in futures:
            done += future.result()
            if progress:
                progress(done, len(todo))
    return first_chunk + len(chunks)


def default_workers() -> int:
    """Worker processes for validation: the CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Dataset:
    """The ingested mirror: an open DuckDB connection with `accepted_rows` and
    `file_status`.

    `file_status` says for each file: ok, duplicate or rejected, with the reason.
    `accepted_rows` holds the rows of ok files only: every published number is computed
    from it. Both are tables of the cache, kept up to date when a file comes, goes or changes.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        report: IngestReport,
        checkpoint: threading.Thread | None = None,
    ) -> None:
        self.con = con
        self.report = report
        self._checkpoint = checkpoint

    def close(self) -> None:
        if self._checkpoint is not None:
            self._checkpoint.join()
        self.con.close()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ingest(
    root: Path,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
    rescan: bool = False,
    memory_limit: str | None = None,
) -> Dataset:
    """Bring the ingest cache of the mirror at `root` up to date and open it.

    Without `rescan`, folders whose mtime is unchanged are not listed again, but every
    cached file is stat'ed: a file overwritten in place (its folder's mtime unchanged) is
    validated again, and when it was accepted before and its content sha256 differs now,
    it is rejected and quarantined as corrupted (raw results never change). `rescan`
    walks every directory and takes edited files as they are now: for a mirror whose
    files were edited by hand on purpose. `memory_limit` ("1GB") is DuckDB's
    memory_limit on the connections, the returned one too (analysis/limits.py).

    Raises UserError when `root` has no raw/ directory, StorageError when the cache or
    quarantine cannot be written.
    """
    if not root.is_dir():
        raise UserError(f"input directory {root} does not exist")
    if not (root / "raw").is_dir():
        raise UserError(
            f"{root} holds no raw/ directory: pass the local mirror (instbench sync or "
            "run --output-dir) as --input"
        )
    con = _open_cache(root)
    apply_memory_limit(con, memory_limit)
    known = None if rescan else dict(con.execute("SELECT path, mtime_ns FROM dirs").fetchall())
    workers = workers or default_workers()
    changed: dict[str, str] = {}
    tmp = Path(tempfile.mkdtemp(prefix=".ingest-", dir=root / CACHE_DIR))
    sweep = None
    try:
        # Files edited in place, which the walk cannot see (sweep.py): a full walk stat'ed
        # every file already; else they are stat'ed by helpers while the new files
        # validate, their listings written while the walk runs.
        if known is not None:
            sweep = Sweep(con, root, tmp, workers)
        scan = scan_raw(root, known)
        cached = {k: (s, m) for k, s, m in _cached_files(con, scan, known)}
        todo = [(k, s, m) for k, s, m in scan.files if cached.get(k) != (s, m)]
        # What an accepted file held before it changed: raw results never change, so a
        # different content now is corruption (or tampering), not new data. `rescan` is the
        # user saying the mirror was edited by hand: then files are taken as they are now.
        prior = {} if rescan else _accepted_sha256(con, [k for k, _, _ in todo if k in cached])
        has_derived = file_status.has_derived(con)
        if sweep is not None:
            sweep.ready()
        con.close()  # workers must not share the process while DuckDB holds the file
        chunks = 0
        if todo:
            chunks = _validate_new(root, todo, tmp, workers, progress)
        edited = sweep.edited(scan.listed) if sweep is not None else []
        for key, before, now in edited:
            cached[key] = before
            scan.files.append((key, *now))
        if edited:
            again = [(key, *now) for key, _, now in edited]
            _validate_new(root, again, tmp, workers, progress, first_chunk=chunks)
            todo += again
        current = {k for k, _, _ in scan.files}
        # Keys to drop from the cache: files gone from the mirror, and changed files
        # (re-added).
        gone = sorted(
            {*(k for k in cached if k not in current), *(k for k, _, _ in todo if k in cached)}
        )
        files_changed = bool(todo or gone)
        con = _connect(root / CACHE_DIR / CACHE_FILE)
        apply_memory_limit(con, memory_limit)
        if edited and not rescan:
            prior.update(_accepted_sha256(con, [key for key, _, _ in edited]))
        con.execute("BEGIN")
        con.execute("CREATE OR REPLACE TEMP TABLE gone (key VARCHAR)")
        con.execute("CREATE OR REPLACE TEMP TABLE fresh (key VARCHAR)")
        # The figures' fingerprints of files that went or came: the only files whose
        # status may change are those sharing one (file_status.derive_again).
        con.execute("CREATE OR REPLACE TEMP TABLE touched (fingerprint VARCHAR)")
        # The rows of the files validated now: the whole table's first rows on a new
        # cache (derived whole below), else a temporary table `file_status.derive_again` files.
        row_cols = ", ".join(f"{c.name} {c.sql_type}" for c in COLUMNS)
        landing = "rows" if not has_derived else "fresh_rows"
        con.execute(
            f"CREATE {'TABLE IF NOT EXISTS' if not has_derived else 'OR REPLACE TEMP TABLE'} "
            f"{landing} ({row_cols})"
        )
        generation = 0
        if files_changed:
            # The accepted set may change: a new generation (digest_memo.py).
            generation = file_status.scalar(con, "SELECT generation FROM meta") + 1
            con.execute("UPDATE meta SET generation = ?", [generation])
            con.execute("DELETE FROM digest_memo WHERE generator <> ?", [generator_digest()])
        if gone:
            _bulk_keys(con, gone, tmp)
            con.execute(
                "INSERT INTO touched SELECT DISTINCT fingerprint FROM files "
                "WHERE key IN (SELECT key FROM gone) AND fingerprint IS NOT NULL"
            )
            con.execute("DELETE FROM files WHERE key IN (SELECT key FROM gone)")
            if has_derived:
                file_status.log_changed(con, generation, "gone", ("accepted_rows", "held_rows"))
                for table in ("accepted_rows", "held_rows"):
                    con.execute(f"DELETE FROM {table} WHERE key IN (SELECT key FROM gone)")
        if todo:
            files_csv = _csv_glob(tmp, "files", list(_FILE_COLUMNS))
            if not has_derived:  # derived whole below: nothing to track
                con.execute(f"INSERT INTO files SELECT * FROM {files_csv}")
            else:
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE fresh_files AS SELECT * FROM {files_csv}"
                )
                con.execute("INSERT INTO files SELECT * FROM fresh_files")
                con.execute("INSERT INTO fresh SELECT key FROM fresh_files")
                con.execute(
                    "INSERT INTO touched SELECT DISTINCT fingerprint FROM fresh_files "
                    "WHERE fingerprint IS NOT NULL"
                )
                con.execute("DROP TABLE fresh_files")
            changed = _reject_changed(con, prior)
            if any(p.stat().st_size for p in tmp.glob("rows-*.csv")):
                columns = [(c.name, c.sql_type) for c in COLUMNS]
                con.execute(
                    f"INSERT INTO {landing} SELECT * FROM {_csv_glob(tmp, 'rows', columns)}"
                )
        if scan.dirs != known:
            _update_dirs(con, scan.dirs, known)
        if not has_derived:
            file_status.derive_whole(con)
        elif files_changed:
            file_status.derive_again(con, generation)
        con.execute(f"DROP TABLE gone; DROP TABLE fresh; DROP TABLE touched; DROP TABLE {landing}")
        con.execute("COMMIT")
    except BaseException:
        if sweep is not None:
            sweep.stop()  # its listings are written on a connection of this one
        con.close()  # failed: no dataset, and the cache is left as it was (rolled back)
        raise
    finally:
        if sweep is not None:
            sweep.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    if files_changed or not has_derived:
        _quarantine_cross_document(con, LocalStore(root))
    for key, reason in changed.items():
        quarantine(LocalStore(root), key, read_bounded(LocalStore(root), key)[0], reason)
    files = con.execute("SELECT count(*) FROM files").fetchone()
    report = _report(con, int(files[0]) if files else 0, len(todo), len(scan.listed))
    return Dataset(con, report, _checkpoint_behind(con) if files_changed else None)


def _checkpoint_behind(con: duckdb.DuckDBPyConnection) -> threading.Thread:
    """Write the changes to the cache file now, on a thread and a connection of its own,
    while the caller reads the dataset: left to the close, this checkpoint (after a sync
    of 1,000 results, 8 MB of write-ahead log, up to 0.4 s of writing and syncing where
    the file must grow) came after the publication instead of beside it. A checkpoint
    that cannot run now is left to the close, which always makes one."""
    cursor = con.cursor()

    def run() -> None:
        try:
            cursor.execute("CHECKPOINT")
        except duckdb.Error:
            pass  # the close checkpoints what is left
        finally:
            cursor.close()

    thread = threading.Thread(target=run, name="checkpoint", daemon=True)
    thread.start()
    return thread


def _cached_files(
    con: duckdb.DuckDBPyConnection, scan: Scan, known: Mapping[str, int] | None
) -> list[tuple[str, int, int]]:
    """(key, size, mtime_ns) from the cache for the files `scan` may have seen change: all
    of them after a full walk, else those in listed directories and in directories gone."""
    if known is None:
        return con.execute("SELECT key, size, mtime_ns FROM files").fetchall()
    affected = sorted(scan.listed | {d for d in known if d not in scan.dirs})
    if not affected:
        return []
    return con.execute(
        "SELECT key, size, mtime_ns FROM files "
        # the key's directory: all before its last '/' (10x faster than a regexp here)
        "WHERE left(key, length(key) - strpos(reverse(key), '/')) "
        "IN (SELECT unnest(?::VARCHAR[]))",
        [affected],
    ).fetchall()


def _accepted_sha256(con: duckdb.DuckDBPyConnection, keys: list[str]) -> dict[str, str]:
    """key -> sha256 of those of `keys` that the cache holds as validated ('ok')."""
    if not keys:
        return {}
    rows = con.execute(
        "SELECT key, sha256 FROM files WHERE status = 'ok' AND key IN (SELECT unnest(?))",
        [keys],
    ).fetchall()
    return {str(k): str(h) for k, h in rows}


def _reject_changed(con: duckdb.DuckDBPyConnection, prior: Mapping[str, str]) -> dict[str, str]:
    """Reject the files whose content differs from the one accepted before; key -> reason."""
    if not prior:
        return {}
    now = dict(
        con.execute(
            "SELECT key, sha256 FROM files WHERE key IN (SELECT unnest(?))", [list(prior)]
        ).fetchall()
    )
    reasons = {
        key: (
            f"changed after it was stored (content sha256 was {sha}, is now "
            f"{now.get(key) or 'unreadable'}): raw results never change, so this is corruption"
        )
        for key, sha in prior.items()
        if now.get(key) != sha
    }
    for key, reason in reasons.items():
        con.execute("UPDATE files SET status = 'rejected', reason = ? WHERE key = ?", [reason, key])
    return reasons


def _update_dirs(
    con: duckdb.DuckDBPyConnection, dirs: Mapping[str, int], known: Mapping[str, int] | None
) -> None:
    """Record the walk's directories: only the rows that changed when the previous walk's
    are known (a sync touches a few of 10,000 directories; writing the table whole put
    them all in the write-ahead log, written again by the checkpoint at close)."""
    if known is None:
        con.execute("DELETE FROM dirs")
        changed = dict(dirs)
    else:
        changed = {p: m for p, m in dirs.items() if known.get(p) != m}
        stale = [p for p in known if p not in dirs or p in changed]
        if stale:
            con.execute("DELETE FROM dirs WHERE path IN (SELECT unnest(?::VARCHAR[]))", [stale])
    if changed:
        con.execute(
            "INSERT INTO dirs SELECT unnest(?::VARCHAR[]), unnest(?::BIGINT[])",
            [list(changed), list(changed.values())],
        )


def _bulk_keys(con: duckdb.DuckDBPyConnection, keys: list[str], tmp: Path) -> None:
    path = tmp / "gone.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([k] for k in keys)
    con.execute(
        f"INSERT INTO gone SELECT * FROM read_csv('{path.as_posix()}', header=false, "
        "columns={'key': 'VARCHAR'}, auto_detect=false)"
    )


def _quarantine_cross_document(con: duckdb.DuckDBPyConnection, store: LocalStore) -> None:
    """Quarantine files rejected by a cross-document rule (placeholders), once each."""
    rows = con.execute(
        "SELECT s.key, s.reason FROM file_status s JOIN files f USING (key) "
        "WHERE s.status = 'rejected' AND f.status = 'ok' ORDER BY s.key"
    ).fetchall()
    for key, reason in rows:
        reason_key = f"quarantine/{key}.reason"
        expected = (reason.rstrip() + "\n").encode()
        if store.exists(reason_key) and store.read(reason_key) == expected:
            continue
        quarantine(store, key, read_bounded(store, key)[0], reason)


def _report(
    con: duckdb.DuckDBPyConnection, files: int, validated_now: int, listed_dirs: int
) -> IngestReport:
    counts = dict(
        con.execute("SELECT status, count(*) FROM file_status GROUP BY status").fetchall()
    )
    rejections = [
        (str(k), str(r))
        for k, r in con.execute(
            "SELECT key, reason FROM file_status WHERE status = 'rejected' ORDER BY key"
        ).fetchall()
    ]
    return IngestReport(
        files=files,
        validated_now=validated_now,
        listed_dirs=listed_dirs,
        accepted=int(counts.get("ok", 0)),
        duplicates=int(counts.get("duplicate", 0)),
        rejected=int(counts.get("rejected", 0)),
        rejections=rejections,
    )
