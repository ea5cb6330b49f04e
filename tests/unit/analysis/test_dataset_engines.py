"""The published partitions read by other engines: DuckDB's hive_partitioning and
pyarrow.dataset give back exactly our tidy rows and monthly summaries (docs/querying.md).

"Exactly": every value compared with ==, floats included; the tidy rows against the
ingested table itself, the aggregates against `summarize(window="month")` as published.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from tests.factories import legacy_document, result_document, store_documents
from tests.unit.analysis.test_compass_documents import full_document

from instbench.analysis.aggregate import summarize
from instbench.analysis.documents.exports import (
    AGGREGATES_FILE_COLUMNS,
    TIDY_FILE_COLUMNS,
    parquet_schema,
)
from instbench.analysis.documents.jsonform import summary_rows
from instbench.analysis.ingest import ingest
from instbench.analysis.publish import publish
from instbench.analysis.tidy import COLUMN_NAMES

T0 = datetime(2025, 2, 24, 9, 0, tzinfo=UTC)


def _mirror(root: Path) -> None:
    docs = [
        full_document("m7i.large", sample=i, run_id="feb", timestamp=T0 + timedelta(days=i))
        for i in range(4)
    ]  # 24 Feb - 27 Feb
    docs += [
        full_document("c7g.large", sample=i, run_id="mar", timestamp=T0 + timedelta(days=8 + i))
        for i in range(3)
    ]  # March; Graviton: LINPACK without efficiency, other vector tests
    docs += [
        result_document(
            "m7i.large", bandwidth_gbps=39.0 + i, sample=9 + i, timestamp=T0 + timedelta(days=40)
        )
        for i in range(2)
    ]  # April, STREAM only
    store_documents(root, docs)
    legacy = json.dumps(
        legacy_document("r7i.large", triad_gbps=33.3, timestamp="2025-03-04T10:00:00Z")
    )
    folder = root / "raw/stream/r7i.large/us-west-2/2025/03/04"
    folder.mkdir(parents=True)
    (folder / "legacy.json").write_text(legacy)


def _published(tmp_path: Path) -> tuple[Path, list[dict[str, Any]], list[dict[str, Any]]]:
    """(latest/, our tidy rows, our monthly summaries as published), each sorted."""
    mirror, out = tmp_path / "mirror", tmp_path / "out"
    _mirror(mirror)
    with ingest(mirror) as ds:
        publish(ds, out)
        cols = ", ".join(COLUMN_NAMES)
        cur = ds.con.execute(
            f"SELECT {cols}, strftime(timestamp, '%Y-%m') AS month FROM accepted_rows "
            "WHERE collection_method = 'aws' AND NOT quick"
        )
        names = [d[0] for d in cur.description]
        tidy = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        monthly = summary_rows(summarize(ds.con, window="month"))
    for row in monthly:
        row["month"] = row["window"]
    return out / "latest", _sorted(tidy), _sorted(monthly)


def _sorted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def test_duckdb_and_pyarrow_read_exactly_our_rows(tmp_path: Path) -> None:
    latest, tidy, monthly = _published(tmp_path)
    benchmarks = {(r["benchmark"], r["month"]) for r in tidy}
    assert {b for b, _ in benchmarks} == {"stream", "latency", "linpack", "cpu"}
    assert {m for _, m in benchmarks} == {"2025-02", "2025-03", "2025-04"}
    for table, ours in (("tidy", tidy), ("aggregates", monthly)):
        glob = f"{(latest / table).as_posix()}/**/*.parquet"
        with duckdb.connect() as con:
            cur = con.execute(f"SELECT * FROM read_parquet('{glob}', hive_partitioning = true)")
            names = [d[0] for d in cur.description]
            by_duckdb = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        by_arrow = (
            pads.dataset(latest / table, format="parquet", partitioning="hive")
            .to_table()
            .to_pylist()
        )
        assert ours
        assert _sorted(by_duckdb) == ours, table
        assert _sorted(by_arrow) == ours, table
    # Spot check that "exactly" includes the floats' last digits.
    assert any(r["trial_sd"] is not None and len(repr(r["trial_sd"])) > 12 for r in tidy)


def test_every_partition_file_has_the_published_parquet_schema(tmp_path: Path) -> None:
    latest, _, _ = _published(tmp_path)
    physical = {"binary": "BYTE_ARRAY", "int32": "INT32", "int64": "INT64"}
    for table, columns in (("tidy", TIDY_FILE_COLUMNS), ("aggregates", AGGREGATES_FILE_COLUMNS)):
        published = (latest / "schemas" / f"{table}-v1.parquet-schema.txt").read_bytes()
        assert published == parquet_schema(table, columns)
        fields = [
            line.strip().rstrip(";").split()
            for line in published.decode().splitlines()
            if line.startswith("  optional ")
        ]
        files = sorted((latest / table).rglob("*.parquet"))
        assert len(files) >= 6
        for path in files:
            schema = pq.ParquetFile(path).schema
            assert [schema.column(i).name for i in range(len(schema))] == [f[2] for f in fields]
            for i, (_, kind, name, *logical) in enumerate(fields):
                col = schema.column(i)
                assert col.max_definition_level == 1, f"{path}: {name} is not optional"
                assert col.physical_type == physical.get(kind, kind.upper()), name
                if logical and logical[0].startswith("(TIMESTAMP"):
                    t = json.loads(col.logical_type.to_json())
                    assert (t["Type"], t["timeUnit"], t["isAdjustedToUTC"]) == (
                        "Timestamp",
                        "microseconds",
                        False,
                    )


def test_partitions_are_sorted_within(tmp_path: Path) -> None:
    latest, _, _ = _published(tmp_path)
    order = ["key", "test", "thread_mode", "metric", "threads", "value"]
    for path in sorted((latest / "tidy").rglob("*.parquet")):
        rows = pq.read_table(path, columns=order).to_pylist()
        keys = [tuple((r[c] is None, r[c]) for c in order) for r in rows]  # NULLS LAST
        assert keys == sorted(keys), path


@pytest.mark.parametrize("limit", ["64MB"])
def test_a_memory_limit_bounds_duckdb_and_changes_no_byte(tmp_path: Path, limit: str) -> None:
    _mirror(tmp_path / "mirror")
    with ingest(tmp_path / "mirror") as ds:
        publish(ds, tmp_path / "free")
    with ingest(tmp_path / "mirror", memory_limit=limit) as ds:
        setting = ds.con.execute("SELECT current_setting('memory_limit')").fetchone()
        publish(ds, tmp_path / "bounded")
    assert setting is not None and setting[0] in ("61.0 MiB", "64.0 MB", "61.0MiB")

    def tree(root: Path) -> dict[str, bytes]:
        return {
            p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()
        }

    assert tree(tmp_path / "bounded") == tree(tmp_path / "free")
