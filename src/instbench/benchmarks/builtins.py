"""The benchmarks instbench ships: each one's declaration (parameters, needs, version) and
how the agent runs it. A benchmark's module is imported only when it runs.

The registry (`registry.py`) serves these by name. This module is part of agent.pyz:
stdlib-only, Python 3.9.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, Tuple

from instbench.benchmarks.declarations import (
    BenchmarkInfo,
    Parameter,
    Requirements,
    RunContext,
)


def _run_stream(ctx: RunContext) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    from instbench.benchmarks import stream

    options = stream.StreamOptions(quick=ctx.quick)
    if ctx.params.get("array_elements") is not None:
        options.array_elements = ctx.params["array_elements"]
    if ctx.params.get("ntimes") is not None:
        options.ntimes = ctx.params["ntimes"]
    if ctx.params.get("threads") is not None:
        options.threads = ctx.params["threads"]
    if ctx.params.get("single_thread") is not None:
        options.single_thread = ctx.params["single_thread"]
    return stream.run_stream(options, cache_dir=ctx.cache_dir, log=ctx.log)


def _stream_info() -> BenchmarkInfo:
    from instbench.benchmarks import stream

    return BenchmarkInfo(
        name="stream",
        version=stream.KERNEL_VERSION,
        description="STREAM memory bandwidth (Copy, Scale, Add, Triad), all threads and one.",
        run=_run_stream,
        parameters=(
            Parameter(
                "array_elements",
                "int",
                "Elements per array (double precision); agent option --array-size.",
                minimum=stream.MIN_ELEMENTS,
                default_note=f"2^{int(math.log2(stream.FLOOR_ELEMENTS))}, or "
                f"{stream.LLC_FACTOR}x the reported LLC if larger, capped to "
                f"{int(stream.MEMORY_SHARE * 100)} % of MemAvailable "
                f"(quick: {stream.QUICK_ELEMENTS})",
            ),
            Parameter(
                "ntimes",
                "int",
                "Trials per kernel including the discarded first one; agent option --ntimes.",
                minimum=2,
                maximum=stream.MAX_NTIMES,
                default_note=f"{stream.DEFAULT_NTIMES} (quick: {stream.QUICK_NTIMES})",
            ),
            Parameter(
                "threads",
                "int",
                "Threads of the all-CPU run; agent option --threads.",
                minimum=1,
                maximum=stream.MAX_THREADS,
                default_note="every CPU the agent may run on",
            ),
            Parameter(
                "single_thread",
                "bool",
                "Also run with one thread (per-core bandwidth).",
                default=True,
            ),
        ),
        requires=Requirements(c_compiler=True, openmp=True),
    )


def _run_latency(ctx: RunContext) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    from instbench.benchmarks import latency

    p = ctx.params
    options = latency.LatencyOptions(
        quick=ctx.quick,
        max_size_bytes=p.get("max_size_bytes"),
        points_per_doubling=p.get("points_per_doubling"),
        time_per_point_ms=p.get("time_per_point_ms"),
        huge_pages=True if p.get("huge_pages") is None else bool(p["huge_pages"]),
        numa=True if p.get("numa") is None else bool(p["numa"]),
    )
    return latency.run_latency(options, cache_dir=ctx.cache_dir, log=ctx.log)


def _latency_info() -> BenchmarkInfo:
    from instbench.benchmarks import latency

    mib = 1024**2
    return BenchmarkInfo(
        name="latency",
        version=latency.KERNEL_VERSION,
        description="Cache and memory latency (pointer chase) and read bandwidth by "
        "working-set size; L1/L2/L3/DRAM levels from the curve.",
        run=_run_latency,
        parameters=(
            Parameter(
                "max_size_bytes",
                "int",
                "Largest working set of the sweep, bytes.",
                minimum=16 * latency.MIN_SIZE,
                maximum=latency.MAX_SIZE_LIMIT,
                default_note=f"{latency.LLC_FACTOR}x the reported LLC, at least "
                f"{latency.FLOOR_BYTES // mib} MiB (quick: {latency.QUICK_FLOOR_BYTES // mib} "
                f"MiB), at most {latency.CAP_BYTES // mib} MiB (quick: "
                f"{latency.QUICK_CAP_BYTES // mib} MiB) and "
                f"{int(latency.MEMORY_SHARE * 100)} % of MemAvailable",
            ),
            Parameter(
                "points_per_doubling",
                "int",
                "Working-set sizes measured per doubling of size.",
                minimum=1,
                maximum=8,
                default_note=f"{latency.POINTS_PER_DOUBLING} "
                f"(quick: {latency.QUICK_POINTS_PER_DOUBLING})",
            ),
            Parameter(
                "time_per_point_ms",
                "float",
                "Timed pointer chasing per size, all samples together (the read sweep gets half).",
                minimum=1.0,
                maximum=10000.0,
                default_note=f"{latency.TIME_PER_POINT_MS:g} "
                f"(quick: {latency.QUICK_TIME_PER_POINT_MS:g})",
            ),
            Parameter(
                "huge_pages",
                "bool",
                "Ask for transparent huge pages so TLB misses do not inflate latencies.",
                default=True,
            ),
            Parameter(
                "numa",
                "bool",
                "On multi-node machines, also measure memory on another node.",
                default=True,
            ),
        ),
        requires=Requirements(c_compiler=True),
    )


def _run_linpack(ctx: RunContext) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    from instbench.benchmarks import linpack

    p = ctx.params
    options = linpack.LinpackOptions(
        quick=ctx.quick,
        n=p.get("n"),
        trials=p.get("trials"),
        time_budget_s=p.get("time_budget_s"),
        threads=p.get("threads"),
        library=p.get("library"),
    )
    return linpack.run_linpack(options, cache_dir=ctx.cache_dir, log=ctx.log)


def _linpack_info() -> BenchmarkInfo:
    from instbench.benchmarks import linpack

    return BenchmarkInfo(
        name="linpack",
        version=linpack.KERNEL_VERSION,
        description="Dense LU solve (LAPACK dgetrf/dgetrs) in double precision: GFLOPS, "
        "HPL residual check, efficiency against the estimated peak.",
        run=_run_linpack,
        parameters=(
            Parameter(
                "n",
                "int",
                "Matrix order.",
                minimum=linpack.MIN_N,
                maximum=linpack.MAX_N,
                default_note=f"one solve of about time_budget_s / (trials + 1) at the rate "
                f"of a calibration solve, at most {int(linpack.MEMORY_SHARE * 100)} % of "
                f"MemAvailable (quick: {linpack.QUICK_N})",
            ),
            Parameter(
                "trials",
                "int",
                "Timed solves; the fastest is reported.",
                minimum=1,
                maximum=20,
                default_note=f"{linpack.TRIALS} (quick: {linpack.QUICK_TRIALS})",
            ),
            Parameter(
                "time_budget_s",
                "float",
                "Time the solves may take together, seconds (sizes n).",
                minimum=1.0,
                maximum=7200.0,
                default=linpack.TIME_BUDGET_S,
            ),
            Parameter(
                "threads",
                "int",
                "BLAS threads (OpenBLAS only).",
                minimum=1,
                maximum=4096,
                default_note="the library's default (every CPU)",
            ),
            Parameter(
                "library",
                "str",
                "Absolute path of the BLAS/LAPACK shared library to load.",
                default_note="OpenBLAS (threaded build first), else FlexiBLAS, else liblapack",
            ),
        ),
        requires=Requirements(c_compiler=True, packages=("openblas-devel",)),
    )


def _run_cpu(ctx: RunContext) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    from instbench.benchmarks import cpu

    p = ctx.params
    options = cpu.CpuOptions(
        quick=ctx.quick,
        duration_ms=p.get("duration_ms"),
        threads=p.get("threads"),
        openssl=True if p.get("openssl") is None else bool(p["openssl"]),
        vector=True if p.get("vector") is None else bool(p["vector"]),
        coremark_url=p.get("coremark_url"),
    )
    return cpu.run_cpu(options, cache_dir=ctx.cache_dir, log=ctx.log)


def _cpu_info() -> BenchmarkInfo:
    from instbench.benchmarks import cpu

    return BenchmarkInfo(
        name="cpu",
        version=cpu.KERNEL_VERSION,
        description="EEMBC CoreMark (fetched at a pinned commit and checksum, where it can "
        "be) and our own integer kernel instbench-int (always; never labelled CoreMark), "
        "one thread and all; openssl AES-256-GCM/SHA-256; DP FLOPS per vector extension.",
        run=_run_cpu,
        parameters=(
            Parameter(
                "duration_ms",
                "float",
                "Timed run of the integer kernel per thread mode, milliseconds.",
                minimum=10.0,
                maximum=600000.0,
                default_note=f"{cpu.DURATION_MS:g} (quick: {cpu.QUICK_DURATION_MS:g})",
            ),
            Parameter(
                "threads",
                "int",
                "Threads of the all-threads runs.",
                minimum=1,
                maximum=4096,
                default_note="every CPU the agent may run on",
            ),
            Parameter("openssl", "bool", "Run openssl speed where openssl exists.", default=True),
            Parameter("vector", "bool", "Measure DP FLOPS per vector extension.", default=True),
            Parameter(
                "coremark_url",
                "str",
                "Base URL of the pinned CoreMark sources; 'off' runs no CoreMark.",
                default_note="the agent's --coremark-url, else $INSTBENCH_COREMARK_URL, else "
                "the pinned GitHub URL on EC2 and off elsewhere",
            ),
        ),
        requires=Requirements(c_compiler=True, openmp=True),
    )


def _run_idle(ctx: RunContext) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    from instbench.benchmarks import idle

    seconds = ctx.params.get("duration_s")
    if seconds is None:
        seconds = idle.QUICK_SECONDS if ctx.quick else idle.DEFAULT_SECONDS
    return idle.run_idle(int(seconds), ctx.log)


def _idle_info() -> BenchmarkInfo:
    from instbench.benchmarks import idle

    return BenchmarkInfo(
        name="idle",
        version=idle.VERSION,
        description="Test benchmark: waits a fixed time, measures nothing; never published.",
        run=_run_idle,
        parameters=(
            Parameter(
                "duration_s",
                "int",
                "Seconds to wait.",
                minimum=0,
                maximum=86400,
                default_note=f"{idle.DEFAULT_SECONDS} s (quick: {idle.QUICK_SECONDS} s)",
            ),
        ),
    )


def _run_storage(ctx: RunContext) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    from instbench.benchmarks import storage

    p = ctx.params
    options = storage.StorageOptions(
        quick=ctx.quick,
        size_mib=p.get("size_mib"),
        runtime_s=p.get("runtime_s"),
        targets=p.get("targets") or "auto",
        directory=p.get("directory"),
        advertised=p.get("advertised"),
        collection_method=ctx.collection_method,
        burst_s=p.get("burst_s"),
    )
    return storage.run_storage(options, ctx.log)


def _storage_info() -> BenchmarkInfo:
    from instbench.benchmarks import storage

    return BenchmarkInfo(
        name="storage",
        version=storage.VERSION,
        description="fio with --direct=1 on the data volume and every instance-store disk "
        "(a file off EC2): 4 KiB random read/write QD 1 and 32, 1 MiB sequential; IOPS, "
        "MB/s, latency percentiles, advertised limits beside them.",
        run=_run_storage,
        parameters=(
            Parameter(
                "size_mib",
                "int",
                "Test area per target, MiB (written once before any read).",
                minimum=storage.MIN_SIZE_MIB,
                maximum=storage.MAX_SIZE_MIB,
                default_note=f"{storage.DEFAULT_SIZE_MIB} (quick: {storage.QUICK_SIZE_MIB}), "
                "at most the device",
            ),
            Parameter(
                "runtime_s",
                "int",
                "Seconds per fio job.",
                minimum=1,
                maximum=storage.MAX_RUNTIME_S,
                default_note=f"{storage.DEFAULT_RUNTIME_S} (quick: {storage.QUICK_RUNTIME_S})",
            ),
            Parameter(
                "targets",
                "str",
                "'auto', 'file', or comma-separated whole-disk paths (checked before writing).",
                default_note="auto: on EC2 every data disk beside the root volume; elsewhere "
                "one file per expected disk",
            ),
            Parameter(
                "directory",
                "str",
                "Directory of the test files when targets are files.",
                default_note="the system temporary directory",
            ),
            Parameter(
                "advertised",
                "str",
                "What AWS advertises, key=number,... (set by the controller).",
                default_note="none",
            ),
            Parameter(
                "burst_s",
                "int",
                "Seconds of the EBS burst-and-baseline run (sequential 1 MiB writes, "
                "bandwidth sampled each second); 0 skips it. Billed: the controller adds it "
                "to the storage task's time and cost.",
                minimum=0,
                maximum=storage.MAX_BURST_S,
                default_note=f"{storage.BURST_S} on EC2 when the type's EBS baseline "
                f"throughput is below its maximum (it bursts), else 0 (quick: "
                f"{storage.QUICK_BURST_S}, never published)",
            ),
        ),
        requires=Requirements(packages=("fio",), commands=("fio",)),
    )


def _run_network(ctx: RunContext) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    from instbench.benchmarks import network

    p = ctx.params
    options = network.NetworkOptions(
        quick=ctx.quick,
        role=p.get("role") or "both",
        peer=p.get("peer"),
        port=p.get("port"),
        listen=p.get("listen") or "any",
        duration_s=p.get("duration_s"),
        flows=p.get("flows"),
        round_trips=p.get("round_trips"),
        burst_s=p.get("burst_s"),
        interval_s=p.get("interval_s"),
        server_timeout_s=p.get("server_timeout_s"),
        advertised_performance=p.get("advertised_performance"),
        advertised_baseline_gbps=p.get("advertised_baseline_gbps"),
        advertised_peak_gbps=p.get("advertised_peak_gbps"),
    )
    return network.run_network(options, cache_dir=ctx.cache_dir, log=ctx.log)


def _network_info() -> BenchmarkInfo:
    from instbench.benchmarks import network

    return BenchmarkInfo(
        name="network",
        version=network.KERNEL_VERSION,
        description="TCP throughput (iperf3: 1 and N flows, both directions; burst and "
        "baseline) and 1-byte round-trip latency (our C kernel) between a server and a client.",
        run=_run_network,
        parameters=(
            Parameter(
                "role",
                "str",
                "This machine's side: both (server and client over 127.0.0.1), server or "
                "client; set by the controller for a pair.",
                default="both",
                choices=network.ROLES,
            ),
            Parameter(
                "peer",
                "str",
                "The server's IPv4 address (role client only; the controller's).",
                default_note="none (role both: 127.0.0.1)",
            ),
            Parameter(
                "port",
                "int",
                f"iperf3's port; the latency kernel uses the next one ({network.PORTS} in all).",
                minimum=1024,
                maximum=65535 - (network.PORTS - 1),
                default_note=f"{network.DEFAULT_PORT} (role both: two free loopback ports)",
            ),
            Parameter(
                "listen",
                "str",
                "Where a server listens: any address (the security group limits who may "
                "connect) or loopback (the sandbox).",
                default="any",
                choices=network.LISTEN,
            ),
            Parameter(
                "duration_s",
                "int",
                "Seconds of each of the four iperf3 tests; agent option --duration-s.",
                minimum=1,
                maximum=network.MAX_DURATION_S,
                default_note=f"{network.DURATION_S} (quick: {network.QUICK_DURATION_S})",
            ),
            Parameter(
                "flows",
                "int",
                "Parallel TCP flows of the N-flow tests.",
                minimum=2,
                maximum=128,
                default_note=f"the vCPU count, at least 2, at most {network.MAX_FLOWS}",
            ),
            Parameter(
                "round_trips",
                "int",
                "Timed 1-byte round trips of the latency test.",
                minimum=100,
                maximum=10_000_000,
                default_note=f"{network.ROUND_TRIPS} (quick: {network.QUICK_ROUND_TRIPS})",
            ),
            Parameter(
                "burst_s",
                "int",
                "Seconds of the burst-and-baseline run (N flows, sampled); 0: none.",
                minimum=0,
                maximum=network.MAX_BURST_S,
                default_note=f"0; for a pair of an 'Up to' type the controller sets "
                f"{network.BURST_S} on EC2 (quick: {network.QUICK_BURST_S}) and prices it",
            ),
            Parameter(
                "interval_s",
                "float",
                "Sampling interval of the burst-and-baseline run, seconds.",
                minimum=0.1,
                maximum=60.0,
                default_note=f"{network.INTERVAL_S:g} (quick: {network.QUICK_INTERVAL_S:g})",
            ),
            Parameter(
                "server_timeout_s",
                "float",
                "How long a server waits for its client to finish before it gives up.",
                minimum=10.0,
                maximum=6 * 3600.0,
                default_note=f"the client's expected run time plus {network.SERVER_GRACE_S:g} s",
            ),
            Parameter(
                "advertised_performance",
                "str",
                "DescribeInstanceTypes NetworkPerformance of the type (the controller's).",
            ),
            Parameter(
                "advertised_baseline_gbps",
                "float",
                "BaselineBandwidthInGbps of network card 0 (the controller's).",
                minimum=0.0,
                maximum=100000.0,
            ),
            Parameter(
                "advertised_peak_gbps",
                "float",
                "PeakBandwidthInGbps of network card 0 (the controller's).",
                minimum=0.0,
                maximum=100000.0,
            ),
        ),
        requires=Requirements(c_compiler=True, packages=("iperf3",), commands=("iperf3",)),
        instances=2,
    )


BUILTINS: Dict[str, Callable[[], BenchmarkInfo]] = {
    "idle": _idle_info,
    "cpu": _cpu_info,
    "latency": _latency_info,
    "linpack": _linpack_info,
    "storage": _storage_info,
    "network": _network_info,
    "stream": _stream_info,
}
"""Built-in benchmarks: name -> factory (the module is imported on first use)."""
