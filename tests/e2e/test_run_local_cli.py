"""`instbench run --local`, through the installed console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from instbench.results.validate import parse_result

INSTBENCH = str(Path(sys.executable).parent / "instbench")


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([INSTBENCH, *args], capture_output=True, text=True, timeout=600, cwd=cwd)


def test_local_quick_run_stores_a_valid_result_and_prints_a_table(tmp_path: Path) -> None:
    proc = _cli("run", "--local", "--quick", "--output-dir", str(tmp_path / "data"))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    for word in ("Copy", "Scale", "Add", "Triad", "best GB/s", "stored:"):
        assert word in proc.stdout
    files = list((tmp_path / "data" / "raw" / "stream" / "local" / "local").rglob("*.json"))
    assert len(files) == 1
    doc = parse_result(files[0].read_bytes())
    assert doc.metadata.collection_method == "local"
    assert doc.performance_data.stream is not None
    assert all(run.validation_passed for run in doc.performance_data.stream.runs)


def test_json_output_is_the_document(tmp_path: Path) -> None:
    proc = _cli("run", "--local", "--quick", "--json", "--output-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) == {"metadata", "performance_data", "system_info", "execution_context"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--benchmarks", "streem"], "unknown benchmark 'streem'"),
        (["--array-size", "999999999999"], "memory"),
        (["--output-dir", "/proc/forbidden"], "cannot write"),
        ([], None),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path: Path, args: list[str], message: str | None) -> None:
    local = ["--local", "--quick"] if args else []
    if "--output-dir" not in args:
        args = [*args, "--output-dir", str(tmp_path / "d")]
    proc = _cli("run", *local, *args)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    if message:
        assert message in lines[0]
    assert not list(tmp_path.rglob("*.json"))


def test_param_reaches_the_linpack_kernel_and_is_recorded(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = _cli(
        "run", "--local", "--quick", "-b", "linpack", "--param", "linpack.n=3000",
        "--output-dir", str(data),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    (path,) = (data / "raw" / "linpack").rglob("*.json")
    doc = parse_result(path.read_bytes())
    assert doc.performance_data.linpack is not None
    assert doc.performance_data.linpack.n == 3000
    assert doc.execution_context.parameters == {"linpack": {"n": 3000}}
