"""Reading the cache hierarchy off a latency curve: the latency kernel's output checked
and summarised, its lower envelope, and the levels (plateaus) found on it.

Pure functions over measured points, apart from the latency benchmark's running of the
kernel (`latency.py`), so that detection can be tested on recorded and synthetic curves
alone. The method and its reasons are in `latency.py`'s docstring.

Stdlib-only, Python 3.9 (shipped inside agent.pyz).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from instbench.benchmarks.errors import BenchmarkError

KERNEL_VERSION = "1.0.0"
"""Version of kernels/latency.c; must equal its IB_KERNEL_VERSION (checked when parsing)."""
LEVELS = ("l1", "l2", "l3", "memory")
CACHE_LEVELS = ("l1", "l2", "l3")
MIN_SIZE = 4096
"""Smallest working set: one page, inside every L1 data cache."""
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


def _fmt_bytes(n: float) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{int(n)} B"


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
