"""Cache and memory latency: a pointer-chase sweep, a read-bandwidth sweep, and the levels.

The C kernel (kernels/latency.c) measures; this module plans the sweep, runs the kernel,
checks its output, and reads the cache hierarchy off the measured curve. It assembles the
`performance_data.latency` section of the result document (`LatencyResult` in
instbench/results/schema.py).

Choices worth knowing, and why:

* Sizes. From 4 KiB (well inside any L1) to at least 4x the last-level cache the OS
  reports for the measuring CPU, with a floor (256 MiB; 64 MiB in quick mode) because a
  VM may under-report, and a cap (2 GiB; 256 MiB quick) and 25 % of MemAvailable so the
  run never swaps. Sizes are spaced geometrically, 4 per doubling, quick mode included: at
  3, a VM's L3 share squeezed to ~2 MiB by a busy neighbour held too few points for a
  plateau, and the L3 came and went between runs. The choice
  and its reason go into `sweep_reason`.
* Statistics. Each size is measured in several samples; a point's latency is the fastest
  sample (ns per load) and its bandwidth the fastest sample (GB/s): interference from
  other tenants and interrupts only ever adds time, so the best sample is the least
  disturbed one. The raw samples are kept in the result.
* Passes and re-measurement (`measure_sweep`). The samples of a size are taken in 3 passes
  over the sweep, not back to back, and sizes that read slower than a larger working set
  (disturbed) or lie where a cache level the OS reports was not found are measured again,
  a bounded number of rounds. Why: on a busy 2-vCPU VM one burst of interference (a
  neighbour's time slice, a tenant streaming through the shared L3) spoiled every sample
  of the L3 sizes, and the quick sweep found no L3 in 8 of 24 sandbox sweeps; in
  alternating runs under the same load (load average ~13), 1 of 10 back-to-back sweeps
  and 7 of 10 with passes and re-measurement found it. `detection.notes['sweep']` says
  what was done.
* Levels come from the measured curve only (`detect_levels`), read on its lower envelope
  (`lower_envelope`: a point measured slower than a larger working set was disturbed and
  counts at the larger set's latency), and a level needs `MIN_POINTS` points that were
  measured on it, not copied down from one low reading. A point is *flat* when it and
  its neighbours agree within `TOLERANCE`; runs of flat points, grown to neighbours
  that agree with the run's median, are plateaus; plateaus whose medians differ by less
  than `MIN_JUMP` are one level (a gently rising stretch, or noise, is not a new level).
  The last plateau is memory when it reaches past twice the largest cache the OS
  reports (no cache can hold that), or, when no sizes are reported, when it reaches the
  end of the sweep. Otherwise the reported sizes only decide which label (L1, L2, L3) a
  plateau gets, never where a level is: a VM often reports the host's whole L3, and what
  one tenant gets of it is what the curve shows (on the EPYC VM this was written on,
  about 4 MiB of a reported 32 MiB). A level with no plateau is null, and
  `detection.notes` says why. A level's latency is the median of the envelope over the
  points on its plateau, its bandwidth the median of their measured bandwidths.
* Single thread, pinned to the last CPU the agent may use (CPU 0 takes more interrupts
  on many VMs); compiled without OpenMP.
* NUMA. On a machine with several NUMA nodes that have CPUs, the largest working set is
  measured again with the memory first-touched from a CPU of another node (pinned with
  sched_setaffinity; no numactl or libnuma needed) and the pages' node is checked with
  move_pages(2). On one node there is nothing remote: `remote_*` stay null, and the
  local figures are the memory level's.

Stdlib-only, Python 3.9 (shipped inside agent.pyz).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from instbench.benchmarks import compiler as cc
from instbench.benchmarks.errors import BenchmarkError, BenchmarkInputError
from instbench.benchmarks.latency_curve import (
    CACHE_LEVELS,
    KERNEL_VERSION,
    LEVELS,
    MEMORY_LLC_FACTOR,
    MIN_JUMP,
    MIN_POINTS,
    MIN_SIZE,
    TOLERANCE,
    Plateau,
    _fmt_bytes,
    detect_levels,
    disturbed,
    find_plateaus,
    lower_envelope,
    merge_points,
    parse_output,
    summarise_points,
    unexplained_gaps,
)
from instbench.benchmarks.latency_topology import (
    DEFAULT_STRIDE,
    NumaPlan,
    NumaTopology,
    _allowed_cpus,
    _read,
    cache_hints,
    line_size,
    numa_topology,
    plan_numa,
)
from instbench.benchmarks.meminfo import mem_available_bytes as _mem_available_bytes

SOURCE_NAME = "latency.c"

LLC_FACTOR = 4
"""The sweep goes to at least this many times the reported last-level cache."""
FLOOR_BYTES = 256 * 1024**2
QUICK_FLOOR_BYTES = 64 * 1024**2
CAP_BYTES = 2 * 1024**3
QUICK_CAP_BYTES = 256 * 1024**2
MEMORY_SHARE = 0.25
"""Share of MemAvailable the buffer may take."""
MAX_SIZE_LIMIT = 64 * 1024**3
"""Upper bound of an explicit max_size_bytes (a typo guard, not a machine fact)."""

POINTS_PER_DOUBLING = 4
QUICK_POINTS_PER_DOUBLING = 4
PASSES = 3
"""The sweep is measured this many times over, each pass taking SAMPLES / PASSES samples
per size: a burst of interference (another process on the core, another tenant filling the
shared L3) then hits one pass's samples of a few sizes, not every sample of them."""
SAMPLES = 12
QUICK_SAMPLES = 6
REMEASURE_ROUNDS = 12
"""At most this many extra rounds of re-measuring doubtful sizes (see `measure_sweep`)."""
POLISH_ROUNDS = 2
"""Of those, at most this many once every cache level the OS reports has been found."""
TIME_PER_POINT_MS = 100.0
"""Timed pointer chasing per size, all samples together; the read sweep gets half."""
QUICK_TIME_PER_POINT_MS = 12.0
SEED = 0x1B5EED
"""Seed of the permutation: the same machine visits lines in the same order every run."""


