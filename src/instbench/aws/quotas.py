"""vCPU quotas: how many vCPUs the account may run per instance class, and a pool that
keeps a run under them (and under `--vcpu-budget`).

EC2 limits running instances in vCPUs per *quota class* and market: all Standard types
(A, C, D, H, I, M, R, T, Z) share one on-demand quota and one spot quota, G and VT share
another, and so on. Asking EC2 for more fails the launch (VcpuLimitExceeded); a benchmark
run would then fail tasks that only had to wait. So:

  - at plan time, a type whose vCPUs exceed min(its class quota, --vcpu-budget) can never
    run, and the plan refuses it, naming the number it needs (`plan_limits`);
  - at run time, each launch first takes its vCPUs from a `VcpuPool`, which blocks until
    they fit under the class quota and the budget, and gives them back when the instance
    is gone. A big type waits for room instead of failing.

Quotas come from a `QuotaSource`. `ServiceQuotasSource` reads them from AWS Service
Quotas (GetServiceQuota, falling back to GetAWSDefaultServiceQuota when no applied value
exists); an account that denies the call, or a region without the service, yields
"unknown" (None, with a warning), never a crash: the budget, and EC2 itself, still apply.
`StaticQuotaSource` serves fixed limits (none at all for the sandbox, which has no quotas;
moto implements none of these codes either, so tests of the AWS source inject recorded
responses through botocore event hooks).

The quota is an account-wide limit: instances running outside this run use it too. So
the plan subtracts what the region's other pending and running instances hold
(`vcpus_in_use`: one DescribeInstances, read only when some quota is known), and a type
that does not fit in the room left is refused then, naming those instances. What starts
or ends elsewhere during the run is not followed: EC2's VcpuLimitExceeded remains the last
word (a capacity error: the next placement, then the task fails with the reason).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import botocore.exceptions

from instbench.aws import discovery, launch
from instbench.aws.session import AwsSession
from instbench.errors import InvalidInstanceType
from instbench.instance_types import parse_instance_type

log = logging.getLogger(__name__)

MARKETS = ("on-demand", "spot")
SERVICE_CODE = "ec2"
"""Service Quotas' code for EC2."""


@dataclass(frozen=True)
class QuotaClass:
    """One EC2 running-instance vCPU quota class and its Service Quotas codes."""

    name: str
    on_demand_code: str
    on_demand_name: str
    spot_code: str | None
    """None where AWS sells no spot capacity for the class (HPC, High Memory)."""
    spot_name: str | None

    def code(self, market: str) -> str | None:
        """The quota code for `market` ("on-demand" or "spot"), None if there is none."""
        if market == "on-demand":
            return self.on_demand_code
        if market == "spot":
            return self.spot_code
        return None

    def quota_name(self, market: str) -> str:
        """The quota's name as the Service Quotas console shows it."""
        name = self.on_demand_name if market == "on-demand" else self.spot_name
        return name or f"{self.name} {market}"


def _std(name: str) -> str:
    return f"Running On-Demand {name} instances"


def _spot(name: str) -> str:
    return f"All {name} Spot Instance Requests"


# Codes as Service Quotas lists them for service code "ec2" (same code in every region).
QUOTA_CLASSES: dict[str, QuotaClass] = {
    c.name: c
    for c in (
        QuotaClass(
            "Standard",
            "L-1216C47A",
            _std("Standard (A, C, D, H, I, M, R, T, Z)"),
            "L-34B43A08",
            _spot("Standard (A, C, D, H, I, M, R, T, Z)"),
        ),
        QuotaClass("F", "L-74FC7D96", _std("F"), "L-88CF9481", _spot("F")),
        QuotaClass("G and VT", "L-DB2E81BA", _std("G and VT"), "L-3819A6DF", _spot("G and VT")),
        QuotaClass("Inf", "L-1945791B", _std("Inf"), "L-B5D1601B", _spot("Inf")),
        QuotaClass("P", "L-417A185B", _std("P"), "L-7212CCBC", _spot("P")),
        QuotaClass("X", "L-7295265B", _std("X"), "L-E3A00192", _spot("X")),
        QuotaClass("Trn", "L-2C3B7624", _std("Trn"), "L-6B0D517C", _spot("Trn")),
        QuotaClass("DL", "L-6E869C2A", _std("DL"), "L-85EED4F7", _spot("DL")),
        QuotaClass("HPC", "L-F7808C92", _std("HPC"), None, None),
        QuotaClass("High Memory", "L-43DA4232", _std("High Memory"), None, None),
    )
}

_SERIES_CLASS: dict[str, str] = {
    **{
        s: "Standard"
        for s in ("a", "c", "cc", "cr", "d", "h", "hi", "hs", "i", "im", "is", "m", "r", "t", "z")
    },
    "f": "F",
    "g": "G and VT",
    "gr": "G and VT",
    "cg": "G and VT",
    "vt": "G and VT",
    "inf": "Inf",
    "p": "P",
    "x": "X",
    "trn": "Trn",
    "dl": "DL",
    "hpc": "HPC",
    "u": "High Memory",
}
"""Series (the letters before the generation, instance_types.SERIES) -> quota class.
`mac` is absent: mac instances run on dedicated hosts, which have per-host quotas."""


