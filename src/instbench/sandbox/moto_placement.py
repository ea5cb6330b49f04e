"""EC2 placement groups for the sandbox's moto server.

moto lacks this API; this adds it to the fake AWS only. moto 5.2.6 answers
CreatePlacementGroup, DescribePlacementGroups and DeletePlacementGroup with "not
implemented" and ignores `Placement.GroupName` in RunInstances, so without this the pair
tasks' cluster placement group could not be created, used, found or cleaned up in the
sandbox or the integration tests. Nothing here is used against real AWS.

What is emulated, with EC2's error codes and messages:

- CreatePlacementGroup (GroupName, Strategy cluster|spread|partition, PartitionCount for
  partition 1-7, SpreadLevel for spread, TagSpecifications of type placement-group):
  `InvalidPlacementGroup.Duplicate` for a name in use, `PlacementGroupLimitExceeded` past
  EC2's default quota of 500 groups per region, `InvalidParameterValue` for a bad value.
- DescribePlacementGroups (GroupNames, GroupIds, Filters group-name, group-arn, state,
  strategy, spread-level, tag:<key>, tag-key): `InvalidPlacementGroup.Unknown` for a name or
  id that does not exist, `InvalidPlacementGroupId.Malformed` for an id not shaped pg-<hex>.
- DeletePlacementGroup: `InvalidPlacementGroup.Unknown`; `InvalidPlacementGroup.InUse` while
  an instance that is not terminated is in the group (EC2 refuses until they are gone).
- RunInstances with `Placement.GroupName` (or `GroupId`): an unknown group fails the launch
  with `InvalidPlacementGroup.Unknown`; a cluster group whose live instances are in another
  zone fails it with `InvalidPlacementGroup.InUse` (a cluster group lives in one zone); the
  instance records the group, so DescribeInstances shows `Placement.GroupName`/`GroupId`
  (and `PartitionNumber` in a partition group) and its `placement-group-name` filter works.
- Tags: group ids (pg-...) are EC2 resources for CreateTags/DescribeTags.

Responses are serialised by moto from botocore's EC2 service model, so their XML has EC2's
shapes (`placementGroup`, `placementGroupSet`, `groupName`, `tagSet`...).

Not emulated: the spread strategy's seven running instances per zone, partition placement
beyond numbering, host-level spread, linked groups. A missing GroupName or Strategy is
refused (MissingParameter) rather than defaulted.

`install()` patches moto's EC2 response class once per process (class attributes, so they
survive `/moto-api/reset`); the groups themselves live on each region's EC2 backend object,
which moto's reset replaces, so a reset forgets them like every other resource.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from typing import Any

_LOCK = threading.RLock()
_INSTALLED = False
_STATE_ATTR = "_instbench_placement_groups"

GROUP_LIMIT = 500
"""EC2's default quota of placement groups per account and region."""
STRATEGIES = ("cluster", "spread", "partition")
PARTITIONS = range(1, 8)
SPREAD_LEVELS = ("host", "rack")
_FILTERS = ("group-name", "group-arn", "state", "strategy", "spread-level")
_GROUP_ID = re.compile(r"^pg-[0-9a-f]{8,17}$")
_ENDED = frozenset({"terminated"})
"""States of an instance that no longer holds its group (EC2 counts shutting-down)."""


def _error(code: str, message: str) -> Exception:
    from moto.ec2.exceptions import EC2ClientError

    return EC2ClientError(code, message)


def _unknown(name: str) -> Exception:
    return _error("InvalidPlacementGroup.Unknown", f"The Placement Group '{name}' is unknown.")


class _Group:
    """One placement group of one account and region."""

    def __init__(
        self,
        backend: Any,
        name: str,
        strategy: str,
        partition_count: int | None,
        spread_level: str | None,
    ) -> None:
        from moto.ec2.utils import random_id

        self.backend = backend
        self.group_id = random_id(prefix="pg")
        self.group_name = name
        self.strategy = strategy
        self.state = "available"
        self.partition_count = partition_count
        self.spread_level = spread_level
        self.group_arn = (
            f"arn:{backend.partition}:ec2:{backend.region_name}:{backend.account_id}"
            f":placement-group/{name}"
        )

    def tags(self) -> dict[str, str]:
        return dict(self.backend.tags.get(self.group_id, {}))

    def shape(self) -> dict[str, Any]:
        """The group as EC2's PlacementGroup shape (moto serialises it to EC2's XML)."""
        out: dict[str, Any] = {
            "GroupName": self.group_name,
            "State": self.state,
            "Strategy": self.strategy,
            "GroupId": self.group_id,
            "GroupArn": self.group_arn,
            "Tags": [{"Key": k, "Value": v} for k, v in self.tags().items()],
        }
        if self.partition_count is not None:
            out["PartitionCount"] = self.partition_count
        if self.spread_level is not None:
            out["SpreadLevel"] = self.spread_level
        return out

    def matches(self, filters: dict[str, list[str]]) -> bool:
        """EC2's filter semantics: every filter matches one of its values (* and ? wildcards)."""
        tags = self.tags()
        for name, values in filters.items():
            if name.startswith("tag:"):
                have: list[str] = [tags[name[4:]]] if name[4:] in tags else []
            elif name == "tag-key":
                have = list(tags)
            else:
                value = getattr(self, name.replace("-", "_"))
                have = [] if value is None else [str(value)]
            if not any(fnmatch.fnmatchcase(h, v) for h in have for v in values):
                return False
        return True


