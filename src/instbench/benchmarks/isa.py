"""Vector extensions a CPU offers, and the theoretical double-precision peak they imply.

Shared by the LINPACK benchmark (peak and efficiency) and the CPU benchmark (which
extensions to measure). Everything here is read from /proc/cpuinfo flags (x86 `flags`,
Arm `Features`) and /proc/sys/abi/sve_default_vector_length; nothing is measured.

Peak FLOPs per cycle per core, double precision (`flops_per_cycle`):

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

peak GFLOPS = physical cores x max GHz x DP FLOPs per cycle. The frequency is the
highest the OS reports (cpufreq `cpuinfo_max_freq`, else cpuinfo "cpu MHz"); on a VM that
is often the nominal clock, not the all-core turbo the cores actually run at, and wide
vector code may run at a lower licence frequency (AVX-512 on Intel), so the peak, and
hence the efficiency, is an estimate. When no frequency is reported (many Graviton
kernels) the peak is null.

Stdlib-only, Python 3.9 (shipped inside agent.pyz).
"""

from __future__ import annotations

import platform
from typing import Any, Dict, Iterable, List, Optional

EXTENSIONS = ("sse2", "avx", "avx2", "avx512f", "neon", "sve")
"""Extensions instbench reports, narrowest first per architecture."""

X86_EXTENSIONS = ("sse2", "avx", "avx2", "avx512f")
ARM_EXTENSIONS = ("neon", "sve")


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


def theoretical_peak(
    cpu: Dict[str, Any], arch: Optional[str] = None, sve_bits: Optional[int] = None
) -> Dict[str, Any]:
    """Peak DP GFLOPS of the machine from the sysinfo `cpu` section.

    Keys: gflops (None when unknown), cores, max_mhz, flops_per_cycle, extension,
    assumption, note. Physical cores, not logical CPUs: SMT siblings share the FMA units.
    """
    cores = int(cpu.get("sockets") or 1) * int(cpu.get("cores_per_socket") or 1)
    mhz = cpu.get("max_mhz")
    fpc = flops_per_cycle(cpu.get("flags") or [], arch, sve_bits)
    notes = [
        "cores x max frequency x DP FLOPs per cycle; the frequency is what the OS reports "
        "(on a VM often nominal, not the clock vector code runs at), so this is an estimate"
    ]
    gflops: Optional[float] = None
    if fpc is None:
        notes.append("no known vector extension: peak unknown")
    elif not mhz:
        notes.append("the OS reports no CPU frequency: peak unknown")
    else:
        gflops = cores * float(mhz) / 1000.0 * fpc["flops_per_cycle"]
    return {
        "gflops": gflops,
        "cores": cores,
        "max_mhz": float(mhz) if mhz else None,
        "flops_per_cycle": fpc["flops_per_cycle"] if fpc else None,
        "extension": fpc["extension"] if fpc else None,
        "assumption": fpc["assumption"] if fpc else None,
        "note": "; ".join(notes),
    }


__all__ = [
    "ARM_EXTENSIONS",
    "EXTENSIONS",
    "X86_EXTENSIONS",
    "flops_per_cycle",
    "is_arm",
    "offered",
    "read_sve_vector_bits",
    "theoretical_peak",
]
