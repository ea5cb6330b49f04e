"""Plan a fleet run: validate everything, read-only, before the first paid API call.

The plan expands instance types x benchmarks x samples into tasks (a user-defined suite,
`--suite`, is one more task per type and sample: see `SUITE_BENCHMARK`) and resolves, for each
type, what AWS says it is (DescribeInstanceTypes), that it is offered where it will run,
the AMI for its architecture, and where it can be placed (subnets / availability zones for
capacity failover). Any mistake the user can fix raises a `UserError` here, so nothing is
created when the input is wrong.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from instbench import limits
from instbench.aws import ami, discovery, launch, network, quotas, regions
from instbench.aws.quotas import QuotaSource
from instbench.aws.session import AwsSession
from instbench.benchmarks import registry
from instbench.errors import UserError
from instbench.fleet import capacity, cost
from instbench.fleet.model import (
    EXPIRY_MARGIN,
    PAIR_PARAMS,
    SUITE_BENCHMARK,
    FleetOptions,
    Placement,
    Plan,
    Task,
    network_burst_s,
    storage_burst_s,
    task_id,
    task_timeout_s,
    watchdog_minutes,
)
from instbench.instance_types import parse_instance_type
from instbench.prices import PriceSource
from instbench.storage.s3 import S3Store

__all__ = [
    "EXPIRY_MARGIN",
    "SUITE_BENCHMARK",
    "FleetOptions",
    "Placement",
    "Plan",
    "Task",
    "make_plan",
    "task_id",
    "watchdog_minutes",
]
"""The plan's data types live in `fleet.model` (so that capacity and cost need not import
this module); they are re-exported here, where readers look for them."""


def _instances(benchmark: str) -> int:
    """Instances one task of `benchmark` runs on (a suite task: one)."""
    return 1 if benchmark == SUITE_BENCHMARK else registry.info(benchmark).instances


def _burst_s(
    opts: FleetOptions, bench: str, storage: dict[str, float], network: dict[str, Any]
) -> int:
    """Seconds of a task's burst-and-baseline run (storage: EBS; network: an 'Up to' type's
    credits), which its timeout and cost include."""
    if bench == "storage":
        return storage_burst_s(opts, storage)
    if bench == "network":
        return network_burst_s(opts, network)
    return 0


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
    opts.check_numbers()  # options are mutable: checked again before the expansion
    if not opts.task_benchmarks:
        raise UserError("nothing to run: pass --benchmarks and/or --suite")
    for name in opts.benchmarks:
        if registry.info(name).instances > 1:
            # The controller decides the sides of a pair: their roles, the server's address
            # and port, where it listens. A value given by hand would break the pair.
            given = sorted(set(opts.params.get(name, {})) & set(PAIR_PARAMS))
            if given:
                raise UserError(
                    f"benchmark {name} runs on a pair of instances whose {', '.join(given)} "
                    f"the controller sets: drop --param {name}.{given[0]}=..."
                )
    if opts.security_group and any(registry.info(b).instances > 1 for b in opts.benchmarks):
        raise UserError(
            "a pair benchmark (network) opens the run's own security group to itself; "
            "drop --security-group"
        )
    if opts.max_concurrency < 1:
        raise UserError("--max-concurrency must be at least 1")
    if opts.vcpu_budget is not None and opts.vcpu_budget < 1:
        raise UserError("--vcpu-budget must be at least 1")
    launch.check_market(opts.market, opts.spot_max_price, opts.spot_fallback)
    if "storage" in opts.task_benchmarks:
        opts.data_volume.check()
    cost.check_max_cost_value(opts.max_cost)
    if not opts.instance_types:
        raise UserError("no instance types given: pass --instance-types m7i.large,...")
    for name in opts.instance_types:
        parse_instance_type(name)  # syntax and shell-safety, offline, before any call
    region = regions.check_region(session.region)
    regions.check_credentials(session)

    facts = discovery.describe_types(session, opts.instance_types)
    stream_elements = opts.params.get("stream", {}).get("array_elements")
    array_size = stream_elements or limits.agent_numbers(opts.agent_args).array_size
    for name in opts.instance_types:
        limits.check_array_fits(array_size, name, facts[name].memory_mib)
    # A type that does not fit under its vCPU quota (less what other instances hold now)
    # or the budget fails now, not after the rest of the run has been launched.
    # A pair benchmark holds two instances of the type at once: both must fit.
    most_instances = max(_instances(b) for b in opts.task_benchmarks)
    vcpu_limits = capacity.plan_limits(
        {name: facts[name].vcpus * most_instances for name in opts.instance_types},
        opts.market,
        quota_source or capacity.default_source(session, opts),
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
        launch.check_key_pair(session, opts.key_pair)

    architectures = sorted({facts[name].architecture for name in opts.instance_types})
    images: dict[str, str] = {}
    for arch in architectures:
        if opts.ami_id:
            ami.check_ami(session, opts.ami_id, arch)
            images[arch] = opts.ami_id
        else:
            images[arch] = ami.latest_al2023(session, arch).image_id

    S3Store(session, opts.bucket).check_bucket()

    storage_advertised = {name: facts[name].storage_advertised() for name in opts.instance_types}
    network_advertised = {name: facts[name].advertised_network() for name in opts.instance_types}
    tasks = [
        Task(
            task_id=task_id(name, bench, sample),
            instance_type=name,
            benchmark=bench,
            sample=sample,
            architecture=facts[name].architecture,
            image_id=images[facts[name].architecture],
            vcpus=facts[name].vcpus,
            burst_s=_burst_s(opts, bench, storage_advertised[name], network_advertised[name]),
            instances=_instances(bench),
        )
        for name in opts.instance_types
        for bench in opts.task_benchmarks
        for sample in range(opts.samples)
    ]
    longest = max(task_timeout_s(opts, t) for t in tasks)
    expires = now + timedelta(seconds=longest) + EXPIRY_MARGIN
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
        storage_advertised=storage_advertised,
        network_advertised=network_advertised,
    )
    if opts.max_cost is not None:
        plan.cost = cost.estimate_plan(plan, price_source or cost.price_source(session, opts))
        cost.enforce_max_cost(plan.cost, opts.max_cost)
    return plan
