"""Weekly and monthly windows: which of the previous publication's folders still hold.

A window's folder ({YYYY}-W{WW}/ or {YYYY}-{MM}/, summary.json + summary.csv) is a
function of the documents measured in it and, through the regression test against the
group's previous window, of the windows before it. So when the documents of a window and
of every window before it are the ones the previous publication used, its folder is what
this publication would write again. New results land in the latest windows, so after a
sync only those are computed and rendered; on a mirror of 100,000 results spanning 70
weeks that was most of a publication's Python time.

What the previous publication used is read from its index.json `windowDigests`: per
window, the sha256 of its inputs (as `inputs_digest`, over the window's documents only)
and of its two files, which are hashed again before reuse, so a folder edited since is
rendered again rather than republished.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from instbench.analysis.aggregate import WINDOW_SQL, Window, publishable_filter

WINDOW_FILES = ("summary.csv", "summary.json")

KINDS: dict[str, Window] = {"weekly": "week", "monthly": "month"}
"""index.json's name of each kind of window -> aggregate.summarize's."""


def window_digests(
    con: duckdb.DuckDBPyConnection, window: Window, include_sandbox: bool
) -> dict[str, str]:
    """Window name -> sha256 of the lines "{key} {content sha256}\\n" of the documents
    whose figures count in it (the rows `summarize` reads), sorted by key."""
    rows = con.execute(
        f"""
        SELECT win, sha256(string_agg(key || ' ' || sha || chr(10), '' ORDER BY key))
        FROM (
            SELECT key, any_value(result_sha256) AS sha, any_value({WINDOW_SQL[window]}) AS win
            FROM accepted_rows
            WHERE {publishable_filter(include_sandbox)} AND value IS NOT NULL
            GROUP BY key
        )
        GROUP BY win ORDER BY win
        """
    ).fetchall()
    return {str(w): str(d) for w, d in rows}


@dataclass(frozen=True)
class WindowPlan:
    """For one kind of window: the folders to reuse, and where computing starts."""

    reused: list[str]
    """Windows whose previous folder is kept (linked), oldest first."""
    since: str | None
    """The first window to compute and render (with every later one); None: none."""


def plan_windows(
    digests: Mapping[str, str], previous: Mapping[str, Any] | None, output: Path
) -> WindowPlan:
    """The longest run of oldest windows whose inputs, and whose folders' bytes, are the
    previous publication's (`previous`: its `windowDigests`, or None when it was made
    by another generator or with other options)."""
    names = sorted(digests)
    old_names = sorted(previous or {})
    reused: list[str] = []
    for i, name in enumerate(names):
        if i >= len(old_names) or old_names[i] != name:
            break
        entry = (previous or {}).get(name)
        if not isinstance(entry, dict) or entry.get("inputs") != digests[name]:
            break
        if not all(_file_sha(output / name / f) == entry.get(f) for f in WINDOW_FILES):
            break
        reused.append(name)
    rest = names[len(reused) :]
    return WindowPlan(reused=reused, since=rest[0] if rest else None)


def _file_sha(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
