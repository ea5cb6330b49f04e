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
from typing import Literal

from pydantic import Field, field_validator

from instbench.results.base import CompilerInfo, NonNegFinite, PositiveFinite, ResultModel
from instbench.results.compute_results import (
    CoremarkRun,
    CpuCoremark,
    CpuInteger,
    CpuOpenssl,
    CpuResult,
    CpuVector,
    CpuVectorRate,
    LinpackCalibration,
    LinpackPeak,
    LinpackResult,
    SuiteBenchmarkResult,
    SuiteRepeat,
    SuiteResult,
)
from instbench.results.io_results import (
    NetworkAdvertised,
    NetworkBurst,
    NetworkLatency,
    NetworkResult,
    NetworkThroughput,
    StorageBurst,
    StorageJob,
    StorageLatency,
    StorageLimits,
    StorageRefusal,
    StorageResult,
    StorageTarget,
)
from instbench.results.memory_results import (
    LATENCY_LEVELS,
    STREAM_BYTES_PER_ELEMENT,
    STREAM_KERNELS,
    LatencyDetection,
    LatencyLevel,
    LatencyLevels,
    LatencyPoint,
    LatencyResult,
    NumaLatency,
    StreamKernel,
    StreamResult,
    StreamRun,
)

DATA_VERSION = "1.2.0"
"""Version of the result document format (semver; see docs/data-version.md)."""


# --------------------------------------------------------------------------- metadata


class Metadata(ResultModel):
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


# ------------------------------------------------------------------ performance_data


class IdleResult(ResultModel):
    """The `idle` test benchmark: a fixed wait used to measure orchestration; it says
    nothing about the machine and is never published."""

    version: str = Field(description="Version of the idle benchmark.")
    seconds_requested: int = Field(ge=0, description="Seconds the benchmark was asked to wait.")
    seconds_elapsed: NonNegFinite = Field(description="Seconds the wait took (monotonic clock).")


class PerformanceData(ResultModel):
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


class CacheInfo(ResultModel):
    """One cache level/type as the OS reports it (a VM may report the host's sizes)."""

    level: int = Field(ge=1, le=4, description="Cache level (1..4).")
    type: Literal["Data", "Instruction", "Unified"] = Field(description="Cache type.")
    size_bytes: int = Field(ge=0, description="Size of one instance of this cache, bytes.")
    instances: int = Field(ge=1, description="How many distinct instances the OS reports.")
    shared_cpu_count: int = Field(ge=1, description="Logical CPUs sharing one instance.")
    line_size_bytes: int | None = Field(default=None, description="Cache line size, bytes.")


class CpuInfo(ResultModel):
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


class MemoryInfo(ResultModel):
    """Memory from /proc/meminfo."""

    total_bytes: int = Field(gt=0, description="MemTotal.")
    available_bytes: int = Field(ge=0, description="MemAvailable when the agent started.")
    hugepage_size_bytes: int | None = Field(default=None, description="Hugepagesize.")


class OsInfo(ResultModel):
    """Operating system from /etc/os-release and uname."""

    id: str = Field(description="os-release ID, e.g. amzn, debian, ubuntu.")
    version_id: str | None = Field(default=None, description="os-release VERSION_ID.")
    pretty_name: str | None = Field(default=None, description="os-release PRETTY_NAME.")
    kernel: str = Field(description="Kernel release (uname -r).")


class ThpInfo(ResultModel):
    """Transparent huge page policy (/sys/kernel/mm/transparent_hugepage)."""

    enabled: str | None = Field(description="Selected value of 'enabled', e.g. madvise.")
    defrag: str | None = Field(description="Selected value of 'defrag'.")


class Ec2Identity(ResultModel):
    """EC2 identity from IMDSv2; absent outside EC2."""

    instance_id: str = Field(description="i-... identifier.")
    instance_type: str = Field(description="Instance type IMDS reports.")
    availability_zone: str = Field(description="Placement availability zone.")
    region: str = Field(description="Region derived from the identity document.")
    ami_id: str = Field(description="AMI the instance booted from.")
    account_id: str | None = Field(default=None, description="Owning account, if reported.")


class SystemInfo(ResultModel):
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


class ExecutionContext(ResultModel):
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


class ResultDocument(ResultModel):
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


__all__ = [
    "LATENCY_LEVELS",
    "STREAM_BYTES_PER_ELEMENT",
    "STREAM_KERNELS",
    "CompilerInfo",
    "CoremarkRun",
    "CpuCoremark",
    "CpuInteger",
    "CpuOpenssl",
    "CpuResult",
    "CpuVector",
    "CpuVectorRate",
    "LatencyDetection",
    "LatencyLevel",
    "LatencyLevels",
    "LatencyPoint",
    "LatencyResult",
    "LinpackCalibration",
    "LinpackPeak",
    "LinpackResult",
    "NetworkAdvertised",
    "NetworkBurst",
    "NetworkLatency",
    "NetworkResult",
    "NetworkThroughput",
    "NumaLatency",
    "StorageBurst",
    "StorageJob",
    "StorageLatency",
    "StorageLimits",
    "StorageRefusal",
    "StorageResult",
    "StorageTarget",
    "StreamKernel",
    "StreamResult",
    "StreamRun",
    "SuiteBenchmarkResult",
    "SuiteRepeat",
    "SuiteResult",
]
"""The sections' models live in memory_results, compute_results and io_results; the
document and everyone who reads it import them from here, the schema's one face."""
