"""STREAM: planning, parsing, and a real quick run of our kernel built with real gcc.

Tests assert behaviour (schema, byte counting, validation, thread modes), never timings.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from instbench.benchmarks import stream
from instbench.benchmarks.compiler import kernel_source
from instbench.benchmarks.errors import BenchmarkError, BenchmarkInputError
from instbench.results.schema import StreamResult, StreamRun

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")

GIB = 1024**3
MIB = 1024**2

# Recorded from the kernel (OMP_NUM_THREADS=1 stream 10000 3) on the 2-core EPYC VM.
RECORDED = (
    '{"program":"instbench-stream","kernel_version":"1.0.0","elements":10000,"ntimes":3,'
    '"threads":1,"alignment":4096,"array_stride_bytes":90112,"timer":{"clock":'
    '"CLOCK_MONOTONIC","granularity_ns":20,"getres_ns":1},"anon_huge_kb":0,"times_s":'
    '{"copy":[7.695e-06,4.0679999999999998e-06,1.0329000000000001e-05],'
    '"scale":[1.1211e-05,4.1180000000000002e-06,4.4090000000000005e-06],'
    '"add":[1.0509000000000001e-05,1.2313000000000001e-05,1.3014000000000001e-05],'
    '"triad":[1.0520000000000001e-05,6.0510000000000002e-06,6.6020000000000005e-06]},'
    '"validation":{"epsilon":1e-13,"passed":true,"expected":{"a":6750,"b":1350,"c":1800},'
    '"mean_abs_error":{"a":0,"b":0,"c":0},"relative_error":{"a":0,"b":0,"c":0}},'
    '"warnings":[]}\n'
)


# ------------------------------------------------------------------- a real run


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    cache = tmp_path_factory.mktemp("stream-cache")
    lines: list[str] = []
    section, build = stream.run_stream(
        stream.StreamOptions(quick=True), cache_dir=cache, log=lines.append
    )
    assert any("array size" in line for line in lines)
    return section, build


@needs_gcc
def test_quick_run_is_a_valid_stream_result(
    quick_run: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    section, _ = quick_run
    result = StreamResult.model_validate(section)
    assert result.kernel_version == stream.KERNEL_VERSION
    assert result.source_sha256 == hashlib.sha256(kernel_source("stream.c")).hexdigest()
    assert result.array_size_reason.startswith("quick mode")
    assert result.nontemporal_stores == "compiler-default"
    assert "THP policy" in result.huge_pages and "AnonHugePages" in result.huge_pages
    stride = 8 * (stream.QUICK_ELEMENTS + stream.ARRAY_GAP_ELEMENTS)
    assert f"{stride} bytes apart" in result.huge_pages
    assert all(run.validation_passed for run in result.runs)
    assert all("passed" in run.validation_detail for run in result.runs)


@needs_gcc
def test_both_thread_modes_are_recorded(
    quick_run: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    runs = {run["thread_mode"]: run for run in quick_run[0]["runs"]}
    assert set(runs) == {"all", "single"}
    assert runs["all"]["threads"] == len(os.sched_getaffinity(0))
    assert runs["single"]["threads"] == 1


@needs_gcc
def test_stream_byte_counting_and_trials(
    quick_run: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    for run in quick_run[0]["runs"]:
        n = run["array_elements"]
        assert n == stream.QUICK_ELEMENTS
        assert run["array_bytes"] == 8 * n and run["total_bytes"] == 24 * n
        assert run["ntimes"] == stream.QUICK_NTIMES
        assert run["trials_counted"] == stream.QUICK_NTIMES - 1
        for name, per_element in (("copy", 16), ("scale", 16), ("add", 24), ("triad", 24)):
            kernel = run["kernels"][name]
            assert kernel["bytes_per_trial"] == per_element * n
            assert len(kernel["trial_times_s"]) == run["trials_counted"]
            assert kernel["best_gbps"] == pytest.approx(
                per_element * n / min(kernel["trial_times_s"]) / 1e9
            )


@needs_gcc
def test_build_info_for_the_execution_context(
    quick_run: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    _, build = quick_run
    assert set(build) == {"compiler", "cflags", "binary_cached", "openmp", "compile_s", "run_s"}
    assert build["compiler"]["name"] == "gcc"
    assert "-fopenmp" in build["cflags"] and "-O3" in build["cflags"]
    assert build["binary_cached"] is False
    threads = str(len(os.sched_getaffinity(0)))
    assert build["openmp"] == {
        "OMP_NUM_THREADS": threads,
        "OMP_PROC_BIND": "spread",
        "OMP_PLACES": "cores",
        "OMP_DYNAMIC": "false",
    }
    assert build["run_s"] > 0


@needs_gcc
def test_threads_option_and_single_thread_off(tmp_path: Path) -> None:
    options = stream.StreamOptions(
        array_elements=2**20, ntimes=2, threads=1, quick=True, single_thread=False
    )
    section, build = stream.run_stream(options, cache_dir=tmp_path)
    result = StreamResult.model_validate(section)
    assert [(r.thread_mode, r.threads) for r in result.runs] == [("all", 1)]
    assert result.runs[0].trials_counted == 1
    assert build["openmp"]["OMP_NUM_THREADS"] == "1"


def test_array_too_big_fails_before_compiling(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(BenchmarkInputError, match="memory"):
        stream.run_stream(stream.StreamOptions(array_elements=10**13), cache_dir=cache)
    assert not cache.exists()


# ------------------------------------------------------------------- options, sizing


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ntimes": 1},
        {"ntimes": stream.MAX_NTIMES + 1},
        {"threads": 0},
        {"array_elements": 10},
    ],
)
def test_bad_options_are_input_errors(kwargs: dict[str, int]) -> None:
    with pytest.raises(BenchmarkInputError):
        stream.StreamOptions(**kwargs)  # type: ignore[arg-type]


def test_options_set_after_construction_are_checked_by_run(tmp_path: Path) -> None:
    options = stream.StreamOptions()
    options.ntimes = 1
    with pytest.raises(BenchmarkInputError, match="ntimes"):
        stream.run_stream(options, cache_dir=tmp_path)


def test_python_and_c_agree_on_constants() -> None:
    source = kernel_source("stream.c").decode()
    assert f'#define IB_KERNEL_VERSION "{stream.KERNEL_VERSION}"' in source
    assert f"#define IB_GAP_ELEMENTS {stream.ARRAY_GAP_ELEMENTS} " in source
    assert f"#define IB_MAX_NTIMES {stream.MAX_NTIMES}" in source


def test_quick_mode_shortens_only_the_default_ntimes() -> None:
    assert stream.StreamOptions(quick=True).effective_ntimes() == stream.QUICK_NTIMES
    assert stream.StreamOptions(quick=True, ntimes=5).effective_ntimes() == 5
    assert stream.StreamOptions().effective_ntimes() == stream.DEFAULT_NTIMES


def test_floor_beats_four_times_a_small_llc() -> None:
    n, reason = stream.plan_array_size(None, mem_available=64 * GIB, llc_total=32 * MIB)
    assert n == stream.FLOOR_ELEMENTS == 2**28
    assert "floor" in reason and "capped" not in reason


def test_floor_is_not_lowered_by_a_vm_reporting_the_hosts_l3() -> None:
    # 4x 480 MiB is below the floor: the floor stays.
    n, _ = stream.plan_array_size(None, mem_available=64 * GIB, llc_total=480 * MIB)
    assert n == 2**28


def test_four_times_a_large_llc_raises_the_floor() -> None:
    n, reason = stream.plan_array_size(None, mem_available=256 * GIB, llc_total=1024 * MIB)
    assert n == 4 * 1024 * MIB // 8
    assert "4x" in reason


def test_size_is_capped_to_a_share_of_available_memory() -> None:
    n, reason = stream.plan_array_size(None, mem_available=4 * GIB, llc_total=32 * MIB)
    assert n < 2**28
    assert 24 * n <= 0.6 * 4 * GIB
    assert "capped to 60 % of MemAvailable" in reason


def test_explicit_size_that_does_not_fit_is_one_line() -> None:
    with pytest.raises(BenchmarkInputError) as info:
        stream.plan_array_size(2**30, mem_available=8 * GIB)
    message = str(info.value)
    assert "\n" not in message
    assert "24.0 GiB" in message and "memory" in message


def test_explicit_size_that_fits_is_honoured() -> None:
    n, reason = stream.plan_array_size(123_456, mem_available=8 * GIB)
    assert n == 123_456 and reason.startswith("user override")


def test_quick_size() -> None:
    n, reason = stream.plan_array_size(None, quick=True, mem_available=8 * GIB)
    assert n == stream.QUICK_ELEMENTS and "quick mode" in reason


def test_no_memory_at_all_is_an_input_error() -> None:
    with pytest.raises(BenchmarkInputError, match="not enough memory"):
        stream.plan_array_size(None, mem_available=100_000)


def test_llc_total_counts_each_shared_instance_once(tmp_path: Path) -> None:
    def cache(cpu: int, index: int, level: int, kind: str, size: str, shared: str) -> None:
        d = tmp_path / f"cpu{cpu}" / "cache" / f"index{index}"
        d.mkdir(parents=True)
        for name, value in (
            ("level", str(level)),
            ("type", kind),
            ("size", size),
            ("shared_cpu_list", shared),
        ):
            (d / name).write_text(value + "\n")

    for cpu in range(4):
        cache(cpu, 0, 1, "Data", "48K", str(cpu))
        cache(cpu, 1, 1, "Instruction", "32K", str(cpu))
        cache(cpu, 2, 2, "Unified", "2048K", str(cpu))
        # two L3 slices, each shared by two CPUs
        cache(cpu, 3, 3, "Unified", "32M", "0-1" if cpu < 2 else "2-3")
    (tmp_path / "cpufreq").mkdir()
    assert stream._llc_total_bytes(str(tmp_path)) == 64 * MIB
    assert stream._llc_total_bytes(str(tmp_path / "missing")) is None


def test_meminfo_and_thp_readers(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 1000 kB\nMemFree: 10 kB\nMemAvailable:  2048 kB\n")
    assert stream._mem_available_bytes(str(meminfo)) == 2048 * 1024
    thp = tmp_path / "enabled"
    thp.write_text("always [madvise] never\n")
    assert stream._thp_policy(str(thp)) == "madvise"
    assert stream._thp_policy(str(tmp_path / "absent")) is None


# ------------------------------------------------------------------------ parsing


def test_parse_recorded_output() -> None:
    data = stream.parse_output(RECORDED)
    assert data["elements"] == 10_000 and data["ntimes"] == 3 and data["threads"] == 1
    run = stream.summarise_run(data, "single", 0.01)
    StreamRun.model_validate(run)
    copy = run["kernels"]["copy"]
    assert copy["trial_times_s"] == [4.068e-06, 1.0329e-05]
    assert copy["min_time_s"] == 4.068e-06 and copy["max_time_s"] == 1.0329e-05
    assert copy["best_gbps"] == pytest.approx(16 * 10_000 / 4.068e-06 / 1e9)
    assert copy["max_gbps"] == copy["best_gbps"]
    assert copy["min_gbps"] == pytest.approx(16 * 10_000 / 1.0329e-05 / 1e9)
    assert copy["avg_gbps"] == pytest.approx(16 * 10_000 / ((4.068e-06 + 1.0329e-05) / 2) / 1e9)
    assert run["kernels"]["triad"]["bytes_per_trial"] == 240_000
    assert run["timer_resolution_ns"] == 20
    assert run["validation_passed"] is True


def test_failed_validation_and_timer_warnings_are_recorded() -> None:
    doc = json.loads(RECORDED)
    doc["validation"]["passed"] = False
    doc["validation"]["relative_error"]["a"] = 0.5
    doc["warnings"] = ["copy: fastest trial is 12 timer steps (< 20); use larger arrays"]
    run = stream.summarise_run(stream.parse_output(json.dumps(doc)), "all", 0.1)
    assert run["validation_passed"] is False
    assert "FAILED" in run["validation_detail"]
    assert "timer warning" in run["validation_detail"]


def _corrupt(change: str) -> str:
    doc = json.loads(RECORDED)
    if change == "drop-kernel":
        del doc["times_s"]["add"]
    elif change == "negative-time":
        doc["times_s"]["copy"][1] = -1.0
    elif change == "short-series":
        doc["times_s"]["triad"] = doc["times_s"]["triad"][:2]
    elif change == "foreign":
        doc["program"] = "stream"
    elif change == "old-version":
        doc["kernel_version"] = "0.0.1"
    elif change == "no-validation":
        del doc["validation"]["passed"]
    elif change == "nan":  # what printf("%g") writes for a NaN time
        doc["times_s"]["scale"][1] = 12345.5
        return json.dumps(doc).replace("12345.5", "nan")
    return json.dumps(doc)


@pytest.mark.parametrize(
    "text",
    [
        "",
        RECORDED[: len(RECORDED) // 2],
        _corrupt("nan"),
        "Segmentation fault\n",
        _corrupt("drop-kernel"),
        _corrupt("negative-time"),
        _corrupt("short-series"),
        _corrupt("foreign"),
        _corrupt("old-version"),
        _corrupt("no-validation"),
    ],
    ids=[
        "empty",
        "truncated",
        "nan",
        "not-json",
        "drop-kernel",
        "negative-time",
        "short-series",
        "foreign",
        "old-version",
        "no-validation",
    ],
)
def test_corrupted_output_is_a_benchmark_error(text: str) -> None:
    with pytest.raises(BenchmarkError):
        stream.parse_output(text)
