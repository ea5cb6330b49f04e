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
from fnmatch import fnmatchcase
from typing import Any, Literal

RUN_TAG = "instbench:run-id"
"""Tag every resource of a run carries (see aws.launch.run_tags)."""

METRICS_NAMESPACE = "instbench"

Scope = Literal[
    "any",
    "bucket",
    "objects",
    "incoming",
    "ssm-public",
    "run-tagged",
    "launch-instance",
    "launch-tagged",
    "launch-with",
    "new-group",
    "group-vpc",
    "new-placement-group",
]

REGIONS_PLACEHOLDER = "${AllowedRegions}"
"""Stands for the regions a launch may happen in (`infra policy --region`, the template's
AllowedRegions parameter); `policy_document` substitutes the list."""
TYPES_PLACEHOLDER = "${AllowedInstanceTypes}"
"""Stands for the instance types (IAM wildcards allowed, e.g. m7i.*) a launch may use."""


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
    call (ec2:CreateTags for TagSpecifications on RunInstances/CreateSecurityGroup/
    CreatePlacementGroup)."""
    statement: str | None = None
    """Sid of the statement it goes into; default: one per scope."""
    unobserved: str | None = None
    """Why the audit cannot see the call in tests (moto lacks the API, or a defensive path
    that neither AWS nor moto triggers); such a permission is exempt from 'never called'."""

    def authorises(self) -> tuple[str, ...]:
        return self.operations or (self.action,)


_TAGGED = {"Null": {f"aws:ResourceTag/{RUN_TAG}": "false"}}
"""Only resources carrying the run tag: the role cannot terminate or delete anything else."""
_IN_REGIONS = {"aws:RequestedRegion": REGIONS_PLACEHOLDER}
_LAUNCH_INSTANCE = {
    "Null": {f"aws:RequestTag/{RUN_TAG}": "false"},
    "StringEquals": _IN_REGIONS,
    "StringLike": {"ec2:InstanceType": TYPES_PLACEHOLDER},
}
"""An instance is launched only with the run tag in the request, only in the regions and
only of the types the policy was made for."""
_NEW_TAGGED = {"Null": {f"aws:RequestTag/{RUN_TAG}": "false"}, "StringEquals": _IN_REGIONS}
"""What a launch, CreateSecurityGroup or CreatePlacementGroup creates (volume, spot request,
group) carries the
run tag from its first moment (so cleanup and the RunTagged statement can find it)."""
_REGIONS_ONLY = {"StringEquals": _IN_REGIONS}

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
        "one group per run, without inbound rules (instances need no inbound traffic); "
        "created with the run tag, in the allowed regions",
        scope="new-group",
        condition=_NEW_TAGGED,
        statement="CreateRunGroup",
    ),
    Permission(
        "ec2:CreateSecurityGroup",
        "the VPC the run's group is created in (the VPC carries no run tag)",
        scope="group-vpc",
        condition=_REGIONS_ONLY,
        statement="CreateGroupInVpc",
    ),
    Permission(
        "ec2:AuthorizeSecurityGroupIngress",
        "a run with pair tasks (network) lets the run's group reach itself on the pairs' "
        "TCP ports, from the group itself only (only the run's group)",
        scope="run-tagged",
        condition=_TAGGED,
    ),
    Permission(
        "ec2:RevokeSecurityGroupIngress",
        "close a run group that was created with inbound rules (never expected)",
        scope="run-tagged",
        condition=_TAGGED,
        unobserved="defensive path: neither EC2 nor moto add inbound rules to a new group",
    ),
    Permission(
        "ec2:DescribePlacementGroups",
        "find a run's placement groups again (resume, the end of the run, cleanup)",
    ),
    Permission(
        "ec2:CreatePlacementGroup",
        "a run with pair tasks (network) puts each pair in a cluster placement group of the "
        "run (one per zone); created with the run tag, in the allowed regions",
        scope="new-placement-group",
        condition=_NEW_TAGGED,
        statement="CreateRunPlacementGroup",
    ),
    Permission(
        "ec2:RunInstances",
        "launch the benchmark instances (IMDSv2, encrypted root): only with the run tag, "
        "in the allowed regions, of the allowed types",
        scope="launch-instance",
        condition=_LAUNCH_INSTANCE,
        statement="LaunchRunInstance",
    ),
    Permission(
        "ec2:RunInstances",
        "the root volume and (spot) the spot request a launch creates, tagged with the run",
        scope="launch-tagged",
        condition=_NEW_TAGGED,
        statement="LaunchRunResources",
    ),
    Permission(
        "ec2:RunInstances",
        "the existing resources a launch uses: AMI, subnet, network interface, security "
        "group, key pair, placement group (the run's own groups are tagged, the others "
        "carry no run tag)",
        scope="launch-with",
        condition=_REGIONS_ONLY,
        statement="LaunchWith",
    ),
    Permission(
        "ec2:CreateTags",
        "EC2 authorises TagSpecifications of RunInstances/CreateSecurityGroup/"
        "CreatePlacementGroup as CreateTags; every resource of a run is tagged at creation, "
        "never afterwards",
        condition={
            "StringEquals": {
                "ec2:CreateAction": [
                    "RunInstances",
                    "CreateSecurityGroup",
                    "CreatePlacementGroup",
                ]
            }
        },
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
        "ec2:CancelSpotInstanceRequests",
        "cleanup cancels the spot requests of a run before terminating its instances, so "
        "that a persistent request cannot start a new one (only the run's requests)",
        scope="run-tagged",
        condition=_TAGGED,
    ),
    Permission(
        "ec2:DeleteSecurityGroup",
        "remove the run's security group when the run ends (only the run's group)",
        scope="run-tagged",
        condition=_TAGGED,
    ),
    Permission(
        "ec2:DeletePlacementGroup",
        "remove the run's placement groups when the run ends and in cleanup (only the "
        "run's groups)",
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
        "remove the staging copy under incoming/ once the result is stored under raw/ "
        "(only there: results, logs and manifests cannot be deleted)",
        scope="incoming",
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


_EC2_RESOURCES: Mapping[str, tuple[str, ...]] = {
    "launch-instance": ("instance",),
    "launch-tagged": ("volume", "spot-instances-request"),
    "launch-with": (
        "image",
        "subnet",
        "network-interface",
        "security-group",
        "key-pair",
        "placement-group",
    ),
    "new-group": ("security-group",),
    "group-vpc": ("vpc",),
    "new-placement-group": ("placement-group",),
}


def _resources(scope: Scope, bucket: str, partition: str) -> list[str]:
    if scope == "bucket":
        return [f"arn:{partition}:s3:::{bucket}"]
    if scope == "objects":
        return [f"arn:{partition}:s3:::{bucket}/*"]
    if scope == "incoming":
        return [f"arn:{partition}:s3:::{bucket}/incoming/*"]
    if scope == "ssm-public":
        return [f"arn:{partition}:ssm:*::parameter/aws/service/*"]
    if scope in _EC2_RESOURCES:
        return [f"arn:{partition}:ec2:*:*:{kind}/*" for kind in _EC2_RESOURCES[scope]]
    return ["*"]


_SIDS: Mapping[Scope, str] = {
    "any": "Any",
    "bucket": "Bucket",
    "objects": "Objects",
    "incoming": "Incoming",
    "ssm-public": "SsmPublic",
    "run-tagged": "RunTagged",
}


def statement_id(perm: Permission) -> str:
    """The Sid of the statement holding `perm` (the template uses the same Sids)."""
    return perm.statement or _SIDS[perm.scope]


def _substitute(value: Any, values: Mapping[str, list[str]]) -> Any:
    if isinstance(value, str) and value in values:
        return list(values[value])
    if isinstance(value, Mapping):
        return {k: _substitute(v, values) for k, v in value.items()}
    return value


def policy_document(
    bucket: str | None = None,
    partition: str = "aws",
    regions: Iterable[str] | None = None,
    instance_types: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The controller's IAM policy: one statement per (resources, condition).

    `regions`: where instances and groups may be created (aws:RequestedRegion);
    `instance_types`: which types may be launched (ec2:InstanceType, IAM wildcards such as
    ``m7i.*``; default any). Without a bucket name, or without regions, the statements
    name a placeholder to substitute (as the CloudFormation template does).
    """
    name = bucket or S3_BUCKET_PLACEHOLDER
    values: dict[str, list[str]] = {TYPES_PLACEHOLDER: sorted(instance_types or ["*"])}
    if regions is not None:
        values[REGIONS_PLACEHOLDER] = sorted(set(regions))
    elif instance_types is None:
        values = {}  # the template's form: both placeholders kept
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
            statement["Condition"] = _substitute(first.condition, values)
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def policy_json(
    bucket: str | None = None,
    partition: str = "aws",
    regions: Iterable[str] | None = None,
    instance_types: Iterable[str] | None = None,
) -> str:
    """`policy_document` as indented JSON (what `instbench infra policy` prints)."""
    return json.dumps(policy_document(bucket, partition, regions, instance_types), indent=2)


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
        if perm.action not in used and not exempt and perm.action not in report.unused:
            report.unused.append(perm.action)
    return report


