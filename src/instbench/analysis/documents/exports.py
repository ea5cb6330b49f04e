"""The dataset exports: the tidy table and the monthly aggregates as Parquet partitioned by
benchmark and month, Hive style, so that any engine reads them (docs/querying.md):

    latest/tidy/benchmark=stream/month=2025-03/part-0.parquet
    latest/aggregates/benchmark=stream/month=2025-03/part-0.parquet
    latest/tidy.csv                                   only with publish --csv

Why partitions and not one file: at 100,000 results the tidy table is 800,000 rows, and a
sync of 1 % new results touched all of one 390 MB file; by month, a sync rewrites the
latest month or two and keeps the others. Each tidy partition has an inputs digest (the
documents whose rows it holds, as `inputs_digest` over those documents only) recorded
with its file in index.json: a partition whose digest is the previous publication's, and
whose file still hashes to what that index recorded, is linked, not written.

The partition columns (benchmark, month) are in the path, not in the files (the Hive
convention that Athena and Spark expect); every other column of tidy.COLUMNS is in every
file, in that order, with the types of `parquet_schema`. Rows are sorted within a
partition and DuckDB writes them on one statement per file, so publishing the same inputs
twice gives the same bytes.

DuckDB writes the tidy partitions straight into the staging folder (publish.py runs
`export_tidy` on a thread of its own from the start); the aggregates partitions are the
monthly window summaries, read back from the staged {YYYY}-{MM}/summary.csv files.
"""

from __future__ import annotations

import hashlib
import re
import typing
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from instbench.analysis import reuse
from instbench.analysis.aggregate import (
    WINDOW_SQL,
    WINDOW_START_SQL,
    Summary,
    publishable_filter,
    window_name_sql,
    window_start,
)
from instbench.analysis.digest_memo import Digests, memoized
from instbench.analysis.ingest import CACHE_VERSION
from instbench.analysis.previous import Previous
from instbench.analysis.tidy import COLUMNS

TIDY_DIR = "tidy"
AGGREGATES_DIR = "aggregates"
TIDY_CSV = "tidy.csv"
PART_FILE = "part-0.parquet"
PARTITION_COLUMNS = ("benchmark", "month")
"""Hive partition columns, in path order."""
UNKNOWN_MONTH = "unknown"
"""Month of a row without a timestamp (the schema requires one: never seen in practice)."""
_MONTH_OF_START = f"coalesce({window_name_sql('month', 'start')}, '{UNKNOWN_MONTH}')"
"""The partition's month of rows grouped by their month's start (WINDOW_START_SQL)."""

TIDY_FILE_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    (c.name, c.sql_type) for c in COLUMNS if c.name not in PARTITION_COLUMNS
)
"""(name, DuckDB type) of the columns inside a tidy partition file, in file order."""
_TIDY_ORDER = "key, test, thread_mode, metric, threads, value"
"""Order of the rows inside a tidy partition (benchmark and month are fixed there)."""


def _sql_type(hint: Any) -> str:
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    return {str: "VARCHAR", int: "BIGINT", float: "DOUBLE", bool: "BOOLEAN"}[args[0]]


SUMMARY_SQL_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    (name, _sql_type(hint)) for name, hint in typing.get_type_hints(Summary).items()
)
"""(name, DuckDB type) of every column of aggregates.csv and the window summary.csv files."""
AGGREGATES_FILE_COLUMNS = tuple(c for c in SUMMARY_SQL_COLUMNS if c[0] not in PARTITION_COLUMNS)
"""Columns inside an aggregates partition file (`window` is the month, kept in the file)."""
_AGGREGATES_ORDER = "instance_type, test, thread_mode, metric"

_PARQUET_TYPES = {
    "VARCHAR": "binary {name} (STRING)",
    "INTEGER": "int32 {name} (INTEGER(32,true))",
    "BIGINT": "int64 {name} (INTEGER(64,true))",
    "DOUBLE": "double {name}",
    "BOOLEAN": "boolean {name}",
    "TIMESTAMP": "int64 {name} (TIMESTAMP(MICROS,false))",
}


