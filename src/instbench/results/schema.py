"""Result document schema, version 1.

One result document is what one agent run on one machine produces. Its four sections
(`metadata`, `performance_data`, `system_info`, `execution_context`) are the ones existing
consumers of the collector read; every field carries a description, and the JSON Schema
exported from these models (`schemas/result-v1.schema.json`) is published beside the data.

The agent builds the document with the standard library only (it cannot import pydantic on
the instance); the controller validates what comes back against these models before it
stores anything. The data_version policy is in docs/data-version.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DATA_VERSION = "1.2.0"
"""Version of the result document format (semver; see docs/data-version.md)."""

STREAM_KERNELS = ("copy", "scale", "add", "triad")
"""The four STREAM kernels, in the order STREAM runs and reports them."""

STREAM_BYTES_PER_ELEMENT = {"copy": 16, "scale": 16, "add": 24, "triad": 24}
"""STREAM byte counting: bytes moved per array element by each kernel (reads + writes)."""


# allow_inf_nan=False is checked inside pydantic-core: a Python validator per number cost
# a third of ingest's validation time (hundreds of numbers per document).
Finite = Annotated[float, Field(allow_inf_nan=False)]
PositiveFinite = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegFinite = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Model(BaseModel):
    """Base: unknown keys are rejected so a typo or a foreign document never passes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- metadata


class Metadata(_Model):
    """Who produced this result, where, when and how."""

    timestamp: datetime = Field(
        description="When the benchmark run finished, UTC, ISO 8601 with offset."
    )
    run_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Identifier of the run this result belongs to (one run = many tasks).",
    )
    sample: int = Field(
        ge=0, description="Index of the instance among the N launched for this type (0-based)."
    )
    instance_type: str = Field(
        min_length=1,
        max_length=64,
        description="EC2 instance type measured, e.g. m7i.large; 'local' for a machine "
        "outside EC2 when run with --local.",
    )
    region: str = Field(
        min_length=1,
        max_length=32,
        description="AWS region of the instance; 'local' outside EC2.",
    )
    availability_zone: str | None = Field(
        default=None, description="Availability zone of the instance; null outside EC2."
    )
    benchmark_suite: list[str] = Field(
        min_length=1, description="Benchmarks run, in order, e.g. ['stream']."
    )
    data_version: str = Field(
        pattern=r"^1\.\d+\.\d+$",
        description="Version of this document's format; see docs/data-version.md.",
    )
    collection_method: Literal["local", "sandbox", "aws"] = Field(
        description="How the result was collected: 'aws' on a real EC2 instance, 'sandbox' "
        "on this machine under the simulated cloud (never published as real), 'local' on "
        "the machine the agent ran on directly."
    )
    tool_version: str = Field(description="instbench version that produced the agent.")
    quick: bool = Field(
        default=False,
        description="True when run in quick mode (small arrays, few trials): for tests and "
        "demos, never published.",
    )
    task_id: str | None = Field(
        default=None, description="Orchestrator task identifier (type, benchmark set, sample)."
    )
    market: Literal["on-demand", "spot"] | None = Field(
        default=None, description="Purchase option of the instance; null outside EC2."
    )
    hourly_price_usd: PositiveFinite | None = Field(
        default=None,
        description="Hourly price of the instance when it was launched, USD (spot: the "
        "zone's latest spot price; on-demand: the list price). Null when unknown. Since 1.1.0.",
    )
    spot_interruptions: int | None = Field(
        default=None,
        ge=0,
        description="How many spot instances of this task were interrupted before this "
        "result was measured (the result itself comes from an uninterrupted instance, "
        "possibly on-demand after --spot-fallback). Null outside fleet runs. Since 1.1.0.",
    )


# ----------------------------------------------------------------------- STREAM results


class StreamKernel(_Model):
    """Bandwidths of one STREAM kernel over the counted trials (first trial discarded).

    Bandwidth is STREAM's: bytes counted per element (16 for copy/scale, 24 for add/triad)
    times array elements, divided by the trial's wall time, in GB/s (10^9 bytes/s).
    """

    best_gbps: PositiveFinite = Field(description="Best rate: bytes / fastest trial time.")
    avg_gbps: PositiveFinite = Field(
        description="Bytes / mean trial time (STREAM's 'Avg time' as a rate)."
    )
    min_gbps: PositiveFinite = Field(description="Bytes / slowest trial time.")
    max_gbps: PositiveFinite = Field(
        description="Highest per-trial rate; equals best_gbps by definition, kept for readers "
        "of the earlier collector's max field."
    )
    min_time_s: PositiveFinite = Field(description="Fastest counted trial, seconds.")
    avg_time_s: PositiveFinite = Field(description="Mean of counted trials, seconds.")
    max_time_s: PositiveFinite = Field(description="Slowest counted trial, seconds.")
    bytes_per_trial: int = Field(gt=0, description="Bytes counted per trial (STREAM counting).")
    trial_times_s: list[PositiveFinite] = Field(
        min_length=1,
        description="Wall time of every counted trial, seconds, in run order (the first, "
        "discarded trial is not included). Kept raw for within-instance statistics.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> StreamKernel:
        tol = 1e-6 * self.best_gbps
        if abs(self.max_gbps - self.best_gbps) > tol:
            raise ValueError("max_gbps must equal best_gbps")
        if not (self.min_gbps <= self.avg_gbps + tol and self.avg_gbps <= self.best_gbps + tol):
            raise ValueError("bandwidths must satisfy min <= avg <= best")
        if len(self.trial_times_s) and abs(min(self.trial_times_s) - self.min_time_s) > 1e-9:
            raise ValueError("min_time_s must be the fastest of trial_times_s")
        return self


class StreamRun(_Model):
    """One STREAM execution at one thread count."""

    thread_mode: Literal["all", "single"] = Field(
        description="'all': every online CPU; 'single': one thread (per-core bandwidth)."
    )
    threads: int = Field(gt=0, description="OpenMP threads used.")
    array_elements: int = Field(gt=0, description="Elements per array (double precision).")
    array_bytes: int = Field(gt=0, description="Bytes per array (elements x 8).")
    total_bytes: int = Field(gt=0, description="Bytes of the three arrays together.")
    ntimes: int = Field(ge=2, description="Trials run per kernel, including the discarded one.")
    trials_counted: int = Field(ge=1, description="Trials counted (ntimes - 1).")
    validation_passed: bool = Field(
        description="STREAM's result check: final array values match the analytically "
        "expected ones within tolerance."
    )
    validation_detail: str = Field(description="What the check compared and found.")
    timer_resolution_ns: float | None = Field(
        default=None, description="Measured granularity of the wall clock used, nanoseconds."
    )
    duration_s: NonNegFinite = Field(description="Wall time of this execution, seconds.")
    kernels: dict[Literal["copy", "scale", "add", "triad"], StreamKernel] = Field(
        description="Per-kernel bandwidths."
    )

    @field_validator("kernels")
    @classmethod
    def _all_kernels(cls, v: dict[str, StreamKernel]) -> dict[str, StreamKernel]:
        missing = [k for k in STREAM_KERNELS if k not in v]
        if missing:
            raise ValueError(f"missing STREAM kernels: {', '.join(missing)}")
        return v


class StreamResult(_Model):
    """The STREAM benchmark: memory bandwidth with all threads and with one."""

    kernel_version: str = Field(description="Version of instbench's STREAM kernel source.")
    source_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="sha256 of the C source that was compiled."
    )
    array_size_reason: str = Field(
        description="Why this array size: the floor, a cap to available memory, a user "
        "override, or quick mode."
    )
    nontemporal_stores: Literal["compiler-default"] = Field(
        default="compiler-default",
        description="The kernel uses plain C loops; no streaming-store intrinsics. Whatever "
        "the compiler (or a libc memcpy it substitutes) does is recorded by this value.",
    )
    huge_pages: str = Field(
        description="How arrays were allocated with respect to transparent huge pages "
        "(no madvise by the kernel; the system THP policy applies)."
    )
    runs: list[StreamRun] = Field(min_length=1, description="One entry per thread mode.")


