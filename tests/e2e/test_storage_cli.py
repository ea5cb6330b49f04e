"""`instbench run --local --benchmarks storage --quick` and the agent's storage input."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from instbench.results.validate import parse_result

INSTBENCH = str(Path(sys.executable).parent / "instbench")
pytestmark = pytest.mark.skipif(shutil.which("fio") is None, reason="needs fio")


def test_local_quick_storage_run_stores_a_valid_result(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            INSTBENCH,
            "run",
            "--local",
            "--benchmarks",
            "storage",
            "--quick",
            "--output-dir",
            str(tmp_path / "data"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    (path,) = (tmp_path / "data" / "raw" / "storage").rglob("*.json")
    section = parse_result(path.read_bytes()).performance_data.storage
    assert section is not None and section.direct and section.fio_version.startswith("fio-")
    (target,) = section.targets
    assert target.medium == "file" and len(target.jobs) == 6


def test_agent_refuses_bad_advertised_before_running(agent_pyz: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            str(agent_pyz),
            "run",
            "--benchmarks",
            "storage",
            "--output",
            str(out),
            "--storage-advertised",
            "volume_iops=1;reboot",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: storage: bad advertised")
    assert "detecting the machine" not in proc.stderr and not out.exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("8,16000,125", "500 IOPS per GiB"),
        ("100,3000,1000", "0.25 MiB/s per IOPS"),
        ("100,3000", "use GIB,IOPS,MIBPS"),
        ("100,-1,125", "use GIB,IOPS,MIBPS"),
    ],
)
def test_bad_data_volume_one_line_exit_2(tmp_path: Path, value: str, message: str) -> None:
    proc = subprocess.run(
        [
            INSTBENCH,
            "run",
            "--sandbox",
            "-t",
            "m6gd.large",
            "-b",
            "storage",
            "--quick",
            "--data-volume",
            value,
            "--output-dir",
            str(tmp_path / "d"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not (tmp_path / "d").exists() or not list((tmp_path / "d").rglob("*.json"))