def parquet_schema(name: str, columns: Sequence[tuple[str, str]]) -> bytes:
    """The Parquet schema of a partition file, in Parquet's own message notation.

    Every column is optional (nullable); timestamps are microseconds, UTC, stored without
    a time zone (isAdjustedToUTC false), as DuckDB writes TIMESTAMP. The partition columns
    are not in the files: `partitioned by` lists them with their type (string).
    """
    lines = [f"message {name} {{"]
    lines += [f"  optional {_PARQUET_TYPES[t].format(name=n)};" for n, t in columns]
    lines.append("}")
    lines.append(f"partitioned by: {', '.join(f'{c} (STRING)' for c in PARTITION_COLUMNS)}")
    return ("\n".join(lines) + "\n").encode()


SCHEMA_FILES = {
    TIDY_DIR: "tidy-v1.parquet-schema.txt",
    AGGREGATES_DIR: "aggregates-v1.parquet-schema.txt",
}


def schema_files() -> dict[str, bytes]:
    """schemas/ files describing the partition files (path under latest/ -> bytes)."""
    return {
        f"schemas/{SCHEMA_FILES[TIDY_DIR]}": parquet_schema("tidy", TIDY_FILE_COLUMNS),
        f"schemas/{SCHEMA_FILES[AGGREGATES_DIR]}": parquet_schema(
            "aggregates", AGGREGATES_FILE_COLUMNS
        ),
    }


def partition_path(table: str, benchmark: str, month: str) -> str:
    """Path of a partition file under latest/ (`table`: TIDY_DIR or AGGREGATES_DIR)."""
    path = f"{table}/benchmark={benchmark}/month={month}/{PART_FILE}"
    if not is_partition_path(table, path):
        raise ValueError(f"not a partition value: benchmark {benchmark!r}, month {month!r}")
    return path


_PARTITION_PATH = re.compile(
    r"benchmark=[a-z0-9][a-z0-9_-]*/month=(\d{4}-\d{2}|"
    + UNKNOWN_MONTH
    + ")/"
    + re.escape(PART_FILE)
)


def is_partition_path(table: str, path: str) -> bool:
    """True for a partition file's path under latest/ and nothing else: a previous
    index.json is read from disk, and a path of it that climbs out of the table's folder
    ("tidy/../../x") must never be linked, even with a matching hash."""
    head, _, rest = path.partition("/")
    return head == table and _PARTITION_PATH.fullmatch(rest) is not None


@dataclass(frozen=True)
class Exported:
    """The tidy exports in the staging folder, and the publication's `inputs` (index.json)
    that decided whether they could be reused."""

    rows: int
    """Tidy rows, all partitions."""
    sha256: dict[str, str]
    """sha256 of every staged export file, by path under latest/."""
    partitions: dict[str, dict[str, Any]]
    """Tidy partition path -> its index.json entry fields: `rows` and `inputs` (digest)."""
    written: list[str]
    """Tidy partitions (and tidy.csv) rendered now; the others are the previous ones."""
    inputs: dict[str, Any]
    csv: bool = False
    """tidy.csv was asked for (publish --csv)."""
    aggregates: dict[str, int] = field(default_factory=dict)
    """Aggregates partition path -> rows (set by `export_aggregates`)."""

    @property
    def reused(self) -> bool:
        """Nothing rendered: every export file is the previous publication's."""
        return not self.written


def inputs_digest(con: duckdb.DuckDBPyConnection) -> str:
    """sha256 of the lines "{key} {content sha256}\n" of every accepted document, by key.

    It names the exact set of results a publication was computed from: two publications
    with the same digest (and generator) were made from the same documents. Hashed here
    as the sorted rows stream by (`reuse.documents_digest_sql`'s value, without building
    the one string of every line: 140 MB at a million results, which ran DuckDB out of a
    1 GB memory limit beside the summaries).
    """
    result = con.execute(
        "SELECT key || ' ' || sha256 || chr(10) FROM file_status WHERE status = 'ok' ORDER BY key"
    )
    digest = hashlib.sha256()
    while batch := result.fetchmany(50_000):
        digest.update("".join([line for (line,) in batch]).encode())
    return digest.hexdigest()


