"""Plausibility rules applied on ingest, after the schema: numbers a machine could produce.

The schema already guarantees types, positivity and finiteness. These rules catch what a
schema cannot: a result that claims more bandwidth than the machine could move, figures
that do not follow from the recorded trial times (invented or edited numbers), a failed
STREAM verification, a document stored under another type's key. Each rule raises
`InvalidResult` with a one-line reason that ends up in the quarantine `.reason` file.

The bandwidth ceiling (docs/statistics.md, "Plausibility"): a STREAM figure may not exceed
    min(threads x PER_THREAD_CEILING_GBPS, sockets x PER_SOCKET_CEILING_GBPS).
Both constants are deliberately generous (about twice the best hardware on sale), so that
a rejected result is impossible rather than merely surprising.
"""

from __future__ import annotations

import functools
import itertools
import math

from instbench.errors import InvalidInstanceType, InvalidResult
from instbench.instance_types import parse_instance_type
from instbench.results.schema import (
    STREAM_BYTES_PER_ELEMENT,
    STREAM_KERNELS,
    Metadata,
    ResultDocument,
)
from instbench.storage.layout import raw_key

PER_THREAD_CEILING_GBPS = 150.0
"""One thread's STREAM bandwidth ceiling. The best single cores sustain 20-40 GB/s on
servers and ~120 GB/s on Apple M-series laptops; a thread cannot drain more than its
outstanding-miss buffers allow."""

PER_SOCKET_CEILING_GBPS = 1200.0
"""One socket's ceiling: 12 channels of DDR5-8800 MRDIMM peak at ~845 GB/s; HBM parts at
~1 TB/s. No EC2 socket reaches either in STREAM."""

RATE_TOLERANCE = 1e-6
"""Relative tolerance between a stored bandwidth and bytes / time recomputed from it."""

# Latency ranges (ns). A pointer chase measures load-to-use latency; these bounds are what
# hardware can physically do, kept wide so that only a broken measurement falls outside.
L1_LATENCY_NS = (0.3, 10.0)
"""L1 hits take 3-5 core cycles on every server core since 2010 (4-5 on Xeon and EPYC, 4
on Neoverse): 0.6-2 ns at 2.5-6 GHz. Below 0.3 ns would be under one cycle at 6 GHz plus
a pipeline that does not exist; above 10 ns is not a cache a load could hit in 5 cycles
at any clock a server runs (0.5 GHz)."""

MEMORY_LATENCY_NS = (30.0, 1000.0)
"""DRAM load-to-use latency: DDR4/DDR5 row access plus the on-chip fabric is 60-130 ns
idle on servers (~50 ns on desktop parts), 150-300 ns across sockets or with base-page
TLB misses. Under 30 ns is faster than a DRAM row cycle (tRC ~45 ns); over 1000 ns is a
machine that is swapping or a timer that is wrong."""

LEVEL_LATENCY_NS = (L1_LATENCY_NS[0], MEMORY_LATENCY_NS[1])
"""Any level of the hierarchy (points of the sweep, L2, L3, NUMA figures) lies between
the fastest L1 and the slowest DRAM."""

CACHE_BANDWIDTH_CEILING_GBPS = 2000.0
"""One thread reading a cache: at most 2-3 loads of 32-64 bytes per cycle (2 x 64 B with
AVX-512, 3 x 32 B on Golden Cove) at <= 6 GHz, i.e. <= 768 GB/s; the ceiling is about
2.5x that. The memory level and NUMA figures use PER_THREAD_CEILING_GBPS instead."""

LATENCY_ORDER_TOLERANCE = 0.05
"""Plateaus must not get faster further from the core; 5 % allows for the noise of two
medians that are nearly equal (e.g. a large L2 whose far end reaches L3 latency)."""


def bandwidth_ceiling(threads: int, sockets: int) -> float:
    """Highest STREAM bandwidth (GB/s) credible for `threads` threads on `sockets` sockets."""
    return min(threads * PER_THREAD_CEILING_GBPS, max(1, sockets) * PER_SOCKET_CEILING_GBPS)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= RATE_TOLERANCE * max(abs(a), abs(b))