def _no_log(message: str) -> None:
    """Default logger: silent."""


@dataclass
class LatencyOptions:
    """What the user asked for. None means "choose for this machine"."""

    quick: bool = False
    max_size_bytes: Optional[int] = None
    points_per_doubling: Optional[int] = None
    time_per_point_ms: Optional[float] = None
    huge_pages: bool = True
    """Ask for transparent huge pages (MADV_HUGEPAGE) so TLB misses do not pollute the
    cache latencies; the result records whether they were granted."""
    numa: bool = True
    """Measure remote-node memory on multi-node machines."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise BenchmarkInputError on values no run could honour."""
        size = self.max_size_bytes
        if size is not None and (
            isinstance(size, bool) or not 16 * MIN_SIZE <= size <= MAX_SIZE_LIMIT
        ):
            raise BenchmarkInputError(
                f"max_size_bytes must be between {16 * MIN_SIZE} and {MAX_SIZE_LIMIT}, got {size}"
            )
        ppd = self.points_per_doubling
        if ppd is not None and (isinstance(ppd, bool) or not 1 <= ppd <= 8):
            raise BenchmarkInputError(f"points_per_doubling must be 1..8, got {ppd}")
        ms = self.time_per_point_ms
        if ms is not None and (
            isinstance(ms, bool) or not math.isfinite(ms) or not 1.0 <= ms <= 10000.0
        ):
            raise BenchmarkInputError(f"time_per_point_ms must be 1..10000, got {ms}")


# ------------------------------------------------------------------------ sizing


