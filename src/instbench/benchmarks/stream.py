"""STREAM memory bandwidth: plan the array size, build our kernel, run it, parse it.

The C kernel (kernels/stream.c) does the measuring and prints raw per-trial times as one
JSON object; this module decides how big the arrays are and how the threads are placed,
turns the times into STREAM's rates, and assembles the `performance_data.stream` section
of the result document (instbench/results/schema.py, `StreamResult`).

Choices worth knowing, and why:

* Array size. STREAM wants each array several times larger than all last-level caches
  together. A VM often reports the *host's* L3 (hundreds of MiB), so "4x the reported L3"
  is not a rule to size by; we use a fixed floor of 2^28 elements per array (2 GiB, 6 GiB
  for the three), larger than any real cache, or 4x the total LLC the OS reports when that
  is larger, and cap it to 60 % of MemAvailable so the run never swaps or gets OOM-killed.
  The choice and its reason are recorded in `array_size_reason`.
* Threads. The all-CPU run uses every CPU in our affinity mask with OMP_PROC_BIND=spread
  and OMP_PLACES=cores: one place per physical core, so when fewer threads than CPUs are
  asked for (--threads) they land on distinct cores rather than on SMT siblings; with one
  thread per CPU the siblings of a core share its place. OMP_DYNAMIC=false keeps the
  runtime from using fewer threads than asked. The single-thread run measures what one
  core can pull.
* Layout. The three arrays live in one page-aligned posix_memalign block, 8 KiB apart
  beyond their length (STREAM's OFFSET idea): arrays exactly a power of two apart, as
  the reference's static arrays are at 2^k sizes, collide in the memory system and lose
  5-15 % on Add/Triad, which would make results depend on the size being 2^k.
* Huge pages. The kernel never calls madvise, so the arrays get exactly what the system
  THP policy gives anonymous memory (with the common `madvise` policy: base pages, like
  the reference STREAM's static arrays). The layout, the policy and the AnonHugePages the
  kernel process actually had are recorded in `huge_pages`.

Stdlib-only, Python 3.9 (shipped inside agent.pyz).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from instbench.benchmarks import compiler as cc
from instbench.benchmarks.errors import BenchmarkError, BenchmarkInputError
from instbench.benchmarks.meminfo import mem_available_bytes as _mem_available_bytes

KERNEL_VERSION = "1.0.0"
"""Version of kernels/stream.c; must equal its IB_KERNEL_VERSION (checked when parsing)."""

SOURCE_NAME = "stream.c"
KERNELS = ("copy", "scale", "add", "triad")
BYTES_PER_ELEMENT = {"copy": 16, "scale": 16, "add": 24, "triad": 24}
"""STREAM byte counting: reads + writes per element, no write-allocate traffic."""

FLOOR_ELEMENTS = 2**28
"""Elements per array unless 4x the reported LLC is larger: 2 GiB per array."""
LLC_FACTOR = 4
"""STREAM's rule: each array at least 4x the total last-level cache."""
MEMORY_SHARE = 0.60
"""Share of MemAvailable the three arrays may take when we choose the size."""
EXPLICIT_MEMORY_SHARE = 0.90
"""Share of MemAvailable an explicit --array-size may take (the user asked for it)."""
QUICK_ELEMENTS = 2**22
"""Quick mode: 32 MiB per array; for tests and demos, never published."""
QUICK_NTIMES = 3
DEFAULT_NTIMES = 20
ARRAY_GAP_ELEMENTS = 1024
"""Gap between consecutive arrays beyond their page-rounded length; equals
IB_GAP_ELEMENTS in kernels/stream.c (bench/stream_fidelity.py gives the reference the
same spacing through its OFFSET)."""
MIN_ELEMENTS = 10_000
MAX_NTIMES = 200
"""The expected values of the check grow 15x per trial; past ~260 trials they overflow."""
MAX_THREADS = 4096

OMP_PROC_BIND = "spread"
OMP_PLACES = "cores"

_BYTES_PER_DOUBLE = 8
_ARRAYS = 3
_PROGRAM = "instbench-stream"


def _no_log(message: str) -> None:
    """Default logger: silent."""


