"""What AWS says an instance type is, and where it is offered.

DescribeInstanceTypes is the truth for architecture, vCPUs, memory and CPU manufacturer
(DESIGN.md, principle 4); the offline name parser only fills in the manufacturer when the
API omits it, and the source is recorded so nobody mistakes a guess for a fact.
DescribeInstanceTypeOfferings says whether a type can be launched in the region or in one
availability zone. Both checks run before anything is launched: moto (and a careless
caller) will happily run an instance of a type the zone does not sell, EC2 will not.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from instbench.aws.regions import aws_config_errors
from instbench.aws.session import AwsSession
from instbench.errors import InvalidInstanceType, UserError
from instbench.instance_types import parse_instance_type

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import FilterTypeDef, InstanceTypeInfoTypeDef

LAUNCHABLE_ARCHITECTURES = ("x86_64", "arm64")
"""Architectures instbench has AMIs for; mac types (x86_64_mac, arm64_mac) need hosts."""

_BATCH = 100  # DescribeInstanceTypes accepts at most 100 names per call
_FAMILY_GLOB = re.compile(r"^[a-z0-9.*?-]{1,40}$")

ManufacturerSource = Literal["describe-instance-types", "name-parser"]


@dataclass(frozen=True)
class NetworkCard:
    """One network card of a type as DescribeInstanceTypes advertises it."""

    index: int
    network_performance: str | None
    baseline_gbps: float | None
    peak_gbps: float | None


@dataclass(frozen=True)
class TypeFacts:
    """One instance type as DescribeInstanceTypes reports it (region-independent facts)."""

    instance_type: str
    architectures: tuple[str, ...]
    vcpus: int
    memory_mib: int
    manufacturer: str | None
    manufacturer_source: ManufacturerSource | None
    default_cores: int | None
    default_threads_per_core: int | None
    bare_metal: bool
    current_generation: bool
    clock_ghz: float | None
    hypervisor: str | None
    ebs_baseline_iops: float | None = None
    """EbsInfo.EbsOptimizedInfo (None: not EBS-optimized or not reported): IOPS and
    throughput in MB/s (BaselineThroughputInMBps / MaximumThroughputInMBps)."""
    ebs_maximum_iops: float | None = None
    ebs_baseline_mbps: float | None = None
    ebs_maximum_mbps: float | None = None
    instance_store_disks: int = 0
    """InstanceStorageInfo: disks, size of one in GB, and the total (0 / None: none)."""
    instance_store_disk_gb: int | None = None
    instance_store_total_gb: int | None = None

    def storage_advertised(self) -> dict[str, float]:
        """What AWS advertises for this type's storage, in the agent's `advertised` keys."""
        keys = (
            "ebs_baseline_iops",
            "ebs_maximum_iops",
            "ebs_baseline_mbps",
            "ebs_maximum_mbps",
            "instance_store_disks",
            "instance_store_disk_gb",
            "instance_store_total_gb",
        )
        out = {key: getattr(self, key) for key in keys}
        return {k: float(v) for k, v in out.items() if v is not None and (v or k.startswith("ebs"))}

    network_performance: str | None = None
    """NetworkInfo.NetworkPerformance, e.g. 'Up to 12.5 Gigabit'."""
    network_cards: tuple[NetworkCard, ...] = ()
    """NetworkInfo.NetworkCards: what each card is advertised to move."""
    default_network_card: int = 0
    """NetworkInfo.DefaultNetworkCardIndex: the card of the primary interface."""

    def advertised_network(self) -> dict[str, Any]:
        """The `network` benchmark's advertised_* parameters for this type: the type's
        NetworkPerformance and the default card's baseline and peak Gbps (the card the
        instance's one interface, and so the benchmark's traffic, is on). Keys whose value
        DescribeInstanceTypes does not give are left out."""
        out: dict[str, Any] = {}
        if self.network_performance:
            out["advertised_performance"] = self.network_performance
        for card in self.network_cards:
            if card.index == self.default_network_card:
                if card.baseline_gbps is not None:
                    out["advertised_baseline_gbps"] = card.baseline_gbps
                if card.peak_gbps is not None:
                    out["advertised_peak_gbps"] = card.peak_gbps
        return out

    @property
    def architecture(self) -> str:
        """The one architecture instbench launches with: arm64 or x86_64 when supported.

        Old Xen types list ``i386`` next to ``x86_64``; mac types list only ``*_mac``,
        which is returned as is (and has no AMI, so planning rejects it).
        """
        for arch in LAUNCHABLE_ARCHITECTURES:
            if arch in self.architectures:
                return arch
        return self.architectures[0] if self.architectures else "unknown"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["architectures"] = list(self.architectures)
        data["architecture"] = self.architecture
        data["network_cards"] = [asdict(card) for card in self.network_cards]
        return data


def _facts(item: InstanceTypeInfoTypeDef) -> TypeFacts:
    name = item["InstanceType"]
    processor = item.get("ProcessorInfo", {})
    vcpu = item.get("VCpuInfo", {})
    network = item.get("NetworkInfo", {})
    manufacturer = processor.get("Manufacturer")
    source: ManufacturerSource | None = "describe-instance-types" if manufacturer else None
    if not manufacturer:
        try:
            manufacturer = parse_instance_type(name).vendor
            source = "name-parser"
        except InvalidInstanceType:
            manufacturer, source = None, None
    return TypeFacts(
        instance_type=name,
        architectures=tuple(processor.get("SupportedArchitectures", [])),
        vcpus=int(vcpu.get("DefaultVCpus", 0)),
        memory_mib=int(item.get("MemoryInfo", {}).get("SizeInMiB", 0)),
        manufacturer=manufacturer,
        manufacturer_source=source,
        default_cores=vcpu.get("DefaultCores"),
        default_threads_per_core=vcpu.get("DefaultThreadsPerCore"),
        bare_metal=bool(item.get("BareMetal", False)),
        current_generation=bool(item.get("CurrentGeneration", False)),
        clock_ghz=processor.get("SustainedClockSpeedInGhz"),
        hypervisor=item.get("Hypervisor"),
        network_performance=network.get("NetworkPerformance"),
        network_cards=tuple(
            NetworkCard(
                index=int(card.get("NetworkCardIndex", 0)),
                network_performance=card.get("NetworkPerformance"),
                baseline_gbps=_float_or_none(card.get("BaselineBandwidthInGbps")),
                peak_gbps=_float_or_none(card.get("PeakBandwidthInGbps")),
            )
            for card in network.get("NetworkCards", [])
        ),
        default_network_card=int(network.get("DefaultNetworkCardIndex", 0)),
        **_storage_facts(item),
    )


def _storage_facts(item: InstanceTypeInfoTypeDef) -> dict[str, Any]:
    ebs = item.get("EbsInfo", {}).get("EbsOptimizedInfo", {})
    store = item.get("InstanceStorageInfo", {})
    disks = store.get("Disks", [])
    return {
        "ebs_baseline_iops": ebs.get("BaselineIops"),
        "ebs_maximum_iops": ebs.get("MaximumIops"),
        "ebs_baseline_mbps": ebs.get("BaselineThroughputInMBps"),
        "ebs_maximum_mbps": ebs.get("MaximumThroughputInMBps"),
        "instance_store_disks": sum(int(d.get("Count", 0)) for d in disks),
        "instance_store_disk_gb": int(disks[0]["SizeInGB"]) if disks else None,
        "instance_store_total_gb": store.get("TotalSizeInGB"),
    }


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def region_type_names(session: AwsSession) -> list[str]:
    """Every type offered in the session's region (one cheap paginated call)."""
    ec2 = session.ec2()
    names: set[str] = set()
    with aws_config_errors("AWS EC2"):
        for page in ec2.get_paginator("describe_instance_type_offerings").paginate(
            LocationType="region"
        ):
            names.update(o["InstanceType"] for o in page["InstanceTypeOfferings"])
    return sorted(names)