# ---------------------------------------------------------------- latency results

LATENCY_LEVELS = ("l1", "l2", "l3", "memory")
"""The levels the latency benchmark reports, from the fastest."""


class LatencyPoint(_Model):
    """One working-set size of the latency sweep.

    Latency: a dependent pointer chase over a random cyclic permutation of the working
    set's cache lines (one pointer per line), nanoseconds per load. Bandwidth: a single
    thread summing the same bytes in address order, GB/s (10^9 bytes/s). Each is the best
    of the samples (interference only adds time); the samples are kept.
    """

    size_bytes: int = Field(gt=0, description="Working-set size, bytes.")
    latency_ns: PositiveFinite = Field(description="Load-to-use latency, ns (best sample).")
    bandwidth_gbps: PositiveFinite = Field(
        description="Single-thread read bandwidth, GB/s (best sample)."
    )
    latency_samples_ns: list[PositiveFinite] = Field(
        min_length=1, description="Latency of every sample, ns per load, in run order."
    )
    bandwidth_samples_gbps: list[PositiveFinite] = Field(
        min_length=1, description="Read bandwidth of every sample, GB/s, in run order."
    )


class LatencyLevel(_Model):
    """A level of the memory hierarchy as found in the measured curve (a plateau)."""

    latency_ns: PositiveFinite = Field(
        description="Median latency of the sweep points on this plateau, ns; since "
        "data_version 1.2.0 of the curve's lower envelope (a point measured slower than a "
        "larger working set, i.e. disturbed, counts at that set's latency)."
    )
    bandwidth_gbps: PositiveFinite = Field(
        description="Median single-thread read bandwidth of the same points, GB/s."
    )
    size_range_bytes: tuple[int, int] = Field(
        description="Smallest and largest working set on the plateau, bytes. For a cache "
        "its upper end is the capacity one core could use as measured (a VM may share a "
        "larger L3 with other tenants); for memory it is where the sweep stopped."
    )
    points: int = Field(ge=1, description="Sweep points on the plateau.")
    reported_size_bytes: int | None = Field(
        default=None,
        description="Size of this cache as the OS reports it (one instance), for "
        "comparison; null for memory or when not reported. Only used to label plateaus.",
    )

    @model_validator(mode="after")
    def _range(self) -> LatencyLevel:
        lo, hi = self.size_range_bytes
        if not 0 < lo <= hi:
            raise ValueError("size_range_bytes must be [lo, hi] with 0 < lo <= hi")
        return self


class LatencyLevels(_Model):
    """L1, L2, L3 and memory as found in the curve; null when the data shows no plateau
    for a level (the reason is in `detection.notes`)."""

    l1: LatencyLevel | None = Field(default=None, description="L1 data cache.")
    l2: LatencyLevel | None = Field(default=None, description="L2 cache.")
    l3: LatencyLevel | None = Field(default=None, description="L3 / last-level cache.")
    memory: LatencyLevel | None = Field(default=None, description="Main memory (DRAM).")


class LatencyDetection(_Model):
    """How levels were read off the curve, and why any level is missing."""

    tolerance: PositiveFinite = Field(
        description="Points within this ratio (max/min) of their neighbours are flat."
    )
    min_jump: PositiveFinite = Field(
        description="Adjacent plateaus closer than this ratio of median latency are merged."
    )
    min_points: int = Field(ge=1, description="Points a plateau needs.")
    cache_hints_bytes: dict[Literal["l1", "l2", "l3"], int] = Field(
        description="Data/unified cache sizes the OS reports for the measuring CPU; they "
        "label plateaus, never create them."
    )
    notes: dict[str, str] = Field(
        description="Per level (l1, l2, l3, memory; 'unassigned' for a plateau that fits "
        "no level): why it is null, or what was merged. 'sweep' (since agent releases of "
        "data_version 1.2.0): how the sweep was measured: passes, and which sizes were "
        "measured again because they were disturbed or a reported level was not found."
    )


