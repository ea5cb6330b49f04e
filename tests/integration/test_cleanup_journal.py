"""Issue 21 case 9: `cleanup --run-id` with a typo said "swept 0" and exited 0, and
cleanup never wrote into the journal what it did.

Now a run id that neither the journal nor any tag knows is a one-line `UserError` (exit 2)
and nothing is swept; a known run's swept instances are marked terminated in its journal,
the cleanup is an event of the run, and a run left `running` by a dead controller becomes
`swept`. Against a moto server over HTTP, through the real command.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from instbench.aws import ami, launch
from instbench.aws.launch import LaunchSpec
from instbench.aws.session import AwsSession
from instbench.cli.app import app
from instbench.errors import UserError
from instbench.journal import Journal

RUN = "20261204T202533Z-8f3a1c"
TASK = "m7i.large-stream-0"


@pytest.fixture()
def env(moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / "journal.sqlite"


def _launch(session: AwsSession, run_id: str) -> str:
    spec = LaunchSpec(
        run_id=run_id,
        task_id=TASK,
        instance_type="m7i.large",
        image_id=ami.latest_al2023(session, "x86_64").image_id,
        expires_at=datetime.now(UTC) + timedelta(hours=1),
        user_data="#!/bin/bash\necho hello\n",
        security_group_ids=[],
    )
    return launch.launch_instance(session, spec)


def _states(session: AwsSession, instance_id: str) -> str:
    return launch.instance_states(session, [instance_id])[instance_id][0]


def test_unknown_run_id_is_an_error_and_sweeps_nothing(env: Path, aws_session: AwsSession) -> None:
    other = _launch(aws_session, RUN)  # a live instance of another run, untouched
    journal = Journal(env)
    journal.create_run(RUN, "us-east-1", "aws", {}, [(TASK, "m7i.large", "stream", 0)])
    journal.close()
    typo = RUN[:-1] + "d"
    result = CliRunner().invoke(app, ["cleanup", "--run-id", typo, "--journal", str(env)])
    assert isinstance(result.exception, UserError), result.output
    message = str(result.exception)
    assert message.startswith(f"unknown run {typo}: not in the journal {env}")
    assert "\n" not in message and "swept" not in result.output
    assert _states(aws_session, other) in {"pending", "running"}
    # No journal at all (the default path does not exist): still unknown, still exit 2.
    result = CliRunner().invoke(app, ["cleanup", "--run-id", typo])
    assert str(result.exception).startswith(f"unknown run {typo}: no readable journal at ")


def test_known_run_is_swept_and_recorded(env: Path, aws_session: AwsSession) -> None:
    instance = _launch(aws_session, RUN)
    journal = Journal(env)
    journal.create_run(RUN, "us-east-1", "aws", {}, [(TASK, "m7i.large", "stream", 0)])
    journal.transition(RUN, TASK, "launching")
    journal.transition(RUN, TASK, "running", instance_id=instance)
    journal.close()  # its controller is gone (no lock held)

    result = CliRunner().invoke(app, ["cleanup", "--run-id", RUN, "--journal", str(env)])
    assert result.exit_code == 0, result.output
    assert "swept 1 instances" in result.output
    assert _states(aws_session, instance) in {"shutting-down", "terminated"}
    journal = Journal(env)
    try:
        assert journal.task(RUN, TASK).terminated
        assert journal.run(RUN).status == "swept"
        [event] = [e for e in journal.events(RUN) if e[2] == "cleanup"]
        assert event[3] is not None and "terminated 1 instances" in event[3]
    finally:
        journal.close()
    # A known run with nothing left is not an error: swept 0, exit 0.
    result = CliRunner().invoke(app, ["cleanup", "--run-id", RUN, "--journal", str(env)])
    assert result.exit_code == 0, result.output
    assert "swept 0 instances" in result.output
