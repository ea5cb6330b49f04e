"""The same sandbox command, run three times, publishes the same set of types (issue 15).

`make run`'s flow (m7i.large, m7a.large, c7g.large; quick STREAM and latency) three times,
each published with --include-sandbox: the types held back from each file (index.json
`heldBack`, with what they lack) and the types in memory-benchmarks.json must be the same
every time. Before the latency sweep was measured in passes with re-measurement of
disturbed sizes, a sweep on this busy 2-vCPU machine often found no L3 plateau and the
type vanished from the memory file in one run and not the next.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

INSTBENCH = str(Path(sys.executable).parent / "instbench")
TYPES = "m7i.large,m7a.large,c7g.large"  # the Makefile's DEMO_TYPES

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sandbox_stable")]


def _cli(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1"}
    proc = subprocess.run(
        [INSTBENCH, *args], capture_output=True, text=True, timeout=timeout, env=env
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _publish_once(root: Path) -> tuple[dict[str, Any], list[str]]:
    data = root / "data"
    _cli(
        "run",
        "--sandbox",
        "--instance-types",
        TYPES,
        "--benchmarks",
        "stream,latency",
        "--quick",
        "--output-dir",
        str(data),
        "--journal",
        str(root / "journal.sqlite"),
        timeout=900,
    )
    out = data / "processed"
    _cli("publish", "--input", str(data), "--output", str(out), "--include-sandbox", timeout=300)
    latest = out / "latest"
    index = json.loads((latest / "index.json").read_text())
    memory = json.loads((latest / "memory-benchmarks.json").read_text())
    return index["heldBack"], sorted(memory["instances"])


def test_three_sandbox_runs_publish_the_same_types(tmp_path: Path) -> None:
    runs = [_publish_once(tmp_path / f"run{i}") for i in range(3)]
    held = [h for h, _ in runs]
    published = [p for _, p in runs]
    detail = json.dumps(held, indent=1)
    assert held[0] == held[1] == held[2], f"held-back sets differ between runs: {detail}"
    assert published[0] == published[1] == published[2], published
    # The memory file is not trivially stable: the types are in it, not all held back.
    assert published[0], f"every type held back from the memory file: {detail}"
