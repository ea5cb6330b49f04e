"""LINPACK: dense LU solve (dgetrf + dgetrs) with the machine's optimised LAPACK.

The agent stays stdlib-only: the solve runs in a separate process, our C kernel
(kernels/linpack.c), which loads the system's BLAS/LAPACK with dlopen. This module finds
the library, chooses the problem size, runs the kernel, checks the HPL residual and
assembles `performance_data.linpack` (`LinpackResult` in instbench/results/schema.py).

Choices, and why:

* Library: OpenBLAS first (the threaded builds `libopenblasp`/`libopenblaso` before
  `libopenblas`, which is the single-threaded one on Fedora/Amazon Linux), then FlexiBLAS,
  then the system `liblapack.so.3` (on Debian that is OpenBLAS's when libopenblas-dev is
  installed, through alternatives). Missing: BenchmarkInputError naming the package
  (`dnf install -y openblas-devel` on Amazon Linux, `apt-get install -y libopenblas-dev`).
* Size: quick mode n = 1000. Otherwise a calibration solve at n = 2000 measures the rate
  and n is chosen so one solve takes about `time_budget_s / (trials + 1)`, capped so the
  matrix takes at most 40 % of MemAvailable and rounded down to a multiple of 64.
* Result: GFLOPS = (2/3 n^3 + 2 n^2) / t of the fastest trial; the HPL scaled residual
  ||Ax-b||_inf / (eps (||A||_inf ||x||_inf + ||b||_inf) n) must be < 16, else the run
  fails (a wrong answer is not a benchmark result).
* Peak and efficiency: physical cores x nominal clock x DP FLOPs per cycle of the core
  identified from CPUID/MIDR (instbench/benchmarks/peaks.py, whose table cites a source per
  row), as TOP500's Rpeak; the measured clock is kept beside it. A core not in the table
  gets no efficiency (null, with `efficiency_note` saying why), never a guess.

Stdlib-only, Python 3.9 (shipped inside agent.pyz).
"""

from __future__ import annotations

import glob
import json
import math
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from instbench.agent import sysinfo
from instbench.benchmarks import compiler as cc
from instbench.benchmarks import isa, peaks
from instbench.benchmarks.errors import BenchmarkError, BenchmarkInputError
from instbench.benchmarks.meminfo import mem_available_bytes as _mem_available_bytes

KERNEL_VERSION = "1.0.0"
"""Version of kernels/linpack.c; must equal its IB_KERNEL_VERSION (checked when parsing)."""

SOURCE_NAME = "linpack.c"
PROGRAM = "instbench-linpack"
RESIDUAL_THRESHOLD = 16.0
"""HPL's pass criterion for the scaled residual."""
QUICK_N = 1000
CALIBRATION_N = 2000
MIN_N = 100
MAX_N = 200000
MEMORY_SHARE = 0.40
"""Share of MemAvailable the matrix may take (one n x n matrix of doubles)."""
TIME_BUDGET_S = 60.0
TRIALS = 3
QUICK_TRIALS = 2
SEED = 42

LIBRARY_NAMES = (
    "libopenblasp.so.0",
    "libopenblaso.so.0",
    "libopenblas.so.0",
    "libopenblas.so",
    "libflexiblas.so.3",
    "liblapack.so.3",
    "liblapack.so",
)
"""Shared libraries tried, in order of preference (sonames)."""

LIBRARY_DIRS = (
    "/usr/lib64",
    "/usr/lib",
    "/lib64",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
)

INSTALL_HINT = (
    "no BLAS/LAPACK library found: install OpenBLAS (dnf install -y openblas-devel on Amazon "
    "Linux, apt-get install -y libopenblas-dev on Debian/Ubuntu)"
)


def _no_log(message: str) -> None:
    """Default logger: silent."""


