"""`instbench infra`: the account-level resources, as one CloudFormation stack.

The template (`templates/infra.yaml`, shipped in the package) holds the results bucket, the
optional ECR repository, the GitHub Actions OIDC role with the controller's policy and a
dashboard. It is deployed with change sets so that a second `setup` with the same inputs is
a no-op ("no changes" is success) and an update shows what it changes before it runs.

After a deployment the bucket's protections are read back through S3's own API: they guard
the published data, and an endpoint may accept the template without applying them (moto
ignores PublicAccessBlockConfiguration, VersioningConfiguration, LifecycleConfiguration and
AWS::S3::BucketPolicy). What is missing is applied directly, with the template's values, and
reported; on AWS proper nothing is missing and nothing is applied.

Waits use CloudFormation's waiters (and one custom waiter model for drift detection, which
botocore does not ship), never hand-written sleep loops.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError, WaiterError
from botocore.parsers import ResponseParserError
from botocore.waiter import WaiterModel, create_waiter_with_client

from instbench.aws.session import AwsSession
from instbench.errors import AwsConfigError, InstbenchError, UserError

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudformation.type_defs import ParameterTypeDef, WaiterConfigTypeDef
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

DEFAULT_STACK = "instbench"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
EXPIRING_PREFIXES = ("logs/", "artifacts/", "incoming/")
"""Prefixes whose objects are transient (logs, build artifacts, uploads not yet collected)."""

_FAST: WaiterConfigTypeDef = {"Delay": 2, "MaxAttempts": 900}
"""Waiter pacing: CloudFormation stacks of this size settle in a minute or two."""

_NO_CHANGES = ("didn't contain changes", "No updates are to be performed")

_DRIFT_WAITER = WaiterModel(
    {
        "version": 2,
        "waiters": {
            "DriftDetectionComplete": {
                "operation": "DescribeStackDriftDetectionStatus",
                "delay": 2,
                "maxAttempts": 150,
                "acceptors": [
                    {
                        "matcher": "path",
                        "argument": "DetectionStatus",
                        "expected": "DETECTION_COMPLETE",
                        "state": "success",
                    },
                    {
                        "matcher": "path",
                        "argument": "DetectionStatus",
                        "expected": "DETECTION_FAILED",
                        "state": "failure",
                    },
                ],
            }
        },
    }
)


class InfraError(InstbenchError):
    """A deployment CloudFormation rejected or rolled back (the reason is in the message)."""


@dataclass(frozen=True)
class InfraParams:
    """What the user chooses; everything else is fixed by the template."""

    bucket: str | None = None
    retention_days: int = 30
    noncurrent_days: int = 90
    ecr: bool = False
    github_repo: str | None = None
    github_branch: str = "main"
    oidc_provider_arn: str | None = None


@dataclass(frozen=True)
class BucketCheck:
    """One protection of the results bucket, as read back from S3."""

    name: str
    ok: bool
    detail: str


@dataclass
class SetupResult:
    stack: str
    action: Literal["created", "updated", "unchanged"]
    outputs: dict[str, str]
    enforced: list[str] = field(default_factory=list)
    """Bucket protections the endpoint did not apply from the template, applied directly."""


@dataclass
class StatusResult:
    stack: str
    status: str
    outputs: dict[str, str]
    parameters: dict[str, str]
    drift: str
    """IN_SYNC / DRIFTED / ... or why drift could not be detected."""
    drifted_resources: list[str]
    bucket_checks: list[BucketCheck]


@dataclass
class TeardownResult:
    stack: str
    bucket: str | None
    objects_deleted: int


def template_body() -> str:
    """The template shipped in the package."""
    return (resources.files("instbench.aws") / "templates" / "infra.yaml").read_text("utf-8")


def _cfn(session: AwsSession) -> CloudFormationClient:
    return session.client("cloudformation")  # type: ignore[no-any-return]


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", exc))


def describe_stack(session: AwsSession, stack: str) -> dict[str, Any] | None:
    """The stack's description, or None when it does not exist."""
    try:
        stacks = _cfn(session).describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        if _code(exc) == "ValidationError" and "does not exist" in _message(exc):
            return None
        raise
    return dict(stacks[0]) if stacks else None


def _outputs(described: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o.get("OutputValue", "") for o in described.get("Outputs", [])}


