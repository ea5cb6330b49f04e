"""The controller's IAM policy is exactly what the controller calls, and allows each call.

A whole sandbox run on spot (plan, launch, wait, collect, terminate, delete the group),
then the CloudWatch metrics of its tasks, a `sync` of the bucket, a `cleanup` of the run
and a `cleanup` of a spot instance that is still running are made through one controller
session carrying the operation recorder, and so is the life of a run's cluster placement
group (created, launched into, deleted; one a crashed run left, swept). The recorded
operations are then compared with `instbench.aws.policy`: an operation no permission
authorises fails the test, and so does a permission no operation used (unless the table
says why the audit cannot observe it).
Then every recorded call, with its region, parameters and the tags of the resources it
touched, is evaluated against the policy document made for the run's region and types:
a call the conditions would deny (an untagged launch, another region or type, a delete
outside incoming/, a terminate of an untagged instance) fails the test. The simulated
instances' own calls are not the controller's and are excluded by the recorder.

Issue 21 case 2: `cleanup` of a running spot instance calls CancelSpotInstanceRequests,
which the policy lacked, so under the shipped policy nothing was terminated.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.integration.conftest import OperationRecorder

from instbench.aws import ami, launch, network
from instbench.aws.cleanup import sweep
from instbench.aws.launch import LaunchSpec
from instbench.aws.metrics import MetricsPublisher
from instbench.aws.policy import audit, denied_calls, policy_document
from instbench.aws.session import AwsSession, AwsSettings
from instbench.fleet.plan import FleetOptions
from instbench.fleet.run import Target, execute, open_target, plan_run
from instbench.journal import Journal
from instbench.results.validate import parse_result
from instbench.storage.local import LocalStore
from instbench.storage.sync import sync

TYPES = ["m7i.large"]
RUN_TAG = "instbench:run-id"


def _spot_request_as_ec2_makes_it(session: AwsSession, spec: LaunchSpec) -> str:
    """The spot request EC2 creates for a spot RunInstances, tagged from its
    TagSpecifications; moto creates none, so it is made here through moto's own API
    (test code: not a controller call, not recorded)."""
    tags = [{"Key": RUN_TAG, "Value": spec.run_id}]
    response = session.ec2().request_spot_instances(
        InstanceCount=1,
        LaunchSpecification={"ImageId": spec.image_id, "InstanceType": spec.instance_type},
        TagSpecifications=[{"ResourceType": "spot-instances-request", "Tags": tags}],
    )
    return str(response["SpotInstanceRequests"][0]["SpotInstanceRequestId"])


def test_policy_grants_exactly_what_the_controller_calls(tmp_path: Path) -> None:
    recorder = OperationRecorder()
    messages: list[str] = []
    # max_parallel=2: the network pair's server and client run together (see Target).
    target = Target(AwsSettings(), sandbox=True, max_parallel=2)
    with open_target(target, messages.append) as (session, bucket):
        assert bucket
        recorder.attach(session)
        opts = FleetOptions(
            instance_types=TYPES,
            benchmarks=("stream", "network"),
            bucket=bucket,
            quick=True,
            collection_method="sandbox",
            market="spot",
        )
        plan = plan_run(session, opts, datetime.now(UTC))
        journal = Journal(tmp_path / "journal.sqlite")
        try:
            outcome = execute(
                session, plan, journal, tmp_path / "data", on_change=lambda _s: None, sandbox=True
            )
        finally:
            journal.close()
        assert outcome.succeeded, messages[-20:]

        publisher = MetricsPublisher(session)
        for path in sorted((tmp_path / "data" / "raw").rglob("*.json")):
            publisher.task_result(parse_result(path.read_bytes()), 12.5, True)
        publisher.run_finished(succeeded=2 * len(TYPES), failed=0, duration_s=60.0)
        assert publisher.sent > 0 and publisher.dropped == 0

        sync(session, bucket, LocalStore(tmp_path / "mirror"))
        sweep(session, now=datetime.now(UTC), run_id=plan.run_id)

        # A spot instance of another run, still running (its user data sleeps), swept.
        spec = LaunchSpec(
            run_id="r-spot-left",
            task_id="m7i.large-stream-0",
            instance_type="m7i.large",
            image_id=ami.latest_al2023(session, "x86_64").image_id,
            expires_at=datetime.now(UTC) + timedelta(hours=1),
            user_data="#!/bin/bash\nsleep 600\n",
            security_group_ids=[],
            availability_zone=plan.placements[0].availability_zone,
            market="spot",
        )
        left = launch.launch_instance(session, spec)
        spot_request = _spot_request_as_ec2_makes_it(session, spec)
        swept = sweep(session, now=datetime.now(UTC), run_id="r-spot-left")
        assert [i for i, _, _ in swept.instances] == [left]
        assert [s for s, _ in swept.spot_requests] == [spot_request], swept

        # A pair task's cluster placement group, through the functions the fleet calls:
        # created with the run tag, launched into, deleted once its instance is gone.
        zone = plan.placements[0].availability_zone
        group = network.create_run_placement_group(session, plan.run_id, zone, plan.expires_at)
        pair_spec = dataclasses.replace(
            spec,
            run_id=plan.run_id,
            task_id="m7i.large-network-0-server",
            user_data="#!/bin/bash\necho pair\n",
            placement_group=group,
        )
        pair = launch.launch_instance(session, pair_spec)
        launch.terminate_instances(session, [pair])
        assert network.delete_placement_group(session, group, [pair], delay=1)
        # One a crashed run left behind, found by its tag and swept.
        left_group = network.create_run_placement_group(session, "r-pg-left", zone, spec.expires_at)
        swept = sweep(session, now=datetime.now(UTC), run_id="r-pg-left")
        assert swept.placement_groups == [(left_group, "r-pg-left")], swept
        for run_id in (plan.run_id, "r-pg-left"):
            assert network.find_run_placement_groups(session, run_id) == []

    called = recorder.as_mapping()
    assert "ec2:RunInstances" in called, called
    assert "ec2:CancelSpotInstanceRequests" in called, called
    assert "ec2:AuthorizeSecurityGroupIngress" in called, called  # the pair's rule
    for operation in ("Create", "Describe", "Delete"):
        assert f"ec2:{operation}PlacementGroup{'s' * (operation == 'Describe')}" in called
    assert any(
        (c.params.get("Placement") or {}).get("GroupName") == group
        for c in recorder.requests
        if c.operation == "ec2:RunInstances"
    )
    report = audit(called)
    assert report.ok, report.explain() + f"\nrecorded: {sorted(called)}"
    document = policy_document(bucket, regions=[plan.region], instance_types=TYPES)
    launches = [c for c in recorder.requests if c.operation == "ec2:RunInstances"]
    assert launches and all(
        c.params["InstanceMarketOptions"]["MarketType"] == "spot" for c in launches
    )
    run_tagged = {spot_request: {RUN_TAG: "r-spot-left"}}
    denied = denied_calls(document, recorder.requests, known_tags=run_tagged)
    assert denied == [], "\n".join(denied)