def check_stream(doc: ResultDocument) -> None:
    """STREAM's own rules: verification passed, byte counting, rates from times, ceiling."""
    stream = doc.performance_data.stream
    if stream is None:
        return
    cpu = doc.system_info.cpu
    modes = [run.thread_mode for run in stream.runs]
    if len(set(modes)) != len(modes):
        raise InvalidResult("stream: a thread mode appears twice")
    for run in stream.runs:
        where = f"stream {run.thread_mode}-threads run"
        if not run.validation_passed:
            raise InvalidResult(f"{where}: STREAM validation failed ({run.validation_detail})")
        if run.thread_mode == "single" and run.threads != 1:
            raise InvalidResult(f"{where}: single mode used {run.threads} threads")
        if run.threads > cpu.logical_cpus:
            raise InvalidResult(
                f"{where}: {run.threads} threads on a machine with {cpu.logical_cpus} CPUs"
            )
        if run.array_bytes != run.array_elements * 8:
            raise InvalidResult(f"{where}: array_bytes is not array_elements x 8")
        ceiling = bandwidth_ceiling(run.threads, cpu.sockets)
        for name in STREAM_KERNELS:
            k = run.kernels[name]  # type: ignore[index]
            expected_bytes = STREAM_BYTES_PER_ELEMENT[name] * run.array_elements
            if k.bytes_per_trial != expected_bytes:
                raise InvalidResult(
                    f"{where} {name}: bytes_per_trial {k.bytes_per_trial} is not STREAM's "
                    f"{STREAM_BYTES_PER_ELEMENT[name]} x {run.array_elements} elements"
                )
            if len(k.trial_times_s) != run.trials_counted:
                raise InvalidResult(
                    f"{where} {name}: {len(k.trial_times_s)} trial times for "
                    f"{run.trials_counted} counted trials"
                )
            if not _close(k.best_gbps, k.bytes_per_trial / k.min_time_s / 1e9):
                raise InvalidResult(
                    f"{where} {name}: best_gbps {k.best_gbps:g} does not follow from "
                    f"bytes_per_trial / min_time_s"
                )
            if not _close(k.min_time_s, min(k.trial_times_s)) or not _close(
                k.max_time_s, max(k.trial_times_s)
            ):
                raise InvalidResult(f"{where} {name}: min/max time disagree with trial times")
            if not math.isfinite(k.best_gbps) or k.best_gbps > ceiling:
                raise InvalidResult(
                    f"{where} {name}: {k.best_gbps:.1f} GB/s is above the ceiling "
                    f"{ceiling:.0f} GB/s for {run.threads} threads on {cpu.sockets} socket(s)"
                )


def _in_range(what: str, value: float, bounds: tuple[float, float], why: str) -> None:
    low, high = bounds
    if not (math.isfinite(value) and low <= value <= high):
        raise InvalidResult(f"{what} {value:g} ns is outside {low:g}-{high:g} ns ({why})")


