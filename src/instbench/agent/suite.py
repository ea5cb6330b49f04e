"""User-defined suites on the machine: check the suite artifact, run its commands, parse.

The controller validates a suite TOML file with pydantic (instbench/suites.py) and ships
the result as a JSON artifact (`FORMAT`): a file for `run --local`, an object fetched by
presigned GET on an instance, never text inside the user data. This module is the agent
side. It imports only the standard library (Python 3.9), so it checks the artifact again
itself with the same rules (the constants below are the single definition both sides
use): nothing the agent runs has skipped validation, whatever path the JSON came by.

How a benchmark runs:

* Without a shell. `command` is an argv list passed to exec as it is, so `;`, `|`, `$(...)`
  or `*` in an argument are literal characters. Only `shell = true` runs the single
  element of `command` with `/bin/sh -c`, and the suite must say so explicitly.
* In its own session (process group), in an empty scratch directory, stdin closed,
  stdout and stderr written to files (not pipes: a background child holding a pipe
  open cannot hang the agent). On timeout the whole group gets SIGTERM, then SIGKILL
  after a grace period; leftover group members are killed after a normal exit too.
* `repeats` times; each repeat's value is parsed (JSON path or regex named group) and
  kept, and the reported value is their median. A benchmark whose command fails, times
  out or prints nothing parseable is recorded as failed with the reason and no value:
  the other benchmarks still run, and a suite where every benchmark failed is an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from instbench.benchmarks.errors import BenchmarkError, BenchmarkInputError

FORMAT = "instbench-suite/1"
"""`format` of the JSON artifact the controller writes and the agent reads."""

SUITE_NAME = r"^[a-z][a-z0-9_-]{0,63}$"
"""Suite names: they end up in result keys and file names, so key-safe."""
BENCHMARK_NAME = r"^[a-z][a-z0-9_]{0,63}$"
"""Benchmark names inside a suite (JSON keys, metric names)."""
VERSION = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,31}$"
COMMAND_NAME = r"^[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}$"
"""A required command: a bare name looked up on PATH (no '/', no spaces)."""
PACKAGE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._+:-]{0,127}$"
JSON_PATH = r"^[^.\s]+(\.[^.\s]+)*$"
"""Dotted path into the JSON output; a segment of digits indexes a list (`runs.0.ops`)."""
GROUP_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"

MAX_BENCHMARKS = 64
MAX_ARGS = 256
MAX_ARG_CHARS = 8192
MAX_TIMEOUT_S = 3600.0
MIN_TIMEOUT_S = 1.0
MAX_REPEATS = 100
MAX_TOTAL_S = 24 * 3600.0
"""Worst case of a whole suite (every repeat at its timeout): the fleet's longest task."""
MAX_TEXT = 200
MAX_UNIT = 32
MAX_REQUIREMENTS = 64
MAX_OUTPUT_BYTES = 16 * 1024 * 1024
"""Output larger than this is not parsed (the benchmark is recorded as failed)."""
MAX_ARTIFACT_BYTES = 1024 * 1024
KILL_GRACE_S = 2.0

PARSE_KINDS = ("json", "regex")
SOURCES = ("stdout", "stderr")
MATCHES = ("first", "last")

_FORBIDDEN_CHARS = ("\x00", "\n", "\r")


class SuiteError(BenchmarkInputError):
    """The suite artifact is malformed or its requirements are not met (exit 2)."""


# ------------------------------------------------------------------- the suite


@dataclass(frozen=True)
class ParseSpec:
    """How a value is read from a command's output."""

    kind: str
    """'json' or 'regex'."""
    source: str = "stdout"
    path: Optional[str] = None
    """kind json: dotted path to a number."""
    pattern: Optional[str] = None
    """kind regex: Python regular expression with the named group `group`."""
    group: str = "value"
    match: str = "first"
    """kind regex: which match counts when there are several."""

    def as_dict(self) -> Dict[str, Any]:
        """JSON-ready form (also the form recorded in the result)."""
        out: Dict[str, Any] = {"kind": self.kind, "source": self.source}
        if self.kind == "json":
            out["path"] = self.path
        else:
            out.update(pattern=self.pattern, group=self.group, match=self.match)
        return out


