"""Peak double-precision FLOPs per cycle of the core, identified from CPUID or MIDR.

Why a table of cores instead of the widest vector extension (instbench/benchmarks/isa.py):
the extension says what instructions exist, not how many units execute them. AMD Zen 4
runs AVX-512 on 256-bit units and peaks at 16 DP FLOPs per cycle, not the 32 of an Intel
Xeon with two 512-bit FMA units; taking 32 halved its published LINPACK efficiency.
The core is identified from what the CPU reports about itself:

* x86: vendor_id with CPUID family and model (``cpu family`` / ``model`` in
  /proc/cpuinfo, decimal);
* arm64: MIDR_EL1 implementer and part (``CPU implementer`` / ``CPU part`` in
  /proc/cpuinfo, or /sys/devices/system/cpu/cpuN/regs/identification/midr_el1).

A core that is not in the table gets no peak and hence no efficiency, with the reason:
a guessed peak would publish a guessed efficiency. Every row cites where its FLOPs per
cycle come from.

Clock: the peak assumes the nominal (base) clock, as TOP500's Rpeak does, because that is
the one clock a vendor states for a part; the clock the cores actually ran at (turbo,
AVX-512 licence, a VM's share) is measured beside it, so a reader can see both.

Stdlib-only, Python 3.9 (shipped inside agent.pyz).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

_INTEL_MANUAL = (
    "Intel 64 and IA-32 Architectures Optimization Reference Manual (order no. 248966), "
    "chapter on the {arch} microarchitecture; Intel 'APP Metrics for Intel Microprocessors' "
    "(Xeon Scalable: 32 DP FLOPs per clock per core)"
)


@dataclass(frozen=True)
class CoreRow:
    """One microarchitecture: how it is recognised and what one core can do per cycle."""

    key: str
    """Stable identifier recorded in results (`peak.core`)."""
    name: str
    flops_per_cycle: int
    """Double-precision FLOPs per cycle per core (FMA counted as 2)."""
    units: str
    """The execution units behind flops_per_cycle."""
    source: str
    """Where the figure comes from (vendor manual / public documentation)."""
    vendor: str
    """'GenuineIntel', 'AuthenticAMD', or 'arm:0xNN' (MIDR implementer)."""
    family: int = 0
    """x86 CPUID family (decimal, as /proc/cpuinfo prints it); 0 for Arm."""
    models: Tuple[int, ...] = ()
    """x86 CPUID models, or Arm MIDR part numbers."""
    nominal_mhz: Optional[float] = None
    """Documented nominal clock when the part comes in one clock only (Graviton)."""
    nominal_source: str = ""


def _range(lo: int, hi: int) -> Tuple[int, ...]:
    return tuple(range(lo, hi + 1))


CORES: Tuple[CoreRow, ...] = (
    # ------------------------------------------------------------------ Intel Xeon
    CoreRow(
        key="intel-haswell-broadwell-ep",
        name="Intel Haswell-EP / Broadwell-EP (Xeon E5 v3/v4)",
        flops_per_cycle=16,
        units="2 x 256-bit FMA (AVX2)",
        source=_INTEL_MANUAL.format(arch="Haswell"),
        vendor="GenuineIntel",
        family=6,
        models=(0x3F, 0x4F, 0x56),
    ),
    CoreRow(
        key="intel-skylake-sp",
        name="Intel Skylake-SP / Cascade Lake / Cooper Lake (Xeon Scalable 1st-3rd gen)",
        flops_per_cycle=32,
        units="2 x 512-bit FMA (AVX-512; ports 0+1 and port 5 on Platinum/Gold 6xxx parts)",
        source=_INTEL_MANUAL.format(arch="Skylake Server"),
        vendor="GenuineIntel",
        family=6,
        models=(0x55,),
    ),
    CoreRow(
        key="intel-ice-lake-sp",
        name="Intel Ice Lake-SP (Xeon Scalable 3rd gen)",
        flops_per_cycle=32,
        units="2 x 512-bit FMA (AVX-512)",
        source=_INTEL_MANUAL.format(arch="Ice Lake (Sunny Cove) server"),
        vendor="GenuineIntel",
        family=6,
        models=(0x6A, 0x6C),
    ),
    CoreRow(
        key="intel-sapphire-rapids",
        name="Intel Sapphire Rapids (Xeon Scalable 4th gen)",
        flops_per_cycle=32,
        units="2 x 512-bit FMA (AVX-512)",
        source=_INTEL_MANUAL.format(arch="Golden Cove (Sapphire Rapids server)"),
        vendor="GenuineIntel",
        family=6,
        models=(0x8F,),
    ),
    CoreRow(
        key="intel-emerald-rapids",
        name="Intel Emerald Rapids (Xeon Scalable 5th gen)",
        flops_per_cycle=32,
        units="2 x 512-bit FMA (AVX-512)",
        source=_INTEL_MANUAL.format(arch="Raptor Cove (Emerald Rapids server)"),
        vendor="GenuineIntel",
        family=6,
        models=(0xCF,),
    ),
    CoreRow(
        key="intel-granite-rapids",
        name="Intel Granite Rapids (Xeon 6 P-core)",
        flops_per_cycle=32,
        units="2 x 512-bit FMA (AVX-512)",
        source=_INTEL_MANUAL.format(arch="Redwood Cove (Granite Rapids)"),
        vendor="GenuineIntel",
        family=6,
        models=(0xAD, 0xAE),
    ),
    # ------------------------------------------------------------------- AMD EPYC
    CoreRow(
        key="amd-zen1",
        name="AMD Zen / Zen+ (EPYC 7001 Naples)",
        flops_per_cycle=8,
        units="2 x 128-bit FMA (256-bit AVX2 ops split in two)",
        source="AMD Software Optimization Guide for AMD Family 17h Processors "
        "(pub. 55723), floating-point unit",
        vendor="AuthenticAMD",
        family=0x17,
        models=_range(0x00, 0x0F),
    ),
    CoreRow(
        key="amd-zen2",
        name="AMD Zen 2 (EPYC 7002 Rome)",
        flops_per_cycle=16,
        units="2 x 256-bit FMA",
        source="AMD Software Optimization Guide for AMD Family 17h Models 30h and Greater "
        "Processors (pub. 56305), floating-point unit",
        vendor="AuthenticAMD",
        family=0x17,
        models=_range(0x30, 0x3F),
    ),
    CoreRow(
        key="amd-zen3",
        name="AMD Zen 3 (EPYC 7003 Milan)",
        flops_per_cycle=16,
        units="2 x 256-bit FMA",
        source="AMD Software Optimization Guide for AMD Family 19h Processors (pub. 56665), "
        "floating-point unit",
        vendor="AuthenticAMD",
        family=0x19,
        models=_range(0x00, 0x0F),
    ),
    CoreRow(
        key="amd-zen4",
        name="AMD Zen 4 (EPYC 9004 Genoa / Bergamo, 8004 Siena)",
        flops_per_cycle=16,
        units="2 x 256-bit FMA; AVX-512 ops execute on the 256-bit units in two halves",
        source="AMD Software Optimization Guide for the AMD Zen4 Microarchitecture "
        "(pub. 57647), floating-point unit and AVX-512 support",
        vendor="AuthenticAMD",
        family=0x19,
        models=_range(0x10, 0x1F) + _range(0xA0, 0xAF),
    ),
    CoreRow(
        key="amd-zen5",
        name="AMD Zen 5 (EPYC 9005 Turin / Turin dense)",
        flops_per_cycle=32,
        units="2 x 512-bit FMA (full-width AVX-512 datapath on EPYC)",
        source="AMD Software Optimization Guide for the AMD Zen5 Microarchitecture "
        "(pub. 58455), floating-point unit",
        vendor="AuthenticAMD",
        family=0x1A,
        models=_range(0x00, 0x1F),
    ),
    # ------------------------------------------------------------- Arm Neoverse (Graviton)
    CoreRow(
        key="arm-neoverse-n1",
        name="Arm Neoverse N1 (AWS Graviton2)",
        flops_per_cycle=8,
        units="2 x 128-bit FP/ASIMD FMA pipes",
        source="Arm Neoverse N1 Software Optimization Guide, instruction characteristics "
        "(FMLA on pipes V0 and V1)",
        vendor="arm:0x41",
        models=(0xD0C,),
        nominal_mhz=2500.0,
        nominal_source="AWS Graviton2 instance pages (m6g, c6g, r6g): 2.5 GHz",
    ),
    CoreRow(
        key="arm-neoverse-v1",
        name="Arm Neoverse V1 (AWS Graviton3 / Graviton3E)",
        flops_per_cycle=16,
        units="2 x 256-bit SVE FMA pipes (4 x 128-bit for NEON)",
        source="Arm Neoverse V1 Software Optimization Guide, instruction characteristics "
        "(FMLA on pipes V0-V3)",
        vendor="arm:0x41",
        models=(0xD40,),
        nominal_mhz=2600.0,
        nominal_source="AWS Graviton3 instance pages (c7g, m7g, r7g): 2.6 GHz",
    ),
    CoreRow(
        key="arm-neoverse-v2",
        name="Arm Neoverse V2 (AWS Graviton4)",
        flops_per_cycle=16,
        units="4 x 128-bit FP/ASIMD/SVE FMA pipes",
        source="Arm Neoverse V2 Software Optimization Guide, instruction characteristics "
        "(FMLA on pipes V0-V3)",
        vendor="arm:0x41",
        models=(0xD4F,),
        nominal_mhz=2800.0,
        nominal_source="AWS Graviton4 instance pages (m8g, c8g, r8g): 2.8 GHz",
    ),
)
"""Cores instbench knows the DP peak of. Add a row only with a citable source."""

CLOCK_NOMINAL = "nominal"
CLOCK_MAXIMUM = "maximum"
CLOCK_MEASURED = "measured"
"""Values of the peak's `clock`: which clock the peak assumes."""