@dataclass
class LinpackOptions:
    """What the user asked for. None means "choose for this machine"."""

    quick: bool = False
    n: Optional[int] = None
    trials: Optional[int] = None
    time_budget_s: Optional[float] = None
    threads: Optional[int] = None
    library: Optional[str] = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise BenchmarkInputError on values no run could honour."""
        if self.n is not None and (isinstance(self.n, bool) or not MIN_N <= self.n <= MAX_N):
            raise BenchmarkInputError(f"n must be between {MIN_N} and {MAX_N}, got {self.n}")
        if self.trials is not None and not 1 <= self.trials <= 20:
            raise BenchmarkInputError(f"trials must be 1..20, got {self.trials}")
        budget = self.time_budget_s
        if budget is not None and (not math.isfinite(budget) or not 1.0 <= budget <= 7200.0):
            raise BenchmarkInputError(f"time_budget_s must be 1..7200, got {budget}")
        if self.threads is not None and not 1 <= self.threads <= 4096:
            raise BenchmarkInputError(f"threads must be 1..4096, got {self.threads}")
        if self.library is not None and not os.path.isabs(self.library):
            raise BenchmarkInputError(f"library must be an absolute path, got {self.library!r}")


# ---------------------------------------------------------------------- library


def parse_ldconfig(text: str) -> Dict[str, str]:
    """`ldconfig -p` output -> {soname: path} (first entry of each name wins)."""
    found: Dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if "=>" not in line:
            continue
        left, path = line.split("=>", 1)
        name = left.split("(", 1)[0].strip()
        if name and name not in found:
            found[name] = path.strip()
    return found


def _ldconfig() -> Dict[str, str]:
    for exe in ("/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"):
        try:
            proc = subprocess.run(
                [exe, "-p"], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if proc.returncode == 0:
            return parse_ldconfig(proc.stdout)
    return {}


def find_library(
    known: Optional[Mapping[str, str]] = None, dirs: Sequence[str] = LIBRARY_DIRS
) -> Optional[str]:
    """Path of the preferred BLAS/LAPACK (LIBRARY_NAMES order), or None.

    `known` is the ldconfig cache ({soname: path}); directories are searched as well
    because a library may be installed without the cache being refreshed.
    """
    cache = dict(_ldconfig() if known is None else known)
    for name in LIBRARY_NAMES:
        if name in cache and os.path.exists(cache[name]):
            return cache[name]
        for directory in dirs:
            for path in sorted(glob.glob(os.path.join(directory, name))):
                if os.path.exists(path):
                    return path
    return None


# ------------------------------------------------------------------------ sizing


def memory_cap_n(mem_available: Optional[int]) -> int:
    """Largest n whose matrix (8 n^2 bytes) fits in MEMORY_SHARE of MemAvailable."""
    if mem_available is None:
        return MAX_N
    return int(math.sqrt(MEMORY_SHARE * mem_available / 8.0))


def plan_n(
    *, budget_s: float, trials: int, rate_gflops: float, mem_available: Optional[int]
) -> Tuple[int, str]:
    """Problem size for one solve of about budget_s / (trials + 1) seconds, and why."""
    per_trial = budget_s / (trials + 1)
    by_time = int((1.5 * per_trial * rate_gflops * 1e9) ** (1.0 / 3.0))
    cap = memory_cap_n(mem_available)
    n = min(by_time, cap, MAX_N)
    n = max(MIN_N, n - n % 64 if n >= 128 else n)
    reason = (
        f"about {per_trial:.1f} s per solve at the calibrated {rate_gflops:.1f} GFLOPS "
        f"(budget {budget_s:g} s for {trials} trials and calibration)"
    )
    if cap < by_time:
        reason += f"; capped by memory ({int(MEMORY_SHARE * 100)} % of MemAvailable)"
    return n, reason


# -------------------------------------------------------------------- checking


def scaled_residual(
    residual_inf: float, a_inf: float, x_inf: float, b_inf: float, n: int, eps: float
) -> float:
    """HPL scaled residual ||Ax-b||_inf / (eps (||A||_inf ||x||_inf + ||b||_inf) n)."""
    denominator = eps * (a_inf * x_inf + b_inf) * n
    if denominator <= 0 or not math.isfinite(denominator):
        return math.inf
    return residual_inf / denominator


def residual_passes(value: float) -> bool:
    """HPL criterion: the scaled residual is finite and below 16."""
    return math.isfinite(value) and value < RESIDUAL_THRESHOLD


def hpl_flops(n: int) -> float:
    """Operations credited to one solve: 2/3 n^3 + 2 n^2."""
    return 2.0 / 3.0 * n**3 + 2.0 * n**2


def parse_output(text: str) -> Dict[str, Any]:
    """The kernel's JSON line, checked; the scaled residual is recomputed from the norms."""
    try:
        data = json.loads(text.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BenchmarkError(f"unreadable linpack kernel output: {text[:200]!r}") from None
    if not isinstance(data, dict) or data.get("program") != PROGRAM:
        raise BenchmarkError("linpack kernel output is not from instbench-linpack")
    if data.get("kernel_version") != KERNEL_VERSION:
        raise BenchmarkError(
            f"linpack kernel version {data.get('kernel_version')!r} != {KERNEL_VERSION}"
        )
    for key in ("n", "best_s", "residual_inf", "a_inf", "x_inf", "b_inf", "eps", "times_s"):
        if key not in data:
            raise BenchmarkError(f"linpack kernel output lacks {key}")
    n = int(data["n"])
    if not data["best_s"] > 0:
        raise BenchmarkError("linpack kernel reported a non-positive time")
    data["gflops"] = hpl_flops(n) / float(data["best_s"]) / 1e9
    data["scaled_residual"] = scaled_residual(
        float(data["residual_inf"]),
        float(data["a_inf"]),
        float(data["x_inf"]),
        float(data["b_inf"]),
        n,
        float(data["eps"]),
    )
    return data


def _execute(binary: Path, args: List[str], timeout: float) -> Tuple[Dict[str, Any], float]:
    proc, duration = cc.run_binary([str(binary), *args], timeout, f"the linpack kernel {binary}")
    if proc.returncode == 4:  # the kernel's own code: no BLAS/LAPACK library to load
        raise BenchmarkInputError(f"{cc.stderr_tail(proc.stderr, 3)}; {INSTALL_HINT}")
    if proc.returncode != 0:
        raise BenchmarkError(cc.exit_failure(proc, "the linpack kernel"))
    return parse_output(proc.stdout), duration


def kernel_args(
    library: str,
    n: int,
    trials: int,
    *,
    threads: Optional[int] = None,
    perturb: bool = False,
    seed: int = SEED,
) -> List[str]:
    """Command-line arguments of the kernel."""
    args = [f"lib={library}", f"n={n}", f"trials={trials}", f"seed={seed}"]
    if threads:
        args.append(f"threads={threads}")
    if perturb:
        args.append("perturb=1")
    return args


def _timeout_s(n: int, trials: int) -> float:
    # Generous: 0.5 GFLOPS is slower than any machine we would run on.
    return 120.0 + (trials + 1) * hpl_flops(n) / 0.5e9


def build(cache_dir: Path) -> Tuple[cc.Compiler, List[str], cc.BuildResult]:
    """Compile (or reuse) the kernel: (compiler, flags, build)."""
    compiler = cc.find_compiler()
    flags = [f for f in cc.native_flags() if f != "-fopenmp"]
    return compiler, flags, cc.build_kernel(SOURCE_NAME, compiler, flags, cache_dir)


def run_linpack(
    options: LinpackOptions,
    *,
    cache_dir: Path,
    log: Callable[[str], None] = _no_log,
) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Run LINPACK on this machine: (linpack section of the result, build info)."""
    options.validate()
    library = options.library or find_library()
    if library is None:
        raise BenchmarkInputError(INSTALL_HINT)
    if not os.path.exists(library):
        raise BenchmarkInputError(f"library {library} does not exist")
    mem_available = _mem_available_bytes()
    trials = options.trials or (QUICK_TRIALS if options.quick else TRIALS)
    if options.n is not None and options.n > memory_cap_n(mem_available):
        raise BenchmarkInputError(
            f"n={options.n} needs {8 * options.n**2 / 2**30:.1f} GiB, more than "
            f"{int(MEMORY_SHARE * 100)} % of MemAvailable"
        )
    compiler, flags, built = build(cache_dir)
    run_s = 0.0
    calibration: Optional[Dict[str, Any]] = None
    if options.n is not None:
        n, reason = options.n, "user override"
    elif options.quick:
        n = min(QUICK_N, memory_cap_n(mem_available))
        reason = f"quick mode: n={n}"
    else:
        cal_n = min(CALIBRATION_N, memory_cap_n(mem_available))
        data, seconds = _execute(
            built.binary,
            kernel_args(library, cal_n, 1, threads=options.threads),
            _timeout_s(cal_n, 1),
        )
        run_s += seconds
        calibration = {"n": cal_n, "gflops": data["gflops"]}
        log(f"linpack calibration n={cal_n}: {data['gflops']:.1f} GFLOPS")
        n, reason = plan_n(
            budget_s=options.time_budget_s or TIME_BUDGET_S,
            trials=trials,
            rate_gflops=max(float(data["gflops"]), 0.1),
            mem_available=mem_available,
        )
    log(f"linpack n={n} ({reason}), {trials} trials, {library}")
    data, seconds = _execute(
        built.binary,
        kernel_args(library, n, trials, threads=options.threads),
        _timeout_s(n, trials),
    )
    run_s += seconds
    residual = float(data["scaled_residual"])
    if not residual_passes(residual):
        raise BenchmarkError(
            f"linpack residual check failed: scaled residual {residual:.3g} >= "
            f"{RESIDUAL_THRESHOLD:g} (wrong answer from {library})"
        )
    machine = sysinfo.collect()
    cpu = machine.get("cpu", {})
    # The clock the cores ran at, measured always (~0.1 s) and kept beside the nominal
    # clock the peak assumes (peaks.py); it is the fallback when no nominal is known.
    measured = isa.choose_frequency(None, [], lambda: isa.measure_mhz(compiler, cache_dir))
    widest = isa.flops_per_cycle(
        cpu.get("flags") or [], machine.get("architecture"), isa.read_sve_vector_bits()
    )
    peak = peaks.peak(
        cpu,
        str(machine.get("architecture") or ""),
        base_khz=peaks.read_cpufreq_khz("base_frequency"),
        max_khz=peaks.read_cpufreq_khz("cpuinfo_max_freq"),
        measured_mhz=measured["mhz"],
        measured_note="" if measured["mhz"] else f"clock not measured: {measured['note']}",
        extension=widest["extension"] if widest else None,
    )
    gflops = float(data["gflops"])
    efficiency, efficiency_note = peaks.efficiency(gflops, peak)
    log(
        f"linpack: {gflops:.2f} GFLOPS, scaled residual {residual:.3g}; "
        + (
            f"{efficiency * 100:.1f} % of the peak ({peak['core']}: "
            f"{peak['flops_per_cycle']} FLOPs/cycle x {peak['cores']} cores x "
            f"{peak['max_mhz']:.0f} MHz {peak['clock']}; measured clock "
            + (f"{peak['measured_mhz']:.0f} MHz)" if peak["measured_mhz"] else "unknown)")
            if efficiency is not None
            else f"no efficiency ({efficiency_note})"
        )
    )
    openblas = data.get("openblas")
    section = {
        "kernel_version": KERNEL_VERSION,
        "source_sha256": built.source_sha256,
        "cflags": list(flags),
        "library": library,
        "library_info": openblas.get("config") if isinstance(openblas, dict) else None,
        "library_threads": openblas.get("threads") if isinstance(openblas, dict) else None,
        "n": n,
        "size_reason": reason,
        "trials": trials,
        "times_s": [float(t) for t in data["times_s"]],
        "best_time_s": float(data["best_s"]),
        "gflops": gflops,
        "scaled_residual": residual,
        "residual_threshold": RESIDUAL_THRESHOLD,
        "residual_passed": True,
        "calibration": calibration,
        "peak": peak,
        "efficiency": efficiency,
        "efficiency_note": efficiency_note,
    }
    build_info = {
        "compiler": compiler.as_dict(),
        "cflags": list(flags),
        "binary_cached": built.cached,
        "openmp": {},
        "compile_s": built.compile_s,
        "run_s": run_s,
    }
    return section, build_info


__all__ = [
    "INSTALL_HINT",
    "KERNEL_VERSION",
    "LinpackOptions",
    "find_library",
    "hpl_flops",
    "kernel_args",
    "memory_cap_n",
    "parse_ldconfig",
    "parse_output",
    "plan_n",
    "residual_passes",
    "run_linpack",
    "scaled_residual",
]