class NumaLatency(_Model):
    """Local versus remote NUMA memory, single thread, at the sweep's largest size.

    On a multi-node machine the memory is first-touched from a CPU of the memory node
    (sched_setaffinity, no numactl) and its placement checked with move_pages(2); the
    remote figures are withheld if the pages are not where they should be. On one node
    nothing is remote: the remote fields are null and the local ones are the memory
    level's.
    """

    socket_count: int = Field(ge=1, description="CPU packages (sysfs physical_package_id).")
    node_count: int = Field(ge=1, description="NUMA nodes online.")
    cpu_node: int | None = Field(
        default=None, description="Node of the measuring CPU; null on one node."
    )
    memory_node: int | None = Field(
        default=None, description="Node holding the remote memory; null on one node."
    )
    size_bytes: int | None = Field(
        default=None, description="Working set of the local/remote measurement, bytes."
    )
    local_latency_ns: PositiveFinite | None = Field(
        default=None, description="Latency of memory on the measuring CPU's node, ns."
    )
    local_bandwidth_gbps: PositiveFinite | None = Field(
        default=None, description="Single-thread read bandwidth of local memory, GB/s."
    )
    remote_latency_ns: PositiveFinite | None = Field(
        default=None, description="Latency of memory on the other node, ns."
    )
    remote_bandwidth_gbps: PositiveFinite | None = Field(
        default=None, description="Single-thread read bandwidth of remote memory, GB/s."
    )
    inter_socket_latency_ns: PositiveFinite | None = Field(
        default=None,
        description="Latency of a load served by another socket's memory, ns: the remote "
        "latency when the remote node is on another package, else null.",
    )
    note: str = Field(description="Which CPU read which node's memory; placement check.")


class LatencyResult(_Model):
    """The latency benchmark: pointer-chase latency and read bandwidth over working-set
    sizes, and the cache levels found in the curve."""

    kernel_version: str = Field(description="Version of instbench's latency kernel source.")
    source_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="sha256 of the C source that was compiled."
    )
    cflags: list[str] = Field(description="Flags the latency kernel was compiled with.")
    sweep_reason: str = Field(
        description="Why the sweep stops where it does (reported LLC, floor, caps)."
    )
    stride_bytes: int = Field(
        gt=0, description="Distance between pointers: the cache line size the OS reports."
    )
    samples: int = Field(
        ge=1,
        description="Samples per size and measurement as planned (over all passes); a "
        "size measured again has more, pooled (detection.notes['sweep'] says which).",
    )
    pinned_cpu: int = Field(ge=0, description="CPU the measuring thread was pinned to.")
    huge_pages: str = Field(
        description="Whether MADV_HUGEPAGE was asked for and granted (AnonHugePages): with "
        "base pages, TLB misses add to the latencies of large working sets."
    )
    points: list[LatencyPoint] = Field(
        min_length=2, description="The sweep, ascending working-set sizes."
    )
    levels: LatencyLevels = Field(description="Levels found in the curve.")
    detection: LatencyDetection = Field(description="Parameters and notes of the detection.")
    numa: NumaLatency | None = Field(
        default=None, description="Local versus remote memory; null when not measured."
    )

    @model_validator(mode="after")
    def _ascending(self) -> LatencyResult:
        sizes = [p.size_bytes for p in self.points]
        if sizes != sorted(set(sizes)):
            raise ValueError("points must have strictly ascending size_bytes")
        return self

    @property
    def l1(self) -> LatencyLevel | None:
        """Shortcut for levels.l1 (publication reads latency.l1 ... latency.memory)."""
        return self.levels.l1

    @property
    def l2(self) -> LatencyLevel | None:
        """Shortcut for levels.l2."""
        return self.levels.l2

    @property
    def l3(self) -> LatencyLevel | None:
        """Shortcut for levels.l3."""
        return self.levels.l3

    @property
    def memory(self) -> LatencyLevel | None:
        """Shortcut for levels.memory."""
        return self.levels.memory


# ------------------------------------------------------------------ linpack results


class LinpackPeak(_Model):
    """Theoretical double-precision peak: physical cores x clock x FLOPs per cycle.

    Since data_version 1.2.0 FLOPs per cycle are those of the core identified from CPUID
    family/model (x86) or MIDR implementer/part (arm64) in instbench's table
    (instbench/benchmarks/peaks.py; `core` names the row, `core_source` its source), and
    the clock is the nominal one, as TOP500's Rpeak (`clock` says which was used); the
    measured clock is kept in `measured_mhz`. An unknown core has no peak. Earlier results
    took FLOPs per cycle from the widest vector extension (AVX-512 32, an upper bound:
    Zen 4 peaks at 16) and the OS-reported or measured clock.
    """

    gflops: PositiveFinite | None = Field(
        description="Peak, GFLOPS; null when the core is not in the table or no clock is "
        "known (the reason is in `note`)."
    )
    cores: int = Field(ge=1, description="Physical cores counted (SMT siblings share units).")
    max_mhz: PositiveFinite | None = Field(
        description="Clock the peak assumes, MHz (which: `clock`; where from: "
        "frequency_source). The name is historical: since 1.2.0 it is the nominal clock "
        "whenever one is known."
    )
    frequency_source: str | None = Field(
        default=None,
        description="Where max_mhz came from: since 1.2.0 'model name', 'cpufreq "
        "base_frequency', the documented clock of the core (Graviton), 'cpuinfo (...)', "
        "'cpufreq cpuinfo_max_freq (...)' or 'measured: ...'; before 1.2.0 'cpufreq', "
        "'cpuinfo' or 'measured: dependent-add loop'. Null with no clock.",
    )
    clock: Literal["nominal", "maximum", "measured"] | None = Field(
        default=None,
        description="Which clock max_mhz is: 'nominal' (base, as Rpeak), 'maximum' "
        "(cpufreq's highest, when no nominal is known) or 'measured'; null with no clock "
        "and in results before 1.2.0.",
    )
    measured_mhz: PositiveFinite | None = Field(
        default=None,
        description="Clock the core ran at during the run, measured as the rate of a "
        "dependent integer-add chain (one add per cycle), MHz; null when it could not be "
        "measured and in results before 1.2.0.",
    )
    flops_per_cycle: int | None = Field(description="DP FLOPs per cycle per core assumed.")
    extension: str | None = Field(description="Widest vector extension the CPU offers.")
    assumption: str | None = Field(description="Execution units behind flops_per_cycle.")
    core: str | None = Field(
        default=None,
        description="Key of the peak-table row used (e.g. 'amd-zen4'); null for a core "
        "not in the table and in results before 1.2.0.",
    )
    core_name: str | None = Field(default=None, description="Microarchitecture of that row.")
    core_source: str | None = Field(
        default=None, description="The row's source (vendor optimization manual / docs)."
    )
    identified_by: str | None = Field(
        default=None,
        description="What the core was identified from, e.g. 'AuthenticAMD CPUID family 25 "
        "model 17 (0x11)' or 'MIDR implementer 0x41 part 0xd40'.",
    )
    note: str = Field(description="How the peak was estimated and why it may be off.")