def check_latency(doc: ResultDocument) -> None:
    """The latency sweep: sane latencies, plateaus in order, figures that follow from points.

    Rules (docs/statistics.md, "Plausibility"):
      - every point's latency lies in LEVEL_LATENCY_NS and its best figures are the best
        of its samples (lowest latency, highest bandwidth): a point cannot be faster than
        every measurement behind it;
      - L1 in L1_LATENCY_NS and memory in MEMORY_LATENCY_NS; L2, L3 and NUMA figures in
        LEVEL_LATENCY_NS;
      - plateaus ordered l1 <= l2 <= l3 <= memory by latency (within
        LATENCY_ORDER_TOLERANCE) and by working-set size (a level further from the core
        starts where the previous one ended or later);
      - a level's latency and bandwidth lie within the points of its size range (they
        are medians of those points);
      - single-thread bandwidth at most CACHE_BANDWIDTH_CEILING_GBPS in caches and
        PER_THREAD_CEILING_GBPS from memory;
      - NUMA: the figures are positive finite (schema) and within the DRAM range; the
        socket count the benchmark read agrees with system_info.
    """
    latency = doc.performance_data.latency
    if latency is None:
        return
    for p in latency.points:
        where = f"latency point {p.size_bytes} B"
        _in_range(
            where, p.latency_ns, LEVEL_LATENCY_NS, "no load is faster than L1 or slower than DRAM"
        )
        if not _close(p.latency_ns, min(p.latency_samples_ns)):
            raise InvalidResult(f"{where}: latency_ns is not the lowest of its samples")
        if not _close(p.bandwidth_gbps, max(p.bandwidth_samples_gbps)):
            raise InvalidResult(f"{where}: bandwidth_gbps is not the highest of its samples")
        if p.bandwidth_gbps > CACHE_BANDWIDTH_CEILING_GBPS:
            raise InvalidResult(
                f"{where}: {p.bandwidth_gbps:.0f} GB/s is above the single-thread ceiling "
                f"{CACHE_BANDWIDTH_CEILING_GBPS:.0f} GB/s"
            )
    levels = latency.levels
    found = [(name, getattr(levels, name)) for name in ("l1", "l2", "l3", "memory")]
    found = [(name, level) for name, level in found if level is not None]
    bounds = {
        "l1": (L1_LATENCY_NS, "an L1 hit is 3-5 cycles"),
        "memory": (MEMORY_LATENCY_NS, "DRAM is 50-300 ns"),
    }
    for name, level in found:
        where = f"latency {name}"
        limits, why = bounds.get(name, (LEVEL_LATENCY_NS, "between L1 and DRAM"))
        _in_range(where, level.latency_ns, limits, why)
        ceiling = PER_THREAD_CEILING_GBPS if name == "memory" else CACHE_BANDWIDTH_CEILING_GBPS
        if level.bandwidth_gbps > ceiling:
            raise InvalidResult(
                f"{where}: {level.bandwidth_gbps:.1f} GB/s is above the single-thread ceiling "
                f"{ceiling:.0f} GB/s"
            )
        lo, hi = level.size_range_bytes
        on_plateau = [p for p in latency.points if lo <= p.size_bytes <= hi]
        if not on_plateau:
            raise InvalidResult(f"{where}: no sweep point in its size range {lo}-{hi} B")
        for metric, values in (
            ("latency_ns", [p.latency_ns for p in on_plateau]),
            ("bandwidth_gbps", [p.bandwidth_gbps for p in on_plateau]),
        ):
            value = getattr(level, metric)
            if not (
                min(values) * (1 - RATE_TOLERANCE) <= value <= max(values) * (1 + RATE_TOLERANCE)
            ):
                raise InvalidResult(
                    f"{where}: {metric} {value:g} is not within the points of its plateau "
                    f"({min(values):g}-{max(values):g})"
                )
    for (near_name, near), (far_name, far) in itertools.pairwise(found):
        if far.latency_ns < near.latency_ns * (1 - LATENCY_ORDER_TOLERANCE):
            raise InvalidResult(
                f"latency levels out of order: {far_name} {far.latency_ns:.2f} ns is faster "
                f"than {near_name} {near.latency_ns:.2f} ns"
            )
        if far.size_range_bytes[0] < near.size_range_bytes[1]:
            raise InvalidResult(
                f"latency levels out of order: {far_name} starts at "
                f"{far.size_range_bytes[0]} B, inside {near_name} (up to "
                f"{near.size_range_bytes[1]} B)"
            )
    numa = latency.numa
    if numa is None:
        return
    sockets = doc.system_info.cpu.sockets
    if numa.socket_count != sockets:
        raise InvalidResult(
            f"latency numa: {numa.socket_count} socket(s), but system_info reports {sockets}"
        )
    for name in ("local_latency_ns", "remote_latency_ns", "inter_socket_latency_ns"):
        value = getattr(numa, name)
        if value is not None:
            _in_range(f"latency numa {name}", value, MEMORY_LATENCY_NS, "DRAM is 50-300 ns")
    for name in ("local_bandwidth_gbps", "remote_bandwidth_gbps"):
        value = getattr(numa, name)
        if value is not None and value > PER_THREAD_CEILING_GBPS:
            raise InvalidResult(
                f"latency numa {name}: {value:.1f} GB/s is above the single-thread ceiling "
                f"{PER_THREAD_CEILING_GBPS:.0f} GB/s"
            )
    if numa.inter_socket_latency_ns is not None and sockets < 2:
        raise InvalidResult("latency numa: an inter-socket latency on a one-socket machine")


def check_identity(doc: ResultDocument, key: str) -> None:
    """The document belongs where it is stored, and its machine matches its type name."""
    meta = doc.metadata
    ec2 = doc.system_info.ec2
    if ec2 is not None and ec2.instance_type != meta.instance_type:
        raise InvalidResult(
            f"metadata says {meta.instance_type} but the instance reported {ec2.instance_type}"
        )
    if key.startswith("raw/"):
        candidates = {*meta.benchmark_suite, "-".join(meta.benchmark_suite)}
        expected = {_raw_key_or_none(b, meta) for b in candidates}
        if key not in expected:
            raise InvalidResult(
                f"document ({meta.instance_type}, {meta.region}, run {meta.run_id} sample "
                f"{meta.sample}, {meta.timestamp:%Y-%m-%d}) is stored under a key that does "
                "not match it"
            )
    if meta.collection_method == "aws":
        architecture = _architecture(meta.instance_type)
        if architecture != doc.system_info.architecture:
            raise InvalidResult(
                f"{meta.instance_type} is {architecture} but the machine reported "
                f"{doc.system_info.architecture}"
            )


@functools.lru_cache(maxsize=1024)
def _architecture(instance_type: str) -> str:
    """Architecture the type's name implies (cached: a dataset has few distinct types)."""
    try:
        return parse_instance_type(instance_type).architecture
    except InvalidInstanceType as exc:
        raise InvalidResult(f"not an EC2 instance type: {exc}") from exc


def _raw_key_or_none(benchmark: str, meta: Metadata) -> str | None:
    try:
        return raw_key(
            benchmark, meta.instance_type, meta.region, meta.timestamp, meta.run_id, meta.sample
        )
    except ValueError:
        return None


def check_document(doc: ResultDocument, key: str) -> None:
    """Every plausibility rule for an instbench document stored under `key`."""
    check_identity(doc, key)
    check_stream(doc)
    check_latency(doc)
