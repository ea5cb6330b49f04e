"""The agent zipapp: reproducible, stdlib-only (runs with -I -S and on Python 3.9)."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from instbench.agentpkg import build_agent
from instbench.results.validate import parse_result


def test_build_is_reproducible() -> None:
    a, b = build_agent(), build_agent()
    assert a.sha256 == b.sha256 and a.data == b.data


def test_archive_holds_only_agent_code(agent_pyz: Path) -> None:
    names = zipfile.ZipFile(agent_pyz).namelist()
    assert "__main__.py" in names
    assert "instbench/benchmarks/kernels/stream.c" in names
    assert not [
        n for n in names if n.startswith(("instbench/cli", "instbench/aws", "instbench/fleet"))
    ]
    assert not [n for n in names if n.startswith("instbench/results")]


def _run(python: str, agent: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-I", "-S", str(agent), *args], capture_output=True, text=True, timeout=300
    )


def test_version_and_sysinfo_without_site_packages(agent_pyz: Path) -> None:
    assert _run(sys.executable, agent_pyz, "version").stdout.strip()
    info = json.loads(_run(sys.executable, agent_pyz, "sysinfo").stdout)
    assert info["architecture"] in {"x86_64", "arm64"}


def _python39() -> str | None:
    """A real Python 3.9 (not a pyenv shim), as on Amazon Linux 2023."""
    candidates = sorted(glob.glob("/root/.pyenv/versions/3.9*/bin/python3.9"))
    candidates += ["/usr/bin/python3.9", "/usr/local/bin/python3.9"]
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.mark.skipif(_python39() is None, reason="no Python 3.9 interpreter on this machine")
def test_runs_on_python39_like_amazon_linux(
    agent_pyz: Path, tmp_path: Path, kernel_cache: Path
) -> None:
    py39 = _python39()
    assert py39 is not None
    out = tmp_path / "r.json"
    proc = _run(
        py39,
        agent_pyz,
        "run",
        "--benchmarks",
        "stream",
        "--output",
        str(out),
        "--quick",
        "--cache-dir",
        str(kernel_cache),
    )
    assert proc.returncode == 0, proc.stderr
    doc = parse_result(out.read_bytes())
    assert doc.system_info.python_version.startswith("3.9")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--benchmarks", "nope"], "unknown benchmark 'nope'"),
        (["--benchmarks", ""], "empty benchmark name"),
        (["--array-size", "0"], "must be >= 1"),
        (["--array-size", "999999999999"], "memory"),
        (["--run-id", "a;b"], "invalid run id"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(
    agent_pyz: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "r.json"
    proc = _run(sys.executable, agent_pyz, "run", "--output", str(out), *args)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert not out.exists()
    assert not list(tmp_path.iterdir())


def test_existing_output_is_never_overwritten(agent_pyz: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    out.write_text("keep me")
    proc = _run(sys.executable, agent_pyz, "run", "--output", str(out), "--quick")
    assert proc.returncode == 2 and "never overwritten" in proc.stderr
    assert out.read_text() == "keep me"


def test_missing_compiler_says_what_to_install(agent_pyz: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    env = {"PATH": str(tmp_path), "CC": str(tmp_path / "no-such-cc"), "HOME": str(tmp_path)}
    proc = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            str(agent_pyz),
            "run",
            "--output",
            str(out),
            "--quick",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "install gcc" in proc.stderr
    assert not out.exists()
