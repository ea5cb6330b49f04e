"""SVE vector FLOPS: flag selection and offered/measured logic on a recorded Graviton3
(tests/fixtures/sysinfo/c7g.2xlarge), and the SVE kernel itself, cross-compiled for aarch64
and run under `qemu-aarch64 -cpu max` at the vector lengths of Graviton4 (128 bits) and
Graviton3 (256 bits).

The functional tests need gcc-aarch64-linux-gnu and qemu-user (installed by .ci/run) and are
skipped without them. Under emulation the rate means nothing; the tests assert that the
kernel runs, that every lane matches its closed form (the kernel's check), that the width
it reports is the one qemu was given, and that the rate is positive; never a rate.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from instbench.agent import sysinfo
from instbench.benchmarks import compiler as cc
from instbench.benchmarks import cpu, isa

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sysinfo"
CROSS_GCC = "aarch64-linux-gnu-gcc"
CROSS_OBJDUMP = "aarch64-linux-gnu-objdump"
QEMU = "qemu-aarch64"
SYSROOT = Path("/usr/aarch64-linux-gnu")
"""Where Debian's cross toolchain puts the aarch64 libc and libgomp qemu needs."""

needs_cross = pytest.mark.skipif(
    shutil.which(CROSS_GCC) is None or shutil.which(QEMU) is None,
    reason=f"needs {CROSS_GCC} and {QEMU} (apt-get install gcc-aarch64-linux-gnu qemu-user)",
)


def _graviton3_cpu() -> dict[str, Any]:
    data = sysinfo.collect(str(FIXTURES / "c7g.2xlarge"))
    assert data["architecture"] == "arm64"
    cpu_section: dict[str, Any] = data["cpu"]
    return cpu_section


def test_sve_flags_target_sve_vector_length_agnostic() -> None:
    flags = cpu.VECTOR_FLAGS["sve"]
    assert "-march=armv8-a+sve" in flags and "-DVEC_SVE=1" in flags
    # vector-length agnostic: no fixed width, no -msve-vector-bits
    assert not any(f.startswith(("-DVEC_BYTES", "-msve-vector-bits")) for f in flags)
    # NEON stays the default Advanced SIMD build, without SVE
    assert not any("sve" in f.lower() for f in cpu.VECTOR_FLAGS["neon"])


def test_graviton3_offers_and_measures_neon_and_sve() -> None:
    c7g = _graviton3_cpu()
    offered = isa.offered(c7g["flags"], "arm64")
    assert offered == ["neon", "sve"]
    targeted, unsupported = cpu.vector_plan(offered)
    assert targeted == ["neon", "sve"] and unsupported == []
    assert cpu.vector_note(unsupported, {}) == ""


def test_x86_does_not_offer_sve() -> None:
    epyc = sysinfo.collect(str(FIXTURES / "kvm-amd-epyc"))["cpu"]
    offered = isa.offered(epyc["flags"], "x86_64")
    assert "sve" not in offered and "neon" not in offered
    assert cpu.vector_plan(offered) == (offered, [])


def _qemu_run(vl_bytes: int) -> Callable[[Sequence[str], float, str], str]:
    """cpu._run replacement that runs aarch64 binaries under qemu with a given SVE width."""
    real = cpu._run

    def run(cmd: Sequence[str], timeout: float, what: str) -> str:
        qemu = [QEMU, "-cpu", f"max,sve-default-vector-length={vl_bytes}", "-L", str(SYSROOT)]
        return real([*qemu, *cmd], timeout * 10, what)

    return run


def _cross_compiler() -> cc.Compiler:
    path = shutil.which(CROSS_GCC)
    assert path is not None
    version = subprocess.run(
        [path, "--version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    return cc.Compiler(path=path, name="gcc", version=version)


@needs_cross
@pytest.mark.parametrize("vl_bits", [128, 256])
def test_sve_kernel_under_qemu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vl_bits: int
) -> None:
    """Graviton3's offered extensions go through measure_vector with the real SVE build."""
    monkeypatch.setattr(cpu, "_run", _qemu_run(vl_bits // 8))
    offered = isa.offered(_graviton3_cpu()["flags"], "arm64")
    logs: list[str] = []
    measured, compile_s, unbuilt = cpu.measure_vector(
        offered, _cross_compiler(), tmp_path, threads=2, ms=20.0, log=logs.append
    )
    assert unbuilt == {} and compile_s > 0
    assert [m["extension"] for m in measured] == ["neon", "sve"]
    sve = measured[1]
    assert sve["cflags"] == [*cpu.VECTOR_FLAGS["sve"], "-fopenmp"]
    assert sve["single_thread_gflops"] > 0 and sve["all_threads_gflops"] > 0

    # run once more directly to see the width and the lane check the parser enforced
    binary = cc.build_kernel(cpu.VEC_SOURCE, _cross_compiler(), sve["cflags"], tmp_path).binary
    out = cpu._run([str(binary), "threads=1", "ms=10"], 60, "vecflops")
    data = cpu.parse_vec_output(out)
    assert data["vec_bytes"] == vl_bits // 8
    assert data["check_ok"] is True
    # 16 accumulators x (VL / 64) lanes, all checked
    assert data["lanes_checked"] == 16 * vl_bits // 64


@needs_cross
def test_sve_build_uses_sve_fma(tmp_path: Path) -> None:
    """The SVE binary's hot loop is SVE FMAs on z registers (not NEON, not scalar)."""
    if shutil.which(CROSS_OBJDUMP) is None:
        pytest.skip(f"needs {CROSS_OBJDUMP}")
    flags = [*cpu.VECTOR_FLAGS["sve"], "-fopenmp"]
    binary = cc.build_kernel(cpu.VEC_SOURCE, _cross_compiler(), flags, tmp_path).binary
    dump = subprocess.run(
        [CROSS_OBJDUMP, "-d", "--no-show-raw-insn", str(binary)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    sve_fma = re.findall(r"\t(?:fmla|fmad)\s+z\d+\.d,", dump)
    assert len(sve_fma) >= 16
