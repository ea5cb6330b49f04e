"""CloudWatch metrics against moto's CloudWatch: published, batched, and never fatal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from instbench.aws.metrics import (
    MAX_DATUMS_PER_CALL,
    MetricsPublisher,
    batches,
    datum,
    encoded_size,
    task_metrics,
)
from instbench.aws.session import AwsSession
from instbench.results.validate import parse_result


def _names(session: AwsSession) -> set[str]:
    metrics = session.client("cloudwatch").list_metrics(Namespace="instbench")["Metrics"]
    return {m["MetricName"] for m in metrics}


def test_task_and_run_metrics_reach_cloudwatch(
    aws_session: AwsSession, quick_result: bytes
) -> None:
    doc = parse_result(quick_result)
    publisher = MetricsPublisher(aws_session)
    publisher.task_result(doc, 42.0, True)
    publisher.task_result(None, 600.0, False, instance_type="c7g.large", benchmark="stream")
    publisher.run_finished(succeeded=1, failed=1, duration_s=700.0)
    assert publisher.dropped == 0

    assert {"ExecutionTime", "Success", "Bandwidth", "RunExecutionTime", "TasksFailed"} <= (
        _names(aws_session)
    )
    cw = aws_session.client("cloudwatch")
    bandwidth = cw.list_metrics(Namespace="instbench", MetricName="Bandwidth")["Metrics"]
    kernels = {d["Value"] for m in bandwidth for d in m["Dimensions"] if d["Name"] == "Kernel"}
    assert kernels == {"copy", "scale", "add", "triad"}
    dims = {d["Name"] for d in bandwidth[0]["Dimensions"]}
    assert dims == {"InstanceType", "Region", "Benchmark", "Kernel"}

    now = datetime.now(UTC)
    answer = cw.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "fail",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "instbench",
                        "MetricName": "Success",
                        "Dimensions": [
                            {"Name": "InstanceType", "Value": "c7g.large"},
                            {"Name": "Region", "Value": aws_session.region},
                            {"Name": "Benchmark", "Value": "stream"},
                        ],
                    },
                    "Period": 60,
                    "Stat": "Sum",
                },
            }
        ],
        StartTime=now - timedelta(days=30),
        EndTime=now + timedelta(hours=1),
    )
    assert answer["MetricDataResults"][0]["Values"] == [0.0]


def test_stream_bandwidth_is_best_of_all_threads_run(quick_result: bytes) -> None:
    doc = parse_result(quick_result)
    points = task_metrics(doc, 1.0, True)
    stream = doc.performance_data.stream
    assert stream is not None
    run = next(r for r in stream.runs if r.thread_mode == "all")
    triad = [
        p
        for p in points
        if p["MetricName"] == "Bandwidth"
        and {"Name": "Kernel", "Value": "triad"} in p["Dimensions"]
    ]
    assert [p["Value"] for p in triad] == [run.kernels["triad"].best_gbps]


def test_more_than_1000_points_are_split(aws_session: AwsSession) -> None:
    calls: list[int] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        calls.append(len(params["MetricData"]))

    aws_session.register_hook("provide-client-params.cloudwatch.PutMetricData", count)
    publisher = MetricsPublisher(aws_session)
    points = [
        datum("ExecutionTime", float(i), "Seconds", {"InstanceType": f"t{i % 7}.x", "Region": "r"})
        for i in range(2500)
    ]
    publisher.add(points)
    publisher.flush()
    assert sum(calls) == 2500
    assert max(calls) <= MAX_DATUMS_PER_CALL
    assert len(calls) == 3
    assert publisher.sent == 2500


def test_batches_respect_the_request_size() -> None:
    big = {f"Dim{i}": "v" * 250 for i in range(30)}
    points = [datum("Bandwidth", 1.0, "Gigabytes/Second", big) for _ in range(200)]
    limit = 100_000
    out = list(batches(points, max_bytes=limit))
    assert sum(len(b) for b in out) == 200
    for batch in out:
        assert sum(encoded_size(p) for p in batch) <= limit
    assert len(out) > 1


@pytest.mark.parametrize("mode", ["error", "exception"])
def test_failing_cloudwatch_never_raises(aws_session: AwsSession, mode: str) -> None:
    def fail(**_: Any) -> Any:
        if mode == "exception":
            raise ConnectionError("CloudWatch unreachable")
        raise ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "PutMetricData"
        )

    aws_session.register_hook("before-call.cloudwatch.PutMetricData", fail)
    publisher = MetricsPublisher(aws_session)
    publisher.task_result(None, 5.0, True, instance_type="m7i.large", benchmark="stream")
    publisher.run_finished(succeeded=1, failed=0, duration_s=5.0)
    assert publisher.sent == 0
    assert publisher.dropped == 6


def test_disabled_publisher_calls_nothing(aws_session: AwsSession) -> None:
    publisher = MetricsPublisher(aws_session, enabled=False)
    publisher.task_result(None, 5.0, True, instance_type="m7i.large", benchmark="stream")
    publisher.run_finished(succeeded=1, failed=0, duration_s=5.0)
    assert publisher.sent == 0
    assert _names(aws_session) == set()


def test_task_without_dimensions_is_logged_not_raised(aws_session: AwsSession) -> None:
    publisher = MetricsPublisher(aws_session)
    publisher.task_result(None, 5.0, False)  # no doc, no instance type: nothing to record
    publisher.flush()
    assert publisher.sent == 0
