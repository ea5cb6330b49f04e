"""The `stream` and `latency` sections of a result document (performance_data): memory
bandwidth by the STREAM rules, and cache and memory latency read off a sweep.

Part of the result schema (`results/schema.py` assembles the document); split by what the
sections measure so that each file stays one subject.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from instbench.results.base import NonNegFinite, PositiveFinite, ResultModel

STREAM_KERNELS = ("copy", "scale", "add", "triad")
"""The four STREAM kernels, in the order STREAM runs and reports them."""

STREAM_BYTES_PER_ELEMENT = {"copy": 16, "scale": 16, "add": 24, "triad": 24}
"""STREAM byte counting: bytes moved per array element by each kernel (reads + writes)."""


# ----------------------------------------------------------------------- STREAM results


class StreamKernel(ResultModel):
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


class StreamRun(ResultModel):
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


class StreamResult(ResultModel):
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


class LatencyPoint(ResultModel):
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


class LatencyLevel(ResultModel):
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


class LatencyLevels(ResultModel):
    """L1, L2, L3 and memory as found in the curve; null when the data shows no plateau
    for a level (the reason is in `detection.notes`)."""

    l1: LatencyLevel | None = Field(default=None, description="L1 data cache.")
    l2: LatencyLevel | None = Field(default=None, description="L2 cache.")
    l3: LatencyLevel | None = Field(default=None, description="L3 / last-level cache.")
    memory: LatencyLevel | None = Field(default=None, description="Main memory (DRAM).")


class LatencyDetection(ResultModel):
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


class NumaLatency(ResultModel):
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


class LatencyResult(ResultModel):
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
