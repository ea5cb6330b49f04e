"""CPU benchmark: parsers on recorded outputs (instbench-int, vecflops, openssl speed -mr),
scaling figures, and a real quick run with real gcc (and openssl where installed).

Tests assert behaviour, never timings.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from instbench.agent import sysinfo
from instbench.benchmarks import compiler as cc
from instbench.benchmarks import cpu, isa, registry
from instbench.benchmarks.errors import BenchmarkError, BenchmarkInputError
from instbench.results.schema import CpuResult

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")

# Recorded on the 2-core EPYC VM (OpenSSL 3.0.19):
#   openssl speed -mr -seconds 1 -bytes 16384 -evp aes-256-gcm
OPENSSL_AES_QUICK = """\
+DT:AES-256-GCM:1:16384
+R:33277:AES-256-GCM:0.320000
+H:16384
+F:25:AES-256-GCM:1703782400.00
"""
#   openssl speed -mr -seconds 1 -evp sha256
OPENSSL_SHA_FULL = """\
+DT:sha256:1:16
+R:1094064:sha256:0.330000
+DT:sha256:1:64
+R:967556:sha256:0.330000
+DT:sha256:1:256
+R:720559:sha256:0.340000
+DT:sha256:1:1024
+R:282888:sha256:0.290000
+DT:sha256:1:8192
+R:45283:sha256:0.280000
+DT:sha256:1:16384
+R:25265:sha256:0.300000
+H:16:64:256:1024:8192:16384
+F:25:sha256:53045527.27:187647224.24:542538541.18:998887282.76:1324851200.00:1379805866.67
"""
#   cpu_int threads=2 ms=300
INT_RECORDED = (
    '{"program":"instbench-int","kernel_version":"1.0.0","threads":2,'
    '"validation_iterations":256,"checksums":[3382005136,3382005136],"iterations":'
    '[12176,12176],"seconds":[0.304145734,0.312055144],"wall_s":0.326341464,"score":'
    '79052.1847,"sink":0}\n'
)
#   vecflops threads=1 ms=200 (built with -O2 -mavx2 -mfma -DVEC_BYTES=32 -fopenmp)
VEC_RECORDED = (
    '{"program":"instbench-vecflops","kernel_version":"1.0.0","vec_bytes":32,"threads":1,'
    '"flops":10169745408,"seconds":0.200040562,"gflops":50.8384165,"sink":47856.6,'
    '"lanes_checked":48,"check_ok":true}\n'
)


def test_parse_openssl_recorded() -> None:
    aes = cpu.parse_openssl_speed(OPENSSL_AES_QUICK)
    assert aes == {"aes-256-gcm": {16384: 1703782400.0}}
    sha = cpu.parse_openssl_speed(OPENSSL_SHA_FULL)["sha256"]
    assert sorted(sha) == [16, 64, 256, 1024, 8192, 16384]
    assert sha[16] == pytest.approx(53045527.27)
    assert cpu.parse_openssl_speed("Doing sha256 for 1s\nnothing machine-readable") == {}
    assert cpu.openssl_command("sha256", quick=True) == [
        "openssl",
        "speed",
        "-mr",
        "-seconds",
        "1",
        "-bytes",
        "16384",
        "-evp",
        "sha256",
    ]
    assert "-bytes" not in cpu.openssl_command("aes-256-gcm", quick=False)


def test_parse_int_recorded() -> None:
    data = cpu.parse_int_output(INT_RECORDED)
    assert data["checksum_ok"] and data["score"] == pytest.approx(79052.1847)
    bad = cpu.parse_int_output(INT_RECORDED.replace("3382005136]", "1]"))
    assert not bad["checksum_ok"]
    with pytest.raises(BenchmarkError):
        cpu.parse_int_output(INT_RECORDED.replace("instbench-int", "coremark"))
    assert cpu.parse_vec_output(VEC_RECORDED)["gflops"] == pytest.approx(50.8384165)


def test_vec_check_is_enforced() -> None:
    """A rate whose lanes do not match the closed form, or with no check at all, is refused."""
    with pytest.raises(BenchmarkError, match="check failed"):
        cpu.parse_vec_output(VEC_RECORDED.replace('"check_ok":true', '"check_ok":false'))
    with pytest.raises(BenchmarkError, match="check failed"):
        cpu.parse_vec_output(VEC_RECORDED.replace(',"lanes_checked":48,"check_ok":true', ""))
    with pytest.raises(BenchmarkError, match="no rate"):
        cpu.parse_vec_output(VEC_RECORDED.replace('"gflops":50.8384165', '"gflops":0'))


def test_vector_plan_and_note() -> None:
    assert cpu.vector_plan(["sse2", "avx", "avx2"]) == (["sse2", "avx", "avx2"], [])
    assert cpu.vector_plan(["neon", "sve", "sve2"]) == (["neon", "sve"], ["sve2"])
    assert cpu.vector_note([], {}) == ""
    note = cpu.vector_note(["sve2"], {"sve": "compiling the kernel failed: no arm_sve.h"})
    assert "no kernel targets sve2" in note and "sve not measured: compiling" in note


@needs_gcc
def test_vector_build_failure_is_recorded_not_raised(tmp_path: Path) -> None:
    """A compiler that cannot build one extension's kernel leaves it unmeasured, with why."""
    failing = cc.Compiler(path=shutil.which("false") or "/bin/false", name="gcc", version="x")
    logs: list[str] = []
    measured, _, unbuilt = cpu.measure_vector(["sve"], failing, tmp_path, 1, 10.0, logs.append)
    assert measured == [] and list(unbuilt) == ["sve"]
    assert "compiling the kernel" in unbuilt["sve"] and "not measured" in logs[0]


