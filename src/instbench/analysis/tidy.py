"""The tidy (long) table: one row per measured figure of one result document.

Why long and not wide: every benchmark adds figures (STREAM kernels x thread modes today;
cache levels, LINPACK, CPU scores next), and a long table takes them without a schema
change: a new benchmark is one extractor function registered in `EXTRACTORS` and, if its
metric is new, one entry in `METRICS`. DuckDB then aggregates every benchmark with the
same GROUP BY (instance_type, benchmark, test, thread_mode, metric).

`COLUMNS` is the single definition of the table: the ingest cache, the Parquet and CSV
exports, the JSON Schema of the export and the datacard are all generated from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from instbench.results.schema import STREAM_KERNELS, ResultDocument


@dataclass(frozen=True)
class Column:
    """One column of the tidy table: name, DuckDB type, meaning for the datacard."""

    name: str
    sql_type: str
    description: str


COLUMNS: tuple[Column, ...] = (
    Column("result_sha256", "VARCHAR", "sha256 of the canonical JSON of the source document."),
    Column("key", "VARCHAR", "Storage key of the raw document under the mirror (raw/...)."),
    Column(
        "source_format",
        "VARCHAR",
        "'instbench-1' for this project's documents, 'go-collector-1.0.0' for converted "
        "results of the earlier Go collector.",
    ),
    Column("instance_type", "VARCHAR", "EC2 instance type measured."),
    Column("region", "VARCHAR", "AWS region of the instance."),
    Column("availability_zone", "VARCHAR", "Availability zone, when known."),
    Column("run_id", "VARCHAR", "Run the result belongs to."),
    Column("sample", "INTEGER", "Index of the instance among the run's samples of this type."),
    Column("timestamp", "TIMESTAMP", "When the benchmark finished (UTC)."),
    Column(
        "collection_method",
        "VARCHAR",
        "aws (real EC2), sandbox (simulated cloud, never published as real), local.",
    ),
    Column("quick", "BOOLEAN", "Quick mode (small arrays, few trials): never published."),
    Column("market", "VARCHAR", "on-demand or spot, when known."),
    Column("architecture", "VARCHAR", "x86_64 or arm64, as the machine reported it."),
    Column("manufacturer", "VARCHAR", "CPU manufacturer (Intel, AMD, AWS, ...)."),
    Column("cpu_model", "VARCHAR", "CPU model name the OS reported; null for converted results."),
    Column("vcpus", "INTEGER", "Logical CPUs of the machine (null for converted results)."),
    Column(
        "memory_gib",
        "DOUBLE",
        "MemTotal of the machine in GiB (2^30 bytes); a little below the nominal size, as "
        "the kernel reserves some. Null for converted results.",
    ),
    Column("sockets", "INTEGER", "CPU sockets the machine reported."),
    Column("numa_nodes", "INTEGER", "NUMA nodes online."),
    Column("compiler", "VARCHAR", "Compiler version line that built the kernel."),
    Column("cflags", "VARCHAR", "Compiler flags, space-separated."),
    Column("benchmark", "VARCHAR", "Benchmark: stream (later: latency, linpack, cpu)."),
    Column("test", "VARCHAR", "Part of the benchmark: STREAM kernel (copy/scale/add/triad), ..."),
    Column("thread_mode", "VARCHAR", "all (every online CPU) or single (one thread)."),
    Column("threads", "INTEGER", "Threads used."),
    Column("metric", "VARCHAR", "What `value` measures (see the metrics table)."),
    Column("unit", "VARCHAR", "Unit of `value`."),
    Column("value", "DOUBLE", "The figure of this sample (for STREAM: best-of-trials bandwidth)."),
    Column("trials", "INTEGER", "Counted trials behind `value` (null when not recorded)."),
    Column(
        "trial_mean", "DOUBLE", "Mean over the trials of the per-trial figure (within-instance)."
    ),
    Column(
        "trial_sd",
        "DOUBLE",
        "Sample standard deviation over the trials of the per-trial figure "
        "(within-instance spread; null with fewer than 2 trials).",
    ),
)

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)


@dataclass(frozen=True)
class Metric:
    """A kind of figure: its unit and which direction is better (for the regression flag)."""

    name: str
    unit: str
    higher_is_better: bool
    description: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "bandwidth",
            "GB/s",
            True,
            "STREAM bandwidth: counted bytes / fastest trial time, 10^9 bytes/s.",
        ),
        Metric("latency", "ns", False, "Load-to-use latency of a pointer chase, nanoseconds."),
        Metric("gflops", "GFLOPS", True, "Double-precision floating-point rate."),
    )
}


Row = dict[str, Any]


def mean_sd(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation in floating point (two-pass, fsum).

    `statistics.stdev` is exact (it sums Fractions) and costs ~0.3 ms per call: ingest
    calls this 16 times per document, so the float version keeps ingest fast; for trial
    series of well-conditioned positive rates the two agree to ~1e-15 relative.
    """
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, None
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))


