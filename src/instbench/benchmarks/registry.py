"""The benchmarks instbench knows, by name: what each needs, accepts and produces.

A benchmark is declared once, as a `BenchmarkInfo`: its name (also the key of its section
under `performance_data`), version, a one-line description, its parameters (typed, with
ranges, validated before anything runs), what it needs on the instance (a C compiler,
OpenMP, packages, commands), and how to run it (a callable that returns the section and
the build information). The agent validates names and parameters against this table
before it detects or compiles anything, so a typo fails in a second with exit 2, and the
controller shows the same table (`instbench benchmarks list|describe`).

Built-in benchmarks are listed in `_BUILTINS`; their modules are imported only when their
entry is asked for. This module is part of agent.pyz: stdlib-only, Python 3.9.

Third-party benchmarks register through the entry point group `instbench.benchmarks`: the
entry point's name is the benchmark name, and it loads either a `BenchmarkInfo` or a
zero-argument callable returning one. Plugins are loaded only on the controller, with
`importlib.metadata` (`catalog()`), for listing, describing and validating parameters; the
agent on the instance is a stdlib zipapp that contains only instbench's own code, so it
runs built-in benchmarks only (`names()`, `info()`, `parse_list()` never see plugins).
Shipping a plugin's code to instances is not supported yet.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from instbench.benchmarks.errors import BenchmarkInputError

ENTRY_POINT_GROUP = "instbench.benchmarks"
"""Entry point group through which installed distributions add benchmarks."""

PARAMETER_KINDS = ("int", "float", "bool", "str")

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
RESERVED_NAMES = ("suite",)
"""Names no benchmark may take: `suite` is the section of `performance_data` (and the
`benchmark_suite` entry and storage path component) of user-defined suites."""
_PACKAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
"""A distribution package name: what dnf, yum and apt-get accept, minus anything a shell
or the package manager's option parser could act on (no leading '-', no spaces, no ':')."""
_PARAM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


