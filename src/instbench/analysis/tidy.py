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
        "'instbench-1' for this project's documents; 'go-collector-1.0.0' or "
        "'go-collector-performance-data' for imported results of the earlier Go collector.",
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
    Column(
        "benchmark",
        "VARCHAR",
        "Benchmark: stream, latency, linpack, cpu, coremark, storage, network.",
    ),
    Column(
        "test",
        "VARCHAR",
        "Part of the benchmark: STREAM kernel (copy/scale/add/triad); latency level "
        "(l1/l2/l3/memory) or NUMA figure (numa-local, numa-remote-socket, "
        "numa-remote-node); hpl (LINPACK); instbench-int, vector-{extension} (cpu); "
        "coremark (real EEMBC CoreMark only); {role}/{fio job} for storage (role ebs, "
        "instance-store, file; job e.g. randread_4k_qd32, 'advertised', or 'burst' / "
        "'sustained' for the EBS burst run); network: "
        "tcp-1flow[-reverse], tcp-nflows[-reverse], burst, sustained, "
        "rtt-median/p99/p999, baseline, peak, nflows-to-peak, sustained-to-baseline.",
    ),
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
        Metric(
            "efficiency",
            "ratio",
            True,
            "LINPACK GFLOPS / the estimated theoretical peak (cores x OS-reported max GHz x "
            "DP FLOPs per cycle of the widest extension); an estimate, may exceed 1 when "
            "the cores run above the reported clock.",
        ),
        Metric("problem_size", "n", True, "LINPACK matrix order n of the timed solves."),
        Metric(
            "score",
            "iterations/s",
            True,
            "Integer throughput: iterations per second of the test's kernel (instbench-int "
            "or, under benchmark 'coremark', real EEMBC CoreMark). The two are not comparable.",
        ),
        Metric(
            "score_per_mhz",
            "iterations/s/MHz",
            True,
            "CoreMark score / the OS-reported maximum frequency, MHz (CoreMark/MHz).",
        ),
        Metric(
            "smt_yield",
            "ratio",
            True,
            "(all-threads score / physical cores) / single-thread score: what one whole core "
            "with its SMT siblings gives relative to one thread (about 1 without SMT).",
        ),
        Metric("scaling", "ratio", True, "All-threads score / single-thread score."),
        Metric(
            "smt_efficiency",
            "ratio",
            True,
            "All-vCPU score / score with one thread per physical core: what SMT adds to "
            "whole cores. Exactly 1 on a CPU without SMT (the two runs are the same run).",
        ),
        Metric("iops", "IOPS", True, "Storage: I/O operations per second of a fio job."),
        Metric(
            "throughput",
            "MB/s",
            True,
            "Storage: bytes per second of a fio job, 10^6 bytes/s (1 MiB jobs).",
        ),
        Metric("clat_p50", "us", False, "Storage: median completion latency, microseconds."),
        Metric("clat_p99", "us", False, "Storage: 99th percentile completion latency, µs."),
        Metric("clat_p99_9", "us", False, "Storage: 99.9th percentile completion latency, µs."),
        Metric(
            "limit_ratio",
            "ratio",
            True,
            "Storage: measured / advertised limit (IOPS for 4 KiB jobs, MB/s for 1 MiB "
            "jobs; the limit is min(volume provisioned, type's EBS-optimized maximum)).",
        ),
        Metric(
            "advertised_iops",
            "IOPS",
            True,
            "Storage: the advertised IOPS ceiling of the target (read from AWS, not measured).",
        ),
        Metric(
            "advertised_throughput",
            "MB/s",
            True,
            "Storage: the advertised throughput ceiling of the target, MB/s (read from AWS).",
        ),
        Metric(
            "throughput",
            "Gbps",
            True,
            "TCP rate the receiver got between two instances of the type (iperf3), 10^9 "
            "bits/s; test says how many flows, which direction, or burst/sustained.",
        ),
        Metric(
            "round_trip",
            "µs",
            False,
            "TCP request/response round trip of 1-byte messages on one connection "
            "(instbench's netlat kernel), microseconds; test says which percentile.",
        ),
        Metric(
            "seconds_until_fall",
            "s",
            True,
            "How long an 'Up to' type kept its burst rate before falling to its sustained "
            "rate (only when it fell): network bandwidth, or EBS throughput (storage).",
        ),
        Metric(
            "advertised",
            "Gbps",
            True,
            "What DescribeInstanceTypes advertises for the type's default network card "
            "(baseline or peak): read from AWS, not measured.",
        ),
        Metric(
            "advertised_ratio",
            "ratio",
            True,
            "Measured / advertised: the best N-flow rate / the peak, or the sustained rate "
            "(else the N-flow rate) / the baseline.",
        ),
        Metric(
            "offered",
            "flag",
            True,
            "1 when the CPU flags offer the vector extension, 0 when they do not (read from "
            "the machine, not measured).",
        ),
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
    memory-benchmarks.json naming that level (documents.compass.MEMORY_FIELDS).
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


