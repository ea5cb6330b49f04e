"""Vector extensions a CPU offers, what they would allow per cycle, and the CPU clock.

Shared by the LINPACK benchmark (its `peak.extension` and the measured clock) and the CPU
benchmark (which extensions to measure). The LINPACK peak itself uses the FLOPs per cycle
of the core identified from CPUID/MIDR (instbench/benchmarks/peaks.py): an extension says
which instructions exist, not how many units run them (Zen 4 has AVX-512 on 256-bit
units). Extensions are read from /proc/cpuinfo flags (x86 `flags`, Arm `Features`) and
/proc/sys/abi/sve_default_vector_length. The only thing measured here is the clock.

What the widest extension allows at most, DP FLOPs per cycle per core (`flops_per_cycle`):

    ========================  =====  ================================================
    widest extension          DP/cy  assumption
    ========================  =====  ================================================
    avx512f (+ FMA)           32     2 FMA units x 8 lanes x 2 (Skylake-SP and later
                                     Xeon; Zen 4 runs 512-bit ops on 256-bit units and
                                     so peaks at 16: the figure is an upper bound)
    avx2 + fma                16     2 FMA units x 4 lanes x 2
    avx (no FMA)              8      1 add + 1 mul unit x 4 lanes
    sse2                      4      1 add + 1 mul unit x 2 lanes
    sve, vector length VL     16     (VL/64 lanes) x 2 x FMA pipes, with 2 pipes at
                                     VL >= 256 (Neoverse V1, Graviton3) and 4 pipes at
                                     VL = 128 (Neoverse V2, Graviton4): 16 either way;
                                     other VL: 2 pipes x VL/64 x 2
    asimd / neon              8      2 FMA pipes x 2 lanes x 2 (Neoverse N1, Graviton2)
    ========================  =====  ================================================

Frequency (`choose_frequency`):

* "cpufreq": /sys/.../cpufreq/cpuinfo_max_freq, the highest the OS reports;
* "cpuinfo": /proc/cpuinfo "cpu MHz" when there is no cpufreq (what a VM reports: often
  the nominal clock, not the all-core turbo the cores actually run at);
* "measured: dependent-add loop": when the OS reports neither, or when called with no
  OS figure (LINPACK always measures, to record the clock the cores ran at beside the
  nominal one). kernels/clock.c times a chain of dependent integer adds, one per cycle on
  the cores instbench targets, so adds per second is the clock the core ran at during the
  measurement (best of a few ~20 ms trials).

Stdlib-only, Python 3.9 (shipped inside agent.pyz).
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional

from instbench.benchmarks import compiler as cc
from instbench.benchmarks.errors import BenchmarkError

EXTENSIONS = ("sse2", "avx", "avx2", "avx512f", "neon", "sve")
"""Extensions instbench reports, narrowest first per architecture."""

X86_EXTENSIONS = ("sse2", "avx", "avx2", "avx512f")
ARM_EXTENSIONS = ("neon", "sve")

SOURCE_CPUFREQ = "cpufreq"
SOURCE_CPUINFO = "cpuinfo"
SOURCE_MEASURED = "measured: dependent-add loop"
"""Values of the peak's `frequency_source`."""

CLOCK_SOURCE = "clock.c"
CLOCK_KERNEL_VERSION = "1.0.0"
CLOCK_TRIAL_MS = 20.0
CLOCK_TRIALS = 5
"""5 trials of 20 ms: ~100 ms in all, best trial taken (a trial can only be slowed)."""
CLOCK_FLAGS = ["-O2"]
"""No -march/-mcpu: an add chain needs nothing special, and the build works everywhere."""
PLAUSIBLE_MHZ = (200.0, 8000.0)
"""A measured clock outside this range means the one-add-per-cycle premise failed (an
unknown core, an emulator); such a value is discarded rather than used for the peak."""
CPUFREQ_DIR = "/sys/devices/system/cpu"


def read_sve_vector_bits(path: str = "/proc/sys/abi/sve_default_vector_length") -> Optional[int]:
    """Default SVE vector length of this process, bits; None when SVE is absent."""
    try:
        with open(path, encoding="ascii") as fh:
            value = int(fh.read().strip())
    except (OSError, ValueError):
        return None
    return value * 8 if value > 0 else None


