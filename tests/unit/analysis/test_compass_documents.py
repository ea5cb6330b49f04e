"""Factory sections for the latency, LINPACK and CPU benchmarks, and their checks.

Why here and not in tests/factories.py: the ComputeCompass tests (publication, schemas,
plausibility) need documents carrying every benchmark, with known answers. As in the
factories, numbers are derived, never copied: the caller picks the figures that matter
(level latencies, GFLOPS, scores) and every dependent figure (trial times, sample lists,
plateau ranges, ratios) follows, so each document passes the schema and every
plausibility rule. Recorded results of a real local run (this repository's agent on a
2-core EPYC VM, quick mode) sit beside this file as test_compass_recorded_*.json.
"""

from __future__ import annotations

import copy
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.factories import raw_key_of, result_document

from instbench.analysis.ingest import examine
from instbench.results.validate import validate_document

HERE = Path(__file__).resolve().parent
SHA = "ab" * 32

# Plateaus of the sweep: (largest working set, bytes) of each level for the factory CPU.
L1_BYTES, L2_BYTES, L3_BYTES, MEMORY_BYTES = 48 * 1024, 2 * 1024**2, 32 * 1024**2, 512 * 1024**2


def recorded(benchmark: str) -> dict[str, Any]:
    """A recorded real result (local run, quick mode) of `benchmark`: cpu, linpack, latency."""
    data: dict[str, Any] = json.loads(
        (HERE / f"test_compass_recorded_{benchmark}.json").read_text()
    )
    return data


def _sizes() -> list[int]:
    """Working sets from 4 KiB to MEMORY_BYTES, 2 per doubling (the agent uses 4)."""
    sizes, size = [], 4096
    while size <= MEMORY_BYTES:
        sizes.append(size)
        sizes.append(int(size * math.sqrt(2)))
        size *= 2
    return sorted(s for s in set(sizes) if s <= MEMORY_BYTES)


def latency_section(
    l1: float = 1.1,
    l2: float = 4.2,
    l3: float = 16.0,
    memory: float = 95.0,
    *,
    bandwidths: tuple[float, float, float, float] = (180.0, 90.0, 45.0, 14.0),
    sockets: int = 1,
    remote_latency: float | None = None,
    remote_bandwidth: float | None = None,
    inter_socket: bool = True,
) -> dict[str, Any]:
    """A latency sweep with plateaus at the given latencies (ns) and bandwidths (GB/s).

    Each point's best sample is its figure (the others are slower); each level's figures
    are the medians of the points on its plateau, as the benchmark computes them. With
    `sockets` > 1 the NUMA section holds the remote figures given (None: withheld, as
    the benchmark does when page placement could not be verified).
    """
    bounds = [(L1_BYTES, "l1"), (L2_BYTES, "l2"), (L3_BYTES, "l3"), (MEMORY_BYTES, "memory")]
    value = {"l1": l1, "l2": l2, "l3": l3, "memory": memory}
    bandwidth = dict(zip(("l1", "l2", "l3", "memory"), bandwidths, strict=True))
    points: list[dict[str, Any]] = []
    members: dict[str, list[dict[str, Any]]] = {name: [] for _, name in bounds}
    for size in _sizes():
        level = next(name for limit, name in bounds if size <= limit)
        lat, bw = value[level], bandwidth[level]
        point = {
            "size_bytes": size,
            "latency_ns": lat,
            "bandwidth_gbps": bw,
            "latency_samples_ns": [lat * 1.03, lat, lat * 1.01],
            "bandwidth_samples_gbps": [bw * 0.98, bw, bw * 0.95],
        }
        points.append(point)
        members[level].append(point)
    levels = {
        name: {
            "latency_ns": value[name],
            "bandwidth_gbps": bandwidth[name],
            "size_range_bytes": [pts[0]["size_bytes"], pts[-1]["size_bytes"]],
            "points": len(pts),
            "reported_size_bytes": None if name == "memory" else limit,
        }
        for (limit, name), pts in ((b, members[b[1]]) for b in bounds)
    }
    numa: dict[str, Any] = {
        "socket_count": sockets,
        "node_count": sockets,
        "cpu_node": None,
        "memory_node": None,
        "size_bytes": None,
        "local_latency_ns": memory,
        "local_bandwidth_gbps": bandwidth["memory"],
        "remote_latency_ns": None,
        "remote_bandwidth_gbps": None,
        "inter_socket_latency_ns": None,
        "note": "one NUMA node: nothing remote to measure; local figures are the measured "
        "memory level",
    }
    if sockets > 1:
        numa.update(
            cpu_node=0,
            memory_node=1,
            size_bytes=MEMORY_BYTES,
            remote_latency_ns=remote_latency,
            remote_bandwidth_gbps=remote_bandwidth,
            inter_socket_latency_ns=remote_latency if inter_socket else None,
            note="CPU 191 (node 0) read memory of node 1 (another socket)"
            if inter_socket
            else "CPU 47 (node 0) read memory of node 1 (same socket)",
        )
    return {
        "kernel_version": "1.0.0",
        "source_sha256": SHA,
        "cflags": ["-O3", "-march=native"],
        "sweep_reason": "16x the reported last-level cache (32 MiB), floor 256 MiB",
        "stride_bytes": 64,
        "samples": 3,
        "pinned_cpu": 1,
        "huge_pages": "MADV_HUGEPAGE ok; THP policy: always [madvise] never",
        "points": points,
        "levels": levels,
        "detection": {
            "tolerance": 1.25,
            "min_jump": 1.5,
            "min_points": 3,
            "cache_hints_bytes": {"l1": L1_BYTES, "l2": L2_BYTES, "l3": L3_BYTES},
            "notes": {},
        },
        "numa": numa,
    }


