"""Every built-in benchmark in quick mode through the whole sandbox flow (issue 8).

One type, four benchmarks (`stream` has its own three-architecture test): each becomes its
own task, instance and user data; the real agent compiles and runs the benchmark here and
uploads it; the controller validates and stores it. Then the results must be valid and
carry their own section with measured, positive figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from instbench.results.validate import parse_result

INSTBENCH = str(Path(sys.executable).parent / "instbench")
BENCHMARKS = ["latency", "linpack", "cpu", "idle"]


def test_each_benchmark_quick_in_the_sandbox(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            INSTBENCH,
            "run",
            "--sandbox",
            "--instance-types",
            "m7a.large",
            "--benchmarks",
            ",".join(BENCHMARKS),
            "--quick",
            "--output-dir",
            str(tmp_path / "data"),
            "--journal",
            str(tmp_path / "journal.sqlite"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{\n") :])
    assert summary["succeeded"] is True

    docs = {}
    for path in sorted((tmp_path / "data" / "raw").rglob("*.json")):
        doc = parse_result(path.read_bytes())
        assert doc.metadata.collection_method == "sandbox" and doc.metadata.quick
        assert path.relative_to(tmp_path / "data").parts[1] == doc.metadata.benchmark_suite[0]
        docs[doc.metadata.benchmark_suite[0]] = doc
    assert sorted(docs) == sorted(BENCHMARKS)

    perf = {name: doc.performance_data for name, doc in docs.items()}
    latency = perf["latency"].latency
    assert latency is not None and latency.points
    memory = latency.levels.memory
    assert memory is not None and memory.latency_ns > 0
    linpack = perf["linpack"].linpack
    assert linpack is not None and linpack.gflops > 0 and linpack.residual_passed
    cpu = perf["cpu"].cpu
    assert cpu is not None and cpu.integer is not None
    # Our integer kernel, never called CoreMark: the sandbox cannot fetch CoreMark.
    assert cpu.coremark is None and cpu.coremark_note
    assert perf["idle"].idle is not None
