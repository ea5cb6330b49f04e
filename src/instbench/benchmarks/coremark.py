"""Real EEMBC CoreMark, fetched at run time at a pinned commit and checked file by file.

CoreMark's source is not part of instbench (never committed here, never in agent.pyz).
On the machine, each file CoreMark needs is downloaded from
`{base_url}/{PINNED_COMMIT}/{path}` (by default raw.githubusercontent.com, i.e. the
public repository github.com/eembc/coremark at tag v1.01) and its sha256 compared with
`SOURCES` before anything is written to the build directory; one mismatch, a missing
file or any network error means CoreMark is not built at all, and the caller records why.

The build follows CoreMark's own Makefile for the linux64 port (which it selects on any
64-bit Linux, x86_64 and aarch64 alike): all sources in one compiler call, `-O2`,
`-DPERFORMANCE_RUN=1 -DITERATIONS=0` (CoreMark calibrates to at least 10 s), `-lrt`, and
`FLAGS_STR` set to the flags so the binary reports them; the all-threads build adds
`-DMULTITHREAD=N -DUSE_PTHREAD=1 -pthread`. The runs use the Makefile's parameters:
`0x0 0x0 0x66 0 7 1 2000` (2K performance run) and, outside quick mode, `0x3415 0x3415
0x66 0 7 1 2000` (2K validation run), as CoreMark's run rules require.

A run counts only if CoreMark itself says so: "Correct operation validated", no ERROR
line, at least 10 s, and for a performance run the "CoreMark 1.0 : <score> / ..." line.
Anything else yields no score.

Stdlib-only, Python 3.9 (shipped inside agent.pyz).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from instbench.benchmarks import compiler as cc
from instbench.benchmarks.errors import BenchmarkError

NAME = "coremark"
REPOSITORY = "https://github.com/eembc/coremark"
PINNED_TAG = "v1.01"
PINNED_COMMIT = "cfa9ab377835911f23d9b0831c7be302ed1f58de"
"""Commit of tag v1.01 of github.com/eembc/coremark."""
DEFAULT_BASE_URL = "https://raw.githubusercontent.com/eembc/coremark"
ENV_URL = "INSTBENCH_COREMARK_URL"
"""Base URL override (a test serves the files from 127.0.0.1); 'off' disables CoreMark."""
PORT_DIR = "linux64"

SOURCES: Dict[str, str] = {
    "core_list_join.c": "e6c82700c2e422dc23962bf838f7d1cd3558fe825095fe832beb63f2f8412b14",
    "core_main.c": "bafcc71c2cca06d7e15ac27e58e17f7f0bcb3c8c92404d9fa7039020de46091f",
    "core_matrix.c": "7b8c44ee71d3a1a66dbf15d711861762852a45d6ec0c3c8aca6b780742ce3507",
    "core_state.c": "74d5dfcdc2a2f4a9af5b1d6d0240d60522a24dbc55df20320e30d6d33ee79501",
    "core_util.c": "3c73f46d7ddc066f92a811aad511808395549f8d67d626612064ebc1b2477290",
    "coremark.h": "2da505dae03d07a259509a3b6dfde873cf5d64b120acba93236346f94eab0a9b",
    "linux64/core_portme.c": "6504e88c063b42bed248a86cb406835066b4069989530e974611ac16e57d6f41",
    "linux64/core_portme.h": "0923dcb8faf69b3d7680c7b41f1bf37544ea6995299275b9f0c431fdf977eff5",
}
"""Every file the linux64 build needs, with its sha256 at PINNED_COMMIT."""

C_FILES = (
    "core_list_join.c",
    "core_main.c",
    "core_matrix.c",
    "core_state.c",
    "core_util.c",
    "linux64/core_portme.c",
)
BASE_FLAGS = ("-O2", "-DPERFORMANCE_RUN=1", "-DITERATIONS=0")
LINK = ("-lrt",)
PERFORMANCE_ARGS = ("0x0", "0x0", "0x66", "0", "7", "1", "2000")
VALIDATION_ARGS = ("0x3415", "0x3415", "0x66", "0", "7", "1", "2000")
MIN_SECONDS = 10.0
"""CoreMark's run rule: a result counts only after at least 10 s of timed execution."""
RUN_TIMEOUT_S = 900.0
FETCH_TIMEOUT_S = 20.0
MAX_FILE_BYTES = 256 * 1024


