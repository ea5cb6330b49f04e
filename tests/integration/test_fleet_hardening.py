"""Issue 21: late results, hostile uploads, a terminate error after storage, a vanished or
hung endpoint; in the sandbox over moto.

Faults enter only through botocore event hooks on the controller's session (the
simulated instances have their own session and see the real moto) and through real PUTs
to the presigned result URL, as a hostile or late instance would make them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from tests.integration.test_fleet_faults import _error, _result_url, _swap_user_data

from instbench.aws.cleanup import sweep
from instbench.aws.session import AwsSession
from instbench.errors import CleanupIncomplete, CleanupInterrupted
from instbench.fleet.plan import FleetOptions, Plan
from instbench.fleet.run import execute, plan_run
from instbench.fleet.status import FleetOutcome
from instbench.fleet.workers import PollPolicy
from instbench.journal import Journal
from instbench.results.validate import QUARANTINE_PREFIX_BYTES
from instbench.sandbox.runtime import Sandbox

FAST = PollPolicy(interval_s=0.5, shutdown_grace_s=5.0, cleanup_bound_s=3.0)


@dataclasses.dataclass
class Launched:
    """What the controller asked EC2 for, seen by the user-data hook."""

    instance_type: str
    zone: str
    url: str


@dataclasses.dataclass
class Cloud:
    sandbox: Sandbox
    tmp: Path
    base: dict[str, Any]
    plan: Plan | None = None
    journal: Journal | None = None
    notices: list[str] = dataclasses.field(default_factory=list)
    launched: list[Launched] = dataclasses.field(default_factory=list)

    def session(
        self, hooks: list[tuple[str, Callable[..., Any]]], max_attempts: int = 10
    ) -> AwsSession:
        settings = dataclasses.replace(self.sandbox.aws_settings(), max_attempts=max_attempts)
        session = AwsSession(settings)
        for event, handler in hooks:
            session.register_hook(event, handler)
        return session

    def run(
        self, session: AwsSession, types: list[str], *, resume: bool = False, **options: Any
    ) -> FleetOutcome:
        if not resume:
            opts = FleetOptions(
                **{
                    "instance_types": types,
                    "benchmarks": ("stream",),
                    "bucket": self.sandbox.bucket,
                    "quick": True,
                    "collection_method": "sandbox",
                    "timeout_s": 60,
                    **options,
                }
            )
            self.plan = plan_run(session, opts, datetime.now(UTC))
            self.journal = Journal(self.tmp / "journal.sqlite")
        assert self.plan is not None and self.journal is not None
        return execute(
            session,
            self.plan,
            self.journal,
            self.tmp / "data",
            lambda s: None,
            True,
            resume,
            notice=self.notices.append,
            poll=FAST,
        )

    def forge(self, launched: Launched, **metadata: Any) -> bytes:
        """A valid result for the task launched as `launched` (a real agent result with
        the task's identity), with `metadata` fields overridden."""
        assert self.plan is not None
        [task] = [t for t in self.plan.tasks if t.instance_type == launched.instance_type]
        doc = json.loads(json.dumps(self.base))
        doc["metadata"].update(
            {
                "run_id": self.plan.run_id,
                "task_id": task.task_id,
                "instance_type": task.instance_type,
                "sample": task.sample,
                "region": self.plan.region,
                "availability_zone": launched.zone,
                "collection_method": "sandbox",
                "benchmark_suite": [task.benchmark],
                **metadata,
            }
        )
        return json.dumps(doc).encode()

    def hostile(self, body: Callable[[Launched], bytes]) -> Callable[..., None]:
        """User data that PUTs `body(launched)` to the task's result URL and powers off."""

        def handler(params: dict[str, Any], **kwargs: Any) -> None:
            def script(original: str) -> str:
                launched = self._launched(params, original)
                path = self.tmp / f"upload-{len(self.launched)}.json"
                path.write_bytes(body(launched))
                return (
                    "#!/bin/bash\ncurl -fsS -X PUT -H 'Content-Type: application/json' "
                    f"--upload-file '{path}' '{launched.url}'\nshutdown -h now\n"
                )

            _swap_user_data(script)(params, **kwargs)

        return handler

    def silent(self) -> Callable[..., None]:
        """User data that never reports (its URL is kept for a late upload)."""

        def handler(params: dict[str, Any], **kwargs: Any) -> None:
            def script(original: str) -> str:
                self._launched(params, original)
                return "#!/bin/bash\nsleep 600\n"

            _swap_user_data(script)(params, **kwargs)

        return handler

    def _launched(self, params: dict[str, Any], user_data: str) -> Launched:
        zone = params.get("Placement", {}).get("AvailabilityZone", "")
        launched = Launched(params["InstanceType"], zone, _result_url(user_data))
        self.launched.append(launched)
        return launched

    def keys(self, prefix: str) -> list[str]:
        s3 = AwsSession(self.sandbox.aws_settings()).s3()
        found = s3.list_objects_v2(Bucket=self.sandbox.bucket, Prefix=prefix).get("Contents", [])
        return [o["Key"] for o in found]

    def states(self) -> set[str]:
        ec2 = AwsSession(self.sandbox.aws_settings()).ec2()
        return {
            i["State"]["Name"]
            for r in ec2.describe_instances()["Reservations"]
            for i in r["Instances"]
        }


def _put(url: str, data: bytes) -> None:
    request = urllib.request.Request(
        url, data=data, method="PUT", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # loopback only
        assert response.status == 200


@pytest.fixture()
def cloud(moto_endpoint: str, tmp_path: Path, quick_result: bytes) -> Iterator[Cloud]:
    with Sandbox(endpoint=moto_endpoint, workdir=tmp_path / "cloud", term_grace=1.0) as sb:
        yield Cloud(sb, tmp_path, json.loads(quick_result))


def _stored(cloud: Cloud) -> list[Path]:
    return sorted((cloud.tmp / "data" / "raw").rglob("*.json"))


def _quarantined(cloud: Cloud) -> list[Path]:
    return sorted((cloud.tmp / "data" / "quarantine").rglob("*.reason"))


# ------------------------------------------------------------------- case 1: late results


def test_late_result_is_collected_by_resume(cloud: Cloud) -> None:
    session = cloud.session([("before-parameter-build.ec2.RunInstances", cloud.silent())])
    outcome = cloud.run(session, ["m7i.large"], timeout_s=3)
    assert [s.state for s in outcome.statuses] == ["failed"]
    [launched] = cloud.launched

    _put(launched.url, cloud.forge(launched))  # the instance's upload, after the timeout
    resumed = cloud.run(session, [], resume=True)

    assert resumed.succeeded, [s.detail for s in resumed.statuses]
    assert len(cloud.launched) == 1  # collected, not launched again
    assert cloud.journal is not None and cloud.plan is not None
    [row] = cloud.journal.tasks(cloud.plan.run_id)
    assert row.state == "result_stored"
    assert len(_stored(cloud)) == 1 and not cloud.keys("incoming/")


def test_late_result_is_collected_while_the_run_still_waits(cloud: Cloud) -> None:
    """The first task times out; its result arrives while the second still runs: stored."""
    quiet = cloud.silent()

    def first_silent(params: dict[str, Any], **kwargs: Any) -> None:
        assert cloud.plan is not None
        if params["InstanceType"] == cloud.plan.tasks[0].instance_type:
            quiet(params, **kwargs)

    session = cloud.session([("before-parameter-build.ec2.RunInstances", first_silent)])
    done = threading.Event()

    def late_upload() -> None:
        while not done.wait(0.2):
            if cloud.plan is None or not (cloud.tmp / "journal.sqlite").exists():
                continue
            journal = Journal(cloud.tmp / "journal.sqlite")
            try:
                rows = journal.tasks(cloud.plan.run_id)
            finally:
                journal.close()
            if rows and rows[0].state == "failed":
                [launched] = [x for x in cloud.launched if x.instance_type == rows[0].instance_type]
                _put(launched.url, cloud.forge(launched))
                return

    uploader = threading.Thread(target=late_upload, daemon=True)
    uploader.start()
    try:
        outcome = cloud.run(
            session,
            ["c7g.large", "m7i.large"],
            timeout_s=6,
            benchmarks=("idle",),
            quick=False,
            agent_args=["--duration-s", "2"],
            max_concurrency=1,  # the second task starts when the first has failed
        )
    finally:
        done.set()
        uploader.join(timeout=10)
    assert [s.state for s in outcome.statuses] == ["result_stored"] * 2, [
        s.detail for s in outcome.statuses
    ]
    assert outcome.succeeded
    assert len(_stored(cloud)) == 2 and not cloud.keys("incoming/")


# --------------------------------------------------------------- case 4: hostile uploads

_HOSTILE = {
    "region-newline": (lambda c, x: c.forge(x, region="us-east-1\n"), "region"),
    "other-region": (lambda c, x: c.forge(x, region="eu-west-1"), "region"),
    "other-zone": (lambda c, x: c.forge(x, availability_zone="us-east-1x"), "zone"),
    "deep-nesting": (lambda c, x: b"[" * 100_000, "nested too deeply"),
}


@pytest.mark.parametrize("kind", sorted(_HOSTILE))
def test_hostile_result_is_quarantined_before_any_local_write(cloud: Cloud, kind: str) -> None:
    forge, reason = _HOSTILE[kind]
    hook = cloud.hostile(lambda launched: forge(cloud, launched))
    session = cloud.session([("before-parameter-build.ec2.RunInstances", hook)])
    outcome = cloud.run(session, ["m7i.large"])

    [status] = outcome.statuses
    assert status.state == "failed" and "quarantined" in status.detail, status.detail
    assert reason in status.detail
    assert not (cloud.tmp / "data" / "raw").exists()
    [held] = _quarantined(cloud)
    assert reason in held.read_text()
    assert not cloud.keys("raw/") and not cloud.keys("incoming/")


def test_oversized_upload_is_never_read_whole(cloud: Cloud) -> None:
    """HEAD first, then ranged GETs only; only a bounded prefix reaches quarantine."""
    size = 6 * 1024 * 1024
    ranges: list[str | None] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        if "/incoming/" in params.get("url_path", "") or "incoming/" in params.get("url", ""):
            ranges.append(params.get("headers", {}).get("Range"))

    hook = cloud.hostile(lambda launched: b"[" + b" " * size + b"]")
    session = cloud.session(
        [
            ("before-parameter-build.ec2.RunInstances", hook),
            ("before-call.s3.GetObject", record),
        ]
    )
    outcome = cloud.run(session, ["m7i.large"])

    [status] = outcome.statuses
    assert status.state == "failed" and "above the" in status.detail
    assert ranges and all(r is not None for r in ranges), ranges
    [reason] = _quarantined(cloud)
    held = reason.with_suffix(".json")
    assert 0 < held.stat().st_size <= QUARANTINE_PREFIX_BYTES
    assert str(size + 2) in reason.read_text()


# ------------------------------------------- case 12: terminate error after the result


def test_terminate_error_after_storage_never_fails_the_task(cloud: Cloud) -> None:
    refused: list[int] = []

    def refuse_once(params: dict[str, Any], **_: Any) -> Any:
        if not refused:
            refused.append(1)
            return _error(400, "InvalidAttachment.NotFound", "racing the instance's shutdown")
        return None

    session = cloud.session([("before-call.ec2.TerminateInstances", refuse_once)])
    outcome = cloud.run(session, ["m7i.large"])

    assert refused
    assert outcome.succeeded, [s.detail for s in outcome.statuses]
    assert cloud.journal is not None and cloud.plan is not None
    assert cloud.journal.run(cloud.plan.run_id).status == "succeeded"
    [row] = cloud.journal.tasks(cloud.plan.run_id)
    assert row.state == "result_stored"
    assert any("InvalidAttachment.NotFound" in n for n in cloud.notices), cloud.notices
    assert cloud.states() <= {"terminated", "shutting-down"}


# ------------------------------------------------- case 3: the endpoint vanishes or hangs


def test_vanished_endpoint_warns_and_names_cleanup(cloud: Cloud) -> None:
    gone = threading.Event()

    def vanish(**_: Any) -> None:
        gone.set()

    def refuse(request: Any, **_: Any) -> None:
        if gone.is_set():
            raise EndpointConnectionError(endpoint_url=request.url)

    session = cloud.session(
        [("after-call.ec2.RunInstances", vanish), ("before-send", refuse)], max_attempts=2
    )
    with pytest.raises(CleanupIncomplete) as caught:
        cloud.run(
            session,
            ["m7i.large"],
            timeout_s=4,
            benchmarks=("idle",),
            quick=False,
            agent_args=["--duration-s", "30"],
        )
    assert cloud.plan is not None and cloud.journal is not None
    rid = cloud.plan.run_id
    assert f"instbench cleanup --run-id {rid}" in str(caught.value)
    assert "\n" not in str(caught.value)
    warnings = [n for n in cloud.notices if "has not answered" in n]
    assert len(warnings) == 1 and f"instbench cleanup --run-id {rid}" in warnings[0]
    # The journal says what happened and what may still exist; the manifest is local.
    [row] = cloud.journal.tasks(rid)
    assert row.state == "failed" and not row.terminated
    assert cloud.journal.run(rid).status == "failed"
    assert (cloud.tmp / "data" / "runs" / rid / "manifest.json").exists()
    # The endpoint is back: cleanup ends what was left.
    gone.clear()
    sweep(AwsSession(cloud.sandbox.aws_settings()), now=datetime.now(UTC), run_id=rid)
    assert cloud.states() <= {"terminated", "shutting-down"}


def test_hung_endpoint_after_ctrl_c_ends_within_the_cleanup_bound(cloud: Cloud) -> None:
    hung = threading.Event()
    released = threading.Event()

    def hang(**_: Any) -> None:
        if hung.is_set():
            released.wait(20)  # each call hangs this long (the test must end either way)

    def hang_then_interrupt(**_: Any) -> None:
        def later() -> None:
            hung.set()
            if not released.wait(2.0):
                os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=later, daemon=True).start()

    session = cloud.session(
        [("after-call.ec2.RunInstances", hang_then_interrupt), ("before-send", hang)]
    )
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(CleanupInterrupted) as caught:
            cloud.run(
                session,
                ["m7i.large"],
                timeout_s=120,
                benchmarks=("idle",),
                quick=False,
                agent_args=["--duration-s", "60"],
            )
        still_hung = not released.is_set()
    finally:
        signal.signal(signal.SIGINT, previous)
        released.set()
    assert still_hung  # it ended without waiting for the endpoint to come back
    assert cloud.plan is not None
    assert "did not answer within" in str(caught.value)
    assert f"instbench cleanup --run-id {cloud.plan.run_id}" in str(caught.value)
    sweep(AwsSession(cloud.sandbox.aws_settings()), now=datetime.now(UTC), run_id=cloud.plan.run_id)
