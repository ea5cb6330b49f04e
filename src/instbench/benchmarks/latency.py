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

import json
import math
import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from instbench.agent.sysinfo import parse_cpu_list, parse_size
from instbench.benchmarks import compiler as cc
from instbench.benchmarks.errors import BenchmarkError, BenchmarkInputError
from instbench.benchmarks.meminfo import mem_available_bytes as _mem_available_bytes

KERNEL_VERSION = "1.0.0"
"""Version of kernels/latency.c; must equal its IB_KERNEL_VERSION (checked when parsing)."""

SOURCE_NAME = "latency.c"
LEVELS = ("l1", "l2", "l3", "memory")
CACHE_LEVELS = ("l1", "l2", "l3")

MIN_SIZE = 4096
"""Smallest working set: one page, inside every L1 data cache."""
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
DEFAULT_STRIDE = 64
SEED = 0x1B5EED
"""Seed of the permutation: the same machine visits lines in the same order every run."""

TOLERANCE = 1.25
"""Points within this ratio (max/min) of their neighbours are on a plateau."""
MIN_JUMP = 1.5
"""Adjacent plateaus whose median latencies differ by less than this ratio are merged."""
MIN_POINTS = 3
"""A plateau needs this many points; fewer is a transition between levels. A level also
needs this many points measured on it (not raised above it by a disturbance)."""
MIN_MEASURED_PER_PLATEAU = 2
"""Each plateau of the envelope needs this many points measured on it (see detect_levels)."""
MEMORY_LLC_FACTOR = 2
"""Memory is only claimed when the sweep went beyond this many times the reported LLC."""

_PROGRAM = "instbench-latency"


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


# ----------------------------------------------------------------- machine facts