# --------------------------------------------------------------------- evaluating calls
#
# The audit above knows which actions were called; this part decides whether the policy
# document *allows* each recorded call, with its resources and condition keys, the way
# IAM would for the statements this module writes (Allow only; StringEquals, StringLike
# and Null; resource ARNs with wildcards). It is what shows that the conditions on
# RunInstances/CreateSecurityGroup, the incoming/-only DeleteObject and the tag-scoped
# terminations still let the controller do its work.


@dataclass(frozen=True)
class RecordedCall:
    """One API call as the controller made it: operation, region, parameters, response."""

    operation: str
    """service:OperationName (botocore spelling)."""
    region: str
    params: Mapping[str, Any]
    response: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class RequestContext:
    """What IAM evaluates for one (action, resource) of a call."""

    action: str
    resource: str
    keys: Mapping[str, str]


ACCOUNT = "123456789012"
"""Account id in the ARNs of evaluated calls (the policy's ARNs wildcard the account)."""


def _spec_tags(params: Mapping[str, Any], resource_type: str) -> dict[str, str]:
    for spec in params.get("TagSpecifications", []) or []:
        if spec.get("ResourceType") == resource_type:
            return {t["Key"]: t["Value"] for t in spec.get("Tags", [])}
    return {}


def resource_tags(calls: Iterable[RecordedCall]) -> dict[str, dict[str, str]]:
    """Tags of the resources the recorded calls created (id -> tags), from each creating
    call's TagSpecifications and its response; what `aws:ResourceTag` is checked against."""
    tags: dict[str, dict[str, str]] = {}
    for call in calls:
        response = call.response or {}
        if call.operation == "ec2:RunInstances":
            for inst in response.get("Instances", []):
                tags[inst["InstanceId"]] = _spec_tags(call.params, "instance")
                if inst.get("SpotInstanceRequestId"):
                    spot = _spec_tags(call.params, "spot-instances-request")
                    tags[inst["SpotInstanceRequestId"]] = spot
        elif call.operation == "ec2:CreateSecurityGroup" and response.get("GroupId"):
            tags[response["GroupId"]] = _spec_tags(call.params, "security-group")
        elif call.operation == "ec2:CreatePlacementGroup" and call.params.get("GroupName"):
            # A placement group's ARN names it by its name (placement-group/NAME).
            tags[call.params["GroupName"]] = _spec_tags(call.params, "placement-group")
    return tags