Extractor = Callable[[Any, Row], Iterator[Row]]
"""(benchmark section of performance_data, document-level columns) -> figure rows."""


def _stream_rows(section: Any, base: Row) -> Iterator[Row]:
    for run in section.runs:
        for name in STREAM_KERNELS:
            k = run.kernels[name]
            trial_rates = [k.bytes_per_trial / t / 1e9 for t in k.trial_times_s]
            mean, sd = mean_sd(trial_rates)
            yield {
                **base,
                "benchmark": "stream",
                "test": name,
                "thread_mode": run.thread_mode,
                "threads": run.threads,
                "metric": "bandwidth",
                "unit": "GB/s",
                "value": k.best_gbps,
                "trials": len(trial_rates),
                "trial_mean": mean,
                "trial_sd": sd,
            }


LATENCY_LEVELS = ("l1", "l2", "l3", "memory")


def _latency_rows(section: Any, base: Row) -> Iterator[Row]:
    """Rows of the latency/cache benchmark.

    Reads `performance_data.latency.{l1,l2,l3,memory}` (LatencyResult's shortcuts to
    `levels.*`), each None or an object with `latency_ns` (dependent pointer chase, ns per
    load) and `bandwidth_gbps` (single-thread read bandwidth at that level, GB/s). Optional
    `threads` (default 1) and `trials` (per-trial latency_ns) are used when present. A
    level that is missing produces no row, so the type is held back from
    memory-benchmarks.json naming that level (publish.MEMORY_FIELDS).
    """
    for level in LATENCY_LEVELS:
        part = getattr(section, level, None)
        if part is None:
            continue
        threads = int(getattr(part, "threads", 1) or 1)
        trials = list(getattr(part, "trials", None) or [])
        for metric, attr, unit in (
            ("latency", "latency_ns", "ns"),
            ("bandwidth", "bandwidth_gbps", "GB/s"),
        ):
            value = getattr(part, attr, None)
            if value is None:
                continue
            yield {
                **base,
                "benchmark": "latency",
                "test": level,
                "thread_mode": "single" if threads == 1 else "all",
                "threads": threads,
                "metric": metric,
                "unit": unit,
                "value": float(value),
                "trials": len(trials) if metric == "latency" and trials else None,
                "trial_mean": mean_sd(trials)[0] if metric == "latency" and trials else None,
                "trial_sd": mean_sd(trials)[1] if metric == "latency" and trials else None,
            }


EXTRACTORS: dict[str, Extractor] = {"stream": _stream_rows, "latency": _latency_rows}
"""performance_data section name -> extractor. Add one line per new benchmark."""


def document_columns(doc: ResultDocument, key: str, sha256: str) -> Row:
    """The columns every row of `doc` shares (who, where, when, on what machine)."""
    meta, system, ctx = doc.metadata, doc.system_info, doc.execution_context
    return {
        "result_sha256": sha256,
        "key": key,
        "source_format": "instbench-1",
        "instance_type": meta.instance_type,
        "region": meta.region,
        "availability_zone": meta.availability_zone,
        "run_id": meta.run_id,
        "sample": meta.sample,
        "timestamp": meta.timestamp,
        "collection_method": meta.collection_method,
        "quick": meta.quick,
        "market": meta.market,
        "architecture": system.architecture,
        "manufacturer": system.cpu.manufacturer,
        "cpu_model": system.cpu.model_name,
        "vcpus": system.cpu.logical_cpus,
        "memory_gib": system.memory.total_bytes / 2**30,
        "sockets": system.cpu.sockets,
        "numa_nodes": system.numa_nodes,
        "compiler": ctx.compiler.version if ctx.compiler else None,
        "cflags": " ".join(ctx.cflags),
    }


def document_rows(doc: ResultDocument, key: str, sha256: str) -> list[Row]:
    """Every figure of `doc` as tidy rows, benchmark sections in `EXTRACTORS` order."""
    base = document_columns(doc, key, sha256)
    rows: list[Row] = []
    for name, extract in EXTRACTORS.items():
        section = getattr(doc.performance_data, name, None)
        if section is not None:
            rows.extend(extract(section, base))
    return rows


def figures_fingerprint(rows: list[Row]) -> str:
    """A string identifying a document's figures alone (not who measured them).

    Every figure and its trial statistics (when recorded) enter it. Two documents for
    *different* instance types with the same fingerprint carry copied or placeholder
    numbers: ingest quarantines them (see docs/statistics.md).
    """
    parts = sorted(
        f"{r['benchmark']}/{r['test']}/{r['thread_mode']}/{r['metric']}="
        f"{r['value']!r}/{r['trial_mean']!r}/{r['trial_sd']!r}"
        for r in rows
        if r["value"] is not None and math.isfinite(r["value"])
    )
    return "|".join(parts)