def _read(root: str, rel: str) -> Optional[str]:
    try:
        with open(os.path.join(root, rel), encoding="ascii", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return None


def cache_hints(cpu: int, root: str = "/") -> Dict[str, int]:
    """Data/unified cache sizes the OS reports for `cpu`: {'l1': bytes, 'l2': ..., 'l3': ...}.

    Only levels the OS reports are present (Graviton kernels sometimes report none). One
    instance's size: what the measuring core can hold, not the machine's total.
    """
    base = f"sys/devices/system/cpu/cpu{cpu}/cache"
    try:
        indexes = sorted(os.listdir(os.path.join(root, base)))
    except OSError:
        return {}
    hints: Dict[str, int] = {}
    for index in indexes:
        if not index.startswith("index"):
            continue
        kind = _read(root, f"{base}/{index}/type")
        level = _read(root, f"{base}/{index}/level")
        size = parse_size(_read(root, f"{base}/{index}/size"))
        if kind not in ("Data", "Unified") or level not in ("1", "2", "3") or not size:
            continue
        hints[f"l{level}"] = size
    return hints


def line_size(cpu: int, root: str = "/") -> int:
    """Coherency line size of the L1 data cache of `cpu`; 64 when not reported."""
    base = f"sys/devices/system/cpu/cpu{cpu}/cache/index0/coherency_line_size"
    text = _read(root, base)
    try:
        value = int(text) if text else DEFAULT_STRIDE
    except ValueError:
        return DEFAULT_STRIDE
    if value < 16 or value > 1024 or value & (value - 1):
        return DEFAULT_STRIDE
    return value


def _allowed_cpus() -> List[int]:
    getter = getattr(os, "sched_getaffinity", None)
    if getter is not None:
        return sorted(getter(0))
    return list(range(os.cpu_count() or 1))


@dataclass(frozen=True)
class NumaTopology:
    """NUMA nodes and sockets as sysfs describes them."""

    socket_count: int
    node_cpus: Dict[int, List[int]]
    """Online nodes with their CPUs (nodes without CPUs have an empty list)."""
    node_has_memory: Dict[int, bool]
    distances: Dict[int, List[int]]
    """node -> distance to every online node, in node order, when reported."""
    cpu_package: Dict[int, int]


def numa_topology(root: str = "/") -> NumaTopology:
    """Read nodes, their CPUs, memory and distances, and CPU packages from sysfs."""
    node_dir = "sys/devices/system/node"
    nodes = parse_cpu_list(_read(root, f"{node_dir}/online")) or [0]
    with_memory = set(parse_cpu_list(_read(root, f"{node_dir}/has_memory")))
    node_cpus: Dict[int, List[int]] = {}
    distances: Dict[int, List[int]] = {}
    for node in nodes:
        cpus = parse_cpu_list(_read(root, f"{node_dir}/node{node}/cpulist"))
        node_cpus[node] = cpus
        text = _read(root, f"{node_dir}/node{node}/distance")
        try:
            distances[node] = [int(x) for x in text.split()] if text else []
        except ValueError:
            distances[node] = []
    if len(nodes) == 1 and not node_cpus[nodes[0]]:
        node_cpus[nodes[0]] = _allowed_cpus()
    if not with_memory:
        with_memory = set(nodes)
    cpu_package: Dict[int, int] = {}
    online = parse_cpu_list(_read(root, "sys/devices/system/cpu/online"))
    for cpu in online or _allowed_cpus():
        text = _read(root, f"sys/devices/system/cpu/cpu{cpu}/topology/physical_package_id")
        try:
            if text is not None:
                cpu_package[cpu] = int(text)
        except ValueError:
            continue
    sockets = max(1, len(set(cpu_package.values())))
    return NumaTopology(
        socket_count=sockets,
        node_cpus=node_cpus,
        node_has_memory={n: n in with_memory for n in nodes},
        distances=distances,
        cpu_package=cpu_package,
    )


@dataclass(frozen=True)
class NumaPlan:
    """Which node's CPU measures which node's memory, or why nothing remote is measured."""

    cpu_node: Optional[int]
    memory_node: Optional[int]
    run_cpu: Optional[int]
    mem_cpu: Optional[int]
    inter_socket: bool
    reason: str


def plan_numa(topo: NumaTopology, allowed: Sequence[int]) -> NumaPlan:
    """Pick a local node (the first with usable CPUs and memory) and the farthest other node.

    "Farthest" by the distance table, preferring a node on another socket: that pair is
    what `inter_socket_latency_ns` means. The memory node must have memory and a CPU we may
    run on, because placement is by first touch from that CPU.
    """
    usable = {
        node: [c for c in cpus if c in allowed]
        for node, cpus in sorted(topo.node_cpus.items())
        if topo.node_has_memory.get(node, False)
    }
    usable = {node: cpus for node, cpus in usable.items() if cpus}
    nodes = sorted(topo.node_cpus)
    if len(nodes) < 2:
        return NumaPlan(None, None, None, None, False, "one NUMA node: nothing remote")
    if len(usable) < 2:
        return NumaPlan(
            None,
            None,
            None,
            None,
            False,
            f"{len(nodes)} NUMA nodes, but fewer than two have both memory and CPUs this "
            "process may run on (first-touch placement needs a CPU on the memory's node)",
        )
    local = min(usable)
    run_cpu = usable[local][-1]
    local_package = topo.cpu_package.get(run_cpu)

    def key(node: int) -> Tuple[int, int, int]:
        mem_cpu = usable[node][-1]
        other_socket = int(
            local_package is not None
            and topo.cpu_package.get(mem_cpu) is not None
            and topo.cpu_package.get(mem_cpu) != local_package
        )
        row = topo.distances.get(local, [])
        distance = row[nodes.index(node)] if len(row) == len(nodes) else 0
        return (other_socket, distance, -node)

    remote = max((n for n in usable if n != local), key=key)
    inter_socket = key(remote)[0] == 1
    reason = (
        f"CPU {run_cpu} (node {local}) reading memory first-touched from CPU "
        f"{usable[remote][-1]} (node {remote}"
        + (", another socket)" if inter_socket else ", same socket)")
    )
    return NumaPlan(local, remote, run_cpu, usable[remote][-1], inter_socket, reason)


# ------------------------------------------------------------------------ sizing


def _fmt_bytes(n: float) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{int(n)} B"


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


# ----------------------------------------------------------------------- parsing


def _number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _require(obj: Mapping[str, Any], key: str, kind: str, where: str) -> Any:
    if key not in obj:
        raise BenchmarkError(f"latency kernel output: {where}{key} is missing")
    value = obj[key]
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "number": _number(value),
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "dict": isinstance(value, dict),
        "list": isinstance(value, list),
    }[kind]
    if not ok:
        raise BenchmarkError(f"latency kernel output: {where}{key} should be {kind}, got {value!r}")
    return value


