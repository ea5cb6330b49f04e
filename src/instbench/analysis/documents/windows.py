"""The weekly and monthly folders ({YYYY}-W{WW}/, {YYYY}-{MM}/): summary.json and
summary.csv of every computed window, and what index.json says of all windows.

Documents stage: from `summarize.WindowSummaries` to bytes; the kept windows' files are
not rendered (the write stage links them), only named in `windowDigests` with the
previous publication's entries. Change points are not in the folders: they are found
over whole series (changes.py) and listed once, in index.json (documents/index.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from instbench.analysis.documents.jsonform import (
    SUMMARY_COLUMNS,
    csv_bytes,
    dumps,
    summary_rows,
)
from instbench.analysis.previous import WINDOW_FILES
from instbench.analysis.summarize import WindowSummaries

WINDOW_NOTES = {
    "median_ci": "median_ci_low/median_ci_high are the distribution-free 95 % interval of "
    "the median (order statistics); null where n < 6, because with fewer than 6 values no "
    "pair of them covers the median with 95 % probability (even [min, max] covers 93.75 % "
    "at n = 5)",
    "ci": "ci_low/ci_high are the 95 % Student t interval of the mean; null where n = 1",
    "changes": "change points are found over whole series and listed in "
    "latest/index.json (regressions, improvements, cpuMixChanges, untested)",
}
"""Why a window summary's intervals can be null, said in every summary.json."""


@dataclass(frozen=True)
class WindowDocuments:
    """Every window folder's files to write, and index.json's view of the windows."""

    files: dict[str, bytes]
    """Path relative to the publication root ("2025-W10/summary.json") -> bytes."""
    kept: dict[str, tuple[str, ...]]
    """Kept window -> its file names (to be linked from the previous publication)."""
    names: dict[str, list[str]]
    """index.json `windows`: kind -> window names."""
    digests: dict[str, dict[str, str]]
    """index.json `windowDigests`: window -> inputs digest and the sha256 of its files."""


def window_documents(kinds: Iterable[WindowSummaries]) -> WindowDocuments:
    """Render every computed window; carry the kept ones over."""
    files: dict[str, bytes] = {}
    kept: dict[str, tuple[str, ...]] = {}
    names: dict[str, list[str]] = {}
    digests: dict[str, dict[str, str]] = {}
    for ws in kinds:
        names[ws.kind] = list(ws.names)
        for name, entry in ws.kept.items():
            kept[name] = WINDOW_FILES
            digests[name] = dict(entry)
        for name in sorted(ws.computed):
            groups = summary_rows(ws.computed[name])
            document = {"window": name, "kind": ws.kind, "groups": groups, "notes": WINDOW_NOTES}
            rendered = {
                "summary.json": dumps(document),
                "summary.csv": csv_bytes(groups, SUMMARY_COLUMNS),
            }
            for f, data in rendered.items():
                files[f"{name}/{f}"] = data
            digests[name] = {
                "inputs": ws.digests[name],
                **{f: hashlib.sha256(data).hexdigest() for f, data in rendered.items()},
            }
    return WindowDocuments(files, kept, names, digests)