def stack_outputs(session: AwsSession, stack: str) -> dict[str, str]:
    """The stack's outputs; read from its resources when the endpoint reports none.

    moto does not evaluate Outputs for stacks created through change sets; the same values
    are then derived from the physical ids of the stack's resources.
    """
    described = describe_stack(session, stack) or {}
    outputs = _outputs(described)
    if outputs or not described:
        return outputs
    physical = {
        r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
        for r in _cfn(session).list_stack_resources(StackName=stack)["StackResourceSummaries"]
        if r.get("LogicalResourceId")
    }
    if physical.get("ResultsBucket"):
        outputs["BucketName"] = physical["ResultsBucket"]
    if physical.get("Dashboard"):
        outputs["DashboardName"] = physical["Dashboard"]
    if physical.get("GitHubActionsRole"):
        role = physical["GitHubActionsRole"]
        outputs["RoleArn"] = role if role.startswith("arn:") else _role_arn(session, role)
    if physical.get("AgentRepository"):
        repos = session.client("ecr").describe_repositories(
            repositoryNames=[physical["AgentRepository"]]
        )["repositories"]
        outputs["EcrRepositoryUri"] = str(repos[0]["repositoryUri"])
    return outputs


def _role_arn(session: AwsSession, name: str) -> str:
    return str(session.client("iam").get_role(RoleName=name)["Role"]["Arn"])


def _parameters(described: dict[str, Any]) -> dict[str, str]:
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])}


def default_oidc_provider_arn(session: AwsSession) -> str:
    """The ARN GitHub's OIDC provider has in the caller's account (one per account)."""
    account = session.sts().get_caller_identity()["Account"]
    partition = "aws-cn" if session.region.startswith("cn-") else "aws"
    return f"arn:{partition}:iam::{account}:oidc-provider/{GITHUB_OIDC_HOST}"


def _oidc_provider_exists(session: AwsSession, arn: str) -> bool:
    try:
        session.client("iam").get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    except ClientError as exc:
        if _code(exc) in {"NoSuchEntity", "NoSuchEntityException"}:
            return False
        raise
    return True