def partition_digests(
    con: duckdb.DuckDBPyConnection, include_sandbox: bool
) -> dict[tuple[str, str], tuple[str, int]]:
    """(benchmark, month) -> (digest of the documents with rows in it, its row count).

    The digest is `inputs_digest`'s over those documents only: a partition whose digest
    did not change holds the same rows, so its file is the same bytes. Those of months
    where no document changed are remembered in the ingest cache (digest_memo.py).
    """

    def compute(months: Collection[str] | None) -> Digests:
        return _partition_digests(con, include_sandbox, months)

    digests = memoized(
        con,
        f"partition:{include_sandbox}",
        f"coalesce({WINDOW_SQL['month']}, '{UNKNOWN_MONTH}')",
        compute,
        lambda name: name.partition("|")[2],
    )
    split = {(n.partition("|")[0], n.partition("|")[2]): v for n, v in digests.items()}
    return dict(sorted(split.items()))


def _partition_digests(
    con: duckdb.DuckDBPyConnection, include_sandbox: bool, months: Collection[str] | None
) -> Digests:
    """'benchmark|month' -> (digest, rows) of the partitions of `months` (all: None)."""
    where = publishable_filter(include_sandbox)
    params: list[object] = []
    if months is not None:
        starts = [window_start("month", m) for m in sorted(months) if m != UNKNOWN_MONTH]
        start = WINDOW_START_SQL["month"]
        where += f" AND ({start} IN (SELECT unnest(?::TIMESTAMP[]))" + (
            " OR timestamp IS NULL)" if UNKNOWN_MONTH in months else ")"
        )
        params.append(starts)
    rows = con.execute(
        f"""
        SELECT benchmark, {_MONTH_OF_START} AS month, {reuse.documents_digest_sql("sha")},
               sum(n)
        FROM (
            SELECT key, benchmark, {WINDOW_START_SQL["month"]} AS start,
                   any_value(result_sha256) AS sha, count(*) AS n
            FROM accepted_rows WHERE {where}
            GROUP BY key, benchmark, start
        )
        GROUP BY benchmark, month ORDER BY benchmark, month
        """,
        params,
    ).fetchall()
    return {f"{b}|{m}": (str(d), int(n)) for b, m, d, n in rows}


def _previous_files(previous: Previous | None) -> dict[str, dict[str, Any]]:
    files = previous.index.get("files") if previous else None
    if not isinstance(files, list):
        return {}
    return {str(f.get("path")): f for f in files if isinstance(f, dict)}


def publication_inputs(con: duckdb.DuckDBPyConnection, documents: int) -> dict[str, Any]:
    """index.json `inputs`: the accepted documents (how many, `inputs_digest`) and the
    ingest rules (`CACHE_VERSION`) they were accepted under."""
    return {"documents": documents, "sha256": inputs_digest(con), "ingest": CACHE_VERSION}


