"""Fault injection on the fleet (issue 4, scenarios 2-5), in the sandbox over moto.

Faults enter only through botocore event hooks registered on the controller's AwsSession
(the sandbox's cloud-init has its own session and sees the real moto): an
InsufficientInstanceCapacity answer in one zone, user data swapped for a script that never
reports or that uploads a broken result, and a throttling storm on DescribeInstances.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from tests.ec2_faults import OutsideEnder

from instbench.aws.session import AwsSession
from instbench.fleet.plan import FleetOptions, Plan
from instbench.fleet.run import execute, plan_run
from instbench.fleet.status import FleetOutcome
from instbench.journal import Journal
from instbench.results.validate import QUARANTINE_PREFIX_BYTES
from instbench.sandbox.runtime import Sandbox


@dataclass
class Cloud:
    sandbox: Sandbox
    tmp: Path
    last_plan: Plan | None = None

    def session(self, hooks: list[tuple[str, Callable[..., Any]]]) -> AwsSession:
        """A controller session with the faults registered before any client exists."""
        session = AwsSession(self.sandbox.aws_settings())
        for event, handler in hooks:
            session.register_hook(event, handler)
        return session

    def run(
        self, session: AwsSession, types: list[str], timeout_s: int = 300, **options: Any
    ) -> tuple[FleetOutcome, Journal]:
        """Quick STREAM on `types`, unless `options` (FleetOptions fields) say otherwise."""
        opts = FleetOptions(
            **{
                "instance_types": types,
                "benchmarks": ("stream",),
                "bucket": self.sandbox.bucket,
                "quick": True,
                "collection_method": "sandbox",
                "timeout_s": timeout_s,
                **options,
            }
        )
        plan = plan_run(session, opts, datetime.now(UTC))
        self.last_plan = plan
        journal = Journal(self.tmp / "journal.sqlite")
        outcome = execute(session, plan, journal, self.tmp / "data", lambda s: None, True)
        return outcome, journal

    def instance_states(self) -> dict[str, tuple[str, str]]:
        ec2 = AwsSession(self.sandbox.aws_settings()).ec2()
        return {
            i["InstanceId"]: (
                i["State"]["Name"],
                i.get("Placement", {}).get("AvailabilityZone", ""),
            )
            for r in ec2.describe_instances()["Reservations"]
            for i in r["Instances"]
        }


@pytest.fixture()
def cloud(moto_endpoint: str, tmp_path: Path) -> Iterator[Cloud]:
    with Sandbox(endpoint=moto_endpoint, workdir=tmp_path / "cloud", term_grace=1.0) as sb:
        yield Cloud(sb, tmp_path)


def _error(status: int, code: str, message: str) -> tuple[AWSResponse, dict[str, Any]]:
    parsed = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return AWSResponse("https://ec2.invalid", status, {}, None), parsed


def _swap_user_data(make_script: Callable[[str], str]) -> Callable[..., None]:
    """A before-parameter-build hook replacing RunInstances user data."""

    def handler(params: dict[str, Any], **_: Any) -> None:
        original = params["UserData"]
        try:
            text = base64.b64decode(original, validate=True).decode()
            encoded = True
        except ValueError:
            text, encoded = original, False
        script = make_script(text)
        params["UserData"] = base64.b64encode(script.encode()).decode() if encoded else script

    return handler


def _result_url(user_data: str) -> str:
    match = re.search(r"'(http://[^']*incoming/[^']*result\.json[^']*)'", user_data)
    assert match, "the user data names no presigned result URL"
    return match.group(1)


# ----------------------------------------------------------------------------- scenario 2


def test_capacity_error_in_one_zone_fails_over_to_another(cloud: Cloud) -> None:
    refused: list[str] = []

    def insufficient_capacity(params: dict[str, Any], **_: Any) -> Any:
        body = params.get("body", {})
        zone = body.get("Placement.AvailabilityZone", "")
        if not refused or zone == refused[0]:
            refused.append(zone)
            return _error(500, "InsufficientInstanceCapacity", f"no capacity in {zone}")
        return None

    session = cloud.session([("before-call.ec2.RunInstances", insufficient_capacity)])
    outcome, journal = cloud.run(session, ["m7i.large"])

    assert outcome.succeeded, [s.detail for s in outcome.statuses]
    [row] = journal.tasks(outcome.run_id)
    assert refused and row.availability_zone != refused[0]
    assert row.attempt >= 1
    [(state, zone)] = cloud.instance_states().values()
    assert state == "terminated" and zone == row.availability_zone


def test_capacity_everywhere_fails_with_the_reason(cloud: Cloud) -> None:
    def never(params: dict[str, Any], **_: Any) -> Any:
        return _error(500, "InsufficientInstanceCapacity", "none")

    session = cloud.session([("before-call.ec2.RunInstances", never)])
    outcome, journal = cloud.run(session, ["m7a.large"])
    assert not outcome.succeeded
    [row] = journal.tasks(outcome.run_id)
    assert row.state == "failed" and "InsufficientInstanceCapacity" in (row.reason or "")
    assert cloud.instance_states() == {}


# ----------------------------------------------------------------------------- scenario 3


def test_instance_that_never_reports_is_terminated_at_the_timeout(cloud: Cloud) -> None:
    def silent(_original: str) -> str:
        return "#!/bin/bash\necho 'booted, now hanging'\nsleep 600\n"

    session = cloud.session([("before-parameter-build.ec2.RunInstances", _swap_user_data(silent))])
    outcome, journal = cloud.run(session, ["c7g.large"], timeout_s=8)

    [status] = outcome.statuses
    assert status.state == "failed" and "no result within the timeout" in status.detail
    [row] = journal.tasks(outcome.run_id)
    assert row.terminated and row.state == "failed"
    assert {s for s, _ in cloud.instance_states().values()} == {"terminated"}
    console = list((cloud.tmp / "data" / "logs").rglob("*.console"))
    assert len(console) == 1
    assert "booted, now hanging" in console[0].read_text()


# ----------------------------------------------------------------------------- scenario 4

_BROKEN = {
    "malformed": ('{"metadata": ', "not valid JSON"),
    "oversized": ('{"pad": "' + "x" * (1024 * 1024 + 10) + '"}', "above the"),
    "wrong-schema": (json.dumps({"metadata": {"run_id": "x"}}), "schema violation"),
    "nan": ('{"metadata": NaN}', "non-finite"),
}


@pytest.mark.parametrize("kind", sorted(_BROKEN))
def test_broken_result_is_quarantined_never_stored(cloud: Cloud, kind: str) -> None:
    payload, reason = _BROKEN[kind]

    def liar(original: str) -> str:
        url = _result_url(original)
        body = cloud.tmp / f"{kind}.json"
        body.write_text(payload)
        return (
            "#!/bin/bash\n"
            f"curl -fsS -X PUT -H 'Content-Type: application/json' --upload-file '{body}' '{url}'\n"
            "shutdown -h now\n"
        )

    session = cloud.session([("before-parameter-build.ec2.RunInstances", _swap_user_data(liar))])
    outcome, _journal = cloud.run(session, ["m7i.large"], timeout_s=60)

    [status] = outcome.statuses
    assert status.state == "failed" and "quarantined" in status.detail and reason in status.detail
    data = cloud.tmp / "data"
    assert not (data / "raw").exists()
    reasons = list((data / "quarantine").rglob("*.reason"))
    assert len(reasons) == 1 and reason in reasons[0].read_text()
    held = reasons[0].with_suffix(".json")
    # Of an oversized upload only a bounded prefix is kept (issue 21).
    kept = QUARANTINE_PREFIX_BYTES if kind == "oversized" else len(payload)
    assert held.read_bytes() == payload.encode()[:kept]
    s3 = AwsSession(cloud.sandbox.aws_settings()).s3()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=cloud.sandbox.bucket).get("Contents", [])]
    assert not [k for k in keys if k.startswith(("raw/", "incoming/"))]
    assert [k for k in keys if k.startswith("quarantine/") and k.endswith(".reason")]


# ----------------------------------------------------------------------------- scenario 5


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def test_throttling_storm_on_describe_instances_still_completes(cloud: Cloud) -> None:
    throttled: list[int] = []
    calls: list[int] = []
    xml = (
        b"<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
        b"<Message>Request limit exceeded.</Message></Error></Errors>"
        b"<RequestID>storm</RequestID></Response>"
    )

    def storm(request: Any, **_: Any) -> Any:
        calls.append(1)
        # The first six calls all fail, then every other one: a storm, not an outage.
        if len(calls) <= 6 or len(calls) % 2 == 0:
            throttled.append(1)
            return AWSResponse(request.url, 503, {}, _Body(xml))
        return None

    session = cloud.session([("before-send.ec2.DescribeInstances", storm)])
    outcome, _journal = cloud.run(session, ["m7i.large", "m7a.large"])
    assert outcome.succeeded, [s.detail for s in outcome.statuses]
    assert len(throttled) >= 6
    assert {s for s, _ in cloud.instance_states().values()} == {"terminated"}


# ----------------------------------------------------------------------------- scenario 6


def _spot_run(
    cloud: Cloud, session: AwsSession, fallback: str | None, seconds: int = 8
) -> tuple[FleetOutcome, Journal]:
    """One idle task on spot: long enough to be interrupted while its agent runs."""
    return cloud.run(
        session,
        ["c7g.large"],
        timeout_s=120,
        benchmarks=("idle",),
        quick=False,
        agent_args=["--duration-s", str(seconds)],
        market="spot",
        spot_fallback=fallback,
    )


class _Reclaimer(OutsideEnder):
    """Plays EC2 reclaiming spot capacity: once a spot instance's user data is running,
    moto's backend is told the instance was terminated with the spot state reason."""

    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud.sandbox)
        self.reclaimed = self.ended

    def pick(self, instance: Any) -> bool:
        return bool(instance.lifecycle == "spot")