@dataclass(frozen=True)
class Requirements:
    """Commands that must be on PATH and packages that must be installed."""

    commands: Tuple[str, ...] = ()
    packages: Tuple[str, ...] = ()

    def as_dict(self) -> Dict[str, List[str]]:
        """JSON-ready form."""
        return {"commands": list(self.commands), "packages": list(self.packages)}


@dataclass(frozen=True)
class SuiteBenchmark:
    """One measured command of a suite."""

    name: str
    command: Tuple[str, ...]
    parse: ParseSpec
    unit: str
    higher_is_better: bool
    timeout_s: float
    repeats: int
    shell: bool = False
    description: str = ""
    requirements: Requirements = field(default_factory=Requirements)

    def argv(self) -> List[str]:
        """What is executed: the argv itself, or /bin/sh -c SCRIPT when shell is true."""
        if self.shell:
            return ["/bin/sh", "-c", self.command[0]]
        return list(self.command)


@dataclass(frozen=True)
class Suite:
    """A validated suite, as the agent runs it."""

    name: str
    version: str
    benchmarks: Tuple[SuiteBenchmark, ...]
    description: str = ""
    requirements: Requirements = field(default_factory=Requirements)
    source_sha256: str = ""
    """sha256 of the TOML file the user wrote (computed by the controller)."""
    artifact_sha256: str = ""
    """sha256 of the JSON artifact bytes the agent read."""


# ----------------------------------------------------------------- validation


def _fail(where: str, message: str) -> SuiteError:
    return SuiteError(f"suite: {where}: {message}" if where else f"suite: {message}")


def _keys(obj: Any, where: str, required: Sequence[str], optional: Sequence[str]) -> None:
    if not isinstance(obj, dict):
        raise _fail(where, "must be a table")
    unknown = sorted(set(obj) - set(required) - set(optional))
    if unknown:
        raise _fail(where, f"unknown key {unknown[0]!r}")
    missing = [k for k in required if k not in obj]
    if missing:
        raise _fail(where, f"missing key {missing[0]!r}")