# ------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Parameter:
    """One tunable of a benchmark. `default=None` means "chosen for the machine/mode"."""

    name: str
    kind: str
    """One of PARAMETER_KINDS."""
    help: str
    default: Any = None
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    choices: Tuple[str, ...] = ()
    default_note: Optional[str] = None
    """How the value is chosen when `default` is None (shown by `benchmarks describe`)."""

    def __post_init__(self) -> None:
        if not _PARAM_NAME.match(self.name):
            raise ValueError(f"invalid parameter name {self.name!r}")
        if self.kind not in PARAMETER_KINDS:
            raise ValueError(f"parameter {self.name}: kind must be one of {PARAMETER_KINDS}")
        if self.default is not None:
            self.check(self.default, "<default>")

    def check(self, value: Any, benchmark: str = "") -> Any:
        """The value if it is valid for this parameter, else BenchmarkInputError (one line).

        None is always accepted (it means "choose"). Ints are accepted for float
        parameters; bools are never accepted as numbers.
        """
        where = f"{benchmark}: " if benchmark else ""
        if value is None:
            return None
        kind_ok = {
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(float(value)),
            "bool": isinstance(value, bool),
            "str": isinstance(value, str),
        }[self.kind]
        if not kind_ok:
            raise BenchmarkInputError(
                f"{where}parameter {self.name} must be {self._kind_text()}, got {value!r}"
            )
        if self.kind == "float":
            value = float(value)
        if self.kind in ("int", "float"):
            if self.minimum is not None and value < self.minimum:
                raise BenchmarkInputError(
                    f"{where}parameter {self.name} must be >= {_num(self.minimum)}, got {value}"
                )
            if self.maximum is not None and value > self.maximum:
                raise BenchmarkInputError(
                    f"{where}parameter {self.name} must be <= {_num(self.maximum)}, got {value}"
                )
        if self.choices and value not in self.choices:
            raise BenchmarkInputError(
                f"{where}parameter {self.name} must be one of {', '.join(self.choices)}, "
                f"got {value!r}"
            )
        return value

    def parse(self, text: str, benchmark: str = "") -> Any:
        """Convert command-line text ('5', '2.5', 'true') and check it."""
        where = f"{benchmark}: " if benchmark else ""
        raw = text.strip()
        value: Any = raw
        try:
            if self.kind == "int":
                value = int(raw)
            elif self.kind == "float":
                value = float(raw)
        except ValueError:
            raise BenchmarkInputError(
                f"{where}parameter {self.name} must be {self._kind_text()}, got {text!r}"
            ) from None
        if self.kind == "bool":
            lowered = raw.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise BenchmarkInputError(
                    f"{where}parameter {self.name} must be true or false, got {text!r}"
                )
            value = lowered in ("true", "1", "yes")
        return self.check(value, benchmark)

    def _kind_text(self) -> str:
        return {"int": "an integer", "float": "a number", "bool": "true or false"}.get(
            self.kind, "a string"
        )

    def allowed(self) -> str:
        """What the parameter accepts, in words: 'an integer from 100 to 40000'."""
        if self.choices:
            return f"one of {', '.join(self.choices)}"
        text = self._kind_text()
        low, high = self.minimum, self.maximum
        if self.kind not in ("int", "float"):
            return text
        if low is not None and high is not None:
            return f"{text} from {_num(low)} to {_num(high)}"
        if low is not None:
            return f"{text} >= {_num(low)}"
        if high is not None:
            return f"{text} <= {_num(high)}"
        return text

    def format(self, value: Any) -> str:
        """The command-line text of a checked value, which `parse` reads back as it was."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            return repr(value)
        return str(value)

    def as_dict(self) -> Dict[str, Any]:
        """JSON-ready description (for `benchmarks describe --json`)."""
        return {
            "name": self.name,
            "type": self.kind,
            "default": self.default,
            "default_note": self.default_note,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "choices": list(self.choices),
            "help": self.help,
        }


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


@dataclass(frozen=True)
class Requirements:
    """What a benchmark needs on the instance before it can run."""

    c_compiler: bool = False
    openmp: bool = False
    packages: Tuple[str, ...] = ()
    """Distribution packages by their Amazon Linux (dnf) name, e.g. ('openblas-devel',).
    The fleet's user data installs them before the agent runs (zipapp runtime; best
    effort: a failed install is logged and the benchmark reports what it lacks)."""
    commands: Tuple[str, ...] = ()
    """Executables that must be on PATH, e.g. ('openssl',)."""

    def __post_init__(self) -> None:
        # Checked here, where a benchmark is declared, so a plugin with a hostile or
        # malformed package name fails to register instead of reaching user data.
        for name in self.packages:
            if not isinstance(name, str) or not _PACKAGE.fullmatch(name):
                raise ValueError(f"invalid package name {name!r}")
        if len(set(self.packages)) != len(self.packages):
            raise ValueError("a package is listed twice")

    def labels(self) -> Tuple[str, ...]:
        """Short labels: ('c-compiler', 'openmp', 'package:x', 'command:y')."""
        out: List[str] = []
        if self.c_compiler:
            out.append("c-compiler")
        if self.openmp:
            out.append("openmp")
        out.extend(f"package:{p}" for p in self.packages)
        out.extend(f"command:{c}" for c in self.commands)
        return tuple(out)

    def as_dict(self) -> Dict[str, Any]:
        """JSON-ready form."""
        return {
            "c_compiler": self.c_compiler,
            "openmp": self.openmp,
            "packages": list(self.packages),
            "commands": list(self.commands),
        }


@dataclass(frozen=True)
class RunContext:
    """What a benchmark's runner gets: validated parameters and the agent's environment."""

    params: Mapping[str, Any]
    """Every declared parameter, validated; None where the benchmark should choose."""
    quick: bool
    cache_dir: Path
    """Where compiled kernels are cached on this machine."""
    log: Callable[[str], None]
    collection_method: str = "local"
    """'local', 'sandbox' or 'aws': where the agent runs (storage writes to disks only on
    aws; elsewhere to files it creates)."""


Runner = Callable[[RunContext], Tuple[Dict[str, Any], Dict[str, Any]]]
"""Runs a benchmark: returns (its performance_data section, build info). Build info keys
the agent records: compiler, cflags, binary_cached, openmp, compile_s."""


@dataclass(frozen=True)
class BenchmarkInfo:
    """What the controller and the agent know about a benchmark before running it."""

    name: str
    version: str
    description: str
    run: Runner
    parameters: Tuple[Parameter, ...] = ()
    requires: Requirements = field(default_factory=Requirements)
    origin: str = "built-in"
    """'built-in', or 'plugin <distribution> <version>' for an entry-point benchmark."""
    instances: int = 1
    """Machines one measurement needs: 2 for a benchmark between a server and a client
    (`network`), which the controller must launch as a pair."""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(
                f"invalid benchmark name {self.name!r}: lower-case letters, digits, _ "
                "(it becomes a JSON key and a storage path component)"
            )
        if self.name in RESERVED_NAMES:
            raise ValueError(f"benchmark name {self.name!r} is reserved for user-defined suites")
        if not self.version.strip():
            raise ValueError(f"benchmark {self.name}: version is empty")
        if not self.description.strip() or "\n" in self.description:
            raise ValueError(f"benchmark {self.name}: description must be one line")
        if not callable(self.run):
            raise ValueError(f"benchmark {self.name}: run is not callable")
        if self.instances not in (1, 2):
            raise ValueError(f"benchmark {self.name}: instances must be 1 or 2")
        seen = [p.name for p in self.parameters]
        if len(set(seen)) != len(seen):
            raise ValueError(f"benchmark {self.name}: parameter declared twice")

    @property
    def needs(self) -> Tuple[str, ...]:
        """Requirement labels, e.g. ('c-compiler', 'openmp')."""
        return self.requires.labels()

    @property
    def runs_in_agent(self) -> bool:
        """True for built-ins: only they are inside agent.pyz."""
        return self.origin == "built-in"

    def parameter(self, name: str) -> Parameter:
        """The declared parameter `name`; BenchmarkInputError naming the known ones."""
        for p in self.parameters:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.parameters) or "none"
        raise BenchmarkInputError(
            f"{self.name}: unknown parameter {name!r}; known parameters: {known}"
        )

    def validate_params(self, values: Mapping[str, Any]) -> Dict[str, Any]:
        """Every declared parameter with its checked value (or default); one-line errors."""
        for key in values:
            self.parameter(key)
        return {
            p.name: p.check(values[p.name], self.name) if p.name in values else p.default
            for p in self.parameters
        }

    def parse_params(self, items: Mapping[str, str]) -> Dict[str, Any]:
        """Like validate_params, from command-line text values."""
        return self.validate_params(
            {key: self.parameter(key).parse(text, self.name) for key, text in items.items()}
        )

    def as_dict(self) -> Dict[str, Any]:
        """JSON-ready description (for `benchmarks list/describe --json`)."""
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "origin": self.origin,
            "runs_in_agent": self.runs_in_agent,
            "instances": self.instances,
            "requires": self.requires.as_dict(),
            "parameters": [p.as_dict() for p in self.parameters],
        }


# --------------------------------------------------------------------- built-ins


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
                default_note=f"0, set by the controller for 'Up to' types "
                f"(quick: {network.QUICK_BURST_S})",
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


_BUILTINS: Dict[str, Callable[[], BenchmarkInfo]] = {
    "idle": _idle_info,
    "cpu": _cpu_info,
    "latency": _latency_info,
    "linpack": _linpack_info,
    "storage": _storage_info,
    "network": _network_info,
    "stream": _stream_info,
}
"""Built-in benchmarks: name -> factory (the module is imported on first use)."""


def names() -> Tuple[str, ...]:
    """Built-in benchmark names (the ones the agent runs), sorted."""
    return tuple(sorted(_BUILTINS))


def info(name: str) -> BenchmarkInfo:
    """Describe built-in `name`; KeyError if unknown (callers turn it into a one-line error)."""
    return _BUILTINS[name]()


def parse_list(text: str) -> Tuple[str, ...]:
    """'stream, latency' -> ('stream', 'latency'); ValueError with a one-line reason."""
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise ValueError(f"empty benchmark name in {text!r}; known: {', '.join(names())}")
    unknown = [item for item in items if item not in _BUILTINS]
    if unknown:
        raise ValueError(
            f"unknown benchmark {unknown[0]!r}; known benchmarks: {', '.join(names())}"
        )
    if len(set(items)) != len(items):
        raise ValueError(f"benchmark listed twice in {text!r}")
    return tuple(items)


_ASSIGNMENT = re.compile(r"([a-z][a-z0-9_]{0,31})\.([a-z][a-z0-9_]{0,63})=(.*)", re.DOTALL)
MAX_ASSIGNMENTS = 64
"""Most `--param` values one run takes (a bound on input, like every other)."""
MAX_VALUE_CHARS = 512
"""Longest text of one `--param` value (a path or a URL fits)."""


def parse_assignments(items: Sequence[str], selected: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """`--param BENCH.NAME=VALUE` texts -> {bench: {name: typed, checked value}}.

    Every value is converted and checked against the parameter's declared kind and range
    before anything runs; the one-line BenchmarkInputError names the `--param`, what went
    wrong and what is allowed (the range, the choices, the benchmark's parameters). A
    parameter of a benchmark that is not in `selected` is refused too: it would silently
    do nothing. Built-in benchmarks only, as everywhere the agent runs.
    """
    if len(items) > MAX_ASSIGNMENTS:
        raise BenchmarkInputError(
            f"too many --param values ({len(items)}; at most {MAX_ASSIGNMENTS})"
        )
    out: Dict[str, Dict[str, Any]] = {}
    for item in items:
        match = _ASSIGNMENT.fullmatch(item)
        if match is None:
            raise BenchmarkInputError(
                f"invalid --param {item!r}: use BENCH.NAME=VALUE, e.g. linpack.n=3000 "
                "(instbench benchmarks describe BENCH lists the parameters)"
            )
        bench, name, text = match.groups()
        if bench not in _BUILTINS:
            raise BenchmarkInputError(
                f"invalid --param {item!r}: unknown benchmark {bench!r}; known benchmarks: "
                f"{', '.join(names())}"
            )
        if bench not in selected:
            chosen = ", ".join(selected) or "none"
            raise BenchmarkInputError(
                f"invalid --param {item!r}: {bench} is not run (benchmarks: {chosen}); "
                f"add it to --benchmarks"
            )
        described = info(bench)
        declared = {p.name: p for p in described.parameters}
        if name not in declared:
            raise BenchmarkInputError(
                f"invalid --param {item!r}: {bench} has no parameter {name!r}; its "
                f"parameters: {', '.join(declared) or 'none'}"
            )
        if name in out.get(bench, {}):
            raise BenchmarkInputError(f"--param {bench}.{name} is given twice")
        param = declared[name]
        if len(text) > MAX_VALUE_CHARS or not text.strip():
            raise BenchmarkInputError(
                f"invalid --param {item[:80]!r}: {bench}.{name} must be {param.allowed()} "
                f"(at most {MAX_VALUE_CHARS} characters)"
            )
        try:
            value = param.parse(text, bench)
        except BenchmarkInputError:
            raise BenchmarkInputError(
                f"invalid --param {item!r}: {bench}.{name} must be {param.allowed()}"
            ) from None
        out.setdefault(bench, {})[name] = value
    return out


def assignment_args(params: Mapping[str, Mapping[str, Any]]) -> List[str]:
    """{bench: {name: value}} -> ['--param', 'bench.name=text', ...], sorted: what the
    controller passes to the agent, which parses and checks it again."""
    args: List[str] = []
    for bench in sorted(params):
        declared = {p.name: p for p in info(bench).parameters}
        for name in sorted(params[bench]):
            args += ["--param", f"{bench}.{name}={declared[name].format(params[bench][name])}"]
    return args


def packages_for(benchmarks: Sequence[str]) -> Tuple[str, ...]:
    """The packages the built-in `benchmarks` declare, each once, in declaration order.

    What the fleet's user data installs for a task (KeyError for an unknown name: the
    caller has validated the list already).
    """
    out: List[str] = []
    for name in benchmarks:
        for package in info(name).requires.packages:
            if package not in out:
                out.append(package)
    return tuple(out)


# ----------------------------------------------------------------------- plugins


@dataclass(frozen=True)
class PluginProblem:
    """An entry point that could not be registered, and why (shown, never fatal)."""

    entry_point: str
    distribution: Optional[str]
    error: str


@dataclass(frozen=True)
class Catalog:
    """Built-in and plugin benchmarks, plus the plugins that failed to load."""

    benchmarks: Tuple[BenchmarkInfo, ...]
    problems: Tuple[PluginProblem, ...] = ()

    def get(self, name: str) -> Optional[BenchmarkInfo]:
        """The benchmark called `name`, or None."""
        for item in self.benchmarks:
            if item.name == name:
                return item
        return None

    def names(self) -> Tuple[str, ...]:
        """Every name, sorted."""
        return tuple(sorted(b.name for b in self.benchmarks))


def _entry_points(group: str) -> List[Any]:
    from importlib import metadata

    eps = metadata.entry_points()
    select = getattr(eps, "select", None)
    if select is not None:
        return list(select(group=group))
    return list(eps.get(group, []))  # Python 3.9: a dict of group -> entry points


def _distribution(ep: Any) -> Tuple[Optional[str], str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None, "plugin"
    name = dist.metadata["Name"] if dist.metadata is not None else None
    return name, f"plugin {name} {dist.version}"


def load_plugins(
    group: str = ENTRY_POINT_GROUP,
) -> Tuple[Tuple[BenchmarkInfo, ...], Tuple[PluginProblem, ...]]:
    """Benchmarks declared by installed distributions, and the entry points that failed.

    A plugin may not reuse a built-in's name or another plugin's; its entry point name
    must equal the benchmark's name; loading errors of any kind are reported, not raised,
    so one broken plugin never hides the others.
    """
    found: List[BenchmarkInfo] = []
    problems: List[PluginProblem] = []
    for ep in sorted(_entry_points(group), key=lambda e: (e.name, e.value)):
        dist_name, origin = _distribution(ep)
        try:
            obj = ep.load()
            item = obj if isinstance(obj, BenchmarkInfo) else obj()
            if not isinstance(item, BenchmarkInfo):
                raise TypeError(
                    f"loads {type(item).__name__}, not instbench.benchmarks.registry.BenchmarkInfo"
                )
            if item.name != ep.name:
                raise ValueError(f"declares benchmark {item.name!r} under entry point {ep.name!r}")
            if item.name in _BUILTINS:
                raise ValueError(f"{item.name!r} is a built-in benchmark name")
            if any(other.name == item.name for other in found):
                raise ValueError(f"{item.name!r} is registered by another plugin too")
            found.append(replace(item, origin=origin))
        except Exception as exc:  # a plugin's bug must not break the CLI
            problems.append(
                PluginProblem(ep.name, dist_name, f"{type(exc).__name__}: {exc}".strip())
            )
    return tuple(found), tuple(problems)


def catalog(include_plugins: bool = True, group: str = ENTRY_POINT_GROUP) -> Catalog:
    """Built-ins, then plugins (controller side; the agent uses names()/info())."""
    builtins = tuple(info(name) for name in names())
    if not include_plugins:
        return Catalog(builtins)
    plugins, problems = load_plugins(group)
    return Catalog(builtins + plugins, problems)


__all__ = [
    "ENTRY_POINT_GROUP",
    "MAX_ASSIGNMENTS",
    "MAX_VALUE_CHARS",
    "PARAMETER_KINDS",
    "RESERVED_NAMES",
    "BenchmarkInfo",
    "Catalog",
    "Parameter",
    "PluginProblem",
    "Requirements",
    "RunContext",
    "Runner",
    "assignment_args",
    "catalog",
    "info",
    "load_plugins",
    "names",
    "packages_for",
    "parse_assignments",
    "parse_list",
]