def _int(text: Any) -> Optional[int]:
    if text is None:
        return None
    s = str(text).strip().lower()
    try:
        return int(s, 16) if s.startswith("0x") else int(s)
    except ValueError:
        return None


def read_cpufreq_khz(name: str, cpu_dir: str = "/sys/devices/system/cpu") -> Optional[int]:
    """Largest positive cpuN/cpufreq/`name` (kHz) over the CPUs; None without cpufreq.

    `name` is ``base_frequency`` (intel_pstate's nominal clock) or ``cpuinfo_max_freq``.
    """
    best: Optional[int] = None
    try:
        names = os.listdir(cpu_dir)
    except OSError:
        return None
    for entry in names:
        if not (entry.startswith("cpu") and entry[3:].isdigit()):
            continue
        try:
            with open(os.path.join(cpu_dir, entry, "cpufreq", name), encoding="ascii") as fh:
                khz = int(fh.read().strip())
        except (OSError, ValueError):
            continue
        if khz > 0 and (best is None or khz > best):
            best = khz
    return best


def identify(cpu: Dict[str, Any], architecture: str) -> Tuple[Optional[CoreRow], str]:
    """The table row for the sysinfo `cpu` section, and how the core was identified.

    sysinfo stores x86 CPUID family/model as decimal strings and, on Arm, the MIDR
    implementer in `family` and the part in `model` (hex strings, as /proc/cpuinfo has
    them). Returns (None, description) when no row matches.
    """
    family = _int(cpu.get("family"))
    model = _int(cpu.get("model"))
    if architecture == "arm64":
        what = f"MIDR implementer {cpu.get('family') or '?'} part {cpu.get('model') or '?'}"
        vendor = f"arm:0x{family:02x}" if family is not None else None
        for row in CORES:
            if row.vendor == vendor and model in row.models:
                return row, what
        return None, what
    vendor_id = str(cpu.get("vendor") or "")
    what = f"{vendor_id or 'x86'} CPUID family {family} model {model}"
    if model is not None:
        what += f" (0x{model:x})"
    for row in CORES:
        if row.vendor == vendor_id and row.family == family and model in row.models:
            return row, what
    return None, what


