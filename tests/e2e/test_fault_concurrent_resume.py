"""Issue 21 case 6: two `instbench run --resume RID` at once.

Injected: the controller of a two-task run (against a served sandbox, so the cloud outlives
it) is SIGKILLed while a task is running; then two resumes of the run start together.
Before: both worked on the run; nothing was duplicated, but the second to finish wrote a
manifest saying tasks had failed although every result was stored. Expected: one resume
holds the run and completes it (exit 0); the other refuses at once with one `error:` line
naming the process that holds the run (exit 2), and launches and writes nothing; the
manifest says every task is stored, and so does the journal.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.procs import INSTBENCH, journal_rows, served_sandbox, start_run, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("fault_concurrent_resume")]

BOOT_DELAY = ("--boot-delay", "15")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`instbench sandbox serve` as a process; yields the environment that points at it."""
    # Instances boot for 15 s, so the killed run's tasks are still waiting for their
    # results when both resumes start: neither can finish before the other begins.
    with served_sandbox(tmp_path_factory.mktemp("sandbox") / "work", *BOOT_DELAY) as env:
        yield env


def test_two_resumes_at_once_one_refused(served: dict[str, str], tmp_path: Path) -> None:
    journal_path, out = tmp_path / "journal.sqlite", tmp_path / "data"
    common = ["--journal", str(journal_path), "--output-dir", str(out)]
    first = start_run(served, "m7i.large,c7g.large", 2, common)
    try:

        def running() -> bool:
            assert first.poll() is None, f"the run ended before it was killed ({first.returncode})"
            got = journal_rows(journal_path)
            return got is not None and any(t.state == "running" for t in got[1])

        wait_for(running, 240, "a task running on an instance")
    finally:
        first.kill()
        first.wait(timeout=30)
    got = journal_rows(journal_path)
    assert got is not None
    run_id = got[0]

    resumes = [
        subprocess.Popen(
            [INSTBENCH, "run", "--resume", run_id, *common],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=served,
        )
        for _ in range(2)
    ]
    done = [(p, *p.communicate(timeout=600)) for p in resumes]
    codes = sorted(p.returncode for p, _, _ in done)
    shown = "\n".join(f"rc={p.returncode}\n{err[-2000:]}" for p, _, err in done)
    assert codes == [0, 2], shown
    [(holder, _, _)] = [d for d in done if d[0].returncode == 0]
    [(_, refused_out, refused_err)] = [d for d in done if d[0].returncode == 2]
    errors = [line for line in refused_err.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: run {run_id} is being run by another instbench process (pid {holder.pid}): "
        f"wait for it to end (instbench runs show {run_id}), or stop it and then resume"
    ], refused_err
    assert "Traceback" not in refused_err and "FAILED" not in refused_out

    manifest = json.loads((out / "runs" / run_id / "manifest.json").read_text())
    assert manifest["status"] == "succeeded", manifest
    assert {t["state"] for t in manifest["tasks"]} == {"result_stored"}, manifest
    after = journal_rows(journal_path)
    assert after is not None and {t.state for t in after[1]} == {"result_stored"}
    assert len(list((out / "raw").rglob("*.json"))) == 2