def quota_class(instance_type: str) -> QuotaClass | None:
    """The vCPU quota class an instance type counts against; None if it has none (mac)."""
    try:
        series = parse_instance_type(instance_type).series
    except InvalidInstanceType:
        return None
    name = _SERIES_CLASS.get(series)
    return QUOTA_CLASSES[name] if name else None


def pool_key(instance_type: str, market: str) -> str:
    """The `VcpuPool` key of a launch: its quota class and market, e.g. "Standard/spot".

    Types without a quota class get a key of their own ("mac2.metal/on-demand"), which is
    limited by the budget only.
    """
    cls = quota_class(instance_type)
    return f"{cls.name if cls else instance_type}/{market}"


# ----------------------------------------------------------------------------- sources


class QuotaSource(Protocol):
    """Where vCPU limits come from (AWS Service Quotas, or a fixed table)."""

    def vcpu_limit(self, quota_class: QuotaClass, market: str) -> int | None:
        """The account's vCPU limit for the class and market; None when unknown/unlimited."""
        ...


class StaticQuotaSource:
    """Fixed limits, keyed by (class name, market). Empty means no limit anywhere: the
    sandbox's source (moto enforces no vCPU quota, and the sandbox costs nothing)."""

    def __init__(self, limits: Mapping[tuple[str, str], int] | None = None) -> None:
        self.limits = dict(limits or {})

    def vcpu_limit(self, quota_class: QuotaClass, market: str) -> int | None:
        return self.limits.get((quota_class.name, market))


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class ServiceQuotasSource:
    """Limits read from AWS Service Quotas in the session's region, once per code.

    GetServiceQuota returns the applied value; for a quota never changed in the account
    AWS may have no applied value (NoSuchResourceException), and the AWS default then
    applies (GetAWSDefaultServiceQuota). Any other failure (AccessDenied, the service not
    offered in the region, an unreachable endpoint) makes the limit unknown: a warning is
    logged and passed to `warn`, and the run goes on without that limit.
    """

    def __init__(self, session: AwsSession, warn: Callable[[str], None] | None = None) -> None:
        self.session = session
        self.warn = warn
        self.warnings: list[str] = []
        self._cache: dict[str, int | None] = {}
        self._lock = threading.Lock()

    def vcpu_limit(self, quota_class: QuotaClass, market: str) -> int | None:
        code = quota_class.code(market)
        if code is None:
            return None
        with self._lock:
            if code not in self._cache:
                self._cache[code] = self._read(code, quota_class.quota_name(market))
            return self._cache[code]

    def _read(self, code: str, name: str) -> int | None:
        client: Any = self.session.client("service-quotas")
        try:
            try:
                response = client.get_service_quota(ServiceCode=SERVICE_CODE, QuotaCode=code)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) != "NoSuchResourceException":
                    raise
                response = client.get_aws_default_service_quota(
                    ServiceCode=SERVICE_CODE, QuotaCode=code
                )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            reason = _code(exc) if isinstance(exc, botocore.exceptions.ClientError) else ""
            self._warn(
                f"vCPU quota {code} ({name}) unknown in {self.session.region}: "
                f"{reason or type(exc).__name__}; launches are not limited by it"
            )
            return None
        value = response.get("Quota", {}).get("Value")
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            self._warn(f"vCPU quota {code} ({name}) has no usable value: {value!r}")
            return None
        return int(value)

    def _warn(self, message: str) -> None:
        log.warning("%s", message)
        self.warnings.append(message)
        if self.warn is not None:
            self.warn(message)


@dataclass(frozen=True)
class Usage:
    """vCPUs held under one pool key by instances outside the run, and how many they are."""

    vcpus: int
    instances: int


def vcpus_in_use(session: AwsSession, run_id: str) -> dict[str, Usage]:
    """Per pool key, what the region's pending and running instances that are not tagged
    with `run_id` hold (a resumed run's own instances are the pool's business).

    Each type's vCPUs come from DescribeInstanceTypes: the quota counts a type's vCPUs,
    whatever CPU options an instance was launched with.
    """
    others = [(t, m) for t, m, rid in launch.running_instances(session) if rid != run_id]
    if not others:
        return {}
    facts = discovery.describe_types(session, sorted({t for t, _ in others}))
    held: dict[str, Usage] = {}
    for name, market in others:
        key = pool_key(name, market)
        was = held.get(key, Usage(0, 0))
        vcpus = facts[name].vcpus if name in facts else 0
        held[key] = Usage(was.vcpus + vcpus, was.instances + 1)
    return held
