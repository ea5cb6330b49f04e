"""User-defined suites: validation (controller pydantic model and the agent's stdlib check),
output parsing, and real commands run by the agent side (no shell unless asked, timeouts
kill the process group)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from instbench.agent import suite as agent_suite
from instbench.benchmarks.errors import BenchmarkError
from instbench.errors import UserError
from instbench.results.schema import SuiteResult
from instbench.suites import load_suite, parse_suite

PY = sys.executable

GOOD = f"""
name = "demo"
version = "1.0"

[[benchmarks]]
name = "answer"
command = ["{PY}", "-c", "print('{{\\"v\\": 42}}')"]
parse = {{ kind = "json", path = "v" }}
unit = "answers"
higher_is_better = true
timeout_s = 30
repeats = 2
"""


def _suite(bench: str, top: str = 'name = "demo"\nversion = "1.0"\n') -> bytes:
    return (top + "\n[[benchmarks]]\n" + bench).encode()


BENCH = (
    'name = "b"\ncommand = ["true"]\nparse = { kind = "json", path = "v" }\n'
    'unit = "x"\nhigher_is_better = true\n'
)


def test_good_suite_validates_and_round_trips_through_the_artifact() -> None:
    loaded = parse_suite(GOOD.encode(), "good.toml")
    assert loaded.suite.name == "demo" and loaded.suite.benchmarks[0].repeats == 2
    artifact = loaded.to_artifact()
    suite = agent_suite.suite_from_artifact(artifact, loaded.artifact_sha256())
    assert suite.source_sha256 == loaded.source_sha256
    assert suite.benchmarks[0].command[0] == PY
    assert suite.benchmarks[0].shell is False
    # the artifact is stable bytes: same input, same digest
    assert parse_suite(GOOD.encode()).artifact_sha256() == loaded.artifact_sha256()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (_suite(BENCH + "colour = 1\n"), "benchmarks[0].colour: unknown key"),
        (_suite(BENCH, 'name = "demo"\nversion = "1"\nauthor = "x"\n'), "author: unknown key"),
        (_suite(BENCH, 'name = "Demo Suite"\nversion = "1"\n'), "name: 'Demo Suite'"),
        (_suite(BENCH.replace('name = "b"', 'name = "b/../x"')), "benchmarks[0].name"),
        (_suite(BENCH, 'name = "demo"\nversion = "1"\n') + _suite(BENCH, ""), "used twice"),
        (
            _suite(BENCH.replace('path = "v"', 'path = "v"').replace("json", "regex", 1)),
            "benchmarks[0].parse.pattern: Field required",
        ),
        (
            _suite(
                BENCH.replace(
                    '{ kind = "json", path = "v" }', '{ kind = "regex", pattern = "([0-9]+" }'
                )
            ),
            "regex does not compile",
        ),
        (
            _suite(
                BENCH.replace(
                    '{ kind = "json", path = "v" }', '{ kind = "regex", pattern = "([0-9]+)" }'
                )
            ),
            "regex has no named group (?P<value>",
        ),
        (_suite(BENCH + "timeout_s = 0\n"), "benchmarks[0].timeout_s"),
        (_suite(BENCH + "timeout_s = 99999\n"), "benchmarks[0].timeout_s"),
        (_suite(BENCH + "repeats = 0\n"), "benchmarks[0].repeats"),
        (_suite(BENCH + 'repeats = "3"\n'), "benchmarks[0].repeats"),
        (_suite(BENCH.replace('["true"]', '["echo", "a\\u0000b"]')), "NUL or newline"),
        (_suite(BENCH.replace('["true"]', '["echo", "a\\nb"]')), "NUL or newline"),
        (_suite(BENCH.replace('["true"]', "[]")), "benchmarks[0].command"),
        (_suite(BENCH.replace('["true"]', '["echo", "x"]') + "shell = true\n"), "one string"),
        (_suite(BENCH.replace('["true"]', '["./bench"]')), "relative path"),
        (_suite(BENCH + 'shell = "yes"\n'), "benchmarks[0].shell"),
        (_suite(BENCH.replace("higher_is_better = true\n", "")), "higher_is_better: Field"),
        (_suite(BENCH + 'requirements = { commands = ["rm -rf /"] }\n'), "commands[0]"),
        (
            _suite(BENCH.replace('path = "v"', 'path = "a..b"')),
            "benchmarks[0].parse.path: 'a..b' is not allowed",
        ),
        (
            _suite(BENCH + "timeout_s = 3600\nrepeats = 30\n"),
            "timeouts x repeats add up to 108000 s",
        ),
        (b'name = "demo"\nversion = "1.0"\n', "benchmarks: Field required"),
        (b"name = [unclosed", "invalid TOML"),
    ],
)
def test_invalid_suites_fail_with_one_line(text: bytes, expected: str) -> None:
    with pytest.raises(UserError) as info:
        parse_suite(text, "s.toml")
    message = str(info.value)
    assert expected in message, message
    assert "\n" not in message and message.startswith("suite s.toml: ")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda s: s.update(extra=1), "unknown key 'extra'"),
        (lambda s: s.update(name="../etc"), "name"),
        (lambda s: s["benchmarks"][0].update(command=["echo", "a\nb"]), "NUL or newline"),
        (lambda s: s["benchmarks"][0].update(timeout_s=1e9), "timeout_s"),
        (lambda s: s["benchmarks"][0].update(repeats=True), "repeats"),
        (lambda s: s["benchmarks"][0]["parse"].update(kind="xml"), "parse.kind"),
        (lambda s: s["benchmarks"][0].update(shell="true"), "shell"),
        (lambda s: s["benchmarks"][0]["parse"].update(kind="regex", pattern="(?P<v>1)"), "path"),
    ],
)
def test_agent_check_rejects_what_the_controller_would(mutate, expected) -> None:  # type: ignore[no-untyped-def]
    """The JSON artifact is checked again on the machine: a hand-edited one cannot slip by."""
    doc = json.loads(parse_suite(GOOD.encode()).to_artifact())
    mutate(doc["suite"])
    with pytest.raises(agent_suite.SuiteError) as info:
        agent_suite.suite_from_artifact(json.dumps(doc).encode())
    assert expected in str(info.value)


def test_artifact_digest_and_format_are_checked() -> None:
    loaded = parse_suite(GOOD.encode())
    raw = loaded.to_artifact()
    with pytest.raises(agent_suite.SuiteError, match="does not match"):
        agent_suite.suite_from_artifact(raw, "0" * 64)
    doc = json.loads(raw)
    doc["format"] = "instbench-suite/9"
    with pytest.raises(agent_suite.SuiteError, match="format"):
        agent_suite.suite_from_artifact(json.dumps(doc).encode())
    with pytest.raises(agent_suite.SuiteError, match="needs --suite-sha256"):
        agent_suite.fetch_artifact("http://127.0.0.1:9/suite.json", "")


def test_load_suite_reports_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read suite"):
        load_suite(tmp_path / "missing.toml")


# ---------------------------------------------------------------------- parsing


def _spec(**kw: str) -> agent_suite.ParseSpec:
    return agent_suite.ParseSpec(**kw)  # type: ignore[arg-type]


def test_regex_parsing_named_group_first_and_last_and_stderr() -> None:
    out = "warmup: 10.5 ops/s\nrun: 12.25 ops/s\nrun: 13 ops/s\n"
    first = _spec(kind="regex", pattern=r"run: (?P<value>[0-9.]+) ops/s")
    assert agent_suite.parse_value(first, out, "") == 12.25
    last = _spec(kind="regex", pattern=r"run: (?P<value>[0-9.]+)", match="last")
    assert agent_suite.parse_value(last, out, "") == 13.0
    custom = _spec(kind="regex", pattern=r"^took (?P<ms>\d+) ms$", group="ms", source="stderr")
    assert agent_suite.parse_value(custom, "", "noise\ntook 250 ms\n") == 250.0
    with pytest.raises(BenchmarkError, match="no match"):
        agent_suite.parse_value(first, "nothing here", "")
    nan = _spec(kind="regex", pattern=r"v=(?P<value>\S+)")
    with pytest.raises(BenchmarkError, match=r"not a number|not finite"):
        agent_suite.parse_value(nan, "v=abc", "")


def test_json_parsing_paths_last_line_and_type_checks() -> None:
    spec = _spec(kind="json", path="results.1.rate")
    doc = {"results": [{"rate": 1}, {"rate": 2.5}]}
    assert agent_suite.parse_value(spec, json.dumps(doc), "") == 2.5
    assert agent_suite.parse_value(spec, "progress...\n" + json.dumps(doc) + "\n", "") == 2.5
    with pytest.raises(BenchmarkError, match=r"no 'results\.1\.rate'"):
        agent_suite.parse_value(spec, json.dumps({"results": [1]}), "")
    with pytest.raises(BenchmarkError, match="not a number"):
        agent_suite.parse_value(_spec(kind="json", path="ok"), '{"ok": true}', "")
    with pytest.raises(BenchmarkError, match="not JSON"):
        agent_suite.parse_value(spec, "plain text", "")


# ---------------------------------------------------------------- real commands


def _bench(command: list[str], **kw: object) -> agent_suite.SuiteBenchmark:
    fields: dict[str, object] = {
        "name": "b",
        "command": tuple(command),
        "parse": _spec(kind="regex", pattern=r"(?P<value>[0-9.]+)"),
        "unit": "x",
        "higher_is_better": True,
        "timeout_s": 30.0,
        "repeats": 1,
    }
    fields.update(kw)
    return agent_suite.SuiteBenchmark(**fields)  # type: ignore[arg-type]


def test_shell_metacharacters_in_argv_are_passed_literally(tmp_path: Path) -> None:
    """Without shell = true nothing interprets ; | $( ) * > : they reach the program as is."""
    marker = tmp_path / "pwned"
    args = [
        f"; touch {marker}",
        f"$(touch {marker})",
        f"`touch {marker}`",
        f"| touch {marker}",
        f"> {marker}",
        "*",
        "$HOME",
    ]
    script = "import json,sys; print(json.dumps({'argv': sys.argv[1:], 'n': len(sys.argv) - 1}))"
    bench = _bench([PY, "-c", script, *args], parse=_spec(kind="json", path="n"))
    outcome = agent_suite.run_command(bench.argv(), 30, tmp_path)
    assert outcome.exit_code == 0, outcome.stderr
    assert json.loads(outcome.stdout)["argv"] == args
    assert not marker.exists()
    entry = agent_suite.run_benchmark(bench, "demo", tmp_path)
    assert entry["status"] == "ok" and entry["value"] == len(args)
    assert not marker.exists()


def test_shell_true_runs_the_script_with_sh(tmp_path: Path) -> None:
    bench = _bench(["echo 3 4 | awk '{print $1 * $2}'"], shell=True, repeats=2)
    assert bench.argv() == ["/bin/sh", "-c", "echo 3 4 | awk '{print $1 * $2}'"]
    entry = agent_suite.run_benchmark(bench, "demo", tmp_path)
    assert entry["status"] == "ok", entry["error"]
    assert entry["value"] == 12.0 and [r["value"] for r in entry["repeats"]] == [12.0, 12.0]


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = f"sleep 300 & echo $! > {pidfile}; wait"
    bench = _bench([script], shell=True, timeout_s=1.0, repeats=3)
    started = time.monotonic()
    entry = agent_suite.run_benchmark(bench, "demo", tmp_path)
    assert time.monotonic() - started < 60
    assert entry["status"] == "failed" and entry["value"] is None
    assert "timed out after 1 s; process group killed" in entry["error"]
    assert len(entry["repeats"]) == 1 and entry["repeats"][0]["timed_out"] is True
    assert entry["repeats"][0]["exit_code"] is None
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        # a zombie of an already killed child is reaped by init; give it a moment
        with open(f"/proc/{child}/stat") as fh:
            if fh.read().split()[2] == "Z":
                break
        time.sleep(0.1)
    else:
        pytest.fail(f"background child {child} survived the timeout")


def test_failures_are_recorded_and_an_all_failed_suite_is_an_error(tmp_path: Path) -> None:
    failing = _bench([PY, "-c", "import sys; sys.stderr.write('boom\\n'); sys.exit(3)"])
    entry = agent_suite.run_benchmark(failing, "demo", tmp_path)
    assert entry["status"] == "failed" and "exited with status 3: boom" in entry["error"]
    suite = agent_suite.Suite(name="demo", version="1", benchmarks=(failing,))
    with pytest.raises(BenchmarkError, match="every benchmark failed"):
        agent_suite.run_suite(suite)


def test_missing_required_command_stops_before_anything_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    first = _bench([PY, "-c", f"open({str(marker)!r}, 'w').write('1'); print(1)"])
    second = _bench(["instbench-no-such-command-xyz"], name="c")
    suite = agent_suite.Suite(name="demo", version="1", benchmarks=(first, second))
    with pytest.raises(agent_suite.SuiteError, match="'instbench-no-such-command-xyz'"):
        agent_suite.run_suite(suite)
    assert not marker.exists()


def test_run_suite_section_validates_against_the_schema(tmp_path: Path) -> None:
    loaded = parse_suite(GOOD.encode())
    suite = agent_suite.suite_from_artifact(loaded.to_artifact())
    section = agent_suite.run_suite(suite)
    result = SuiteResult.model_validate(section)
    assert result.name == "demo" and result.source_sha256 == loaded.source_sha256
    assert result.artifact_sha256 == loaded.artifact_sha256()
    (bench,) = result.benchmarks
    assert bench.value == 42.0 and bench.unit == "answers" and bench.higher_is_better
    assert [r.value for r in bench.repeats] == [42.0, 42.0]