def cfn_parameters(session: AwsSession, params: InfraParams) -> list[ParameterTypeDef]:
    """Template parameters; the OIDC provider is created only when the account has none."""
    create_provider = False
    provider_arn = params.oidc_provider_arn or ""
    if params.github_repo and not provider_arn:
        provider_arn = default_oidc_provider_arn(session)
        create_provider = not _oidc_provider_exists(session, provider_arn)
    values = {
        "BucketName": params.bucket or "",
        "RetentionDays": str(params.retention_days),
        "NoncurrentVersionDays": str(params.noncurrent_days),
        "CreateEcr": "true" if params.ecr else "false",
        "GitHubRepo": params.github_repo or "",
        "GitHubBranch": params.github_branch,
        "GitHubOidcProviderArn": "" if create_provider else provider_arn,
        "CreateOidcProvider": "true" if create_provider else "false",
    }
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def setup(session: AwsSession, stack_name: str, params: InfraParams) -> SetupResult:
    """Create or update the stack through a change set; a no-change set is success."""
    cfn = _cfn(session)
    current = describe_stack(session, stack_name)
    status = str(current["StackStatus"]) if current else ""
    if status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
        raise UserError(f"stack {stack_name} is {status}: wait for it to finish, then retry")
    if status in {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED"}:
        raise UserError(
            f"stack {stack_name} is {status} and cannot be updated: "
            f"instbench infra teardown --stack {stack_name}, then setup again"
        )
    change_type: Literal["CREATE", "UPDATE"] = (
        "UPDATE" if current and status != "REVIEW_IN_PROGRESS" else "CREATE"
    )
    name = "instbench-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    try:
        created = cfn.create_change_set(
            StackName=stack_name,
            ChangeSetName=name,
            ChangeSetType=change_type,
            TemplateBody=template_body(),
            Parameters=cfn_parameters(session, params),
            Capabilities=["CAPABILITY_IAM"],
            Tags=[{"Key": "instbench:component", "Value": "infra"}],
        )
    except ClientError as exc:
        raise InfraError(f"CloudFormation refused the change set: {_message(exc)}") from exc
    change_set = created["Id"]
    try:
        cfn.get_waiter("change_set_create_complete").wait(
            ChangeSetName=change_set, StackName=stack_name, WaiterConfig=_FAST
        )
    except WaiterError as exc:
        described = cfn.describe_change_set(ChangeSetName=change_set, StackName=stack_name)
        reason = str(described.get("StatusReason", ""))
        if any(marker in reason for marker in _NO_CHANGES):
            cfn.delete_change_set(ChangeSetName=change_set, StackName=stack_name)
            outputs = stack_outputs(session, stack_name)
            enforced = _harden(session, outputs, params)
            return SetupResult(stack_name, "unchanged", outputs, enforced)
        raise InfraError(f"change set {name} failed: {reason or exc}") from exc
    cfn.execute_change_set(ChangeSetName=change_set, StackName=stack_name)
    try:
        if change_type == "CREATE":
            cfn.get_waiter("stack_create_complete").wait(StackName=stack_name, WaiterConfig=_FAST)
        else:
            cfn.get_waiter("stack_update_complete").wait(StackName=stack_name, WaiterConfig=_FAST)
    except WaiterError as exc:
        raise InfraError(
            f"stack {stack_name} did not complete: {_failure_reason(cfn, stack_name)}"
        ) from exc
    outputs = stack_outputs(session, stack_name)
    enforced = _harden(session, outputs, params)
    action: Literal["created", "updated"] = "created" if change_type == "CREATE" else "updated"
    return SetupResult(stack_name, action, outputs, enforced)


def _failure_reason(cfn: CloudFormationClient, stack: str) -> str:
    """The first resource failure in the stack's events (what the user has to fix)."""
    events = cfn.describe_stack_events(StackName=stack).get("StackEvents", [])
    for event in reversed(events):
        if str(event.get("ResourceStatus", "")).endswith("_FAILED"):
            reason = event.get("ResourceStatusReason", "")
            return f"{event.get('LogicalResourceId')}: {reason}"
    return "see the stack's events"


# ------------------------------------------------------------------ bucket protections


def tls_only_statement(bucket: str, partition: str = "aws") -> dict[str, Any]:
    """The bucket policy statement of the template: deny any request not over TLS."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:{partition}:s3:::{bucket}", f"arn:{partition}:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def lifecycle_rules(retention_days: int, noncurrent_days: int) -> list[dict[str, Any]]:
    """The template's lifecycle rules, in S3 API form."""
    rules: list[dict[str, Any]] = [
        {
            "ID": f"expire-{prefix.rstrip('/')}",
            "Status": "Enabled",
            "Filter": {"Prefix": prefix},
            "Expiration": {"Days": retention_days},
        }
        for prefix in EXPIRING_PREFIXES
    ]
    rules.append(
        {
            "ID": "expire-noncurrent-versions",
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "NoncurrentVersionExpiration": {"NoncurrentDays": noncurrent_days},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
        }
    )
    return rules


def _missing_config(exc: ClientError) -> bool:
    code = _code(exc)
    return code.startswith("NoSuch") or code.endswith("NotFoundError") or code == "404"


def _is_tls_deny(statement: dict[str, Any]) -> bool:
    cond = statement.get("Condition", {}).get("Bool", {})
    return (
        statement.get("Effect") == "Deny"
        and str(cond.get("aws:SecureTransport", "")).lower() == "false"
        and statement.get("Action") in ("s3:*", ["s3:*"])
    )


def check_bucket(session: AwsSession, bucket: str, retention_days: int) -> list[BucketCheck]:
    """Read the bucket's protections back from S3 (what the template promises)."""
    s3: S3Client = session.s3()
    checks: list[BucketCheck] = []

    try:
        pab = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        ok = all(pab.get(k) for k in _PAB_KEYS)
        checks.append(BucketCheck("public-access-block", ok, json.dumps(pab, sort_keys=True)))
    except ClientError as exc:
        if not _missing_config(exc):
            raise
        checks.append(BucketCheck("public-access-block", False, "none configured"))

    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
        algos = [
            r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm", "")
            for r in rules.get("Rules", [])
        ]
        ok = any(a in {"AES256", "aws:kms", "aws:kms:dsse"} for a in algos)
        checks.append(BucketCheck("encryption", ok, ",".join(algos) or "none"))
    except ClientError as exc:
        if not _missing_config(exc):
            raise
        checks.append(BucketCheck("encryption", False, "none configured"))

    versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status", "never enabled")
    checks.append(BucketCheck("versioning", versioning == "Enabled", str(versioning)))

    try:
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        statements = policy.get("Statement", [])
        ok = any(_is_tls_deny(s) for s in statements)
        detail = "denies aws:SecureTransport=false" if ok else "no TLS-only deny statement"
        checks.append(BucketCheck("tls-only-policy", ok, detail))
    except ClientError as exc:
        if not _missing_config(exc):
            raise
        checks.append(BucketCheck("tls-only-policy", False, "no bucket policy"))

    try:
        rules_l = s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
        expiring = {
            str(r.get("Filter", {}).get("Prefix", r.get("Prefix", "")))
            for r in rules_l
            if r.get("Status") == "Enabled"
            and r.get("Expiration", {}).get("Days") == retention_days
        }
        missing = [p for p in EXPIRING_PREFIXES if p not in expiring]
        detail = f"{', '.join(EXPIRING_PREFIXES)} expire after {retention_days} days"
        checks.append(
            BucketCheck("lifecycle", not missing, f"missing {missing}" if missing else detail)
        )
    except ClientError as exc:
        if not _missing_config(exc):
            raise
        checks.append(BucketCheck("lifecycle", False, "no lifecycle rules"))
    return checks


_PAB_KEYS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def _apply(session: AwsSession, name: str, bucket: str, params: InfraParams) -> None:
    """Apply one protection with the template's value (see the module docstring: why)."""
    s3: S3Client = session.s3()
    if name == "public-access-block":
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
    elif name == "encryption":
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
    elif name == "versioning":
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    elif name == "tls-only-policy":
        statements: list[dict[str, Any]] = []
        try:
            existing = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
            statements = list(existing.get("Statement", []))
        except ClientError as exc:
            if not _missing_config(exc):
                raise
        partition = "aws-cn" if session.region.startswith("cn-") else "aws"
        statements.append(tls_only_statement(bucket, partition))
        document = {"Version": "2012-10-17", "Statement": statements}
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))
    elif name == "lifecycle":
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration={
                "Rules": lifecycle_rules(params.retention_days, params.noncurrent_days)  # type: ignore[typeddict-item]
            },
        )
    else:  # pragma: no cover - the names come from check_bucket
        raise ValueError(name)


