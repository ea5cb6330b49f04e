"""The controller policy: well-formed, identical to the template's role, and the audit logic."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import yaml

from instbench.aws import policy
from instbench.aws.infra import template_body
from instbench.aws.policy import PERMISSIONS, audit, permission_for, policy_document


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation short-form tags (!Ref, !Sub...) as data."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {suffix: value}


_CfnLoader.add_multi_constructor("!", _tag)


def _template() -> dict[str, Any]:
    return yaml.load(template_body(), Loader=_CfnLoader)


def test_every_permission_is_specific_and_explained() -> None:
    grants = [(p.action, policy.statement_id(p)) for p in PERMISSIONS]
    assert len(grants) == len(set(grants)), "an action is listed twice in one statement"
    for perm in PERMISSIONS:
        service, _, name = perm.action.partition(":")
        assert service and name and "*" not in perm.action, perm.action
        assert len(perm.reason) > 15, perm.action
        for op in perm.authorises():
            assert op.startswith(service + ":"), (perm.action, op)


def test_document_is_valid_iam_json() -> None:
    doc = json.loads(policy.policy_json("my-bucket"))
    assert doc["Version"] == "2012-10-17"
    sids = [s["Sid"] for s in doc["Statement"]]
    assert len(sids) == len(set(sids))
    granted = {a for s in doc["Statement"] for a in s["Action"]}
    assert granted == policy.granted_actions()
    objects = next(s for s in doc["Statement"] if s["Sid"] == "Objects")
    assert objects["Resource"] == ["arn:aws:s3:::my-bucket/*"]
    for statement in doc["Statement"]:
        assert statement["Effect"] == "Allow"
        assert "iam:PassRole" not in statement["Action"]


def test_destructive_ec2_actions_only_on_tagged_resources() -> None:
    doc = policy_document()
    for statement in doc["Statement"]:
        if {"ec2:TerminateInstances", "ec2:DeleteSecurityGroup"} & set(statement["Action"]):
            assert statement["Condition"] == {
                "Null": {f"aws:ResourceTag/{policy.RUN_TAG}": "false"}
            }


_TEMPLATE_VALUES: dict[str, Any] = {
    # the template's intrinsic functions, as the placeholders policy_document keeps
    "Sub": lambda v: v.replace("${AWS::Partition}", "aws").replace(
        "${ResultsBucket.Arn}", f"arn:aws:s3:::{policy.S3_BUCKET_PLACEHOLDER}"
    ),
    "GetAtt": lambda v: f"arn:aws:s3:::{policy.S3_BUCKET_PLACEHOLDER}",
    "Ref": lambda v: {
        "AllowedInstanceTypes": policy.TYPES_PLACEHOLDER,
        "AllowedRegions": policy.REGIONS_PLACEHOLDER,
    }[v],
    "If": lambda v: policy.REGIONS_PLACEHOLDER,
}


def _resolved(value: Any) -> Any:
    """A template value with its !Sub/!GetAtt/!Ref/!If replaced as policy_document writes."""
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _TEMPLATE_VALUES:
        [(fn, arg)] = value.items()
        if fn == "If":
            assert arg[0] == "HasAllowedRegions", arg
            assert arg[1] == {"Ref": "AllowedRegions"} and arg[2] == [{"Ref": "AWS::Region"}]
        return _TEMPLATE_VALUES[fn](arg)
    if isinstance(value, dict):
        return {k: _resolved(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v) for v in value]
    return value


def test_template_role_carries_exactly_this_policy() -> None:
    resources = _template()["Resources"]
    role = resources["GitHubActionsRole"]["Properties"]
    [inline] = role["Policies"]
    template_statements = {s["Sid"]: s for s in inline["PolicyDocument"]["Statement"]}
    ours = {s["Sid"]: s for s in policy_document()["Statement"]}
    assert template_statements.keys() == ours.keys()
    for sid, statement in ours.items():
        theirs = _resolved(template_statements[sid])
        assert sorted(theirs["Action"]) == statement["Action"], sid
        resource = theirs["Resource"]
        assert sorted(resource if isinstance(resource, list) else [resource]) == sorted(
            statement["Resource"]
        ), sid
        assert theirs.get("Condition") == statement.get("Condition"), sid


def test_template_trust_is_restricted_to_the_repository() -> None:
    role = _template()["Resources"]["GitHubActionsRole"]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    cond = trust["Condition"]["StringEquals"]
    assert cond["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    assert "repo:${GitHubRepo}:" in cond["token.actions.githubusercontent.com:sub"]["Sub"]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"


def test_operation_to_permission() -> None:
    assert permission_for("s3:HeadObject") is not None
    assert permission_for("s3:HeadObject").action == "s3:GetObject"  # type: ignore[union-attr]
    assert permission_for("s3:ListObjectsV2").action == "s3:ListBucket"  # type: ignore[union-attr]
    assert permission_for("ec2:RunInstances").action == "ec2:RunInstances"  # type: ignore[union-attr]
    assert permission_for("s3:DeleteBucket") is None


def _all_observable() -> dict[str, list[str]]:
    called: dict[str, list[str]] = {}
    for perm in PERMISSIONS:
        if perm.authorization_only or perm.unobserved:
            continue
        called[perm.authorises()[0]] = ["instbench.x"]
    return called


def test_audit_passes_when_calls_match() -> None:
    called = _all_observable()
    called["sts:GetCallerIdentity"] = ["instbench.aws.regions"]
    report = audit(called)
    assert report.ok, report.explain()


def test_audit_reports_missing_operation() -> None:
    called = _all_observable()
    called["ec2:CreateVpc"] = ["instbench.aws.network"]
    report = audit(called)
    assert not report.ok
    assert report.missing == {"ec2:CreateVpc": ["instbench.aws.network"]}
    assert "ec2:CreateVpc" in report.explain()


def test_audit_reports_unused_grant() -> None:
    called = _all_observable()
    del called["ec2:RunInstances"]
    report = audit(called)
    assert report.unused == ["ec2:RunInstances"]
    assert report.missing == {}


def _statements_with(doc: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in doc["Statement"] if action in s["Action"]]


def test_launches_are_conditioned_on_tag_region_and_type() -> None:
    """Issue 21 case 10: RunInstances/CreateSecurityGroup were allowed on * unconditioned."""
    doc = policy_document("b", regions=["us-east-1", "eu-west-1"], instance_types=["m7i.*"])
    for action in ("ec2:RunInstances", "ec2:CreateSecurityGroup"):
        for statement in _statements_with(doc, action):
            assert statement["Resource"] != ["*"], (action, statement["Sid"])
            regions = statement["Condition"]["StringEquals"]["aws:RequestedRegion"]
            assert regions == ["eu-west-1", "us-east-1"], statement["Sid"]
    [instance] = [
        s
        for s in _statements_with(doc, "ec2:RunInstances")
        if "arn:aws:ec2:*:*:instance/*" in s["Resource"]
    ]
    assert instance["Condition"]["Null"] == {f"aws:RequestTag/{policy.RUN_TAG}": "false"}
    assert instance["Condition"]["StringLike"] == {"ec2:InstanceType": ["m7i.*"]}


def test_delete_object_only_under_incoming_and_spot_cancel_granted() -> None:
    """Issue 21 cases 10 and 2: DeleteObject on the whole bucket; no CancelSpot at all."""
    doc = policy_document("b", regions=["us-east-1"])
    [delete] = _statements_with(doc, "s3:DeleteObject")
    assert delete["Resource"] == ["arn:aws:s3:::b/incoming/*"]
    [cancel] = _statements_with(doc, "ec2:CancelSpotInstanceRequests")
    assert cancel["Condition"] == {"Null": {f"aws:ResourceTag/{policy.RUN_TAG}": "false"}}


def _run_call(**overrides: Any) -> policy.RecordedCall:
    tags = [{"Key": policy.RUN_TAG, "Value": "r1"}]
    params: dict[str, Any] = {
        "ImageId": "ami-1",
        "InstanceType": "m7i.large",
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tags},
            {"ResourceType": "volume", "Tags": tags},
        ],
    }
    params.update(overrides.pop("params", {}))
    return policy.RecordedCall("ec2:RunInstances", overrides.get("region", "us-east-1"), params)


def test_evaluation_allows_a_tagged_launch_and_denies_the_others() -> None:
    doc = policy_document("b", regions=["us-east-1"], instance_types=["m7i.*"])
    assert policy.denied_calls(doc, [_run_call()]) == []
    untagged = _run_call(params={"TagSpecifications": []})
    assert any("instance/new" in d for d in policy.denied_calls(doc, [untagged]))
    elsewhere = _run_call(region="eu-west-1")
    assert policy.denied_calls(doc, [elsewhere])
    other_type = _run_call(params={"InstanceType": "p5.48xlarge"})
    [denied] = policy.denied_calls(doc, [other_type])
    assert "ec2:InstanceType=p5.48xlarge" in denied
    raw = policy.RecordedCall("s3:DeleteObject", "us-east-1", {"Bucket": "b", "Key": "raw/x"})
    staged = policy.RecordedCall(
        "s3:DeleteObject", "us-east-1", {"Bucket": "b", "Key": "incoming/x"}
    )
    assert policy.denied_calls(doc, [staged]) == []
    assert policy.denied_calls(doc, [raw])


def test_evaluation_terminates_only_what_the_run_tagged() -> None:
    doc = policy_document("b", regions=["us-east-1"])
    launched = policy.RecordedCall(
        "ec2:RunInstances",
        "us-east-1",
        _run_call().params,
        {"Instances": [{"InstanceId": "i-ours"}]},
    )
    ours = policy.RecordedCall("ec2:TerminateInstances", "us-east-1", {"InstanceIds": ["i-ours"]})
    theirs = policy.RecordedCall("ec2:TerminateInstances", "us-east-1", {"InstanceIds": ["i-x"]})
    assert policy.denied_calls(doc, [launched, ours]) == []
    assert policy.denied_calls(doc, [launched, theirs])


def _placement_group_call(operation: str, name: str, tagged: bool = True) -> policy.RecordedCall:
    tags = [{"Key": policy.RUN_TAG, "Value": "r1"}] if tagged else []
    params: dict[str, Any] = {"GroupName": name}
    if operation == "ec2:CreatePlacementGroup":
        params |= {
            "Strategy": "cluster",
            "TagSpecifications": [{"ResourceType": "placement-group", "Tags": tags}],
        }
    return policy.RecordedCall(operation, "us-east-1", params)


def test_placement_groups_are_created_tagged_and_deleted_only_when_the_run_tagged() -> None:
    doc = policy_document("b", regions=["us-east-1"])
    create = _placement_group_call("ec2:CreatePlacementGroup", "instbench-r1-us-east-1a")
    delete = _placement_group_call("ec2:DeletePlacementGroup", "instbench-r1-us-east-1a")
    assert policy.denied_calls(doc, [create, delete]) == []
    untagged = _placement_group_call("ec2:CreatePlacementGroup", "pg", tagged=False)
    assert any("placement-group/pg" in d for d in policy.denied_calls(doc, [untagged]))
    elsewhere = dataclasses.replace(create, region="eu-west-1")
    assert policy.denied_calls(doc, [elsewhere])
    # Someone else's group (not created by the run, so not tagged with it) is not deleted.
    theirs = _placement_group_call("ec2:DeletePlacementGroup", "theirs")
    [denied] = policy.denied_calls(doc, [create, theirs])
    arn = "arn:aws:ec2:us-east-1:123456789012:placement-group/theirs"
    assert f"ec2:DeletePlacementGroup on {arn}" in denied
    # A launch into the run's group is allowed (LaunchWith covers placement-group/*).
    launch = _run_call(params={"Placement": {"GroupName": "instbench-r1-us-east-1a"}})
    assert policy.denied_calls(doc, [launch]) == []
