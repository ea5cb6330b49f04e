"""LINPACK: library discovery, sizing, the HPL residual check (including a deliberately
wrong solution, which must fail), the peak table, and a real quick run of our kernel
built with real gcc against the system OpenBLAS/LAPACK.

Tests assert behaviour, never timings.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from instbench.agent import sysinfo
from instbench.benchmarks import isa, linpack, registry
from instbench.benchmarks.errors import BenchmarkError, BenchmarkInputError
from instbench.results.schema import LinpackResult

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
LIBRARY = linpack.find_library()
needs_blas = pytest.mark.skipif(LIBRARY is None, reason="needs OpenBLAS or LAPACK installed")

LDCONFIG = """\
6 libs found in cache `/etc/ld.so.cache'
\tlibopenblas.so.0 (libc6,x86-64) => /lib/x86_64-linux-gnu/libopenblas.so.0
\tliblapack.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/liblapack.so.3
\tlibc.so.6 (libc6,x86-64, OS ABI: Linux 3.2.0) => /lib/x86_64-linux-gnu/libc.so.6
"""

# Recorded from the kernel on the 2-core EPYC VM: linpack lib=... n=1000 trials=2 seed=1
RECORDED = (
    '{"program":"instbench-linpack","kernel_version":"1.0.0","library":'
    '"/lib/x86_64-linux-gnu/libopenblas.so.0","n":1000,"seed":1,"trials":2,"times_s":'
    '[0.176810874,0.135152569],"best_s":0.135152569,"gflops":4.94749505,"flops":'
    '668666666.66666663,"residual_inf":8.4549034440328796e-13,"a_inf":264.20590973204008,'
    '"x_inf":7.0242483091461683,"b_inf":0.49966578614387258,"eps":1.1102230246251565e-16,'
    '"scaled_residual":0.0041024106045908877,"perturbed":false,"openblas":{"config":'
    '"OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64","core":"Zen",'
    '"threads":2,"parallel":1}}\n'
)


def test_parse_ldconfig_and_preference(tmp_path: Path) -> None:
    cache = linpack.parse_ldconfig(LDCONFIG)
    assert cache["libopenblas.so.0"] == "/lib/x86_64-linux-gnu/libopenblas.so.0"
    assert "libc.so.6" in cache
    serial = tmp_path / "libopenblas.so.0"
    threaded = tmp_path / "libopenblasp.so.0"
    lapack = tmp_path / "liblapack.so.3"
    for f in (serial, threaded, lapack):
        f.write_bytes(b"")
    known = {"liblapack.so.3": str(lapack), "libopenblas.so.0": str(serial)}
    assert linpack.find_library(known, dirs=[str(tmp_path)]) == str(threaded)
    assert linpack.find_library({"liblapack.so.3": str(lapack)}, dirs=[]) == str(lapack)
    assert linpack.find_library({}, dirs=[str(tmp_path / "none")]) is None


def test_parse_recorded_output() -> None:
    data = linpack.parse_output(RECORDED)
    assert data["n"] == 1000
    assert data["gflops"] == pytest.approx(linpack.hpl_flops(1000) / 0.135152569 / 1e9)
    assert data["scaled_residual"] == pytest.approx(0.0041024106045908877, rel=1e-9)
    assert linpack.residual_passes(data["scaled_residual"])
    with pytest.raises(BenchmarkError):
        linpack.parse_output(RECORDED.replace('"1.0.0"', '"0.9"'))
    with pytest.raises(BenchmarkError):
        linpack.parse_output("garbage")


def test_residual_rejects_a_wrong_solution() -> None:
    """Perturbing x by 1 in one component makes ||Ax-b|| about ||A|| / n: far above 16."""
    good = json.loads(RECORDED)
    n, eps = good["n"], good["eps"]
    ok = linpack.scaled_residual(
        good["residual_inf"], good["a_inf"], good["x_inf"], good["b_inf"], n, eps
    )
    assert linpack.residual_passes(ok)
    # x[0] += 1 changes every residual component by A[i][0], up to 0.5.
    wrong = linpack.scaled_residual(0.5, good["a_inf"], good["x_inf"], good["b_inf"], n, eps)
    assert not linpack.residual_passes(wrong)
    assert not linpack.residual_passes(math.inf)
    assert not linpack.residual_passes(math.nan)
    assert linpack.scaled_residual(1.0, 0.0, 0.0, 0.0, 10, eps) == math.inf


def test_sizing() -> None:
    n, reason = linpack.plan_n(budget_s=40, trials=3, rate_gflops=10, mem_available=None)
    assert n % 64 == 0 and linpack.hpl_flops(n) / 10e9 == pytest.approx(10, rel=0.2)
    assert "10.0 s per solve" in reason
    small = 64 * 1024**2
    n2, reason2 = linpack.plan_n(budget_s=40, trials=3, rate_gflops=1e4, mem_available=small)
    assert 8 * n2**2 <= linpack.MEMORY_SHARE * small and "memory" in reason2
    with pytest.raises(BenchmarkInputError):
        linpack.LinpackOptions(n=10)
    with pytest.raises(BenchmarkInputError):
        linpack.LinpackOptions(library="libopenblas.so.0")


def test_extension_table() -> None:
    """What the widest extension allows (recorded as `peak.extension`; the peak itself is
    the core's, tests/unit/test_peaks.py)."""
    avx512 = isa.flops_per_cycle(["sse2", "avx2", "fma", "avx512f"], "x86_64")
    assert avx512 is not None and avx512["extension"] == "avx512f"
    avx2 = isa.flops_per_cycle(["sse2", "avx", "avx2", "fma"], "x86_64")
    assert avx2 is not None and avx2["flops_per_cycle"] == 16 and avx2["extension"] == "avx2"
    assert isa.flops_per_cycle(["sse2", "avx"], "x86_64")["flops_per_cycle"] == 8  # type: ignore[index]
    neon = isa.flops_per_cycle(["fp", "asimd"], "aarch64")
    assert neon is not None and neon["flops_per_cycle"] == 8
    sve = isa.flops_per_cycle(["asimd", "sve"], "aarch64", sve_bits=256)
    assert sve is not None and sve["flops_per_cycle"] == 16
    sve2 = isa.flops_per_cycle(["asimd", "sve"], "aarch64", sve_bits=128)
    assert sve2 is not None and sve2["flops_per_cycle"] == 16
    assert isa.offered(["fp", "asimd", "sve"], "aarch64") == ["neon", "sve"]
    assert isa.offered(["sse2", "avx2", "fma"], "x86_64") == ["sse2", "avx2"]


def test_missing_library_is_input_error(tmp_path: Path) -> None:
    options = linpack.LinpackOptions(quick=True, library=str(tmp_path / "libnothing.so"))
    with pytest.raises(BenchmarkInputError, match="does not exist"):
        linpack.run_linpack(options, cache_dir=tmp_path)
    assert "openblas-devel" in linpack.INSTALL_HINT and "libopenblas-dev" in linpack.INSTALL_HINT


@needs_gcc
def test_not_a_lapack_is_input_error(tmp_path: Path) -> None:
    libc = linpack.parse_ldconfig(
        subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    ).get("libc.so.6")
    if libc is None:
        pytest.skip("no libc.so.6 in the ldconfig cache")
    options = linpack.LinpackOptions(quick=True, library=libc)
    with pytest.raises(BenchmarkInputError, match="dgetrf"):
        linpack.run_linpack(options, cache_dir=tmp_path)


@needs_gcc
@needs_blas
def test_real_kernel_wrong_solution_fails(tmp_path: Path) -> None:
    assert LIBRARY is not None
    _, _, built = linpack.build(tmp_path)
    args = linpack.kernel_args(LIBRARY, 200, 1)
    good = linpack.parse_output(
        subprocess.run([str(built.binary), *args], capture_output=True, text=True).stdout
    )
    assert linpack.residual_passes(good["scaled_residual"])
    bad_args = linpack.kernel_args(LIBRARY, 200, 1, perturb=True)
    bad = linpack.parse_output(
        subprocess.run([str(built.binary), *bad_args], capture_output=True, text=True).stdout
    )
    assert bad["perturbed"] is True
    assert not linpack.residual_passes(bad["scaled_residual"])


@needs_gcc
@needs_blas
def test_real_quick_run_through_registry(tmp_path: Path) -> None:
    info = registry.info("linpack")
    params = info.validate_params({"n": 300, "trials": 1})
    logs: list[str] = []
    ctx = registry.RunContext(params=params, quick=True, cache_dir=tmp_path, log=logs.append)
    section, build = info.run(ctx)
    result = LinpackResult.model_validate(section)
    assert result.n == 300 and result.residual_passed and result.gflops > 0
    assert result.size_reason == "user override"
    assert build["cflags"] == section["cflags"]
    assert any("GFLOPS" in line for line in logs)
    peak = result.peak
    # This machine's core is in the table or it is not: a peak and an efficiency, or
    # neither and the reason. The measured clock is recorded either way.
    assert peak.measured_mhz is not None and 0.0 < peak.measured_mhz <= 10000.0
    if peak.core is not None:
        assert peak.gflops and result.efficiency and result.efficiency_note is None
        assert peak.clock == "nominal" and peak.core_source
    else:
        assert peak.gflops is None and result.efficiency is None
        assert result.efficiency_note and "peak table" in result.efficiency_note


@needs_gcc
@needs_blas
def test_peak_measures_the_clock_when_the_os_reports_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no clock from the OS or the table (no MHz in cpuinfo, no cpufreq), the peak uses
    the measured clock and says so."""
    real_collect = sysinfo.collect

    def no_frequency(*args: Any, **kwargs: Any) -> dict[str, Any]:
        data = real_collect(*args, **kwargs)
        data["cpu"]["max_mhz"] = None
        return data

    monkeypatch.setattr(sysinfo, "collect", no_frequency)
    info = registry.info("linpack")
    params = info.validate_params({"n": 200, "trials": 1})
    logs: list[str] = []
    ctx = registry.RunContext(params=params, quick=True, cache_dir=tmp_path, log=logs.append)
    section, _ = info.run(ctx)
    peak = LinpackResult.model_validate(section).peak
    assert peak.max_mhz is not None and 0.0 < peak.max_mhz <= 10000.0
    assert peak.measured_mhz == peak.max_mhz
    if peak.core is not None:
        assert peak.clock == "measured" and peak.frequency_source.startswith("measured")
        assert peak.gflops is not None and section["efficiency"] is not None
        assert any("measured clock" in line and "MHz" in line for line in logs)