def linpack_section(gflops: float, *, n: int = 20000, peak_gflops: float | None) -> dict[str, Any]:
    """LINPACK at `gflops` for order `n`; no peak (None) when no frequency is reported."""
    flops = 2.0 / 3.0 * n**3 + 2.0 * n**2
    best = flops / gflops / 1e9
    return {
        "kernel_version": "1.0.0",
        "source_sha256": SHA,
        "cflags": ["-O3", "-march=native"],
        "library": "/usr/lib64/libopenblaso.so.0",
        "library_info": "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64",
        "library_threads": None,
        "n": n,
        "size_reason": "time budget: about 20 s per solve at the calibrated rate",
        "trials": 3,
        "times_s": [best * 1.02, best, best * 1.01],
        "best_time_s": best,
        "gflops": gflops,
        "scaled_residual": 0.0042,
        "residual_threshold": 16.0,
        "residual_passed": True,
        "calibration": {"n": 4000, "gflops": gflops * 0.9},
        "peak": {
            "gflops": peak_gflops,
            "cores": 1,
            "max_mhz": 3800.0 if peak_gflops else None,
            "flops_per_cycle": 32 if peak_gflops else None,
            "extension": "avx512f" if peak_gflops else None,
            "assumption": "AVX-512: 2 FMA units x 8 lanes x 2" if peak_gflops else None,
            "note": "cores x max GHz x DP FLOPs per cycle; an estimate on a VM",
        },
        "efficiency": gflops / peak_gflops if peak_gflops else None,
    }


