"""Latency benchmark: planning, parsing, level detection, NUMA planning, and a real quick
run of our kernel built with real gcc.

Tests assert behaviour (schema, structure, detection on curves with known answers), never
timings: the real run's numbers depend on what else this machine is doing.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from instbench.benchmarks import compiler as cc
from instbench.benchmarks import latency
from instbench.benchmarks.errors import BenchmarkError, BenchmarkInputError
from instbench.results.schema import LatencyResult

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")

KIB = 1024
MIB = 1024**2
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sysinfo"

# Recorded from the kernel on the 2-core EPYC VM:
#   latency sizes=4096,8192,16384,32768 stride=64 samples=3 lat_ms=0.5 bw_ms=0.25 huge=1
#           seed=1815279 run_cpu=1 check_pages=1
RECORDED = (
    '{"program":"instbench-latency","kernel_version":"1.0.0","stride_bytes":64,"samples":3,'
    '"lat_ms":0.5,"bw_ms":0.25,"seed":1815279,"run_cpu":1,"mem_cpu":1,"measured_on_cpu":1,'
    '"buffer_bytes":2097152,"timer":{"clock":"CLOCK_MONOTONIC","granularity_ns":20},'
    '"huge_pages":{"requested":true,"madvise":"ok","anon_huge_kb":2048},"placement":'
    '{"pages_checked":512,"nodes":{"0":512},"errors":0},"points":[{"size_bytes":4096,'
    '"lines":64,"cycle_checked":true,"chase":{"loads":365712,"times_ns":[515898,518172,'
    '510637]},"read":{"bytes":38592512,"times_ns":[278332,8296096,255038]}},{"size_bytes":'
    '8192,"lines":128,"cycle_checked":true,"chase":{"loads":368112,"times_ns":[555912,'
    '498275,526608]},"read":{"bytes":11501568,"times_ns":[68488,75331,110768]}},'
    '{"size_bytes":16384,"lines":256,"cycle_checked":true,"chase":{"loads":347296,'
    '"times_ns":[3801708,494498,491041]},"read":{"bytes":11616256,"times_ns":[73968,67406,'
    '69540]}},{"size_bytes":32768,"lines":512,"cycle_checked":true,"chase":{"loads":178592,'
    '"times_ns":[590998,500248,502592]},"read":{"bytes":11337728,"times_ns":[76153,70242,'
    '112050]}}],"checksum":3557070864948300123}\n'
)


# ------------------------------------------------------------------ a real run


@pytest.fixture(scope="module")
def quick_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    cache = tmp_path_factory.mktemp("latency-cache")
    lines: list[str] = []
    section, build = latency.run_latency(
        latency.LatencyOptions(quick=True), cache_dir=cache, log=lines.append
    )
    return section, build, lines


@needs_gcc
def test_quick_run_is_a_valid_latency_result(
    quick_run: tuple[dict[str, Any], dict[str, Any], list[str]],
) -> None:
    section, build, lines = quick_run
    result = LatencyResult.model_validate(section)
    assert result.kernel_version == latency.KERNEL_VERSION
    assert result.source_sha256 == hashlib.sha256(cc.kernel_source("latency.c")).hexdigest()
    assert result.sweep_reason.startswith("quick mode")
    assert "-fopenmp" not in result.cflags and result.cflags == build["cflags"]
    sizes = [p.size_bytes for p in result.points]
    assert sizes[0] == latency.MIN_SIZE and sizes == sorted(sizes)
    assert sizes[-1] >= latency.QUICK_FLOOR_BYTES
    # Every size has its planned samples; sizes measured again have more (pooled).
    assert all(len(p.latency_samples_ns) >= result.samples for p in result.points)
    assert result.detection.notes["sweep"].startswith("3 passes of 2 samples per size")
    assert all(p.latency_ns == min(p.latency_samples_ns) for p in result.points)
    assert all(p.bandwidth_gbps == max(p.bandwidth_samples_gbps) for p in result.points)
    assert "MADV_HUGEPAGE" in result.huge_pages and "AnonHugePages" in result.huge_pages
    assert any("latency sweep" in line for line in lines)
    assert build["openmp"] == {} and build["compiler"]["name"] == "gcc"


@needs_gcc
def test_every_level_is_measured_or_explained(
    quick_run: tuple[dict[str, Any], dict[str, Any], list[str]],
) -> None:
    result = LatencyResult.model_validate(quick_run[0])
    found = {}
    for name in latency.LEVELS:
        level = getattr(result.levels, name)
        assert getattr(result, name) is level  # publication reads latency.l1 ... .memory
        if level is None:
            assert result.detection.notes.get(name), f"{name} is null without a reason"
        else:
            lo, hi = level.size_range_bytes
            in_range = [p for p in result.points if lo <= p.size_bytes <= hi]
            assert len(in_range) == level.points >= latency.MIN_POINTS
            found[name] = level.latency_ns
    # Whatever else runs on this machine, levels found come out in hierarchy order.
    ordered = [found[n] for n in latency.LEVELS if n in found]
    assert ordered == sorted(ordered)


@needs_gcc
def test_single_node_numa_section(
    quick_run: tuple[dict[str, Any], dict[str, Any], list[str]],
) -> None:
    result = LatencyResult.model_validate(quick_run[0])
    numa = result.numa
    assert numa is not None and numa.socket_count >= 1
    topo = latency.numa_topology()
    if len(topo.node_cpus) == 1:
        assert numa.node_count == 1
        assert numa.remote_latency_ns is None and numa.remote_bandwidth_gbps is None
        assert numa.inter_socket_latency_ns is None
        if result.levels.memory is not None:
            assert numa.local_latency_ns == result.levels.memory.latency_ns


# ------------------------------------------------------------- the kernel itself


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    cache = tmp_path_factory.mktemp("latency-kernel")
    flags = [f for f in cc.native_flags() if f != "-fopenmp"]
    return cc.build_kernel("latency.c", cc.find_compiler(), flags, cache).binary


def _cpu() -> int:
    return sorted(latency._allowed_cpus())[-1]


@needs_gcc
def test_kernel_places_pages_and_reports_them(kernel: Path) -> None:
    args = latency.kernel_args(
        [4096, 8192],
        stride=64,
        samples=2,
        time_per_point_ms=1.0,
        huge_pages=False,
        run_cpu=_cpu(),
        check_pages=True,
    )
    proc = subprocess.run([str(kernel), *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    data = latency.parse_output(proc.stdout)
    assert data["huge_pages"] == {"requested": False, "madvise": "not-requested"} | {
        "anon_huge_kb": data["huge_pages"]["anon_huge_kb"]
    }
    assert data["measured_on_cpu"] == _cpu()
    placement = data["placement"]
    assert placement["pages_checked"] > 0
    assert sum(placement["nodes"].values()) + placement["errors"] == placement["pages_checked"]
    assert all(p["cycle_checked"] for p in data["points"])


@needs_gcc
def test_remote_memory_measurement_path(kernel: Path) -> None:
    # This machine may have one node: "remote" is then node 0 too, which still runs the
    # multi-node code path (first touch from another CPU, placement check, figures).
    cpus = latency._allowed_cpus()
    common = {"stride": 64, "samples": 2, "time_per_point_ms": 2.0, "huge_pages": True}
    plan = latency.NumaPlan(0, 0, cpus[-1], cpus[0], True, "test plan")
    measured, seconds = latency._measure_numa(kernel, plan, 4 * MIB, common, lambda _: None)
    assert seconds > 0 and measured["size_bytes"] == 4 * MIB
    if "not verified" not in measured["note"]:
        assert measured["remote_latency_ns"] > 0 and measured["local_bandwidth_gbps"] > 0
        assert measured["inter_socket_latency_ns"] == measured["remote_latency_ns"]
        assert "sampled pages on node 0" in measured["note"]
    # Memory that is not on the node it should be on gives no remote figures.
    wrong = latency.NumaPlan(0, 63, cpus[-1], cpus[0], True, "test plan")
    measured, _ = latency._measure_numa(kernel, wrong, 4 * MIB, common, lambda _: None)
    if "not verified" not in measured["note"]:
        assert "remote_latency_ns" not in measured and "inter_socket_latency_ns" not in measured
        assert "remote figures withheld: memory not on node 63" in measured["note"]
    section = latency._numa_section(latency.numa_topology(), wrong, {}, measured)
    assert section["remote_latency_ns"] is None and section["local_latency_ns"] is not None


@needs_gcc
@pytest.mark.parametrize(
    "args",
    [
        ["sizes=4096"],
        ["sizes=4096,4096", "stride=64", "samples=1", "lat_ms=1", "bw_ms=1", "huge=0"],
        ["sizes=4000", "stride=64", "samples=1", "lat_ms=1", "bw_ms=1", "huge=0", "seed=1"],
        ["sizes=4096", "stride=48", "samples=1", "lat_ms=1", "bw_ms=1", "huge=0", "seed=1"],
        ["sizes=4096", "stride=64", "samples=0", "lat_ms=1", "bw_ms=1", "huge=0", "seed=1"],
        ["sizes=4096", "stride=64", "samples=1", "lat_ms=-1", "bw_ms=1", "huge=0", "seed=1"],
        ["bogus=1"],
    ],
)
def test_kernel_rejects_bad_arguments_with_status_2(kernel: Path, args: list[str]) -> None:
    full = args if len(args) < 7 else [*args, f"run_cpu={_cpu()}"]
    proc = subprocess.run([str(kernel), *full], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "usage" in proc.stderr and not proc.stdout


# ----------------------------------------------------------------------- parsing


def test_recorded_output_parses_and_summarises() -> None:
    data = latency.parse_output(RECORDED)
    points = latency.summarise_points(data)
    assert [p["size_bytes"] for p in points] == [4096, 8192, 16384, 32768]
    first = points[0]
    assert first["latency_ns"] == pytest.approx(510637 / 365712)
    assert first["bandwidth_gbps"] == pytest.approx(38592512 / 255038)
    assert first["latency_samples_ns"][1] == pytest.approx(518172 / 365712)
    # A preempted sample (16 KiB, first) does not decide the point.
    assert points[2]["latency_ns"] == pytest.approx(491041 / 347296)


def _corrupt(mutate: Any) -> str:
    data = json.loads(RECORDED)
    mutate(data)
    return json.dumps(data)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "printed nothing"),
        (RECORDED[: len(RECORDED) // 2], "not JSON"),
        (RECORDED.replace("instbench-latency", "instbench-stream"), "not an instbench-latency"),
        (RECORDED.replace('"1.0.0"', '"0.9.0"'), "expects 1.0.0"),
        (_corrupt(lambda d: d["points"][1]["chase"]["times_ns"].pop()), "expected 3"),
        (_corrupt(lambda d: d["points"][0]["read"]["times_ns"].__setitem__(0, 0)), "positive"),
        (_corrupt(lambda d: d["points"][0]["chase"]["times_ns"].__setitem__(1, 2.5)), "positive"),
        (_corrupt(lambda d: d["points"].reverse()), "not ascending"),
        (_corrupt(lambda d: d["points"][0].__setitem__("lines", 65)), "inconsistent"),
        (_corrupt(lambda d: d["points"][0].pop("chase")), "chase is missing"),
        (_corrupt(lambda d: d.__setitem__("samples", True)), "should be int"),
        (_corrupt(lambda d: d.__setitem__("points", [])), "no points"),
        (_corrupt(lambda d: d["placement"]["nodes"].__setitem__("0", "x")), "integers"),
    ],
)
def test_corrupted_output_is_refused(text: str, message: str) -> None:
    with pytest.raises(BenchmarkError, match=message):
        latency.parse_output(text)


# --------------------------------------------------------------------- detection


def _curve(
    steps: list[tuple[int, float]],
    *,
    top: int = 256 * MIB,
    per_doubling: int = 4,
    noise: float = 0.0,
    seed: int = 7,
) -> list[dict[str, Any]]:
    """Points of a step curve: latency of the first step whose size bound is >= size."""
    rng = random.Random(seed)
    out = []
    for size in latency.sweep_sizes(top, per_doubling, 64):
        value = next(v for bound, v in steps if size <= bound)
        value *= 1 + rng.uniform(-noise, noise)
        out.append({"size_bytes": size, "latency_ns": value, "bandwidth_gbps": 100.0 / value})
    return out


EPYC_HINTS = {"l1": 32 * KIB, "l2": 512 * KIB, "l3": 32 * MIB}
STEPS = [(32 * KIB, 1.2), (512 * KIB, 4.0), (32 * MIB, 15.0), (2**62, 90.0)]


def _ranges(levels: dict[str, Any]) -> dict[str, Any]:
    return {k: (v["size_range_bytes"] if v else None) for k, v in levels.items()}


def test_steps_at_the_cache_sizes_give_those_levels() -> None:
    points = _curve(STEPS)
    levels, notes = latency.detect_levels(points, EPYC_HINTS)
    sizes = [p["size_bytes"] for p in points]
    after = {b: sizes[sizes.index(b) + 1] for b in (32 * KIB, 512 * KIB, 32 * MIB)}
    assert _ranges(levels) == {
        "l1": [4096, 32 * KIB],
        "l2": [after[32 * KIB], 512 * KIB],
        "l3": [after[512 * KIB], 32 * MIB],
        "memory": [after[32 * MIB], 256 * MIB],
    }
    assert [levels[k]["latency_ns"] for k in latency.LEVELS] == [1.2, 4.0, 15.0, 90.0]
    assert levels["l3"]["bandwidth_gbps"] == pytest.approx(100.0 / 15.0)
    assert levels["l2"]["reported_size_bytes"] == 512 * KIB
    assert levels["memory"]["reported_size_bytes"] is None
    assert notes == {}


def test_without_hints_the_order_of_plateaus_decides() -> None:
    levels, notes = latency.detect_levels(_curve(STEPS), {})
    assert [round(levels[k]["latency_ns"], 1) for k in latency.LEVELS] == [1.2, 4.0, 15.0, 90.0]
    assert all(levels[k]["reported_size_bytes"] is None for k in latency.LEVELS)
    assert notes == {}


def test_noise_spikes_and_soft_transitions_do_not_create_levels() -> None:
    # Transitions spread over a doubling (partial hits), 4 % noise, one preempted point.
    steps = [
        (32 * KIB, 1.2),
        (48 * KIB, 2.5),
        (512 * KIB, 4.0),
        (900 * KIB, 8.0),
        (24 * MIB, 15.0),
        (48 * MIB, 40.0),
        (2**62, 90.0),
    ]
    points = _curve(steps, noise=0.04)
    spike = next(i for i, p in enumerate(points) if p["size_bytes"] >= 128 * KIB)
    points[spike]["latency_ns"] *= 3
    levels, _ = latency.detect_levels(points, EPYC_HINTS)
    for name, expected in zip(latency.LEVELS, (1.2, 4.0, 15.0, 90.0), strict=True):
        assert levels[name] is not None, name
        assert levels[name]["latency_ns"] == pytest.approx(expected, rel=0.05), name
    assert levels["l2"]["size_range_bytes"][0] > 32 * KIB
    assert levels["l3"]["size_range_bytes"][1] <= 32 * MIB


def test_a_vm_share_of_a_large_l3_is_what_the_curve_shows() -> None:
    # The OS reports 32 MiB of L3, but one tenant gets ~4 MiB: memory starts at 6 MiB.
    steps = [(32 * KIB, 1.4), (256 * KIB, 4.1), (3 * MIB, 17.0), (2**62, 180.0)]
    levels, notes = latency.detect_levels(_curve(steps, top=128 * MIB, per_doubling=3), EPYC_HINTS)
    assert levels["l3"] is not None and levels["l3"]["size_range_bytes"][1] <= 3 * MIB
    assert levels["l3"]["reported_size_bytes"] == 32 * MIB
    assert levels["memory"] is not None and levels["memory"]["latency_ns"] == 180.0
    assert levels["memory"]["size_range_bytes"][0] < 32 * MIB
    assert notes == {}


def test_no_l3_in_the_data_is_null_with_a_reason() -> None:
    steps = [(64 * KIB, 1.3), (1 * MIB, 5.0), (2**62, 110.0)]
    levels, notes = latency.detect_levels(_curve(steps), {"l1": 64 * KIB, "l2": 1 * MIB})
    assert levels["l3"] is None and "reports no L3" in notes["l3"]
    assert levels["memory"] is not None and levels["memory"]["latency_ns"] == 110.0
    # The OS claims an L3 the curve does not show: still null, and the note says where.
    levels, notes = latency.detect_levels(_curve(steps), {**EPYC_HINTS, "l1": 64 * KIB})
    assert levels["l3"] is None and "reported L3 size 32 MiB" in notes["l3"]


def test_memory_needs_the_sweep_to_leave_the_llc() -> None:
    short = _curve(STEPS, top=48 * MIB)
    levels, notes = latency.detect_levels(short, EPYC_HINTS)
    assert levels["memory"] is None and "less than 2x" in notes["memory"]

    rising = _curve([*STEPS[:3], (2**62, 90.0)], top=256 * MIB)
    for i, p in enumerate(rising):
        if p["size_bytes"] > 32 * MIB:
            p["latency_ns"] = 40.0 * 1.4 ** (i % 100)
    levels, notes = latency.detect_levels(rising, EPYC_HINTS)
    assert levels["memory"] is None and "still changing" in notes["memory"]
    assert levels["l3"] is not None
    levels, notes = latency.detect_levels(rising, {})
    assert levels["memory"] is None and "still rising" in notes["memory"]


def test_a_noisy_tail_does_not_hide_memory() -> None:
    # Another tenant hammering memory during the last two sizes: beyond 2x the reported
    # LLC nothing but memory can serve the loads, so the plateau before the tail counts.
    points = _curve(STEPS, top=128 * MIB, per_doubling=3)
    points[-1]["latency_ns"] *= 1.9
    points[-2]["latency_ns"] *= 1.6
    levels, notes = latency.detect_levels(points, EPYC_HINTS)
    assert levels["memory"] is not None and levels["memory"]["latency_ns"] == 90.0
    assert levels["memory"]["size_range_bytes"][1] < 128 * MIB
    assert levels["l3"] is not None and levels["l3"]["latency_ns"] == 15.0
    assert "memory" not in notes


def test_a_memory_plateau_is_never_labelled_a_cache() -> None:
    # L3 lost in noise (every reading disturbed, so above memory: interference only adds
    # time), memory ending before the (noisy) end: memory, and no fake L3.
    steps = [(32 * KIB, 1.2), (512 * KIB, 4.0), (2**62, 180.0)]
    points = _curve(steps, top=128 * MIB, per_doubling=3)
    for p in points:
        if 512 * KIB < p["size_bytes"] <= 2 * MIB:
            p["latency_ns"] = 180.0 * (1 + (p["size_bytes"] % 3))
    points[-1]["latency_ns"] *= 2
    levels, notes = latency.detect_levels(points, EPYC_HINTS)
    assert levels["memory"] is not None and levels["memory"]["latency_ns"] == 180.0
    assert levels["l3"] is None and "reported L3" in notes["l3"]


def test_a_flat_curve_has_no_levels_but_reasons() -> None:
    flat = [{"size_bytes": 4096 * 2**i, "latency_ns": 5.0, "bandwidth_gbps": 1.0} for i in range(8)]
    levels, notes = latency.detect_levels(flat, {})
    assert levels["memory"] is None and "only one plateau" in notes["memory"]
    levels, notes = latency.detect_levels([], {})
    assert all(v is None for v in levels.values()) and set(notes) == set(latency.LEVELS)


def test_find_plateaus_indices() -> None:
    y = [1.0, 1.0, 1.1, 1.0, 3.0, 4.0, 4.1, 4.0, 4.2, 9.0]
    assert latency.find_plateaus(y) == [latency.Plateau(0, 3), latency.Plateau(5, 8)]
    assert latency.find_plateaus([]) == []


# ------------------------------------------------------------------------ sizing


def test_sweep_sizes_are_geometric_and_aligned() -> None:
    sizes = latency.sweep_sizes(256 * MIB, 4, 64)
    assert sizes[0] == 4096 and sizes[-1] == 256 * MIB and len(sizes) == 16 * 4 + 1
    assert all(s % 128 == 0 for s in sizes) and sizes == sorted(set(sizes))
    ratios = [b / a for a, b in itertools.pairwise(sizes)]
    assert all(math.isclose(r, 2**0.25, rel_tol=0.03) for r in ratios)
    assert latency.sweep_sizes(1 * MIB, 2, 256)[-1] == 1 * MIB
    assert all(s % 256 == 0 for s in latency.sweep_sizes(1 * MIB, 2, 256))


def test_plan_max_size() -> None:
    size, reason = latency.plan_max_size(None, quick=True, llc=32 * MIB, mem_available=None)
    assert size == 128 * MIB and reason.startswith("quick mode: 4x")
    size, reason = latency.plan_max_size(None, quick=False, llc=32 * MIB, mem_available=None)
    assert size == latency.FLOOR_BYTES and "floor" in reason
    size, reason = latency.plan_max_size(None, quick=True, llc=1024 * MIB, mem_available=None)
    assert size == latency.QUICK_CAP_BYTES and "capped" in reason and "below 2x" in reason
    size, reason = latency.plan_max_size(None, quick=False, llc=None, mem_available=512 * MIB)
    assert size == 128 * MIB and "MemAvailable" in reason and "no cache sizes" in reason
    size, reason = latency.plan_max_size(64 * MIB, quick=False, llc=None, mem_available=None)
    assert (size, reason) == (64 * MIB, "user override: sweep to 64 MiB")
    with pytest.raises(BenchmarkInputError, match="MemAvailable"):
        latency.plan_max_size(8 * 1024 * MIB, quick=False, llc=None, mem_available=1024 * MIB)
    with pytest.raises(BenchmarkInputError, match="not enough memory"):
        latency.plan_max_size(None, quick=True, llc=None, mem_available=100 * KIB)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_size_bytes": 1000}, "max_size_bytes"),
        ({"max_size_bytes": True}, "max_size_bytes"),
        ({"points_per_doubling": 0}, "points_per_doubling"),
        ({"time_per_point_ms": float("nan")}, "time_per_point_ms"),
        ({"time_per_point_ms": 0.5}, "time_per_point_ms"),
    ],
)
def test_options_are_validated(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(BenchmarkInputError, match=message):
        latency.LatencyOptions(**kwargs)


# ------------------------------------------------------------ sysfs: caches, NUMA


def test_cache_hints_from_recorded_machines() -> None:
    epyc = str(FIXTURES / "kvm-amd-epyc")
    assert latency.cache_hints(0, epyc) == EPYC_HINTS
    assert latency.line_size(0, epyc) == 64
    graviton = str(FIXTURES / "c7g.2xlarge")
    assert latency.cache_hints(0, graviton) == {"l1": 64 * KIB, "l2": 1 * MIB, "l3": 32 * MIB}
    assert latency.cache_hints(0, "/nonexistent") == {}
    assert latency.line_size(0, "/nonexistent") == latency.DEFAULT_STRIDE


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def _numa_tree(root: Path, nodes: dict[int, tuple[str, int, bool]], distance: list[str]) -> str:
    """nodes: node -> (cpulist, package, has_memory); distance: one row per node."""
    node_dir = "sys/devices/system/node"
    _write(root, f"{node_dir}/online", f"0-{len(nodes) - 1}")
    _write(root, f"{node_dir}/has_memory", ",".join(str(n) for n, v in nodes.items() if v[2]))
    cpus: list[int] = []
    for node, (cpulist, package, _) in nodes.items():
        _write(root, f"{node_dir}/node{node}/cpulist", cpulist)
        _write(root, f"{node_dir}/node{node}/distance", distance[node])
        lo, hi = (int(x) for x in cpulist.split("-"))
        for cpu in range(lo, hi + 1):
            cpus.append(cpu)
            _write(
                root, f"sys/devices/system/cpu/cpu{cpu}/topology/physical_package_id", str(package)
            )
    _write(root, "sys/devices/system/cpu/online", f"0-{max(cpus)}")
    return str(root)


def test_numa_plan_on_two_sockets(tmp_path: Path) -> None:
    root = _numa_tree(tmp_path, {0: ("0-3", 0, True), 1: ("4-7", 1, True)}, ["10 21", "21 10"])
    topo = latency.numa_topology(root)
    assert topo.socket_count == 2 and topo.node_cpus == {0: [0, 1, 2, 3], 1: [4, 5, 6, 7]}
    plan = latency.plan_numa(topo, list(range(8)))
    assert (plan.cpu_node, plan.memory_node, plan.run_cpu, plan.mem_cpu) == (0, 1, 3, 7)
    assert plan.inter_socket and "another socket" in plan.reason
    # Only node 0's CPUs allowed: nothing can be first-touched on node 1.
    plan = latency.plan_numa(topo, [0, 1, 2, 3])
    assert plan.memory_node is None and "fewer than two" in plan.reason


def test_numa_plan_prefers_another_socket_and_skips_memoryless_nodes(tmp_path: Path) -> None:
    nodes = {
        0: ("0-1", 0, True),
        1: ("2-3", 0, True),
        2: ("4-5", 1, True),
        3: ("6-7", 1, False),
    }
    rows = ["10 12 32 32", "12 10 32 32", "32 32 10 12", "32 32 12 10"]
    topo = latency.numa_topology(_numa_tree(tmp_path, nodes, rows))
    plan = latency.plan_numa(topo, list(range(8)))
    assert (plan.cpu_node, plan.memory_node) == (0, 2) and plan.inter_socket


def test_numa_plan_on_one_node() -> None:
    topo = latency.numa_topology(str(FIXTURES / "kvm-amd-epyc"))
    assert len(topo.node_cpus) == 1
    plan = latency.plan_numa(topo, [0, 1])
    assert plan.memory_node is None and plan.reason == "one NUMA node: nothing remote"
    memory = {"latency_ns": 100.0, "bandwidth_gbps": 12.0}
    section = latency._numa_section(topo, plan, {"memory": memory}, None)
    assert section["node_count"] == 1 and section["local_latency_ns"] == 100.0
    assert section["remote_latency_ns"] is None and section["inter_socket_latency_ns"] is None


# ------------------------------------------------------- passes and re-measurement


class _Machine:
    """A step-curve machine whose L3 is taken away during some kernel runs (calls).

    Models the failure seen on the busy 2-vCPU VM: while a neighbour holds the core or
    streams through the shared L3, every L3-sized working set reads as memory.
    """

    def __init__(self, steps: list[tuple[int, float]], disturbed_calls: set[int]) -> None:
        self.steps = steps
        self.disturbed_calls = disturbed_calls
        self.calls: list[list[int]] = []

    def measure(self, sizes: list[int], samples: int) -> list[dict[str, Any]]:
        call = len(self.calls)
        self.calls.append(list(sizes))
        out = []
        for size in sizes:
            value = next(v for bound, v in self.steps if size <= bound)
            if call in self.disturbed_calls and 512 * KIB < size <= 32 * MIB:
                value = self.steps[-1][1]
            lat = [value * (1 + 0.01 * k) for k in range(samples)]
            bw = [100.0 / v for v in lat]
            out.append(
                {
                    "size_bytes": size,
                    "latency_ns": min(lat),
                    "bandwidth_gbps": max(bw),
                    "latency_samples_ns": lat,
                    "bandwidth_samples_gbps": bw,
                }
            )
        return out


SIZES = latency.sweep_sizes(128 * MIB, 3, 64)


def test_back_to_back_samples_lose_l3_to_one_burst_passes_keep_it() -> None:
    # One pass of all samples inside the burst: no L3 (the old way).
    old = _Machine(STEPS, {0})
    points, _ = latency.measure_sweep(
        old.measure, SIZES, samples=6, hints=EPYC_HINTS, passes=1, rounds=0
    )
    assert latency.detect_levels(points, EPYC_HINTS)[0]["l3"] is None
    # Three passes: the burst spoils the first pass only; the best sample is clean.
    new = _Machine(STEPS, {0})
    points, note = latency.measure_sweep(new.measure, SIZES, samples=6, hints=EPYC_HINTS)
    levels, _ = latency.detect_levels(points, EPYC_HINTS)
    assert levels["l3"] is not None and levels["l3"]["latency_ns"] == pytest.approx(15.0)
    assert all(len(p["latency_samples_ns"]) == 6 for p in points)
    assert len(new.calls) == 3 and note == "3 passes of 2 samples per size"


def test_a_burst_over_every_pass_is_measured_again_where_the_l3_should_be() -> None:
    machine = _Machine(STEPS, {0, 1, 2})
    points, note = latency.measure_sweep(machine.measure, SIZES, samples=6, hints=EPYC_HINTS)
    levels, _ = latency.detect_levels(points, EPYC_HINTS)
    assert levels["l3"] is not None and levels["l3"]["latency_ns"] == pytest.approx(15.0)
    again = machine.calls[3]
    # Only the gap between the L2 plateau and memory is measured again, not the sweep.
    assert min(again) > 512 * KIB and max(again) < 128 * MIB and len(machine.calls) == 4
    assert "measured again in 1 more rounds" in note
    merged = {p["size_bytes"]: p for p in points}
    assert len(merged[again[0]]["latency_samples_ns"]) == 8  # 6 + one pass's 2, pooled


def test_a_machine_without_l3_gets_no_l3_from_re_measuring() -> None:
    steps = [(32 * KIB, 1.2), (512 * KIB, 4.0), (2**62, 90.0)]  # reports an L3, has none
    machine = _Machine(steps, set())
    points, note = latency.measure_sweep(
        machine.measure, SIZES, samples=6, hints=EPYC_HINTS, rounds=4
    )
    levels, notes = latency.detect_levels(points, EPYC_HINTS)
    assert levels["l3"] is None and "no plateau" in notes["l3"]
    assert len(machine.calls) == 3 + 4  # bounded: the rounds ran out, nothing invented
    assert "in 4 more rounds" in note


def test_once_every_reported_level_is_found_disturbed_sizes_get_few_rounds() -> None:
    machine = _Machine(STEPS, set())
    spiky = machine.measure

    def measure(sizes: list[int], samples: int) -> list[dict[str, Any]]:
        out = spiky(sizes, samples)
        for p in out:  # one memory size always disturbed: twice memory latency
            if p["size_bytes"] == SIZES[-3]:
                p["latency_ns"] = 180.0
                p["latency_samples_ns"] = [180.0] * samples
        return out

    points, note = latency.measure_sweep(measure, SIZES, samples=6, hints=EPYC_HINTS)
    assert len(machine.calls) == 3 + latency.POLISH_ROUNDS
    assert machine.calls[3] == [SIZES[-3]]
    assert "1 sizes still slower than a larger working set" in note
    assert latency.detect_levels(points, EPYC_HINTS)[0]["memory"]["latency_ns"] == 90.0


def test_a_quiet_machine_is_measured_once_per_pass() -> None:
    machine = _Machine(STEPS, set())
    _, note = latency.measure_sweep(machine.measure, SIZES, samples=6, hints=EPYC_HINTS)
    assert len(machine.calls) == 3 and "again" not in note


def test_disturbed_points_are_those_slower_than_a_larger_working_set() -> None:
    assert latency.disturbed([1.0, 1.1, 4.0, 3.9, 150.0, 12.0, 140.0]) == [4]
    assert latency.disturbed([1.0, 1.0, 1.2, 1.0]) == []  # within the tolerance: noise
    assert latency.disturbed([5.0, 1.0, 1.0], tolerance=1.25) == [0]


def test_merge_pools_samples_and_refuses_foreign_sizes() -> None:
    base = [
        {
            "size_bytes": 4096,
            "latency_ns": 2.0,
            "bandwidth_gbps": 5.0,
            "latency_samples_ns": [2.0, 3.0],
            "bandwidth_samples_gbps": [5.0, 4.0],
        }
    ]
    extra = [
        {
            "size_bytes": 4096,
            "latency_ns": 1.5,
            "bandwidth_gbps": 6.0,
            "latency_samples_ns": [1.5],
            "bandwidth_samples_gbps": [6.0],
        }
    ]
    [merged] = latency.merge_points(base, extra)
    assert merged["latency_samples_ns"] == [2.0, 3.0, 1.5] and merged["latency_ns"] == 1.5
    assert merged["bandwidth_gbps"] == 6.0
    with pytest.raises(BenchmarkError, match="not asked for"):
        latency.merge_points(base, [{**extra[0], "size_bytes": 8192}])


def test_l3_readings_lost_to_a_neighbour_are_read_on_the_lower_envelope() -> None:
    """Recorded on the 2-vCPU VM under load (m7i.large sandbox sweep, best of 30 samples):
    L3-sized points read 12.7-25 ns with single points at memory latency in between. The
    raw curve has no 3 points within 1.25x; a larger working set measured at 19 ns proves
    the 115 ns reading at 5 MiB was disturbed."""
    sizes_kib = [4, 8, 16, 32, 51, 64, 128, 256, 512, 813, 1024, 1290, 1626, 2048, 2580]
    sizes_kib += [3251, 4096, 5161, 6502, 8192, 10321, 16384, 32768, 65536, 131072]
    lat = [1.0, 1.0, 1.0, 1.0, 2.8, 3.6, 3.6, 3.6, 4.0, 4.6, 5.0, 9.2, 17.0, 14.7, 12.7]
    lat += [18.9, 25.1, 114.8, 19.1, 132.7, 140.2, 83.5, 137.6, 150.0, 152.0]
    points = [
        {"size_bytes": k * KIB, "latency_ns": v, "bandwidth_gbps": 100.0 / v}
        for k, v in zip(sizes_kib, lat, strict=True)
    ]
    assert latency.lower_envelope([3.0, 9.0, 5.0, 7.0]) == [3.0, 5.0, 5.0, 7.0]
    levels, notes = latency.detect_levels(points, EPYC_HINTS)
    assert levels["l3"] is not None, notes
    assert 1024 * KIB < levels["l3"]["size_range_bytes"][0] <= 2048 * KIB
    assert 12.0 < levels["l3"]["latency_ns"] < 20.0
    assert levels["memory"] is not None and levels["memory"]["latency_ns"] > 100.0


def test_one_low_reading_copied_down_the_envelope_is_no_level() -> None:
    """Recorded with `instbench run --local --benchmarks latency --quick` on the busy VM:
    2896 KiB once read 51.5 ns while its neighbours read 76-89 ns; on the envelope that
    made three equal points, a fake "L3" at 51.5 ns. Only points measured on a plateau
    count towards it."""
    sizes_kib = [4, 8, 16, 32, 46, 55, 128, 256, 512, 724, 861, 1024, 1218, 1448, 1722]
    sizes_kib += [2048, 2436, 2896, 3444, 4096, 4871, 5793, 8192, 16384, 32768, 65536]
    lat = [1.0, 1.0, 1.0, 1.0, 1.0, 2.9, 3.3, 3.3, 3.8, 4.2, 5.0, 8.3, 9.2, 10.7, 37.8]
    lat += [78.9, 75.5, 51.5, 88.5, 105.3, 139.9, 133.2, 146.5, 153.1, 179.8, 173.4]
    points = [
        {"size_bytes": k * KIB, "latency_ns": v, "bandwidth_gbps": 100.0 / v}
        for k, v in zip(sizes_kib, lat, strict=True)
    ]
    levels, notes = latency.detect_levels(points, EPYC_HINTS)
    assert levels["l3"] is None and "no plateau" in notes["l3"]
    assert levels["memory"] is not None and levels["memory"]["latency_ns"] > 130.0
    # ... and the re-measurement still sees the L3 as missing, so it keeps looking there.
    gaps = latency.unexplained_gaps(points, EPYC_HINTS)
    assert sizes_kib.index(2896) in gaps and sizes_kib.index(1218) in gaps