class LinpackCalibration(_Model):
    """The small solve used to choose the problem size."""

    n: int = Field(ge=1, description="Matrix order of the calibration solve.")
    gflops: PositiveFinite = Field(description="Its rate, GFLOPS.")


class LinpackResult(_Model):
    """LINPACK: LU with partial pivoting (LAPACK dgetrf + dgetrs), double precision."""

    kernel_version: str = Field(description="Version of instbench's LINPACK kernel source.")
    source_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="sha256 of the C source that was compiled."
    )
    cflags: list[str] = Field(description="Flags the kernel was compiled with.")
    library: str = Field(description="Path of the BLAS/LAPACK shared library loaded.")
    library_info: str | None = Field(
        default=None, description="The library's build description (OpenBLAS config)."
    )
    library_threads: int | None = Field(
        default=None, description="Threads the library used (OpenBLAS), null if unknown."
    )
    n: int = Field(ge=1, description="Matrix order.")
    size_reason: str = Field(description="Why this n: time budget, memory cap, quick, user.")
    trials: int = Field(ge=1, description="Timed solves.")
    times_s: list[PositiveFinite] = Field(
        min_length=1, description="Wall time of each solve (dgetrf + dgetrs), seconds."
    )
    best_time_s: PositiveFinite = Field(description="Fastest solve, seconds.")
    gflops: PositiveFinite = Field(
        description="(2/3 n^3 + 2 n^2) / best_time_s / 10^9, the HPL operation count."
    )
    scaled_residual: NonNegFinite = Field(
        description="||Ax-b||_inf / (eps (||A||_inf ||x||_inf + ||b||_inf) n) of the last solve."
    )
    residual_threshold: PositiveFinite = Field(description="Pass threshold (HPL: 16).")
    residual_passed: bool = Field(description="scaled_residual < residual_threshold.")
    calibration: LinpackCalibration | None = Field(
        default=None, description="Calibration solve; null in quick mode or with n given."
    )
    peak: LinpackPeak = Field(description="Estimated theoretical peak.")
    efficiency: PositiveFinite | None = Field(
        default=None,
        description="gflops / peak.gflops; null (never 0) when the peak is unknown.",
    )
    efficiency_note: str | None = Field(
        default=None,
        description="Why efficiency is null (e.g. the core is not in the peak table); null "
        "when it is set and in results before 1.2.0.",
    )


# ---------------------------------------------------------------------- cpu results


class CpuInteger(_Model):
    """instbench-int: our own integer kernel (lists, matrix, state machine, CRC). Not
    CoreMark; its scores are iterations per second and not comparable with CoreMark."""

    name: Literal["instbench-int"] = Field(description="Kernel name, always instbench-int.")
    kernel_version: str = Field(description="Version of kernels/cpu_int.c.")
    source_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="sha256 of the C source that was compiled."
    )
    checksum: int = Field(ge=0, description="Expected CRC of the validation iterations.")
    checksum_ok: bool = Field(description="Every thread computed the expected checksum.")
    duration_ms: PositiveFinite = Field(description="Timed run per thread mode, ms.")
    threads: int = Field(ge=1, description="Threads of the all-threads run.")
    physical_cores: int = Field(ge=1, description="Physical cores of the machine.")
    single_thread_score: PositiveFinite = Field(description="Iterations/s, one thread.")
    all_threads_score: PositiveFinite = Field(description="Iterations/s, all threads summed.")
    scaling: PositiveFinite = Field(description="all_threads_score / single_thread_score.")
    parallel_efficiency: PositiveFinite = Field(
        description="all_threads_score / (single_thread_score x threads)."
    )
    score_per_physical_core: PositiveFinite = Field(
        description="all_threads_score / physical cores (at most threads)."
    )
    score_per_logical_cpu: PositiveFinite = Field(description="all_threads_score / threads.")
    smt_yield: PositiveFinite = Field(
        description="score_per_physical_core / single_thread_score: what a whole core with "
        "its SMT siblings gives relative to one thread (about 1 without SMT)."
    )
    per_core_score: PositiveFinite | None = Field(
        default=None,
        description="Iterations/s with one thread per physical core (OMP_PLACES=cores, "
        "OMP_PROC_BIND=spread). Null without SMT (that run is the all-threads run) and in "
        "documents before 1.2.0.",
    )
    smt_efficiency: PositiveFinite | None = Field(
        default=None,
        description="all_threads_score / per_core_score: throughput with every vCPU over "
        "throughput with one thread per physical core. Exactly 1.0 on a CPU without SMT "
        "(threads_per_core 1), by definition. Null when not measured (SMT with fewer "
        "threads than CPUs, or documents before 1.2.0). Since 1.2.0.",
    )


class CpuOpenssl(_Model):
    """`openssl speed -mr -seconds 1 -evp ...` rates, bytes/s as OpenSSL reports them."""

    version: str = Field(description="`openssl version` output.")
    seconds_per_size: int = Field(ge=1, description="Seconds run per block size.")
    aes_256_gcm_bytes_per_s: dict[str, PositiveFinite] = Field(
        description="AES-256-GCM, block size in bytes -> bytes per second."
    )
    sha256_bytes_per_s: dict[str, PositiveFinite] = Field(
        description="SHA-256, block size in bytes -> bytes per second."
    )


class CpuVectorRate(_Model):
    """DP multiply-add rate of kernels/vecflops.c built for one extension."""

    extension: str = Field(description="Extension the kernel was compiled for.")
    cflags: list[str] = Field(description="Flags that target it.")
    single_thread_gflops: PositiveFinite = Field(description="One thread, GFLOPS.")
    all_threads_gflops: PositiveFinite = Field(description="All threads, GFLOPS.")


class CpuVector(_Model):
    """Vector extensions the CPU offers and the rates measured for them."""

    offered: list[str] = Field(description="Of sse2, avx, avx2, avx512f, neon, sve: present.")
    measured: list[CpuVectorRate] = Field(description="One entry per extension measured.")
    note: str = Field(description="Extensions offered but not measured, and why.")


