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

import math
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

DATA_VERSION = "1.0.0"
"""Version of the result document format (semver; see docs/data-version.md)."""

STREAM_KERNELS = ("copy", "scale", "add", "triad")
"""The four STREAM kernels, in the order STREAM runs and reports them."""

STREAM_BYTES_PER_ELEMENT = {"copy": 16, "scale": 16, "add": 24, "triad": 24}
"""STREAM byte counting: bytes moved per array element by each kernel (reads + writes)."""


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Finite = Annotated[float, AfterValidator(_finite)]
PositiveFinite = Annotated[float, Field(gt=0), AfterValidator(_finite)]
NonNegFinite = Annotated[float, Field(ge=0), AfterValidator(_finite)]


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


# ------------------------------------------------------------------ performance_data


class PerformanceData(_Model):
    """Measurements, one section per benchmark that ran."""

    stream: StreamResult | None = Field(default=None, description="STREAM memory bandwidth.")


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
