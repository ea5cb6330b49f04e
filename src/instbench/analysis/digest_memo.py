"""Digests of windows and partitions, remembered in the ingest cache until a document of
theirs changes.

A publication compares the digest of every weekly and monthly window, and of every tidy
partition, with the previous publication's (windows.py, documents/exports.py). Each
digest is the sha256 of the sorted lines "{key} {content sha256}" of the documents in
it. Computing them all means grouping every row of `accepted_rows`: after a sync of
1,000 results that was 0.2 s of CPU of a 0.6 s publication, for the one or two windows
that changed.

A digest is a function of the accepted documents of its window. Ingest numbers each
change of the accepted set (`meta.generation`) and records the timestamp of every
document whose status or content changed (`changed_docs`: new, gone, changed, or
sharing the figures of one of those). So a digest remembered at generation G still holds
unless a document changed after G in its window: only those windows are computed again.
What is remembered is keyed by the code that computed it (`generatorDigest`; ingest drops
what other code remembered), so other code never reads this code's digests, and by a
scope naming the kind and the filter.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection

import duckdb

from instbench.analysis.file_status import scalar
from instbench.analysis.generator import generator_digest

Digests = dict[str, tuple[str, int]]
"""Name (a window, or 'benchmark|month') -> (digest, rows)."""

Compute = Callable[[Collection[str] | None], Digests]
"""Digests of the given names (those that still have documents), or of every name (None)."""


def memoized(
    con: duckdb.DuckDBPyConnection,
    scope: str,
    window_of: str,
    compute: Compute,
    window_of_name: Callable[[str], str] = lambda name: name,
) -> Digests:
    """The digests of `scope`: the remembered ones whose window no change touched, and
    `compute(windows)` for the touched windows (every one, `compute(None)`, when none
    is remembered). `window_of`: SQL naming the window of a changed document's
    `timestamp`; `window_of_name`: the window of a digest's name (a partition
    'stream|2025-03' is in window '2025-03'). Remembers the result at the current
    generation."""
    generator = generator_digest()
    generation = scalar(con, "SELECT generation FROM meta")
    remembered = con.execute(
        "SELECT name, digest, rows, generation FROM digest_memo WHERE generator = ? AND scope = ?",
        [generator, scope],
    ).fetchall()
    if not remembered:
        result = compute(None)
    else:
        since = min(int(r[3]) for r in remembered)
        if since == generation:
            return {str(n): (str(d), int(r)) for n, d, r, _ in remembered}
        dirty = {
            str(n)
            for (n,) in con.execute(
                f"SELECT DISTINCT {window_of} FROM changed_docs WHERE generation > ?", [since]
            ).fetchall()
            if n is not None
        }
        result = {
            str(n): (str(d), int(r))
            for n, d, r, _ in remembered
            if window_of_name(str(n)) not in dirty
        }
        if dirty:
            result.update(compute(dirty))
    # Remembered for the next publication; one that cannot be (another writer holds the
    # rows) only costs that publication the full computation again.
    try:
        con.execute("BEGIN")
        con.execute("DELETE FROM digest_memo WHERE scope = ?", [scope])
        if result:
            names = sorted(result)
            con.execute(
                "INSERT INTO digest_memo SELECT ?, ?, unnest(?::VARCHAR[]), "
                "unnest(?::VARCHAR[]), unnest(?::BIGINT[]), ?",
                [
                    generator,
                    scope,
                    names,
                    [result[n][0] for n in names],
                    [result[n][1] for n in names],
                    generation,
                ],
            )
        con.execute("COMMIT")
    except duckdb.Error:
        with contextlib.suppress(duckdb.Error):  # raised when the transaction did not begin
            con.execute("ROLLBACK")
    return result