def _numa_rows(section: Any, base: Row) -> Iterator[Row]:
    """NUMA rows of the latency benchmark (`performance_data.latency.numa`).

    Tests: `numa-local` (memory on the measuring CPU's node) and, when measured, either
    `numa-remote-socket` (the remote node is on another CPU package: its latency *is*
    the inter-socket latency) or `numa-remote-node` (another node of the same package,
    e.g. sub-NUMA clustering; not an inter-socket figure). Metrics latency (ns) and
    bandwidth (GB/s), single thread. Why two remote names: ComputeCompass's
    `remoteBandwidth`/`interSocketLatency` mean another socket, and a same-package node
    must not stand in for it.

    With no NUMA section (the measurement was switched off) on a machine with one NUMA
    node, the local figures are the memory level's, exactly as the benchmark itself
    reports them on one node; on several nodes nothing is derived.
    """
    numa = getattr(section, "numa", None)
    if numa is None:
        memory = getattr(section, "memory", None)
        if base.get("numa_nodes") == 1 and memory is not None:
            yield from _numa_pair(
                base, "numa-local", memory.latency_ns, getattr(memory, "bandwidth_gbps", None)
            )
        return
    yield from _numa_pair(base, "numa-local", numa.local_latency_ns, numa.local_bandwidth_gbps)
    inter = numa.inter_socket_latency_ns is not None
    yield from _numa_pair(
        base,
        "numa-remote-socket" if inter else "numa-remote-node",
        numa.remote_latency_ns,
        numa.remote_bandwidth_gbps,
    )


def _numa_pair(
    base: Row, test: str, latency_ns: float | None, bandwidth_gbps: float | None
) -> Iterator[Row]:
    for metric, value, unit in (
        ("latency", latency_ns, "ns"),
        ("bandwidth", bandwidth_gbps, "GB/s"),
    ):
        if value is None:
            continue
        yield {
            **base,
            "benchmark": "latency",
            "test": test,
            "thread_mode": "single",
            "threads": 1,
            "metric": metric,
            "unit": unit,
            "value": float(value),
            "trials": None,
            "trial_mean": None,
            "trial_sd": None,
        }


def _figure(
    base: Row,
    benchmark: str,
    test: str,
    mode: str,
    threads: int | None,
    metric: str,
    value: float | None,
    trials: list[float] | None = None,
    unit: str | None = None,
) -> Iterator[Row]:
    """One row (none when `value` is None); `trials` gives the within-instance spread.

    `unit` overrides the metrics table's, for a metric name two benchmarks share with
    different units (throughput: MB/s for storage, Gbps for network)."""
    if value is None:
        return
    mean, sd = mean_sd(trials) if trials else (None, None)
    yield {
        **base,
        "benchmark": benchmark,
        "test": test,
        "thread_mode": mode,
        "threads": threads,
        "metric": metric,
        "unit": unit or METRICS[metric].unit,
        "value": float(value),
        "trials": len(trials) if trials else None,
        "trial_mean": mean,
        "trial_sd": sd,
    }


def _linpack_rows(section: Any, base: Row) -> Iterator[Row]:
    """LINPACK: GFLOPS (trials: the per-solve rates), efficiency, problem size n.

    The solve runs on every CPU (the BLAS library's threads), hence thread mode 'all'.
    Efficiency is absent when the peak could not be estimated (no frequency reported).
    """
    flops = 2.0 / 3.0 * section.n**3 + 2.0 * section.n**2
    rates = [flops / t / 1e9 for t in section.times_s]
    threads = section.library_threads or base.get("vcpus")
    yield from _figure(base, "linpack", "hpl", "all", threads, "gflops", section.gflops, rates)
    yield from _figure(base, "linpack", "hpl", "all", threads, "efficiency", section.efficiency)
    yield from _figure(base, "linpack", "hpl", "all", threads, "problem_size", float(section.n))


