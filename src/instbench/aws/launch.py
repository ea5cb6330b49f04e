"""Launch one benchmark instance safely, and watch, read and end it.

Every instance is launched so that it cannot be forgotten or abused:

- one per call (MinCount = MaxCount = 1) with a deterministic ClientToken, so a retried
  request (botocore retry, resumed controller) does not start a second instance;
- tagged (instance, volume, spot request) with the run, the task and an expiry, so
  `instbench cleanup` finds it whatever happened to the controller;
- `InstanceInitiatedShutdownBehavior=terminate`, so the on-instance `shutdown` (the
  watchdog or the end of the script) ends the bill;
- IMDSv2 only, hop limit 1, no instance profile, an encrypted gp3 root volume deleted with
  the instance.

EC2's refusals become typed errors: capacity problems (`CapacityError`, worth retrying in
another zone) apart from requests that will never work (`LaunchRejected`).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError, WaiterError

from instbench.aws import ami
from instbench.aws.session import AwsSession
from instbench.errors import CapacityError, LaunchRejected, UserDataTooLarge, UserError

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import (
        FilterTypeDef,
        RunInstancesRequestTypeDef,
        TagSpecificationTypeDef,
        TagTypeDef,
    )

RUN_TAG = "instbench:run-id"
TASK_TAG = "instbench:task"
EXPIRES_TAG = "instbench:expires-at"

# EC2's limit on raw user data (before base64). moto accepts more; we must not.
USER_DATA_LIMIT = 16 * 1024

ROOT_VOLUME_GIB = (8, 16)
"""Root volume size bounds: room for the OS, a compiler and the agent, no more."""

CAPACITY_CODES = frozenset(
    {
        "InsufficientInstanceCapacity",
        "Unsupported",
        "InstanceLimitExceeded",
        "VcpuLimitExceeded",
        "InsufficientFreeAddressesInSubnet",
        "SpotMaxPriceTooLow",
        "MaxSpotInstanceCountExceeded",
    }
)
"""Errors that depend on where and when: another zone or a later attempt may succeed."""

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_INSTANCE_TYPE = re.compile(r"^[a-z0-9][a-z0-9-]*\.[a-z0-9-]+$")
_SUBNET = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_GROUP = re.compile(r"^sg-[0-9a-f]{8,17}$")
_KEY_NAME = re.compile(r"^[A-Za-z0-9 ._:/()#,@\[\]+=&;{}!$*-]{1,255}$")
_PLACEMENT_GROUP = re.compile(r"^[A-Za-z0-9._-]{1,255}$")
"""Names instbench gives its placement groups (EC2 allows any 255 ASCII characters)."""
_PRICE = re.compile(r"^\d{1,6}(\.\d{1,6})?$")

DATA_VOLUME_DEVICE = "/dev/sdf"
"""Where the storage benchmark's data volume is attached (on Nitro it appears as NVMe)."""


@dataclass(frozen=True)
class DataVolume:
    """An empty gp3 volume attached at launch for the storage benchmark.

    Never from a snapshot (a restored volume is slow on first touch), encrypted, deleted
    with the instance, tagged like the instance. The defaults are gp3's maxima (16,000
    IOPS, 1,000 MiB/s), above most types' EBS-optimized limits, so the type is the
    ceiling where that is cheap: the IOPS and throughput above gp3's free 3,000 / 125
    cost about 0.14 USD per hour together (fleet.cost).
    """

    size_gib: int = 100
    iops: int = 16000
    throughput_mibps: int = 1000

    def check(self) -> None:
        """UserError (one line) for a combination gp3 does not accept."""
        if not 1 <= self.size_gib <= 16384:
            raise UserError(f"data volume size {self.size_gib} GiB: gp3 takes 1-16384 GiB")
        if not 3000 <= self.iops <= 16000:
            raise UserError(f"data volume IOPS {self.iops}: gp3 takes 3000-16000")
        if not 125 <= self.throughput_mibps <= 1000:
            raise UserError(
                f"data volume throughput {self.throughput_mibps} MiB/s: gp3 takes 125-1000"
            )
        if self.iops > 500 * self.size_gib:
            raise UserError(
                f"data volume: {self.iops} IOPS needs at least {math.ceil(self.iops / 500)} GiB "
                "(gp3 allows 500 IOPS per GiB)"
            )
        if self.throughput_mibps * 4 > self.iops:
            raise UserError(
                f"data volume: {self.throughput_mibps} MiB/s needs at least "
                f"{self.throughput_mibps * 4} IOPS (gp3 allows 0.25 MiB/s per IOPS)"
            )

    def advertised(self) -> dict[str, float]:
        """The volume's provisioned figures, in the agent's `advertised` keys."""
        return {
            "volume_size_gib": float(self.size_gib),
            "volume_iops": float(self.iops),
            "volume_throughput_mibps": float(self.throughput_mibps),
        }


