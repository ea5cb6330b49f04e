"""The run's cluster placement groups (aws/network.py), a launch into one, and cleanup,
against the moto server over HTTP (its placement-group API is `sandbox.moto_placement`).

What no fake produces on its own (a used-up quota, a denied call, a group EC2 releases
only after a while) is injected with a botocore hook, as in test_network.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from tests.integration.test_network import fail_with
from typer.testing import CliRunner

from instbench.aws import ami, launch, network
from instbench.aws.cleanup import sweep
from instbench.aws.launch import LaunchSpec
from instbench.aws.session import AwsSession
from instbench.cli.app import app
from instbench.errors import AwsConfigError, LaunchRejected, QuotaExceeded
from instbench.journal import Journal

RUN = "20261205T001500Z-a1b2c3"
OTHER = "20261205T001501Z-d4e5f6"
ZONE = "us-east-1a"
EXPIRES = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def _spec(session: AwsSession, run_id: str, task: str, group: str | None) -> LaunchSpec:
    return LaunchSpec(
        run_id=run_id,
        task_id=task,
        instance_type="m7i.large",
        image_id=ami.latest_al2023(session, "x86_64").image_id,
        expires_at=datetime.now(UTC) + timedelta(hours=1),
        user_data="#!/bin/bash\necho hello\n",
        security_group_ids=[],
        availability_zone=ZONE,
        placement_group=group,
    )


def _placement(session: AwsSession, instance_id: str) -> dict[str, str]:
    reply = session.ec2().describe_instances(InstanceIds=[instance_id])
    return dict(reply["Reservations"][0]["Instances"][0]["Placement"])


def test_create_tags_finds_and_deletes_the_run_group(aws_session: AwsSession) -> None:
    name = network.create_run_placement_group(
        aws_session, RUN, ZONE, EXPIRES, extra_tags={"team": "perf"}
    )
    assert name == f"instbench-{RUN}-{ZONE}"
    (group,) = network.find_run_placement_groups(aws_session, RUN)
    assert group.name == name and group.run_id == RUN and group.strategy == "cluster"
    assert group.state == "available" and group.group_id.startswith("pg-")
    assert group.tags == {
        "instbench:run-id": RUN,
        "instbench:expires-at": "2030-01-02T03:04:05Z",
        "Name": name,
        "team": "perf",
    }
    # A resume finds the same group; another run's group is apart.
    assert network.create_run_placement_group(aws_session, RUN, ZONE, EXPIRES) == name
    other = network.create_run_placement_group(aws_session, OTHER, ZONE, EXPIRES)
    assert [g.name for g in network.find_run_placement_groups(aws_session, RUN)] == [name]
    assert [g.name for g in network.find_run_placement_groups(aws_session)] == sorted([name, other])

    assert network.delete_placement_group(aws_session, name) is True
    assert network.find_run_placement_groups(aws_session, RUN) == []
    assert network.delete_placement_group(aws_session, name) is True  # already gone
    assert [g.name for g in network.find_run_placement_groups(aws_session)] == [other]


def test_a_foreign_group_of_that_name_is_not_used(aws_session: AwsSession) -> None:
    name = network.placement_group_name(RUN, ZONE)
    aws_session.ec2().create_placement_group(GroupName=name, Strategy="cluster")  # untagged
    with pytest.raises(AwsConfigError) as err:
        network.create_run_placement_group(aws_session, RUN, ZONE, EXPIRES)
    assert str(err.value) == (
        f"a placement group named {name} exists in us-east-1 but is not this run's: "
        "delete it or use another run id"
    )


def test_used_up_quota_is_one_line(aws_session: AwsSession) -> None:
    aws_session.ec2().meta.events.register(
        "before-call.ec2.CreatePlacementGroup", fail_with("PlacementGroupLimitExceeded", 1)
    )
    with pytest.raises(QuotaExceeded) as err:
        network.create_run_placement_group(aws_session, RUN, ZONE, EXPIRES)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"cannot create placement group instbench-{RUN}-{ZONE}: ")
    assert "quota in us-east-1 is used up" in message and "instbench cleanup" in message
    assert network.find_run_placement_groups(aws_session) == []


def test_denied_create_names_the_permission(aws_session: AwsSession) -> None:
    aws_session.ec2().meta.events.register(
        "before-call.ec2.CreatePlacementGroup", fail_with("UnauthorizedOperation", 1, 403)
    )
    with pytest.raises(AwsConfigError, match="needs ec2:CreatePlacementGroup with the run tag"):
        network.create_run_placement_group(aws_session, RUN, ZONE, EXPIRES)


def test_bad_zone_is_refused_before_any_call() -> None:
    with pytest.raises(ValueError, match="not an availability zone"):
        network.placement_group_name(RUN, "us-east-1a; rm -rf /")


def test_launch_into_the_group_shows_in_describe_instances(aws_session: AwsSession) -> None:
    name = network.create_run_placement_group(aws_session, RUN, ZONE, EXPIRES)
    server = launch.launch_instance(aws_session, _spec(aws_session, RUN, "net-0-server", name))
    client = launch.launch_instance(aws_session, _spec(aws_session, RUN, "net-0", name))
    for instance in (server, client):
        placement = _placement(aws_session, instance)
        assert placement["GroupName"] == name and placement["AvailabilityZone"] == ZONE
    alone = launch.launch_instance(aws_session, _spec(aws_session, RUN, "stream-0", None))
    assert not _placement(aws_session, alone).get("GroupName")


def test_launch_into_an_unknown_group_is_rejected(aws_session: AwsSession) -> None:
    missing = network.placement_group_name(RUN, ZONE)
    with pytest.raises(LaunchRejected) as err:
        launch.launch_instance(aws_session, _spec(aws_session, RUN, "net-0", missing))
    assert err.value.code == "InvalidPlacementGroup.Unknown"
    assert aws_session.ec2().describe_instances()["Reservations"] == []


def test_delete_while_an_instance_runs_is_false_then_true(aws_session: AwsSession) -> None:
    name = network.create_run_placement_group(aws_session, RUN, ZONE, EXPIRES)
    instance = launch.launch_instance(aws_session, _spec(aws_session, RUN, "net-0", name))
    # Still running: the caller must terminate it first; nothing is waited for.
    assert network.delete_placement_group(aws_session, name, [instance], delay=1) is False
    assert [g.name for g in network.find_run_placement_groups(aws_session, RUN)] == [name]
    launch.terminate_instances(aws_session, [instance])
    assert network.delete_placement_group(aws_session, name, [instance], delay=1) is True
    assert network.find_run_placement_groups(aws_session, RUN) == []


def test_delete_waits_until_ec2_releases_the_group(aws_session: AwsSession) -> None:
    name = network.create_run_placement_group(aws_session, RUN, ZONE, EXPIRES)
    instance = launch.launch_instance(aws_session, _spec(aws_session, RUN, "net-0", name))
    launch.terminate_instances(aws_session, [instance])
    # EC2 answers InUse for a while after the instances are terminated.
    hook = fail_with("InvalidPlacementGroup.InUse", times=3)
    aws_session.ec2().meta.events.register("before-call.ec2.DeletePlacementGroup", hook)
    assert network.delete_placement_group(aws_session, name, [instance], delay=1) is True
    assert hook.state["seen"] == 4
    assert network.find_run_placement_groups(aws_session, RUN) == []


def test_delete_gives_up_after_the_timeout(aws_session: AwsSession) -> None:
    name = network.create_run_placement_group(aws_session, RUN, ZONE, EXPIRES)
    hook = fail_with("InvalidPlacementGroup.InUse", times=99)
    aws_session.ec2().meta.events.register("before-call.ec2.DeletePlacementGroup", hook)
    assert network.delete_placement_group(aws_session, name, timeout=2, delay=1) is False


def test_other_errors_of_the_delete_are_raised(aws_session: AwsSession) -> None:
    aws_session.ec2().meta.events.register(
        "before-call.ec2.DeletePlacementGroup", fail_with("UnauthorizedOperation", 1, 403)
    )
    with pytest.raises(ClientError):
        network.delete_placement_group(aws_session, network.placement_group_name(RUN, ZONE))


def test_sweep_deletes_the_run_groups_after_its_instances(aws_session: AwsSession) -> None:
    mine = network.create_run_placement_group(aws_session, RUN, ZONE, EXPIRES)
    mine_b = network.create_run_placement_group(aws_session, RUN, "us-east-1b", EXPIRES)
    theirs = network.create_run_placement_group(aws_session, OTHER, ZONE, EXPIRES)
    inside = launch.launch_instance(aws_session, _spec(aws_session, RUN, "net-0", mine))
    their_instance = launch.launch_instance(aws_session, _spec(aws_session, OTHER, "net-0", theirs))

    dry = sweep(aws_session, now=datetime.now(UTC), run_id=RUN, dry_run=True)
    assert sorted(dry.placement_groups) == [(mine, RUN), (mine_b, RUN)]
    assert len(network.find_run_placement_groups(aws_session)) == 3

    report = sweep(aws_session, now=datetime.now(UTC), run_id=RUN)
    assert report.errors == []
    assert [i for i, _, _ in report.instances] == [inside]
    assert sorted(report.placement_groups) == [(mine, RUN), (mine_b, RUN)]
    assert network.find_run_placement_groups(aws_session, RUN) == []
    # The other run's group and instance are untouched.
    assert [g.name for g in network.find_run_placement_groups(aws_session)] == [theirs]
    assert launch.instance_states(aws_session, [their_instance])[their_instance][0] in {
        "pending",
        "running",
    }


def test_sweep_of_expired_groups(aws_session: AwsSession) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    expired = network.create_run_placement_group(aws_session, RUN, ZONE, past)
    live = network.create_run_placement_group(aws_session, OTHER, ZONE, EXPIRES)
    report = sweep(aws_session, now=datetime.now(UTC))
    assert report.placement_groups == [(expired, RUN)]
    assert [g.name for g in network.find_run_placement_groups(aws_session)] == [live]


def test_sweep_reports_a_group_it_could_not_delete(aws_session: AwsSession) -> None:
    name = network.create_run_placement_group(aws_session, RUN, ZONE, EXPIRES)
    aws_session.ec2().meta.events.register(
        "before-call.ec2.DeletePlacementGroup", fail_with("InvalidPlacementGroup.InUse", 99)
    )
    report = sweep(aws_session, now=datetime.now(UTC), run_id=RUN, placement_timeout=2)
    assert report.placement_groups == [(name, RUN)]
    assert report.errors == [f"{name}: InvalidPlacementGroup.InUse"]


def test_cleanup_command_deletes_and_journals_the_run_groups(
    moto_endpoint: str,
    aws_session: AwsSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("COLUMNS", "200")
    path = tmp_path / "journal.sqlite"
    journal = Journal(path)
    journal.create_run(RUN, "us-east-1", "aws", {}, [("net-0", "m7i.large", "network", 0)])
    journal.set_placement_group(RUN, network.placement_group_name(RUN, ZONE), "pending")
    name = network.create_run_placement_group(aws_session, RUN, ZONE, EXPIRES)
    journal.set_placement_group(RUN, name, "created")
    journal.transition(RUN, "net-0", "launching")
    instance = launch.launch_instance(aws_session, _spec(aws_session, RUN, "net-0", name))
    journal.transition(RUN, "net-0", "running", instance_id=instance)
    theirs = network.create_run_placement_group(aws_session, OTHER, ZONE, EXPIRES)
    journal.close()  # the controller is gone (SIGKILL)

    result = CliRunner().invoke(app, ["cleanup", "--run-id", RUN, "--journal", str(path)])
    assert result.exit_code == 0, result.output
    assert "swept 1 instances, 0 spot requests, 0 security groups, 1 placement groups" in (
        result.output
    )
    assert f"placement group {name} (run {RUN})" in result.output
    assert [g.name for g in network.find_run_placement_groups(aws_session)] == [theirs]
    journal = Journal(path)
    try:
        assert journal.placement_groups(RUN) == []
        events = [e[2] for e in journal.events(RUN)]
        assert events.count("placement-group-deleted") == 1
        [cleanup] = [e for e in journal.events(RUN) if e[2] == "cleanup"]
        assert cleanup[3] is not None and "1 placement groups" in cleanup[3]
        assert journal.run(RUN).status == "swept"
    finally:
        journal.close()


def test_sweep_still_ends_instances_when_placement_groups_cannot_be_listed(
    aws_session: AwsSession,
) -> None:
    instance = launch.launch_instance(aws_session, _spec(aws_session, RUN, "stream-0", None))
    aws_session.ec2().meta.events.register(
        "before-call.ec2.DescribePlacementGroups", fail_with("UnauthorizedOperation", 1, 403)
    )
    report = sweep(aws_session, now=datetime.now(UTC), run_id=RUN)
    assert [i for i, _, _ in report.instances] == [instance]
    assert report.errors == ["placement groups: UnauthorizedOperation"]
    assert launch.instance_states(aws_session, [instance])[instance][0] == "terminated"
