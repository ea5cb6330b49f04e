"""Where instances go: subnets, the VPC, and a security group with no way in.

Instances need outbound HTTPS only (presigned S3 URLs, the package mirror); nothing needs
to reach them. A run without `--security-group` gets its own group with no inbound rule,
tagged like every instbench resource and deleted when the run ends. Deleting it races the
instances' shutdown (EC2 refuses while a network interface still uses the group), so the
delete waits on EC2's own state with boto waiters instead of sleeping and guessing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

from botocore.exceptions import ClientError, WaiterError
from botocore.waiter import Waiter, WaiterModel, create_waiter_with_client

from instbench.aws import launch
from instbench.aws.regions import aws_config_errors
from instbench.aws.session import AwsSession
from instbench.errors import AwsConfigError, QuotaExceeded, UserError

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import FilterTypeDef, SecurityGroupTypeDef

_SUBNET = re.compile(r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$")
_GROUP = re.compile(r"^sg-([0-9a-f]{8}|[0-9a-f]{17})$")

# After an instance is terminated its network interface lingers for a few seconds, and
# so does DependencyViolation. This waiter repeats the (idempotent) delete until EC2
# accepts it, so the wait is EC2's answer, not a guessed sleep.
_DELETE_WAITER = WaiterModel(
    {
        "version": 2,
        "waiters": {
            "SecurityGroupDeleted": {
                "operation": "DeleteSecurityGroup",
                "delay": 5,
                "maxAttempts": 60,
                "acceptors": [
                    {"matcher": "status", "expected": 200, "state": "success"},
                    {"matcher": "error", "expected": "InvalidGroup.NotFound", "state": "success"},
                    {"matcher": "error", "expected": "DependencyViolation", "state": "retry"},
                ],
            }
        },
    }
)


@dataclass(frozen=True)
class SubnetInfo:
    """A subnet to launch into."""

    id: str
    vpc_id: str
    availability_zone: str


@dataclass(frozen=True)
class SecurityGroupInfo:
    """A user-given security group, as checked."""

    id: str
    vpc_id: str
    inbound_rules: int
    """Rules letting traffic in; instbench needs none (callers may warn)."""


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def resolve_subnets(session: AwsSession, subnet_ids: Iterable[str]) -> list[SubnetInfo]:
    """The subnets of `--subnet`, in the order given; they must exist here and share a VPC."""
    wanted = list(dict.fromkeys(subnet_ids))
    for subnet_id in wanted:
        if not _SUBNET.match(subnet_id):
            raise UserError(f"malformed subnet id {subnet_id!r}: expected subnet-<hex>")
    if not wanted:
        return []
    ec2 = session.ec2()
    with aws_config_errors("AWS EC2"):
        try:
            found = ec2.describe_subnets(SubnetIds=wanted)["Subnets"]
        except ClientError as exc:
            if not _code(exc).startswith("InvalidSubnetID"):
                raise
            found = []
            for subnet_id in wanted:  # error path: name the one that is missing
                try:
                    found += ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
                except ClientError as inner:
                    if _code(inner).startswith("InvalidSubnetID"):
                        raise AwsConfigError(
                            f"subnet {subnet_id} not found in {session.region} "
                            "(is it in another region or account?)"
                        ) from inner
                    raise
    by_id = {
        s["SubnetId"]: SubnetInfo(s["SubnetId"], s["VpcId"], s["AvailabilityZone"]) for s in found
    }
    missing = [s for s in wanted if s not in by_id]
    if missing:
        raise AwsConfigError(f"subnet {missing[0]} not found in {session.region}")
    subnets = [by_id[s] for s in wanted]
    vpcs = sorted({s.vpc_id for s in subnets})
    if len(vpcs) > 1:
        raise AwsConfigError(
            f"subnets {', '.join(wanted)} are in different VPCs ({', '.join(vpcs)}): "
            "pass subnets of one VPC"
        )
    return subnets


def default_vpc(session: AwsSession) -> str:
    """The region's default VPC; AwsConfigError saying to pass --subnet when there is none."""
    with aws_config_errors("AWS EC2"):
        vpcs = session.ec2().describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])
    if not vpcs["Vpcs"]:
        raise AwsConfigError(f"no default VPC in {session.region}: pass --subnet SUBNET_ID")
    return vpcs["Vpcs"][0]["VpcId"]


