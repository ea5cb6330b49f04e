"""`instbench run --local --suite FILE.toml`: the real CLI and the real agent zipapp (run
with `python -I -S`, so stdlib-only) execute real commands; the document is validated and
stored like any other result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from instbench.local_run import LocalRunOptions, run_local
from instbench.results.validate import parse_result
from instbench.suites import load_suite

INSTBENCH = str(Path(sys.executable).parent / "instbench")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "suites"

SUITE = """
name = "local-demo"
version = "2.1"
description = "real commands: JSON from python3, regex over sh output"

[requirements]
commands = ["python3"]

[[benchmarks]]
name = "json_value"
command = ["python3", "-c", "import json; print(json.dumps({'r': {'v': [1.5, 2.5]}}))"]
parse = { kind = "json", path = "r.v.1" }
unit = "widgets/s"
higher_is_better = true
timeout_s = 30
repeats = 3

[[benchmarks]]
name = "shell_regex"
command = ["printf 'elapsed: %s ms\\\\n' $((6 * 7))"]
shell = true
parse = { kind = "regex", pattern = '^elapsed: (?P<ms>[0-9]+) ms$', group = "ms" }
unit = "ms"
higher_is_better = false
timeout_s = 30
repeats = 2

[[benchmarks]]
name = "literal_args"
command = ["python3", "-c", "import sys; print(len(sys.argv[1]))", "$(echo hi); rm -rf *"]
parse = { kind = "regex", pattern = '(?P<value>[0-9]+)' }
unit = "chars"
higher_is_better = true
timeout_s = 30
repeats = 1
"""


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([INSTBENCH, *args], capture_output=True, text=True, timeout=600, cwd=cwd)


def test_run_local_suite_stores_a_valid_document(tmp_path: Path) -> None:
    path = tmp_path / "suite.toml"
    path.write_text(SUITE)
    loaded = load_suite(path)
    lines: list[str] = []
    result = run_local(
        LocalRunOptions(output_dir=tmp_path / "data", benchmarks=(), suite=loaded), lines.append
    )
    doc = result.document
    assert doc.metadata.benchmark_suite == ["suite"]
    assert result.key.startswith("raw/suite/local/local/")
    suite = doc.performance_data.suite
    assert suite is not None and suite.name == "local-demo" and suite.version == "2.1"
    assert suite.source_sha256 == loaded.source_sha256
    assert suite.artifact_sha256 == loaded.artifact_sha256()
    by_name = {b.name: b for b in suite.benchmarks}
    assert by_name["json_value"].value == 2.5 and len(by_name["json_value"].repeats) == 3
    assert by_name["json_value"].unit == "widgets/s" and by_name["json_value"].higher_is_better
    assert by_name["shell_regex"].value == 42.0 and by_name["shell_regex"].shell
    assert by_name["shell_regex"].higher_is_better is False
    # '$(echo hi); rm -rf *' reached python as one literal argument of 20 characters
    assert by_name["literal_args"].value == 20.0
    assert all(b.status == "ok" for b in suite.benchmarks)
    assert any("suite local-demo/json_value: 2.5 widgets/s" in line for line in lines)
    assert parse_result(result.path.read_bytes()) == doc


def test_cli_suite_json_output(tmp_path: Path) -> None:
    proc = _cli(
        "run",
        "--local",
        "--suite",
        str(EXAMPLES / "python-micro.toml"),
        "--json",
        "--output-dir",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    benches = data["performance_data"]["suite"]["benchmarks"]
    assert [b["name"] for b in benches] == ["int_loop", "sha256"]
    assert all(b["status"] == "ok" and b["value"] > 0 for b in benches)


def test_cli_rejects_a_bad_suite_before_running_anything(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "bad"\nversion = "1"\n[[benchmarks]]\nname = "b"\n'
        f'command = ["touch", "{marker}"]\nparse = {{ kind = "regex", pattern = "([0-9]+)" }}\n'
        'unit = "x"\nhigher_is_better = true\n'
    )
    proc = _cli("run", "--local", "--suite", str(bad), "--output-dir", str(tmp_path / "d"))
    assert proc.returncode == 2
    assert "regex has no named group" in proc.stderr + proc.stdout
    assert not marker.exists() and not (tmp_path / "d" / "raw").exists()


def test_cli_fleet_plans_the_suite_as_a_task_per_type(tmp_path: Path) -> None:
    # Fleet runs ship suites now (tests/integration/test_fleet_suite.py runs one): with
    # --benchmarks, those stay tasks of their own and the suite is one more.
    proc = _cli(
        "run",
        "--sandbox",
        "--dry-run",
        "--instance-types",
        "m7i.large",
        "--benchmarks",
        "stream",
        "--suite",
        str(EXAMPLES / "shell-regex.toml"),
        "--output-dir",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    assert "m7i.large-stream-0" in proc.stdout and "m7i.large-suite-0" in proc.stdout
    assert "2 tasks" in proc.stdout and "dry run: nothing launched" in proc.stdout


def test_help_describes_suite() -> None:
    proc = _cli("run", "--help")
    assert proc.returncode == 0
    assert "--suite" in proc.stdout and "FILE.toml" in proc.stdout


def test_cli_warns_when_the_suite_may_outlast_the_timeout(tmp_path: Path) -> None:
    # 3 x 300 s + 2 x 30 s + 30 s: up to 17 min of suite, with 5 min of set-up beside it.
    slow = tmp_path / "slow.toml"
    slow.write_text(SUITE.replace("timeout_s = 30\nrepeats = 3", "timeout_s = 300\nrepeats = 3"))

    def dry_run(timeout: str) -> subprocess.CompletedProcess[str]:
        return _cli(
            "run",
            "--sandbox",
            "--dry-run",
            "--instance-types",
            "m7i.large",
            "--suite",
            str(slow),
            "--timeout",
            timeout,
            "--output-dir",
            str(tmp_path),
        )

    short = dry_run("20m")
    assert short.returncode == 0, short.stderr
    warning = [line for line in short.stderr.splitlines() if "may run up to" in line]
    assert warning == [
        "warning: suite 'local-demo' may run up to 17 min (its timeout_s x repeats), and its "
        "task has --timeout 20 min in all: the watchdog would end a slow run before its "
        "result is uploaded. Pass --timeout 22m, or lower the suite's timeouts"
    ]
    roomy = dry_run("22m")
    assert roomy.returncode == 0, roomy.stderr
    assert "may run up to" not in roomy.stderr