@dataclass
class StreamOptions:
    """What the user asked for. None means "choose for this machine"."""

    array_elements: int | None = None
    ntimes: int = DEFAULT_NTIMES
    """Trials per kernel including the discarded first one. In quick mode the default of
    20 becomes 3; any other value is kept."""
    threads: int | None = None
    """Threads of the all-CPU run; default: every CPU this process may run on."""
    quick: bool = False
    single_thread: bool = True
    """Also run with one thread (per-core bandwidth)."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise BenchmarkInputError on values no run could honour."""
        if self.array_elements is not None and (
            isinstance(self.array_elements, bool) or self.array_elements < MIN_ELEMENTS
        ):
            raise BenchmarkInputError(
                f"array size must be at least {MIN_ELEMENTS} elements, got {self.array_elements}"
            )
        if isinstance(self.ntimes, bool) or not 2 <= self.ntimes <= MAX_NTIMES:
            raise BenchmarkInputError(
                f"ntimes must be between 2 and {MAX_NTIMES} (the first trial is discarded), "
                f"got {self.ntimes}"
            )
        if self.threads is not None and (
            isinstance(self.threads, bool) or not 1 <= self.threads <= MAX_THREADS
        ):
            raise BenchmarkInputError(
                f"threads must be between 1 and {MAX_THREADS}, got {self.threads}"
            )

    def effective_ntimes(self) -> int:
        """Trials actually run (quick mode shortens the default)."""
        if self.quick and self.ntimes == DEFAULT_NTIMES:
            return QUICK_NTIMES
        return self.ntimes


# ----------------------------------------------------------------- machine facts


def _parse_cache_size(text: str) -> int | None:
    text = text.strip().upper()
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    try:
        if text and text[-1] in units:
            return int(text[:-1]) * units[text[-1]]
        return int(text)
    except ValueError:
        return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None


def _llc_total_bytes(root: str = "/sys/devices/system/cpu") -> int | None:
    """Sum of the distinct last-level cache instances the OS reports, bytes.

    Each CPU lists its caches under cpuN/cache/indexM; an instance shared by several CPUs
    appears once per CPU with the same shared_cpu_list, so instances are counted by that
    list. A VM may report the host's LLC here; that is why this only ever raises the
    fixed floor, never sets the size on its own.
    """
    instances: dict[tuple[int, str], int] = {}
    base = Path(root)
    try:
        cpu_dirs = [p for p in base.iterdir() if p.name[3:].isdigit() and p.name[:3] == "cpu"]
    except OSError:
        return None
    for cpu in cpu_dirs:
        cache = cpu / "cache"
        if not cache.is_dir():
            continue
        for index in cache.glob("index*"):
            level_text = _read(index / "level")
            kind = _read(index / "type")
            size_text = _read(index / "size")
            shared = _read(index / "shared_cpu_list") or cpu.name
            if not level_text or not size_text or kind == "Instruction":
                continue
            try:
                level = int(level_text)
            except ValueError:
                continue
            size = _parse_cache_size(size_text)
            if size is not None:
                instances[(level, shared)] = size
    if not instances:
        return None
    top = max(level for level, _ in instances)
    return sum(size for (level, _), size in instances.items() if level == top)


def _thp_policy(path: str = "/sys/kernel/mm/transparent_hugepage/enabled") -> str | None:
    """The selected THP policy (always | madvise | never), None if not reported."""
    text = _read(Path(path))
    if not text:
        return None
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            return word[1:-1]
    return text


def _usable_cpus() -> int:
    """CPUs this process may run on (respects taskset / cgroup cpusets)."""
    getter = getattr(os, "sched_getaffinity", None)
    if getter is not None:
        return len(getter(0))
    return os.cpu_count() or 1


# ------------------------------------------------------------------------ sizing


def _fmt_bytes(n: float) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def _describe(elements: int) -> str:
    array = elements * _BYTES_PER_DOUBLE
    return (
        f"{elements} elements per array ({_fmt_bytes(array)} each, {_fmt_bytes(3 * array)} total)"
    )