_GHZ_IN_NAME = re.compile(r"@\s*([0-9]+(?:\.[0-9]+)?)\s*GHz", re.IGNORECASE)


def nominal_clock(
    cpu: Dict[str, Any],
    row: Optional[CoreRow],
    *,
    base_khz: Optional[int],
    max_khz: Optional[int],
    measured_mhz: Optional[float],
) -> Dict[str, Any]:
    """The clock the peak assumes: {"mhz", "clock", "source"} (mhz None when unknown).

    In order: the frequency in the model name (Intel prints its nominal clock there); the
    cpufreq base_frequency (intel_pstate's nominal); the table row's documented clock
    (Graviton: one clock per generation, and EC2 reports none); /proc/cpuinfo "cpu MHz"
    when there is no cpufreq (a hypervisor reports its nominal/TSC clock there); then, no
    longer nominal and labelled so, cpufreq cpuinfo_max_freq and the measured clock.
    """
    match = _GHZ_IN_NAME.search(str(cpu.get("model_name") or ""))
    if match:
        return {
            "mhz": float(match.group(1)) * 1000.0,
            "clock": CLOCK_NOMINAL,
            "source": "model name",
        }
    if base_khz:
        return {
            "mhz": base_khz / 1000.0,
            "clock": CLOCK_NOMINAL,
            "source": "cpufreq base_frequency",
        }
    if row is not None and row.nominal_mhz:
        return {"mhz": row.nominal_mhz, "clock": CLOCK_NOMINAL, "source": row.nominal_source}
    reported = cpu.get("max_mhz")
    if reported and not max_khz:
        return {
            "mhz": float(reported),
            "clock": CLOCK_NOMINAL,
            "source": "cpuinfo (cpu MHz; no cpufreq: the hypervisor's nominal clock)",
        }
    if max_khz:
        return {
            "mhz": max_khz / 1000.0,
            "clock": CLOCK_MAXIMUM,
            "source": "cpufreq cpuinfo_max_freq (the highest clock, not nominal)",
        }
    if measured_mhz:
        return {
            "mhz": float(measured_mhz),
            "clock": CLOCK_MEASURED,
            "source": "measured: dependent-add loop (no nominal clock known)",
        }
    return {"mhz": None, "clock": None, "source": None}