def _unknown(session: AwsSession, name: str) -> InvalidInstanceType:
    hint = difflib.get_close_matches(name, region_type_names(session), n=1, cutoff=0.75)
    suggestion = f" (did you mean {hint[0]}?)" if hint else ""
    return InvalidInstanceType(
        f"unknown instance type {name} in {session.region}{suggestion}: see instbench types list"
    )


def describe_types(session: AwsSession, names: Iterable[str]) -> dict[str, TypeFacts]:
    """Facts for each name, keyed by name; InvalidInstanceType for a name EC2 does not know."""
    wanted = list(dict.fromkeys(names))
    ec2 = session.ec2()
    found: dict[str, TypeFacts] = {}
    with aws_config_errors("AWS EC2"):
        for batch in _chunks(wanted, _BATCH):
            try:
                response = ec2.describe_instance_types(InstanceTypes=batch)  # type: ignore[arg-type]
            except ClientError as exc:
                if not _error_code(exc).startswith("InvalidInstanceType"):
                    raise
                # Find which name is unknown by asking one at a time (error path only),
                # rather than parsing the error message.
                for name in batch:
                    try:
                        ec2.describe_instance_types(InstanceTypes=[name])  # type: ignore[list-item]
                    except ClientError as inner:
                        if _error_code(inner).startswith("InvalidInstanceType"):
                            raise _unknown(session, name) from inner
                        raise
                raise
            for item in response["InstanceTypes"]:
                facts = _facts(item)
                found[facts.instance_type] = facts
    missing = [n for n in wanted if n not in found]
    if missing:
        raise _unknown(session, missing[0])
    return found