VECTOR_EXTENSIONS = ("sse2", "avx", "avx2", "avx512f", "neon", "sve")
"""Vector extensions the CPU benchmark knows (benchmarks/isa.py EXTENSIONS)."""


def _cpu_rows(section: Any, base: Row) -> Iterator[Row]:
    """The CPU benchmark: instbench-int scores, vector extensions offered and their FLOPS.

    instbench-int is our own integer kernel: its rows carry test 'instbench-int' and are
    never labelled CoreMark. Real CoreMark, when the result holds it, becomes rows of
    benchmark 'coremark' (`_coremark_rows`). Per extension: an `offered` row (1/0, read
    from the CPU flags) and, when measured, GFLOPS single thread and all threads.
    """
    integer = section.integer
    threads = integer.threads
    test = integer.name  # always "instbench-int" (the schema allows nothing else)
    yield from _figure(base, "cpu", test, "single", 1, "score", integer.single_thread_score)
    yield from _figure(base, "cpu", test, "all", threads, "score", integer.all_threads_score)
    yield from _figure(base, "cpu", test, "all", threads, "scaling", integer.scaling)
    yield from _figure(base, "cpu", test, "all", threads, "smt_yield", integer.smt_yield)
    smt = integer.smt_efficiency
    if smt is None and integer.physical_cores >= base["vcpus"]:
        # Every vCPU is a whole core (no SMT): 1.0 by definition, as the agent records it
        # since data_version 1.2.0; earlier results say so through their core count.
        smt = 1.0
    yield from _figure(base, "cpu", test, "all", threads, "smt_efficiency", smt)
    vector = section.vector
    offered = set(vector.offered)
    for ext in VECTOR_EXTENSIONS:
        yield from _figure(
            base, "cpu", f"vector-{ext}", "all", None, "offered", 1.0 if ext in offered else 0.0
        )
    for rate in sorted(vector.measured, key=lambda r: r.extension):
        ext_test = f"vector-{rate.extension}"
        yield from _figure(base, "cpu", ext_test, "single", 1, "gflops", rate.single_thread_gflops)
        yield from _figure(base, "cpu", ext_test, "all", threads, "gflops", rate.all_threads_gflops)
    yield from _coremark_rows(getattr(section, "coremark", None), base)


