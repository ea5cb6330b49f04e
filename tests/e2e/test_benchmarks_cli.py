"""`instbench benchmarks list|describe`, the agent zipapp running the latency benchmark.

The commands run in-process through the real entry point (`instbench.cli.app.main`, which
maps errors to exit codes), since importing the whole CLI costs seconds per process; one
test goes through the installed console script with a plugin distribution on PYTHONPATH,
the way a pip-installed plugin is found."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from instbench.benchmarks import latency, registry
from instbench.cli.app import main
from instbench.results.validate import parse_result

INSTBENCH = str(Path(sys.executable).parent / "instbench")

PLUGIN = """
from instbench.benchmarks.registry import BenchmarkInfo, Parameter, Requirements


def _run(ctx):
    return {}, {}


def benchmark():
    return BenchmarkInfo(
        name="fake",
        version="0.1.0",
        description="A benchmark from another distribution.",
        run=_run,
        parameters=(Parameter("rounds", "int", "How many rounds.", default=3, minimum=1),),
        requires=Requirements(packages=("openssl",)),
    )
"""


def _cli(
    *args: str, columns: int = 120, pythonpath: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1"}
    env.pop("PYTHONPATH", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([INSTBENCH, *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture()
def plugin_site(tmp_path: Path) -> Path:
    """A distribution with one good and one broken benchmark entry point."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "fakebench_cli_plugin.py").write_text(PLUGIN)
    info = site / "fakebench_cli_plugin-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fakebench-cli-plugin\nVersion: 0.1.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[instbench.benchmarks]\n"
        "fake = fakebench_cli_plugin:benchmark\n"
        "broken = fakebench_cli_plugin:no_such_attribute\n"
    )
    return site


def _main(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *args: str,
    columns: int = 120,
) -> tuple[int, str, str]:
    """Run `instbench ARGS` in-process: (exit code, stdout, stderr)."""
    monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.setenv("NO_COLOR", "1")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), out, err


def test_list_shows_every_builtin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = _main(capsys, monkeypatch, "benchmarks", "list")
    assert code == 0, err
    for word in ("latency", "stream", "built-in", "c-compiler", "openmp", "max_size_bytes"):
        assert word in out
    assert err == ""
    code, narrow, _ = _main(capsys, monkeypatch, "benchmarks", "list", columns=70)
    assert code == 0 and "latency" in narrow and "max_size_bytes" not in narrow


def test_list_json_is_a_list_of_declarations(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = _main(capsys, monkeypatch, "benchmarks", "list", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert [d["name"] for d in data] == list(registry.names())
    lat = next(d for d in data if d["name"] == "latency")
    assert lat["version"] == latency.KERNEL_VERSION and lat["runs_in_agent"] is True
    assert lat["requires"] == {
        "c_compiler": True,
        "openmp": False,
        "packages": [],
        "commands": [],
    }
    assert [p["name"] for p in lat["parameters"]] == [
        "max_size_bytes",
        "points_per_doubling",
        "time_per_point_ms",
        "huge_pages",
        "numa",
    ]


def test_describe_shows_parameters_and_requirements(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = _main(capsys, monkeypatch, "benchmarks", "describe", "latency", columns=100)
    assert code == 0, err
    for word in ("latency", "runs in the agent: yes", "needs on the instance: c-compiler"):
        assert word in out
    for word in ("max_size_bytes", "points_per_doubling", "huge_pages", "default: true", "1..8"):
        assert word in out
    code, out, _ = _main(capsys, monkeypatch, "benchmarks", "describe", "stream", "--json")
    data = json.loads(out)
    assert data["name"] == "stream" and data["requires"]["openmp"] is True


def test_unknown_name_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = _main(capsys, monkeypatch, "benchmarks", "describe", "nope")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        f"error: unknown benchmark 'nope'; known benchmarks: {', '.join(registry.names())}"
    ]


def test_plugins_are_listed_and_broken_ones_warned(plugin_site: Path) -> None:
    proc = _cli("benchmarks", "list", "--json", pythonpath=plugin_site)
    assert proc.returncode == 0, proc.stderr
    data = {d["name"]: d for d in json.loads(proc.stdout)}
    assert set(data) == {"fake", *registry.names()}
    assert data["fake"]["origin"] == "plugin fakebench-cli-plugin 0.1.0"
    assert data["fake"]["runs_in_agent"] is False
    warnings = proc.stderr.strip().splitlines()
    assert len(warnings) == 1 and "plugin 'broken'" in warnings[0]
    assert "fakebench-cli-plugin" in warnings[0] and "AttributeError" in warnings[0]

    proc = _cli("benchmarks", "describe", "fake", pythonpath=plugin_site)
    assert proc.returncode == 0, proc.stderr
    assert "runs in the agent: no" in proc.stdout and "package:openssl" in proc.stdout
    assert "rounds" in proc.stdout and "default: 3" in proc.stdout


def _python39() -> str:
    """A real Python 3.9 as on Amazon Linux 2023 when this machine has one, else ours."""
    pyenv = sorted(glob.glob("/root/.pyenv/versions/3.9*/bin/python3.9"))
    for candidate in [*pyenv, "/usr/bin/python3.9"]:
        if os.access(candidate, os.X_OK):
            return candidate
    return sys.executable


def test_agent_runs_latency_quick(agent_pyz: Path, kernel_cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    cmd = [_python39(), "-I", "-S", str(agent_pyz), "run", "--benchmarks", "latency"]
    cmd += ["--quick", "--output", str(out), "--cache-dir", str(kernel_cache)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = parse_result(out.read_bytes())
    assert doc.metadata.benchmark_suite == ["latency"] and doc.metadata.quick
    lat = doc.performance_data.latency
    assert lat is not None and doc.performance_data.stream is None
    assert doc.execution_context.cflags == lat.cflags
    assert "latency" in doc.execution_context.phase_durations_s
    for name in latency.LEVELS:
        assert getattr(lat, name) is not None or lat.detection.notes.get(name)
    assert "latency sweep" in proc.stderr