def _text(value: Any, where: str, pattern: Optional[str] = None, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise _fail(where, "must be a string")
    if any(c in value for c in _FORBIDDEN_CHARS):
        raise _fail(where, "must not contain NUL or newline characters")
    if len(value) > limit:
        raise _fail(where, f"longer than {limit} characters")
    if pattern is not None and not re.match(pattern, value):
        raise _fail(where, f"{value!r} does not match {pattern}")
    return value


def _number(value: Any, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(where, "must be a number")
    if not math.isfinite(value) or not low <= value <= high:
        raise _fail(where, f"must be between {low:g} and {high:g}, got {value}")
    return float(value)


def _names(value: Any, where: str, pattern: str) -> Tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_REQUIREMENTS:
        raise _fail(where, f"must be a list of at most {MAX_REQUIREMENTS} names")
    items = tuple(_text(v, f"{where}[{i}]", pattern) for i, v in enumerate(value))
    if len(set(items)) != len(items):
        raise _fail(where, "lists a name twice")
    return items


def _requirements(obj: Any, where: str) -> Requirements:
    if obj is None:
        return Requirements()
    _keys(obj, where, (), ("commands", "packages"))
    return Requirements(
        commands=_names(obj.get("commands", []), f"{where}.commands", COMMAND_NAME),
        packages=_names(obj.get("packages", []), f"{where}.packages", PACKAGE_NAME),
    )


def check_regex(pattern: str, group: str) -> Optional[str]:
    """Why `pattern` cannot be used with `group` (None when it can)."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        return f"regex does not compile: {exc}"
    if group not in compiled.groupindex:
        return f"regex has no named group (?P<{group}>...)"
    return None


def _parse_spec(obj: Any, where: str) -> ParseSpec:
    if not isinstance(obj, dict) or obj.get("kind") not in PARSE_KINDS:
        raise _fail(f"{where}.kind", f"must be one of {', '.join(PARSE_KINDS)}")
    if obj["kind"] == "json":
        _keys(obj, where, ("kind", "path"), ("source",))
        path = _text(obj["path"], f"{where}.path", JSON_PATH)
        spec = ParseSpec(kind="json", path=path, source=obj.get("source", "stdout"))
    else:
        _keys(obj, where, ("kind", "pattern"), ("group", "match", "source"))
        pattern = _text(obj["pattern"], f"{where}.pattern", limit=1000)
        group = _text(obj.get("group", "value"), f"{where}.group", GROUP_NAME)
        problem = check_regex(pattern, group)
        if problem:
            raise _fail(f"{where}.pattern", problem)
        match = obj.get("match", "first")
        if match not in MATCHES:
            raise _fail(f"{where}.match", f"must be one of {', '.join(MATCHES)}")
        spec = ParseSpec(
            kind="regex",
            pattern=pattern,
            group=group,
            match=match,
            source=obj.get("source", "stdout"),
        )
    if spec.source not in SOURCES:
        raise _fail(f"{where}.source", f"must be one of {', '.join(SOURCES)}")
    return spec


def check_command(command: Any, shell: bool, where: str) -> Tuple[str, ...]:
    """The argv as a tuple, or SuiteError: the rules that keep commands unambiguous."""
    if not isinstance(command, list) or not 1 <= len(command) <= MAX_ARGS:
        raise _fail(where, f"must be a list of 1 to {MAX_ARGS} strings")
    argv = tuple(_text(arg, f"{where}[{i}]", limit=MAX_ARG_CHARS) for i, arg in enumerate(command))
    if not argv[0].strip():
        raise _fail(f"{where}[0]", "the program must not be empty")
    if shell and len(argv) != 1:
        raise _fail(where, "with shell = true, command is one string: the shell script")
    if not shell and "/" in argv[0] and not argv[0].startswith("/"):
        raise _fail(
            f"{where}[0]",
            "a relative path does not work (commands run in a scratch directory): "
            "use a name on PATH or an absolute path",
        )
    return argv


def _benchmark(obj: Any, where: str) -> SuiteBenchmark:
    _keys(
        obj,
        where,
        ("name", "command", "parse", "unit", "higher_is_better"),
        ("shell", "timeout_s", "repeats", "description", "requirements"),
    )
    name = _text(obj["name"], f"{where}.name", BENCHMARK_NAME)
    shell = obj.get("shell", False)
    if not isinstance(shell, bool):
        raise _fail(f"{where}.shell", "must be true or false")
    higher = obj["higher_is_better"]
    if not isinstance(higher, bool):
        raise _fail(f"{where}.higher_is_better", "must be true or false")
    repeats = obj.get("repeats", 3)
    if isinstance(repeats, bool) or not isinstance(repeats, int):
        raise _fail(f"{where}.repeats", "must be an integer")
    _number(repeats, f"{where}.repeats", 1, MAX_REPEATS)
    unit = _text(obj["unit"], f"{where}.unit", limit=MAX_UNIT)
    if not unit.strip():
        raise _fail(f"{where}.unit", "must not be empty")
    return SuiteBenchmark(
        name=name,
        command=check_command(obj["command"], shell, f"{where}.command"),
        parse=_parse_spec(obj["parse"], f"{where}.parse"),
        unit=unit,
        higher_is_better=higher,
        timeout_s=_number(
            obj.get("timeout_s", 300), f"{where}.timeout_s", MIN_TIMEOUT_S, MAX_TIMEOUT_S
        ),
        repeats=int(repeats),
        shell=shell,
        description=_text(obj.get("description", ""), f"{where}.description"),
        requirements=_requirements(obj.get("requirements"), f"{where}.requirements"),
    )


def suite_from_dict(data: Any, source_sha256: str = "", artifact_sha256: str = "") -> Suite:
    """Validate a suite (the `suite` object of the artifact); SuiteError with one line."""
    _keys(
        data,
        "",
        ("name", "version", "benchmarks"),
        ("description", "requirements"),
    )
    items = data["benchmarks"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BENCHMARKS:
        raise _fail("benchmarks", f"must list 1 to {MAX_BENCHMARKS} benchmarks")
    benchmarks = tuple(_benchmark(b, f"benchmarks[{i}]") for i, b in enumerate(items))
    names = [b.name for b in benchmarks]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise _fail("benchmarks", f"name {dupes[0]!r} is used twice")
    worst = sum(b.timeout_s * b.repeats for b in benchmarks)
    if worst > MAX_TOTAL_S:
        raise _fail(
            "benchmarks",
            f"timeouts x repeats add up to {worst:.0f} s, above the {MAX_TOTAL_S:.0f} s limit",
        )
    return Suite(
        name=_text(data["name"], "name", SUITE_NAME),
        version=_text(data["version"], "version", VERSION),
        description=_text(data.get("description", ""), "description"),
        requirements=_requirements(data.get("requirements"), "requirements"),
        benchmarks=benchmarks,
        source_sha256=source_sha256,
        artifact_sha256=artifact_sha256,
    )


def suite_from_artifact(raw: bytes, expected_sha256: Optional[str] = None) -> Suite:
    """Check the artifact's digest (when given), format and content."""
    digest = hashlib.sha256(raw).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256.lower():
        raise SuiteError(
            f"suite artifact sha256 {digest} does not match the expected {expected_sha256}"
        )
    if len(raw) > MAX_ARTIFACT_BYTES:
        raise SuiteError(f"suite artifact is {len(raw)} bytes, above {MAX_ARTIFACT_BYTES}")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SuiteError(f"suite artifact is not UTF-8 JSON: {exc}") from None
    _keys(doc, "artifact", ("format", "source_sha256", "suite"), ())
    if doc["format"] != FORMAT:
        raise SuiteError(f"suite artifact format {doc['format']!r}; this agent reads {FORMAT}")
    source = doc["source_sha256"]
    if not isinstance(source, str) or not re.match(r"^[0-9a-f]{64}$", source):
        raise SuiteError("suite artifact: source_sha256 must be a sha256 hex digest")
    return suite_from_dict(doc["suite"], source_sha256=source, artifact_sha256=digest)


def load_artifact(path: Path, expected_sha256: Optional[str] = None) -> Suite:
    """Read and check a suite artifact file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SuiteError(f"cannot read suite artifact {path}: {exc.strerror}") from None
    return suite_from_artifact(raw, expected_sha256)


def fetch_artifact(url: str, expected_sha256: str, timeout: float = 60.0) -> Suite:
    """GET the artifact (a presigned URL on EC2) and check it against its sha256.

    The digest is required: the URL alone does not prove the bytes are the ones the
    controller validated.
    """
    if not url.startswith(("http://", "https://")):
        raise SuiteError("suite URL must be http(s)")
    if not re.match(r"^[0-9a-fA-F]{64}$", expected_sha256 or ""):
        raise SuiteError("a suite URL needs --suite-sha256 with the artifact's sha256")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            raw = resp.read(MAX_ARTIFACT_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise SuiteError(f"cannot fetch the suite artifact: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise SuiteError(f"cannot fetch the suite artifact: {exc}") from None
    return suite_from_artifact(raw, expected_sha256)


# ---------------------------------------------------------------- requirements


def package_installed(name: str) -> Optional[bool]:
    """True/False from rpm or dpkg-query; None when neither package tool exists."""
    if shutil.which("rpm"):
        cmd = ["rpm", "-q", "--whatprovides", name]
    elif shutil.which("dpkg-query"):
        cmd = ["dpkg-query", "-W", "-f=${Status}", name]
    else:
        return None
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if cmd[0] == "dpkg-query":
        return proc.returncode == 0 and "install ok installed" in proc.stdout
    return proc.returncode == 0


def check_requirements(suite: Suite) -> Dict[str, Any]:
    """Where every required command and program is, before anything runs.

    Raises SuiteError naming the first missing command or package. A package cannot be
    verified on a machine with neither rpm nor dpkg-query: that is an error too, since
    the suite said it needs it.
    """
    commands: Dict[str, str] = {}
    packages: Dict[str, bool] = {}
    wanted = list(suite.requirements.commands)
    pkgs = list(suite.requirements.packages)
    for b in suite.benchmarks:
        wanted += list(b.requirements.commands)
        pkgs += list(b.requirements.packages)
        program = "/bin/sh" if b.shell else b.command[0]
        if program not in wanted:
            wanted.append(program)
    for name in wanted:
        if name in commands:
            continue
        found = shutil.which(name)
        if found is None:
            raise SuiteError(f"suite {suite.name}: required command {name!r} is not on PATH")
        commands[name] = found
    for name in pkgs:
        if name in packages:
            continue
        state = package_installed(name)
        if state is None:
            raise SuiteError(
                f"suite {suite.name}: cannot check package {name!r} (no rpm or dpkg-query)"
            )
        if not state:
            raise SuiteError(f"suite {suite.name}: required package {name!r} is not installed")
        packages[name] = True
    return {"commands": commands, "packages": sorted(packages)}


# ---------------------------------------------------------------------- running


@dataclass
class CommandOutcome:
    """What one execution of a command did."""

    exit_code: Optional[int]
    """None when the process was killed for its timeout."""
    timed_out: bool
    wall_s: float
    stdout: str
    stderr: str
    output_too_large: bool = False


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _read_capped(fh: Any) -> Tuple[str, bool]:
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    fh.seek(0)
    data = fh.read(MAX_OUTPUT_BYTES)
    return data.decode("utf-8", errors="replace"), size > MAX_OUTPUT_BYTES


def run_command(
    argv: Sequence[str],
    timeout_s: float,
    cwd: Path,
    env: Optional[Mapping[str, str]] = None,
) -> CommandOutcome:
    """Run argv (no shell) in its own process group; kill the group on timeout.

    The process is the leader of a new session, so its pid is the group id; SIGTERM
    goes to the group first and SIGKILL after KILL_GRACE_S. The group is also sent
    SIGKILL after a normal exit, so background children never outlive a benchmark.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=str(cwd),
                env=dict(env) if env is not None else None,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            return CommandOutcome(None, False, 0.0, "", f"cannot execute {argv[0]}: {exc}")
        timed_out = False
        try:
            code: Optional[int] = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=KILL_GRACE_S)
            _kill_group(proc.pid, signal.SIGKILL)
            proc.wait()
            code = None
        wall = time.monotonic() - started
        _kill_group(proc.pid, signal.SIGKILL)
        stdout, big_out = _read_capped(out)
        stderr, big_err = _read_capped(err)
    return CommandOutcome(code, timed_out, wall, stdout, stderr, big_out or big_err)


def _json_value(text: str, path: str) -> Any:
    stripped = text.strip()
    try:
        doc = json.loads(stripped)
    except ValueError:
        lines = [line for line in stripped.splitlines() if line.strip()]
        try:
            doc = json.loads(lines[-1]) if lines else None
        except ValueError:
            doc = None
        if doc is None:
            raise BenchmarkError("output is not JSON (whole output or last line)") from None
    value = doc
    for segment in path.split("."):
        if isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        elif isinstance(value, dict) and segment in value:
            value = value[segment]
        else:
            raise BenchmarkError(f"JSON output has no {path!r} (stopped at {segment!r})")
    return value


def parse_value(spec: ParseSpec, stdout: str, stderr: str) -> float:
    """The measured number in a command's output, or BenchmarkError saying why not."""
    text = stdout if spec.source == "stdout" else stderr
    if spec.kind == "json":
        assert spec.path is not None
        value = _json_value(text, spec.path)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BenchmarkError(f"JSON value at {spec.path!r} is not a number: {value!r}")
        number = float(value)
    else:
        assert spec.pattern is not None
        matches = list(re.finditer(spec.pattern, text, flags=re.MULTILINE))
        if not matches:
            raise BenchmarkError(f"regex found no match in {spec.source}")
        chosen = matches[0] if spec.match == "first" else matches[-1]
        raw = chosen.group(spec.group)
        if raw is None:
            raise BenchmarkError(f"regex group {spec.group!r} did not take part in the match")
        try:
            number = float(raw.strip())
        except ValueError:
            raise BenchmarkError(f"regex group {spec.group!r} is not a number: {raw!r}") from None
    if not math.isfinite(number):
        raise BenchmarkError(f"value {number} is not finite")
    return number


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])[:500]