class CoremarkRun(_Model):
    """One CoreMark performance run, as CoreMark reported it (valid runs only)."""

    threads: int = Field(ge=1, description="Contexts (pthreads) CoreMark ran.")
    score: PositiveFinite = Field(
        description="CoreMark score: iterations per second over all contexts."
    )
    iterations: int = Field(ge=1, description="Iterations over all contexts.")
    total_time_s: PositiveFinite = Field(description="Timed run, seconds (at least 10).")
    compiler_version: str | None = Field(description="CoreMark's 'Compiler version' line.")
    compiler_flags: str | None = Field(description="CoreMark's 'Compiler flags' line.")
    parallel_method: str | None = Field(
        description="'PThreads' for a multi-context build, null for a single-thread one."
    )
    report_line: str = Field(description="The 'CoreMark 1.0 : ...' line verbatim.")


class CpuCoremark(_Model):
    """Real EEMBC CoreMark, fetched at run time at a pinned commit, every source file
    checked against a pinned sha256, built on the machine (linux64 port, -O2, as
    CoreMark's Makefile does) and validated by CoreMark's own CRC checks."""

    name: Literal["coremark"] = Field(description="Always coremark.")
    version: str = Field(description="CoreMark version the binary reports (1.0).")
    repository: str = Field(description="Public repository the sources come from.")
    tag: str = Field(description="Release tag pinned.")
    commit: str = Field(pattern=r"^[0-9a-f]{40}$", description="Commit pinned.")
    base_url: str = Field(description="Base URL the files were fetched from.")
    files_sha256: dict[str, str] = Field(description="Each source file and its verified sha256.")
    port: str = Field(description="CoreMark port directory built (linux64).")
    compiler: CompilerInfo = Field(description="Compiler that built CoreMark.")
    cflags: list[str] = Field(description="Flags of the single-thread build.")
    all_threads_cflags: list[str] = Field(description="Flags of the all-threads build.")
    threads: int = Field(ge=1, description="Contexts of the all-threads run.")
    physical_cores: int = Field(ge=1, description="Physical cores used (at most threads).")
    single_thread: CoremarkRun = Field(description="Single-thread performance run.")
    all_threads: CoremarkRun = Field(
        description="All-threads performance run (the single-thread run when threads is 1)."
    )
    validation_run: dict[str, bool] | None = Field(
        description="CoreMark's 2K validation run ({'valid': true}); null in quick mode."
    )
    single_thread_score: PositiveFinite = Field(description="CoreMark, one thread.")
    all_threads_score: PositiveFinite = Field(description="CoreMark, all threads.")
    scaling: PositiveFinite = Field(description="all_threads_score / single_thread_score.")
    smt_yield: PositiveFinite = Field(
        description="all_threads_score / physical cores / single_thread_score."
    )
    mhz: PositiveFinite | None = Field(description="Maximum MHz the OS reports; null if none.")
    single_thread_score_per_mhz: PositiveFinite | None = Field(
        description="single_thread_score / mhz (CoreMark/MHz); null without a frequency."
    )
    all_threads_score_per_mhz: PositiveFinite | None = Field(
        description="all_threads_score / mhz; null without a frequency."
    )


class CpuResult(_Model):
    """The CPU benchmark: integer throughput, crypto rates, vector FLOPS."""

    kernel_version: str = Field(description="Version of instbench's CPU kernels.")
    cflags: list[str] = Field(description="Flags instbench-int was compiled with.")
    integer: CpuInteger = Field(description="instbench-int scores and scaling.")
    coremark: CpuCoremark | None = Field(
        default=None,
        description="Real CoreMark; null when it was not fetched, failed its checksum, "
        "build or validation (the reason is in coremark_note).",
    )
    coremark_note: str | None = Field(
        default=None,
        description="Why coremark is null (not configured, fetch error, checksum mismatch, "
        "build failure, invalid run); null when CoreMark ran.",
    )
    openssl: CpuOpenssl | None = Field(
        default=None, description="OpenSSL rates; null when openssl is absent or disabled."
    )
    vector: CpuVector = Field(description="Vector extensions and their FLOPS.")


# ------------------------------------------------------------------- suite results


class SuiteRepeat(_Model):
    """One execution of a suite benchmark's command."""

    index: int = Field(ge=0, description="Repeat number, 0-based, in run order.")
    exit_code: int | None = Field(description="Exit status; null when killed for its timeout.")
    wall_s: NonNegFinite = Field(description="Wall time of the command, seconds.")
    timed_out: bool = Field(description="The command hit timeout_s; its process group was killed.")
    value: Finite | None = Field(description="Value parsed from its output; null on failure.")


class SuiteBenchmarkResult(_Model):
    """One benchmark of a user-defined suite: the command, how it was read, its values."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="Benchmark name.")
    description: str = Field(description="The suite's description of it.")
    command: list[str] = Field(min_length=1, description="argv as given in the suite.")
    shell: bool = Field(description="True when run by /bin/sh -c (the suite said so).")
    parse: dict[str, str] = Field(description="How the value was read (json path or regex).")
    unit: str = Field(description="Unit of value, as the suite declares it.")
    higher_is_better: bool = Field(description="Direction of improvement.")
    timeout_s: PositiveFinite = Field(description="Per-repeat timeout, seconds.")
    repeats_requested: int = Field(ge=1, description="Repeats the suite asked for.")
    repeats: list[SuiteRepeat] = Field(
        description="Every repeat that ran (a failed repeat stops the benchmark)."
    )
    value: Finite | None = Field(
        description="Median of the repeats' values; null when the benchmark failed."
    )
    status: Literal["ok", "failed"] = Field(description="ok: every repeat gave a value.")
    error: str | None = Field(description="Why it failed; null when ok.")

    @model_validator(mode="after")
    def _consistent(self) -> SuiteBenchmarkResult:
        if self.status == "ok" and (self.value is None or self.error is not None):
            raise ValueError("an ok suite benchmark needs a value and no error")
        if self.status == "failed" and (self.value is not None or not self.error):
            raise ValueError("a failed suite benchmark has no value and says why")
        return self


class SuiteResult(_Model):
    """A user-defined suite (--suite FILE.toml): commands, units and measured values."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$", description="Suite name.")
    version: str = Field(description="Suite version, as the file declares it.")
    description: str = Field(description="The suite's description.")
    format: Literal["instbench-suite/1"] = Field(description="Suite artifact format.")
    source_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="sha256 of the suite TOML file."
    )
    artifact_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="sha256 of the validated JSON artifact the agent ran.",
    )
    aggregate: Literal["median"] = Field(description="How repeats become value.")
    requirements: dict[str, Any] = Field(
        description="Declared commands/packages and where the commands were found."
    )
    benchmarks: list[SuiteBenchmarkResult] = Field(
        min_length=1, description="One entry per benchmark, in suite order."
    )


