"""CPU: integer throughput (instbench-int), OpenSSL crypto rates, vector FLOPS per extension.

Assembles `performance_data.cpu` (`CpuResult` in instbench/results/schema.py).

* CoreMark (coremark.py): the real EEMBC CoreMark, fetched at run time at a pinned
  commit, every file checked against its pinned sha256, built with the machine's compiler
  and run single-thread and all-threads; published as `coremark` with score per MHz. It
  is fetched only when a source URL is configured (`CpuOptions.coremark_url`, else
  $INSTBENCH_COREMARK_URL; the agent sets the pinned GitHub URL on EC2), so local,
  sandbox and test runs never touch the network unless asked. When it cannot be
  fetched, verified, built or validly run, `coremark` is null and `coremark_note` says
  why.
* Integer score of our own, always measured (it is the one figure every collection
  method, the offline sandbox included, can produce): kernels/cpu_int.c, published as
  `instbench-int` and never as CoreMark: list processing, a small integer matrix
  product, a number-format state machine and CRC-32, validated by the CRC of a fixed
  set of iterations (EXPECTED_CHECKSUM) on every thread. Scores are iterations per second.
* Single-thread and all-threads runs (one OpenMP thread per CPU the agent may use):
  scaling = all / single; parallel efficiency = all / (single x threads); SMT yield =
  (all / physical cores) / single, i.e. what one whole core with all its hardware threads
  delivers relative to one thread alone (about 1 without SMT; above 1 when SMT helps).
* SMT efficiency = all-threads score / the score of one thread per physical core (a third
  run, OMP_PLACES=cores OMP_PROC_BIND=spread): what the SMT siblings add to whole cores,
  the figure ComputeCompass shows as `scaling.smtEfficiency`. Without SMT (one thread
  per core) the per-core run is the all-threads run, so the figure is exactly 1.0 by
  definition, not measured; with SMT but fewer threads than CPUs (--threads) it is not
  measured (None).
* OpenSSL: `openssl speed -mr -seconds 1 -evp aes-256-gcm` and `-evp sha256` where the
  `openssl` command exists (quick mode: one 16 KiB block size); bytes per second as
  OpenSSL reports them (it divides by the CPU time of the process).
* Vector extensions: what the CPU flags offer (sse2, avx, avx2, avx512f, neon, sve), and
  for each one the measured DP multiply-add rate of kernels/vecflops.c compiled for that
  extension (VECTOR_FLAGS), single thread and all threads. SVE is built with
  `-march=armv8-a+sve` and the kernel's ACLE path (vector-length agnostic: the width is
  read at run time, 256 bits on Graviton3, 128 on Graviton4). Every run checks each
  lane against the closed form of its recurrence. An extension whose kernel the machine's
  compiler cannot build (an old gcc without SVE support) is left unmeasured, with the
  compiler's reason in `vector.note`, rather than failing the benchmark.

Stdlib-only, Python 3.9 (shipped inside agent.pyz).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from instbench.agent import sysinfo
from instbench.benchmarks import compiler as cc
from instbench.benchmarks import coremark, isa
from instbench.benchmarks.errors import BenchmarkError, BenchmarkInputError, ToolchainMissing

KERNEL_VERSION = "1.0.0"
"""Version of kernels/cpu_int.c and kernels/vecflops.c (checked when parsing)."""

INT_SOURCE = "cpu_int.c"
VEC_SOURCE = "vecflops.c"
INT_NAME = "instbench-int"
EXPECTED_CHECKSUM = 3382005136
"""CRC of iterations 0..255 of instbench-int: any correct build on any machine gets it."""

DURATION_MS = 3000.0
QUICK_DURATION_MS = 300.0
VEC_MS = 500.0
QUICK_VEC_MS = 100.0
OPENSSL_ALGORITHMS = ("aes-256-gcm", "sha256")
QUICK_OPENSSL_BYTES = 16384

VECTOR_FLAGS: Dict[str, List[str]] = {
    "sse2": ["-O2", "-msse2", "-mno-avx", "-DVEC_BYTES=16"],
    "avx": ["-O2", "-mavx", "-mno-fma", "-DVEC_BYTES=32"],
    "avx2": ["-O2", "-mavx2", "-mfma", "-DVEC_BYTES=32"],
    "avx512f": ["-O2", "-mavx512f", "-mfma", "-mprefer-vector-width=512", "-DVEC_BYTES=64"],
    "neon": ["-O2", "-DVEC_BYTES=16"],
    "sve": ["-O2", "-march=armv8-a+sve", "-DVEC_SVE=1"],
}
"""Flags that target each extension (plus -fopenmp). SVE: -march=armv8-a+sve enables the
ACLE (arm_sve.h, gcc >= 10, clang >= 11) without tying the binary to one core, and
VEC_SVE selects the kernel's vector-length-agnostic path (VEC_BYTES is read at run time)."""


