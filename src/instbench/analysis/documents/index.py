"""index.json and datacard.md: what a publication holds and how to read it, and the JSON
Schema of the tidy table.

Documents stage: built from the other documents' outcomes and the table of files the
write stage staged (paths, sizes, sha256), so index.json describes exactly the bytes
that are published.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from instbench.analysis import changes, compass_schema
from instbench.analysis.documents import network
from instbench.analysis.documents.compass import CPU_FILE, MEMORY_FILE, PRICE_FILE, CompassDocuments
from instbench.analysis.documents.exports import (
    AGGREGATES_DIR,
    PARTITION_COLUMNS,
    SCHEMA_FILES,
    TIDY_CSV,
    TIDY_DIR,
    Exported,
)
from instbench.analysis.documents.jsonform import num
from instbench.analysis.documents.windows import WindowDocuments
from instbench.analysis.generator import GENERATOR, PUBLICATION_VERSION, generator_digest
from instbench.analysis.ingest import IngestReport
from instbench.analysis.summarize import Summarized
from instbench.analysis.tidy import COLUMN_NAMES, COLUMNS, METRICS
from instbench.results.schema import DATA_VERSION


def tidy_schema() -> dict[str, Any]:
    """JSON Schema of one row of the tidy export (generated from tidy.COLUMNS)."""
    types = {
        "VARCHAR": "string",
        "INTEGER": "integer",
        "BIGINT": "integer",
        "DOUBLE": "number",
        "BOOLEAN": "boolean",
        "TIMESTAMP": "string",
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://instbench.dev/schemas/tidy-v1.schema.json",
        "title": "instbench tidy row",
        "type": "object",
        "properties": {
            c.name: {"type": [types[c.sql_type], "null"], "description": c.description}
            for c in COLUMNS
        },
        "required": list(COLUMN_NAMES),
        "additionalProperties": False,
    }


def _storage_card(index: dict[str, Any]) -> list[str]:
    """The datacard's paragraph on storage-benchmarks.json, when the publication has it."""
    if not any(f["path"] == "storage-benchmarks.json" for f in index["files"]):
        return []
    return [
        "## storage-benchmarks.json",
        "",
        "fio 4 KiB random read/write at queue depth 1 and 32 and 1 MiB sequential read/write,",
        "all with O_DIRECT (fio's own job options are recorded per job), after the test area",
        "was written once. Per type, target role (ebs: an empty gp3 data volume attached at",
        "launch; instance-store: each NVMe instance-store disk) and job: iops, throughput",
        "(MB/s = 10^6 bytes/s), clat_p50/p99/p99_9 (completion latency, µs), limit_ratio",
        "(measured / advertised ceiling), and under job `advertised` the ceilings themselves",
        "(min of the volume's provisioned figure and the type's EBS-optimized maximum).",
        "On types whose EBS baseline throughput is below their maximum, jobs `burst` and",
        "`sustained` under ebs: one long 1 MiB sequential write sampled each second, its",
        "burst and sustained MB/s (limit_ratio: burst / maximum, sustained / baseline) and",
        "`burst` seconds_until_fall (only where it fell; the jobs before it had already",
        "spent part of the allowance). --quick burst runs are never published.",
        "Schema: schemas/storage-benchmarks-v1.schema.json.",
        "",
    ]