def _groups(backend: Any) -> dict[str, _Group]:
    """The backend's groups by name (created on first use; moto's reset drops them)."""
    with _LOCK:
        groups = backend.__dict__.get(_STATE_ATTR)
        if groups is None:
            groups = {}
            setattr(backend, _STATE_ATTR, groups)
        return groups  # type: ignore[no-any-return]


def _by_id(backend: Any, group_id: str) -> _Group:
    if not _GROUP_ID.match(group_id):
        raise _error(
            "InvalidPlacementGroupId.Malformed", f"Invalid id: '{group_id}' (expecting 'pg-...')"
        )
    for group in _groups(backend).values():
        if group.group_id == group_id:
            return group
    raise _unknown(group_id)


def _members(backend: Any, group: _Group) -> list[Any]:
    """Instances in the group that EC2 still counts (every state but terminated)."""
    return [
        inst
        for inst in backend.all_instances()
        if getattr(inst.placement, "group_name", "") == group.group_name
        and inst.state not in _ENDED
    ]


# ----------------------------------------------------------------- the response methods
# Each is set on moto's EC2Response class: `self` is moto's response object, with its
# parsed request parameters (_get_param) and the region's backend (self.ec2_backend).


def _create_placement_group(self: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import MissingParameterError

    name = self._get_param("GroupName")
    strategy = self._get_param("Strategy")
    partition_count = self._get_int_param("PartitionCount")
    spread_level = self._get_param("SpreadLevel")
    if not name:
        raise MissingParameterError("groupName")
    if not strategy:
        raise MissingParameterError("strategy")
    if len(name) > 255 or not name.isascii():
        raise _error("InvalidParameterValue", "Placement group name must be 1-255 ASCII characters")
    if strategy not in STRATEGIES:
        raise _error(
            "InvalidParameterValue", f"Value ({strategy}) for parameter strategy is invalid."
        )
    if partition_count is not None:
        if strategy != "partition":
            raise _error(
                "InvalidParameterCombination",
                "PartitionCount is only valid for placement groups with the partition strategy",
            )
        if partition_count not in PARTITIONS:
            raise _error(
                "InvalidParameterValue",
                f"Value ({partition_count}) for parameter partitionCount is invalid. "
                f"Valid values are {PARTITIONS.start}-{PARTITIONS.stop - 1}.",
            )
    elif strategy == "partition":
        partition_count = 2  # EC2's default
    if spread_level is not None:
        if strategy != "spread":
            raise _error(
                "InvalidParameterCombination",
                "SpreadLevel is only valid for placement groups with the spread strategy",
            )
        if spread_level not in SPREAD_LEVELS:
            raise _error(
                "InvalidParameterValue",
                f"Value ({spread_level}) for parameter spreadLevel is invalid.",
            )
    elif strategy == "spread":
        spread_level = "rack"
    tags = self._parse_tag_specification("placement-group").get("placement-group", {})
    self.error_on_dryrun()
    backend = self.ec2_backend
    with _LOCK:
        groups = _groups(backend)
        if name in groups:
            raise _error(
                "InvalidPlacementGroup.Duplicate", f"The placement group '{name}' already exists."
            )
        if len(groups) >= GROUP_LIMIT:
            raise _error(
                "PlacementGroupLimitExceeded",
                "You've reached the limit on the number of placement groups that you can have.",
            )
        group = _Group(backend, name, strategy, partition_count, spread_level)
        if tags:
            backend.create_tags([group.group_id], tags)
        groups[name] = group
    return ActionResult({"PlacementGroup": group.shape()})


def _describe_placement_groups(self: Any) -> Any:
    from moto.core.responses import ActionResult

    names: list[str] = self._get_param("GroupNames", []) or []
    ids: list[str] = self._get_param("GroupIds", []) or []
    filters: dict[str, list[str]] = self._filters_from_querystring()
    for key in filters:
        if key not in _FILTERS and not key.startswith("tag:") and key != "tag-key":
            raise _error("InvalidParameterValue", f"The filter '{key}' is invalid")
    self.error_on_dryrun()
    backend = self.ec2_backend
    with _LOCK:
        groups = _groups(backend)
        chosen = list(groups.values())
        if names or ids:
            picked: dict[str, _Group] = {}
            for name in names:
                if name not in groups:
                    raise _unknown(name)
                picked[name] = groups[name]
            for group_id in ids:
                group = _by_id(backend, group_id)
                picked[group.group_name] = group
            chosen = list(picked.values())
        found = [g.shape() for g in chosen if g.matches(filters)]
    return ActionResult({"PlacementGroups": found})


def _delete_placement_group(self: Any) -> Any:
    from moto.core.responses import EmptyResult
    from moto.ec2.exceptions import MissingParameterError

    name = self._get_param("GroupName")
    if not name:
        raise MissingParameterError("groupName")
    self.error_on_dryrun()
    backend = self.ec2_backend
    with _LOCK:
        groups = _groups(backend)
        group = groups.get(name)
        if group is None:
            raise _unknown(name)
        if _members(backend, group):
            raise _error(
                "InvalidPlacementGroup.InUse",
                f"The placement group '{name}' is in use and may not be deleted.",
            )
        del groups[name]
        backend.tags.pop(group.group_id, None)
    return EmptyResult()


def _launch_zone(self: Any) -> str | None:
    """The zone RunInstances will use: Placement.AvailabilityZone, else the subnet's."""
    zone = self._get_param("Placement.AvailabilityZone")
    subnet_id = self._get_param("SubnetId")
    if zone is None and subnet_id:
        try:
            zone = self.ec2_backend.get_subnet(subnet_id).availability_zone
        except Exception:  # an unknown subnet: moto's own RunInstances says so
            zone = None
    return zone  # type: ignore[no-any-return]


def _wrap_run_instances(original: Any) -> Any:
    def run_instances(self: Any) -> Any:
        name = self._get_param("Placement.GroupName")
        group_id = self._get_param("Placement.GroupId")
        if not name and not group_id:
            return original(self)
        backend = self.ec2_backend
        with _LOCK:
            if name:
                group = _groups(backend).get(name)
                if group is None:
                    raise _unknown(name)
            else:
                group = _by_id(backend, group_id)
            zone = _launch_zone(self)
            if group.strategy == "cluster" and zone is not None:
                others = {m.placement.zone for m in _members(backend, group)} - {zone}
                if others:
                    raise _error(
                        "InvalidPlacementGroup.InUse",
                        f"The placement group '{group.group_name}' is in use in another "
                        f"availability zone: {sorted(others)[0]}",
                    )
            result = original(self)
            partition = self._get_int_param("Placement.PartitionNumber")
            for index, instance in enumerate(result.result.instances):
                instance.placement.group_name = group.group_name
                instance.placement.group_id = group.group_id
                if group.partition_count is not None:
                    count = group.partition_count
                    instance.placement.partition_number = partition or (index % count) + 1
        return result

    return run_instances


def install() -> None:
    """Add the placement-group API to moto's EC2 (idempotent; call before serving)."""
    global _INSTALLED
    with _LOCK:
        if _INSTALLED:
            return
        from moto.ec2 import utils as ec2_utils
        from moto.ec2.responses import EC2Response
        from moto.ec2.responses.instances import InstanceResponse

        # pg-... ids are EC2 resources: CreateTags accepts them, DescribeTags names the type.
        ec2_utils.EC2_RESOURCE_TO_PREFIX["placement-group"] = "pg"
        ec2_utils.EC2_PREFIX_TO_RESOURCE["pg"] = "placement-group"
        # DescribeInstances' filter on the group (EC2 has it; moto's filter table lacks it).
        ec2_utils.filter_dict_attribute_mapping["placement-group-name"] = "placement.group_name"
        ec2: Any = EC2Response
        ec2.create_placement_group = _create_placement_group
        ec2.describe_placement_groups = _describe_placement_groups
        ec2.delete_placement_group = _delete_placement_group
        ec2.run_instances = _wrap_run_instances(InstanceResponse.run_instances)
        _INSTALLED = True