def export_tidy(
    con: duckdb.DuckDBPyConnection,
    inputs: dict[str, Any],
    include_sandbox: bool,
    previous: Previous | None,
    output: Path,
    staging: Path,
    csv: bool = False,
) -> Exported:
    """Stage the tidy partitions (and tidy.csv when `csv`): each one the previous
    publication's file when its inputs are the same and its bytes still hash to what that
    index.json recorded; else written now.

    When the publication's inputs as a whole are the previous one's, no digest per
    partition is computed: the recorded files are checked and linked as they are (a
    publication with nothing new). Reused files are hard links (a copy where links fail),
    hashed after linking so that what is checked is what gets published.
    """
    latest = staging / "latest"
    old = _previous_files(previous)
    same_inputs = previous is not None and previous.index.get("inputs") == inputs
    if same_inputs and previous is not None:
        unchanged = _reuse_all(previous.index, old, output / "latest", latest, csv, inputs)
        if unchanged is not None:
            return unchanged
    where = publishable_filter(include_sandbox)
    partitions: dict[str, dict[str, Any]] = {}
    sha: dict[str, str] = {}
    todo: list[tuple[str, str]] = []
    for (benchmark, month), (digest, rows) in partition_digests(con, include_sandbox).items():
        path = partition_path(TIDY_DIR, benchmark, month)
        partitions[path] = {"rows": rows, "inputs": digest}
        entry = old.get(path, {})
        recorded = entry.get("sha256")
        if (
            entry.get("inputs") == digest
            and entry.get("rows") == rows
            and reuse.stage_verified(output / "latest", latest, {path: recorded})
        ):
            sha[path] = str(recorded)
        else:
            todo.append((benchmark, month))
    con.execute("SET preserve_insertion_order = true")
    written = []
    for benchmark, month in todo:
        path = partition_path(TIDY_DIR, benchmark, month)
        _copy_partition(con, where, benchmark, month, latest / path)
        sha[path] = reuse.sha256_file(latest / path)
        written.append(path)
    if csv:
        entry = old.get(TIDY_CSV, {})
        if not (
            same_inputs
            and reuse.stage_verified(output / "latest", latest, {TIDY_CSV: entry.get("sha256")})
        ):
            _copy_csv(con, where, latest / TIDY_CSV)
            written.append(TIDY_CSV)
        sha[TIDY_CSV] = reuse.sha256_file(latest / TIDY_CSV)
    total = sum(int(p["rows"]) for p in partitions.values())
    return Exported(total, sha, partitions, written, inputs, csv)


def _reuse_all(
    index: Mapping[str, Any],
    old: Mapping[str, dict[str, Any]],
    source: Path,
    latest: Path,
    csv: bool,
    inputs: dict[str, Any],
) -> Exported | None:
    """Every tidy partition (and tidy.csv) as the previous index recorded it, linked and
    checked; None when one is missing, incomplete or edited since (nothing stays staged),
    or when the files listed are not as many as the partitions the index counts."""
    if any(p.startswith(f"{TIDY_DIR}/") and not is_partition_path(TIDY_DIR, p) for p in old):
        return None
    entries = {p: f for p, f in old.items() if is_partition_path(TIDY_DIR, p)}
    if csv:
        if TIDY_CSV not in old:
            return None
        entries[TIDY_CSV] = old[TIDY_CSV]
    if not all(
        isinstance(f.get("rows"), int) and isinstance(f.get("sha256"), str)
        for f in entries.values()
    ):
        return None
    partitions = {
        p: {"rows": f["rows"], "inputs": f.get("inputs")}
        for p, f in entries.items()
        if p != TIDY_CSV
    }
    partitioning = index.get("partitioning")
    tidy = partitioning.get(TIDY_DIR) if isinstance(partitioning, dict) else None
    count = tidy.get("partitions") if isinstance(tidy, dict) else None
    if count != len(partitions) or not all(
        isinstance(p["inputs"], str) for p in partitions.values()
    ):
        return None
    recorded = {p: str(f["sha256"]) for p, f in entries.items()}
    if not reuse.stage_verified(source, latest, recorded):
        return None
    total = sum(int(p["rows"]) for p in partitions.values())
    return Exported(total, recorded, partitions, [], inputs, csv)


def _month_range(month: str) -> str:
    """SQL predicate on `timestamp` for one month (a range, so DuckDB's zone maps can
    skip the row groups of other months)."""
    if month == UNKNOWN_MONTH:
        return "timestamp IS NULL"
    start = f"TIMESTAMP '{month}-01'"
    return f"timestamp >= {start} AND timestamp < {start} + INTERVAL 1 MONTH"


def _nullable(columns: Sequence[tuple[str, str]]) -> str:
    """The select list of a partition file, every column declared optional (nullable).

    DuckDB writes a column as `required` when its statistics say the rows in hand have no
    NULL, so a file's schema would depend on its rows (a month where every result recorded
    its trials, and one where some did not). The CASE makes the statistics say "may be
    NULL" without changing a value: every file then has the one schema of
    `parquet_schema` (a test checks each file's repetition types).
    """
    return ", ".join(
        f'CASE WHEN "{n}" IS NULL THEN NULL ELSE "{n}" END AS "{n}"' for n, _ in columns
    )


