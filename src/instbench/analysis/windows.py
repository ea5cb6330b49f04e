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

from collections.abc import Iterable, Mapping
from typing import Any

import duckdb

from instbench.analysis.aggregate import WINDOW_SQL, Window, publishable_filter
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
    """`window_digests` of several kinds of window in one pass over accepted_rows: the
    documents (one row each: key, content sha256, timestamp) are gathered once and
    grouped per kind (gathering them was 0.1-0.3 s per kind at 100,000 results)."""
    kinds = list(kinds)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE window_documents AS
        SELECT key, any_value(result_sha256) AS sha, any_value(timestamp) AS timestamp
        FROM accepted_rows
        WHERE {publishable_filter(include_sandbox)} AND value IS NOT NULL
        GROUP BY key
        """
    )
    try:
        out: dict[Window, dict[str, str]] = {}
        for window in kinds:
            rows = con.execute(
                f"""
                SELECT {WINDOW_SQL[window]} AS win, {documents_digest_sql("sha")}
                FROM window_documents GROUP BY win ORDER BY win
                """
            ).fetchall()
            out[window] = {str(w): str(d) for w, d in rows}
        return out
    finally:
        con.execute("DROP TABLE window_documents")


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
