"""The Service Quotas source and the plan-time quota check, over the moto server.

moto serves none of EC2's vCPU quotas (GetServiceQuota answers NoSuchResourceException,
GetAWSDefaultServiceQuota a 500). Recorded Service Quotas responses are injected with
botocore `before-send` hooks on the controller's AwsSession, so our code, botocore's
parsing and the operation recorder all run unchanged; EC2 (DescribeInstanceTypes,
offerings, VPCs, AMIs) and S3 are moto's own.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from tests.recorded import recorded_response

from instbench.aws.ami import latest_al2023
from instbench.aws.launch import RUN_TAG
from instbench.aws.quotas import (
    QUOTA_CLASSES,
    ServiceQuotasSource,
    StaticQuotaSource,
)
from instbench.aws.session import AwsSession
from instbench.fleet.capacity import (
    QuotaTooSmall,
    pool_for_plan,
)
from instbench.fleet.plan import FleetOptions, make_plan

JSON = "application/x-amz-json-1.1"
NOW = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)


def _respond(status: int, body: dict[str, Any]) -> AWSResponse:
    return recorded_response(
        status, json.dumps(body).encode(), JSON, url="https://servicequotas.recorded"
    )


def _quota(code: str, name: str, value: float, region: str) -> dict[str, Any]:
    """A GetServiceQuota / GetAWSDefaultServiceQuota answer as AWS sends it."""
    return {
        "Quota": {
            "ServiceCode": "ec2",
            "ServiceName": "Amazon Elastic Compute Cloud (Amazon EC2)",
            "QuotaArn": f"arn:aws:servicequotas:{region}:123456789012:ec2/{code}",
            "QuotaCode": code,
            "QuotaName": name,
            "Value": value,
            "Unit": "None",
            "Adjustable": True,
            "GlobalQuota": False,
            "UsageMetric": {
                "MetricNamespace": "AWS/Usage",
                "MetricName": "ResourceCount",
                "MetricDimensions": {
                    "Class": "Standard/OnDemand",
                    "Resource": "vCPU",
                    "Service": "EC2",
                    "Type": "Resource",
                },
                "MetricStatisticRecommendation": "Maximum",
            },
        }
    }


class RecordedQuotas:
    """Answers Service Quotas calls from a table; records what was asked."""

    def __init__(
        self,
        applied: dict[str, float],
        defaults: dict[str, float] | None = None,
        deny: bool = False,
    ) -> None:
        self.applied = applied
        self.defaults = defaults or {}
        self.deny = deny
        self.asked: list[tuple[str, str]] = []

    def attach(self, session: AwsSession) -> None:
        session.register_hook("before-send.service-quotas.GetServiceQuota", self.applied_quota)
        session.register_hook(
            "before-send.service-quotas.GetAWSDefaultServiceQuota", self.default_quota
        )

    def _answer(self, request: Any, operation: str, table: dict[str, float]) -> AWSResponse:
        params = json.loads(request.body)
        assert params["ServiceCode"] == "ec2"
        code = params["QuotaCode"]
        self.asked.append((operation, code))
        if self.deny:
            return _respond(
                400,
                {
                    "__type": "AccessDeniedException",
                    "message": "User is not authorized to perform servicequotas:GetServiceQuota",
                },
            )
        if code not in table:
            return _respond(
                400,
                {"__type": "NoSuchResourceException", "message": f"quota {code} not applied"},
            )
        names = {c.on_demand_code: c.on_demand_name for c in QUOTA_CLASSES.values()}
        return _respond(200, _quota(code, names.get(code, code), table[code], "us-east-1"))

    def applied_quota(self, request: Any, **_: Any) -> AWSResponse:
        return self._answer(request, "GetServiceQuota", self.applied)

    def default_quota(self, request: Any, **_: Any) -> AWSResponse:
        return self._answer(request, "GetAWSDefaultServiceQuota", self.defaults)


def test_applied_quota_per_class_and_market(aws_session: AwsSession) -> None:
    recorded = RecordedQuotas({"L-1216C47A": 64.0, "L-3819A6DF": 16.0})
    recorded.attach(aws_session)
    source = ServiceQuotasSource(aws_session)
    assert source.vcpu_limit(QUOTA_CLASSES["Standard"], "on-demand") == 64
    assert source.vcpu_limit(QUOTA_CLASSES["G and VT"], "spot") == 16
    assert source.vcpu_limit(QUOTA_CLASSES["Standard"], "on-demand") == 64  # cached
    assert recorded.asked == [("GetServiceQuota", "L-1216C47A"), ("GetServiceQuota", "L-3819A6DF")]
    assert source.warnings == []


def test_no_applied_value_falls_back_to_the_aws_default(aws_session: AwsSession) -> None:
    recorded = RecordedQuotas({}, defaults={"L-1216C47A": 5.0})
    recorded.attach(aws_session)
    source = ServiceQuotasSource(aws_session)
    assert source.vcpu_limit(QUOTA_CLASSES["Standard"], "on-demand") == 5
    assert recorded.asked == [
        ("GetServiceQuota", "L-1216C47A"),
        ("GetAWSDefaultServiceQuota", "L-1216C47A"),
    ]


def test_access_denied_means_unknown_with_a_warning(
    aws_session: AwsSession, caplog: pytest.LogCaptureFixture
) -> None:
    RecordedQuotas({}, deny=True).attach(aws_session)
    warned: list[str] = []
    source = ServiceQuotasSource(aws_session, warn=warned.append)
    with caplog.at_level(logging.WARNING, logger="instbench.aws.quotas"):
        assert source.vcpu_limit(QUOTA_CLASSES["P"], "on-demand") is None
    assert len(warned) == 1 and "L-417A185B" in warned[0] and "AccessDenied" in warned[0]
    assert "L-417A185B" in caplog.text
    # A class without a spot quota is not asked about at all.
    assert source.vcpu_limit(QUOTA_CLASSES["HPC"], "spot") is None
    assert len(warned) == 1


def _opts(bucket: str, types: list[str], **kw: Any) -> FleetOptions:
    return FleetOptions(instance_types=types, benchmarks=("stream",), bucket=bucket, **kw)


@pytest.fixture()
def bucket(aws_session: AwsSession) -> str:
    name = "instbench-quota-test"
    aws_session.s3().create_bucket(Bucket=name)
    return name


def test_plan_refuses_a_type_over_its_quota_before_creating_anything(
    aws_session: AwsSession, bucket: str
) -> None:
    RecordedQuotas({"L-1216C47A": 64.0}).attach(aws_session)
    source = ServiceQuotasSource(aws_session)
    with pytest.raises(QuotaTooSmall) as err:
        make_plan(
            aws_session,
            _opts(bucket, ["m7i.large", "m7i.48xlarge"]),
            "run-1",
            NOW,
            quota_source=source,
        )
    assert str(err.value).startswith("m7i.48xlarge needs 192 vCPUs but the Running On-Demand")
    assert "(L-1216C47A) in us-east-1 is 64" in str(err.value)
    ec2 = aws_session.ec2()
    assert ec2.describe_instances()["Reservations"] == []


def test_plan_records_the_limits_and_the_pool_follows_them(
    aws_session: AwsSession, bucket: str
) -> None:
    RecordedQuotas({"L-1216C47A": 64.0, "L-DB2E81BA": 8.0}).attach(aws_session)
    plan = make_plan(
        aws_session,
        _opts(bucket, ["m7i.large", "g5.xlarge"], vcpu_budget=32),
        "run-2",
        NOW,
        quota_source=ServiceQuotasSource(aws_session),
    )
    assert plan.vcpu_limits == {"Standard/on-demand": 64, "G and VT/on-demand": 8}
    pool = pool_for_plan(plan)
    assert pool.max_fit("Standard/on-demand") == 32  # the budget binds
    assert pool.max_fit("G and VT/on-demand") == 8  # the quota binds


def test_the_budget_alone_refuses_at_plan_time(aws_session: AwsSession, bucket: str) -> None:
    with pytest.raises(QuotaTooSmall, match="needs 192 vCPUs but --vcpu-budget is 100"):
        make_plan(
            aws_session,
            _opts(bucket, ["m7i.48xlarge"], vcpu_budget=100),
            "run-3",
            NOW,
            quota_source=StaticQuotaSource(),
        )


def _run_outside(session: AwsSession, instance_type: str, run_id: str | None = None) -> str:
    """An instance someone else launched (or, with `run_id`, one tagged as that run's)."""
    kwargs: dict[str, Any] = {}
    if run_id is not None:
        kwargs["TagSpecifications"] = [
            {"ResourceType": "instance", "Tags": [{"Key": RUN_TAG, "Value": run_id}]}
        ]
    arch = "arm64" if instance_type.startswith("c7g") else "x86_64"
    reservation = session.ec2().run_instances(
        ImageId=latest_al2023(session, arch).image_id,
        InstanceType=instance_type,
        MinCount=1,
        MaxCount=1,
        **kwargs,
    )
    return str(reservation["Instances"][0]["InstanceId"])


def test_instances_running_outside_the_run_take_room_from_the_quota(
    aws_session: AwsSession, bucket: str
) -> None:
    # 4 + 2 vCPUs held by instances of other runs or people; a stopped instance and the
    # run's own (a resumed run) hold nothing the plan must subtract.
    _run_outside(aws_session, "m7i.xlarge")
    _run_outside(aws_session, "c7g.large")
    stopped = _run_outside(aws_session, "m7i.4xlarge")
    aws_session.ec2().stop_instances(InstanceIds=[stopped])
    _run_outside(aws_session, "m7i.4xlarge", run_id="run-5")
    source = StaticQuotaSource({("Standard", "on-demand"): 16})

    plan = make_plan(aws_session, _opts(bucket, ["m7i.2xlarge"]), "run-5", NOW, quota_source=source)
    assert plan.vcpu_limits == {"Standard/on-demand": 10}
    assert pool_for_plan(plan).max_fit("Standard/on-demand") == 10

    with pytest.raises(QuotaTooSmall) as err:
        make_plan(aws_session, _opts(bucket, ["m7i.4xlarge"]), "run-6", NOW, quota_source=source)
    message = str(err.value)
    assert "m7i.4xlarge needs 16 vCPUs" in message
    # run-6 is another run: the instance tagged run-5 counts against it too.
    assert "of which 22 are held by 3 running instances outside this run" in message
    assert "it cannot run now; end those instances" in message