def _harden(session: AwsSession, outputs: dict[str, str], params: InfraParams) -> list[str]:
    """Apply what the endpoint left out of the bucket; the names applied."""
    bucket = outputs.get("BucketName")
    if not bucket:
        raise InfraError("the stack has no BucketName output")
    applied: list[str] = []
    for check in check_bucket(session, bucket, params.retention_days):
        if not check.ok:
            log.warning("bucket %s: %s not applied by the stack; applying it", bucket, check.name)
            _apply(session, check.name, bucket, params)
            applied.append(check.name)
    if applied:
        failed = [c.name for c in check_bucket(session, bucket, params.retention_days) if not c.ok]
        if failed:
            raise InfraError(f"bucket {bucket}: could not apply {', '.join(failed)}")
    return applied


# ------------------------------------------------------------------ status


def detect_drift(session: AwsSession, stack: str) -> tuple[str, list[str]]:
    """(stack drift status, drifted logical ids), or why drift could not be detected.

    moto does not implement DetectStackDrift (it answers HTTP 500); the bucket checks of
    `status` then remain the only drift signal, for what matters most. The request starting
    the detection is made with few retries, so that an endpoint without the API answers in
    a second instead of after the full retry budget meant for throttling.
    """
    quick = AwsSession(replace(session.settings, max_attempts=2))
    try:
        detection = _cfn(quick).detect_stack_drift(StackName=stack)["StackDriftDetectionId"]
    except ClientError as exc:
        return f"not available: {_code(exc) or 'error'}: {_message(exc)}", []
    except (BotoCoreError, ResponseParserError) as exc:  # moto: an HTML error page
        return f"not available from this endpoint ({type(exc).__name__})", []
    cfn = _cfn(session)
    waiter = create_waiter_with_client("DriftDetectionComplete", _DRIFT_WAITER, cfn)
    try:
        waiter.wait(StackDriftDetectionId=detection)
    except WaiterError as exc:
        return f"detection failed: {exc}", []
    result = cfn.describe_stack_drift_detection_status(StackDriftDetectionId=detection)
    drifted: list[str] = []
    if result.get("StackDriftStatus") == "DRIFTED":
        pages = cfn.describe_stack_resource_drifts(
            StackName=stack, StackResourceDriftStatusFilters=["MODIFIED", "DELETED"]
        )
        drifted = [d["LogicalResourceId"] for d in pages.get("StackResourceDrifts", [])]
    return str(result.get("StackDriftStatus", "UNKNOWN")), drifted


