"""Publication: the files ComputeCompass fetches, and the dataset behind them.

Layout written under the output directory (replaced as a whole, never half-written):

    latest/memory-benchmarks.json   ComputeCompass contract (documents/compass.py)
    latest/cpu-benchmarks.json      ComputeCompass contract
    latest/price-performance.json   ComputeCompass contract
    latest/storage-benchmarks.json  fio per type beside advertised limits, only when
                                    storage results exist (documents/storage.py)
    latest/network-benchmarks.json  pair throughput and latency beside the advertised
                                    figures (documents/network.py)
    latest/index.json               files + sha256, versions, row counts, held-back types,
                                    ingest counts, change points (regressions, CPU-mix
                                    changes, untested series), price provenance
    latest/tidy/benchmark=B/month=YYYY-MM/part-0.parquet
                                    every published figure, one row per sample, Hive
                                    partitions (documents/exports.py, docs/querying.md)
    latest/aggregates/benchmark=B/month=YYYY-MM/part-0.parquet
                                    every group's statistics of each month
    latest/tidy.csv                 the tidy table as one CSV, only with `csv=True`
    latest/aggregates.csv, .parquet every group's statistics, all-time
    latest/quarantine.csv           every rejected file with its reason
    latest/schemas/                 JSON Schemas: result document, tidy table, the three files;
                                    Parquet schemas of the partition files
    latest/datacard.md              what each column means and how it was measured
    {YYYY}-W{WW}/summary.json|csv   weekly statistics
    {YYYY}-{MM}/summary.json|csv    monthly statistics

A publication runs one way, one stage after the other, each taking the previous one's
result and never calling back:

    ingest      analysis/ingest.py: the mirror as a DuckDB dataset; analysis/previous.py:
                what of the previous publication may be reused (read and hash-checked)
    summarize   analysis/summarize.py: statistics all-time and per window, change
                points over whole series (changes.py), the facts the documents cite
    documents   analysis/documents/: one module per contract (compass, windows, exports,
                index + datacard), bytes in memory (the exports: DuckDB into staging)
    write       analysis/write.py: staged, kept files linked, swapped in by renames

Determinism: keys sorted, rows sorted, floats rounded to 6 significant digits, and
`lastUpdated` is the newest published measurement, not the wall clock, so publishing the
same mirror twice gives identical bytes.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instbench.analysis import changes, compass_schema
from instbench.analysis.documents.compass import compass_documents
from instbench.analysis.documents.exports import export_aggregates, export_tidy, schema_files
from instbench.analysis.documents.index import index_document, tidy_schema
from instbench.analysis.documents.jsonform import (
    SUMMARY_COLUMNS,
    csv_bytes,
    dumps,
    summary_rows,
)
from instbench.analysis.documents.network import network_files
from instbench.analysis.documents.storage import storage_files
from instbench.analysis.documents.windows import window_documents
from instbench.analysis.ingest import Dataset
from instbench.analysis.previous import read_previous
from instbench.analysis.summarize import summarize_publication
from instbench.analysis.write import Staging, check_output
from instbench.errors import StorageError, UserError
from instbench.prices import PriceSet
from instbench.results.jsonschema import SCHEMA_PATH


@dataclass(frozen=True)
class Publication:
    """What was written: the index (also in latest/index.json) and the output root."""

    output: Path
    index: dict[str, Any]
    reused_exports: bool = False
    """Every tidy export file was the previous publication's (same inputs), none written."""
    partitions_written: int = 0
    """Tidy partitions rendered now (the others were linked from the previous publication)."""
    partitions: int = 0
    """Tidy partitions published."""


def publish(
    dataset: Dataset,
    output: Path,
    *,
    include_sandbox: bool = False,
    prices: PriceSet | None = None,
    min_effect: float = changes.MIN_EFFECT,
    csv: bool = False,
) -> Publication:
    """Write the whole publication into `output` (see the module docstring).

    `min_effect`: the smallest relative change of a mean reported as a change point
    (changes.py; printed in index.json `changeDetection`); `csv` adds latest/tidy.csv
    (the whole tidy table as one file: for small datasets)."""
    if not 0.0 <= min_effect < 1.0:
        raise UserError(f"--min-effect must be a fraction in [0, 1), not {min_effect}")
    check_output(output)
    previous = read_previous(output, include_sandbox)
    # The tidy exports (DuckDB, which releases the GIL) are rendered by a thread on a
    # connection of its own, from the start: they overlap the summaries' SQL and the
    # other documents' rendering (pure Python) on 2 cores.
    exporter = dataset.con.cursor()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="export")
    try:
        with Staging(output) as staging:
            tidy = pool.submit(
                export_tidy,
                exporter,
                dataset.report.accepted,
                include_sandbox,
                previous,
                output,
                staging.root,
                csv,
            )
            try:
                summarized = summarize_publication(dataset, include_sandbox, previous, min_effect)
                compass = compass_documents(
                    summarized.summaries, summarized.toolchains, summarized.header, prices
                )
                windows = window_documents(summarized.windows)
                rows = summary_rows(summarized.summaries)
                report = dataset.report
                latest: dict[str, bytes] = {
                    **{name: dumps(doc) for name, doc in compass.documents.items()},
                    **{
                        f"schemas/{compass_schema.SCHEMA_FILES[name]}": (
                            compass_schema.schema_bytes(name)
                        )
                        for name in compass.documents
                    },
                    "aggregates.csv": csv_bytes(rows, SUMMARY_COLUMNS),
                    "quarantine.csv": csv_bytes(
                        [{"key": k, "reason": r} for k, r in report.rejections],
                        ["key", "reason"],
                    ),
                    "schemas/result-v1.schema.json": SCHEMA_PATH.read_bytes(),
                    "schemas/tidy-v1.schema.json": dumps(tidy_schema()),
                    **storage_files(summarized.summaries, summarized.last),
                    **network_files(summarized.summaries, summarized.header),
                    **schema_files(),
                }
                staging.write({f"latest/{rel}": data for rel, data in latest.items()})
                staging.parquet_of_csv(
                    dataset.con, "latest/aggregates.csv", "latest/aggregates.parquet"
                )
                staging.keep(windows.kept)
                staging.write(windows.files)
                monthly = export_aggregates(
                    dataset.con,
                    staging.root,
                    windows.names.get("monthly", []),
                    windows.kept,
                    previous,
                )
                exported = dataclasses.replace(tidy.result(), aggregates=monthly)
            finally:
                if not tidy.done():
                    exporter.interrupt()  # failed before the exports were needed: stop them
                pool.shutdown(wait=True)
            index, card = index_document(
                summarized,
                compass,
                windows,
                exported,
                report,
                include_sandbox,
                staging.latest_files(exported.sha256),
            )
            staging.write({"latest/datacard.md": card, "latest/index.json": dumps(index)})
            staging.swap()
    except OSError as exc:
        raise StorageError(
            f"cannot write the publication to {output}: {exc.strerror or exc}"
        ) from exc
    finally:
        exporter.close()
    return Publication(
        output=output,
        index=index,
        reused_exports=exported.reused,
        partitions_written=sum(1 for p in exported.written if p in exported.partitions),
        partitions=len(exported.partitions),
    )