def _times(obj: Mapping[str, Any], where: str, samples: int) -> List[int]:
    series = _require(obj, "times_ns", "list", where)
    if len(series) != samples:
        raise BenchmarkError(
            f"latency kernel output: {where}times_ns has {len(series)} samples, expected {samples}"
        )
    for value in series:
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise BenchmarkError(
                f"latency kernel output: {where}times_ns holds {value!r}, not a positive "
                "integer (timer too coarse or output corrupted)"
            )
    return list(series)


def parse_output(text: str) -> Dict[str, Any]:
    """Parse and check the kernel's JSON; BenchmarkError if anything is off.

    Checked: it is ours and of this version, every point has its samples as positive
    integers, and sizes ascend. (The kernel itself refuses to go on, exit status 5, when a
    permutation it verified is not one cycle.)
    """
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        raise BenchmarkError("latency kernel printed nothing")
    try:
        data = json.loads(lines[-1])
    except ValueError as exc:
        raise BenchmarkError(f"latency kernel output is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("program") != _PROGRAM:
        raise BenchmarkError("latency kernel output is not an instbench-latency result")
    version = _require(data, "kernel_version", "str", "")
    if version != KERNEL_VERSION:
        raise BenchmarkError(
            f"latency kernel reports version {version}, this agent expects {KERNEL_VERSION}"
        )
    samples = _require(data, "samples", "int", "")
    stride = _require(data, "stride_bytes", "int", "")
    if samples < 1 or stride < 8:
        raise BenchmarkError("latency kernel output: samples or stride_bytes out of range")
    for key in ("run_cpu", "mem_cpu", "measured_on_cpu", "buffer_bytes"):
        _require(data, key, "int", "")
    timer = _require(data, "timer", "dict", "")
    _require(timer, "granularity_ns", "number", "timer.")
    huge = _require(data, "huge_pages", "dict", "")
    _require(huge, "requested", "bool", "huge_pages.")
    _require(huge, "madvise", "str", "huge_pages.")
    placement = data.get("placement")
    if placement is not None:
        if not isinstance(placement, dict):
            raise BenchmarkError("latency kernel output: placement must be an object or null")
        _require(placement, "pages_checked", "int", "placement.")
        nodes = _require(placement, "nodes", "dict", "placement.")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in nodes.values()):
            raise BenchmarkError("latency kernel output: placement.nodes must hold integers")
    points = _require(data, "points", "list", "")
    if not points:
        raise BenchmarkError("latency kernel output: no points")
    previous = 0
    for i, point in enumerate(points):
        where = f"points[{i}]."
        if not isinstance(point, dict):
            raise BenchmarkError(f"latency kernel output: points[{i}] is not an object")
        size = _require(point, "size_bytes", "int", where)
        lines_n = _require(point, "lines", "int", where)
        if size <= previous or lines_n < 2 or lines_n * stride != size:
            raise BenchmarkError(
                f"latency kernel output: {where}size_bytes/lines inconsistent or not ascending"
            )
        previous = size
        _require(point, "cycle_checked", "bool", where)
        chase = _require(point, "chase", "dict", where)
        loads = _require(chase, "loads", "int", where + "chase.")
        read = _require(point, "read", "dict", where)
        nbytes = _require(read, "bytes", "int", where + "read.")
        if loads < 1 or nbytes < size:
            raise BenchmarkError(f"latency kernel output: {where} loads or bytes out of range")
        _times(chase, where + "chase.", samples)
        _times(read, where + "read.", samples)
    return data


