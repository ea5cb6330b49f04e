"""`instbench run --local --benchmarks network --quick`: both roles of the real agent zipapp
(python -I -S, the kernel source read from inside the archive) over 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from instbench.results.validate import parse_result

INSTBENCH = str(Path(sys.executable).parent / "instbench")


@pytest.mark.skipif(shutil.which("iperf3") is None, reason="needs iperf3 (make installs it)")
def test_local_network_run_stores_one_loopback_result(tmp_path: Path) -> None:
    proc = subprocess.run(
        [INSTBENCH, "run", "--local", "-b", "network", "--quick", "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    files = list((tmp_path / "raw" / "network" / "local").rglob("*.json"))
    assert len(files) == 1
    section = parse_result(files[0].read_bytes()).performance_data.network
    assert section is not None and section.role == "both" and section.loopback
    assert section.peer == "127.0.0.1"
    assert len(section.throughput) == 4 and section.latency is not None
    assert section.burst is not None  # --quick runs the burst mode for seconds
    assert "stored:" in proc.stdout


def test_local_network_refuses_a_peer_other_than_loopback(tmp_path: Path) -> None:
    # The agent's own parameter check, reached through the library the CLI calls.
    from instbench.benchmarks import network
    from instbench.benchmarks.errors import BenchmarkInputError

    with pytest.raises(BenchmarkInputError, match="loopback only"):
        network.run_network(network.NetworkOptions(peer="10.1.2.3"), cache_dir=tmp_path)


def test_describe_says_network_needs_a_pair() -> None:
    proc = subprocess.run(
        [INSTBENCH, "benchmarks", "describe", "network"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "instances: 2 (a server and a client" in proc.stdout
    assert "package:iperf3" in proc.stdout and "peer" in proc.stdout
    proc = subprocess.run(
        [INSTBENCH, "benchmarks", "describe", "network", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert json.loads(proc.stdout)["instances"] == 2