def _no_log(message: str) -> None:
    """Default logger: silent."""


def run_benchmark(
    bench: SuiteBenchmark,
    suite_name: str,
    workdir: Path,
    log: Callable[[str], None] = _no_log,
) -> Dict[str, Any]:
    """Run every repeat of one benchmark; its result entry (status ok or failed)."""
    entry: Dict[str, Any] = {
        "name": bench.name,
        "description": bench.description,
        "command": list(bench.command),
        "shell": bench.shell,
        "parse": bench.parse.as_dict(),
        "unit": bench.unit,
        "higher_is_better": bench.higher_is_better,
        "timeout_s": bench.timeout_s,
        "repeats_requested": bench.repeats,
        "repeats": [],
        "value": None,
        "status": "failed",
        "error": None,
    }
    runs: List[Dict[str, Any]] = entry["repeats"]
    for index in range(bench.repeats):
        scratch = Path(tempfile.mkdtemp(prefix=f"{bench.name}-{index}-", dir=str(workdir)))
        env = dict(os.environ)
        env.update(
            INSTBENCH_SUITE=suite_name,
            INSTBENCH_SUITE_BENCHMARK=bench.name,
            INSTBENCH_SUITE_REPEAT=str(index),
        )
        try:
            outcome = run_command(bench.argv(), bench.timeout_s, scratch, env)
        finally:
            shutil.rmtree(str(scratch), ignore_errors=True)
        run: Dict[str, Any] = {
            "index": index,
            "exit_code": outcome.exit_code,
            "wall_s": round(outcome.wall_s, 6),
            "timed_out": outcome.timed_out,
            "value": None,
        }
        runs.append(run)
        if outcome.timed_out:
            entry["error"] = (
                f"repeat {index} timed out after {bench.timeout_s:g} s; process group killed"
            )
        elif outcome.exit_code != 0:
            entry["error"] = (
                f"repeat {index} exited with status {outcome.exit_code}: {_tail(outcome.stderr)}"
            )
        elif outcome.output_too_large:
            entry["error"] = f"repeat {index} printed more than {MAX_OUTPUT_BYTES} bytes"
        else:
            try:
                run["value"] = parse_value(bench.parse, outcome.stdout, outcome.stderr)
            except BenchmarkError as exc:
                entry["error"] = f"repeat {index}: {exc}"
        if entry["error"]:
            log(f"suite {suite_name}/{bench.name}: {entry['error']}")
            return entry
    values = [float(r["value"]) for r in runs]
    entry["value"] = statistics.median(values)
    entry["status"] = "ok"
    log(
        f"suite {suite_name}/{bench.name}: {entry['value']:g} {bench.unit} "
        f"(median of {len(values)})"
    )
    return entry


