"""The tidy exports (latest/tidy.parquet, latest/tidy.csv): every published figure, one row
per sample, rendered by DuckDB straight into the staging folder.

Why DuckDB writes them and not the write stage: at 100,000 results they are 390 MB, too
big to hold as bytes, and four seconds of DuckDB. They are rendered on a thread of their
own (publish.py starts it first), and reused from the previous publication when it was
made from the same inputs and its files still hash to what its index recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from instbench.analysis import reuse
from instbench.analysis.aggregate import publishable_filter
from instbench.analysis.ingest import CACHE_VERSION
from instbench.analysis.previous import Previous
from instbench.analysis.tidy import COLUMN_NAMES

TIDY_FILES = ("tidy.csv", "tidy.parquet")


@dataclass(frozen=True)
class Exported:
    """The tidy exports in the staging folder: row count, sha256 per file, reused or not,
    and the publication's `inputs` (index.json) that decided it."""

    rows: int
    sha256: dict[str, str]
    reused: bool
    inputs: dict[str, Any]


def inputs_digest(con: duckdb.DuckDBPyConnection) -> str:
    """sha256 of the lines "{key} {content sha256}\n" of every accepted document, by key.

    It names the exact set of results a publication was computed from: two publications
    with the same digest (and generator) were made from the same documents.
    """
    row = con.execute(
        f"SELECT {reuse.documents_digest_sql('sha256')} FROM file_status WHERE status = 'ok'"
    ).fetchone()
    return str(row[0]) if row else ""


def previous_exports(previous: Mapping[str, Any] | None, inputs: Any) -> dict[str, Any] | None:
    """The previous index's entries of the tidy exports when it was made from the same
    `inputs` (so the files are what this publication would write); None otherwise."""
    if previous is None or previous.get("inputs") != inputs:
        return None
    files = previous.get("files")
    entries = (
        {f.get("path"): f for f in files if isinstance(f, dict)} if isinstance(files, list) else {}
    )
    if not all(isinstance(entries.get(name), dict) for name in TIDY_FILES):
        return None
    return {name: entries[name] for name in TIDY_FILES}


def export_tidy(
    con: duckdb.DuckDBPyConnection,
    documents: int,
    include_sandbox: bool,
    previous_publication: Previous | None,
    output: Path,
    staging: Path,
) -> Exported:
    """Stage the tidy exports: the previous publication's files when they were made from
    the same inputs and their bytes still hash to what its index.json recorded; else new.

    At 100,000 results the two files are 390 MB and four seconds of DuckDB, most of a
    publication whose inputs did not change. Reused files are hard links (a copy where
    links fail), hashed after linking so that what is checked is what gets published.
    """
    inputs = {"documents": documents, "sha256": inputs_digest(con), "ingest": CACHE_VERSION}
    previous = previous_exports(
        previous_publication.index if previous_publication else None, inputs
    )
    latest = staging / "latest"
    if previous is not None:
        recorded = {name: previous[name].get("sha256") for name in TIDY_FILES}
        rows = {previous[name].get("rows") for name in TIDY_FILES}
        if (
            len(rows) == 1
            and isinstance(count := rows.pop(), int)
            and reuse.stage_verified(output / "latest", latest, recorded)
        ):
            return Exported(rows=count, sha256=dict(recorded), reused=True, inputs=inputs)
    count = _copy_exports(con, publishable_filter(include_sandbox), latest)
    sha = {name: reuse.sha256_file(latest / name) for name in TIDY_FILES}
    return Exported(rows=count, sha256=sha, reused=False, inputs=inputs)


def _copy_exports(con: duckdb.DuckDBPyConnection, where: str, latest: Path) -> int:
    order = "key, benchmark, test, thread_mode, metric"
    cols = ", ".join(COLUMN_NAMES)
    query = f"SELECT {cols} FROM accepted_rows WHERE {where} ORDER BY {order}"
    parquet = (latest / "tidy.parquet").as_posix()
    csv_path = (latest / "tidy.csv").as_posix()
    con.execute("SET preserve_insertion_order = true")
    con.execute(f"COPY ({query}) TO '{parquet}' (FORMAT parquet, COMPRESSION zstd)")
    # The CSV is the Parquet file's rows in the same order: read back, not sorted again
    # (the sort of 800,000 rows was a fifth of the exports at 100,000 results).
    exported = f"read_parquet('{parquet}')"
    con.execute(
        f"COPY (SELECT * FROM {exported}) TO '{csv_path}' (FORMAT csv, HEADER, "
        "TIMESTAMPFORMAT '%Y-%m-%dT%H:%M:%S.%fZ')"
    )
    count = con.execute(f"SELECT count(*) FROM {exported}").fetchone()
    return int(count[0]) if count else 0
