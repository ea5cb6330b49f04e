"""What a fleet run is, as data: the options asked for, the tasks and placements of a plan,
and the most it can cost.

Why a module of its own: planning (`plan`), capacity (`capacity`), cost (`cost`) and the
orchestrator all speak of the same Plan, Task and FleetOptions. With the types beside the
planning code, those modules imported each other in a circle; here they depend on one
module that decides nothing and calls no one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from instbench import limits
from instbench.aws import launch
from instbench.benchmarks import registry
from instbench.benchmarks.errors import BenchmarkInputError
from instbench.errors import UserError
from instbench.fleet.userdata import check_agent_args, check_runtime
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


SANDBOX_SOURCE = "sandbox: nothing is billed"

PAIR_PARAMS = ("role", "peer", "port", "listen")
"""Parameters of a pair benchmark (`BenchmarkInfo.instances == 2`) that the controller
sets for each side; the user may not."""


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
    burst_s: int = 0
    """`storage` and `network`: seconds of the burst-and-baseline run (`storage_burst_s`,
    `network_burst_s`), which the task gets on top of --timeout and is billed for."""
    instances: int = 1
    """Instances the task runs on at once: 2 for a pair benchmark (a server and a client,
    `BenchmarkInfo.instances`); quotas, the vCPU budget and the cost count all of them."""

    @property
    def held_vcpus(self) -> int:
        """vCPUs the task holds while it runs (all its instances)."""
        return self.vcpus * self.instances


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
    """The public agent image for the container runtime (see fleet.userdata.check_image)."""
    vcpu_budget: int | None = None
    """--vcpu-budget: most vCPUs the run may hold at once, over all types (None: no cap)."""
    max_cost: float | None = None
    """--max-cost: USD ceiling on the plan's upper-bound cost (None: not checked)."""
    data_volume: launch.DataVolume = field(default_factory=launch.DataVolume)
    """The empty gp3 volume each `storage` task gets at launch (size, IOPS, throughput)."""
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
        self.check_numbers()

    def check_numbers(self) -> None:
        """Every count in range (instbench.limits) before a task list is expanded."""
        limits.check_fleet_numbers(
            types=len(self.instance_types),
            benchmarks=len(self.task_benchmarks),
            samples=self.samples,
            max_concurrency=self.max_concurrency,
            vcpu_budget=self.vcpu_budget,
            agent_args=self.agent_args,
        )


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
    storage_advertised: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per instance type, what DescribeInstanceTypes advertises for storage (EBS-optimized
    baseline/maximum, instance-store disks); passed to `storage` tasks' agents."""
    network_advertised: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per instance type, the `network` benchmark's advertised_* parameters
    (`TypeFacts.advertised_network`); passed to the client of each pair."""

    @property
    def total_vcpus(self) -> int:
        return sum(t.held_vcpus for t in self.tasks)


def task_id(instance_type: str, benchmark: str, sample: int) -> str:
    """Stable, readable, key-safe task id, e.g. m7i.large-stream-0."""
    return f"{instance_type}-{benchmark}-{sample}"


@dataclass(frozen=True)
class TaskCost:
    """The most one task can cost."""

    task_id: str
    instance_type: str
    market: str
    vcpus: int
    """vCPUs of all the task's instances."""
    seconds: int
    """Upper bound on billed seconds (`billed_seconds`)."""
    hourly_usd: float | None
    """Of one instance; None: price unknown."""
    volume_hourly_usd: float = 0.0
    """The storage benchmark's gp3 data volume, USD per hour (0: no data volume)."""
    instances: int = 1
    """Instances billed at once (2 for a pair task: its server and its client)."""

    @property
    def task_hourly_usd(self) -> float | None:
        """USD per hour of all the task's instances and its data volume."""
        if self.hourly_usd is None:
            return None
        return self.hourly_usd * self.instances + self.volume_hourly_usd

    burst_s: int = 0
    """Of `seconds`, the storage benchmark's EBS burst run or the network benchmark's burst
    run (included, not added)."""
    benchmark: str = ""
    """The task's benchmark (what its burst run is: EBS for storage, network credits)."""

    @property
    def cost_usd(self) -> float | None:
        hourly = self.task_hourly_usd
        return None if hourly is None else hourly * self.seconds / 3600

    @property
    def burst_cost_usd(self) -> float | None:
        """What the burst run's seconds cost (all the task's instances and its data volume),
        part of cost_usd."""
        hourly = self.task_hourly_usd
        return None if hourly is None else hourly * self.burst_s / 3600


@dataclass(frozen=True)
class CostEstimate:
    """Upper-bound cost of a plan, with where and when its prices were read."""

    region: str
    tasks: tuple[TaskCost, ...]
    as_of: date | None
    """The day the prices were read (None when none could be read)."""
    source: str
    basis: str
    """How durations were bounded, in words (shown beside the total)."""
    unknown_reason: str | None = None
    """Why some prices are unknown, when they are."""

    @property
    def unknown_types(self) -> list[str]:
        """Types whose price is unknown."""
        return sorted({t.instance_type for t in self.tasks if t.hourly_usd is None})

    @property
    def known_usd(self) -> float:
        """Sum over the tasks whose price is known."""
        return sum(c for t in self.tasks if (c := t.cost_usd) is not None)

    @property
    def total_usd(self) -> float | None:
        """Upper bound of the whole plan; None when any price is unknown."""
        return None if self.unknown_types else self.known_usd

    @property
    def free(self) -> bool:
        """True in the sandbox."""
        return self.source == SANDBOX_SOURCE


def task_timeout_s(opts: FleetOptions, task: Task) -> int:
    """How long `task` may run: --timeout, plus a storage or network task's burst run
    (`Task.burst_s`).
    The cost estimate bills this; the controller's deadline, the presigned URLs and the
    on-instance watchdog use it (fleet/orchestrator.py, fleet/launching.py)."""
    return opts.timeout_s + task.burst_s


def storage_burst_s(opts: FleetOptions, advertised: dict[str, float]) -> int:
    """Seconds of the storage burst run on a type advertising `advertised`: --param
    storage.burst_s when given, else what the agent will choose (storage.default_burst_s:
    on EC2 for a type whose EBS baseline throughput is below its maximum, else 0)."""
    from instbench.benchmarks import storage

    given = opts.params.get("storage", {}).get("burst_s")
    if given is not None:
        return int(given)
    return storage.default_burst_s(advertised, opts.quick, opts.collection_method)


def network_burst_s(opts: FleetOptions, advertised: dict[str, Any]) -> int:
    """Seconds of the network burst run on a type advertising `advertised`
    (`TypeFacts.advertised_network`): --param network.burst_s when given, else
    network.default_burst_s (for an 'Up to' type: long enough to spend its credits on
    EC2, seconds with --quick; else 0)."""
    from instbench.benchmarks import network

    given = opts.params.get("network", {}).get("burst_s")
    if given is not None:
        return int(given)
    performance = advertised.get("advertised_performance")
    return network.default_burst_s(
        performance if isinstance(performance, str) else None, opts.quick, opts.collection_method
    )


def watchdog_minutes(timeout_s: int) -> int:
    """Minutes for the on-instance `shutdown -h +N` watchdog (rounded up, at least 1)."""
    return max(1, math.ceil(timeout_s / 60))