def _no_log(message: str) -> None:
    """Default logger: silent."""


@dataclass
class CpuOptions:
    """What the user asked for. None means "choose"."""

    quick: bool = False
    duration_ms: Optional[float] = None
    threads: Optional[int] = None
    openssl: bool = True
    vector: bool = True
    coremark_url: Optional[str] = None
    """Base URL of the pinned CoreMark sources; None: $INSTBENCH_COREMARK_URL, else off."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise BenchmarkInputError on values no run could honour."""
        if self.coremark_url is not None:
            try:
                coremark.base_url(self.coremark_url, {})
            except BenchmarkError as exc:
                raise BenchmarkInputError(str(exc)) from None
        if self.duration_ms is not None and not 10.0 <= self.duration_ms <= 600000.0:
            raise BenchmarkInputError(f"duration_ms must be 10..600000, got {self.duration_ms}")
        if self.threads is not None and not 1 <= self.threads <= 4096:
            raise BenchmarkInputError(f"threads must be 1..4096, got {self.threads}")


# ---------------------------------------------------------------------- parsing


def _json_line(text: str, program: str) -> Dict[str, Any]:
    try:
        data = json.loads(text.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BenchmarkError(f"unreadable {program} output: {text[:200]!r}") from None
    if not isinstance(data, dict) or data.get("program") != program:
        raise BenchmarkError(f"output is not from {program}")
    if data.get("kernel_version") != KERNEL_VERSION:
        raise BenchmarkError(f"{program} version {data.get('kernel_version')!r}")
    return data


def parse_int_output(text: str) -> Dict[str, Any]:
    """instbench-int's JSON, with `checksum_ok` (every thread got EXPECTED_CHECKSUM)."""
    data = _json_line(text, INT_NAME)
    checks = [int(c) for c in data.get("checksums", [])]
    if not checks or not data.get("score", 0) > 0:
        raise BenchmarkError("instbench-int reported no checksum or no score")
    data["checksum_ok"] = all(c == EXPECTED_CHECKSUM for c in checks)
    return data


def parse_vec_output(text: str) -> Dict[str, Any]:
    """vecflops' JSON: gflops > 0 and every lane's value matching its closed form.

    A failed check means the kernel computed something other than what it counted (a
    miscompiled or mis-predicated vector path), so the rate would be meaningless.
    """
    data = _json_line(text, "instbench-vecflops")
    if not data.get("gflops", 0) > 0:
        raise BenchmarkError("vecflops reported no rate")
    if data.get("check_ok") is not True or not int(data.get("lanes_checked", 0)) > 0:
        raise BenchmarkError(
            f"vecflops check failed ({data.get('lanes_checked', 0)} lanes checked): "
            "miscompiled kernel or faulty CPU"
        )
    return data


def vector_plan(offered: Sequence[str]) -> Tuple[List[str], List[str]]:
    """(extensions to measure, extensions offered that no kernel targets), in order."""
    return (
        [e for e in offered if e in VECTOR_FLAGS],
        [e for e in offered if e not in VECTOR_FLAGS],
    )


_MR_LINE = re.compile(r"^\+([A-Z]+):(.*)$")


def parse_openssl_speed(text: str) -> Dict[str, Dict[int, float]]:
    """`openssl speed -mr` output -> {algorithm: {block bytes: bytes per second}}.

    `+H:16:64:...` gives the block sizes of the following `+F:<n>:<name>:<v>:...` rows;
    `+F2`/`+F3`... lines (signatures, key exchange) are ignored.
    """
    sizes: List[int] = []
    out: Dict[str, Dict[int, float]] = {}
    for raw in text.splitlines():
        m = _MR_LINE.match(raw.strip())
        if not m:
            continue
        kind, rest = m.groups()
        fields = rest.split(":")
        if kind == "H":
            try:
                sizes = [int(f) for f in fields if f]
            except ValueError:
                sizes = []
        elif kind == "F" and len(fields) >= 3 and sizes:
            name = fields[1].lower()
            try:
                values = [float(f) for f in fields[2:] if f]
            except ValueError:
                continue
            out[name] = {s: v for s, v in zip(sizes, values) if v > 0}
    return {k: v for k, v in out.items() if v}


def openssl_command(algorithm: str, quick: bool) -> List[str]:
    """The `openssl speed` command for one algorithm."""
    cmd = ["openssl", "speed", "-mr", "-seconds", "1"]
    if quick:
        cmd += ["-bytes", str(QUICK_OPENSSL_BYTES)]
    return [*cmd, "-evp", algorithm]


def _run(
    cmd: Sequence[str], timeout: float, what: str, env: Optional[Dict[str, str]] = None
) -> str:
    proc, _ = cc.run_binary(cmd, timeout, what, None if env is None else {**os.environ, **env})
    if proc.returncode != 0:
        raise BenchmarkError(cc.exit_failure(proc, what))
    return proc.stdout


def run_openssl(quick: bool, log: Callable[[str], None]) -> Optional[Dict[str, Any]]:
    """OpenSSL rates, or None when there is no `openssl` command."""
    exe = shutil.which("openssl")
    if exe is None:
        log("cpu: no openssl command, crypto rates skipped")
        return None
    version = _run([exe, "version"], 30, "openssl version").strip()
    rates: Dict[str, Dict[str, float]] = {}
    for algorithm in OPENSSL_ALGORITHMS:
        cmd = openssl_command(algorithm, quick)
        cmd[0] = exe
        parsed = parse_openssl_speed(_run(cmd, 120, f"openssl speed {algorithm}"))
        if algorithm not in parsed:
            raise BenchmarkError(f"openssl speed printed no {algorithm} rate")
        rates[algorithm] = {str(k): v for k, v in sorted(parsed[algorithm].items())}
        best = max(parsed[algorithm].values())
        log(f"cpu openssl {algorithm}: {best / 1e9:.2f} GB/s (largest block)")
    return {
        "version": version,
        "seconds_per_size": 1,
        "aes_256_gcm_bytes_per_s": rates["aes-256-gcm"],
        "sha256_bytes_per_s": rates["sha256"],
    }


# ---------------------------------------------------------------------- running


def _allowed_cpus() -> int:
    getter = getattr(os, "sched_getaffinity", None)
    return len(getter(0)) if getter is not None else (os.cpu_count() or 1)


def integer_summary(
    single: float, multi: float, threads: int, physical_cores: int
) -> Dict[str, float]:
    """Scaling figures of the integer scores (definitions in the module docstring)."""
    return {
        "scaling": multi / single,
        "parallel_efficiency": multi / (single * threads),
        "score_per_physical_core": multi / physical_cores,
        "score_per_logical_cpu": multi / threads,
        "smt_yield": multi / physical_cores / single,
    }


ONE_THREAD_PER_CORE = {"OMP_PLACES": "cores", "OMP_PROC_BIND": "spread"}
"""OpenMP placement of the per-core run: each thread on its own physical core."""


def smt_efficiency(
    all_threads: float, per_core: Optional[float], threads: int, physical: int, smt: bool
) -> Optional[float]:
    """all_threads / per_core score; 1.0 exactly without SMT; None when not measured.

    Without SMT every CPU is a core: the run with one thread per core is the all-threads
    run, so the ratio is 1 by definition. With SMT it needs the per-core run, which is
    only meaningful when the all-threads run used more threads than there are cores.
    """
    if not smt:
        return 1.0
    if per_core is None or threads <= physical:
        return None
    return all_threads / per_core


def _run_int(
    binary: Path, threads: int, ms: float, env: Optional[Dict[str, str]] = None
) -> Dict[str, Any]:
    argv = [str(binary), f"threads={threads}", f"ms={ms:g}"]
    data = parse_int_output(_run(argv, 60 + ms / 100, INT_NAME, env))
    if not data["checksum_ok"]:
        raise BenchmarkError(
            f"instbench-int checksum {data['checksums']} != {EXPECTED_CHECKSUM}: miscompiled "
            "kernel or faulty CPU"
        )
    return data


def measure_vector(
    extensions: Sequence[str],
    compiler: cc.Compiler,
    cache_dir: Path,
    threads: int,
    ms: float,
    log: Callable[[str], None],
) -> Tuple[List[Dict[str, Any]], float, Dict[str, str]]:
    """DP multiply-add GFLOPS per extension (single thread and all threads).

    Returns (measured rates, compile seconds, {extension: why it was not built}). A build
    failure of one extension's kernel is recorded, not raised (the compiler may predate
    the extension); a missing toolchain and run failures still raise.
    """
    measured: List[Dict[str, Any]] = []
    unbuilt: Dict[str, str] = {}
    compile_s = 0.0
    for ext in extensions:
        flags = VECTOR_FLAGS.get(ext)
        if flags is None:
            continue
        try:
            built = cc.build_kernel(VEC_SOURCE, compiler, [*flags, "-fopenmp"], cache_dir)
        except ToolchainMissing:
            raise
        except BenchmarkError as exc:
            unbuilt[ext] = str(exc)
            log(f"cpu vector {ext}: not measured, {exc}")
            continue
        compile_s += built.compile_s
        rates = {}
        for label, n in (("single_thread_gflops", 1), ("all_threads_gflops", threads)):
            out = _run([str(built.binary), f"threads={n}", f"ms={ms:g}"], 60, "vecflops")
            rates[label] = float(parse_vec_output(out)["gflops"])
        log(
            f"cpu vector {ext}: {rates['single_thread_gflops']:.1f} GFLOPS one thread, "
            f"{rates['all_threads_gflops']:.1f} all"
        )
        measured.append({"extension": ext, "cflags": [*flags, "-fopenmp"], **rates})
    return measured, compile_s, unbuilt


def vector_note(unsupported: Sequence[str], unbuilt: Dict[str, str]) -> str:
    """`vector.note`: which offered extensions were not measured, and why."""
    parts = []
    if unsupported:
        parts.append(f"no kernel targets {', '.join(unsupported)} yet")
    for ext, why in unbuilt.items():
        parts.append(f"{ext} not measured: {why}")
    return "; ".join(parts)


def run_cpu(
    options: CpuOptions, *, cache_dir: Path, log: Callable[[str], None] = _no_log
) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Run the CPU benchmark on this machine: (cpu section of the result, build info)."""
    options.validate()
    compiler = cc.find_compiler()
    flags = cc.native_flags()
    built = cc.build_kernel(INT_SOURCE, compiler, flags, cache_dir)
    compile_s = built.compile_s
    started = time.monotonic()
    cpu = sysinfo.collect().get("cpu", {})
    physical = int(cpu.get("sockets") or 1) * int(cpu.get("cores_per_socket") or 1)
    threads = options.threads or _allowed_cpus()
    ms = options.duration_ms or (QUICK_DURATION_MS if options.quick else DURATION_MS)

    single = _run_int(built.binary, 1, ms)
    multi = _run_int(built.binary, threads, ms)
    s1, sn = float(single["score"]), float(multi["score"])
    smt = int(cpu.get("threads_per_core") or 1) > 1
    per_core: Optional[float] = None
    if smt and threads > physical:
        per_core = float(_run_int(built.binary, physical, ms, ONE_THREAD_PER_CORE)["score"])
        log(f"cpu {INT_NAME}: {per_core:.0f} it/s one thread per core ({physical} threads)")
    summary = integer_summary(s1, sn, threads, min(physical, threads))
    log(
        f"cpu {INT_NAME}: {s1:.0f} it/s one thread, {sn:.0f} it/s {threads} threads "
        f"(scaling {summary['scaling']:.2f})"
    )
    integer = {
        "name": INT_NAME,
        "kernel_version": KERNEL_VERSION,
        "source_sha256": built.source_sha256,
        "checksum": EXPECTED_CHECKSUM,
        "checksum_ok": True,
        "duration_ms": ms,
        "threads": threads,
        "physical_cores": physical,
        "single_thread_score": s1,
        "all_threads_score": sn,
        **summary,
        "per_core_score": per_core,
        "smt_efficiency": smt_efficiency(sn, per_core, threads, physical, smt),
    }

    try:
        url = coremark.base_url(options.coremark_url)
    except BenchmarkError as exc:
        raise BenchmarkInputError(str(exc)) from None
    max_mhz = cpu.get("max_mhz")
    real = coremark.measure(
        compiler,
        url,
        threads,
        min(physical, threads),
        float(max_mhz) if max_mhz else None,
        options.quick,
        log,
    )
    compile_s += real.compile_s

    crypto = run_openssl(options.quick, log) if options.openssl else None
    flags_offered = isa.offered(cpu.get("flags") or [])
    vector: Dict[str, Any] = {"offered": flags_offered, "measured": [], "note": ""}
    if options.vector:
        targeted, unsupported = vector_plan(flags_offered)
        measured, extra, unbuilt = measure_vector(
            targeted,
            compiler,
            cache_dir,
            threads,
            QUICK_VEC_MS if options.quick else VEC_MS,
            log,
        )
        compile_s += extra
        vector["measured"] = measured
        vector["note"] = vector_note(unsupported, unbuilt)
    else:
        vector["note"] = "vector measurement disabled"

    section = {
        "kernel_version": KERNEL_VERSION,
        "cflags": list(flags),
        "integer": integer,
        "coremark": real.section,
        "coremark_note": real.note,
        "openssl": crypto,
        "vector": vector,
    }
    build_info = {
        "compiler": compiler.as_dict(),
        "cflags": list(flags),
        "binary_cached": built.cached,
        "openmp": {},
        "compile_s": compile_s,
        "run_s": time.monotonic() - started,
    }
    return section, build_info


__all__ = [
    "EXPECTED_CHECKSUM",
    "INT_NAME",
    "KERNEL_VERSION",
    "VECTOR_FLAGS",
    "CpuOptions",
    "integer_summary",
    "openssl_command",
    "parse_int_output",
    "parse_openssl_speed",
    "parse_vec_output",
    "run_cpu",
    "smt_efficiency",
    "vector_note",
    "vector_plan",
]
