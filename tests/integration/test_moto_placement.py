"""The sandbox's placement-group API (moto lacks it; `instbench.sandbox.moto_placement`
adds it), judged with plain boto3 over HTTP against the moto server: the same calls, error
codes and response shapes as EC2, and its state forgotten by moto's reset.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from instbench.sandbox.motoserver import SANDBOX_CREDENTIALS, SANDBOX_REGION, MotoServer


@pytest.fixture()
def ec2(moto_endpoint: str) -> Any:
    return boto3.client(
        "ec2", region_name=SANDBOX_REGION, endpoint_url=moto_endpoint, **SANDBOX_CREDENTIALS
    )


@pytest.fixture()
def image(ec2: Any) -> str:
    return str(ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"])


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _tags(run: str) -> list[dict[str, Any]]:
    return [{"ResourceType": "placement-group", "Tags": [{"Key": "run", "Value": run}]}]


def _launch(ec2: Any, image: str, placement: dict[str, str]) -> str:
    reply = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, InstanceType="m7i.large", Placement=placement
    )
    return str(reply["Instances"][0]["InstanceId"])


def test_create_describes_as_ec2_does(ec2: Any) -> None:
    made = ec2.create_placement_group(
        GroupName="pairs", Strategy="cluster", TagSpecifications=_tags("r1")
    )["PlacementGroup"]
    assert made["GroupName"] == "pairs" and made["Strategy"] == "cluster"
    assert made["State"] == "available"
    assert made["GroupId"].startswith("pg-") and len(made["GroupId"]) == 20
    assert made["GroupArn"] == "arn:aws:ec2:us-east-1:123456789012:placement-group/pairs"
    assert made["Tags"] == [{"Key": "run", "Value": "r1"}]
    assert "PartitionCount" not in made and "SpreadLevel" not in made

    (by_name,) = ec2.describe_placement_groups(GroupNames=["pairs"])["PlacementGroups"]
    (by_id,) = ec2.describe_placement_groups(GroupIds=[made["GroupId"]])["PlacementGroups"]
    assert by_name == by_id == made
    # The group id is an EC2 resource for the tagging API too.
    ec2.create_tags(Resources=[made["GroupId"]], Tags=[{"Key": "extra", "Value": "1"}])
    tags = ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["placement-group"]}])
    assert sorted(t["Key"] for t in tags["Tags"]) == ["extra", "run"]


def test_strategies_and_their_options(ec2: Any) -> None:
    spread = ec2.create_placement_group(GroupName="s", Strategy="spread")["PlacementGroup"]
    assert spread["SpreadLevel"] == "rack"
    part = ec2.create_placement_group(GroupName="p", Strategy="partition", PartitionCount=3)
    assert part["PlacementGroup"]["PartitionCount"] == 3
    with pytest.raises(ClientError) as err:
        ec2.create_placement_group(GroupName="p8", Strategy="partition", PartitionCount=8)
    assert _code(err) == "InvalidParameterValue"
    with pytest.raises(ClientError) as err:
        ec2.create_placement_group(GroupName="c", Strategy="cluster", PartitionCount=2)
    assert _code(err) == "InvalidParameterCombination"
    with pytest.raises(ClientError) as err:
        ec2.create_placement_group(GroupName="x", Strategy="nearby")
    assert _code(err) == "InvalidParameterValue"
    assert "nearby" in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as err:
        ec2.create_placement_group(GroupName="d", Strategy="cluster", DryRun=True)
    assert _code(err) == "DryRunOperation"
    names = {g["GroupName"] for g in ec2.describe_placement_groups()["PlacementGroups"]}
    assert names == {"s", "p"}


def test_duplicate_name_is_refused(ec2: Any) -> None:
    ec2.create_placement_group(GroupName="pairs", Strategy="cluster")
    with pytest.raises(ClientError) as err:
        ec2.create_placement_group(GroupName="pairs", Strategy="spread")
    assert _code(err) == "InvalidPlacementGroup.Duplicate"
    assert err.value.response["Error"]["Message"] == "The placement group 'pairs' already exists."


def test_describe_filters_and_unknown_names(ec2: Any) -> None:
    ec2.create_placement_group(GroupName="a-1", Strategy="cluster", TagSpecifications=_tags("r1"))
    ec2.create_placement_group(GroupName="a-2", Strategy="spread", TagSpecifications=_tags("r2"))
    ec2.create_placement_group(GroupName="b-1", Strategy="cluster")

    def names(**kwargs: Any) -> list[str]:
        groups = ec2.describe_placement_groups(**kwargs)["PlacementGroups"]
        return sorted(g["GroupName"] for g in groups)

    assert names(Filters=[{"Name": "tag:run", "Values": ["r1"]}]) == ["a-1"]
    assert names(Filters=[{"Name": "tag-key", "Values": ["run"]}]) == ["a-1", "a-2"]
    assert names(Filters=[{"Name": "strategy", "Values": ["cluster"]}]) == ["a-1", "b-1"]
    assert names(Filters=[{"Name": "state", "Values": ["available"]}]) == ["a-1", "a-2", "b-1"]
    assert names(Filters=[{"Name": "group-name", "Values": ["a-*"]}]) == ["a-1", "a-2"]
    both = [{"Name": "strategy", "Values": ["cluster"]}, {"Name": "tag:run", "Values": ["r*"]}]
    assert names(Filters=both) == ["a-1"]
    assert names(GroupNames=["b-1"], Filters=[{"Name": "strategy", "Values": ["spread"]}]) == []

    with pytest.raises(ClientError) as err:
        ec2.describe_placement_groups(GroupNames=["a-1", "nope"])
    assert _code(err) == "InvalidPlacementGroup.Unknown"
    assert err.value.response["Error"]["Message"] == "The Placement Group 'nope' is unknown."
    with pytest.raises(ClientError) as err:
        ec2.describe_placement_groups(GroupIds=["pg-0123456789abcdef0"])
    assert _code(err) == "InvalidPlacementGroup.Unknown"
    with pytest.raises(ClientError) as err:
        ec2.describe_placement_groups(GroupIds=["sg-0123456789abcdef0"])
    assert _code(err) == "InvalidPlacementGroupId.Malformed"
    with pytest.raises(ClientError) as err:
        ec2.describe_placement_groups(Filters=[{"Name": "colour", "Values": ["red"]}])
    assert _code(err) == "InvalidParameterValue"


def test_launch_records_the_group_and_delete_waits_for_its_instances(ec2: Any, image: str) -> None:
    group = ec2.create_placement_group(GroupName="pairs", Strategy="cluster")["PlacementGroup"]
    server = _launch(ec2, image, {"GroupName": "pairs", "AvailabilityZone": "us-east-1b"})
    client = _launch(ec2, image, {"GroupName": "pairs", "AvailabilityZone": "us-east-1b"})
    outside = _launch(ec2, image, {"AvailabilityZone": "us-east-1b"})

    reply = ec2.describe_instances(InstanceIds=[server, client, outside])
    placement = {
        i["InstanceId"]: i["Placement"] for r in reply["Reservations"] for i in r["Instances"]
    }
    for inside in (server, client):
        assert placement[inside]["GroupName"] == "pairs"
        assert placement[inside]["GroupId"] == group["GroupId"]
        assert placement[inside]["AvailabilityZone"] == "us-east-1b"
    assert not placement[outside].get("GroupName")
    found = ec2.describe_instances(Filters=[{"Name": "placement-group-name", "Values": ["pairs"]}])
    members = sorted(i["InstanceId"] for r in found["Reservations"] for i in r["Instances"])
    assert members == sorted([server, client])

    # EC2 keeps a cluster group in one zone while it has instances.
    with pytest.raises(ClientError) as err:
        _launch(ec2, image, {"GroupName": "pairs", "AvailabilityZone": "us-east-1c"})
    assert _code(err) == "InvalidPlacementGroup.InUse"
    assert "another availability zone: us-east-1b" in err.value.response["Error"]["Message"]

    with pytest.raises(ClientError) as err:
        ec2.delete_placement_group(GroupName="pairs")
    assert _code(err) == "InvalidPlacementGroup.InUse"
    assert err.value.response["Error"]["Message"] == (
        "The placement group 'pairs' is in use and may not be deleted."
    )
    ec2.terminate_instances(InstanceIds=[server])
    with pytest.raises(ClientError) as err:  # the client is still in it
        ec2.delete_placement_group(GroupName="pairs")
    assert _code(err) == "InvalidPlacementGroup.InUse"
    ec2.terminate_instances(InstanceIds=[client])
    ec2.delete_placement_group(GroupName="pairs")
    assert ec2.describe_placement_groups()["PlacementGroups"] == []
    # Its tags went with it, and the name is free again (in any zone).
    assert (
        ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [group["GroupId"]]}])["Tags"]
        == []
    )
    ec2.create_placement_group(GroupName="pairs", Strategy="cluster")
    _launch(ec2, image, {"GroupName": "pairs", "AvailabilityZone": "us-east-1c"})


def test_launch_into_an_unknown_group_fails_and_starts_nothing(ec2: Any, image: str) -> None:
    with pytest.raises(ClientError) as err:
        _launch(ec2, image, {"GroupName": "nope", "AvailabilityZone": "us-east-1a"})
    assert _code(err) == "InvalidPlacementGroup.Unknown"
    assert err.value.response["Error"]["Message"] == "The Placement Group 'nope' is unknown."
    with pytest.raises(ClientError) as err:
        _launch(ec2, image, {"GroupId": "pg-0123456789abcdef0"})
    assert _code(err) == "InvalidPlacementGroup.Unknown"
    assert ec2.describe_instances()["Reservations"] == []


def test_delete_of_an_unknown_group(ec2: Any) -> None:
    with pytest.raises(ClientError) as err:
        ec2.delete_placement_group(GroupName="nope")
    assert _code(err) == "InvalidPlacementGroup.Unknown"


def test_groups_are_per_region(moto_endpoint: str, ec2: Any) -> None:
    west = boto3.client(
        "ec2", region_name="us-west-2", endpoint_url=moto_endpoint, **SANDBOX_CREDENTIALS
    )
    ec2.create_placement_group(GroupName="pairs", Strategy="cluster")
    assert west.describe_placement_groups()["PlacementGroups"] == []
    west.create_placement_group(GroupName="pairs", Strategy="cluster")  # no duplicate there
    (group,) = west.describe_placement_groups()["PlacementGroups"]
    assert group["GroupArn"].startswith("arn:aws:ec2:us-west-2:")


def test_reset_forgets_groups_and_keeps_the_api(_moto_server: MotoServer, ec2: Any) -> None:
    ec2.create_placement_group(GroupName="pairs", Strategy="cluster")
    _moto_server.reset()
    assert ec2.describe_placement_groups()["PlacementGroups"] == []
    ec2.create_placement_group(GroupName="pairs", Strategy="cluster")  # not a duplicate
    assert len(ec2.describe_placement_groups()["PlacementGroups"]) == 1


def test_partition_group_numbers_its_instances(ec2: Any, image: str) -> None:
    ec2.create_placement_group(GroupName="parts", Strategy="partition", PartitionCount=3)
    reply = ec2.run_instances(
        ImageId=image,
        MinCount=2,
        MaxCount=2,
        InstanceType="m7i.large",
        Placement={"GroupName": "parts"},
    )
    assert [i["Placement"]["PartitionNumber"] for i in reply["Instances"]] == [1, 2]
    third = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        InstanceType="m7i.large",
        Placement={"GroupName": "parts", "PartitionNumber": 3},
    )
    assert third["Instances"][0]["Placement"]["PartitionNumber"] == 3
