"""Launching against moto over HTTP: what the instance looks like, and typed refusals.

Capacity errors cannot be produced by moto; they are injected with a botocore
`before-call` hook, which answers the way EC2 would, so our error mapping is exercised.
"""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from instbench.aws import ami, launch, network
from instbench.aws.launch import LaunchSpec
from instbench.aws.session import AwsSession
from instbench.errors import CapacityError, LaunchRejected, UserDataTooLarge, UserError

EXPIRES = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)


def spec(session: AwsSession, **changes: Any) -> LaunchSpec:
    base: dict[str, Any] = {
        "run_id": "r-1",
        "task_id": "m7i.large-stream-0",
        "instance_type": "m7i.large",
        "image_id": ami.latest_al2023(session, "x86_64").image_id,
        "expires_at": EXPIRES,
        "user_data": "#!/bin/bash\necho hello\n",
        "security_group_ids": [],
        "availability_zone": "us-east-1a",
    }
    base.update(changes)
    return LaunchSpec(**base)


def describe(session: AwsSession, instance_id: str) -> dict[str, Any]:
    reservations = session.ec2().describe_instances(InstanceIds=[instance_id])["Reservations"]
    return dict(reservations[0]["Instances"][0])


def refuse(code: str, status: int = 400) -> Any:
    def handler(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        body = {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        return AWSResponse("https://ec2", status, {}, None), body

    return handler


def instance_count(session: AwsSession) -> int:
    return sum(len(r["Instances"]) for r in session.ec2().describe_instances()["Reservations"])


def test_launched_instance_is_locked_down_and_tagged(aws_session: AwsSession) -> None:
    vpc = network.default_vpc(aws_session)
    group = network.create_run_security_group(aws_session, "r-1", vpc, EXPIRES)
    s = spec(aws_session, security_group_ids=[group])
    instance_id = launch.launch_instance(aws_session, s)
    inst = describe(aws_session, instance_id)
    ec2 = aws_session.ec2()

    assert inst["InstanceType"] == "m7i.large"
    assert inst["Placement"]["AvailabilityZone"] == "us-east-1a"
    assert inst["MetadataOptions"]["HttpTokens"] == "required"
    assert inst["MetadataOptions"]["HttpEndpoint"] == "enabled"
    assert inst["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    assert "IamInstanceProfile" not in inst
    assert [g["GroupId"] for g in inst["SecurityGroups"]] == [group]
    assert inst["ClientToken"] == "r-1-m7i.large-stream-0-0"
    behaviour = ec2.describe_instance_attribute(
        InstanceId=instance_id, Attribute="instanceInitiatedShutdownBehavior"
    )["InstanceInitiatedShutdownBehavior"]["Value"]
    assert behaviour == "terminate"
    user_data = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    assert base64.b64decode(user_data["UserData"]["Value"]).decode() == s.user_data

    expected_tags = {
        "instbench:run-id": "r-1",
        "instbench:task": "m7i.large-stream-0",
        "instbench:expires-at": "2030-05-06T07:08:09Z",
        "Name": "instbench-r-1-m7i.large-stream-0",
    }
    assert {t["Key"]: t["Value"] for t in inst["Tags"]} == expected_tags
    (volume,) = ec2.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
    )["Volumes"]
    assert (volume["VolumeType"], volume["Encrypted"]) == ("gp3", True)
    assert 8 <= volume["Size"] <= 16
    assert volume["Attachments"][0]["Device"] == "/dev/xvda"
    (root,) = inst["BlockDeviceMappings"]
    assert (root["DeviceName"], root["Ebs"]["DeleteOnTermination"]) == ("/dev/xvda", True)
    assert {t["Key"]: t["Value"] for t in volume["Tags"]} == expected_tags


def test_request_shape_for_spot_and_subnet(aws_session: AwsSession) -> None:
    seen: list[dict[str, Any]] = []
    aws_session.register_hook(
        "provide-client-params.ec2.RunInstances", lambda params, **_: seen.append(dict(params))
    )
    subnet = network.default_subnets(aws_session, network.default_vpc(aws_session))[0]
    s = spec(
        aws_session,
        market="spot",
        spot_max_price="0.25",
        subnet_id=subnet.id,
        availability_zone=subnet.availability_zone,
        attempt=2,
        key_name="debug-key",
    )
    aws_session.ec2().create_key_pair(KeyName="debug-key")
    launch.launch_instance(aws_session, s)
    (request,) = seen
    assert request["MinCount"] == request["MaxCount"] == 1
    assert request["SubnetId"] == subnet.id
    assert request["KeyName"] == "debug-key"
    assert request["ClientToken"] == "r-1-m7i.large-stream-0-2"
    assert request["InstanceMarketOptions"] == {
        "MarketType": "spot",
        "SpotOptions": {
            "SpotInstanceType": "one-time",
            "InstanceInterruptionBehavior": "terminate",
            "MaxPrice": "0.25",
        },
    }
    kinds = [t["ResourceType"] for t in request["TagSpecifications"]]
    assert kinds == ["instance", "volume", "spot-instances-request"]
    assert "IamInstanceProfile" not in request


def test_placement_group_joins_the_zone_in_the_request(aws_session: AwsSession) -> None:
    seen: list[dict[str, Any]] = []
    aws_session.register_hook(
        "provide-client-params.ec2.RunInstances", lambda params, **_: seen.append(dict(params))
    )
    aws_session.ec2().create_placement_group(GroupName="instbench-r-1-a", Strategy="cluster")
    instance = launch.launch_instance(
        aws_session, spec(aws_session, placement_group="instbench-r-1-a")
    )
    (request,) = seen
    group = "instbench-r-1-a"
    assert request["Placement"] == {"AvailabilityZone": "us-east-1a", "GroupName": group}
    assert describe(aws_session, instance)["Placement"]["GroupName"] == "instbench-r-1-a"
    # Without a zone, the group alone.
    alone = launch.build_request(
        dataclasses.replace(spec(aws_session), availability_zone=None, placement_group="g"),
        "/dev/xvda",
        8,
    )
    assert alone["Placement"] == {"GroupName": "g"}
    assert "Placement" not in launch.build_request(
        dataclasses.replace(spec(aws_session), availability_zone=None), "/dev/xvda", 8
    )


def test_client_token_is_deterministic_and_short() -> None:
    assert launch.client_token("r", "t", 0) == launch.client_token("r", "t", 0)
    assert launch.client_token("r", "t", 0) != launch.client_token("r", "t", 1)
    long = launch.client_token("r" * 60, "m7i-flex.48xlarge-stream-12", 3)
    assert len(long) <= 64 and long.endswith("-3")
    assert long == launch.client_token("r" * 60, "m7i-flex.48xlarge-stream-12", 3)


def test_user_data_over_16kb_is_refused_before_any_call(aws_session: AwsSession) -> None:
    """moto accepts 20 KB of user data; EC2 does not, so nothing must be launched."""
    with pytest.raises(UserDataTooLarge):
        launch.launch_instance(aws_session, spec(aws_session, user_data="#" * (16 * 1024 + 1)))
    assert instance_count(aws_session) == 0


def test_ec2_refusals_are_typed(aws_session: AwsSession) -> None:
    """Capacity errors (retry elsewhere) apart from bad requests (never retry)."""
    answer = {"code": "", "status": 400}

    def refuse_current(**kwargs: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return refuse(answer["code"], answer["status"])(**kwargs)  # type: ignore[no-any-return]

    aws_session.register_hook("before-call.ec2.RunInstances", refuse_current)
    s = spec(aws_session)
    for code in sorted(launch.CAPACITY_CODES):
        answer.update(code=code, status=500)
        with pytest.raises(CapacityError) as capacity:
            launch.launch_instance(aws_session, s)
        assert capacity.value.code == code and not isinstance(capacity.value, UserError)
    for code in ("InvalidParameterValue", "InvalidAMIID.NotFound", "UnauthorizedOperation"):
        answer.update(code=code, status=400)
        with pytest.raises(LaunchRejected) as rejected:
            launch.launch_instance(aws_session, s)
        assert rejected.value.code == code and rejected.value.exit_code == 2


def test_real_moto_refusal_is_mapped(aws_session: AwsSession) -> None:
    """An unknown subnet: moto itself answers InvalidSubnetID.NotFound."""
    s = spec(aws_session, subnet_id="subnet-0123456789abcdef0")
    with pytest.raises(LaunchRejected, match=r"InvalidSubnetID\.NotFound"):
        launch.launch_instance(aws_session, s)
    assert instance_count(aws_session) == 0


BAD_SPECS: list[dict[str, Any]] = [
    {"instance_type": "m7i.large;id"},
    {"subnet_id": "subnet-;id"},
    {"security_group_ids": ["sg-x"]},
    {"market": "reserved"},
    {"market": "spot", "spot_max_price": "1e9"},
    {"run_id": "r 1"},
    {"task_id": "$(id)"},
    {"extra_tags": {"instbench:run-id": "other"}},
    {"extra_tags": {"aws:x": "y"}},
    {"user_data": "#" * (16 * 1024 + 1)},
    {"placement_group": "pairs; rm -rf /"},
    {"placement_group": ""},
]


@pytest.mark.parametrize("changes", BAD_SPECS)
def test_bad_specs_are_refused_offline(changes: dict[str, Any]) -> None:
    base = LaunchSpec(
        run_id="r-1",
        task_id="t-0",
        instance_type="m7i.large",
        image_id="ami-0123456789abcdef0",
        expires_at=EXPIRES,
        user_data="#!/bin/bash\n",
        security_group_ids=[],
    )
    launch.build_request(base, "/dev/xvda", 8)  # the base itself is fine
    with pytest.raises(UserError):
        launch.build_request(dataclasses.replace(base, **changes), "/dev/xvda", 8)


def test_bad_specs_never_reach_aws(aws_session: AwsSession) -> None:
    for changes in [*BAD_SPECS, {"root_volume_gib": 64}]:
        with pytest.raises(UserError):
            launch.launch_instance(aws_session, spec(aws_session, **changes))
    assert instance_count(aws_session) == 0


def test_states_console_terminate_and_wait(aws_session: AwsSession) -> None:
    first = launch.launch_instance(aws_session, spec(aws_session))
    second = launch.launch_instance(aws_session, spec(aws_session, task_id="c7g.large-stream-0"))
    other = launch.launch_instance(aws_session, spec(aws_session, run_id="r-2"))
    assert launch.describe_instances_by_run(aws_session, "r-1") == {
        first: "running",
        second: "running",
    }
    states = launch.instance_states(aws_session, [first, "i-0123456789abcdef0"])
    assert states == {first: ("running", "")}
    assert isinstance(launch.console_output(aws_session, first), str)
    assert launch.console_output(aws_session, "i-0123456789abcdef0") == ""

    assert launch.terminate_instances(aws_session, [first, second, "i-0123456789abcdef0"]) == [
        first,
        second,
    ]
    assert launch.wait_terminated(aws_session, [first, second], timeout=10, delay=1)
    state, reason = launch.instance_states(aws_session, [first])[first]
    assert state == "terminated" and reason
    assert launch.terminate_instances(aws_session, [first]) == []  # already gone: no call
    assert launch.describe_instances_by_run(aws_session, "r-2") == {other: "running"}
    # Only what still needs terminating, when asked: r-1's two are gone, r-2's one is not.
    assert launch.describe_instances_by_run(aws_session, "r-1", launch.LIVE_STATES) == {}
    assert launch.describe_instances_by_run(aws_session, "r-2", launch.LIVE_STATES) == {
        other: "running"
    }


def test_ended_instances_reports_only_those_going_or_gone(aws_session: AwsSession) -> None:
    running = launch.launch_instance(aws_session, spec(aws_session))
    ending = launch.launch_instance(aws_session, spec(aws_session, task_id="c7g.large-stream-0"))
    unknown = "i-0123456789abcdef0"
    assert launch.ended_instances(aws_session, [running, ending, unknown]) == {}
    launch.terminate_instance(aws_session, ending)
    ended = launch.ended_instances(aws_session, [running, ending, unknown])
    assert set(ended) == {ending}
    assert ended[ending][0] in {"shutting-down", "terminated"} and ended[ending][1]
    # Again, and for an id EC2 never knew: both mean "gone", neither raises.
    launch.terminate_instance(aws_session, ending)
    launch.terminate_instance(aws_session, unknown)
    assert launch.instance_states(aws_session, [running])[running][0] == "running"


def test_wait_terminated_fails_fast_for_a_running_instance(aws_session: AwsSession) -> None:
    instance = launch.launch_instance(aws_session, spec(aws_session))
    # Nobody asked it to terminate: the waiter keeps polling 'running' until the timeout.
    assert launch.wait_terminated(aws_session, [instance], timeout=1, delay=1) is False