def test_spot_interruption_falls_back_to_on_demand(cloud: Cloud) -> None:
    session = cloud.session([])
    with _Reclaimer(cloud) as reclaimer:
        outcome, journal = _spot_run(cloud, session, "on-demand")

    assert outcome.succeeded, [s.detail for s in outcome.statuses]
    assert len(reclaimer.reclaimed) == 1
    [status] = outcome.statuses
    assert status.interruptions == 1 and status.market == "on-demand"
    assert status.instance_id not in reclaimer.reclaimed
    assert status.document is not None
    meta = status.document.metadata
    assert meta.market == "on-demand" and meta.spot_interruptions == 1
    # The journal tells the story; the reclaimed instance's console was kept.
    events = [e for e in journal.events(outcome.run_id) if "spot interruption" in (e[3] or "")]
    assert events
    consoles = list((cloud.tmp / "data" / "logs").rglob(f"*{reclaimer.reclaimed[0]}.console"))
    assert len(consoles) == 1
    assert {s for s, _ in cloud.instance_states().values()} == {"terminated"}
    manifest = json.loads(next((cloud.tmp / "data").rglob("manifest.json")).read_text())
    assert manifest["tasks"][0]["spot_interruptions"] == 1
    # Resumed, the run counts the interruptions its journal recorded before.
    assert cloud.last_plan is not None
    resumed = execute(
        session, cloud.last_plan, journal, cloud.tmp / "data", lambda s: None, True, True
    )
    assert resumed.succeeded
    assert [s.interruptions for s in resumed.statuses] == [1]


