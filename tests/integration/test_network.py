"""Subnets, the default VPC and the run's security group, against moto over HTTP.

moto deletes a security group that instances still use (EC2 answers DependencyViolation),
so that answer is injected with a botocore hook to test the waiting path.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from instbench.aws import ami, launch, network
from instbench.aws.session import AwsSession, AwsSettings
from instbench.errors import AwsConfigError, UserError

EXPIRES = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def fail_with(code: str, times: int, status: int = 400) -> Any:
    """A before-call hook answering `code` the first `times` calls (then real calls)."""
    state = {"left": times, "seen": 0}

    def handler(**_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        state["seen"] += 1
        if state["left"] <= 0:
            return None
        state["left"] -= 1
        body = {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        return AWSResponse("https://ec2", status, {}, None), body

    handler.state = state  # type: ignore[attr-defined]
    return handler


def test_default_vpc_and_one_subnet_per_zone(aws_session: AwsSession) -> None:
    vpc = network.default_vpc(aws_session)
    subnets = network.default_subnets(aws_session, vpc)
    zones = [s.availability_zone for s in subnets]
    assert zones == sorted(set(zones)) and "us-east-1a" in zones
    assert all(s.vpc_id == vpc for s in subnets)


def test_no_default_vpc_says_pass_subnet(aws_session: AwsSession) -> None:
    ec2 = aws_session.ec2()
    vpc = network.default_vpc(aws_session)
    for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    ec2.delete_vpc(VpcId=vpc)
    with pytest.raises(AwsConfigError, match="no default VPC in us-east-1: pass --subnet"):
        network.default_vpc(aws_session)


def test_resolve_subnets_keeps_order_and_vpc(aws_session: AwsSession) -> None:
    subnets = network.default_subnets(aws_session, network.default_vpc(aws_session))
    ids = [subnets[2].id, subnets[0].id]
    resolved = network.resolve_subnets(aws_session, ids)
    assert [s.id for s in resolved] == ids
    assert [s.availability_zone for s in resolved] == [
        subnets[2].availability_zone,
        subnets[0].availability_zone,
    ]


def test_subnet_of_another_region_is_rejected(moto_endpoint: str) -> None:
    west = AwsSession(AwsSettings(region="us-west-2", endpoint_url=moto_endpoint))
    vpc = west.ec2().create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    foreign = west.ec2().create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    east = AwsSession(AwsSettings(region="us-east-1", endpoint_url=moto_endpoint))
    local = network.default_subnets(east, network.default_vpc(east))[0].id
    with pytest.raises(AwsConfigError) as err:
        network.resolve_subnets(east, [local, foreign])
    assert str(err.value) == (
        f"subnet {foreign} not found in us-east-1 (is it in another region or account?)"
    )


def test_subnets_of_two_vpcs_are_rejected(aws_session: AwsSession) -> None:
    ec2 = aws_session.ec2()
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    other = ec2.create_subnet(VpcId=vpc, CidrBlock="10.8.1.0/24")["Subnet"]["SubnetId"]
    default = network.default_subnets(aws_session, network.default_vpc(aws_session))[0].id
    with pytest.raises(AwsConfigError, match="are in different VPCs"):
        network.resolve_subnets(aws_session, [default, other])


@pytest.mark.parametrize("bad", ["subnet-xyz", "sub-0123456789abcdef0", "subnet-1234;id"])
def test_malformed_subnet_ids_never_reach_aws(aws_session: AwsSession, bad: str) -> None:
    with pytest.raises(UserError, match="malformed subnet id"):
        network.resolve_subnets(aws_session, [bad])


def test_run_security_group_has_no_inbound_rules_and_is_tagged(aws_session: AwsSession) -> None:
    vpc = network.default_vpc(aws_session)
    group_id = network.create_run_security_group(aws_session, "run-1", vpc, EXPIRES)
    (group,) = aws_session.ec2().describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    assert group["IpPermissions"] == []
    assert group["VpcId"] == vpc and group["GroupName"] == "instbench-run-1"
    tags = {t["Key"]: t["Value"] for t in group["Tags"]}
    assert tags == {
        "instbench:run-id": "run-1",
        "instbench:expires-at": "2030-01-02T03:04:05Z",
        "Name": "instbench-run-1",
    }
    # A resumed run creating it again gets the same group, not an error.
    assert network.create_run_security_group(aws_session, "run-1", vpc, EXPIRES) == group_id
    info = network.check_security_group(aws_session, group_id, vpc)
    assert info.inbound_rules == 0


def test_check_security_group_wrong_vpc_or_missing(aws_session: AwsSession) -> None:
    ec2 = aws_session.ec2()
    other_vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="g", Description="d", VpcId=other_vpc)["GroupId"]
    vpc = network.default_vpc(aws_session)
    with pytest.raises(AwsConfigError, match=f"security group {group} is in {other_vpc}"):
        network.check_security_group(aws_session, group, vpc)
    with pytest.raises(AwsConfigError, match="not found in us-east-1"):
        network.check_security_group(aws_session, "sg-0123456789abcdef0", vpc)
    with pytest.raises(UserError, match="malformed security group id"):
        network.check_security_group(aws_session, "sg-;id", vpc)


def _instance_in(session: AwsSession, group_id: str) -> str:
    image = ami.latest_al2023(session, "x86_64").image_id
    reservation = session.ec2().run_instances(
        ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1, SecurityGroupIds=[group_id]
    )
    return reservation["Instances"][0]["InstanceId"]


def test_delete_waits_out_dependency_violation(aws_session: AwsSession) -> None:
    vpc = network.default_vpc(aws_session)
    group_id = network.create_run_security_group(aws_session, "run-2", vpc, EXPIRES)
    instance = _instance_in(aws_session, group_id)
    launch.terminate_instances(aws_session, [instance])
    hook = fail_with("DependencyViolation", times=2)
    aws_session.register_hook("before-call.ec2.DeleteSecurityGroup", hook)
    assert network.delete_security_group(aws_session, group_id, [instance], delay=1) is True
    assert hook.state["seen"] == 3  # refused twice (lingering interface), then deleted
    assert (
        aws_session.ec2().describe_security_groups(
            Filters=[{"Name": "group-id", "Values": [group_id]}]
        )["SecurityGroups"]
        == []
    )


def test_delete_gives_up_after_the_timeout(aws_session: AwsSession) -> None:
    vpc = network.default_vpc(aws_session)
    group_id = network.create_run_security_group(aws_session, "run-4", vpc, EXPIRES)
    instance = _instance_in(aws_session, group_id)
    launch.terminate_instances(aws_session, [instance])
    hook = fail_with("DependencyViolation", times=99)
    aws_session.register_hook("before-call.ec2.DeleteSecurityGroup", hook)
    deleted = network.delete_security_group(aws_session, group_id, [instance], timeout=2, delay=1)
    assert deleted is False and hook.state["seen"] == 3  # first try + 2 waiter attempts


def test_delete_gives_up_while_an_instance_still_runs(aws_session: AwsSession) -> None:
    vpc = network.default_vpc(aws_session)
    group_id = network.create_run_security_group(aws_session, "run-3", vpc, EXPIRES)
    instance = _instance_in(aws_session, group_id)
    aws_session.register_hook(
        "before-call.ec2.DeleteSecurityGroup", fail_with("DependencyViolation", times=99)
    )
    assert network.delete_security_group(aws_session, group_id, [instance], delay=1) is False
    assert launch.instance_states(aws_session, [instance])[instance][0] == "running"


def test_delete_of_a_missing_group_is_fine(aws_session: AwsSession) -> None:
    assert network.delete_security_group(aws_session, "sg-0123456789abcdef0") is True


def test_expiry_must_be_timezone_aware(aws_session: AwsSession) -> None:
    vpc = network.default_vpc(aws_session)
    with pytest.raises(ValueError, match="timezone-aware"):
        network.create_run_security_group(aws_session, "r", vpc, datetime(2030, 1, 1))
    assert EXPIRES - timedelta(days=1) < EXPIRES