def is_arm(arch: Optional[str] = None) -> bool:
    """True on 64-bit Arm."""
    return (arch or platform.machine()).lower() in ("aarch64", "arm64")


def offered(flags: Iterable[str], arch: Optional[str] = None) -> List[str]:
    """Extensions of EXTENSIONS the CPU offers, from its cpuinfo flags.

    Arm calls Advanced SIMD `asimd` in /proc/cpuinfo; it is reported as `neon`. `avx2`
    counts only with `fma` for the peak, but is listed whenever the flag is present.
    """
    have = {f.lower() for f in flags}
    if is_arm(arch):
        out = []
        if "asimd" in have or "neon" in have:
            out.append("neon")
        if "sve" in have:
            out.append("sve")
        return out
    return [ext for ext in X86_EXTENSIONS if ext in have]


def flops_per_cycle(
    flags: Iterable[str], arch: Optional[str] = None, sve_bits: Optional[int] = None
) -> Optional[Dict[str, Any]]:
    """DP FLOPs per cycle per core of the widest extension (table in the module docstring).

    Returns {"extension", "flops_per_cycle", "assumption"}, or None for a CPU without any
    extension in the table.
    """
    have = {f.lower() for f in flags}
    if is_arm(arch):
        if "sve" in have and sve_bits:
            if sve_bits == 128:
                return {
                    "extension": "sve",
                    "flops_per_cycle": 16,
                    "assumption": "SVE 128-bit: 4 FMA pipes x 2 lanes x 2 (Neoverse V2)",
                }
            pipes = 2
            value = pipes * (sve_bits // 64) * 2
            return {
                "extension": "sve",
                "flops_per_cycle": value,
                "assumption": f"SVE {sve_bits}-bit: {pipes} FMA pipes x {sve_bits // 64} "
                "lanes x 2 (Neoverse V1)",
            }
        if "asimd" in have or "neon" in have:
            return {
                "extension": "neon",
                "flops_per_cycle": 8,
                "assumption": "NEON: 2 FMA pipes x 2 lanes x 2 (Neoverse N1)",
            }
        return None
    if "avx512f" in have:
        return {
            "extension": "avx512f",
            "flops_per_cycle": 32,
            "assumption": "AVX-512: 2 FMA units x 8 lanes x 2 (an upper bound: one-unit "
            "parts and Zen 4 peak at 16)",
        }
    if "avx2" in have and "fma" in have:
        return {
            "extension": "avx2",
            "flops_per_cycle": 16,
            "assumption": "AVX2+FMA: 2 FMA units x 4 lanes x 2",
        }
    if "avx" in have:
        return {
            "extension": "avx",
            "flops_per_cycle": 8,
            "assumption": "AVX: 1 add + 1 multiply unit x 4 lanes",
        }
    if "sse2" in have:
        return {
            "extension": "sse2",
            "flops_per_cycle": 4,
            "assumption": "SSE2: 1 add + 1 multiply unit x 2 lanes",
        }
    return None


# ---------------------------------------------------------------------- frequency


def cpufreq_max_mhz(cpu_dir: str = CPUFREQ_DIR) -> List[float]:
    """Every cpuN/cpufreq/cpuinfo_max_freq under cpu_dir, MHz (empty without cpufreq)."""
    out: List[float] = []
    try:
        names = os.listdir(cpu_dir)
    except OSError:
        return out
    for name in names:
        if not (name.startswith("cpu") and name[3:].isdigit()):
            continue
        try:
            with open(os.path.join(cpu_dir, name, "cpufreq", "cpuinfo_max_freq")) as fh:
                khz = int(fh.read().strip())
        except (OSError, ValueError):
            continue
        if khz > 0:
            out.append(khz / 1000.0)
    return out


def reported_source(max_mhz: Optional[float], cpufreq_mhz: Iterable[float]) -> Optional[str]:
    """Which OS interface sysinfo's `max_mhz` came from; None when it reports none.

    sysinfo takes cpufreq's cpuinfo_max_freq when there is one and cpuinfo "cpu MHz"
    otherwise; a value equal to one of the cpufreq maxima therefore came from cpufreq.
    """
    if not max_mhz:
        return None
    if any(abs(float(max_mhz) - f) < 0.001 for f in cpufreq_mhz):
        return SOURCE_CPUFREQ
    return SOURCE_CPUINFO


def choose_frequency(
    max_mhz: Optional[float],
    cpufreq_mhz: Iterable[float],
    measure: Optional[Callable[[], float]] = None,
) -> Dict[str, Any]:
    """The frequency for the peak: {"mhz", "source", "note"}; mhz None when none is known.

    The OS's figure wins whenever there is one (it is what the rest of the result, e.g.
    CoreMark per MHz, uses too); `measure` is called only when the OS reports nothing,
    and a failed or implausible measurement leaves the frequency unknown, with the reason
    in `note`, rather than feeding a wrong peak.
    """
    source = reported_source(max_mhz, cpufreq_mhz)
    if max_mhz and source is not None:
        return {"mhz": float(max_mhz), "source": source, "note": ""}
    if measure is None:
        return {"mhz": None, "source": None, "note": "the OS reports no CPU frequency"}
    try:
        mhz = float(measure())
    except BenchmarkError as exc:
        return {
            "mhz": None,
            "source": None,
            "note": f"the OS reports no CPU frequency and measuring it failed: {exc}",
        }
    low, high = PLAUSIBLE_MHZ
    if not low <= mhz <= high:
        return {
            "mhz": None,
            "source": None,
            "note": f"the OS reports no CPU frequency and the measured {mhz:.0f} MHz is "
            f"outside {low:.0f}-{high:.0f} MHz (one add per cycle does not hold here)",
        }
    return {
        "mhz": mhz,
        "source": SOURCE_MEASURED,
        "note": "the OS reports no CPU frequency: measured as the rate of a dependent "
        "integer-add chain (one add per cycle), i.e. the clock the core ran at",
    }


def parse_clock_output(text: str) -> float:
    """kernels/clock.c's JSON -> best MHz (positive; version and program checked)."""
    try:
        data = json.loads(text.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BenchmarkError(f"unreadable clock output: {text[:200]!r}") from None
    if not isinstance(data, dict) or data.get("program") != "instbench-clock":
        raise BenchmarkError("output is not from instbench-clock")
    if data.get("kernel_version") != CLOCK_KERNEL_VERSION:
        raise BenchmarkError(f"instbench-clock version {data.get('kernel_version')!r}")
    try:
        mhz = float(data["best_mhz"])
    except (KeyError, TypeError, ValueError):
        raise BenchmarkError("instbench-clock reported no frequency") from None
    if not mhz > 0:
        raise BenchmarkError("instbench-clock reported no frequency")
    return mhz


def measure_mhz(
    compiler: cc.Compiler,
    cache_dir: Path,
    trial_ms: float = CLOCK_TRIAL_MS,
    trials: int = CLOCK_TRIALS,
) -> float:
    """Clock of the core this runs on, MHz, from kernels/clock.c (~trials x trial_ms).

    Raises BenchmarkError when the kernel cannot be built or run.
    """
    built = cc.build_kernel(CLOCK_SOURCE, compiler, CLOCK_FLAGS, cache_dir)
    cmd = [str(built.binary), f"ms={trial_ms:g}", f"trials={trials}"]
    proc, _ = cc.run_binary(cmd, 60, "the clock kernel")
    if proc.returncode != 0:
        raise BenchmarkError(cc.exit_failure(proc, "the clock kernel"))
    return parse_clock_output(proc.stdout)


__all__ = [
    "ARM_EXTENSIONS",
    "EXTENSIONS",
    "SOURCE_CPUFREQ",
    "SOURCE_CPUINFO",
    "SOURCE_MEASURED",
    "X86_EXTENSIONS",
    "choose_frequency",
    "cpufreq_max_mhz",
    "flops_per_cycle",
    "is_arm",
    "measure_mhz",
    "offered",
    "parse_clock_output",
    "read_sve_vector_bits",
    "reported_source",
]