def peak(
    cpu: Dict[str, Any],
    architecture: str,
    *,
    base_khz: Optional[int] = None,
    max_khz: Optional[int] = None,
    measured_mhz: Optional[float] = None,
    measured_note: str = "",
    extension: Optional[str] = None,
) -> Dict[str, Any]:
    """The `peak` section of a LINPACK result: cores x nominal GHz x FLOPs/cycle of the core.

    `gflops` is None, with the reason in `note`, when the core is not in the table or no
    clock is known. Physical cores, not logical CPUs: SMT siblings share the FMA units.
    """
    cores = int(cpu.get("sockets") or 1) * int(cpu.get("cores_per_socket") or 1)
    row, identified_by = identify(cpu, architecture)
    clock = nominal_clock(cpu, row, base_khz=base_khz, max_khz=max_khz, measured_mhz=measured_mhz)
    notes = ["physical cores x nominal clock x DP FLOPs per cycle of the core (as Rpeak)"]
    gflops: Optional[float] = None
    if row is None:
        notes.append(
            f"core not in instbench's peak table ({identified_by}): peak and efficiency unknown"
        )
    elif not clock["mhz"]:
        notes.append("no CPU clock known: peak unknown")
    else:
        gflops = cores * float(clock["mhz"]) / 1000.0 * row.flops_per_cycle
        if clock["clock"] != CLOCK_NOMINAL:
            notes.append(f"no nominal clock known: the peak uses the {clock['clock']} clock")
    if measured_note:
        notes.append(measured_note)
    return {
        "gflops": gflops,
        "cores": cores,
        "max_mhz": clock["mhz"],
        "frequency_source": clock["source"],
        "clock": clock["clock"],
        "measured_mhz": measured_mhz,
        "flops_per_cycle": row.flops_per_cycle if row else None,
        "extension": extension,
        "assumption": row.units if row else None,
        "core": row.key if row else None,
        "core_name": row.name if row else None,
        "core_source": row.source if row else None,
        "identified_by": identified_by,
        "note": "; ".join(notes),
    }


def efficiency(gflops: float, section: Dict[str, Any]) -> Tuple[Optional[float], Optional[str]]:
    """(gflops / peak, None), or (None, why) when the peak is unknown. Never 0."""
    value = section.get("gflops")
    if not value:
        return None, "no peak: " + str(section.get("note") or "unknown")
    return gflops / float(value), None


__all__ = [
    "CLOCK_MAXIMUM",
    "CLOCK_MEASURED",
    "CLOCK_NOMINAL",
    "CORES",
    "CoreRow",
    "efficiency",
    "identify",
    "nominal_clock",
    "peak",
    "read_cpufreq_khz",
]
