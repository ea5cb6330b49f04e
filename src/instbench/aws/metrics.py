"""CloudWatch metrics of runs and tasks (namespace `instbench`).

Per task: ExecutionTime (s), Success (1/0), Bandwidth (best GB/s of each STREAM kernel in
the all-threads run, dimension Kernel) and GFLOPS (any benchmark section reporting
`gflops`), with dimensions InstanceType, Region, Benchmark. Per run: RunExecutionTime,
TasksSucceeded, TasksFailed, RunSuccess (dimension Region).

Metrics are an observer of a run, never a participant: every failure to publish is logged
and swallowed, so a throttled or unreachable CloudWatch cannot fail (or slow down) a run
beyond one attempt per batch. Data points are buffered and sent in as few PutMetricData
calls as the API limits allow (1000 data points and 1 MB of request per call).
"""

from __future__ import annotations

import logging
import threading
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from instbench.aws.policy import METRICS_NAMESPACE

if TYPE_CHECKING:
    from instbench.aws.session import AwsSession
    from instbench.results.schema import ResultDocument

log = logging.getLogger(__name__)

MAX_DATUMS_PER_CALL = 1000
MAX_REQUEST_BYTES = 1_000_000
_REQUEST_OVERHEAD = 200
"""Action, version and namespace parameters of the request around the data points."""

Datum = dict[str, Any]


