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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instbench.analysis import reuse
from instbench.analysis.generator import GENERATOR, PUBLICATION_VERSION
from instbench.analysis.ingest import CACHE_VERSION

WINDOW_FILES = ("summary.csv", "summary.json")
"""The files of a window folder ({YYYY}-W{WW}/, {YYYY}-{MM}/)."""


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


def _files_match(folder: Path, expected: Mapping[str, object]) -> bool:
    try:
        return all(reuse.sha256_file(folder / name) == sha for name, sha in expected.items())
    except OSError:
        return False


def read_previous(output: Path, include_sandbox: bool) -> Previous | None:
    """The previous publication when it was made by this generator, with the same options
    and ingest rules: only then may any of its files be reused."""
    try:
        old = json.loads((output / "latest" / "index.json").read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(old, dict) or not isinstance(old.get("inputs"), dict):
        return None
    same = (
        old.get("generator") == GENERATOR
        and old.get("publicationFormat") == PUBLICATION_VERSION
        and old.get("includeSandbox") == include_sandbox
        and old["inputs"].get("ingest") == CACHE_VERSION
    )
    return Previous(output=output, index=old) if same else None