def default_subnets(session: AwsSession, vpc_id: str) -> list[SubnetInfo]:
    """One subnet per availability zone of `vpc_id` (the default-for-AZ ones when marked)."""
    filters: list[FilterTypeDef] = [{"Name": "vpc-id", "Values": [vpc_id]}]
    with aws_config_errors("AWS EC2"):
        subnets = session.ec2().describe_subnets(Filters=filters)["Subnets"]
    preferred = [s for s in subnets if s.get("DefaultForAz")] or subnets
    per_zone: dict[str, SubnetInfo] = {}
    for s in sorted(preferred, key=lambda s: (s["AvailabilityZone"], s["SubnetId"])):
        per_zone.setdefault(
            s["AvailabilityZone"], SubnetInfo(s["SubnetId"], s["VpcId"], s["AvailabilityZone"])
        )
    return list(per_zone.values())


def _describe_group(session: AwsSession, group_id: str) -> SecurityGroupTypeDef | None:
    try:
        groups = session.ec2().describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    except ClientError as exc:
        if _code(exc).startswith("InvalidGroup"):
            return None
        raise
    return groups[0] if groups else None


def check_security_group(session: AwsSession, group_id: str, vpc_id: str) -> SecurityGroupInfo:
    """A `--security-group` must exist in this region and in the instances' VPC."""
    if not _GROUP.match(group_id):
        raise UserError(f"malformed security group id {group_id!r}: expected sg-<hex>")
    with aws_config_errors("AWS EC2"):
        group = _describe_group(session, group_id)
    if group is None:
        raise AwsConfigError(f"security group {group_id} not found in {session.region}")
    if group.get("VpcId") != vpc_id:
        raise AwsConfigError(
            f"security group {group_id} is in {group.get('VpcId')}, but the instances "
            f"launch in {vpc_id}: pass a group of that VPC"
        )
    return SecurityGroupInfo(group_id, vpc_id, len(group.get("IpPermissions", [])))


def create_run_security_group(
    session: AwsSession,
    run_id: str,
    vpc_id: str,
    expires_at: datetime,
    extra_tags: Mapping[str, str] | None = None,
) -> str:
    """Create (or, on resume, find) the run's group: no inbound rules, tagged; its id."""
    ec2 = session.ec2()
    name = f"instbench-{run_id}"
    tags = launch.run_tags(run_id, expires_at, name, extra=extra_tags)
    try:
        group_id = ec2.create_security_group(
            GroupName=name,
            Description=f"instbench run {run_id}: no inbound rules; deleted when the run ends",
            VpcId=vpc_id,
            TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}],
        )["GroupId"]
    except ClientError as exc:
        if _code(exc) != "InvalidGroup.Duplicate":
            raise
        group_id = _find_run_group(session, name, run_id, vpc_id)
    group = _describe_group(session, group_id)
    inbound = group.get("IpPermissions", []) if group else []
    if inbound:  # never expected; an open group must not be used, so close it
        ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=inbound)
        group = _describe_group(session, group_id)
        if group and group.get("IpPermissions"):
            raise RuntimeError(f"security group {group_id} still has inbound rules")
    return group_id


def allow_pair_ports(session: AwsSession, group_id: str, from_port: int, to_port: int) -> None:
    """Let the instances of the run's group reach each other on TCP `from_port..to_port`:
    the one inbound rule a run with pair tasks (a server and its client) needs, from the
    group itself only, so nothing outside the run can use it. Idempotent (a resume finds
    the rule in place); afterwards the group is checked to hold no other inbound rule."""
    ec2 = session.ec2()
    rule = {
        "IpProtocol": "tcp",
        "FromPort": from_port,
        "ToPort": to_port,
        "UserIdGroupPairs": [{"GroupId": group_id, "Description": "instbench pair tasks"}],
    }
    try:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[rule])  # type: ignore[list-item]
    except ClientError as exc:
        if _code(exc) != "InvalidPermission.Duplicate":
            raise
    group = _describe_group(session, group_id)
    for perm in group.get("IpPermissions", []) if group else []:
        sources = [pair.get("GroupId") for pair in perm.get("UserIdGroupPairs", [])]
        others = perm.get("IpRanges") or perm.get("Ipv6Ranges") or perm.get("PrefixListIds")
        if others or sources != [group_id]:
            raise RuntimeError(f"security group {group_id} has an inbound rule from elsewhere")


def _find_run_group(session: AwsSession, name: str, run_id: str, vpc_id: str) -> str:
    filters: list[FilterTypeDef] = [
        {"Name": "group-name", "Values": [name]},
        {"Name": "vpc-id", "Values": [vpc_id]},
        {"Name": f"tag:{launch.RUN_TAG}", "Values": [run_id]},
    ]
    groups = session.ec2().describe_security_groups(Filters=filters)["SecurityGroups"]
    if not groups:
        raise AwsConfigError(
            f"a security group named {name} exists in {vpc_id} but is not this run's"
        )
    return groups[0]["GroupId"]