def _get(obj: Any, name: str) -> Any:
    """Attribute or key `name` of a model or a plain mapping (None when absent)."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _coremark_rows(coremark: Any, base: Row) -> Iterator[Row]:
    """Real EEMBC CoreMark rows, only when the result says it is real CoreMark.

    The section must name itself `coremark` and carry CoreMark's scores; anything else
    (no section, our own kernel, a section without scores) yields no row, so the
    type is held back from cpu-benchmarks.json rather than filled with
    something that is not CoreMark.
    """
    if coremark is None or _get(coremark, "name") != "coremark":
        return
    single = _get(coremark, "single_thread_score")
    total = _get(coremark, "all_threads_score")
    if single is None or total is None:
        return
    threads = _get(coremark, "threads")
    yield from _figure(base, "coremark", "coremark", "single", 1, "score", single)
    yield from _figure(base, "coremark", "coremark", "all", threads, "score", total)
    yield from _figure(
        base,
        "coremark",
        "coremark",
        "single",
        1,
        "score_per_mhz",
        _get(coremark, "single_thread_score_per_mhz"),
    )
    yield from _figure(
        base,
        "coremark",
        "coremark",
        "all",
        threads,
        "score_per_mhz",
        _get(coremark, "all_threads_score_per_mhz"),
    )


def _storage_rows(section: Any, base: Row) -> Iterator[Row]:
    """Storage: per target and fio job, IOPS, MB/s (1 MiB jobs), latency percentiles and
    the measured/limit ratio; per target, the advertised ceilings; per EBS target with a
    publishable burst run, '{role}/burst' and '{role}/sustained' throughput (MB/s) and
    ratio (burst to the maximum, sustained to the baseline), and the burst's
    seconds_until_fall (only when it fell). --quick burst runs are never rows.

    test is '{role}/{job}', the role being what the target is or stands in for (ebs,
    instance-store, file); a second disk of the same role is 'instance-store-2', so two
    disks of one instance never count as two samples. One fio job: thread mode 'single'.
    """
    seen: dict[str, int] = {}
    for target in section.targets:
        role = target.stands_in_for or target.role
        seen[role] = seen.get(role, 0) + 1
        label = role if seen[role] == 1 else f"{role}-{seen[role]}"
        for job in target.jobs:
            test = f"{label}/{job.name}"
            yield from _figure(base, "storage", test, "single", 1, "iops", job.iops)
            if job.block_size_bytes and job.block_size_bytes >= 2**20:
                yield from _figure(
                    base, "storage", test, "single", 1, "throughput", job.bw_mb_s, unit="MB/s"
                )
            for metric, value in (
                ("clat_p50", job.clat_us.p50),
                ("clat_p99", job.clat_us.p99),
                ("clat_p99_9", job.clat_us.p99_9),
                ("limit_ratio", job.ratio_to_limit),
            ):
                yield from _figure(base, "storage", test, "single", 1, metric, value)
        if target.limits is not None and target.jobs:
            test = f"{label}/advertised"
            limits = target.limits
            yield from _figure(base, "storage", test, "single", 1, "advertised_iops", limits.iops)
            yield from _figure(
                base, "storage", test, "single", 1, "advertised_throughput", limits.throughput_mb_s
            )
        burst = target.burst
        if burst is not None and burst.publishable:
            for test, rate, ratio in (
                (f"{label}/burst", burst.burst_mb_s, burst.burst_ratio_to_maximum),
                (f"{label}/sustained", burst.sustained_mb_s, burst.sustained_ratio_to_baseline),
            ):
                yield from _figure(
                    base, "storage", test, "single", 1, "throughput", rate, unit="MB/s"
                )
                yield from _figure(base, "storage", test, "single", 1, "limit_ratio", ratio)
            yield from _figure(
                base,
                "storage",
                f"{label}/burst",
                "single",
                1,
                "seconds_until_fall",
                burst.seconds_until_fall,
            )


NETWORK_TESTS = {
    "tcp_1flow": "tcp-1flow",
    "tcp_1flow_reverse": "tcp-1flow-reverse",
    "tcp_nflows": "tcp-nflows",
    "tcp_nflows_reverse": "tcp-nflows-reverse",
}
"""iperf3 test of the result -> its `test` in the tidy table."""


def _network_rows(section: Any, base: Row) -> Iterator[Row]:
    """The client's (or, over loopback, both sides') figures of the network benchmark.

    A server measured nothing and gives no row. One flow is thread mode 'single', N
    flows 'all' (threads: the flows). Loopback results ('both') only come from local and
    sandbox runs, which a real publication leaves out.
    """
    if section.role == "server":
        return
    for entry in section.throughput:
        test = NETWORK_TESTS[entry.name]
        mode = "single" if entry.flows == 1 else "all"
        yield from _figure(base, "network", test, mode, entry.flows, "throughput", entry.gbps)
    burst = section.burst
    if burst is not None:
        flows = burst.flows
        yield from _figure(base, "network", "burst", "all", flows, "throughput", burst.burst_gbps)
        yield from _figure(
            base, "network", "sustained", "all", flows, "throughput", burst.sustained_gbps
        )
        yield from _figure(
            base, "network", "burst", "all", flows, "seconds_until_fall", burst.seconds_until_fall
        )
    lat = section.latency
    if lat is not None:
        for test, value in (
            ("rtt-median", lat.median_us),
            ("rtt-p99", lat.p99_us),
            ("rtt-p999", lat.p999_us),
        ):
            yield from _figure(base, "network", test, "single", 1, "round_trip", value)
    adv = section.advertised
    if adv is not None:
        yield from _figure(
            base, "network", "baseline", "all", None, "advertised", adv.baseline_gbps
        )
        yield from _figure(base, "network", "peak", "all", None, "advertised", adv.peak_gbps)
        yield from _figure(
            base, "network", "nflows-to-peak", "all", None, "advertised_ratio",
            adv.ratio_nflows_to_peak,
        )  # fmt: skip
        yield from _figure(
            base, "network", "sustained-to-baseline", "all", None, "advertised_ratio",
            adv.ratio_sustained_to_baseline,
        )  # fmt: skip


def _latency_and_numa_rows(section: Any, base: Row) -> Iterator[Row]:
    yield from _latency_rows(section, base)
    yield from _numa_rows(section, base)


EXTRACTORS: dict[str, Extractor] = {
    "stream": _stream_rows,
    "latency": _latency_and_numa_rows,
    "linpack": _linpack_rows,
    "cpu": _cpu_rows,
    "storage": _storage_rows,
    "network": _network_rows,
}
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