# ------------------------------------------------------------------ performance_data


class IdleResult(_Model):
    """The `idle` test benchmark: a fixed wait used to measure orchestration; it says
    nothing about the machine and is never published."""

    version: str = Field(description="Version of the idle benchmark.")
    seconds_requested: int = Field(ge=0, description="Seconds the benchmark was asked to wait.")
    seconds_elapsed: NonNegFinite = Field(description="Seconds the wait took (monotonic clock).")


class StorageLatency(_Model):
    """Completion latency (fio clat) of one job, microseconds."""

    p50: NonNegFinite | None = Field(description="Median completion latency, µs.")
    p99: NonNegFinite | None = Field(description="99th percentile completion latency, µs.")
    p99_9: NonNegFinite | None = Field(description="99.9th percentile completion latency, µs.")
    mean: NonNegFinite | None = Field(description="Mean completion latency, µs.")


class StorageJob(_Model):
    """One fio job on one target (or the preconditioning pass, which has no name)."""

    name: str | None = Field(
        default=None, description="randread_4k_qd1, ..., write_1m_seq; None: preconditioning."
    )
    rw: str | None = Field(default=None, description="fio rw: randread, read, randwrite, write.")
    block_size_bytes: int | None = Field(default=None, gt=0, description="Block size, bytes.")
    iodepth: int | None = Field(default=None, gt=0, description="Queue depth.")
    iops: NonNegFinite = Field(description="I/O operations per second (fio).")
    bw_mb_s: NonNegFinite = Field(description="Throughput, MB/s (10^6 bytes per second).")
    io_bytes: int = Field(ge=0, description="Bytes transferred by the job.")
    runtime_ms: int = Field(ge=0, description="fio's runtime of the job, ms.")
    clat_us: StorageLatency
    direct: bool = Field(description="fio's own job options say direct=1 (O_DIRECT).")
    ioengine: str | None = Field(description="fio I/O engine (libaio, io_uring, psync).")
    fio_job_options: dict[str, str] = Field(description="fio's JSON 'job options', verbatim.")
    started_unix: Finite = Field(description="Wall clock when the job started, Unix seconds.")
    ended_unix: Finite = Field(description="Wall clock when the job ended, Unix seconds.")
    area_bytes: int | None = Field(
        default=None, ge=0, description="Preconditioning: bytes of the test area."
    )
    ratio_to_limit: NonNegFinite | None = Field(
        default=None,
        description="Measured over the advertised limit: IOPS for 4 KiB jobs, MB/s for "
        "1 MiB jobs; None when no limit is advertised.",
    )


class StorageLimits(_Model):
    """What AWS advertises for a target (None: not advertised)."""

    iops: NonNegFinite | None = Field(
        description="Ceiling: min(volume IOPS, the type's EBS-optimized maximum IOPS)."
    )
    throughput_mb_s: NonNegFinite | None = Field(
        description="Ceiling, MB/s: min(volume throughput, the type's EBS maximum)."
    )
    baseline_iops: NonNegFinite | None = Field(description="The type's EBS baseline IOPS.")
    baseline_throughput_mb_s: NonNegFinite | None = Field(
        description="The type's EBS baseline throughput, MB/s."
    )


class StorageTarget(_Model):
    """One device or file measured (or skipped, with the reason)."""

    path: str = Field(description="Device or file path on the machine.")
    medium: Literal["block-device", "file"] = Field(description="A whole disk or a file.")
    role: str = Field(description="ebs, instance-store, unknown (devices) or file.")
    stands_in_for: str | None = Field(
        default=None, description="Off EC2: the disk role this file stands in for."
    )
    model: str | None = Field(default=None, description="NVMe model string.")
    volume_id: str | None = Field(default=None, description="EBS volume id (NVMe serial).")
    device_size_bytes: int | None = Field(default=None, ge=0, description="Disk size, bytes.")
    area_bytes: int | None = Field(default=None, ge=0, description="Test area, bytes.")
    precondition: StorageJob | None = Field(description="The write pass before any read.")
    jobs: list[StorageJob] = Field(description="The measured jobs, in the order they ran.")
    skipped: str | None = Field(description="Why jobs were not run; None when they were.")
    limits: StorageLimits | None = Field(
        default=None, description="Advertised ceilings the ratios are taken against."
    )


class StorageRefusal(_Model):
    """A device the agent would not write to, and why."""

    path: str = Field(description="The device or file that was not written to.")
    reason: str = Field(description="Why (mounted, a filesystem signature, root volume...).")


class StorageResult(_Model):
    """The `storage` benchmark: fio with O_DIRECT on the data volume and instance store."""

    version: str = Field(description="Version of the storage benchmark.")
    fio_version: str = Field(description="fio --version.")
    ioengine: str = Field(description="fio I/O engine used for every job.")
    direct: bool = Field(description="Every job ran with direct=1 (from fio's JSON).")
    size_bytes: int = Field(gt=0, description="Requested test area per target, bytes.")
    runtime_s: int = Field(gt=0, description="Seconds per job.")
    advertised: dict[str, NonNegFinite] = Field(
        description="What the controller passed: volume_iops, volume_throughput_mibps, "
        "ebs_baseline/maximum_iops, ebs_baseline/maximum_mbps (MB/s), instance_store_*."
    )
    targets: list[StorageTarget] = Field(description="Every device or file measured.")
    refused: list[StorageRefusal] = Field(description="Devices the agent would not write.")