def plan_max_size(
    requested: Optional[int],
    *,
    quick: bool,
    llc: Optional[int],
    mem_available: Optional[int],
) -> Tuple[int, str]:
    """Largest working set of the sweep, and why (recorded as `sweep_reason`)."""
    if requested is not None:
        reason = f"user override: sweep to {_fmt_bytes(requested)}"
        if mem_available is not None and requested > 0.9 * mem_available:
            raise BenchmarkInputError(
                f"max_size_bytes {requested} is more than 90 % of MemAvailable "
                f"({_fmt_bytes(mem_available)})"
            )
        size = requested
    else:
        floor = QUICK_FLOOR_BYTES if quick else FLOOR_BYTES
        cap = QUICK_CAP_BYTES if quick else CAP_BYTES
        mode = "quick mode: " if quick else ""
        if llc and LLC_FACTOR * llc > floor:
            size = min(LLC_FACTOR * llc, cap)
            reason = f"{mode}{LLC_FACTOR}x the reported last-level cache ({_fmt_bytes(llc)})" + (
                f", capped at {_fmt_bytes(cap)}" if size < LLC_FACTOR * llc else ""
            )
        else:
            size = floor
            llc_note = (
                f"above {LLC_FACTOR}x the reported last-level cache ({_fmt_bytes(llc)})"
                if llc
                else "the OS reports no cache sizes"
            )
            reason = f"{mode}floor of {_fmt_bytes(floor)}, {llc_note}"
        if mem_available is not None and size > MEMORY_SHARE * mem_available:
            capped = 1 << int(math.log2(MEMORY_SHARE * mem_available))
            if capped < 16 * MIN_SIZE:
                raise BenchmarkInputError(
                    f"not enough memory for the latency sweep ({_fmt_bytes(mem_available)} "
                    "available)"
                )
            size = capped
            reason += (
                f"; capped to {_fmt_bytes(size)} ({int(MEMORY_SHARE * 100)} % of "
                f"MemAvailable {_fmt_bytes(mem_available)})"
            )
    if llc and size < MEMORY_LLC_FACTOR * llc:
        reason += (
            f"; below {MEMORY_LLC_FACTOR}x the reported LLC, so memory latency may not be reached"
        )
    return size, reason


def sweep_sizes(max_size: int, per_doubling: int, stride: int) -> List[int]:
    """Geometric sizes from MIN_SIZE to max_size, each a multiple of the stride and 128."""
    unit = max(stride, 128)
    doublings = math.log2(max_size / MIN_SIZE)
    steps = max(1, math.ceil(doublings * per_doubling - 1e-9))
    sizes: List[int] = []
    for k in range(steps + 1):
        raw = MIN_SIZE * 2 ** (k * doublings / steps)
        size = max(unit, round(raw / unit) * unit)
        if not sizes or size > sizes[-1]:
            sizes.append(size)
    return sizes


