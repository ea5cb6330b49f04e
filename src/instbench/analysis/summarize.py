"""The "summarize" stage of a publication: statistics of every group, all-time and per
weekly and monthly window, the change points of every series, and the facts the documents
cite (toolchains, exclusions).

It reads the ingested dataset (DuckDB) and what the previous publication vouches for
(`previous.Previous`), and returns plain data (`Summarized`); it renders nothing and
writes nothing. The documents stage turns that data into files, the write stage puts
them on disk.

Windows: a window's folder is a function of the documents measured in it. The oldest
windows whose documents are the ones the previous publication used, and whose files are
intact, are kept (`WindowSummaries.kept`); from the first other window on, windows are
computed again (see analysis/windows.py). Change points are found over whole series
(changes.py), never per pair of windows, and listed once in index.json.
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass, field
from typing import Any

import duckdb

from instbench.analysis import changes
from instbench.analysis import windows as windows_mod
from instbench.analysis.aggregate import (
    Summary,
    excluded_counts,
    publishable_filter,
    summarize,
)
from instbench.analysis.ingest import Dataset
from instbench.analysis.previous import Previous

TOOLCHAIN_BENCHMARKS = ("stream", "latency", "linpack", "cpu", "coremark")
"""Benchmarks whose compilers and flags a document's methodology may cite."""


@dataclass(frozen=True)
class WindowSummaries:
    """One kind of window ('weekly' or 'monthly')."""

    kind: str
    names: list[str]
    """Every window of the kind, oldest first."""
    digests: dict[str, str]
    """Window -> digest of its documents (windows.window_digests)."""
    kept: dict[str, dict[str, Any]]
    """Windows whose previous folder is kept as it is -> its previous windowDigests entry."""
    computed: dict[str, list[Summary]] = field(default_factory=dict)
    """Window -> its summaries, for every window from the first one not kept on."""


@dataclass(frozen=True)
class Summarized:
    """Everything the documents of a publication are made of, but the prices."""

    summaries: list[Summary]
    """All-time summaries, by group."""
    last: str | None
    """The newest published measurement (ISO timestamp), which dates the publication."""
    toolchains: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]
    """benchmark -> (distinct compilers, distinct flags) of its published rows."""
    excluded: dict[str, int]
    """Valid documents left out of the publication, by reason."""
    windows: list[WindowSummaries]
    changes: changes.ChangeReport
    """Change points over every whole series (changes.py), CPU-mix changes, untested."""

    @property
    def header(self) -> dict[str, Any]:
        """`version` and `lastUpdated` of every document (dated by the data, not the clock)."""
        last = self.last
        return {"version": last[:10].replace("-", ".") if last else None, "lastUpdated": last}


def _distinct(
    con: duckdb.DuckDBPyConnection, column: str, include_sandbox: bool
) -> dict[str, tuple[str, ...]]:
    names = ", ".join(f"'{b}'" for b in TOOLCHAIN_BENCHMARKS)
    rows = con.execute(
        f"SELECT benchmark, list(DISTINCT {column} ORDER BY {column}) FROM accepted_rows "
        f"WHERE {column} IS NOT NULL AND benchmark IN ({names}) AND "
        f"{publishable_filter(include_sandbox)} GROUP BY benchmark"
    ).fetchall()
    return {str(b): tuple(str(v) for v in values) for b, values in rows}


def toolchains(
    con: duckdb.DuckDBPyConnection, include_sandbox: bool
) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Per benchmark, the distinct compilers and flags of its published rows."""
    compilers = _distinct(con, "compiler", include_sandbox)
    flags = _distinct(con, "cflags", include_sandbox)
    return {
        b: (compilers.get(b, ()), flags.get(b, ())) for b in sorted(set(compilers) | set(flags))
    }


def summarize_windows(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    include_sandbox: bool,
    previous: Previous | None,
    digests: dict[str, str] | None = None,
) -> WindowSummaries:
    """One kind of window: which windows are kept from `previous`, and the summaries and
    regressions of the others (`digests`: the kind's `windows.window_digests`, computed
    here when not given)."""
    window = windows_mod.KINDS[kind]
    if digests is None:
        digests = windows_mod.window_digests(con, window, include_sandbox)
    names = sorted(digests)
    old = previous.windows(kind) if previous is not None else {}
    kept: dict[str, dict[str, Any]] = {}
    for name in windows_mod.unchanged_windows(digests, old):
        if previous is None or not previous.window_intact(kind, name):
            break
        kept[name] = dict(old[name])
    since = next((n for n in names if n not in kept), None)
    if since is None:
        return WindowSummaries(kind, names, digests, kept)
    computed: dict[str, list[Summary]] = {}
    for s in summarize(con, include_sandbox=include_sandbox, window=window, since=since):
        computed.setdefault(s.window, []).append(s)
    return WindowSummaries(kind, names, digests, kept, computed)


def summarize_publication(
    dataset: Dataset,
    include_sandbox: bool,
    previous: Previous | None,
    min_effect: float = changes.MIN_EFFECT,
) -> Summarized:
    """The whole stage: all-time summaries, facts, every kind of window, change points
    (`min_effect`: the smallest relative change of a mean reported as one)."""
    con = dataset.con
    # Change points on a thread and a connection of their own: their Python part (the
    # segmentation, scipy's import) overlaps the summaries' SQL, which releases the GIL.
    cursor = con.cursor()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="changes")
    try:
        found = pool.submit(_changes, cursor, include_sandbox, min_effect)
        summaries = summarize(con, include_sandbox=include_sandbox, window="all")
        digests = windows_mod.all_window_digests(con, include_sandbox, windows_mod.KINDS.values())
        return Summarized(
            summaries=summaries,
            last=max((s.last for s in summaries), default=None),
            toolchains=toolchains(con, include_sandbox),
            excluded=excluded_counts(con, include_sandbox),
            windows=[
                summarize_windows(con, kind, include_sandbox, previous, digests[window])
                for kind, window in windows_mod.KINDS.items()
            ],
            changes=found.result(),
        )
    finally:
        if not found.done():
            cursor.interrupt()  # failed before the change points were needed: stop them
        pool.shutdown(wait=True)
        cursor.close()


def _changes(
    con: duckdb.DuckDBPyConnection, include_sandbox: bool, min_effect: float
) -> changes.ChangeReport:
    return changes.detect(
        changes.series_cells(con, include_sandbox=include_sandbox), min_effect=min_effect
    )