def _users(session: AwsSession, group_id: str) -> list[str]:
    filters: list[FilterTypeDef] = [{"Name": "instance.group-id", "Values": [group_id]}]
    return [inst["InstanceId"] for inst in launch.describe_matching(session, filters)]


def delete_security_group(
    session: AwsSession,
    group_id: str,
    instance_ids: Iterable[str] = (),
    *,
    timeout: float = 600.0,
    delay: float = 5.0,
) -> bool:
    """Delete the run's group; True when it is gone, False when it is still in use.

    DependencyViolation means instances (or their network interfaces) still use it: wait
    until those instances are terminated, then repeat the delete (a waiter) until the
    interfaces are released.
    False leaves the group to `instbench cleanup` (it is tagged and expires); the caller
    should say so rather than fail the run over it.
    """
    ec2 = session.ec2()
    try:
        ec2.delete_security_group(GroupId=group_id)
        return True
    except ClientError as exc:
        if _code(exc).startswith("InvalidGroup.NotFound"):
            return True
        if _code(exc) != "DependencyViolation":
            raise
    users = [*instance_ids, *_users(session, group_id)]
    waiter = create_waiter_with_client("SecurityGroupDeleted", _DELETE_WAITER, ec2)
    return _delete_once_released(session, users, waiter, timeout, delay, GroupId=group_id)


