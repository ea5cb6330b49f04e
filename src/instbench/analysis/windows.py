"""Weekly and monthly windows: which of the previous publication's folders still hold.

A window's folder ({YYYY}-W{WW}/ or {YYYY}-{MM}/, summary.json + summary.csv) is a
function of the documents measured in it (change points, which depend on whole series,
are in index.json, not in the folders). So when the documents of a window are the ones
the previous publication used, its folder is what this publication would write again;
the oldest unchanged windows are reused, from the first changed one on every window is
computed again (the simple rule that was needed while windows depended on the window
before them, and still right). New results land in the latest windows, so after a
sync only those are computed and rendered; on a mirror of 100,000 results spanning 70
weeks that was most of a publication's Python time.

What the previous publication used is read from its index.json `windowDigests`: per
window, the sha256 of its inputs (as `inputs_digest`, over the window's documents only)
and of its two files, which are hashed again before reuse (reuse.stage_verified), so a
folder edited since is rendered again rather than republished (analysis/previous.py).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

import duckdb

from instbench.analysis.aggregate import (
    WINDOW_NAME,
    WINDOW_SQL,
    WINDOW_START_SQL,
    Window,
    publishable_filter,
    window_name_sql,
    window_start,
)
from instbench.analysis.digest_memo import Digests, memoized
from instbench.analysis.reuse import documents_digest_sql

KINDS: dict[str, Window] = {"weekly": "week", "monthly": "month"}
"""index.json's name of each kind of window -> aggregate.summarize's."""


def window_digests(
    con: duckdb.DuckDBPyConnection, window: Window, include_sandbox: bool
) -> dict[str, str]:
    """Window name -> sha256 of the lines "{key} {content sha256}\\n" of the documents
    whose figures count in it (the rows `summarize` reads), sorted by key."""
    return all_window_digests(con, include_sandbox, [window])[window]


def all_window_digests(
    con: duckdb.DuckDBPyConnection, include_sandbox: bool, kinds: Iterable[Window]
) -> dict[Window, dict[str, str]]:
    """`window_digests` of several kinds of window: those remembered in the ingest cache
    while no document of theirs changed, the others computed (digest_memo.py)."""
    out: dict[Window, dict[str, str]] = {}
    for window in kinds:

        def compute(names: Collection[str] | None, window: Window = window) -> Digests:
            return _window_digests(con, include_sandbox, window, names)

        digests = memoized(con, f"window:{window}:{include_sandbox}", WINDOW_SQL[window], compute)
        out[window] = {name: digest for name, (digest, _) in digests.items()}
    return out


def _window_digests(
    con: duckdb.DuckDBPyConnection,
    include_sandbox: bool,
    window: Window,
    names: Collection[str] | None,
) -> Digests:
    """Window -> (digest, documents) of the windows `names` (all of them: None) that
    have documents. Only the rows of those windows are read (by their start)."""
    where = f"{publishable_filter(include_sandbox)} AND value IS NOT NULL"
    params: list[object] = []
    if names is not None:
        starts = [window_start(window, n) for n in sorted(names) if WINDOW_NAME.match(n)]
        if not starts:
            return {}
        where += f" AND {WINDOW_START_SQL[window]} IN (SELECT unnest(?::TIMESTAMP[]))"
        params.append(starts)
    rows = con.execute(
        f"""
        SELECT {window_name_sql(window, "start")} AS win, {documents_digest_sql("sha")},
               count(*)
        FROM (
            SELECT key, any_value(result_sha256) AS sha,
                   any_value({WINDOW_START_SQL[window]}) AS start
            FROM accepted_rows WHERE {where} GROUP BY key
        )
        GROUP BY win ORDER BY win
        """,
        params,
    ).fetchall()
    return {str(w): (str(d), int(n)) for w, d, n in rows}


def unchanged_windows(digests: Mapping[str, str], previous: Mapping[str, Any]) -> list[str]:
    """The longest run of oldest windows whose inputs are the previous publication's
    (`previous`: `Previous.windows` of the same kind): the same windows in the same
    order, each with the same digest."""
    old_names = sorted(previous)
    same: list[str] = []
    for i, name in enumerate(sorted(digests)):
        if i >= len(old_names) or old_names[i] != name:
            break
        if previous[name].get("inputs") != digests[name]:
            break
        same.append(name)
    return same
