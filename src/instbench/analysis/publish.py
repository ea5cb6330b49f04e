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

Nothing new, nothing written: index.json records `sourceDigest`, the sha256 of everything
the publication is made from (`source_digest`). When the previous publication in `output`
has the one this publication would have, and every one of its files still hashes to what
its index recorded, with no file more or less, it is left as it is: publishing again
would write the same bytes. At 100,000 results that is 0.5 s instead of a second.

Determinism: keys sorted, rows sorted, floats rounded to 6 significant digits, and
`lastUpdated` is the newest published measurement, not the wall clock, so publishing the
same mirror twice gives identical bytes.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from instbench.analysis import changes, compass_schema
from instbench.analysis.documents.compass import compass_documents
from instbench.analysis.documents.exports import (
    Exported,
    export_aggregates,
    export_tidy,
    publication_inputs,
    schema_files,
)
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
from instbench.analysis.generator import GENERATOR, PUBLICATION_VERSION, generator_digest
from instbench.analysis.ingest import Dataset, IngestReport
from instbench.analysis.previous import Previous, read_previous
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
    unchanged: bool = False
    """The previous publication was made from the same sources and was intact: it was
    left as it is, nothing written (`Previous.unchanged`)."""


def source_digest(
    inputs: dict[str, Any],
    report: IngestReport,
    *,
    include_sandbox: bool,
    prices: PriceSet | None,
    min_effect: float,
    csv: bool,
) -> str:
    """index.json `sourceDigest`: sha256 of everything a publication's bytes are a
    function of. The accepted documents (`inputs`), the ingest counts and every rejected
    file with its reason (quarantine.csv), the options, the prices, and the code
    (`generatorDigest`); the clock is not one of them (see the module docstring)."""
    material = {
        "generator": GENERATOR,
        "generatorDigest": generator_digest(),
        "publicationFormat": PUBLICATION_VERSION,
        "inputs": inputs,
        "ingest": [report.files, report.accepted, report.duplicates, report.rejected],
        "rejections": report.rejections,
        "includeSandbox": include_sandbox,
        "minEffect": min_effect,
        "csv": csv,
        "prices": prices.to_json() if prices is not None else None,
    }
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _may_be_unchanged(previous: Previous | None, report: IngestReport) -> bool:
    """The previous publication counted the same files (cheap, before any digest): a
    sync that brought anything fails here, and the inputs digest is then computed on
    the export thread, beside the summaries, not before them."""
    if previous is None:
        return False
    counts = previous.index.get("ingest")
    return isinstance(counts, dict) and [
        counts.get(k) for k in ("files", "accepted", "duplicates", "rejected")
    ] == [report.files, report.accepted, report.duplicates, report.rejected]


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
    report = dataset.report
    inputs: dict[str, Any] | None = None
    if previous is not None and _may_be_unchanged(previous, report):
        inputs = publication_inputs(dataset.con, report.accepted)
        source = source_digest(
            inputs,
            report,
            include_sandbox=include_sandbox,
            prices=prices,
            min_effect=min_effect,
            csv=csv,
        )
        if previous.unchanged(source):
            partitioning = previous.index.get("partitioning")
            tidy = partitioning.get("tidy") if isinstance(partitioning, dict) else None
            count = tidy.get("partitions") if isinstance(tidy, dict) else None
            return Publication(
                output=output,
                index=previous.index,
                reused_exports=True,
                partitions=count if isinstance(count, int) else 0,
                unchanged=True,
            )
    # The tidy exports (DuckDB, which releases the GIL) are rendered by a thread on a
    # connection of its own, from the start: they overlap the summaries' SQL and the
    # other documents' rendering (pure Python) on 2 cores.
    exporter = dataset.con.cursor()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="export")
    try:
        with Staging(output) as staging:
            tidy = pool.submit(
                _export_tidy,
                exporter,
                inputs,
                report.accepted,
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
            source = source_digest(
                exported.inputs,
                report,
                include_sandbox=include_sandbox,
                prices=prices,
                min_effect=min_effect,
                csv=csv,
            )
            index, card = index_document(
                summarized,
                compass,
                windows,
                exported,
                report,
                include_sandbox,
                staging.latest_files(exported.sha256),
                source,
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


def _export_tidy(
    con: duckdb.DuckDBPyConnection,
    inputs: dict[str, Any] | None,
    documents: int,
    include_sandbox: bool,
    previous: Previous | None,
    output: Path,
    staging: Path,
    csv: bool,
) -> Exported:
    """export_tidy on the export thread, with the publication's inputs computed there
    when they were not yet (`inputs_digest` reads every accepted document's key)."""
    if inputs is None:
        inputs = publication_inputs(con, documents)
    return export_tidy(con, inputs, include_sandbox, previous, output, staging, csv)