class CoremarkUnavailable(Exception):
    """CoreMark could not be fetched, verified, built or validly run; the text says why."""


def _no_log(message: str) -> None:
    """Default logger: silent."""


def base_url(value: Optional[str], environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The base URL to fetch from: `value`, else $INSTBENCH_COREMARK_URL; None when off.

    'off' or 'none' (either place) disables CoreMark. Only http(s) URLs are accepted.
    """
    env = os.environ if environ is None else environ
    chosen = value if value is not None else env.get(ENV_URL)
    if chosen is None or chosen.strip().lower() in ("", "off", "none"):
        return None
    chosen = chosen.strip().rstrip("/")
    if not chosen.startswith(("http://", "https://")):
        raise BenchmarkError(f"CoreMark base URL must be http(s), got {chosen!r}")
    return chosen


# ------------------------------------------------------------------- fetching


def _get(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as resp:
            data: bytes = resp.read(MAX_FILE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise CoremarkUnavailable(f"fetching {url} failed: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CoremarkUnavailable(f"fetching {url} failed: {reason}") from None
    if len(data) > MAX_FILE_BYTES:
        raise CoremarkUnavailable(f"{url} is larger than {MAX_FILE_BYTES} bytes")
    return data


def fetch_sources(url: str, destination: Path) -> Dict[str, str]:
    """Download every file of SOURCES into `destination`, each checked against its sha256.

    Nothing is written until every file has been downloaded and verified, so a partial
    or tampered set never reaches the compiler.
    """
    fetched: Dict[str, bytes] = {}
    for path, expected in sorted(SOURCES.items()):
        data = _get(f"{url}/{PINNED_COMMIT}/{path}")
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected:
            raise CoremarkUnavailable(
                f"checksum mismatch for {path}: got sha256 {digest}, pinned {expected}; "
                "refusing to build"
            )
        fetched[path] = data
    for path, data in fetched.items():
        target = destination / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return dict(SOURCES)


# ------------------------------------------------------------------- building


def build_flags(threads: int) -> List[str]:
    """Flags of the single-thread build (threads 1) or the N-context pthread build."""
    flags = list(BASE_FLAGS)
    if threads > 1:
        flags += [f"-DMULTITHREAD={threads}", "-DUSE_PTHREAD=1", "-pthread"]
    return flags


def build_command(compiler: cc.Compiler, src: Path, output: Path, threads: int) -> List[str]:
    """The compiler call of CoreMark's Makefile (one call, all sources, port includes)."""
    flags = build_flags(threads)
    return [
        compiler.path,
        *flags,
        f"-I{src / PORT_DIR}",
        f"-I{src}",
        f'-DFLAGS_STR="{" ".join(flags)}"',
        *[str(src / name) for name in C_FILES],
        "-o",
        str(output),
        *LINK,
    ]


def build(compiler: cc.Compiler, src: Path, output: Path, threads: int) -> float:
    """Compile CoreMark; seconds spent. CoremarkUnavailable with the compiler's last lines."""
    started = time.monotonic()
    try:
        failed = cc.run_compile(compiler, build_command(compiler, src, output, threads), output)
    except BenchmarkError as exc:
        raise CoremarkUnavailable(str(exc)) from None
    if failed is not None:
        raise CoremarkUnavailable(f"building CoreMark failed: {cc.stderr_tail(failed, 3)}")
    return time.monotonic() - started


# -------------------------------------------------------------------- parsing

_FIELD = re.compile(r"^([A-Za-z/ ()]+?)\s*:\s*(.*)$")
_SCORE = re.compile(r"^CoreMark 1\.0 : ([0-9.]+) / (.*)$")
_PARALLEL = re.compile(r"^Parallel (\S+) : (\d+)$")


def parse_output(text: str) -> Dict[str, Any]:
    """Read a CoreMark run's output.

    Returns run kind ('performance', 'validation' or 'unknown'), the figures CoreMark
    prints, `valid` and, only for a valid performance run, `score` (otherwise None), and
    `errors`: CoreMark's own error lines plus any rule this parser enforces (10 s).
    """
    out: Dict[str, Any] = {
        "kind": "unknown",
        "valid": False,
        "score": None,
        "iterations_per_s": None,
        "iterations": None,
        "total_time_s": None,
        "compiler_version": None,
        "compiler_flags": None,
        "contexts": 1,
        "parallel_method": None,
        "report_line": None,
        "errors": [],
    }
    validated = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("2K performance run parameters"):
            out["kind"] = "performance"
        elif line.startswith("2K validation run parameters"):
            out["kind"] = "validation"
        elif line.startswith("Correct operation validated"):
            validated = True
        elif "ERROR" in line or line.startswith(("Errors detected", "Cannot validate")):
            out["errors"].append(line)
        elif _SCORE.match(line):
            m = _SCORE.match(line)
            assert m is not None
            out["report_line"] = line
            out["score"] = float(m.group(1))
        elif _PARALLEL.match(line):
            m = _PARALLEL.match(line)
            assert m is not None
            out["parallel_method"], out["contexts"] = m.group(1), int(m.group(2))
        else:
            m = _FIELD.match(line)
            if not m:
                continue
            key, value = m.group(1).strip(), m.group(2).strip()
            try:
                if key == "Iterations/Sec":
                    out["iterations_per_s"] = float(value)
                elif key == "Iterations":
                    out["iterations"] = int(value)
                elif key == "Total time (secs)":
                    out["total_time_s"] = float(value)
            except ValueError:
                out["errors"].append(f"unreadable {key}: {value!r}")
            if key == "Compiler version":
                out["compiler_version"] = value
            elif key == "Compiler flags":
                out["compiler_flags"] = value
    seconds = out["total_time_s"]
    if seconds is None or seconds < MIN_SECONDS:
        out["errors"].append(f"ran {seconds} s; CoreMark needs at least {MIN_SECONDS:g} s")
    if out["kind"] == "unknown":
        out["errors"].append("not a CoreMark 2K performance or validation run")
    if not validated:
        out["errors"].append("CoreMark did not print 'Correct operation validated'")
    if out["kind"] == "performance" and out["score"] is None:
        out["errors"].append("no 'CoreMark 1.0 :' score line")
    out["valid"] = not out["errors"]
    if not out["valid"] or out["kind"] != "performance":
        out["score"] = None
    return out


# -------------------------------------------------------------------- running


def _run(binary: Path, args: Tuple[str, ...]) -> Dict[str, Any]:
    proc, _ = cc.run_binary(
        [str(binary), *args], RUN_TIMEOUT_S, "CoreMark", error=CoremarkUnavailable
    )
    parsed = parse_output(proc.stdout)
    if proc.returncode != 0:
        parsed["errors"].append(f"exit status {proc.returncode}")
        parsed["valid"], parsed["score"] = False, None
    return parsed


def _summary(run: Dict[str, Any], threads: int) -> Dict[str, Any]:
    return {
        "threads": threads,
        "score": run["score"],
        "iterations": run["iterations"],
        "total_time_s": run["total_time_s"],
        "compiler_version": run["compiler_version"],
        "compiler_flags": run["compiler_flags"],
        "parallel_method": run["parallel_method"],
        "report_line": run["report_line"],
    }


@dataclass
class CoremarkOutcome:
    """The `coremark` section (None when CoreMark did not produce a valid score) and why."""

    section: Optional[Dict[str, Any]]
    note: Optional[str]
    compile_s: float = 0.0


def measure(
    compiler: cc.Compiler,
    url: Optional[str],
    threads: int,
    physical_cores: int,
    max_mhz: Optional[float],
    quick: bool,
    log: Callable[[str], None] = _no_log,
) -> CoremarkOutcome:
    """Fetch, verify, build and run CoreMark; never raises for an unavailable CoreMark.

    `url` None means fetching is off (local and sandbox runs unless asked): the note says
    so and nothing touches the network.
    """
    if url is None:
        return CoremarkOutcome(
            None,
            f"not fetched: no source URL (set {ENV_URL} or agent --coremark-url; "
            "EC2 runs use the pinned GitHub URL)",
        )
    compile_s = 0.0
    work = Path(tempfile.mkdtemp(prefix="instbench-coremark-"))
    try:
        log(f"cpu: fetching CoreMark {PINNED_TAG} ({PINNED_COMMIT[:12]}) from {url}")
        src = work / "src"
        files = fetch_sources(url, src)
        binaries = {}
        for n in sorted({1, threads}):
            binary = work / f"coremark-{n}"
            compile_s += build(compiler, src, binary, n)
            binaries[n] = binary
        log("cpu: CoreMark single-thread performance run (at least 10 s)")
        single = _run(binaries[1], PERFORMANCE_ARGS)
        if threads > 1:
            log(f"cpu: CoreMark {threads}-thread performance run")
            multi = _run(binaries[threads], PERFORMANCE_ARGS)
        else:
            multi = single
        validation = None
        if not quick:
            log("cpu: CoreMark validation run")
            validation = _run(binaries[1], VALIDATION_ARGS)
        for label, run, kind in (
            ("single-thread", single, "performance"),
            ("all-threads", multi, "performance"),
            ("validation", validation, "validation"),
        ):
            if run is None:
                continue
            if run["kind"] != kind or not run["valid"]:
                problems = "; ".join(run["errors"]) or f"not a {kind} run"
                raise CoremarkUnavailable(f"CoreMark {label} run is not valid: {problems}")
        s1, sn = float(single["score"]), float(multi["score"])
        section = {
            "name": NAME,
            "version": "1.0",
            "repository": REPOSITORY,
            "tag": PINNED_TAG,
            "commit": PINNED_COMMIT,
            "base_url": url,
            "files_sha256": files,
            "port": PORT_DIR,
            "compiler": compiler.as_dict(),
            "cflags": build_flags(1),
            "all_threads_cflags": build_flags(threads),
            "threads": threads,
            "physical_cores": physical_cores,
            "single_thread": _summary(single, 1),
            "all_threads": _summary(multi, threads),
            "validation_run": None if validation is None else {"valid": validation["valid"]},
            "single_thread_score": s1,
            "all_threads_score": sn,
            "scaling": sn / s1,
            "smt_yield": sn / max(1, min(physical_cores, threads)) / s1,
            "mhz": max_mhz,
            "single_thread_score_per_mhz": s1 / max_mhz if max_mhz else None,
            "all_threads_score_per_mhz": sn / max_mhz if max_mhz else None,
        }
        log(f"cpu: CoreMark {s1:.1f} one thread, {sn:.1f} with {threads} threads")
        return CoremarkOutcome(section, None, compile_s)
    except CoremarkUnavailable as exc:
        log(f"cpu: CoreMark not run: {exc}")
        return CoremarkOutcome(None, str(exc), compile_s)
    finally:
        shutil.rmtree(str(work), ignore_errors=True)


__all__ = [
    "DEFAULT_BASE_URL",
    "ENV_URL",
    "PINNED_COMMIT",
    "PINNED_TAG",
    "SOURCES",
    "CoremarkOutcome",
    "CoremarkUnavailable",
    "base_url",
    "build_command",
    "build_flags",
    "fetch_sources",
    "measure",
    "parse_output",
]