class NetworkThroughput(_Model):
    """One iperf3 TCP test between the pair."""

    name: Literal["tcp_1flow", "tcp_1flow_reverse", "tcp_nflows", "tcp_nflows_reverse"] = Field(
        description="Which test: one flow or N flows, client-to-server or reverse (-R)."
    )
    flows: int = Field(ge=1, description="Parallel TCP flows (iperf3 -P).")
    direction: Literal["client-to-server", "server-to-client"] = Field(
        description="Who sent: the client, or the server (iperf3 -R)."
    )
    duration_s: int = Field(ge=1, description="Seconds of the test (iperf3 -t).")
    gbps: NonNegFinite = Field(description="What the receiver got, Gbit/s (10^9 bits/s).")
    sender_gbps: NonNegFinite = Field(description="What the sender sent, Gbit/s.")
    retransmits: int | None = Field(
        default=None, ge=0, description="TCP retransmissions the sender saw (Linux only)."
    )


class NetworkBurst(_Model):
    """A long N-flow run sampled per interval: how an 'Up to' type spends its credits."""

    duration_s: int = Field(ge=1, description="Seconds of the run.")
    interval_s: PositiveFinite = Field(description="Sampling interval, seconds.")
    flows: int = Field(ge=1, description="Parallel TCP flows.")
    samples_gbps: list[NonNegFinite] = Field(description="Received rate per interval, Gbit/s.")
    burst_gbps: NonNegFinite = Field(description="Median rate of the first tenth (>= 2 samples).")
    sustained_gbps: NonNegFinite = Field(
        description="Median rate of the last quarter (>= 2 samples)."
    )
    fell: bool = Field(description="True when the sustained rate is below 80 % of the burst.")
    seconds_until_fall: NonNegFinite | None = Field(
        default=None,
        description="Start of the first interval from which the rate stayed below the "
        "midpoint of burst and sustained; null when it did not fall.",
    )


class NetworkLatency(_Model):
    """TCP request/response round trips of 1 byte on one connection (netlat kernel)."""

    message_bytes: Literal[1] = Field(description="Bytes per request and per response.")
    round_trips: int = Field(ge=1, description="Timed round trips (after a warm-up).")
    median_us: NonNegFinite = Field(description="Median round trip, microseconds.")
    p99_us: NonNegFinite = Field(description="99th percentile (nearest rank), microseconds.")
    p999_us: NonNegFinite = Field(description="99.9th percentile (nearest rank), microseconds.")
    min_us: NonNegFinite = Field(description="Fastest round trip, microseconds.")
    max_us: NonNegFinite = Field(description="Slowest round trip, microseconds.")
    mean_us: NonNegFinite = Field(description="Mean round trip, microseconds.")


class NetworkAdvertised(_Model):
    """What DescribeInstanceTypes advertises for the type, and measured/advertised."""

    network_performance: str | None = Field(
        default=None, description="NetworkInfo.NetworkPerformance, e.g. 'Up to 12.5 Gigabit'."
    )
    network_card_index: int = Field(ge=0, description="The network card the figures are of.")
    baseline_gbps: NonNegFinite | None = Field(
        default=None, description="That card's BaselineBandwidthInGbps."
    )
    peak_gbps: NonNegFinite | None = Field(
        default=None, description="That card's PeakBandwidthInGbps."
    )
    up_to: bool = Field(description="True when NetworkPerformance starts with 'Up to'.")
    ratio_nflows_to_peak: NonNegFinite | None = Field(
        default=None, description="Best N-flow rate / peak_gbps."
    )
    ratio_sustained_to_baseline: NonNegFinite | None = Field(
        default=None,
        description="Sustained rate of the burst run (else the best N-flow rate) / baseline_gbps.",
    )


class NetworkResult(_Model):
    """The `network` benchmark: this machine's side of a pair (or both sides over loopback)."""

    version: str = Field(description="Version of the network benchmark.")
    source_sha256: str = Field(description="sha256 of the latency kernel's C source.")
    role: Literal["both", "server", "client"] = Field(
        description="both: server and client on this machine over 127.0.0.1 (says nothing "
        "about a network); server: served a client and measured nothing; client: measured."
    )
    peer: str | None = Field(default=None, description="The server's IPv4 (client, both).")
    loopback: bool = Field(description="True when the traffic never left this machine.")
    port: int = Field(ge=1, le=65535, description="iperf3's port (the latency kernel: +1).")
    iperf3_version: str = Field(description="First line of `iperf3 --version`.")
    flows: int | None = Field(default=None, ge=1, description="N of the N-flow tests.")
    throughput: list[NetworkThroughput] = Field(
        default_factory=list, description="The four iperf3 tests (empty on a server)."
    )
    burst: NetworkBurst | None = Field(
        default=None, description="Burst-and-baseline run, when one was asked for."
    )
    latency: NetworkLatency | None = Field(default=None, description="Round-trip latency.")
    advertised: NetworkAdvertised | None = Field(
        default=None, description="Advertised figures, when the controller gave them."
    )
    served_s: NonNegFinite | None = Field(
        default=None, description="Server side: seconds it served until the client finished."
    )


class PerformanceData(_Model):
    """Measurements, one section per benchmark that ran."""

    stream: StreamResult | None = Field(default=None, description="STREAM memory bandwidth.")
    latency: LatencyResult | None = Field(
        default=None, description="Cache and memory latency and read bandwidth sweep."
    )
    linpack: LinpackResult | None = Field(
        default=None, description="LINPACK dense LU solve (GFLOPS, residual, efficiency)."
    )
    cpu: CpuResult | None = Field(
        default=None, description="Integer (instbench-int), OpenSSL and vector FLOPS rates."
    )
    idle: IdleResult | None = Field(
        default=None, description="Test benchmark (fixed wait); never published."
    )
    network: NetworkResult | None = Field(
        default=None, description="TCP throughput and latency between a pair of instances."
    )
    suite: SuiteResult | None = Field(
        default=None, description="A user-defined suite's measurements (run --suite)."
    )
    storage: StorageResult | None = Field(
        default=None, description="fio on the data volume and instance store (data 1.2.0)."
    )


# ----------------------------------------------------------------------- system_info