def plan_array_size(
    requested: int | None,
    *,
    quick: bool = False,
    mem_available: int | None = None,
    llc_total: int | None = None,
) -> tuple[int, str]:
    """Choose the elements per array and say why (the reason is recorded in the result).

    An explicit size is honoured if the three arrays fit in 90 % of MemAvailable, else
    BenchmarkInputError. Otherwise: quick mode's small size, or the fixed floor raised to
    4x the reported LLC, capped to 60 % of MemAvailable.
    """
    per_element = _ARRAYS * _BYTES_PER_DOUBLE
    if requested is not None:
        needed = requested * per_element
        if mem_available is not None and needed > EXPLICIT_MEMORY_SHARE * mem_available:
            raise BenchmarkInputError(
                f"--array-size {requested} needs {_fmt_bytes(needed)} for three arrays but "
                f"only {_fmt_bytes(EXPLICIT_MEMORY_SHARE * mem_available)} of memory may be "
                f"used ({int(EXPLICIT_MEMORY_SHARE * 100)} % of MemAvailable "
                f"{_fmt_bytes(mem_available)})"
            )
        reason = f"user override (--array-size): {_describe(requested)}"
        if quick:
            reason = "quick mode, " + reason + "; not a valid STREAM result"
        return requested, reason

    if quick:
        elements = QUICK_ELEMENTS
        reason = (
            f"quick mode: {_describe(elements)}; small arrays for tests and demos, "
            "not a valid STREAM result"
        )
    else:
        floor_reason = f"fixed floor of 2^{int(math.log2(FLOOR_ELEMENTS))} elements"
        llc_elements = 0
        if llc_total:
            llc_elements = -(-LLC_FACTOR * llc_total // _BYTES_PER_DOUBLE)
        if llc_elements > FLOOR_ELEMENTS:
            elements = llc_elements
            reason = (
                f"{LLC_FACTOR}x the total last-level cache the OS reports "
                f"({_fmt_bytes(llc_total or 0)}) exceeds the {floor_reason}: {_describe(elements)}"
            )
        else:
            elements = FLOOR_ELEMENTS
            llc_note = (
                f"above {LLC_FACTOR}x the LLC the OS reports ({_fmt_bytes(llc_total)}; "
                "a VM may report the host's)"
                if llc_total
                else "the OS reports no LLC size"
            )
            reason = f"{floor_reason}, {llc_note}: {_describe(elements)}"

    if mem_available is None:
        return elements, reason + "; MemAvailable unknown, no memory cap applied"
    cap = int(MEMORY_SHARE * mem_available) // per_element
    if elements <= cap:
        return elements, reason
    step = 2**20 if cap >= 2**21 else 1024
    capped = cap // step * step
    if capped < MIN_ELEMENTS:
        raise BenchmarkInputError(
            f"not enough memory for STREAM: {_fmt_bytes(mem_available)} available, "
            f"at least {_fmt_bytes(MIN_ELEMENTS * per_element / MEMORY_SHARE)} needed"
        )
    reason = (
        f"{reason}; capped to {int(MEMORY_SHARE * 100)} % of MemAvailable "
        f"({_fmt_bytes(mem_available)}): {_describe(capped)}"
    )
    if llc_total and capped * _BYTES_PER_DOUBLE < LLC_FACTOR * llc_total:
        reason += f"; below {LLC_FACTOR}x the reported LLC, so caches may inflate the result"
    return capped, reason


# ----------------------------------------------------------------------- parsing


def _require(obj: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in obj:
        raise BenchmarkError(f"stream kernel output: {where}{key} is missing")
    value = obj[key]
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and not math.isfinite(float(value)):
            raise BenchmarkError(f"stream kernel output: {where}{key} is not finite")
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise BenchmarkError(
            f"stream kernel output: {where}{key} should be {kind.__name__}, got {value!r}"
        )
    return value


def parse_output(text: str) -> dict[str, Any]:
    """Parse and check the kernel's JSON; BenchmarkError if anything is off.

    Returns the decoded object. Checked: it is ours and of this version, every kernel has
    ntimes positive finite times, the validation block is complete.
    """
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        raise BenchmarkError("stream kernel printed nothing")
    try:
        data = json.loads(lines[-1])
    except ValueError as exc:
        raise BenchmarkError(f"stream kernel output is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("program") != _PROGRAM:
        raise BenchmarkError("stream kernel output is not an instbench-stream result")
    version = _require(data, "kernel_version", str, "")
    if version != KERNEL_VERSION:
        raise BenchmarkError(
            f"stream kernel reports version {version}, this agent expects {KERNEL_VERSION}"
        )
    elements = _require(data, "elements", int, "")
    ntimes = _require(data, "ntimes", int, "")
    threads = _require(data, "threads", int, "")
    if elements < 1 or ntimes < 2 or threads < 1:
        raise BenchmarkError("stream kernel output: elements, ntimes or threads out of range")
    timer = _require(data, "timer", dict, "")
    _require(timer, "granularity_ns", float, "timer.")
    times = _require(data, "times_s", dict, "")
    for kernel in KERNELS:
        series = _require(times, kernel, list, "times_s.")
        if len(series) != ntimes:
            raise BenchmarkError(
                f"stream kernel output: {kernel} has {len(series)} times, expected {ntimes}"
            )
        for value in series:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not ok or not math.isfinite(value) or value <= 0:
                raise BenchmarkError(
                    f"stream kernel output: {kernel} trial time {value!r} is not a positive "
                    "number (timer too coarse or output corrupted)"
                )
    validation = _require(data, "validation", dict, "")
    _require(validation, "passed", bool, "validation.")
    _require(validation, "epsilon", float, "validation.")
    for block in ("expected", "relative_error"):
        values = _require(validation, block, dict, "validation.")
        for array in ("a", "b", "c"):
            _require(values, array, float, f"validation.{block}.")
    warnings = data.get("warnings", [])
    if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
        raise BenchmarkError("stream kernel output: warnings must be a list of strings")
    for key in ("anon_huge_kb", "array_stride_bytes", "alignment"):
        value = data.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise BenchmarkError(f"stream kernel output: {key} must be an integer or null")
    return data


def _kernel_stats(times: list[float], elements: int, kernel: str) -> dict[str, Any]:
    counted = [float(t) for t in times[1:]]
    nbytes = BYTES_PER_ELEMENT[kernel] * elements
    t_min, t_max = min(counted), max(counted)
    t_avg = sum(counted) / len(counted)
    best = nbytes / t_min / 1e9
    return {
        "best_gbps": best,
        "avg_gbps": nbytes / t_avg / 1e9,
        "min_gbps": nbytes / t_max / 1e9,
        "max_gbps": best,
        "min_time_s": t_min,
        "avg_time_s": t_avg,
        "max_time_s": t_max,
        "bytes_per_trial": nbytes,
        "trial_times_s": counted,
    }


def _validation_detail(data: Mapping[str, Any]) -> str:
    v = data["validation"]
    exp, rel = v["expected"], v["relative_error"]
    parts = ", ".join(
        f"{name}: expected {exp[name]:.6g}, mean |error|/expected {rel[name]:.3g}"
        for name in ("a", "b", "c")
    )
    verdict = "passed" if v["passed"] else "FAILED"
    detail = (
        f"final arrays vs the scalar replay of {data['ntimes']} trials ({parts}); "
        f"tolerance {v['epsilon']:.0e}: {verdict}"
    )
    warnings = data.get("warnings") or []
    if warnings:
        detail += "; timer warning: " + "; ".join(warnings)
    return detail


def summarise_run(data: Mapping[str, Any], thread_mode: str, duration_s: float) -> dict[str, Any]:
    """One `StreamRun` entry from parsed kernel output (first trial discarded)."""
    elements = int(data["elements"])
    ntimes = int(data["ntimes"])
    array_bytes = elements * _BYTES_PER_DOUBLE
    return {
        "thread_mode": thread_mode,
        "threads": int(data["threads"]),
        "array_elements": elements,
        "array_bytes": array_bytes,
        "total_bytes": _ARRAYS * array_bytes,
        "ntimes": ntimes,
        "trials_counted": ntimes - 1,
        "validation_passed": bool(data["validation"]["passed"]),
        "validation_detail": _validation_detail(data),
        "timer_resolution_ns": float(data["timer"]["granularity_ns"]),
        "duration_s": max(0.0, float(duration_s)),
        "kernels": {k: _kernel_stats(data["times_s"][k], elements, k) for k in KERNELS},
    }


# ----------------------------------------------------------------------- running


def omp_environment(threads: int) -> dict[str, str]:
    """The OpenMP settings a run uses (recorded in execution_context.openmp)."""
    return {
        "OMP_NUM_THREADS": str(threads),
        "OMP_PROC_BIND": OMP_PROC_BIND,
        "OMP_PLACES": OMP_PLACES,
        "OMP_DYNAMIC": "false",
    }


def _child_env(threads: int) -> dict[str, str]:
    # Drop inherited OpenMP/GOMP settings (GOMP_CPU_AFFINITY, OMP_SCHEDULE, ...) so the
    # run is placed exactly as recorded.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "KMP_"))}
    env.update(omp_environment(threads))
    return env


def _timeout_s(elements: int, ntimes: int) -> float:
    # Generous: 0.25 GB/s for the trials and 0.1 GB/s for first touch would be a very
    # slow machine; the agent's watchdog is the real backstop.
    trial_bytes = sum(BYTES_PER_ELEMENT.values()) * elements
    return 300.0 + ntimes * trial_bytes / 0.25e9 + _ARRAYS * 8 * elements / 0.1e9


def _execute(
    binary: Path, elements: int, ntimes: int, threads: int
) -> tuple[dict[str, Any], float]:
    proc, duration = cc.run_binary(
        [str(binary), str(elements), str(ntimes)],
        _timeout_s(elements, ntimes),
        f"the stream kernel {binary}",
        env=_child_env(threads),
    )
    if proc.returncode != 0:
        raise BenchmarkError(cc.exit_failure(proc, "the stream kernel"))
    data = parse_output(proc.stdout)
    if data["elements"] != elements or data["ntimes"] != ntimes:
        raise BenchmarkError("stream kernel ran with other parameters than requested")
    if data["threads"] != threads:
        raise BenchmarkError(
            f"stream kernel ran {data['threads']} threads, {threads} were requested"
        )
    return data, duration


def _huge_pages_note(policy: str | None, data: Mapping[str, Any]) -> str:
    """What `huge_pages` says: layout, madvise (none), THP policy, huge pages observed."""
    alignment = data.get("alignment")
    stride = data.get("array_stride_bytes")
    what = f"one posix_memalign({alignment}) block for the three arrays"
    if stride is not None:
        what += f", {stride} bytes apart"
    what += "; no madvise by the kernel"
    where = f"system THP policy applies (enabled={policy or 'unknown'})"
    if policy in ("madvise", "never"):
        where += ", so the arrays get base pages"
    huge = data.get("anon_huge_kb")
    seen = (
        f"AnonHugePages of the kernel process after initialisation: {huge} kB"
        if huge is not None
        else "AnonHugePages not reported"
    )
    return f"{what}; {where}; {seen}"


def run_stream(
    options: StreamOptions,
    *,
    cache_dir: Path,
    log: Callable[[str], None] = _no_log,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run STREAM on this machine: (stream section of the result, build info).

    Input is checked (options, memory) before anything is compiled. Build info keys:
    compiler, cflags, binary_cached, openmp, compile_s, run_s.
    """
    options.validate()
    elements, reason = plan_array_size(
        options.array_elements,
        quick=options.quick,
        mem_available=_mem_available_bytes(),
        llc_total=_llc_total_bytes(),
    )
    ntimes = options.effective_ntimes()
    all_threads = options.threads or _usable_cpus()
    log(f"STREAM array size: {reason}")

    compiler = cc.find_compiler()
    flags = cc.native_flags()
    build = cc.build_kernel(SOURCE_NAME, compiler, flags, cache_dir)
    if build.cached:
        log(f"reusing cached STREAM kernel {build.binary}")
    else:
        log(
            f"compiled STREAM kernel with {compiler.version} {' '.join(flags)} "
            f"in {build.compile_s:.2f} s"
        )

    plan = [("all", all_threads)]
    if options.single_thread:
        plan.append(("single", 1))
    runs: list[dict[str, Any]] = []
    raw: list[dict[str, Any]] = []
    run_s = 0.0
    for mode, threads in plan:
        log(f"STREAM {mode}: {threads} thread(s), {ntimes} trials of {elements} elements")
        data, duration = _execute(build.binary, elements, ntimes, threads)
        run_s += duration
        entry = summarise_run(data, mode, duration)
        for warning in data.get("warnings", []):
            log(f"STREAM {mode} warning: {warning}")
        if not entry["validation_passed"]:
            log(f"STREAM {mode} validation FAILED: {entry['validation_detail']}")
        rates = ", ".join(f"{k} {entry['kernels'][k]['best_gbps']:.2f}" for k in KERNELS)
        log(f"STREAM {mode} best GB/s: {rates}")
        runs.append(entry)
        raw.append(data)

    section = {
        "kernel_version": KERNEL_VERSION,
        "source_sha256": build.source_sha256,
        "array_size_reason": reason,
        "nontemporal_stores": "compiler-default",
        "huge_pages": _huge_pages_note(_thp_policy(), raw[0]),
        "runs": runs,
    }
    build_info = {
        "compiler": compiler.as_dict(),
        "cflags": list(flags),
        "binary_cached": build.cached,
        "openmp": omp_environment(all_threads),
        "compile_s": build.compile_s,
        "run_s": run_s,
    }
    return section, build_info


__all__ = [
    "ARRAY_GAP_ELEMENTS",
    "BYTES_PER_ELEMENT",
    "FLOOR_ELEMENTS",
    "KERNELS",
    "KERNEL_VERSION",
    "QUICK_ELEMENTS",
    "StreamOptions",
    "omp_environment",
    "parse_output",
    "plan_array_size",
    "run_stream",
    "summarise_run",
]