def _delete_once_released(
    session: AwsSession,
    users: Iterable[str],
    waiter: Waiter,
    timeout: float,
    delay: float,
    **target: str,
) -> bool:
    """After EC2 refused a delete because instances still use the resource: False at
    once when one of them still runs (terminating it is the caller's job); else wait
    until they are terminated, then let `waiter` repeat the delete on `target` until EC2
    accepts it (True) or `timeout` passes (False)."""
    ids = list(dict.fromkeys(users))
    states = launch.instance_states(session, ids)
    if any(state not in {"shutting-down", "terminated"} for state, _ in states.values()):
        return False
    if not launch.wait_terminated(session, ids, timeout, delay):
        return False
    try:
        waiter.wait(
            **target,
            WaiterConfig={
                "Delay": max(1, int(delay)),
                "MaxAttempts": max(1, int(timeout // delay)),
            },
        )
    except WaiterError:
        return False
    return True


# ------------------------------------------------------------------ placement groups
#
# A pair task (server and client of a network benchmark) runs both instances in one
# cluster placement group, so what it measures is the network between neighbours, not
# whatever the zone happened to place in between. A cluster group lives in one zone (EC2
# answers InvalidPlacementGroup.InUse to a launch into another zone while the group has
# instances), and the pairs of a run may run in different zones at once (each type where
# it is offered, a failover moving a pair), so a run has one group per zone it launches
# pairs in, all named from the run id and tagged like its security group: cleanup finds
# them by the run tag. EC2 refuses to delete a group that still has instances
# (InvalidPlacementGroup.InUse), so the delete waits on EC2's own answer, as for the
# security group.

PLACEMENT_STRATEGY: Final = "cluster"

_PLACEMENT_DELETE_WAITER = WaiterModel(
    {
        "version": 2,
        "waiters": {
            "PlacementGroupDeleted": {
                "operation": "DeletePlacementGroup",
                "delay": 5,
                "maxAttempts": 60,
                "acceptors": [
                    {"matcher": "status", "expected": 200, "state": "success"},
                    {
                        "matcher": "error",
                        "expected": "InvalidPlacementGroup.Unknown",
                        "state": "success",
                    },
                    {
                        "matcher": "error",
                        "expected": "InvalidPlacementGroup.InUse",
                        "state": "retry",
                    },
                ],
            }
        },
    }
)


@dataclass(frozen=True)
class PlacementGroupInfo:
    """A placement group of a run, as EC2 describes it."""

    name: str
    group_id: str
    run_id: str
    state: str
    strategy: str
    tags: Mapping[str, str]


def placement_group_name(run_id: str, zone: str) -> str:
    """The name of the run's cluster placement group in `zone` (unique per account and
    region, as EC2 requires; the run id is validated by `launch.run_tags`)."""
    if not re.fullmatch(r"[a-z]{2}-[a-z0-9-]{1,40}", zone):
        raise ValueError(f"not an availability zone name: {zone!r}")
    return f"instbench-{run_id}-{zone}"


def _placement_error(exc: ClientError, name: str, region: str) -> Exception:
    """EC2's refusals of CreatePlacementGroup a user can act on, as one-line errors."""
    code = _code(exc)
    if code == "PlacementGroupLimitExceeded":
        return QuotaExceeded(
            f"cannot create placement group {name}: the account's placement-group quota in "
            f"{region} is used up; delete unused groups (instbench cleanup sweeps instbench's) "
            "or ask AWS for a higher quota"
        )
    if code in {"UnauthorizedOperation", "AccessDenied", "AccessDeniedException"}:
        return AwsConfigError(
            f"not allowed to create placement group {name} ({code}): the role needs "
            "ec2:CreatePlacementGroup with the run tag (see instbench infra policy)"
        )
    return exc


def create_run_placement_group(
    session: AwsSession,
    run_id: str,
    zone: str,
    expires_at: datetime,
    extra_tags: Mapping[str, str] | None = None,
) -> str:
    """Create (or, on resume, find) the run's cluster placement group for `zone`; its name.

    Tagged like the run's security group (run id, expiry, Name) from its first moment, so
    `instbench cleanup` finds it whatever happens to the controller. A group of that name
    that is not this run's is an AwsConfigError (never used, never deleted); a used-up
    quota is a one-line QuotaExceeded.
    """
    name = placement_group_name(run_id, zone)
    tags = launch.run_tags(run_id, expires_at, name, extra=extra_tags)
    try:
        session.ec2().create_placement_group(
            GroupName=name,
            Strategy=PLACEMENT_STRATEGY,
            TagSpecifications=[{"ResourceType": "placement-group", "Tags": tags}],
        )
    except ClientError as exc:
        if _code(exc) != "InvalidPlacementGroup.Duplicate":
            raise _placement_error(exc, name, session.region) from exc
        found = {g.name: g for g in find_run_placement_groups(session, run_id)}
        mine = found.get(name)
        if mine is None or mine.strategy != PLACEMENT_STRATEGY:
            raise AwsConfigError(
                f"a placement group named {name} exists in {session.region} but is not this "
                "run's: delete it or use another run id"
            ) from exc
    return name


def find_run_placement_groups(
    session: AwsSession, run_id: str | None = None
) -> list[PlacementGroupInfo]:
    """Placement groups tagged as instbench's: those of `run_id`, or all (run_id None)."""
    tag_filter: FilterTypeDef = (
        {"Name": f"tag:{launch.RUN_TAG}", "Values": [run_id]}
        if run_id is not None
        else {"Name": "tag-key", "Values": [launch.RUN_TAG]}
    )
    groups = session.ec2().describe_placement_groups(Filters=[tag_filter])["PlacementGroups"]
    found: list[PlacementGroupInfo] = []
    for group in groups:
        if group.get("State") in {"deleting", "deleted"}:
            continue
        tags = {t["Key"]: t["Value"] for t in group.get("Tags", [])}
        found.append(
            PlacementGroupInfo(
                name=group["GroupName"],
                group_id=group.get("GroupId", ""),
                run_id=tags.get(launch.RUN_TAG, ""),
                state=group.get("State", ""),
                strategy=group.get("Strategy", ""),
                tags=tags,
            )
        )
    return sorted(found, key=lambda g: g.name)


def _placement_members(session: AwsSession, name: str) -> list[str]:
    filters: list[FilterTypeDef] = [{"Name": "placement-group-name", "Values": [name]}]
    return [
        inst["InstanceId"]
        for inst in launch.describe_matching(session, filters)
        if inst["State"]["Name"] != "terminated"
    ]


def delete_placement_group(
    session: AwsSession,
    name: str,
    instance_ids: Iterable[str] = (),
    *,
    timeout: float = 600.0,
    delay: float = 5.0,
) -> bool:
    """Delete a run's placement group; True when it is gone (also when it already was),
    False when instances still use it.

    InvalidPlacementGroup.InUse means instances are still in it: when every one of them is
    already ending, wait until they are terminated and repeat the delete (a waiter) until
    EC2 accepts it; when one still runs, return False at once (terminating it is the
    caller's job). False leaves the group to `instbench cleanup` (it is tagged and
    expires); the caller should say so rather than fail the run over it.
    """
    ec2 = session.ec2()
    try:
        ec2.delete_placement_group(GroupName=name)
        return True
    except ClientError as exc:
        if _code(exc) == "InvalidPlacementGroup.Unknown":
            return True
        if _code(exc) != "InvalidPlacementGroup.InUse":
            raise
    users = [*instance_ids, *_placement_members(session, name)]
    waiter = create_waiter_with_client("PlacementGroupDeleted", _PLACEMENT_DELETE_WAITER, ec2)
    return _delete_once_released(session, users, waiter, timeout, delay, GroupName=name)