class CacheInfo(_Model):
    """One cache level/type as the OS reports it (a VM may report the host's sizes)."""

    level: int = Field(ge=1, le=4, description="Cache level (1..4).")
    type: Literal["Data", "Instruction", "Unified"] = Field(description="Cache type.")
    size_bytes: int = Field(ge=0, description="Size of one instance of this cache, bytes.")
    instances: int = Field(ge=1, description="How many distinct instances the OS reports.")
    shared_cpu_count: int = Field(ge=1, description="Logical CPUs sharing one instance.")
    line_size_bytes: int | None = Field(default=None, description="Cache line size, bytes.")


class CpuInfo(_Model):
    """Processor as seen by the OS (lscpu equivalent from /proc/cpuinfo and /sys)."""

    vendor: str = Field(description="Vendor id: GenuineIntel, AuthenticAMD, ARM, ...")
    manufacturer: Literal["Intel", "AMD", "AWS", "Apple", "Other"] = Field(
        description="Normalised manufacturer (AWS for Graviton / Neoverse on EC2)."
    )
    model_name: str = Field(description="Model name string, or the Arm part name.")
    family: str | None = Field(default=None, description="x86 family / Arm implementer.")
    model: str | None = Field(default=None, description="x86 model / Arm part number.")
    stepping: str | None = Field(default=None, description="x86 stepping / Arm revision.")
    sockets: int = Field(ge=1, description="Physical packages.")
    cores_per_socket: int = Field(ge=1, description="Physical cores per socket.")
    threads_per_core: int = Field(ge=1, description="Hardware threads per core (SMT).")
    logical_cpus: int = Field(ge=1, description="Logical CPUs present.")
    online_cpus: int = Field(ge=1, description="Logical CPUs online (what the agent may use).")
    max_mhz: float | None = Field(default=None, description="Maximum frequency if reported.")
    flags: list[str] = Field(description="CPU feature flags (x86 flags / Arm Features).")


class MemoryInfo(_Model):
    """Memory from /proc/meminfo."""

    total_bytes: int = Field(gt=0, description="MemTotal.")
    available_bytes: int = Field(ge=0, description="MemAvailable when the agent started.")
    hugepage_size_bytes: int | None = Field(default=None, description="Hugepagesize.")


class OsInfo(_Model):
    """Operating system from /etc/os-release and uname."""

    id: str = Field(description="os-release ID, e.g. amzn, debian, ubuntu.")
    version_id: str | None = Field(default=None, description="os-release VERSION_ID.")
    pretty_name: str | None = Field(default=None, description="os-release PRETTY_NAME.")
    kernel: str = Field(description="Kernel release (uname -r).")


class ThpInfo(_Model):
    """Transparent huge page policy (/sys/kernel/mm/transparent_hugepage)."""

    enabled: str | None = Field(description="Selected value of 'enabled', e.g. madvise.")
    defrag: str | None = Field(description="Selected value of 'defrag'.")


class Ec2Identity(_Model):
    """EC2 identity from IMDSv2; absent outside EC2."""

    instance_id: str = Field(description="i-... identifier.")
    instance_type: str = Field(description="Instance type IMDS reports.")
    availability_zone: str = Field(description="Placement availability zone.")
    region: str = Field(description="Region derived from the identity document.")
    ami_id: str = Field(description="AMI the instance booted from.")
    account_id: str | None = Field(default=None, description="Owning account, if reported.")


class SystemInfo(_Model):
    """The machine the benchmark ran on."""

    architecture: Literal["x86_64", "arm64"] = Field(
        description="Instruction set (aarch64 is reported as arm64, as EC2 names it)."
    )
    cpu: CpuInfo
    numa_nodes: int = Field(ge=1, description="NUMA nodes online.")
    caches: list[CacheInfo] = Field(description="Caches of CPU 0, L1 to LLC.")
    memory: MemoryInfo
    os: OsInfo
    page_size_bytes: int = Field(gt=0, description="Base page size.")
    thp: ThpInfo
    python_version: str = Field(description="Python running the agent.")
    ec2: Ec2Identity | None = Field(
        default=None, description="EC2 identity from IMDSv2; null when not on EC2."
    )


# ----------------------------------------------------------------- execution_context


class CompilerInfo(_Model):
    """The compiler that built the kernels on the target."""

    path: str = Field(description="Executable used.")
    name: Literal["gcc", "clang", "cc", "other"] = Field(description="Compiler family.")
    version: str = Field(description="First line of `--version`.")


class ExecutionContext(_Model):
    """How the run was executed: toolchain, flags, threads, phase timings."""

    agent_version: str = Field(description="Version of the agent that ran.")
    compiler: CompilerInfo | None = Field(
        default=None, description="Compiler used; null when no benchmark needed one."
    )
    cflags: list[str] = Field(description="Flags the kernels were compiled with.")
    openmp: dict[str, str] = Field(
        description="OpenMP environment in effect (OMP_NUM_THREADS, OMP_PROC_BIND, "
        "OMP_PLACES) as set by the agent for the all-threads run."
    )
    binary_cached: bool = Field(
        description="True when a kernel binary cached by source hash + compiler + flags was "
        "reused instead of compiled."
    )
    phase_durations_s: dict[str, NonNegFinite] = Field(
        description="Wall time of each phase: detect, compile, each benchmark, total."
    )
    argv: list[str] = Field(description="Agent command line.")
    parameters: dict[str, dict[str, bool | int | float | str]] | None = Field(
        default=None,
        description="Benchmark parameters set for this run rather than chosen by the "
        "benchmark, by benchmark, as validated against the registry's declared ranges: "
        "`instbench run --param BENCH.NAME=VALUE` and STREAM's aliases --array-size, "
        '--ntimes, --threads (e.g. {"linpack": {"n": 3000}}); null when none was set. '
        "The values used are in each benchmark's own section. Since 1.2.0.",
    )


# ------------------------------------------------------------------------ document


class ResultDocument(_Model):
    """One benchmark result: the unit stored under raw/ and validated on ingest."""

    metadata: Metadata
    performance_data: PerformanceData
    system_info: SystemInfo
    execution_context: ExecutionContext

    @field_validator("performance_data")
    @classmethod
    def _not_empty(cls, v: PerformanceData) -> PerformanceData:
        if all(getattr(v, name) is None for name in type(v).model_fields):
            raise ValueError("performance_data holds no benchmark result")
        return v