def _ec2_arn(region: str, kind: str, ident: str, partition: str) -> str:
    account = "" if kind == "image" else ACCOUNT
    return f"arn:{partition}:ec2:{region}:{account}:{kind}/{ident}"


def request_contexts(
    call: RecordedCall, tags: Mapping[str, Mapping[str, str]], partition: str = "aws"
) -> list[RequestContext]:
    """The (action, resource, condition keys) IAM checks for `call`."""
    operation = iam_operation(call.operation)
    perm = permission_for(call.operation)
    action = perm.action if perm is not None else operation
    p, region = call.params, call.region
    base = {"aws:RequestedRegion": region}

    def request_tags(kind: str) -> dict[str, str]:
        return {f"aws:RequestTag/{k}": v for k, v in _spec_tags(p, kind).items()}

    def tagged(kind: str, ident: str) -> RequestContext:
        keys = {f"aws:ResourceTag/{k}": v for k, v in tags.get(ident, {}).items()}
        return RequestContext(action, _ec2_arn(region, kind, ident, partition), base | keys)

    def created_tags(kind: str, create_action: str) -> list[RequestContext]:
        """Tags on create are authorised as ec2:CreateTags with ec2:CreateAction."""
        if not _spec_tags(p, kind):
            return []
        keys = base | request_tags(kind) | {"ec2:CreateAction": create_action}
        return [RequestContext("ec2:CreateTags", _ec2_arn(region, kind, "new", partition), keys)]

    if operation == "ec2:RunInstances":

        def arn(kind: str, ident: str = "new") -> str:
            return _ec2_arn(region, kind, ident, partition)

        out = [
            RequestContext(
                action,
                arn("instance"),
                base | request_tags("instance") | {"ec2:InstanceType": p["InstanceType"]},
            ),
            RequestContext(action, arn("volume"), base | request_tags("volume")),
            RequestContext(action, arn("image", p["ImageId"]), base),
            RequestContext(action, arn("subnet", p.get("SubnetId", "default")), base),
            RequestContext(action, arn("network-interface"), base),
        ]
        for group in p.get("SecurityGroupIds", []) or ["default"]:
            out.append(RequestContext(action, arn("security-group", group), base))
        if p.get("KeyName"):
            out.append(RequestContext(action, arn("key-pair", p["KeyName"]), base))
        placement_group = (p.get("Placement") or {}).get("GroupName")
        if placement_group:
            out.append(RequestContext(action, arn("placement-group", placement_group), base))
        kinds = ["instance", "volume"]
        if (p.get("InstanceMarketOptions") or {}).get("MarketType") == "spot":
            spot = request_tags("spot-instances-request")
            out.append(RequestContext(action, arn("spot-instances-request"), base | spot))
            kinds.append("spot-instances-request")
        for kind in kinds:
            out += created_tags(kind, "RunInstances")
        return out
    if operation == "ec2:CreateSecurityGroup":
        group = _ec2_arn(region, "security-group", "new", partition)
        vpc = _ec2_arn(region, "vpc", p.get("VpcId", "default"), partition)
        return [
            RequestContext(action, group, base | request_tags("security-group")),
            RequestContext(action, vpc, base),
            *created_tags("security-group", "CreateSecurityGroup"),
        ]
    if operation == "ec2:CreatePlacementGroup":
        group = _ec2_arn(region, "placement-group", str(p.get("GroupName", "new")), partition)
        return [
            RequestContext(action, group, base | request_tags("placement-group")),
            *created_tags("placement-group", "CreatePlacementGroup"),
        ]
    if operation == "ec2:DeletePlacementGroup":
        return [tagged("placement-group", str(p.get("GroupName", "")))]
    if operation == "ec2:TerminateInstances":
        return [tagged("instance", i) for i in p.get("InstanceIds", [])]
    if operation == "ec2:CancelSpotInstanceRequests":
        return [tagged("spot-instances-request", i) for i in p.get("SpotInstanceRequestIds", [])]
    if operation in {
        "ec2:DeleteSecurityGroup",
        "ec2:RevokeSecurityGroupIngress",
        "ec2:AuthorizeSecurityGroupIngress",
    }:
        return [tagged("security-group", p.get("GroupId", ""))]
    if operation.startswith("s3:") and "Bucket" in p:
        key = p.get("Key")
        target = f"{p['Bucket']}/{key}" if key is not None else str(p["Bucket"])
        return [RequestContext(action, f"arn:{partition}:s3:::{target}", base)]
    if operation == "ssm:GetParameter":
        name = str(p.get("Name", ""))
        owner = "" if name.startswith("/aws/service/") else ACCOUNT  # AWS's public ones
        resource = f"arn:{partition}:ssm:{region}:{owner}:parameter{name}"
        return [RequestContext(action, resource, base)]
    if operation == "cloudwatch:PutMetricData":
        keys = base | {"cloudwatch:namespace": str(p.get("Namespace", ""))}
        return [RequestContext(action, "*", keys)]
    return [RequestContext(action, "*", base)]


