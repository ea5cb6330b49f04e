"""The weekly and monthly folders ({YYYY}-W{WW}/, {YYYY}-{MM}/): summary.json and
summary.csv of every computed window, and what index.json says of all windows.

Documents stage: from `summarize.WindowSummaries` to bytes; the kept windows' files are
not rendered (the write stage links them), only named in `windowDigests` with the
previous publication's entries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from instbench.analysis.aggregate import Regression
from instbench.analysis.documents.jsonform import (
    SUMMARY_COLUMNS,
    csv_bytes,
    dumps,
    num,
    summary_rows,
)
from instbench.analysis.previous import WINDOW_FILES
from instbench.analysis.summarize import WindowSummaries

_REGRESSION_ORDER = ("instance_type", "benchmark", "test", "thread_mode", "metric", "window")


def _regression_order(r: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(r.get(k)) for k in _REGRESSION_ORDER)


def regression_record(reg: Regression) -> dict[str, Any]:
    """A regression as published (floats through `num`)."""
    r = reg.as_dict()
    for k in ("previous_mean", "mean", "change", "p_value"):
        r[k] = num(r[k])
    return r


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
    flagged: list[dict[str, Any]]
    """index.json `regressions`: the flagged ones, by kind, then group, then window."""


def window_documents(kinds: Iterable[WindowSummaries]) -> WindowDocuments:
    """Render every computed window; carry the kept ones over."""
    files: dict[str, bytes] = {}
    kept: dict[str, tuple[str, ...]] = {}
    names: dict[str, list[str]] = {}
    digests: dict[str, dict[str, str]] = {}
    flagged: list[dict[str, Any]] = []
    for ws in kinds:
        names[ws.kind] = list(ws.names)
        for name, entry in ws.kept.items():
            kept[name] = WINDOW_FILES
            digests[name] = dict(entry)
        kind_flagged = list(ws.kept_flagged)
        regs_by_window: dict[str, list[dict[str, Any]]] = {}
        for reg in ws.regressions:
            r = regression_record(reg)
            regs_by_window.setdefault(reg.window, []).append(r)
            if reg.flagged:
                kind_flagged.append(r)
        for name in sorted(ws.computed):
            groups = summary_rows(ws.computed[name])
            document = {
                "window": name,
                "kind": ws.kind,
                "groups": groups,
                "regressions": regs_by_window.get(name, []),
            }
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
        # The order `regressions` gives: by group, then window.
        flagged += sorted(kind_flagged, key=_regression_order)
    return WindowDocuments(files, kept, names, digests, flagged)


def regressions_table(regs: Iterable[Regression]) -> list[dict[str, Any]]:
    """Flagged regressions as plain dicts (for --json and the terminal)."""
    return [r.as_dict() for r in regs if r.flagged]
