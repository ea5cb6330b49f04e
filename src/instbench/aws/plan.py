"""Plan a fleet run: validate everything, read-only, before the first paid API call.

The plan expands instance types x benchmarks x samples into tasks (a user-defined suite,
`--suite`, is one more task per type and sample: see `SUITE_BENCHMARK`) and resolves, for each
type, what AWS says it is (DescribeInstanceTypes), that it is offered where it will run,
the AMI for its architecture, and where it can be placed (subnets / availability zones for
capacity failover). Any mistake the user can fix raises a `UserError` here, so nothing is
created when the input is wrong.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from instbench.analysis.pricing import PriceSource
from instbench.aws import ami, cost, discovery, launch, network, quotas, regions
from instbench.aws.cost import CostEstimate
from instbench.aws.quotas import QuotaSource
from instbench.aws.session import AwsSession
from instbench.aws.userdata import check_agent_args, check_runtime
from instbench.benchmarks import registry
from instbench.benchmarks.errors import BenchmarkInputError
from instbench.errors import UserError
from instbench.instance_types import parse_instance_type
from instbench.storage.s3 import S3Store
from instbench.suites import SuiteArtifact

EXPIRY_MARGIN = timedelta(minutes=30)
"""Presigned URLs and the `instbench:expires-at` tag outlive the task timeout by this."""

SUITE_BENCHMARK = "suite"
"""`Task.benchmark` of a suite task. It is what the agent writes into
`metadata.benchmark_suite` for a suite-only run and the section `performance_data.suite`,
so the result is stored under raw/suite/... exactly as `run --local --suite` stores it
(and as the analysis' identity check expects); the suite's own name and digest are in
that section and are checked against the run's suite on collection. The registry
reserves the name, so no benchmark can collide with it."""


@dataclass(frozen=True)
class Placement:
    """Where an instance can be launched: a subnet (and its AZ), or an AZ of the default VPC."""

    availability_zone: str
    subnet_id: str | None


@dataclass(frozen=True)
class Task:
    """One instance running one benchmark, or the run's suite (`SUITE_BENCHMARK`), once."""

    task_id: str
    instance_type: str
    benchmark: str
    sample: int
    architecture: str
    image_id: str
    vcpus: int


@dataclass
class FleetOptions:
    """What the user asked for (already syntactically checked by the CLI)."""

    instance_types: list[str]
    benchmarks: tuple[str, ...]
    bucket: str
    samples: int = 1
    subnets: list[str] = field(default_factory=list)
    security_group: str | None = None
    key_pair: str | None = None
    ami_id: str | None = None
    max_concurrency: int = 5
    timeout_s: int = 20 * 60
    quick: bool = False
    agent_args: list[str] = field(default_factory=list)
    collection_method: str = "aws"
    market: str = "on-demand"
    run_id: str | None = None
    spot_max_price: str | None = None
    """--spot-max-price: the most to pay per hour for spot, USD (None: up to on-demand)."""
    spot_fallback: str | None = None
    """--spot-fallback on-demand: when spot has no capacity or interrupts the task, run it
    on-demand instead of failing it."""
    runtime: str = "zipapp"
    """How instances run the agent: "zipapp" (fetched by presigned URL) or "container"."""
    image: str | None = None
    """The public agent image for the container runtime (see aws.userdata.check_image)."""
    vcpu_budget: int | None = None
    """--vcpu-budget: most vCPUs the run may hold at once, over all types (None: no cap)."""
    max_cost: float | None = None
    """--max-cost: USD ceiling on the plan's upper-bound cost (None: not checked)."""
    suite: SuiteArtifact | None = None
    """--suite: a validated user-defined suite, run as its own task per type and sample
    (besides one task per benchmark in `benchmarks`, which may then be empty)."""
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    """--param BENCH.NAME=VALUE (and STREAM's aliases): checked values by benchmark. Each
    task's agent gets only its own benchmark's (`agent_args_for`)."""

    @property
    def task_benchmarks(self) -> tuple[str, ...]:
        """What each (type, sample) runs as separate tasks: the benchmarks, then the suite."""
        return self.benchmarks + ((SUITE_BENCHMARK,) if self.suite is not None else ())

    def agent_args_for(self, benchmark: str) -> list[str]:
        """The agent options of one task: the run's, then its benchmark's parameters."""
        own = {benchmark: self.params[benchmark]} if benchmark in self.params else {}
        return list(self.agent_args) + registry.assignment_args(own)

    def __post_init__(self) -> None:
        # Checked when the options are made (CLI, journal, library), so a runtime that
        # cannot work fails before the sandbox starts or anything is planned.
        check_runtime(self.runtime, self.image)
        launch.check_market(self.market, self.spot_max_price, self.spot_fallback)
        # Parameters again through the registry (a journal's too) and through what the
        # user data accepts, so a value an instance would refuse fails here.
        try:
            args = registry.assignment_args(self.params)
            registry.parse_assignments(args[1::2], self.benchmarks)
        except KeyError as exc:
            raise UserError(f"unknown benchmark or parameter {exc} in {self.params!r}") from exc
        except BenchmarkInputError as exc:
            raise UserError(str(exc)) from exc
        check_agent_args(args)


@dataclass
class Plan:
    """The validated run: tasks, placements, and the resources to use or create."""

    run_id: str
    region: str
    tasks: list[Task]
    placements: list[Placement]
    vpc_id: str
    security_group: str | None
    images: dict[str, str]
    expires_at: datetime
    options: FleetOptions
    vcpu_limits: dict[str, int | None] = field(default_factory=dict)
    """vCPU quota per pool key (aws.quotas.pool_key) read at plan time; None: unknown."""
    cost: CostEstimate | None = None
    """The upper-bound cost, when it was estimated at plan time (--max-cost)."""

    @property
    def total_vcpus(self) -> int:
        return sum(t.vcpus for t in self.tasks)


def task_id(instance_type: str, benchmark: str, sample: int) -> str:
    """Stable, readable, key-safe task id, e.g. m7i.large-stream-0."""
    return f"{instance_type}-{benchmark}-{sample}"


def make_plan(
    session: AwsSession,
    opts: FleetOptions,
    run_id: str,
    now: datetime,
    quota_source: QuotaSource | None = None,
    price_source: PriceSource | None = None,
) -> Plan:
    """Validate the request against AWS (read-only calls) and expand it into tasks.

    `quota_source` and `price_source` default to AWS (Service Quotas, the Pricing API)
    or, for the sandbox, to no limits and zero prices; tests pass their own.
    """
    if opts.samples < 1:
        raise UserError("--samples must be at least 1")
    if not opts.task_benchmarks:
        raise UserError("nothing to run: pass --benchmarks and/or --suite")
    if opts.max_concurrency < 1:
        raise UserError("--max-concurrency must be at least 1")
    if opts.vcpu_budget is not None and opts.vcpu_budget < 1:
        raise UserError("--vcpu-budget must be at least 1")
    launch.check_market(opts.market, opts.spot_max_price, opts.spot_fallback)
    cost.check_max_cost_value(opts.max_cost)
    if not opts.instance_types:
        raise UserError("no instance types given: pass --instance-types m7i.large,...")
    for name in opts.instance_types:
        parse_instance_type(name)  # syntax and shell-safety, offline, before any call
    region = regions.check_region(session.region)
    regions.check_credentials(session)

    facts = discovery.describe_types(session, opts.instance_types)
    # A type that does not fit under its vCPU quota (less what other instances hold now)
    # or the budget fails now, not after the rest of the run has been launched.
    vcpu_limits = quotas.plan_limits(
        {name: facts[name].vcpus for name in opts.instance_types},
        opts.market,
        quota_source or quotas.default_source(session, opts),
        opts.vcpu_budget,
        region,
        in_use=lambda: quotas.vcpus_in_use(session, run_id),
    )

    if opts.subnets:
        subnets = network.resolve_subnets(session, opts.subnets)
        vpc_id = subnets[0].vpc_id
        placements = [Placement(s.availability_zone, s.id) for s in subnets]
    else:
        vpc_id = network.default_vpc(session)
        placements = [
            Placement(s.availability_zone, s.id) for s in network.default_subnets(session, vpc_id)
        ]
    if not placements:
        raise UserError(f"no subnet to launch into in {region}: pass --subnet")
    zones = sorted({p.availability_zone for p in placements})
    offered = discovery.offered_zones(session, opts.instance_types)
    for name in opts.instance_types:
        usable = [z for z in zones if z in offered.get(name, set())]
        if not usable:
            where = f"availability zones {', '.join(zones)}" if opts.subnets else region
            raise UserError(f"instance type {name} is not offered in {where}")

    if opts.security_group:
        network.check_security_group(session, opts.security_group, vpc_id)
    if opts.key_pair:
        check_key_pair(session, opts.key_pair)

    architectures = sorted({facts[name].architecture for name in opts.instance_types})
    images: dict[str, str] = {}
    for arch in architectures:
        if opts.ami_id:
            ami.check_ami(session, opts.ami_id, arch)
            images[arch] = opts.ami_id
        else:
            images[arch] = ami.latest_al2023(session, arch).image_id

    S3Store(session, opts.bucket).check_bucket()

    tasks = [
        Task(
            task_id=task_id(name, bench, sample),
            instance_type=name,
            benchmark=bench,
            sample=sample,
            architecture=facts[name].architecture,
            image_id=images[facts[name].architecture],
            vcpus=facts[name].vcpus,
        )
        for name in opts.instance_types
        for bench in opts.task_benchmarks
        for sample in range(opts.samples)
    ]
    expires = now + timedelta(seconds=opts.timeout_s) + EXPIRY_MARGIN
    plan = Plan(
        run_id=run_id,
        region=region,
        tasks=tasks,
        placements=placements,
        vpc_id=vpc_id,
        security_group=opts.security_group,
        images=images,
        expires_at=expires,
        options=opts,
        vcpu_limits=vcpu_limits,
    )
    if opts.max_cost is not None:
        plan.cost = cost.estimate_plan(plan, price_source or cost.price_source(session, opts))
        cost.enforce_max_cost(plan.cost, opts.max_cost)
    return plan


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


def watchdog_minutes(timeout_s: int) -> int:
    """Minutes for the on-instance `shutdown -h +N` watchdog (rounded up, at least 1)."""
    return max(1, math.ceil(timeout_s / 60))