def _values(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def _condition_holds(condition: Mapping[str, Mapping[str, Any]], keys: Mapping[str, str]) -> bool:
    for operator, tests in condition.items():
        for key, expected in tests.items():
            have = keys.get(key)
            if operator == "Null":
                if (have is None) != (str(expected).lower() == "true"):
                    return False
            elif operator == "StringEquals":
                if have is None or have not in _values(expected):
                    return False
            elif operator == "StringLike":
                if have is None or not any(fnmatchcase(have, v) for v in _values(expected)):
                    return False
            else:
                raise ValueError(f"condition operator {operator} is not evaluated here")
    return True


def allows(document: Mapping[str, Any], ctx: RequestContext) -> bool:
    """True when an Allow statement of `document` covers `ctx` (there are no Denies)."""
    for statement in document["Statement"]:
        if statement["Effect"] != "Allow":
            continue
        if not any(fnmatchcase(ctx.action, a) for a in _values(statement["Action"])):
            continue
        if not any(fnmatchcase(ctx.resource, r) for r in _values(statement["Resource"])):
            continue
        if _condition_holds(statement.get("Condition", {}), ctx.keys):
            return True
    return False


def denied_calls(
    document: Mapping[str, Any],
    calls: Iterable[RecordedCall],
    partition: str = "aws",
    known_tags: Mapping[str, Mapping[str, str]] | None = None,
) -> list[str]:
    """Every recorded call (part) the policy would deny, explained; empty when all pass.

    The tags of resources are those the recorded calls created them with, plus
    `known_tags` (id -> tags) for resources made otherwise.
    """
    recorded = list(calls)
    tags = {**(known_tags or {}), **resource_tags(recorded)}
    denied: list[str] = []
    for call in recorded:
        if call.operation in NO_PERMISSION_NEEDED:
            continue
        for ctx in request_contexts(call, tags, partition):
            if not allows(document, ctx):
                keys = ", ".join(f"{k}={v}" for k, v in sorted(ctx.keys.items()))
                denied.append(f"{call.operation}: {ctx.action} on {ctx.resource} ({keys})")
    return denied