def _copy_partition(
    con: duckdb.DuckDBPyConnection, where: str, benchmark: str, month: str, path: Path
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = _nullable(TIDY_FILE_COLUMNS)
    con.execute(
        f"COPY (SELECT {cols} FROM accepted_rows WHERE {where} "
        f"AND benchmark = {_literal(benchmark)} AND {_month_range(month)} "
        f"ORDER BY {_TIDY_ORDER}) TO '{path.as_posix()}' (FORMAT parquet, COMPRESSION zstd)"
    )


def _literal(value: str) -> str:
    """A SQL string literal (COPY takes no prepared parameters)."""
    return "'" + value.replace("'", "''") + "'"


def _copy_csv(con: duckdb.DuckDBPyConnection, where: str, path: Path) -> None:
    """tidy.csv: every column, one file, sorted by document then figure."""
    cols = ", ".join(c.name for c in COLUMNS)
    con.execute(
        f"COPY (SELECT {cols} FROM accepted_rows WHERE {where} "
        "ORDER BY key, benchmark, test, thread_mode, metric, threads, value) "
        f"TO '{path.as_posix()}' (FORMAT csv, HEADER, TIMESTAMPFORMAT '%Y-%m-%dT%H:%M:%S.%fZ')"
    )


def export_aggregates(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    months: Sequence[str],
    kept: Collection[str] = (),
    previous: Previous | None = None,
) -> dict[str, int]:
    """Stage the aggregates partitions: path under latest/ -> rows.

    One row per group and month, the columns of aggregates.csv but the partition columns,
    from the staged monthly summaries ({root}/{YYYY}-{MM}/summary.csv). A month in `kept`
    (its window folder is the previous publication's, so its summaries are too) links the
    previous publication's partitions of that month after checking their hashes; the
    other months (and a kept one whose files fail the check) are written.
    """
    old = _previous_files(previous)
    out: dict[str, int] = {}
    todo = []
    for month in months:
        recorded = {
            p: f
            for p, f in old.items()
            if is_partition_path(AGGREGATES_DIR, p) and p.split("/")[2] == f"month={month}"
        }
        if (
            month in kept
            and recorded
            and all(isinstance(f.get("rows"), int) for f in recorded.values())
            and previous is not None
            and reuse.stage_verified(
                previous.output / "latest",
                root / "latest",
                {p: f.get("sha256") for p, f in recorded.items()},
            )
        ):
            out.update({p: int(f["rows"]) for p, f in recorded.items()})
        else:
            todo.append(month)
    files = [root / m / "summary.csv" for m in todo if (root / m / "summary.csv").exists()]
    if not files:
        return dict(sorted(out.items()))
    spec = ", ".join(f"'{n}': '{t}'" for n, t in SUMMARY_SQL_COLUMNS)
    listed = ", ".join(f"'{f.as_posix()}'" for f in files)
    cur = con.cursor()
    try:
        cur.execute("SET preserve_insertion_order = true")
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE monthly_aggregates AS SELECT * FROM "
            f"read_csv([{listed}], header=true, columns={{{spec}}}, auto_detect=false, "
            "nullstr='')"
        )
        parts = cur.execute(
            'SELECT benchmark, "window", count(*) FROM monthly_aggregates '
            'GROUP BY benchmark, "window" ORDER BY benchmark, "window"'
        ).fetchall()
        cols = _nullable(AGGREGATES_FILE_COLUMNS)
        for benchmark, month, rows in parts:
            rel = partition_path(AGGREGATES_DIR, str(benchmark), str(month))
            path = root / "latest" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            cur.execute(
                f"COPY (SELECT {cols} FROM monthly_aggregates "
                f"WHERE benchmark = {_literal(str(benchmark))} "
                f'AND "window" = {_literal(str(month))} ORDER BY {_AGGREGATES_ORDER}) '
                f"TO '{path.as_posix()}' (FORMAT parquet, COMPRESSION zstd)"
            )
            out[rel] = int(rows)
        cur.execute("DROP TABLE monthly_aggregates")
        return dict(sorted(out.items()))
    finally:
        cur.close()