def _dimensions(values: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Name": k, "Value": v} for k, v in values.items() if v]


def datum(
    name: str,
    value: float,
    unit: str,
    dimensions: Mapping[str, str],
    timestamp: datetime | None = None,
) -> Datum:
    """One MetricDatum (PutMetricData's shape)."""
    return {
        "MetricName": name,
        "Value": float(value),
        "Unit": unit,
        "Dimensions": _dimensions(dimensions),
        "Timestamp": timestamp or datetime.now(UTC),
    }


def encoded_size(item: Datum, index: int = 1000) -> int:
    """Bytes the datum takes in a query-protocol request body (the larger wire encoding).

    CloudWatch's 1 MB limit is on the request; counting the query encoding (whose member
    paths are longer than the JSON/CBOR ones) keeps every batch under it whatever protocol
    botocore uses.
    """
    prefix = f"MetricData.member.{index}."
    fields: list[tuple[str, str]] = [
        (prefix + "MetricName", item["MetricName"]),
        (prefix + "Value", repr(item["Value"])),
        (prefix + "Unit", item["Unit"]),
        (prefix + "Timestamp", "2000-01-01T00:00:00.000000Z"),
    ]
    for n, dim in enumerate(item["Dimensions"], start=1):
        fields.append((f"{prefix}Dimensions.member.{n}.Name", dim["Name"]))
        fields.append((f"{prefix}Dimensions.member.{n}.Value", dim["Value"]))
    return len(urllib.parse.urlencode(fields)) + 1


def batches(
    data: Iterable[Datum],
    max_count: int = MAX_DATUMS_PER_CALL,
    max_bytes: int = MAX_REQUEST_BYTES,
) -> Iterator[list[Datum]]:
    """Split data points into PutMetricData calls within the count and size limits."""
    batch: list[Datum] = []
    size = _REQUEST_OVERHEAD
    for item in data:
        item_size = encoded_size(item)
        if batch and (len(batch) >= max_count or size + item_size > max_bytes):
            yield batch
            batch, size = [], _REQUEST_OVERHEAD
        batch.append(item)
        size += item_size
    if batch:
        yield batch


def task_metrics(
    doc: ResultDocument | None,
    duration_s: float,
    success: bool,
    *,
    instance_type: str | None = None,
    benchmark: str | None = None,
    region: str | None = None,
) -> list[Datum]:
    """Data points of one task; dimensions from the document, else from the arguments."""
    meta = doc.metadata if doc is not None else None
    itype = instance_type or (meta.instance_type if meta else None)
    reg = region or (meta.region if meta else None)
    benches = [benchmark] if benchmark else list(meta.benchmark_suite if meta else [])
    if not itype or not reg or not benches:
        raise ValueError("task metrics need an instance type, a region and a benchmark")
    when = meta.timestamp if meta else None
    out: list[Datum] = []
    for bench in benches:
        dims = {"InstanceType": itype, "Region": reg, "Benchmark": bench}
        out.append(datum("ExecutionTime", duration_s, "Seconds", dims, when))
        out.append(datum("Success", 1.0 if success else 0.0, "Count", dims, when))
    if doc is None:
        return out
    perf = doc.performance_data
    if perf.stream is not None:
        dims = {"InstanceType": itype, "Region": reg, "Benchmark": "stream"}
        for run in perf.stream.runs:
            if run.thread_mode != "all":
                continue
            for kernel, result in sorted(run.kernels.items()):
                kdims = {**dims, "Kernel": kernel}
                out.append(datum("Bandwidth", result.best_gbps, "Gigabytes/Second", kdims, when))
    for section, values in perf.model_dump().items():
        gflops = values.get("gflops") if isinstance(values, dict) else None
        if isinstance(gflops, int | float):
            dims = {"InstanceType": itype, "Region": reg, "Benchmark": section}
            out.append(datum("GFLOPS", float(gflops), "None", dims, when))
    return out


def run_metrics(region: str, succeeded: int, failed: int, duration_s: float) -> list[Datum]:
    """Data points summarising one run."""
    dims = {"Region": region}
    return [
        datum("RunExecutionTime", duration_s, "Seconds", dims),
        datum("TasksSucceeded", succeeded, "Count", dims),
        datum("TasksFailed", failed, "Count", dims),
        datum("RunSuccess", 1.0 if failed == 0 else 0.0, "Count", dims),
    ]


class MetricsPublisher:
    """Buffers data points and sends them in batches; never raises.

    The orchestrator calls `task_result` as each task ends (from any thread) and
    `run_finished` once; the buffer is flushed when it holds a full batch and at the end.
    `enabled=False` (`--no-metrics`) makes every method a no-op.
    """

    def __init__(
        self,
        session: AwsSession | None,
        *,
        enabled: bool = True,
        namespace: str = METRICS_NAMESPACE,
    ) -> None:
        self.session = session
        self.enabled = enabled and session is not None
        self.namespace = namespace
        self.sent = 0
        self.dropped = 0
        self._buffer: list[Datum] = []
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()

    def task_result(
        self,
        doc: ResultDocument | None,
        duration_s: float,
        success: bool,
        *,
        instance_type: str | None = None,
        benchmark: str | None = None,
    ) -> None:
        """Record one finished task (doc is None for a task that produced no result)."""
        if not self.enabled:
            return
        try:
            region = None if doc is not None else self._region()
            points = task_metrics(
                doc,
                duration_s,
                success,
                instance_type=instance_type,
                benchmark=benchmark,
                region=region,
            )
        except Exception:
            log.warning("metrics: task not recorded", exc_info=True)
            return
        self._add(points)

    def run_finished(self, succeeded: int, failed: int, duration_s: float) -> None:
        """Record the run's summary and send everything still buffered."""
        if not self.enabled:
            return
        try:
            region = self._region()
            if region:
                self._add(run_metrics(region, succeeded, failed, duration_s))
        except Exception:
            log.warning("metrics: run summary not recorded", exc_info=True)
        self.flush()

    def add(self, points: Sequence[Datum]) -> None:
        """Queue arbitrary data points (tests, other callers)."""
        if self.enabled:
            self._add(points)

    def flush(self) -> None:
        """Send every buffered data point; failures are logged and the points dropped."""
        if not self.enabled:
            return
        with self._lock:
            pending, self._buffer = self._buffer, []
        self._send(pending)

    def _region(self) -> str | None:
        try:
            return self.session.region if self.session else None
        except Exception:
            return None

    def _add(self, points: Sequence[Datum]) -> None:
        full: list[Datum] = []
        with self._lock:
            self._buffer.extend(points)
            if len(self._buffer) >= MAX_DATUMS_PER_CALL:
                full, self._buffer = self._buffer, []
        if full:
            self._send(full)

    def _send(self, points: list[Datum]) -> None:
        if not points or self.session is None:
            return
        with self._send_lock:
            for batch in batches(points):
                try:
                    client = self.session.client("cloudwatch")
                    client.put_metric_data(Namespace=self.namespace, MetricData=batch)
                    self.sent += len(batch)
                except Exception as exc:  # never let metrics fail a run
                    self.dropped += len(batch)
                    log.warning(
                        "metrics: %d data points not published to CloudWatch: %s",
                        len(batch),
                        exc,
                    )