def coremark_section(
    single: float, total: float, *, threads: int, mhz: float | None
) -> dict[str, Any]:
    """A real CoreMark section (as benchmarks/coremark.py writes it) with these scores."""

    def run(score: float, n: int) -> dict[str, Any]:
        return {
            "threads": n,
            "score": score,
            "iterations": int(score * 12),
            "total_time_s": 12.0,
            "compiler_version": "GCC11.4.1 20230605 (Red Hat 11.4.1-2)",
            "compiler_flags": "-O2 -DPERFORMANCE_RUN=1 -lrt",
            "parallel_method": "PThreads" if n > 1 else None,
            "report_line": f"CoreMark 1.0 : {score:.6f} / GCC11.4.1 -O2 / Heap",
        }

    return {
        "name": "coremark",
        "version": "1.0",
        "repository": "https://github.com/eembc/coremark",
        "tag": "v1.01",
        "commit": "cfa9ab377835911f23d9b0831c7be302ed1f58de",
        "base_url": "https://raw.githubusercontent.com/eembc/coremark",
        "files_sha256": {"core_main.c": SHA},
        "port": "linux64",
        "compiler": {"name": "gcc", "path": "/usr/bin/gcc", "version": "gcc (GCC) 11.4.1"},
        "cflags": ["-O2", "-DPERFORMANCE_RUN=1", "-DITERATIONS=0"],
        "all_threads_cflags": ["-O2", f"-DMULTITHREAD={threads}", "-pthread"],
        "threads": threads,
        "physical_cores": max(1, threads // 2),
        "single_thread": run(single, 1),
        "all_threads": run(total, threads),
        "validation_run": {"valid": True},
        "single_thread_score": single,
        "all_threads_score": total,
        "scaling": total / single,
        "smt_yield": total / max(1, threads // 2) / single,
        "mhz": mhz,
        "single_thread_score_per_mhz": single / mhz if mhz else None,
        "all_threads_score_per_mhz": total / mhz if mhz else None,
    }


def cpu_section(
    single: float,
    total: float,
    *,
    threads: int,
    physical: int,
    offered: list[str],
    gflops: dict[str, float],
    coremark: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The CPU benchmark: instbench-int scores, vector extensions and their all-threads
    GFLOPS (single thread: a `threads`-th of it, at least 1), optional real CoreMark."""
    measured = [
        {
            "extension": ext,
            "cflags": ["-O2", f"-m{ext}", "-fopenmp"],
            "single_thread_gflops": max(1.0, rate / threads),
            "all_threads_gflops": rate,
        }
        for ext, rate in gflops.items()
    ]
    unmeasured = [e for e in offered if e not in gflops]
    return {
        "kernel_version": "1.0.0",
        "cflags": ["-O2"],
        "integer": {
            "name": "instbench-int",
            "kernel_version": "1.0.0",
            "source_sha256": SHA,
            "checksum": 3382005136,
            "checksum_ok": True,
            "duration_ms": 2000.0,
            "threads": threads,
            "physical_cores": physical,
            "single_thread_score": single,
            "all_threads_score": total,
            "scaling": total / single,
            "parallel_efficiency": total / (single * threads),
            "score_per_physical_core": total / min(physical, threads),
            "score_per_logical_cpu": total / threads,
            "smt_yield": total / min(physical, threads) / single,
            # One thread per core: a `physical`-thread share of the total at the single
            # rate per core; without SMT that run is the all-threads run (1.0 exactly).
            "per_core_score": single * physical if threads > physical else None,
            "smt_efficiency": total / (single * physical) if threads > physical else 1.0,
        },
        "coremark": coremark,
        "coremark_note": None if coremark else "not fetched: no source URL",
        "openssl": None,
        "vector": {
            "offered": offered,
            "measured": measured,
            "note": f"no kernel targets {', '.join(unmeasured)} yet" if unmeasured else "",
        },
    }


def full_document(
    instance_type: str = "m7i.large",
    *,
    sample: int = 0,
    run_id: str = "run-20250301",
    timestamp: datetime | None = None,
    triad: float = 40.0,
    memory_ns: float = 95.0,
    linpack_gflops: float | None = None,
    int_single: float = 160000.0,
    coremark: bool = False,
    sockets: int | None = None,
    remote: tuple[float, float] | None = None,
    inter_socket: bool = True,
    collection_method: str = "aws",
) -> dict[str, Any]:
    """One sample of `instance_type` with STREAM, latency, LINPACK and CPU results.

    x86 types offer sse2/avx/avx2/avx512f and measure all four; Graviton types offer
    neon and sve (no kernel targets sve) and report no frequency, so LINPACK has no peak:
    the honest factory of a type that must be held back from cpu-benchmarks.json.
    `remote` = (latency ns, bandwidth GB/s) of another socket's memory on 2+ sockets.
    LINPACK defaults to 70 % of the x86 peak (physical cores x 3.8 GHz x 32), 10 GFLOPS
    per vCPU on Graviton.
    """
    doc = result_document(
        instance_type,
        bandwidth_gbps=triad,
        sample=sample,
        run_id=run_id,
        timestamp=timestamp,
        sockets=sockets,
        collection_method=collection_method,
    )
    system = doc["system_info"]
    cpu = system["cpu"]
    vcpus = cpu["logical_cpus"]
    physical = cpu["cores_per_socket"] * cpu["sockets"]
    arm = system["architecture"] == "arm64"
    offered = ["neon", "sve"] if arm else ["sse2", "avx", "avx2", "avx512f"]
    rates = {"neon": 8.0 * vcpus} if arm else {"sse2": 6.0, "avx": 11.0, "avx2": 22.0}
    if not arm:
        rates = {k: v * vcpus for k, v in rates.items()} | {"avx512f": 40.0 * vcpus}
        cpu["flags"] = ["sse2", "avx", "avx2", "avx512f", "fma"]
    total = int_single * (physical + 0.25 * (vcpus - physical))
    real = (
        coremark_section(
            int_single * 0.18, total * 0.18, threads=vcpus, mhz=None if arm else cpu["max_mhz"]
        )
        if coremark
        else None
    )
    perf = doc["performance_data"]
    perf["latency"] = latency_section(
        memory=memory_ns,
        sockets=cpu["sockets"],
        remote_latency=remote[0] if remote else None,
        remote_bandwidth=remote[1] if remote else None,
        inter_socket=inter_socket,
    )
    peak = None if arm else physical * 3.8 * 32
    if linpack_gflops is None:
        linpack_gflops = 10.0 * vcpus if peak is None else 0.7 * peak
    perf["linpack"] = linpack_section(linpack_gflops, peak_gflops=peak)
    perf["cpu"] = cpu_section(
        int_single,
        total,
        threads=vcpus,
        physical=physical,
        offered=offered,
        gflops=rates,
        coremark=real,
    )
    doc["metadata"]["benchmark_suite"] = ["stream", "latency", "linpack", "cpu"]
    return doc


def with_changes(doc: dict[str, Any], **paths: Any) -> dict[str, Any]:
    """A deep copy of `doc` with dotted paths (`a__b__0__c`) set to new values."""
    out = copy.deepcopy(doc)
    for dotted, value in paths.items():
        parts = dotted.split("__")
        node: Any = out
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        last = parts[-1]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return out


# ------------------------------------------------------------------ the factories hold


def test_factory_documents_pass_the_schema_and_every_plausibility_rule() -> None:
    for doc in (
        full_document(),
        full_document("c7g.large", coremark=True),
        full_document("m7i.48xlarge", remote=(140.0, 9.5)),
        full_document("m7i.48xlarge", remote=(120.0, 11.0), inter_socket=False),
    ):
        validate_document(doc)
        sha, rows = examine(json.dumps(doc).encode(), raw_key_of(doc))
        assert rows and len(sha) == 64


def test_recorded_results_pass_the_schema_and_every_plausibility_rule() -> None:
    for benchmark in ("cpu", "linpack", "latency"):
        doc = recorded(benchmark)
        _, rows = examine(json.dumps(doc).encode(), raw_key_of(doc, benchmark))
        assert {r["benchmark"] for r in rows} >= {benchmark}
