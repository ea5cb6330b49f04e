"""Issue 18: SIGKILL of the controller while a pair (server and client) runs, then
`instbench cleanup --run-id`: none of the pair's instances is left pending or running,
and the run's security group (with its pair rule) is gone.

The sandbox is served (`instbench sandbox serve --max-parallel 2`, reached through
AWS_ENDPOINT_URL) so the cloud outlives its controller; the served sandbox runs the
server and the client of the pair at once, as EC2 would.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.procs import INSTBENCH, sandbox_session, served_sandbox, sigkill_when, start_run

from instbench.aws.session import AwsSession
from instbench.journal import Journal

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("fault_pair_sigkill")]

RUN_TAG = "instbench:run-id"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    work = tmp_path_factory.mktemp("sandbox") / "work"
    with served_sandbox(work, "--max-parallel", "2") as env:
        yield env


def _states(session: AwsSession, run_id: str) -> dict[str, str]:
    pages = session.ec2().get_paginator("describe_instances")
    return {
        inst["InstanceId"]: inst["State"]["Name"]
        for page in pages.paginate(Filters=[{"Name": f"tag:{RUN_TAG}", "Values": [run_id]}])
        for reservation in page["Reservations"]
        for inst in reservation["Instances"]
    }


def _kill_mid_pair(served: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Start a network run against the served sandbox and SIGKILL its controller once the
    pair's client runs (its server launched): the run id and the client's id."""
    journal_path = tmp_path / "journal.sqlite"
    controller = start_run(
        served,
        "m7i.large",
        5,  # the default
        ["-b", "network", "--journal", str(journal_path), "--output-dir", str(tmp_path / "data")],
    )
    found: dict[str, str] = {}

    def pair_running() -> bool:
        assert controller.poll() is None, f"controller ended early ({controller.returncode})"
        if not journal_path.exists():
            return False
        journal = Journal(journal_path)
        try:
            runs = journal.runs()
            if not runs:
                return False
            rid = runs[0].run_id
            [row] = journal.tasks(rid)
            servers = [e for e in journal.events(rid) if e[2] == "pair-server-launched"]
            if row.state == "running" and row.instance_id and servers:
                found.update(run_id=rid, client=row.instance_id)
                return True
            return False
        finally:
            journal.close()

    sigkill_when(controller, pair_running, 120, "the pair's client running")
    return found


def test_cleanup_after_sigkill_mid_pair_leaves_nothing(
    served: dict[str, str], tmp_path: Path
) -> None:
    journal_path = tmp_path / "journal.sqlite"
    found = _kill_mid_pair(served, tmp_path)
    session = sandbox_session(served)
    rid = found["run_id"]
    before = _states(session, rid)
    assert len(before) == 2 and found["client"] in before  # the server and the client
    run_filter = [{"Name": f"tag:{RUN_TAG}", "Values": [rid]}]
    placed = session.ec2().describe_placement_groups(Filters=run_filter)["PlacementGroups"]
    assert placed, "the pair ran in the run's cluster placement group"
    assert {"pending", "running"} & set(before.values()), "both ended before the kill"

    cleaned = subprocess.run(
        [INSTBENCH, "cleanup", "--run-id", rid],
        env=served,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    after = _states(session, rid)
    assert set(after) == set(before)
    assert [i for i, s in after.items() if s in {"pending", "running"}] == []
    groups = session.ec2().describe_security_groups(
        Filters=[{"Name": f"tag:{RUN_TAG}", "Values": [rid]}]
    )["SecurityGroups"]
    assert groups == []  # and with it the pair's inbound rule
    left = session.ec2().describe_placement_groups(Filters=run_filter)["PlacementGroups"]
    assert left == []  # deleted once their instances were gone
    # The journal names both instances of the pair: the client as the task's instance,
    # the server (launched, never ended by the killed controller) beside it.
    shown = subprocess.run(
        [INSTBENCH, "runs", "show", rid, "--journal", str(journal_path), "--json"],
        env=served,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    [task] = doc["tasks"]
    [server] = doc["pair_servers"]
    assert {task["instance_id"], server["instance_id"]} == set(before)
    assert server["task_id"] == task["task_id"] and server["ended_at"] is None


def test_resume_after_sigkill_mid_pair_reattaches_both_sides_and_leaves_nothing(
    served: dict[str, str], tmp_path: Path
) -> None:
    """--resume finds the pair's client and server in the journal: it watches the running
    pair again (or launches it again, if it ended meanwhile), stores one result, ends the
    server with the pair, and leaves nothing running."""
    journal_path = tmp_path / "journal.sqlite"
    found = _kill_mid_pair(served, tmp_path)
    rid = found["run_id"]
    resumed = subprocess.run(
        [
            *(INSTBENCH, "run", "--resume", rid, "--bucket", served["INSTBENCH_BUCKET"]),
            *("--journal", str(journal_path), "--output-dir", str(tmp_path / "data")),
        ],
        env=served,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    journal = Journal(journal_path)
    try:
        [row] = journal.tasks(rid)
        servers = [
            json.loads(detail or "{}")
            for _at, _task, event, detail in journal.events(rid)
            if event == "pair-server-ended"
        ]
    finally:
        journal.close()
    assert row.state == "result_stored"
    assert servers and servers[-1]["why"] == "pair concluded"
    assert len(list((tmp_path / "data" / "raw").rglob("*.json"))) == 1
    session = sandbox_session(served)
    assert [i for i, s in _states(session, rid).items() if s in {"pending", "running"}] == []
    groups = session.ec2().describe_security_groups(
        Filters=[{"Name": f"tag:{RUN_TAG}", "Values": [rid]}]
    )["SecurityGroups"]
    assert groups == []