def measure_sweep(
    measure: Callable[[List[int], int], List[Dict[str, Any]]],
    sizes: Sequence[int],
    *,
    samples: int,
    hints: Mapping[str, int],
    passes: int = PASSES,
    rounds: int = REMEASURE_ROUNDS,
    tolerance: float = TOLERANCE,
) -> Tuple[List[Dict[str, Any]], str]:
    """The sweep's points from `passes` passes plus re-measurement, and what was done.

    `measure(sizes, samples)` runs the kernel once and returns summarised points.

    Why: interference only ever adds time, and on a busy or shared machine the L3 range is
    the fragile one: its lines are what a neighbour on the same core or the shared L3
    evicts, and refilling them costs a lap of the chase at memory latency, so a disturbed
    L3-sized point reads like memory. Back to back, all samples of a size fell into the
    same disturbance, and the sweep found no L3 plateau in 8 of 24 sandbox sweeps on the
    2-vCPU development VM under load. So:

    * each of `passes` passes takes samples / passes samples per size (at least one): the
      samples of a size are spread over the run, and a burst spoils one pass of a few
      sizes, not every sample of them;
    * then, up to `rounds` times, the sizes that are `disturbed` (slower than a larger
      working set) or in an `unexplained_gaps` (a level the OS reports and the curve does
      not show yet) are measured once more with one pass's samples, pooled with the
      earlier ones (the best sample counts); once no reported level is missing, at most
      POLISH_ROUNDS more (disturbed sizes only refine figures then). On a quiet machine
      nothing qualifies and no round runs; a level that is really absent stays absent,
      since more samples of an undisturbed curve do not change its shape.
    """
    per_pass = max(1, samples // max(1, passes))
    points: List[Dict[str, Any]] = []
    for _ in range(max(1, passes)):
        got = measure(list(sizes), per_pass)
        points = merge_points(points, got) if points else got
    done = f"{max(1, passes)} passes of {per_pass} samples per size"
    again: Dict[int, int] = {}
    extra_rounds = 0
    polish = 0
    for _ in range(rounds):
        suspects = set(disturbed([float(q["latency_ns"]) for q in points], tolerance))
        gaps = unexplained_gaps(points, hints)
        if not gaps:
            # Every reported level is found; disturbed points only refine figures (the
            # envelope already discounts them), so a couple of rounds, not all of them.
            polish += 1
            if polish > POLISH_ROUNDS:
                break
        suspects.update(gaps)
        if not suspects:
            break
        chosen = [int(points[i]["size_bytes"]) for i in sorted(suspects)]
        points = merge_points(points, measure(chosen, per_pass))
        for size in chosen:
            again[size] = again.get(size, 0) + 1
        extra_rounds += 1
    if again:
        done += (
            f"; {len(again)} sizes measured again in {extra_rounds} more rounds (disturbed: "
            f"slower than {tolerance:g}x a larger working set, or where a reported cache "
            "level was not found yet)"
        )
    left = disturbed([float(q["latency_ns"]) for q in points], tolerance)
    if left:
        done += f"; {len(left)} sizes still slower than a larger working set"
    return points, done


# ----------------------------------------------------------------------- running


def _timeout_s(sizes: Sequence[int], stride: int, samples: int, ms: float) -> float:
    # Generous: 4 us per line to draw, check and write a permutation (a random access
    # to DRAM takes ~0.1-0.2 us), plus the timed work and its calibration, times five.
    build = sum(s // stride for s in sizes) * 4e-6
    timed = len(sizes) * (samples + 2) * 1.5 * ms / 1000.0
    return 120.0 + 5.0 * (build + timed)


def _execute(binary: Path, args: List[str], timeout: float) -> Tuple[Dict[str, Any], float]:
    proc, duration = cc.run_binary([str(binary), *args], timeout, f"the latency kernel {binary}")
    if proc.returncode != 0:
        raise BenchmarkError(cc.exit_failure(proc, "the latency kernel"))
    return parse_output(proc.stdout), duration


def kernel_args(
    sizes: Sequence[int],
    *,
    stride: int,
    samples: int,
    time_per_point_ms: float,
    huge_pages: bool,
    run_cpu: int,
    mem_cpu: Optional[int] = None,
    check_pages: bool = False,
) -> List[str]:
    """Command-line arguments of the kernel (key=value, see kernels/latency.c)."""
    lat_ms = time_per_point_ms / samples
    args = [
        "sizes=" + ",".join(str(s) for s in sizes),
        f"stride={stride}",
        f"samples={samples}",
        f"lat_ms={lat_ms:.6g}",
        f"bw_ms={lat_ms / 2:.6g}",
        f"huge={int(huge_pages)}",
        f"seed={SEED}",
        f"run_cpu={run_cpu}",
    ]
    if mem_cpu is not None:
        args.append(f"mem_cpu={mem_cpu}")
    if check_pages:
        args.append("check_pages=1")
    return args


def _huge_pages_note(data: Mapping[str, Any]) -> str:
    huge = data["huge_pages"]
    policy = _read("/", "sys/kernel/mm/transparent_hugepage/enabled") or "unknown"
    seen = huge.get("anon_huge_kb")
    buffer_kb = int(data["buffer_bytes"]) // 1024
    what = (
        f"MADV_HUGEPAGE {huge['madvise']}"
        if huge["requested"]
        else "no madvise (base pages unless THP is 'always')"
    )
    got = (
        f"AnonHugePages {seen} kB of a {buffer_kb} kB buffer"
        if seen is not None
        else "AnonHugePages not reported"
    )
    return f"{what}; THP policy: {policy}; {got}"


def _placement_note(placement: Optional[Mapping[str, Any]], node: int) -> Tuple[str, float]:
    if not placement or not placement.get("pages_checked"):
        reason = (placement or {}).get("unavailable", "not checked")
        return f"page placement not verified ({reason})", 0.0
    checked = int(placement["pages_checked"])
    on_node = int(placement["nodes"].get(str(node), 0))
    share = on_node / checked
    return f"{on_node} of {checked} sampled pages on node {node}", share


def _numa_section(
    topo: NumaTopology,
    plan: NumaPlan,
    levels: Mapping[str, Optional[Mapping[str, Any]]],
    measured: Optional[Dict[str, Any]],
) -> Dict[str, Any]:
    node_count = len(topo.node_cpus)
    section: Dict[str, Any] = {
        "socket_count": topo.socket_count,
        "node_count": node_count,
        "cpu_node": plan.cpu_node,
        "memory_node": plan.memory_node,
        "size_bytes": None,
        "local_latency_ns": None,
        "local_bandwidth_gbps": None,
        "remote_latency_ns": None,
        "remote_bandwidth_gbps": None,
        "inter_socket_latency_ns": None,
        "note": plan.reason,
    }
    if measured is None:
        memory = levels.get("memory")
        if node_count == 1 and memory is not None:
            section["local_latency_ns"] = memory["latency_ns"]
            section["local_bandwidth_gbps"] = memory["bandwidth_gbps"]
            section["note"] = (
                "one NUMA node: nothing remote to measure; local figures are the measured "
                "memory level"
            )
        return section
    section.update(measured)
    return section


def run_latency(
    options: LatencyOptions,
    *,
    cache_dir: Path,
    log: Callable[[str], None] = _no_log,
    sys_root: str = "/",
) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Run the latency sweep on this machine: (latency section of the result, build info).

    Input is checked before anything is compiled. Build info keys: compiler, cflags,
    binary_cached, compile_s, run_s (no OpenMP: the kernel is single-threaded).
    """
    options.validate()
    allowed = _allowed_cpus()
    run_cpu = allowed[-1]
    hints = cache_hints(run_cpu, sys_root)
    stride = line_size(run_cpu, sys_root)
    max_size, reason = plan_max_size(
        options.max_size_bytes,
        quick=options.quick,
        llc=max(hints.values()) if hints else None,
        mem_available=_mem_available_bytes(),
    )
    per_doubling = options.points_per_doubling or (
        QUICK_POINTS_PER_DOUBLING if options.quick else POINTS_PER_DOUBLING
    )
    samples = QUICK_SAMPLES if options.quick else SAMPLES
    ms = options.time_per_point_ms or (
        QUICK_TIME_PER_POINT_MS if options.quick else TIME_PER_POINT_MS
    )
    sizes = sweep_sizes(max_size, per_doubling, stride)
    log(f"latency sweep: {len(sizes)} sizes up to {_fmt_bytes(max_size)} ({reason})")

    compiler = cc.find_compiler()
    flags = [f for f in cc.native_flags() if f != "-fopenmp"]
    build = cc.build_kernel(SOURCE_NAME, compiler, flags, cache_dir)
    if build.cached:
        log(f"reusing cached latency kernel {build.binary}")
    else:
        log(
            f"compiled latency kernel with {compiler.version} {' '.join(flags)} "
            f"in {build.compile_s:.2f} s"
        )

    common = {
        "stride": stride,
        "samples": samples,
        "time_per_point_ms": ms,
        "huge_pages": options.huge_pages,
    }
    first: List[Dict[str, Any]] = []
    run_s = 0.0

    def measure(chosen: List[int], pass_samples: int) -> List[Dict[str, Any]]:
        nonlocal run_s
        # The same time per sample whatever the pass size: a pass is a share of the samples.
        args = {**common, "samples": pass_samples, "time_per_point_ms": ms * pass_samples / samples}
        data, seconds = _execute(
            build.binary,
            kernel_args(chosen, run_cpu=run_cpu, **args),  # type: ignore[arg-type]
            _timeout_s(chosen, stride, pass_samples, args["time_per_point_ms"]),
        )
        run_s += seconds
        if [p["size_bytes"] for p in data["points"]] != chosen or data["stride_bytes"] != stride:
            raise BenchmarkError("latency kernel ran with other sizes than requested")
        if not first:
            first.append(data)
        return summarise_points(data)

    points, sweep_note = measure_sweep(
        measure, sizes, samples=samples, hints=hints, passes=PASSES, rounds=REMEASURE_ROUNDS
    )
    data = first[0]
    log(f"latency sweep: {sweep_note}")
    levels, notes = detect_levels(points, hints)
    notes["sweep"] = sweep_note
    for name in LEVELS:
        level = levels[name]
        if level is None:
            log(f"latency {name}: not identified ({notes.get(name, '')})")
        else:
            lo, hi = level["size_range_bytes"]
            log(
                f"latency {name}: {level['latency_ns']:.2f} ns, "
                f"{level['bandwidth_gbps']:.1f} GB/s ({_fmt_bytes(lo)}..{_fmt_bytes(hi)})"
            )

    numa: Optional[Dict[str, Any]] = None
    topo = numa_topology(sys_root)
    if options.numa:
        plan = plan_numa(topo, allowed)
        measured = None
        if plan.memory_node is not None and plan.run_cpu is not None:
            measured, extra_s = _measure_numa(build.binary, plan, max_size, common, log)
            run_s += extra_s
        numa = _numa_section(topo, plan, levels, measured)

    section = {
        "kernel_version": KERNEL_VERSION,
        "source_sha256": build.source_sha256,
        "cflags": list(flags),
        "sweep_reason": reason,
        "stride_bytes": stride,
        "samples": samples,
        "pinned_cpu": int(data["measured_on_cpu"]),
        "huge_pages": _huge_pages_note(data),
        "points": points,
        "levels": levels,
        "detection": {
            "tolerance": TOLERANCE,
            "min_jump": MIN_JUMP,
            "min_points": MIN_POINTS,
            "cache_hints_bytes": dict(hints),
            "notes": notes,
        },
        "numa": numa,
    }
    build_info = {
        "compiler": compiler.as_dict(),
        "cflags": list(flags),
        "binary_cached": build.cached,
        "openmp": {},
        "compile_s": build.compile_s,
        "run_s": run_s,
    }
    return section, build_info


def _measure_numa(
    binary: Path,
    plan: NumaPlan,
    size: int,
    common: Mapping[str, Any],
    log: Callable[[str], None],
) -> Tuple[Dict[str, Any], float]:
    """Local and remote latency/bandwidth of one working set, placement verified."""
    assert plan.run_cpu is not None and plan.mem_cpu is not None
    assert plan.cpu_node is not None and plan.memory_node is not None
    out: Dict[str, Any] = {"size_bytes": size}
    notes = [plan.reason]
    total = 0.0
    for kind, mem_cpu, node in (
        ("local", plan.run_cpu, plan.cpu_node),
        ("remote", plan.mem_cpu, plan.memory_node),
    ):
        args = kernel_args(
            [size], run_cpu=plan.run_cpu, mem_cpu=mem_cpu, check_pages=True, **common
        )
        data, seconds = _execute(
            binary, args, _timeout_s([size], common["stride"], common["samples"], 100.0)
        )
        total += seconds
        point = summarise_points(data)[0]
        placement, share = _placement_note(data.get("placement"), node)
        notes.append(f"{kind}: {placement}")
        if share < 0.9 and data.get("placement") and data["placement"].get("pages_checked"):
            notes.append(f"{kind} figures withheld: memory not on node {node}")
            log(f"latency numa {kind}: {placement}; figures withheld")
            continue
        out[f"{kind}_latency_ns"] = point["latency_ns"]
        out[f"{kind}_bandwidth_gbps"] = point["bandwidth_gbps"]
        log(
            f"latency numa {kind}: {point['latency_ns']:.1f} ns, "
            f"{point['bandwidth_gbps']:.1f} GB/s ({placement})"
        )
    if plan.inter_socket and "remote_latency_ns" in out:
        out["inter_socket_latency_ns"] = out["remote_latency_ns"]
    out["note"] = "; ".join(notes)
    return out, total


__all__ = [
    "CACHE_LEVELS",
    "DEFAULT_STRIDE",
    "KERNEL_VERSION",
    "LEVELS",
    "MIN_POINTS",
    "MIN_SIZE",
    "LatencyOptions",
    "NumaPlan",
    "NumaTopology",
    "Plateau",
    "cache_hints",
    "detect_levels",
    "disturbed",
    "find_plateaus",
    "kernel_args",
    "line_size",
    "lower_envelope",
    "measure_sweep",
    "merge_points",
    "numa_topology",
    "parse_output",
    "plan_max_size",
    "plan_numa",
    "run_latency",
    "summarise_points",
    "sweep_sizes",
    "unexplained_gaps",
]
