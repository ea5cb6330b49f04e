"""`instbench run --local`: benchmark this machine with the real agent zipapp.

The agent is built and executed exactly as on an instance (`python -I -S agent.pyz run
...`, a separate process with no site-packages), so a local run also proves the agent is
stdlib-only. Its document is validated, then stored byte for byte under the storage layout;
nothing is ever overwritten.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instbench.agentpkg import write_agent
from instbench.benchmarks import registry
from instbench.errors import InstbenchError, InvalidBenchmark, UserError
from instbench.results.schema import ResultDocument
from instbench.results.validate import parse_result
from instbench.storage.layout import raw_key
from instbench.storage.local import LocalStore
from instbench.suites import LoadedSuite, write_artifact


@dataclass
class LocalRunOptions:
    """What to run and where to store it."""

    output_dir: Path
    benchmarks: tuple[str, ...] = ("stream",)
    quick: bool = False
    array_elements: int | None = None
    ntimes: int | None = None
    threads: int | None = None
    run_id: str | None = None
    instance_type: str | None = None
    extra_agent_args: list[str] = field(default_factory=list)
    suite: LoadedSuite | None = None
    """A validated user-defined suite; run after `benchmarks` (which may then be empty)."""
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Checked benchmark parameters (run_params); the agent gets those of `benchmarks`."""


@dataclass(frozen=True)
class LocalRunResult:
    """The validated document and where it was stored."""

    document: ResultDocument
    key: str
    path: Path


def parse_benchmarks(text: str) -> tuple[str, ...]:
    """Validate a --benchmarks value against the registry (one-line error, exit 2)."""
    try:
        return registry.parse_list(text)
    except ValueError as exc:
        raise InvalidBenchmark(str(exc)) from exc


def agent_command(
    agent: Path, output: Path, opts: LocalRunOptions, suite_artifact: Path | None = None
) -> list[str]:
    """The agent command line for a local run (the suite goes as a file, never as text)."""
    cmd = [sys.executable, "-I", "-S", str(agent), "run"]
    if opts.benchmarks:
        cmd += ["--benchmarks", ",".join(opts.benchmarks)]
    if opts.suite is not None:
        if suite_artifact is None:
            raise ValueError("a suite run needs the path of its written artifact")
        cmd += ["--suite", str(suite_artifact), "--suite-sha256", opts.suite.artifact_sha256()]
    cmd += ["--output", str(output)]
    cmd += ["--collection-method", "local"]
    if opts.run_id:
        cmd += ["--run-id", opts.run_id]
    if opts.instance_type:
        cmd += ["--instance-type", opts.instance_type]
    if opts.quick:
        cmd.append("--quick")
    if opts.array_elements is not None:
        cmd += ["--array-size", str(opts.array_elements)]
    if opts.ntimes is not None:
        cmd += ["--ntimes", str(opts.ntimes)]
    if opts.threads is not None:
        cmd += ["--threads", str(opts.threads)]
    own = {name: values for name, values in opts.params.items() if name in opts.benchmarks}
    cmd += registry.assignment_args(own)
    return cmd + opts.extra_agent_args


def run_local(opts: LocalRunOptions, on_line: Callable[[str], None]) -> LocalRunResult:
    """Run the agent here, validate and store its result; stream its log to `on_line`."""
    store = LocalStore(opts.output_dir)
    store.check_writable()
    with tempfile.TemporaryDirectory(prefix="instbench-local-") as tmp:
        agent = Path(tmp) / "agent.pyz"
        write_agent(agent)
        output = Path(tmp) / "result.json"
        artifact = write_artifact(opts.suite, Path(tmp)) if opts.suite is not None else None
        proc = subprocess.Popen(
            agent_command(agent, output, opts, artifact),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        last_error = ""
        for line in proc.stderr:
            line = line.rstrip("\n")
            if line.startswith("error:"):
                last_error = line.removeprefix("error:").strip()
            on_line(line)
        code = proc.wait()
        if code == 2:
            raise UserError(last_error or "the agent refused its input")
        if code != 0:
            raise InstbenchError(f"agent failed (exit {code}): {last_error or 'see log above'}")
        raw = output.read_bytes()
    document = parse_result(raw)
    meta = document.metadata
    key = raw_key(
        "-".join(meta.benchmark_suite),
        meta.instance_type,
        meta.region,
        meta.timestamp,
        meta.run_id,
        meta.sample,
    )
    path = store.put_new(key, raw)
    return LocalRunResult(document=document, key=key, path=path)
