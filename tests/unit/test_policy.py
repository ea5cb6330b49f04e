"""The controller policy: well-formed, identical to the template's role, and the audit logic."""

from __future__ import annotations

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
    actions = [p.action for p in PERMISSIONS]
    assert len(actions) == len(set(actions)), "an action is listed twice"
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


def test_template_role_carries_exactly_this_policy() -> None:
    resources = _template()["Resources"]
    role = resources["GitHubActionsRole"]["Properties"]
    [inline] = role["Policies"]
    template_statements = {s["Sid"]: s for s in inline["PolicyDocument"]["Statement"]}
    ours = {s["Sid"]: s for s in policy_document()["Statement"]}
    assert template_statements.keys() == ours.keys()
    for sid, statement in ours.items():
        theirs = template_statements[sid]
        assert sorted(theirs["Action"]) == statement["Action"], sid
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