def expires_text(when: datetime) -> str:
    """ISO 8601 UTC with a Z, e.g. 2026-05-01T12:30:00Z (what cleanup parses)."""
    if when.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_tags(
    run_id: str,
    expires_at: datetime,
    name: str,
    task_id: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> list[TagTypeDef]:
    """The tags every resource of a run carries (validated; extras cannot override them)."""
    tags: dict[str, str] = {}
    for key, value in (extra or {}).items():
        if key.startswith(("aws:", "instbench:")) or key == "Name":
            raise UserError(f"tag {key!r} is reserved")
        if not 1 <= len(key) <= 128 or len(value) > 256:
            raise UserError(f"tag {key!r}: keys are 1-128 characters, values at most 256")
        tags[key] = value
    tags[RUN_TAG] = _checked_id(run_id, "run id")
    tags[EXPIRES_TAG] = expires_text(expires_at)
    tags["Name"] = name
    if task_id is not None:
        tags[TASK_TAG] = _checked_id(task_id, "task id")
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _checked_id(value: str, what: str) -> str:
    if not _ID.fullmatch(value):
        raise UserError(f"{what} {value!r} must be letters, digits, '.', '_' or '-'")
    return value


def client_token(run_id: str, task_id: str, attempt: int) -> str:
    """Same task and attempt -> same token (EC2 idempotency); at most 64 characters."""
    readable = f"{run_id}-{task_id}-{attempt}"
    if len(readable) <= 64:
        return readable
    digest = hashlib.sha256(f"{run_id}\0{task_id}".encode()).hexdigest()[:48]
    return f"ib-{digest}-{attempt}"


@dataclass(frozen=True)
class LaunchSpec:
    """Everything one launch needs; validated by `launch_instance` before the call."""

    run_id: str
    task_id: str
    instance_type: str
    image_id: str
    expires_at: datetime
    user_data: str
    security_group_ids: list[str]
    subnet_id: str | None = None
    availability_zone: str | None = None
    key_name: str | None = None
    market: str = "on-demand"
    """on-demand or spot."""
    spot_max_price: str | None = None
    attempt: int = 0
    extra_tags: Mapping[str, str] = field(default_factory=dict)
    root_device_name: str | None = None
    """The AMI's root device; looked up with DescribeImages when None."""
    root_volume_gib: int | None = None
    """Root size; default: the AMI's snapshot size, at least 8 GiB."""
    data_volume: DataVolume | None = None
    """An empty gp3 volume for the storage benchmark (None: none)."""
    placement_group: str | None = None
    """The placement group to launch into, by name (a pair task's cluster group, see
    `network.create_run_placement_group`); None: none."""

    @property
    def name(self) -> str:
        return f"instbench-{self.run_id}-{self.task_id}"


def _root_volume(session: AwsSession, spec: LaunchSpec) -> tuple[str, int]:
    lo, hi = ROOT_VOLUME_GIB
    device, size = spec.root_device_name, spec.root_volume_gib
    if device is None or size is None:
        image = ami.describe_image(session, spec.image_id, source="launch")
        device = device or image.root_device_name
        if size is None:
            size = max(lo, image.root_snapshot_gib or lo)
    if not lo <= size <= hi:
        raise UserError(
            f"root volume of {size} GiB for image {spec.image_id}: instbench uses {lo}-{hi} GiB"
        )
    return device, size


def build_request(spec: LaunchSpec, root_device: str, root_gib: int) -> RunInstancesRequestTypeDef:
    """The RunInstances parameters of `spec` (pure: tested without calling AWS)."""
    if not _INSTANCE_TYPE.fullmatch(spec.instance_type):
        raise UserError(f"malformed instance type {spec.instance_type!r}")
    size = len(spec.user_data.encode())
    if size > USER_DATA_LIMIT:
        raise UserDataTooLarge(f"user data is {size} bytes; EC2 accepts at most {USER_DATA_LIMIT}")
    if spec.subnet_id is not None and not _SUBNET.fullmatch(spec.subnet_id):
        raise UserError(f"malformed subnet id {spec.subnet_id!r}")
    for group in spec.security_group_ids:
        if not _GROUP.fullmatch(group):
            raise UserError(f"malformed security group id {group!r}")
    if spec.key_name is not None and not _KEY_NAME.fullmatch(spec.key_name):
        raise UserError(f"bad key pair name {spec.key_name!r}")
    if spec.attempt < 0:
        raise ValueError("attempt must be >= 0")
    tags = run_tags(spec.run_id, spec.expires_at, spec.name, spec.task_id, spec.extra_tags)
    resources: list[Any] = ["instance", "volume"]
    if spec.market == "spot":
        resources.append("spot-instances-request")
    tag_specs: list[TagSpecificationTypeDef] = [
        {"ResourceType": resource, "Tags": tags} for resource in resources
    ]
    request: RunInstancesRequestTypeDef = {
        "ImageId": spec.image_id,
        "InstanceType": spec.instance_type,  # type: ignore[typeddict-item]
        "MinCount": 1,
        "MaxCount": 1,
        "ClientToken": client_token(spec.run_id, spec.task_id, spec.attempt),
        "UserData": spec.user_data,
        "InstanceInitiatedShutdownBehavior": "terminate",
        "MetadataOptions": {
            "HttpTokens": "required",
            "HttpEndpoint": "enabled",
            "HttpPutResponseHopLimit": 1,
        },
        "BlockDeviceMappings": [
            {
                "DeviceName": root_device,
                "Ebs": {
                    "VolumeType": "gp3",
                    "VolumeSize": root_gib,
                    "Encrypted": True,
                    "DeleteOnTermination": True,
                },
            }
        ],
        "TagSpecifications": tag_specs,
    }
    if spec.data_volume is not None:
        spec.data_volume.check()
        request["BlockDeviceMappings"] = [
            *request["BlockDeviceMappings"],
            {
                "DeviceName": DATA_VOLUME_DEVICE,
                "Ebs": {
                    "VolumeType": "gp3",
                    "VolumeSize": spec.data_volume.size_gib,
                    "Iops": spec.data_volume.iops,
                    "Throughput": spec.data_volume.throughput_mibps,
                    "Encrypted": True,
                    "DeleteOnTermination": True,
                },
            },
        ]
    if spec.security_group_ids:
        request["SecurityGroupIds"] = list(spec.security_group_ids)
    if spec.subnet_id:
        request["SubnetId"] = spec.subnet_id
    if spec.availability_zone:
        request["Placement"] = {"AvailabilityZone": spec.availability_zone}
    if spec.placement_group is not None:
        if not _PLACEMENT_GROUP.fullmatch(spec.placement_group):
            raise UserError(f"bad placement group name {spec.placement_group!r}")
        request["Placement"] = {**request.get("Placement", {}), "GroupName": spec.placement_group}
    if spec.key_name:
        request["KeyName"] = spec.key_name
    if spec.market == "spot":
        options: dict[str, Any] = {
            "SpotInstanceType": "one-time",
            "InstanceInterruptionBehavior": "terminate",
        }
        if spec.spot_max_price is not None:
            if not _PRICE.fullmatch(spec.spot_max_price):
                raise UserError(f"bad spot max price {spec.spot_max_price!r}: use e.g. 0.25")
            options["MaxPrice"] = spec.spot_max_price
        request["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": options}  # type: ignore[typeddict-item]
    elif spec.market != "on-demand":
        raise UserError(f"unknown market {spec.market!r}: use on-demand or spot")
    return request


def check_market(market: str, spot_max_price: str | None, spot_fallback: str | None) -> None:
    """The purchase options of a run, checked before anything is planned or created."""
    if market not in {"on-demand", "spot"}:
        raise UserError(f"unknown market {market!r}: use on-demand or spot")
    if market != "spot" and (spot_max_price is not None or spot_fallback is not None):
        raise UserError("--spot-max-price and --spot-fallback need --spot")
    if spot_max_price is not None and (
        not _PRICE.fullmatch(spot_max_price) or float(spot_max_price) <= 0
    ):
        raise UserError(f"bad --spot-max-price {spot_max_price!r}: USD per hour, e.g. 0.25")
    if spot_fallback not in {None, "on-demand"}:
        raise UserError(f"unknown --spot-fallback {spot_fallback!r}: use on-demand")


def launch_instance(session: AwsSession, spec: LaunchSpec) -> str:
    """Start the instance of `spec`; its id. CapacityError / LaunchRejected on refusal."""
    return launch_instance_addressed(session, spec)[0]


def launch_instance_addressed(session: AwsSession, spec: LaunchSpec) -> tuple[str, str | None]:
    """Like `launch_instance`, and the instance's private IPv4 address from the
    RunInstances answer (None when it gave none): what a pair's client is told to reach."""
    device, size = _root_volume(session, spec)
    request = build_request(spec, device, size)
    try:
        response = session.ec2().run_instances(**request)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", ""))
        if code in CAPACITY_CODES:
            raise CapacityError(code, message) from exc
        if code.startswith(("Invalid", "Unauthorized", "OptInRequired", "MissingParameter")):
            raise LaunchRejected(code, message) from exc
        raise
    instance = response["Instances"][0]
    return instance["InstanceId"], instance.get("PrivateIpAddress")


def _ids_filter(ids: list[str]) -> list[FilterTypeDef]:
    # A filter, not InstanceIds: an unknown id (just launched, or long gone) is then
    # skipped instead of failing the whole call.
    return [{"Name": "instance-id", "Values": ids}]


def describe_matching(session: AwsSession, filters: list[FilterTypeDef]) -> Iterable[Any]:
    """Every instance matching `filters`, all pages (the instances as EC2 describes them)."""
    paginator = session.ec2().get_paginator("describe_instances")
    for page in paginator.paginate(Filters=filters):
        for reservation in page["Reservations"]:
            yield from reservation["Instances"]


def _state_reason(inst: Any) -> str:
    """'Code: message' of the instance's state reason (the code names spot interruptions)."""
    state_reason = inst.get("StateReason") or {}
    code, message = state_reason.get("Code", ""), state_reason.get("Message", "")
    reason = message or inst.get("StateTransitionReason", "") or ""
    if code and code not in reason:
        reason = f"{code}: {reason}" if reason else code
    return str(reason)


SPOT_INTERRUPTION_CODES = ("Server.SpotInstanceTermination", "Server.SpotInstanceShutdown")
"""State reason codes EC2 gives an instance it reclaimed from the spot market."""


def is_spot_interruption(reason: str) -> bool:
    """True when a state reason (from `instance_states`) says spot reclaimed the instance."""
    return any(code in reason for code in SPOT_INTERRUPTION_CODES)


def spot_price_now(session: AwsSession, instance_type: str, zone: str) -> float | None:
    """The latest Linux spot price of `instance_type` in `zone`, USD/h (None: unknown).

    Recorded in the result's metadata as the price the task ran at; a failure to read it
    never stops a launch.
    """
    try:
        response = session.ec2().describe_spot_price_history(
            InstanceTypes=[instance_type],  # type: ignore[list-item]
            AvailabilityZone=zone,
            ProductDescriptions=["Linux/UNIX"],
            MaxResults=10,
        )
    except (ClientError, BotoCoreError):
        return None
    points = sorted(
        response.get("SpotPriceHistory", []), key=lambda p: p.get("Timestamp") or 0, reverse=True
    )
    for point in points:
        try:
            value = float(point.get("SpotPrice", ""))
        except ValueError:
            continue
        if math.isfinite(value) and value > 0:
            return value
    return None


def instance_states(
    session: AwsSession, ids: Iterable[str], states: Iterable[str] | None = None
) -> dict[str, tuple[str, str]]:
    """id -> (state, reason); ids EC2 does not (or no longer) know are left out, and with
    `states`, so are instances in any other state (filtered by EC2)."""
    wanted = list(dict.fromkeys(ids))
    found: dict[str, tuple[str, str]] = {}
    for start in range(0, len(wanted), 200):
        filters = _ids_filter(wanted[start : start + 200])
        if states is not None:
            filters.append({"Name": "instance-state-name", "Values": list(states)})
        for inst in describe_matching(session, filters):
            found[inst["InstanceId"]] = (inst["State"]["Name"], _state_reason(inst))
    return found


ENDED_STATES = ("shutting-down", "terminated", "stopping", "stopped")
"""States from which an instance will not run its user data to the end."""


def ended_instances(session: AwsSession, ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """id -> (state, reason) of those of `ids` that are ending or ended; live ones are left out.

    Why not `instance_states`: a watcher asks this every few seconds about every instance
    it waits on, and almost all of them are still running. Filtering on the state in EC2
    makes the usual answer empty, so its size (and the parsing on both sides: ~75 ms per
    20 running instances against the sandbox's moto, ~9 ms for an empty answer) does not
    grow with the number of instances in flight.
    """
    return instance_states(session, ids, ENDED_STATES)


RUNNING_STATES = ("pending", "running")
"""States of an instance that is up: these count against the account's running-instance
vCPU quotas, and are the instances whose user data the sandbox's cloud-init runs."""


def running_instances(session: AwsSession) -> list[tuple[str, str, str]]:
    """(instance type, market, run id tag or "") of every pending or running instance in
    the region, whoever launched it (the vCPU quotas are the account's, not a run's)."""
    out: list[tuple[str, str, str]] = []
    filters: list[FilterTypeDef] = [{"Name": "instance-state-name", "Values": list(RUNNING_STATES)}]
    for inst in describe_matching(session, filters):
        tags = {t.get("Key", ""): t.get("Value", "") for t in inst.get("Tags", [])}
        market = "spot" if inst.get("InstanceLifecycle") == "spot" else "on-demand"
        out.append((str(inst["InstanceType"]), market, tags.get(RUN_TAG, "")))
    return out


LIVE_STATES = ("pending", "running", "stopping", "stopped")
"""States of an instance that still needs terminating (a stopped one still bills storage)."""


def describe_instances_by_run(
    session: AwsSession, run_id: str, states: Iterable[str] | None = None
) -> dict[str, str]:
    """id -> state of every instance tagged with `run_id` (terminated ones included), or
    only of those in `states` (filtered by EC2: the answer stays small at the end of a run
    that launched hundreds)."""
    filters: list[FilterTypeDef] = [{"Name": f"tag:{RUN_TAG}", "Values": [run_id]}]
    if states is not None:
        filters.append({"Name": "instance-state-name", "Values": list(states)})
    return {
        inst["InstanceId"]: inst["State"]["Name"] for inst in describe_matching(session, filters)
    }


def terminate_instances(session: AwsSession, ids: Iterable[str]) -> list[str]:
    """Ask EC2 to terminate `ids` that still exist; the ids asked for."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    known = instance_states(session, wanted)
    live = [i for i in wanted if i in known and known[i][0] != "terminated"]
    ec2 = session.ec2()
    for start in range(0, len(live), 1000):
        ec2.terminate_instances(InstanceIds=live[start : start + 1000])
    return live


def terminate_instance(session: AwsSession, instance_id: str) -> None:
    """Terminate one instance the caller launched; one call, no look first.

    A task ends its own instance right after collecting its result, so the id exists, and
    terminating an instance that is already shutting down or terminated is a no-op in EC2.
    Only an id EC2 has forgotten is an error, and it means the same thing: gone.
    """
    try:
        session.ec2().terminate_instances(InstanceIds=[instance_id])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "InvalidInstanceID.NotFound":
            raise


def console_output(session: AwsSession, instance_id: str) -> str:
    """The instance's console output, decoded ('' when there is none or it is gone)."""
    try:
        response = session.ec2().get_console_output(InstanceId=instance_id)
    except ClientError:
        return ""
    return str(response.get("Output") or "")


def wait_terminated(
    session: AwsSession, ids: Iterable[str], timeout: float, delay: float = 5.0
) -> bool:
    """Block until every instance is terminated (boto3 waiter); False on timeout.

    Ids EC2 no longer knows count as terminated. The waiter fails fast on an instance
    that is still pending or stopping, which means nobody asked it to terminate.
    """
    known = instance_states(session, ids)
    pending = [i for i, (state, _) in known.items() if state != "terminated"]
    if not pending:
        return True
    attempts = max(1, math.ceil(timeout / delay))
    waiter = session.ec2().get_waiter("instance_terminated")
    try:
        waiter.wait(
            InstanceIds=pending, WaiterConfig={"Delay": int(max(1, delay)), "MaxAttempts": attempts}
        )
    except WaiterError:
        return False
    return True


def check_key_pair(session: AwsSession, name: str) -> None:
    """A --key-pair must exist in the region (EC2 would only refuse it at launch)."""
    try:
        session.ec2().describe_key_pairs(KeyNames=[name])
    except ClientError as exc:
        if exc.response["Error"]["Code"] in {"InvalidKeyPair.NotFound", "InvalidKeyPair.Malformed"}:
            raise UserError(
                f"key pair {name!r} not found in {session.region}: create it or drop --key-pair"
            ) from exc
        raise
