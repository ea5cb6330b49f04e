"""`instbench.aws.infra` against moto's CloudFormation, checked through S3's own API.

moto accepts the template but ignores the bucket's PublicAccessBlockConfiguration,
VersioningConfiguration, LifecycleConfiguration and the AWS::S3::BucketPolicy resource, and
reports no Outputs for stacks created from change sets: every property is therefore read
back with direct S3/IAM/ECR calls, which is what a user of the bucket relies on.
"""

from __future__ import annotations

import json
import warnings

import pytest
from botocore.exceptions import ClientError

from instbench.aws import infra
from instbench.aws.session import AwsSession
from instbench.errors import UserError

BUCKET = "instbench-results-test"
PROVIDER = "https://token.actions.githubusercontent.com"

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture()
def deployed(aws_session: AwsSession) -> infra.SetupResult:
    aws_session.client("iam").create_open_id_connect_provider(
        Url=PROVIDER, ClientIDList=["sts.amazonaws.com"], ThumbprintList=["a" * 40]
    )
    params = infra.InfraParams(bucket=BUCKET, ecr=True, github_repo="octo/bench")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return infra.setup(aws_session, "instbench", params)


def _check_protected_bucket(aws_session: AwsSession, deployed: infra.SetupResult) -> None:
    assert deployed.action == "created"
    assert deployed.outputs["BucketName"] == BUCKET
    s3 = aws_session.s3()

    pab = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert pab == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    rules = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]
    algo = rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
    assert algo in {"AES256", "aws:kms"}

    policy = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
    deny = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert f"arn:aws:s3:::{BUCKET}/*" in deny[0]["Resource"]

    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    expiring = {
        r["Filter"]["Prefix"]: r["Expiration"]["Days"] for r in lifecycle if "Expiration" in r
    }
    assert expiring == {"logs/": 30, "artifacts/": 30, "incoming/": 30}
    # moto applied none of these from the template: setup applied them and says so
    assert set(deployed.enforced) >= {"public-access-block", "versioning", "tls-only-policy"}


def _check_role_and_repository(aws_session: AwsSession, deployed: infra.SetupResult) -> None:
    role_name = deployed.outputs["RoleArn"].rsplit("/", 1)[1]
    role = aws_session.client("iam").get_role(RoleName=role_name)["Role"]
    trust = role["AssumeRolePolicyDocument"]
    if isinstance(trust, str):
        trust = json.loads(trust)
    [statement] = trust["Statement"]
    assert statement["Principal"]["Federated"].endswith(
        "oidc-provider/token.actions.githubusercontent.com"
    )
    sub = statement["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
    assert sub == "repo:octo/bench:ref:refs/heads/main"
    names = aws_session.client("iam").list_role_policies(RoleName=role_name)["PolicyNames"]
    assert names == ["instbench-controller"]
    assert deployed.outputs["EcrRepositoryUri"].endswith("/instbench-agent")


def _check_setup_twice_changes_nothing(
    aws_session: AwsSession, deployed: infra.SetupResult
) -> None:
    params = infra.InfraParams(bucket=BUCKET, ecr=True, github_repo="octo/bench")
    again = infra.setup(aws_session, "instbench", params)
    assert again.action == "unchanged"
    assert again.enforced == []
    assert again.outputs == deployed.outputs


def _check_status_reports_outputs_checks_and_drift(
    aws_session: AwsSession, deployed: infra.SetupResult
) -> None:
    result = infra.status(aws_session, "instbench")
    assert result.status == "CREATE_COMPLETE"
    assert result.outputs["BucketName"] == BUCKET
    assert all(c.ok for c in result.bucket_checks), result.bucket_checks
    assert result.drift.startswith("not available")  # moto has no DetectStackDrift

    aws_session.s3().delete_public_access_block(Bucket=BUCKET)
    again = infra.status(aws_session, "instbench")
    bad = [c.name for c in again.bucket_checks if not c.ok]
    assert bad == ["public-access-block"]


def test_setup_status_idempotence(aws_session: AwsSession, deployed: infra.SetupResult) -> None:
    """One deployment, checked from every side (each deployment to moto costs seconds)."""
    _check_protected_bucket(aws_session, deployed)
    _check_role_and_repository(aws_session, deployed)
    _check_setup_twice_changes_nothing(aws_session, deployed)
    _check_status_reports_outputs_checks_and_drift(aws_session, deployed)


def test_teardown_refuses_a_non_empty_bucket_unless_forced(
    aws_session: AwsSession, deployed: infra.SetupResult
) -> None:
    s3 = aws_session.s3()
    s3.delete_bucket_policy(Bucket=BUCKET)  # the moto endpoint is plain HTTP (see below)
    s3.put_object(Bucket=BUCKET, Key="raw/a.json", Body=b"{}")
    s3.put_object(Bucket=BUCKET, Key="raw/a.json", Body=b"{ }")  # a second version
    s3.delete_object(Bucket=BUCKET, Key="raw/a.json")  # and a delete marker
    with pytest.raises(UserError, match="not empty"):
        infra.teardown(aws_session, "instbench")
    assert infra.describe_stack(aws_session, "instbench") is not None

    result = infra.teardown(aws_session, "instbench", force=True)
    assert result.objects_deleted == 3
    assert BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    described = infra.describe_stack(aws_session, "instbench")
    assert described is None or described["StackStatus"] == "DELETE_COMPLETE"


def test_plain_http_requests_are_denied(
    aws_session: AwsSession, deployed: infra.SetupResult
) -> None:
    """moto evaluates bucket policies: over its plain-HTTP endpoint the TLS-only deny bites."""
    with pytest.raises(ClientError) as info:
        aws_session.s3().put_object(Bucket=BUCKET, Key="raw/x.json", Body=b"{}")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_teardown_of_missing_stack_is_a_user_error(aws_session: AwsSession) -> None:
    with pytest.raises(UserError, match="no stack"):
        infra.teardown(aws_session, "nothing-here")
