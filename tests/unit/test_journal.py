"""The run journal: state machine, persistence across processes, audit trail."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from instbench.journal import Journal, JournalError, default_path


def _journal(tmp_path: Path) -> Journal:
    j = Journal(tmp_path / "j.sqlite")
    j.create_run(
        "r1",
        "us-east-1",
        "sandbox",
        {"samples": 1},
        [
            ("m7i.large-stream-0", "m7i.large", "stream", 0),
            ("c7g.large-stream-0", "c7g.large", "stream", 0),
        ],
    )
    return j


def test_happy_path_and_events(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.transition("r1", "m7i.large-stream-0", "launching", attempt=0, availability_zone="us-east-1a")
    j.transition("r1", "m7i.large-stream-0", "running", instance_id="i-1")
    j.transition("r1", "m7i.large-stream-0", "result_stored", result_key="raw/x.json")
    j.mark_terminated("r1", ["i-1"])
    row = j.task("r1", "m7i.large-stream-0")
    assert (row.state, row.instance_id, row.terminated, row.result_key) == (
        "result_stored",
        "i-1",
        True,
        "raw/x.json",
    )
    events = [e[2] for e in j.events("r1")]
    assert events == [
        "run_created",
        "planned->launching",
        "launching->running",
        "running->result_stored",
    ]


@pytest.mark.parametrize(
    ("path", "bad"),
    [([], "running"), (["launching", "running", "result_stored"], "failed"), ([], "result_stored")],
)
def test_illegal_transitions_are_refused(tmp_path: Path, path: list[str], bad: str) -> None:
    j = _journal(tmp_path)
    for state in path:
        j.transition("r1", "c7g.large-stream-0", state)
    with pytest.raises(JournalError, match="illegal transition"):
        j.transition("r1", "c7g.large-stream-0", bad)


def test_unknown_run_and_task(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    with pytest.raises(JournalError):
        j.run("nope")
    with pytest.raises(JournalError):
        j.transition("r1", "nope", "launching")
    with pytest.raises(JournalError):
        j.transition("r1", "c7g.large-stream-0", "launching", colour="red")


def test_state_survives_a_killed_process(tmp_path: Path) -> None:
    """A write committed before SIGKILL is there for the next process."""
    path = tmp_path / "j.sqlite"
    _journal(tmp_path).close()
    code = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from instbench.journal import Journal\n"
        f"j = Journal(Path({str(path)!r}))\n"
        "j.transition('r1', 'm7i.large-stream-0', 'launching')\n"
        "j.transition('r1', 'm7i.large-stream-0', 'running', instance_id='i-9')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False)
    assert proc.returncode == -9
    row = Journal(path).task("r1", "m7i.large-stream-0")
    assert (row.state, row.instance_id) == ("running", "i-9")


def test_default_path_honours_env(tmp_path: Path) -> None:
    assert default_path({"INSTBENCH_JOURNAL": str(tmp_path / "x")}) == tmp_path / "x"
    assert default_path({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "instbench/journal.sqlite"


def test_runs_listing(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.set_run_status("r1", "succeeded")
    [run] = j.runs()
    assert run.status == "succeeded" and run.finished_at and run.params == {"samples": 1}