def summarise_points(data: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """The section's `points`: best sample of each size, raw samples kept."""
    out = []
    for point in data["points"]:
        loads = int(point["chase"]["loads"])
        nbytes = int(point["read"]["bytes"])
        lat = [t / loads for t in point["chase"]["times_ns"]]
        bw = [nbytes / t for t in point["read"]["times_ns"]]  # bytes/ns == GB/s
        out.append(
            {
                "size_bytes": int(point["size_bytes"]),
                "latency_ns": min(lat),
                "bandwidth_gbps": max(bw),
                "latency_samples_ns": lat,
                "bandwidth_samples_gbps": bw,
            }
        )
    return out


def merge_points(
    base: Sequence[Mapping[str, Any]], extra: Sequence[Mapping[str, Any]]
) -> List[Dict[str, Any]]:
    """`base` with the samples of `extra` (same or fewer sizes) appended, best re-taken.

    Samples of a size measured in several passes are pooled in run order; the point's
    latency is again the fastest and its bandwidth the highest of all of them.
    """
    more = {int(q["size_bytes"]): q for q in extra}
    out = []
    for q in base:
        point = dict(q)
        add = more.pop(int(q["size_bytes"]), None)
        if add is not None:
            point["latency_samples_ns"] = list(q["latency_samples_ns"]) + list(
                add["latency_samples_ns"]
            )
            point["bandwidth_samples_gbps"] = list(q["bandwidth_samples_gbps"]) + list(
                add["bandwidth_samples_gbps"]
            )
            point["latency_ns"] = min(point["latency_samples_ns"])
            point["bandwidth_gbps"] = max(point["bandwidth_samples_gbps"])
        out.append(point)
    if more:
        raise BenchmarkError("latency kernel measured sizes that were not asked for")
    return out


def lower_envelope(latencies: Sequence[float]) -> List[float]:
    """Each point's latency, or a larger working set's when that was measured lower.

    Why plateaus are found on this curve: undisturbed, latency never falls as the working
    set grows, and interference only ever adds time; so a larger working set measured
    faster proves the smaller one can be served at least that fast, and a point above it
    was disturbed. On an undisturbed curve the envelope is the curve itself (up to noise
    within a plateau, which it can lower by that noise at most).
    """
    out: List[float] = []
    floor = math.inf
    for value in reversed([float(v) for v in latencies]):
        floor = min(floor, value)
        out.append(floor)
    return out[::-1]


def disturbed(latencies: Sequence[float], tolerance: float = TOLERANCE) -> List[int]:
    """Indices of points slower than `tolerance` times some larger working set.

    Why this means "disturbed": on an undisturbed machine latency never falls as the
    working set grows (a larger set fits the same or a farther level), and interference
    only ever adds time. A point well above a later one was therefore measured while
    something else held the core or the shared cache; measuring it again is the remedy.
    Within `tolerance` it is noise of a flat level, as `find_plateaus` treats it.
    """
    out: List[int] = []
    floor = math.inf
    for i in range(len(latencies) - 1, -1, -1):
        if float(latencies[i]) > tolerance * floor:
            out.append(i)
        floor = min(floor, float(latencies[i]))
    return sorted(out)


def unexplained_gaps(points: Sequence[Mapping[str, Any]], hints: Mapping[str, int]) -> List[int]:
    """Indices of the points where a cache level the OS reports was expected but not found.

    For each level in `hints` that `detect_levels` leaves null: the points above the end of
    the level found below it (or the first point) and below the start of the cache level
    found above it; when what follows is memory, up to the reported size as well, because
    a disturbed L3 reads as memory and would otherwise leave no gap at all. Re-measuring
    only there keeps the cost where the curve is in doubt.
    """
    levels, _ = detect_levels(points, hints)
    out: List[int] = []
    for k, name in enumerate(CACHE_LEVELS):
        found = levels[name]
        if found is not None or name not in hints:
            continue
        below = [levels[n] for n in CACHE_LEVELS[:k] if levels[n] is not None]
        above = [(n, levels[n]) for n in LEVELS[k + 1 :] if levels[n] is not None]
        lo = int(below[-1]["size_range_bytes"][1]) if below else 0  # type: ignore[index]
        hi: float = math.inf
        if above:
            next_name, next_level = above[0]
            hi = int(next_level["size_range_bytes"][0])  # type: ignore[index]
            if next_name == "memory":
                hi = max(hi, int(hints[name]) + 1)
        out.extend(i for i, q in enumerate(points) if lo < int(q["size_bytes"]) < hi)
    return sorted(set(out))


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


# --------------------------------------------------------------------- detection


@dataclass(frozen=True)
class Plateau:
    """Indices [first, last] of a run of sweep points at one latency level."""

    first: int
    last: int


def find_plateaus(
    latencies: Sequence[float],
    *,
    tolerance: float = TOLERANCE,
    min_jump: float = MIN_JUMP,
    min_points: int = MIN_POINTS,
) -> List[Plateau]:
    """Plateaus of a latency curve sampled at ascending sizes (see the module docstring).

    Only ratios between measured values are used, so the result does not depend on the
    machine's speed, and nothing here knows where caches "should" end.
    """
    n = len(latencies)
    if n == 0:
        return []
    y = [float(v) for v in latencies]

    def spread(lo: int, hi: int) -> float:
        window = y[max(0, lo) : min(n, hi + 1)]
        return max(window) / min(window)

    flat = [spread(i - 1, i + 1) <= tolerance for i in range(n)]
    runs: List[List[int]] = []
    i = 0
    while i < n:
        if not flat[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and flat[j + 1]:
            j += 1
        runs.append([i, j])
        i = j + 1

    def within(index: int, run: List[int]) -> bool:
        med = statistics.median(y[run[0] : run[1] + 1])
        return max(y[index], med) / min(y[index], med) <= tolerance

    # Grow each run to neighbours that agree with its median (the first and last point of
    # a plateau are not flat themselves when the next point is already on a transition).
    for k, run in enumerate(runs):
        left_limit = runs[k - 1][1] + 1 if k > 0 else 0
        while run[0] - 1 >= left_limit and within(run[0] - 1, run):
            run[0] -= 1
        right_limit = runs[k + 1][0] - 1 if k + 1 < len(runs) else n - 1
        while run[1] + 1 <= right_limit and within(run[1] + 1, run):
            run[1] += 1

    merged: List[List[int]] = []
    for run in runs:
        if merged:
            prev = merged[-1]
            a = statistics.median(y[prev[0] : prev[1] + 1])
            b = statistics.median(y[run[0] : run[1] + 1])
            if max(a, b) / min(a, b) < min_jump:
                prev[1] = run[1]
                continue
        merged.append(list(run))
    return [Plateau(r[0], r[1]) for r in merged if r[1] - r[0] + 1 >= min_points]


def _level(points: Sequence[Mapping[str, Any]], p: Plateau, hint: Optional[int]) -> Dict[str, Any]:
    chunk = points[p.first : p.last + 1]
    return {
        "latency_ns": statistics.median(float(q["latency_ns"]) for q in chunk),
        "bandwidth_gbps": statistics.median(float(q["bandwidth_gbps"]) for q in chunk),
        "size_range_bytes": [int(chunk[0]["size_bytes"]), int(chunk[-1]["size_bytes"])],
        "points": len(chunk),
        "reported_size_bytes": hint,
    }


def _center(points: Sequence[Mapping[str, Any]], p: Plateau) -> float:
    return math.sqrt(float(points[p.first]["size_bytes"]) * float(points[p.last]["size_bytes"]))


def detect_levels(
    points: Sequence[Mapping[str, Any]],
    hints: Mapping[str, int],
    *,
    tolerance: float = TOLERANCE,
    min_jump: float = MIN_JUMP,
    min_points: int = MIN_POINTS,
) -> Tuple[Dict[str, Optional[Dict[str, Any]]], Dict[str, str]]:
    """Levels {l1, l2, l3, memory} from the measured points, and a note per null level.

    `hints` are the cache sizes the OS reports ({'l1': bytes, ...}); they only label
    plateaus, never create them. Memory: the last plateau, when it reaches past twice the
    largest reported cache (no reported cache can hold that working set), or, with no
    cache sizes reported, when it reaches the end of the sweep. Caches: each other plateau
    is the first hinted level whose size is at least the plateau's geometric centre, or,
    when no hint fits, the next level in order. Two plateaus with the same label are one
    level (their points are pooled).
    """
    levels: Dict[str, Optional[Dict[str, Any]]] = {name: None for name in LEVELS}
    notes: Dict[str, str] = {}
    if not points:
        return levels, {name: "no points were measured" for name in LEVELS}
    # Read on the lower envelope: a disturbed point counts at a larger set's latency. But
    # levels must rest on points measured on them (within the tolerance of the
    # envelope): each plateau at least two that agree, each level min_points in all. One
    # low reading copied down over disturbed neighbours is no level.
    raw = [float(q["latency_ns"]) for q in points]
    envelope = lower_envelope(raw)
    measured_on = [r <= tolerance * e for r, e in zip(raw, envelope)]
    points = [{**q, "latency_ns": e} for q, e in zip(points, envelope)]
    plateaus = [
        p
        for p in find_plateaus(
            envelope,
            tolerance=tolerance,
            min_jump=min_jump,
            min_points=min_points,
        )
        if sum(measured_on[p.first : p.last + 1]) >= MIN_MEASURED_PER_PLATEAU
    ]

    def size(index: int) -> int:
        return int(points[index]["size_bytes"])

    last_size = size(len(points) - 1)
    llc = max(hints.values()) if hints else None
    beyond = MEMORY_LLC_FACTOR * llc if llc else None
    """With cache sizes reported, a plateau reaching past twice the largest is memory."""

    if len(plateaus) < 2:
        notes["memory"] = (
            "only one plateau in the whole curve: cannot tell caches from memory"
            if plateaus
            else "no plateau found in the latency curve"
        )
    elif beyond is not None:
        if size(plateaus[-1].last) >= beyond:
            levels["memory"] = _level(points, plateaus.pop(), None)
        elif last_size < beyond:
            notes["memory"] = (
                f"the sweep ended at {_fmt_bytes(last_size)}, less than "
                f"{MEMORY_LLC_FACTOR}x the reported last-level cache ({_fmt_bytes(llc or 0)}), "
                "so its last plateau may still be cache"
            )
        else:
            notes["memory"] = (
                f"no plateau reaches past {MEMORY_LLC_FACTOR}x the reported last-level cache "
                f"({_fmt_bytes(beyond)}): latency still changing at the largest working sets"
            )
    elif plateaus[-1].last == len(points) - 1:
        levels["memory"] = _level(points, plateaus.pop(), None)
    else:
        notes["memory"] = (
            f"latency was still rising at the largest working set ({_fmt_bytes(last_size)}) "
            "and the OS reports no cache sizes that would tell where memory starts"
        )

    groups: Dict[str, List[Plateau]] = {}
    order = 0  # index + 1 of the last level assigned
    for p in plateaus:
        label = None
        if beyond is None or size(p.last) < beyond:
            centre = _center(points, p)
            for k, name in enumerate(CACHE_LEVELS):
                if k >= order - 1 and name in hints and centre <= hints[name]:
                    label = name
                    break
            if label is None and order < len(CACHE_LEVELS):
                label = CACHE_LEVELS[order]
        if label is None:
            notes.setdefault(
                "unassigned",
                f"a plateau at {_fmt_bytes(size(p.first))}..{_fmt_bytes(size(p.last))} "
                "fits no cache level",
            )
            continue
        order = CACHE_LEVELS.index(label) + 1
        groups.setdefault(label, []).append(p)
    for name, members in groups.items():
        pooled = Plateau(members[0].first, members[-1].last)
        measured = sum(sum(measured_on[m.first : m.last + 1]) for m in members)
        if measured < min_points:
            notes[name] = (
                f"a plateau at {_fmt_bytes(size(pooled.first))}..{_fmt_bytes(size(pooled.last))}"
                f" rests on {measured} measured points (fewer than {min_points}; the others "
                "were disturbed and read slower than a larger working set)"
            )
            continue
        levels[name] = _level(points, pooled, hints.get(name))
        if len(members) > 1:
            notes[name] = f"{len(members)} plateaus were pooled as {name.upper()}"

    previous_end = 0
    for name in CACHE_LEVELS:
        found = levels[name]
        if found is not None:
            previous_end = found["size_range_bytes"][1]
            continue
        if name in notes:
            continue
        hint = hints.get(name)
        if hint is None:
            notes[name] = f"the OS reports no {name.upper()} and the curve shows no plateau for it"
        else:
            notes[name] = (
                f"no plateau of at least {min_points} points (within {tolerance:g}x) between "
                f"{_fmt_bytes(previous_end or MIN_SIZE)} and the reported {name.upper()} size "
                f"{_fmt_bytes(hint)}"
            )
    return levels, notes


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
    "KERNEL_VERSION",
    "LEVELS",
    "LatencyOptions",
    "NumaPlan",
    "NumaTopology",
    "Plateau",
    "cache_hints",
    "detect_levels",
    "disturbed",
    "find_plateaus",
    "kernel_args",
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
