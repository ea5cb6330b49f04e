"""Peak FLOPs per core from CPUID/MIDR (issue 15): recorded machines get the peak of their
core x cores x nominal clock; unknown cores get no peak and no efficiency, with the reason."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from instbench.agent import sysinfo
from instbench.benchmarks import peaks
from instbench.results.schema import LinpackPeak

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sysinfo"


def _peak(tree: str | Path, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    info = sysinfo.collect(str(FIXTURES / tree if isinstance(tree, str) else tree))
    section = peaks.peak(info["cpu"], info["architecture"], **kwargs)
    LinpackPeak.model_validate(section)
    return info["cpu"], section


@pytest.mark.parametrize(
    ("tree", "core", "fpc", "cores", "mhz"),
    [
        ("m7a.2xlarge", "amd-zen4", 16, 8, 2600.0),  # AVX-512 on 256-bit units: 16, not 32
        ("c7g.2xlarge", "arm-neoverse-v1", 16, 8, 2600.0),  # Graviton3: no MHz in cpuinfo
        ("m7i.2xlarge", "intel-sapphire-rapids", 32, 4, 2400.0),  # 4 cores x 2 threads
        ("kvm-amd-zen5", "amd-zen5", 32, 2, 2596.12),  # this development VM, recorded
        ("kvm-amd-epyc", "amd-zen3", 16, 2, 2445.406),  # the earlier VM, recorded
    ],
)
def test_recorded_machines_get_their_cores_peak(
    tree: str, core: str, fpc: int, cores: int, mhz: float
) -> None:
    cpu, section = _peak(tree, measured_mhz=3100.0)
    assert section["core"] == core and section["flops_per_cycle"] == fpc
    assert section["cores"] == cores == cpu["sockets"] * cpu["cores_per_socket"]
    assert section["max_mhz"] == pytest.approx(mhz) and section["clock"] == "nominal"
    assert section["gflops"] == pytest.approx(fpc * cores * mhz / 1000.0)
    assert section["measured_mhz"] == 3100.0  # kept beside, never used when nominal is known
    assert section["core_source"] and section["identified_by"]
    assert peaks.efficiency(section["gflops"] / 2, section) == (pytest.approx(0.5), None)


def test_the_widest_extension_does_not_decide() -> None:
    """Zen 4 and Sapphire Rapids both offer avx512f; only the core tells 16 from 32."""
    zen4, _ = _peak("m7a.2xlarge")
    spr, _ = _peak("m7i.2xlarge")
    assert "avx512f" in zen4["flags"] and "avx512f" in spr["flags"]


def test_unknown_core_has_no_peak_and_no_efficiency_with_the_reason() -> None:
    cpu = {
        "vendor": "GenuineIntel",
        "family": "6",
        "model": "175",  # Sierra Forest (E-cores): not in the table
        "model_name": "Intel(R) Xeon(R) 6780E",
        "sockets": 1,
        "cores_per_socket": 8,
        "max_mhz": 2200.0,
    }
    section = peaks.peak(cpu, "x86_64", measured_mhz=2500.0)
    LinpackPeak.model_validate(section)
    assert section["gflops"] is None and section["core"] is None
    assert "not in instbench's peak table" in section["note"]
    assert "family 6 model 175 (0xaf)" in section["note"]
    value, why = peaks.efficiency(100.0, section)
    assert value is None and why and "peak table" in why  # None with a reason, never 0

    arm = {"vendor": "ARM", "family": "0x41", "model": "0xd08", "sockets": 1}
    a72 = peaks.peak(arm, "arm64", measured_mhz=2300.0)
    assert a72["gflops"] is None and "MIDR implementer 0x41 part 0xd08" in a72["note"]


def test_every_row_cites_a_source_and_ids_match_one_row_only() -> None:
    seen: dict[tuple[str, int, int], str] = {}
    for row in peaks.CORES:
        assert row.flops_per_cycle in (8, 16, 32)
        assert row.units and len(row.source) > 40
        assert any(doc in row.source for doc in ("Intel 64", "AMD Software", "Arm Neoverse"))
        if row.nominal_mhz:
            assert row.nominal_source
        for model in row.models:
            key = (row.vendor, row.family, model)
            assert key not in seen, f"{row.key} and {seen[key]} both match {key}"
            seen[key] = row.key


def test_midr_from_sysfs_when_cpuinfo_lacks_it(tmp_path: Path) -> None:
    root = tmp_path / "c7g"
    shutil.copytree(FIXTURES / "c7g.2xlarge", root)
    cpuinfo = root / "proc" / "cpuinfo"
    kept = [line for line in cpuinfo.read_text().splitlines() if not line.startswith("CPU ")]
    cpuinfo.write_text("\n".join(kept) + "\n")
    regs = root / "sys/devices/system/cpu/cpu0/regs/identification"
    regs.mkdir(parents=True)
    (regs / "midr_el1").write_text("0x00000000411fd401\n")  # Neoverse V1 r1p1
    (root / "uname-m").write_text("aarch64\n")
    cpu, section = _peak(root)
    assert (cpu["family"], cpu["model"]) == ("0x41", "0xd40")
    assert section["core"] == "arm-neoverse-v1" and section["flops_per_cycle"] == 16
    assert sysinfo.parse_midr("0x00000000413fd0c1") == (0x41, 0xD0C)
    assert sysinfo.parse_midr("garbage") is None


def test_which_clock_the_peak_assumes() -> None:
    cpu = {"vendor": "GenuineIntel", "family": "6", "model": "85", "sockets": 2}
    cpu["cores_per_socket"] = 24
    named = {**cpu, "model_name": "Intel(R) Xeon(R) Platinum 8275CL CPU @ 3.00GHz"}
    by_name = peaks.peak(named, "x86_64", max_khz=3900000, measured_mhz=3500.0)
    assert (by_name["max_mhz"], by_name["clock"]) == (3000.0, "nominal")
    assert by_name["gflops"] == pytest.approx(48 * 3.0 * 32)
    base = peaks.peak(cpu, "x86_64", base_khz=2500000, max_khz=3900000)
    assert (base["max_mhz"], base["frequency_source"]) == (2500.0, "cpufreq base_frequency")
    highest = peaks.peak(cpu, "x86_64", max_khz=3900000, measured_mhz=3500.0)
    assert (highest["max_mhz"], highest["clock"]) == (3900.0, "maximum")
    assert "no nominal clock known" in highest["note"]
    measured = peaks.peak(cpu, "x86_64", measured_mhz=3500.0)
    assert (measured["max_mhz"], measured["clock"]) == (3500.0, "measured")
    none = peaks.peak(cpu, "x86_64", measured_note="clock not measured: failed")
    assert none["gflops"] is None and none["clock"] is None
    assert "no CPU clock known" in none["note"] and "failed" in none["note"]


def test_cpufreq_reader(tmp_path: Path) -> None:
    for n, khz in ((0, "2500000\n"), (1, "2600000\n"), (2, "bad\n")):
        d = tmp_path / f"cpu{n}" / "cpufreq"
        d.mkdir(parents=True)
        (d / "base_frequency").write_text(khz)
    assert peaks.read_cpufreq_khz("base_frequency", str(tmp_path)) == 2600000
    assert peaks.read_cpufreq_khz("cpuinfo_max_freq", str(tmp_path)) is None
    assert peaks.read_cpufreq_khz("base_frequency", str(tmp_path / "absent")) is None