def test_spot_interruption_without_fallback_fails_the_task(cloud: Cloud) -> None:
    session = cloud.session([])
    with _Reclaimer(cloud) as reclaimer:
        outcome, journal = _spot_run(cloud, session, None)

    assert not outcome.succeeded
    [status] = outcome.statuses
    assert status.state == "failed" and "spot interruption" in status.detail
    assert "no capacity" not in status.detail
    assert len(reclaimer.reclaimed) == 1 and status.interruptions == 1
    [row] = journal.tasks(outcome.run_id)
    assert row.state == "failed"
    assert {s for s, _ in cloud.instance_states().values()} == {"terminated"}


def test_spot_without_capacity_falls_back_to_on_demand(cloud: Cloud) -> None:
    markets: list[str] = []

    def no_spot(params: dict[str, Any], **_: Any) -> Any:
        market = params.get("body", {}).get("InstanceMarketOptions.MarketType", "on-demand")
        markets.append(market)
        if market == "spot":
            return _error(500, "InsufficientInstanceCapacity", "no spot capacity")
        return None

    session = cloud.session([("before-call.ec2.RunInstances", no_spot)])
    outcome, _journal = _spot_run(cloud, session, "on-demand", seconds=1)

    assert outcome.succeeded, [s.detail for s in outcome.statuses]
    # Every placement refused spot, then the first on-demand launch went through.
    assert markets.count("spot") >= 2 and markets[-1] == "on-demand"
    assert markets.count("on-demand") == 1
    [status] = outcome.statuses
    assert status.document is not None
    assert status.document.metadata.market == "on-demand"
    assert status.document.metadata.spot_interruptions == 0