def run_suite(suite: Suite, log: Callable[[str], None] = _no_log) -> Dict[str, Any]:
    """Check requirements, run every benchmark; the `suite` section of the result.

    BenchmarkError when no benchmark produced a value (nothing worth a document).
    """
    found = check_requirements(suite)
    results: List[Dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="instbench-suite-") as tmp:
        for bench in suite.benchmarks:
            log(f"suite {suite.name}: running {bench.name} ({bench.repeats}x)")
            results.append(run_benchmark(bench, suite.name, Path(tmp), log))
    if not any(r["status"] == "ok" for r in results):
        first = results[0]["error"] if results else "no benchmarks"
        raise BenchmarkError(f"suite {suite.name}: every benchmark failed; first: {first}")
    return {
        "name": suite.name,
        "version": suite.version,
        "description": suite.description,
        "format": FORMAT,
        "source_sha256": suite.source_sha256,
        "artifact_sha256": suite.artifact_sha256,
        "aggregate": "median",
        "requirements": {
            "declared": _all_requirements(suite),
            "commands_found": found["commands"],
            "packages_found": found["packages"],
        },
        "benchmarks": results,
    }


def _all_requirements(suite: Suite) -> Dict[str, List[str]]:
    commands = list(suite.requirements.commands)
    packages = list(suite.requirements.packages)
    for b in suite.benchmarks:
        commands += [c for c in b.requirements.commands if c not in commands]
        packages += [p for p in b.requirements.packages if p not in packages]
    return {"commands": commands, "packages": packages}


__all__ = [
    "FORMAT",
    "CommandOutcome",
    "ParseSpec",
    "Requirements",
    "Suite",
    "SuiteBenchmark",
    "SuiteError",
    "check_command",
    "check_regex",
    "check_requirements",
    "fetch_artifact",
    "load_artifact",
    "parse_value",
    "run_benchmark",
    "run_command",
    "run_suite",
    "suite_from_artifact",
    "suite_from_dict",
]
