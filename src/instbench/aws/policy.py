"""The least-privilege IAM policy of the controller, as data.

Every permission the controller (`instbench run`, `sync`, `cleanup`, metrics) needs is
listed once, with the API operations it authorises and the reason it is needed. The same
table feeds `instbench infra policy`, the GitHub Actions role in the CloudFormation
template (a unit test keeps the two equal) and the audit test, which records every
operation our code calls against moto and fails when the policy misses one or grants one
that is never called. `instbench infra setup|status|teardown` is an administrator's task and
is deliberately not covered: the CI role must not be able to change its own stack.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

RUN_TAG = "instbench:run-id"
"""Tag every resource of a run carries (see aws.launch.run_tags)."""

METRICS_NAMESPACE = "instbench"

Scope = Literal["any", "bucket", "objects", "ssm-public", "run-tagged"]


@dataclass(frozen=True)
class Permission:
    """One IAM action: what it authorises, why, and on which resources."""

    action: str
    """IAM action, service:Name, e.g. ec2:RunInstances."""
    reason: str
    operations: tuple[str, ...] = ()
    """API operations (service:OperationName, botocore spelling) it authorises; empty means
    the operation of the same name."""
    scope: Scope = "any"
    condition: Mapping[str, Mapping[str, Any]] | None = None
    authorization_only: bool = False
    """True when no API operation of that name is called: AWS checks it as part of another
    call (ec2:CreateTags for TagSpecifications on RunInstances/CreateSecurityGroup)."""
    statement: str | None = None
    """Sid of the statement it goes into; default: one per scope."""
    unobserved: str | None = None
    """Why the audit cannot see the call in tests (moto lacks the API, or a defensive path
    that neither AWS nor moto triggers); such a permission is exempt from 'never called'."""

    def authorises(self) -> tuple[str, ...]:
        return self.operations or (self.action,)


_TAGGED = {"Null": {f"aws:ResourceTag/{RUN_TAG}": "false"}}
"""Only resources carrying the run tag: the role cannot terminate or delete anything else."""

PERMISSIONS: tuple[Permission, ...] = (
    # ------------------------------------------------------------------ plan (read-only)
    Permission(
        "ec2:DescribeInstanceTypes",
        "architecture, vCPUs and memory come from AWS, not from the type name (plan)",
    ),
    Permission(
        "ec2:DescribeInstanceTypeOfferings",
        "check that each type is offered in the region and pick the AZs that offer it",
    ),
    Permission("ec2:DescribeImages", "verify the AMI (architecture, state) before launching"),
    Permission(
        "ssm:GetParameter",
        "resolve the current Amazon Linux AMI from AWS's public SSM parameters",
        scope="ssm-public",
    ),
    Permission("ec2:DescribeVpcs", "find the default VPC when no subnet is given"),
    Permission("ec2:DescribeSubnets", "pick a subnet in an AZ that offers the type"),
    Permission(
        "ec2:DescribeSpotPriceHistory",
        "spot prices for price-performance in `instbench publish` and for the cost estimate "
        "of `instbench run --dry-run/--max-cost` (AwsPriceSource)",
        unobserved="called together with pricing:GetProducts, which moto lacks; the sandbox "
        "prices runs at zero without calling AWS",
    ),
    Permission(
        "ec2:GetSpotPlacementScores",
        "spot placement scores shown beside prices in `instbench publish`",
        unobserved="moto does not implement GetSpotPlacementScores",
    ),
    Permission(
        "pricing:GetProducts",
        "on-demand prices for price-performance in `instbench publish` and for the cost "
        "estimate of `instbench run --dry-run/--max-cost`",
        unobserved="moto does not implement the Pricing API",
    ),
    Permission(
        "servicequotas:GetServiceQuota",
        "the account's running-instance vCPU quota per instance class and market: the plan "
        "refuses a type that can never fit, the scheduler waits for room",
        unobserved="moto serves no EC2 vCPU quotas and the sandbox has none; tests inject "
        "recorded responses (tests/integration/test_quota_source.py)",
    ),
    Permission(
        "servicequotas:GetAWSDefaultServiceQuota",
        "the default vCPU quota, for a class whose quota the account never changed (no "
        "applied value)",
        unobserved="moto serves no EC2 vCPU quotas and the sandbox has none; tests inject "
        "recorded responses (tests/integration/test_quota_source.py)",
    ),
    # ------------------------------------------------------------------ launch
    Permission(
        "ec2:DescribeSecurityGroups",
        "find the run's security group again on --resume and verify it has no inbound rule",
    ),
    Permission(
        "ec2:CreateSecurityGroup",
        "one group per run, without inbound rules (instances need no inbound traffic)",
    ),
    Permission(
        "ec2:RevokeSecurityGroupIngress",
        "close a run group that was created with inbound rules (never expected)",
        scope="run-tagged",
        condition=_TAGGED,
        unobserved="defensive path: neither EC2 nor moto add inbound rules to a new group",
    ),
    Permission("ec2:RunInstances", "launch the benchmark instances (IMDSv2, encrypted root)"),
    Permission(
        "ec2:CreateTags",
        "EC2 authorises TagSpecifications of RunInstances/CreateSecurityGroup as CreateTags; "
        "every resource of a run is tagged at creation, never afterwards",
        condition={"StringEquals": {"ec2:CreateAction": ["RunInstances", "CreateSecurityGroup"]}},
        authorization_only=True,
        statement="TagOnCreate",
    ),
    # ------------------------------------------------------------------ wait, collect, clean
    Permission(
        "ec2:DescribeInstances",
        "follow instance states, find a run's leftovers (cleanup), instance_terminated waiter",
    ),
    Permission(
        "ec2:DescribeSpotInstanceRequests",
        "cleanup finds spot requests a crashed run left behind",
    ),
    Permission(
        "ec2:GetConsoleOutput",
        "keep the console log of an instance that failed, for diagnosis",
        unobserved="called only for a failed task (Fleet._fail), and the audited run "
        "succeeds; tests/unit/test_audit_hook.py calls it through the controller's code "
        "and checks that this permission covers it",
    ),
    Permission(
        "ec2:TerminateInstances",
        "terminate leftovers at the end of a run and in cleanup (only the run's instances)",
        scope="run-tagged",
        condition=_TAGGED,
        unobserved="instances terminate themselves (shutdown behaviour terminate), so the "
        "audited run never terminates one; the controller terminates only leftovers of "
        "failed or interrupted tasks and in cleanup, which tests/unit/test_audit_hook.py "
        "calls through the controller's code and checks that this permission covers",
    ),
    Permission(
        "ec2:DeleteSecurityGroup",
        "remove the run's security group when the run ends (only the run's group)",
        scope="run-tagged",
        condition=_TAGGED,
    ),
    # ------------------------------------------------------------------ results bucket
    Permission(
        "s3:PutObject",
        "store results, logs and manifests; presigned PUT URLs for the instances are signed "
        "with this permission",
        scope="objects",
    ),
    Permission(
        "s3:DeleteObject",
        "remove the staging copy under incoming/ once the result is stored under raw/",
        scope="objects",
    ),
    Permission(
        "s3:GetObject",
        "read results back (collect, sync); HeadObject waits for a result; presigned GET of "
        "the agent",
        operations=("s3:GetObject", "s3:HeadObject"),
        scope="objects",
    ),
    Permission(
        "s3:ListBucket",
        "HeadBucket checks the bucket before a run; ListObjectsV2 for sync",
        operations=("s3:HeadBucket", "s3:ListObjectsV2"),
        scope="bucket",
    ),
    Permission(
        "s3:ListAllMyBuckets",
        "confirm the results bucket belongs to the caller's account (ListBuckets)",
        operations=("s3:ListBuckets",),
    ),
    # ------------------------------------------------------------------ metrics
    Permission(
        "cloudwatch:PutMetricData",
        "per-task and per-run metrics (namespace instbench only)",
        condition={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
        statement="Metrics",
    ),
)

NO_PERMISSION_NEEDED: Mapping[str, str] = {
    "sts:GetCallerIdentity": "AWS allows it to every principal; no policy can deny it",
}
"""Operations the controller calls that IAM does not authorise."""

S3_BUCKET_PLACEHOLDER = "${ResultsBucket}"


IAM_SERVICE_PREFIX: Mapping[str, str] = {"service-quotas": "servicequotas"}
"""botocore service names whose IAM action prefix differs (others are the same)."""


def iam_operation(operation: str) -> str:
    """`operation` (botocore spelling, service:OperationName) with the IAM service prefix."""
    service, _, name = operation.partition(":")
    return f"{IAM_SERVICE_PREFIX.get(service, service)}:{name}"


def permission_for(operation: str) -> Permission | None:
    """The permission that authorises an API operation (service:OperationName), if any."""
    operation = iam_operation(operation)
    for perm in PERMISSIONS:
        if operation in perm.authorises():
            return perm
    return None


def _resources(scope: Scope, bucket: str, partition: str) -> list[str]:
    if scope == "bucket":
        return [f"arn:{partition}:s3:::{bucket}"]
    if scope == "objects":
        return [f"arn:{partition}:s3:::{bucket}/*"]
    if scope == "ssm-public":
        return [f"arn:{partition}:ssm:*::parameter/aws/service/*"]
    return ["*"]


_SIDS: Mapping[Scope, str] = {
    "any": "Any",
    "bucket": "Bucket",
    "objects": "Objects",
    "ssm-public": "SsmPublic",
    "run-tagged": "RunTagged",
}


def statement_id(perm: Permission) -> str:
    """The Sid of the statement holding `perm` (the template uses the same Sids)."""
    return perm.statement or _SIDS[perm.scope]


def policy_document(bucket: str | None = None, partition: str = "aws") -> dict[str, Any]:
    """The controller's IAM policy: one statement per (resources, condition).

    Without a bucket name the S3 statements name a placeholder to substitute.
    """
    name = bucket or S3_BUCKET_PLACEHOLDER
    groups: dict[str, list[Permission]] = {}
    for perm in PERMISSIONS:
        groups.setdefault(statement_id(perm), []).append(perm)
    statements: list[dict[str, Any]] = []
    for sid, perms in groups.items():
        first = perms[0]
        if any(p.scope != first.scope or p.condition != first.condition for p in perms):
            raise ValueError(f"statement {sid} mixes scopes or conditions")
        statement: dict[str, Any] = {
            "Sid": sid,
            "Effect": "Allow",
            "Action": sorted(p.action for p in perms),
            "Resource": _resources(first.scope, name, partition),
        }
        if first.condition:
            statement["Condition"] = {k: dict(v) for k, v in first.condition.items()}
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def policy_json(bucket: str | None = None, partition: str = "aws") -> str:
    """`policy_document` as indented JSON (what `instbench infra policy` prints)."""
    return json.dumps(policy_document(bucket, partition), indent=2)


def granted_actions() -> set[str]:
    return {p.action for p in PERMISSIONS}


@dataclass
class AuditReport:
    """Result of comparing the operations our code called with the policy."""

    missing: dict[str, list[str]] = field(default_factory=dict)
    """Operation -> callers, for operations no permission authorises."""
    unused: list[str] = field(default_factory=list)
    """Actions granted that no recorded operation needed (and that are not exempt)."""

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unused

    def explain(self) -> str:
        lines: list[str] = []
        for op, callers in sorted(self.missing.items()):
            lines.append(f"missing from the policy: {op} (called from {', '.join(callers)})")
        for action in self.unused:
            lines.append(
                f"granted but never called: {action} (remove it, or mark why it is unobserved)"
            )
        return "\n".join(lines)


def audit(called: Mapping[str, Iterable[str]]) -> AuditReport:
    """Compare operations called (operation -> callers) with PERMISSIONS.

    An operation without a permission is missing unless IAM does not authorise it at all;
    a permission none of whose operations was called is unused unless it is
    authorisation-only or marked unobserved (with the reason).
    """
    report = AuditReport()
    used: set[str] = set()
    for op, callers in called.items():
        if op in NO_PERMISSION_NEEDED:
            continue
        perm = permission_for(op)
        if perm is None:
            report.missing[op] = sorted(set(callers))
        else:
            used.add(perm.action)
    for perm in PERMISSIONS:
        exempt = perm.authorization_only or perm.unobserved is not None
        if perm.action not in used and not exempt:
            report.unused.append(perm.action)
    return report