def offered_zones(session: AwsSession, names: Iterable[str]) -> dict[str, set[str]]:
    """Availability zones of the session's region where each type is offered."""
    wanted = list(dict.fromkeys(names))
    zones: dict[str, set[str]] = {name: set() for name in wanted}
    paginator = session.ec2().get_paginator("describe_instance_type_offerings")
    with aws_config_errors("AWS EC2"):
        for batch in _chunks(wanted, _BATCH):
            filters: list[FilterTypeDef] = [{"Name": "instance-type", "Values": batch}]
            for page in paginator.paginate(LocationType="availability-zone", Filters=filters):
                for offer in page["InstanceTypeOfferings"]:
                    if offer["InstanceType"] in zones:
                        zones[offer["InstanceType"]].add(offer["Location"])
    return zones


def check_offered(
    session: AwsSession, names: Iterable[str], availability_zone: str | None = None
) -> None:
    """InvalidInstanceType unless every type is offered in the region (or in the AZ)."""
    wanted = list(dict.fromkeys(names))
    zones = offered_zones(session, wanted)
    for name in wanted:
        if availability_zone is None:
            if not zones[name]:
                raise InvalidInstanceType(
                    f"instance type {name} is not offered in {session.region}"
                )
        elif availability_zone not in zones[name]:
            where = ", ".join(sorted(zones[name])) or "no zone of this region"
            raise InvalidInstanceType(
                f"instance type {name} is not offered in availability zone "
                f"{availability_zone} (offered in {where})"
            )


def _matches_family(name: str, pattern: str) -> bool:
    """'m7*' matches m7i.large and m7g.xlarge; 'm7i' matches the m7i family exactly."""
    family = name.partition(".")[0]
    return fnmatch.fnmatchcase(family, pattern) or fnmatch.fnmatchcase(name, pattern)


def list_types(
    session: AwsSession, arch: str | None = None, family_glob: str | None = None
) -> list[TypeFacts]:
    """Types of the session's region, filtered by architecture and family, sorted by name.

    Filters go to EC2 (fewer pages) and are applied again here, because a server that
    ignores a filter (moto ignores some) must not widen the answer.
    """
    if arch is not None and arch not in (*LAUNCHABLE_ARCHITECTURES, "i386"):
        raise UserError(f"unknown architecture {arch!r}: use arm64 or x86_64")
    if family_glob is not None and not _FAMILY_GLOB.match(family_glob):
        raise UserError(
            f"bad family pattern {family_glob!r}: use letters, digits and * such as 'm7*'"
        )
    filters: list[FilterTypeDef] = []
    if arch:
        filters.append({"Name": "processor-info.supported-architecture", "Values": [arch]})
    if family_glob:
        glob = family_glob if "." in family_glob else f"{family_glob}.*"
        filters.append({"Name": "instance-type", "Values": [glob]})
    result: list[TypeFacts] = []
    paginator = session.ec2().get_paginator("describe_instance_types")
    with aws_config_errors("AWS EC2"):
        for page in paginator.paginate(Filters=filters):
            for item in page["InstanceTypes"]:
                facts = _facts(item)
                if arch and arch not in facts.architectures:
                    continue
                if family_glob and not _matches_family(facts.instance_type, family_glob):
                    continue
                result.append(facts)
    return sorted(result, key=lambda f: _sort_key(f.instance_type))


def _sort_key(name: str) -> tuple[str, int, str]:
    """Family, then size by vCPU-ish order (large < xlarge < 2xlarge < ... < metal)."""
    family, _, size = name.partition(".")
    order = {"nano": 0, "micro": 1, "small": 2, "medium": 3, "large": 4, "xlarge": 5}
    if size in order:
        rank = order[size]
    elif size.endswith("xlarge") and size[:-6].isdigit():
        rank = 5 + int(size[:-6])
    else:
        rank = 10_000  # metal, metal-24xl ... last
    return family, rank, size


def known_architectures(session: AwsSession, names: Iterable[str]) -> dict[str, tuple[str, str]]:
    """name -> (architecture, manufacturer) for the names EC2 knows; unknown ones left out.

    For `instbench import legacy`, which must not stop at one type EC2 no longer sells:
    those fall back to the name parser. The manufacturer falls back the same way when
    the API omits it (`_facts`).
    """
    wanted = list(dict.fromkeys(names))
    try:
        facts = describe_types(session, wanted)
    except InvalidInstanceType:
        facts = {}
        for name in wanted:  # error path only: which ones does EC2 know?
            try:
                facts.update(describe_types(session, [name]))
            except InvalidInstanceType:
                continue
    return {n: (f.architecture, f.manufacturer or "") for n, f in facts.items() if f.manufacturer}