def test_integer_summary() -> None:
    # 2 cores with SMT (4 threads): one thread 100, all threads 260.
    s = cpu.integer_summary(100.0, 260.0, threads=4, physical_cores=2)
    assert s["scaling"] == pytest.approx(2.6)
    assert s["parallel_efficiency"] == pytest.approx(0.65)
    assert s["score_per_physical_core"] == pytest.approx(130.0)
    assert s["score_per_logical_cpu"] == pytest.approx(65.0)
    assert s["smt_yield"] == pytest.approx(1.3)


def test_smt_efficiency() -> None:
    # 2 cores with SMT (4 threads): all four threads 260, one per core 200.
    assert cpu.smt_efficiency(260.0, 200.0, threads=4, physical=2, smt=True) == pytest.approx(1.3)
    # No SMT: the per-core run is the all-threads run, 1.0 by definition (no run needed).
    assert cpu.smt_efficiency(260.0, None, threads=2, physical=2, smt=False) == 1.0
    # SMT, but --threads no more than the cores: all vCPUs were not used, not measured.
    assert cpu.smt_efficiency(260.0, None, threads=2, physical=2, smt=True) is None


def test_options_validated() -> None:
    with pytest.raises(BenchmarkInputError):
        cpu.CpuOptions(duration_ms=1.0)
    with pytest.raises(BenchmarkInputError):
        registry.info("cpu").validate_params({"threads": 0})


@needs_gcc
def test_checksum_is_the_same_unoptimised(tmp_path: Path) -> None:
    """The expected checksum is a property of the source, not of -O3 -march=native."""
    compiler = cc.find_compiler()
    built = cc.build_kernel(cpu.INT_SOURCE, compiler, ["-O0", "-fopenmp"], tmp_path)
    data = cpu._run_int(built.binary, 1, 20.0)
    assert data["checksums"] == [cpu.EXPECTED_CHECKSUM]


@needs_gcc
def test_real_quick_run_through_registry(tmp_path: Path) -> None:
    info = registry.info("cpu")
    params = info.validate_params({"duration_ms": 50.0})
    logs: list[str] = []
    ctx = registry.RunContext(params=params, quick=True, cache_dir=tmp_path, log=logs.append)
    section, build = info.run(ctx)
    result = CpuResult.model_validate(section)
    assert result.integer.name == "instbench-int" and result.integer.checksum_ok
    assert result.coremark is None
    assert result.integer.scaling > 0
    smt = sysinfo.collect()["cpu"]["threads_per_core"] > 1
    if smt and result.integer.threads > result.integer.physical_cores:
        assert result.integer.per_core_score is not None
        assert result.integer.smt_efficiency == pytest.approx(
            result.integer.all_threads_score / result.integer.per_core_score
        )
    elif not smt:  # this machine's vCPUs are whole cores: 1.0 by definition, no third run
        assert (result.integer.smt_efficiency, result.integer.per_core_score) == (1.0, None)
    flags = set(Path("/proc/cpuinfo").read_text().split())
    offered = isa.offered(flags)
    assert result.vector.offered == offered
    measured = [m.extension for m in result.vector.measured]
    assert measured == [e for e in offered if e in cpu.VECTOR_FLAGS]
    assert result.vector.note == ""
    if shutil.which("openssl"):
        assert result.openssl is not None
        assert result.openssl.aes_256_gcm_bytes_per_s["16384"] > 0
        assert result.openssl.sha256_bytes_per_s["16384"] > 0
    else:
        assert result.openssl is None
    assert build["compiler"]["path"]
    assert "coremark" not in " ".join(logs).lower()
