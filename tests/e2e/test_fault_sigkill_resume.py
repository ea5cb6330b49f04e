"""Fault scenario 1: the controller is killed with SIGKILL in the middle of a run.

Injected: SIGKILL to the `instbench run` process (against a served sandbox, so the cloud
outlives its controller) once the journal shows one task `result_stored` and another
`running` on an instance. Expected: `instbench cleanup --run-id` leaves none of the run's
instances pending or running, and `instbench run --resume` completes the run without
launching the finished tasks again.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.procs import (
    INSTBENCH,
    journal_rows,
    sandbox_session,
    served_sandbox,
    sigkill_when,
    start_run,
)

from instbench.aws.session import AwsSession
from instbench.journal import TaskRow

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("fault_sigkill")]

TYPES = "m7i.large,m7a.large,c7g.large"
RUN_TAG = "instbench:run-id"
TASK_TAG = "instbench:task"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The served sandbox (a sandbox minute lasts a second); yields the env that points at it."""
    env = dict(os.environ, INSTBENCH_SANDBOX_MINUTE_SECONDS="1")
    with served_sandbox(tmp_path_factory.mktemp("sandbox") / "work", env=env) as aws_env:
        yield aws_env


def _instances(session: AwsSession, run_id: str) -> list[tuple[str, str, str]]:
    """(instance id, task, state) of every instance tagged with the run."""
    found: list[tuple[str, str, str]] = []
    pages = session.ec2().get_paginator("describe_instances")
    for page in pages.paginate(Filters=[{"Name": f"tag:{RUN_TAG}", "Values": [run_id]}]):
        for reservation in page["Reservations"]:
            for inst in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
                found.append((inst["InstanceId"], tags.get(TASK_TAG, ""), inst["State"]["Name"]))
    return found


@dataclass
class Killed:
    """A run whose controller was SIGKILLed mid-run, and the journal right after."""

    env: dict[str, str]
    run_id: str
    common: list[str]
    before: list[TaskRow]
    out: Path
    journal: Path

    @property
    def stored_before(self) -> dict[str, TaskRow]:
        return {t.task_id: t for t in self.before if t.state == "result_stored"}


def _start_and_kill(env: dict[str, str], tmp: Path) -> Killed:
    """Start a 3-task run, SIGKILL it once one task is stored and another is running."""
    journal_path = tmp / "journal.sqlite"
    out = tmp / "data"
    common = ["--journal", str(journal_path), "--output-dir", str(out)]
    controller = start_run(env, TYPES, 3, common)

    def mid_run() -> bool:
        assert controller.poll() is None, f"controller ended early ({controller.returncode})"
        got = journal_rows(journal_path)
        if got is None:
            return False
        states = [t.state for t in got[1]]
        running = [t for t in got[1] if t.state == "running" and t.instance_id]
        return "result_stored" in states and bool(running)

    sigkill_when(controller, mid_run, 240, "one task stored and one running")
    got = journal_rows(journal_path)
    assert got is not None
    run_id, before = got
    killed = Killed(env, run_id, common, before, out, journal_path)
    assert killed.stored_before
    assert any(t.state == "running" for t in before)
    live = [i for i in _instances(sandbox_session(env), run_id) if i[2] in {"pending", "running"}]
    assert live, "the kill came after every instance had ended: nothing left to test"
    return killed


def _resume(killed: Killed) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [INSTBENCH, "run", "--resume", killed.run_id, *killed.common],
        env=killed.env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _assert_completed_without_relaunch(
    killed: Killed, resumed: subprocess.CompletedProcess[str]
) -> None:
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    after = journal_rows(killed.journal)
    assert after is not None and after[0] == killed.run_id
    assert len(after[1]) == 3
    assert {t.state for t in after[1]} == {"result_stored"}
    session = sandbox_session(killed.env)
    # The tasks stored before the kill were not launched again: one instance, the same one.
    by_task: dict[str, list[str]] = {}
    for iid, task, _state in _instances(session, killed.run_id):
        by_task.setdefault(task, []).append(iid)
    rows_after = {t.task_id: t for t in after[1]}
    for task_id, row in killed.stored_before.items():
        assert by_task[task_id] == [row.instance_id]
        assert rows_after[task_id].instance_id == row.instance_id
        assert rows_after[task_id].result_key == row.result_key
    # One stored result per task, none duplicated.
    assert len(list((killed.out / "raw").rglob("*.json"))) == 3
    live = [i for i in _instances(session, killed.run_id) if i[2] in {"pending", "running"}]
    assert live == []


@pytest.fixture(scope="module")
def killed_then_cleaned(
    served: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Killed, subprocess.CompletedProcess[str]]:
    """Scenario 1 up to `instbench cleanup --run-id` (what the later tests build on)."""
    killed = _start_and_kill(served, tmp_path_factory.mktemp("killed-cleaned"))
    cleaned = subprocess.run(
        [INSTBENCH, "cleanup", "--run-id", killed.run_id],
        env=served,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return killed, cleaned


def test_cleanup_after_sigkill_leaves_no_instance_running(
    killed_then_cleaned: tuple[Killed, subprocess.CompletedProcess[str]],
) -> None:
    killed, cleaned = killed_then_cleaned
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    session = sandbox_session(killed.env)
    instances = _instances(session, killed.run_id)
    assert instances
    assert [i for i in instances if i[2] in {"pending", "running"}] == []
    assert f"(run {killed.run_id}" in cleaned.stdout


def test_resume_after_cleanup_completes_without_relaunching_stored_tasks(
    killed_then_cleaned: tuple[Killed, subprocess.CompletedProcess[str]],
) -> None:
    killed, cleaned = killed_then_cleaned
    assert cleaned.returncode == 0
    _assert_completed_without_relaunch(killed, _resume(killed))


def test_resume_after_sigkill_reattaches_and_skips_stored_tasks(
    served: dict[str, str],
    killed_then_cleaned: tuple[Killed, subprocess.CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    """Without cleanup: resume re-attaches to the live instances, launches no stored task."""
    del killed_then_cleaned  # ordering only: that run is over, its instances are gone
    killed = _start_and_kill(served, tmp_path)
    _assert_completed_without_relaunch(killed, _resume(killed))
