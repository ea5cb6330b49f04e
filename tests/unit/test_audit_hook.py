"""The process-wide audit hook, and the failure/cleanup calls the audited run never makes.

`register_process_hook` puts a botocore handler on every `AwsSession` built afterwards,
which is how tests/integration/conftest.py records every operation the controller calls,
whoever built the session. The policy audit (tests/integration/test_policy_audit.py) runs
one successful fleet, which never terminates an instance itself (instances terminate
themselves) nor reads a console (only failed tasks do): here the controller's own code
for those paths (`launch.console_output` and `launch.terminate_instances`, as
`Fleet._fail` calls them, and `cleanup.sweep`) runs against moto under the recorder, and
the policy must authorise every operation it made.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from tests.integration.conftest import OperationRecorder

from instbench.aws import ami, cleanup, launch
from instbench.aws.launch import LaunchSpec
from instbench.aws.policy import audit, permission_for
from instbench.aws.session import (
    AwsSession,
    AwsSettings,
    register_process_hook,
    unregister_process_hook,
)
from instbench.sandbox.motoserver import SANDBOX_REGION

EVENT = "before-call.*.*"


@pytest.fixture()
def recorder() -> Iterator[OperationRecorder]:
    rec = OperationRecorder()
    register_process_hook(EVENT, rec.hook)
    try:
        yield rec
    finally:
        unregister_process_hook(EVENT, rec.hook)


def _session(endpoint: str) -> AwsSession:
    return AwsSession(AwsSettings(region=SANDBOX_REGION, endpoint_url=endpoint))


def _launch(session: AwsSession, run_id: str, task_id: str) -> str:
    spec = LaunchSpec(
        run_id=run_id,
        task_id=task_id,
        instance_type="m7i.large",
        image_id=ami.latest_al2023(session, "x86_64").image_id,
        expires_at=datetime.now(UTC) + timedelta(hours=1),
        user_data="#!/bin/bash\necho hello\n",
        security_group_ids=[],
        availability_zone="us-east-1a",
    )
    return launch.launch_instance(session, spec)


def test_process_hook_reaches_sessions_built_later_only(
    moto_endpoint: str, recorder: OperationRecorder
) -> None:
    before = OperationRecorder()
    earlier = _session(moto_endpoint)  # built before `before` is registered
    register_process_hook(EVENT, before.hook)
    unregister_process_hook(EVENT, before.hook)
    later = _session(moto_endpoint)  # built after it was removed again
    for session in (earlier, later):
        launch.instance_states(session, ["i-0123456789abcdef0"])
    assert before.as_mapping() == {}
    # The fixture's recorder was registered before both sessions: it saw both calls.
    assert recorder.as_mapping() == {"ec2:DescribeInstances": ["instbench.aws.launch"]}


def test_failure_and_cleanup_paths_are_authorised_by_the_policy(
    moto_endpoint: str, recorder: OperationRecorder
) -> None:
    session = _session(moto_endpoint)  # as the fleet builds its own, after the hook
    failed = _launch(session, "r-audit", "m7i.large-stream-0")
    leftover = _launch(session, "r-audit", "m7i.large-stream-1")

    # Fleet._fail: keep the console, then terminate the task's instance.
    assert isinstance(launch.console_output(session, failed), str)
    assert launch.terminate_instances(session, [failed]) == [failed]
    # instbench cleanup: sweep what the run left behind.
    report = cleanup.sweep(session, now=datetime.now(UTC), run_id="r-audit")
    assert [i for i, _, _ in report.instances] == [leftover]

    called = recorder.as_mapping()
    assert called["ec2:GetConsoleOutput"] == ["instbench.aws.launch"]
    assert set(called["ec2:TerminateInstances"]) == {
        "instbench.aws.cleanup",
        "instbench.aws.launch",
    }
    result = audit(called)
    assert result.missing == {}, result.explain()
    for operation in ("ec2:GetConsoleOutput", "ec2:TerminateInstances"):
        perm = permission_for(operation)
        assert perm is not None and perm.unobserved, operation  # exempt, with the reason
    terminate = permission_for("ec2:TerminateInstances")
    assert terminate is not None and terminate.scope == "run-tagged"
