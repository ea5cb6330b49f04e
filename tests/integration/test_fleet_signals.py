"""Ctrl-C during a fleet run (issue 4, "Signals"), in the sandbox over moto.

Real SIGINTs, raised from botocore event hooks at the moment that matters: the first once
an instance is launched (the controller is waiting), the second while the controller is
terminating. The first must end every instance and say that a second Ctrl-C exits at
once; the second must exit with code 130 and name the cleanup command, which then leaves
nothing running.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from instbench.aws.cleanup import sweep
from instbench.aws.session import AwsSession
from instbench.errors import CleanupInterrupted
from instbench.fleet.plan import FleetOptions
from instbench.fleet.run import execute, plan_run
from instbench.journal import Journal
from instbench.sandbox.runtime import Sandbox


@pytest.fixture()
def sandbox(moto_endpoint: str, tmp_path: Path) -> Iterator[Sandbox]:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with Sandbox(endpoint=moto_endpoint, workdir=tmp_path / "cloud", term_grace=1.0) as sb:
            yield sb
    finally:
        signal.signal(signal.SIGINT, previous)


def _sigint_once(fired: list[str], name: str) -> Any:
    def hook(**_: Any) -> None:
        if name not in fired:
            fired.append(name)
            signal.raise_signal(signal.SIGINT)

    return hook


def _run(sandbox: Sandbox, session: AwsSession, tmp: Path, notices: list[str]) -> Any:
    opts = FleetOptions(
        instance_types=["m7i.large", "c7g.large"],
        benchmarks=("idle",),
        bucket=sandbox.bucket,
        collection_method="sandbox",
        timeout_s=120,
        agent_args=["--duration-s", "60"],
    )
    plan = plan_run(session, opts, datetime.now(UTC))
    journal = Journal(tmp / "journal.sqlite")
    outcome = execute(
        session, plan, journal, tmp / "data", lambda s: None, True, notice=notices.append
    )
    return outcome, plan


def _live(sandbox: Sandbox) -> list[str]:
    ec2 = sandbox.session.ec2()
    return [
        i["InstanceId"]
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] not in {"terminated", "shutting-down"}
    ]


def test_first_ctrl_c_terminates_everything(sandbox: Sandbox, tmp_path: Path) -> None:
    fired: list[str] = []
    notices: list[str] = []
    session = AwsSession(sandbox.aws_settings())
    session.register_hook("after-call.ec2.RunInstances", _sigint_once(fired, "first"))

    outcome, plan = _run(sandbox, session, tmp_path, notices)

    assert fired == ["first"]
    assert outcome.interrupted and not outcome.succeeded
    assert any("Ctrl-C again exits at once" in n and plan.run_id in n for n in notices)
    assert _live(sandbox) == []


def test_second_ctrl_c_exits_and_names_cleanup(sandbox: Sandbox, tmp_path: Path) -> None:
    fired: list[str] = []
    notices: list[str] = []
    session = AwsSession(sandbox.aws_settings())
    session.register_hook("after-call.ec2.RunInstances", _sigint_once(fired, "first"))
    session.register_hook("before-call.ec2.TerminateInstances", _sigint_once(fired, "second"))

    with pytest.raises(CleanupInterrupted) as caught:
        _run(sandbox, session, tmp_path, notices)

    assert fired == ["first", "second"]
    run_id = caught.value.run_id
    assert caught.value.exit_code == 130
    assert f"instbench cleanup --run-id {run_id}" in str(caught.value)
    assert len(notices) == 1
    # The instance the second Ctrl-C left behind is still there; cleanup ends it.
    assert _live(sandbox)
    report = sweep(AwsSession(sandbox.aws_settings()), now=datetime.now(UTC), run_id=run_id)
    assert report.instances
    assert _live(sandbox) == []
