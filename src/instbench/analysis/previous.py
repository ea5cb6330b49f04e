"""The previous publication in the output folder, as an input: what of it may be reused.

A publication keeps files of the one before it (the tidy exports, weekly and monthly
folders) when it would write the same bytes again. Whether it would is decided from the
previous index.json (same generator, options and ingest rules; same inputs) and from the
files themselves, hashed against what that index recorded: a file edited since is
written anew, never republished. This module only reads; `summarize` decides with what it
says and `write` links the files it vouched for.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instbench.analysis import reuse
from instbench.analysis.generator import GENERATOR, PUBLICATION_VERSION, generator_digest
from instbench.analysis.ingest import CACHE_VERSION

WINDOW_FILES = ("summary.csv", "summary.json")
"""The files of a window folder ({YYYY}-W{WW}/, {YYYY}-{MM}/)."""

WINDOW_DIR = re.compile(r"^\d{4}-(W\d{2}|\d{2})$")
"""The name of a window folder."""

WINDOW_KINDS = ("weekly", "monthly")


@dataclass
class Previous:
    """The previous publication's index (made by this generator with these options) and
    its folder, with the window folders found intact cached by name."""

    output: Path
    index: dict[str, Any]
    _intact: dict[str, bool] = field(default_factory=dict)

    def windows(self, kind: str) -> dict[str, dict[str, Any]]:
        """Its `windowDigests` entries of one kind ('weekly', 'monthly'), by window."""
        return previous_windows(self.index, kind)

    def window_intact(self, kind: str, name: str) -> bool:
        """True when the window folder's files hash to what the index recorded."""
        if name not in self._intact:
            recorded = self.windows(kind).get(name, {})
            self._intact[name] = _files_match(
                self.output / name, {f: recorded.get(f) for f in WINDOW_FILES}
            )
        return self._intact[name]

    def unchanged(self, source: str) -> bool:
        """True when this publication was made from exactly what the next one would be
        made from (`source`: its sourceDigest, publish.source_digest) and every file of it
        is as its index.json recorded, no file more or less: publishing again would write
        the same bytes (publication is deterministic), so it is left as it is.

        Every file is hashed again (24 MB at 100,000 results: ~20 ms), so a publication
        edited since is written anew; a symbolic link anywhere in it (not something a
        publication writes) also means it is written anew.
        """
        if self.index.get("sourceDigest") != source:
            return False
        files = self.index.get("files")
        if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
            return False
        latest = {str(f.get("path")): f.get("sha256") for f in files}
        if _regular_files(self.output / "latest") != {*latest, "index.json"}:
            return False
        listed = self.index.get("windows")
        if not isinstance(listed, dict):
            return False
        kinds = {kind: listed.get(kind) for kind in WINDOW_KINDS}
        names = {
            (kind, str(n))
            for kind, of_kind in kinds.items()
            for n in (of_kind if isinstance(of_kind, list) else [])
        }
        try:
            found = {e.name for e in os.scandir(self.output) if WINDOW_DIR.match(e.name)}
        except OSError:
            return False
        if found != {name for _, name in names}:
            return False
        for kind, name in sorted(names):
            if _regular_files(self.output / name) != set(WINDOW_FILES):
                return False
            if not self.window_intact(kind, name):  # False too without recorded digests
                return False
        return _files_match(self.output / "latest", latest)


def previous_windows(index: Mapping[str, Any] | None, kind: str) -> dict[str, dict[str, Any]]:
    """The previous publication's `windowDigests` entries of one kind ('weekly',
    'monthly'), by window name; empty when `index` is None (not reusable) or lacks them."""
    names = (index or {}).get("windows")
    digests = (index or {}).get("windowDigests")
    if not isinstance(names, dict) or not isinstance(digests, dict):
        return {}
    listed = names.get(kind)
    return {
        n: digests[n]
        for n in (listed if isinstance(listed, list) else [])
        if isinstance(n, str) and isinstance(digests.get(n), dict)
    }


def _regular_files(folder: Path) -> set[str] | None:
    """Every file under `folder` by path relative to it; None when it is missing or holds
    anything but regular files and folders (a symbolic link, a socket)."""
    found: set[str] = set()
    try:
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            return None
        for dirpath, dirnames, filenames in os.walk(folder):
            rel = os.path.relpath(dirpath, folder)
            for name in dirnames + filenames:
                mode = os.lstat(os.path.join(dirpath, name)).st_mode
                if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                    return None
            found.update(name if rel == "." else f"{rel}/{name}" for name in filenames)
    except OSError:
        return None
    return found


def _files_match(folder: Path, expected: Mapping[str, object]) -> bool:
    try:
        return all(reuse.sha256_file(folder / name) == sha for name, sha in expected.items())
    except OSError:
        return False


def read_previous(output: Path, include_sandbox: bool) -> Previous | None:
    """The previous publication when it was made by this generator (the same code, by
    `generatorDigest`), with the same options and ingest rules: only then may any of its
    files be reused."""
    try:
        old = json.loads((output / "latest" / "index.json").read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(old, dict) or not isinstance(old.get("inputs"), dict):
        return None
    same = (
        old.get("generator") == GENERATOR
        and old.get("generatorDigest") == generator_digest()
        and old.get("publicationFormat") == PUBLICATION_VERSION
        and old.get("includeSandbox") == include_sandbox
        and old["inputs"].get("ingest") == CACHE_VERSION
    )
    return Previous(output=output, index=old) if same else None