def datacard(index: dict[str, Any]) -> str:
    """The datacard: what the dataset is, each column, each metric, how it was measured."""
    lines = [
        "# instbench dataset — datacard",
        "",
        f"Publication format {PUBLICATION_VERSION}, result data_version {DATA_VERSION}, "
        f"last measurement {index['lastUpdated'] or 'none'}.",
        "",
        "## What it is",
        "",
        "Benchmarks of AWS EC2 instance types measured by instbench on real instances. Each",
        "result document (one instance, one run) is validated against the published JSON",
        "Schema and plausibility rules before it counts; rejected files are listed in",
        "quarantine.csv with the reason. Sandbox, local and quick-mode results are not part of",
        "a real publication. A figure is the mean over independent instances (samples) of",
        "each instance's best-of-trials value; its 95 % interval is a Student t interval of",
        "that mean (docs/statistics.md explains the choice).",
        "",
        "## ComputeCompass files",
        "",
        "memory-benchmarks.json, cpu-benchmarks.json and price-performance.json are validated",
        "against the JSON Schemas in schemas/ (computecompass-*-v1.schema.json) before they",
        "are written. A type appears in one only when every field the client requires was",
        "measured; index.json `heldBack` lists the others with what they lack. The cpu file's",
        "`coremark` object comes only from real EEMBC CoreMark (a type without it is held",
        "back from that file); `scaling` is instbench-int, our own integer kernel, and is",
        "never labelled CoreMark. Units and meanings: docs/computecompass.md.",
        "",
        *_storage_card(index),
        *network.DATACARD_LINES,
        "## Counts",
        "",
        f"- files under raw/: {index['ingest']['files']}",
        f"- accepted documents (duplicates counted once): {index['ingest']['accepted']}",
        f"- duplicates: {index['ingest']['duplicates']}",
        f"- rejected (quarantined): {index['ingest']['rejected']}",
        f"- excluded from publication: {index['ingest']['excluded'] or 'none'}",
        "",
        "## Files of the dataset",
        "",
        "The tidy table (one row per figure of one result) and the monthly aggregates are",
        "Parquet files partitioned by benchmark and month, Hive style:",
        "`tidy/benchmark=stream/month=2025-03/part-0.parquet`, and the same under",
        "`aggregates/`. DuckDB, Athena, Spark, Trino and pyarrow read the folder as one",
        "table (docs/querying.md has the statements); the partition columns `benchmark` and",
        "`month` (YYYY-MM of `timestamp`, UTC) are in the paths, not in the files. Rows are",
        "sorted within a partition; the files' Parquet schemas are in schemas/",
        f"({SCHEMA_FILES[TIDY_DIR]}, {SCHEMA_FILES[AGGREGATES_DIR]}) and a tidy row's JSON",
        "Schema in schemas/tidy-v1.schema.json. index.json lists every partition file with",
        "its rows, sha256 and `inputs` (the digest of the documents it holds): a",
        "republication rewrites only the partitions whose documents changed.",
        "",
        "## Provenance",
        "",
        "index.json `generatorDigest` is the sha256 of the instbench package that made this",
        "publication (its files, path and bytes); `sourceDigest` the sha256 of everything",
        "the publication was made from: the accepted documents (`inputs`), the rejected",
        "files with their reasons, the options, the prices and that code. Publishing the",
        "same sources again leaves an intact publication as it is; nothing of a publication",
        "made by other code is ever reused.",
        "",
        f"A single `{TIDY_CSV}` of the whole tidy table is written only on request",
        "(`instbench publish --csv`): at 100,000 results it is 390 MB, and the partitions",
        f"hold the same rows. This publication {'has' if index['tidyCsv'] else 'has no'}",
        f"{TIDY_CSV}.",
        "",
        "## Columns of the tidy table",
        "",
        "| column | type | meaning |",
        "|---|---|---|",
        *(f"| `{c.name}` | {c.sql_type} | {c.description} |" for c in COLUMNS),
        "",
        "## Metrics",
        "",
        "| metric | unit | better | meaning |",
        "|---|---|---|---|",
        *(
            f"| `{m.name}` | {m.unit} | {'higher' if m.higher_is_better else 'lower'} | "
            f"{m.description} |"
            for m in METRICS.values()
        ),
        "",
        "## Columns of aggregates.csv",
        "",
        "aggregates.csv and aggregates.parquet: one row per instance type x benchmark x",
        "test x thread mode x metric over all time (`window` 'all'); the partitions under",
        "aggregates/ hold the same columns per month (`window` is the month). `n` counts",
        "instances; `mean`, `median`, `sd`, `cv`, `min`, `max` describe the spread between",
        "instances; `ci_low`/`ci_high` the 95 % t interval of the mean (n >= 2);",
        "`median_ci_low`/`median_ci_high` the distribution-free interval of the median",
        "(n >= 6); `within_sd`/`within_cv` the pooled spread of trials inside one instance;",
        "`per_vcpu`, `per_gib` the mean divided by the machine's vCPUs and memory (GiB).",
        "",
        "## Change points (index.json)",
        "",
        "Each series (type x benchmark x test x thread mode x metric) is searched as a whole",
        "over its weekly windows, within one CPU model at a time. `regressions` and",
        "`improvements` list each change once, at the first window after it, with the",
        "relative change of the mean and its 95 % interval; `cpuMixChanges` the changes",
        "explained by a change of the CPU models behind a type; `untested` every series",
        "that had too few samples, with the reason; `changeDetection` the method and its",
        "thresholds (minimum effect, false-discovery rate). docs/statistics.md section 4.",
        "",
    ]
    return "\n".join(lines)


