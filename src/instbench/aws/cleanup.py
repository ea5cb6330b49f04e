"""Sweep what instbench left behind: instances, spot requests, security groups and
placement groups.

Everything instbench creates carries `instbench:run-id` and `instbench:expires-at` tags.
A resource is swept when it belongs to the run asked for, or when no run is named and it
is expired (its expires-at has passed) or older than `--older-than`. Nothing untagged is
ever touched. Groups are deleted after the instances are terminated: EC2 refuses to
delete a security group or a placement group that an instance still uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from instbench.aws import network
from instbench.aws.session import AwsSession

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import FilterTypeDef

RUN_TAG = "instbench:run-id"
EXPIRES_TAG = "instbench:expires-at"


@dataclass
class CleanupReport:
    """What was found and what was (or, with dry_run, would be) done."""

    region: str
    instances: list[tuple[str, str, str]] = field(default_factory=list)
    """(instance id, run id, state before)"""
    spot_requests: list[tuple[str, str]] = field(default_factory=list)
    security_groups: list[tuple[str, str]] = field(default_factory=list)
    placement_groups: list[tuple[str, str]] = field(default_factory=list)
    """(placement group name, run id)"""
    errors: list[str] = field(default_factory=list)


def _tags(resource: Any) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def _selected(
    tags: dict[str, str],
    created: datetime | None,
    run_id: str | None,
    older_than: timedelta | None,
    now: datetime,
) -> bool:
    if run_id is not None:
        return tags.get(RUN_TAG) == run_id
    if older_than is not None and created is not None and created <= now - older_than:
        return True
    expires = tags.get(EXPIRES_TAG)
    if expires:
        try:
            return datetime.fromisoformat(expires) <= now
        except ValueError:
            return False
    return False


def sweep(
    session: AwsSession,
    *,
    now: datetime,
    run_id: str | None = None,
    older_than: timedelta | None = None,
    dry_run: bool = False,
    log: Callable[[str], None] = lambda _m: None,
    placement_timeout: float = 600.0,
) -> CleanupReport:
    """Terminate, cancel and delete what matches; report everything.

    `placement_timeout`: how long a placement group's delete waits for its instances to be
    released (EC2 answers InvalidPlacementGroup.InUse until they are terminated)."""
    ec2 = session.ec2()
    report = CleanupReport(region=session.region)
    tag_filter: list[FilterTypeDef] = [{"Name": "tag-key", "Values": [RUN_TAG]}]

    instance_ids: list[str] = []
    for page in ec2.get_paginator("describe_instances").paginate(Filters=tag_filter):
        for reservation in page["Reservations"]:
            for inst in reservation["Instances"]:
                state = inst["State"]["Name"]
                if state in {"terminated", "shutting-down"}:
                    continue
                tags = _tags(inst)
                if _selected(tags, inst.get("LaunchTime"), run_id, older_than, now):
                    instance_ids.append(inst["InstanceId"])
                    report.instances.append((inst["InstanceId"], tags.get(RUN_TAG, ""), state))

    spot_ids: list[str] = []
    resp = ec2.describe_spot_instance_requests(Filters=tag_filter)
    for req in resp.get("SpotInstanceRequests", []):
        if req.get("State") in {"cancelled", "closed"}:
            continue
        tags = _tags(req)
        if _selected(tags, req.get("CreateTime"), run_id, older_than, now):
            spot_ids.append(req["SpotInstanceRequestId"])
            report.spot_requests.append((req["SpotInstanceRequestId"], tags.get(RUN_TAG, "")))

    groups: list[str] = []
    sg_pages = ec2.get_paginator("describe_security_groups").paginate(Filters=tag_filter)
    for sg_page in sg_pages:
        for group in sg_page["SecurityGroups"]:
            tags = _tags(group)
            if _selected(tags, None, run_id, older_than, now):
                groups.append(group["GroupId"])
                report.security_groups.append((group["GroupId"], tags.get(RUN_TAG, "")))

    placement: list[str] = []
    try:
        found = network.find_run_placement_groups(session)
    except ClientError as exc:
        # A role made before placement groups (no DescribePlacementGroups) must still end
        # the instances: say what could not be looked at, and go on.
        found = []
        report.errors.append(f"placement groups: {exc.response['Error']['Code']}")
    for pg in found:
        if _selected(dict(pg.tags), None, run_id, older_than, now):
            placement.append(pg.name)
            report.placement_groups.append((pg.name, pg.run_id))

    if dry_run:
        return report
    if spot_ids:
        ec2.cancel_spot_instance_requests(SpotInstanceRequestIds=spot_ids)
        log(f"cancelled spot requests: {', '.join(spot_ids)}")
    if instance_ids:
        ec2.terminate_instances(InstanceIds=instance_ids)
        log(f"terminating: {', '.join(instance_ids)}")
        ec2.get_waiter("instance_terminated").wait(
            InstanceIds=instance_ids, WaiterConfig={"Delay": 5, "MaxAttempts": 120}
        )
    for group_id in groups:
        try:
            ec2.delete_security_group(GroupId=group_id)
            log(f"deleted security group {group_id}")
        except ClientError as exc:
            report.errors.append(f"{group_id}: {exc.response['Error']['Code']}")
    for name in placement:
        # The instances were terminated above; the delete waits for EC2 to release the
        # group, and gives up at once while an instance of it still runs.
        try:
            deleted = network.delete_placement_group(session, name, timeout=placement_timeout)
        except ClientError as exc:
            report.errors.append(f"{name}: {exc.response['Error']['Code']}")
            continue
        if deleted:
            log(f"deleted placement group {name}")
        else:
            report.errors.append(f"{name}: InvalidPlacementGroup.InUse")
    return report
