"""The `linpack`, `cpu` and `suite` sections of a result document (performance_data):
LINPACK with its peak's provenance, integer/vector/CoreMark CPU figures, and a
user-defined suite's commands.

Part of the result schema (`results/schema.py` assembles the document).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from instbench.results.base import CompilerInfo, Finite, NonNegFinite, PositiveFinite, ResultModel

# ------------------------------------------------------------------ linpack results


class LinpackPeak(ResultModel):
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


class LinpackCalibration(ResultModel):
    """The small solve used to choose the problem size."""

    n: int = Field(ge=1, description="Matrix order of the calibration solve.")
    gflops: PositiveFinite = Field(description="Its rate, GFLOPS.")


class LinpackResult(ResultModel):
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


class CpuInteger(ResultModel):
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


class CpuOpenssl(ResultModel):
    """`openssl speed -mr -seconds 1 -evp ...` rates, bytes/s as OpenSSL reports them."""

    version: str = Field(description="`openssl version` output.")
    seconds_per_size: int = Field(ge=1, description="Seconds run per block size.")
    aes_256_gcm_bytes_per_s: dict[str, PositiveFinite] = Field(
        description="AES-256-GCM, block size in bytes -> bytes per second."
    )
    sha256_bytes_per_s: dict[str, PositiveFinite] = Field(
        description="SHA-256, block size in bytes -> bytes per second."
    )


class CpuVectorRate(ResultModel):
    """DP multiply-add rate of kernels/vecflops.c built for one extension."""

    extension: str = Field(description="Extension the kernel was compiled for.")
    cflags: list[str] = Field(description="Flags that target it.")
    single_thread_gflops: PositiveFinite = Field(description="One thread, GFLOPS.")
    all_threads_gflops: PositiveFinite = Field(description="All threads, GFLOPS.")


class CpuVector(ResultModel):
    """Vector extensions the CPU offers and the rates measured for them."""

    offered: list[str] = Field(description="Of sse2, avx, avx2, avx512f, neon, sve: present.")
    measured: list[CpuVectorRate] = Field(description="One entry per extension measured.")
    note: str = Field(description="Extensions offered but not measured, and why.")


class CoremarkRun(ResultModel):
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


class CpuCoremark(ResultModel):
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


class CpuResult(ResultModel):
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


class SuiteRepeat(ResultModel):
    """One execution of a suite benchmark's command."""

    index: int = Field(ge=0, description="Repeat number, 0-based, in run order.")
    exit_code: int | None = Field(description="Exit status; null when killed for its timeout.")
    wall_s: NonNegFinite = Field(description="Wall time of the command, seconds.")
    timed_out: bool = Field(description="The command hit timeout_s; its process group was killed.")
    value: Finite | None = Field(description="Value parsed from its output; null on failure.")


class SuiteBenchmarkResult(ResultModel):
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


class SuiteResult(ResultModel):
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