def change_index(report: changes.ChangeReport) -> dict[str, Any]:
    """index.json's change-detection entries: settings, the changes (worse ones under
    `regressions`), CPU-mix changes reported instead of regressions, untested series."""

    def record(d: dict[str, Any]) -> dict[str, Any]:
        return {k: num(v) if isinstance(v, float) else v for k, v in d.items()}

    return {
        "changeDetection": report.settings(),
        "regressions": [record(c.as_dict()) for c in report.regressions],
        "improvements": [record(c.as_dict()) for c in report.improvements],
        "cpuMixChanges": [record(m.as_dict()) for m in report.mix_changes],
        "untested": [record(u.as_dict()) for u in report.untested],
    }


@dataclass(frozen=True)
class StagedFile:
    """One file of latest/ as staged: its path under latest/, size and sha256."""

    path: str
    bytes: int
    sha256: str


def index_document(
    summarized: Summarized,
    compass: CompassDocuments,
    windows: WindowDocuments,
    exported: Exported,
    report: IngestReport,
    include_sandbox: bool,
    staged: Sequence[StagedFile],
    source: str,
) -> tuple[dict[str, Any], bytes]:
    """(index.json, datacard.md bytes). `staged` lists every file of latest/ but these two;
    the datacard is listed in the index, the index of course not. `source`: the
    publication's sourceDigest (publish.source_digest)."""
    docs = compass.documents
    tidy_rows = exported.rows
    n_summaries = len(summarized.summaries)
    counts: dict[str, dict[str, Any]] = {
        MEMORY_FILE: {"instances": len(docs[MEMORY_FILE]["instances"])},
        CPU_FILE: {"instances": len(docs[CPU_FILE]["instances"])},
        PRICE_FILE: {"instances": len(docs[PRICE_FILE]["instances"])},
        TIDY_CSV: {"rows": tidy_rows},
        **exported.partitions,
        **{path: {"rows": rows} for path, rows in exported.aggregates.items()},
        "aggregates.csv": {"rows": n_summaries},
        "aggregates.parquet": {"rows": n_summaries},
        "quarantine.csv": {"rows": len(report.rejections)},
    }
    header = summarized.header
    index: dict[str, Any] = {
        "version": header["version"],
        "lastUpdated": summarized.last,
        "publicationFormat": PUBLICATION_VERSION,
        "dataVersion": DATA_VERSION,
        "generator": GENERATOR,
        "generatorDigest": generator_digest(),
        "includeSandbox": include_sandbox,
        "inputs": exported.inputs,
        "sourceDigest": source,
        "partitioning": {
            table: {
                "by": list(PARTITION_COLUMNS),
                "partitions": len(parts),
                "rows": sum(int(p["rows"]) for p in parts.values()),
                "schema": f"schemas/{SCHEMA_FILES[table]}",
            }
            for table, parts in (
                (TIDY_DIR, exported.partitions),
                (AGGREGATES_DIR, {k: {"rows": v} for k, v in exported.aggregates.items()}),
            )
        },
        "tidyCsv": exported.csv,
        "files": [
            {"path": f.path, "bytes": f.bytes, "sha256": f.sha256, **counts.get(f.path, {})}
            for f in staged
        ],
        "heldBack": compass.held,
        "schemas": {
            name: {
                "path": f"schemas/{compass_schema.SCHEMA_FILES[name]}",
                "version": compass_schema.SCHEMA_VERSION,
            }
            for name in docs
        },
        "ingest": {
            "files": report.files,
            "accepted": report.accepted,
            "duplicates": report.duplicates,
            "rejected": report.rejected,
            "excluded": summarized.excluded,
        },
        **change_index(summarized.changes),
        "windows": windows.names,
        "windowDigests": windows.digests,
        "prices": docs[PRICE_FILE]["prices"],
    }
    card = datacard(index).encode()
    index["files"].append(
        {"path": "datacard.md", "bytes": len(card), "sha256": hashlib.sha256(card).hexdigest()}
    )
    index["files"].sort(key=lambda f: f["path"])
    return index, card