def status(session: AwsSession, stack: str) -> StatusResult:
    """Outputs, parameters, drift and the bucket's protections as S3 reports them."""
    described = describe_stack(session, stack)
    if described is None:
        raise UserError(f"no stack {stack} in {session.region}: instbench infra setup first")
    outputs = stack_outputs(session, stack)
    parameters = _parameters(described)
    drift, drifted = detect_drift(session, stack)
    checks: list[BucketCheck] = []
    bucket = outputs.get("BucketName")
    if bucket:
        retention = int(parameters.get("RetentionDays", "30") or 30)
        checks = check_bucket(session, bucket, retention)
    return StatusResult(
        stack, str(described["StackStatus"]), outputs, parameters, drift, drifted, checks
    )


# ------------------------------------------------------------------ teardown


def _versions(s3: S3Client, bucket: str) -> Iterator[list[dict[str, str]]]:
    """Every object version and delete marker, in pages of at most 1000 (DeleteObjects)."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        batch = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        ]
        if batch:
            yield batch


def _bucket_exists(s3: S3Client, bucket: str) -> bool:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if _code(exc) in {"404", "NoSuchBucket", "NotFound"}:
            return False
        raise
    return True


def empty_bucket(session: AwsSession, bucket: str) -> int:
    """Delete every object version and delete marker; the count removed."""
    s3: S3Client = session.s3()
    removed = 0
    for batch in _versions(s3, bucket):
        answer = s3.delete_objects(
            Bucket=bucket,
            Delete={"Objects": batch, "Quiet": True},  # type: ignore[typeddict-item]
        )
        errors = answer.get("Errors", [])
        if errors:
            first = errors[0]
            raise InfraError(
                f"bucket {bucket}: could not delete {first.get('Key')}: {first.get('Message')}"
            )
        removed += len(batch)
    return removed


def _bucket_of(session: AwsSession, stack: str, described: dict[str, Any]) -> str | None:
    bucket = stack_outputs(session, stack).get("BucketName")
    if bucket:
        return bucket
    try:
        resource = _cfn(session).describe_stack_resource(
            StackName=stack, LogicalResourceId="ResultsBucket"
        )
    except ClientError:
        return None
    return resource["StackResourceDetail"].get("PhysicalResourceId")


def teardown(session: AwsSession, stack: str, force: bool = False) -> TeardownResult:
    """Delete the stack and its bucket; refuse while the bucket holds data, unless forced.

    The bucket is retained by the template (DeletionPolicy: Retain, so a stack deleted by
    hand never takes the results with it); teardown therefore deletes it itself, once the
    stack is gone and the bucket is empty.
    """
    described = describe_stack(session, stack)
    if described is None:
        raise UserError(f"no stack {stack} in {session.region}: nothing to tear down")
    s3: S3Client = session.s3()
    bucket = _bucket_of(session, stack, described)
    removed = 0
    if bucket and _bucket_exists(s3, bucket):
        page = s3.list_object_versions(Bucket=bucket, MaxKeys=1)
        non_empty = bool(page.get("Versions") or page.get("DeleteMarkers"))
        if non_empty and not force:
            raise UserError(
                f"bucket {bucket} is not empty (results, logs or old versions): "
                "sync what you need, then teardown --force deletes everything in it"
            )
        if non_empty:
            removed = empty_bucket(session, bucket)
    cfn = _cfn(session)
    cfn.delete_stack(StackName=stack)
    try:
        cfn.get_waiter("stack_delete_complete").wait(StackName=stack, WaiterConfig=_FAST)
    except WaiterError as exc:
        raise InfraError(f"stack {stack} was not deleted: {_failure_reason(cfn, stack)}") from exc
    if bucket and _bucket_exists(s3, bucket):
        try:
            s3.delete_bucket(Bucket=bucket)
        except ClientError as exc:
            raise AwsConfigError(f"bucket {bucket} was kept: {_message(exc)}") from exc
    return TeardownResult(stack, bucket, removed)
