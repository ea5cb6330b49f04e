"""What one launch of a task is: the purchase options to try, the placements in order, the
price recorded, and the instance's `LaunchSpec` with its user data and presigned URLs.

Apart from the orchestrator because all of it is decided from the plan alone (and one
spot price lookup): the orchestrator journals, launches and waits; this module says what
it launches, and a task with more than one instance can build each one's spec from
the same parts.
"""

from __future__ import annotations

import zlib

from instbench.agentpkg import AgentArchive
from instbench.aws import launch
from instbench.aws.session import AwsSession
from instbench.benchmarks import registry
from instbench.fleet import pairs
from instbench.fleet.collect import result_key, task_log_key
from instbench.fleet.model import (
    SUITE_BENCHMARK,
    FleetOptions,
    Placement,
    Plan,
    Task,
    task_timeout_s,
    watchdog_minutes,
)
from instbench.fleet.userdata import UserDataParams, advertised_text, render_user_data
from instbench.storage.layout import artifact_key
from instbench.storage.s3 import S3Store

URL_MARGIN_S = 30 * 60
"""Presigned URLs stay valid this long beyond the task timeout."""


def markets(opts: FleetOptions) -> list[str]:
    """The purchase options to try, in order (spot, then on-demand with the fallback)."""
    if opts.market == "spot" and opts.spot_fallback == "on-demand":
        return ["spot", "on-demand"]
    return [opts.market]


def hourly_price(
    session: AwsSession, plan: Plan, task: Task, market: str, zone: str
) -> float | None:
    """What the instance costs per hour as launched (recorded in its result)."""
    if market == "spot":
        return launch.spot_price_now(session, task.instance_type, zone)
    estimate = plan.cost
    if estimate is not None:
        for cost in estimate.tasks:
            if cost.task_id == task.task_id and cost.market == market:
                return cost.hourly_usd
    return None


def placements_for(plan: Plan, task: Task) -> list[Placement]:
    """Every placement, starting at a different one per task to spread load."""
    places = plan.placements
    start = zlib.crc32(task.task_id.encode()) % len(places)
    return places[start:] + places[:start]


def user_data_params(
    plan: Plan,
    task: Task,
    market: str,
    *,
    agent: AgentArchive,
    s3: S3Store,
    price: float | None,
    interruptions: int,
    port: int | None = None,
) -> UserDataParams:
    """What the user data of one attempt of `task` carries: presigned URLs for the agent
    (and suite), the result and the log, valid for the task's timeout plus
    `URL_MARGIN_S`. `price` and `interruptions` go into the result via the agent. `port`:
    a pair task's client, whose role and port the controller sets (`fleet/pairs.py`)."""
    opts = plan.options
    agent_args = opts.agent_args_for(task.benchmark)
    if price is not None:
        agent_args += ["--hourly-price-usd", f"{price:.6g}"]
    if opts.market == "spot":
        agent_args += ["--spot-interruptions", str(interruptions)]
    task_s = task_timeout_s(opts, task)  # --timeout plus a storage or network burst run
    expires_s = task_s + URL_MARGIN_S
    rid = plan.run_id
    if task.benchmark == SUITE_BENCHMARK:
        # Only the artifact's URL and digest reach the user data, never the suite.
        assert opts.suite is not None
        benchmarks: tuple[str, ...] = ()
        agent_args += [
            "--suite-url",
            s3.presign_get(artifact_key(opts.suite.sha256, "json"), expires_s),
            "--suite-sha256",
            opts.suite.sha256,
        ]
    else:
        benchmarks = (task.benchmark,)
    data_volume = opts.data_volume if task.benchmark == "storage" else None
    if data_volume is not None:
        advertised = {
            **plan.storage_advertised.get(task.instance_type, {}),
            **data_volume.advertised(),
        }
        agent_args += ["--storage-advertised", advertised_text(advertised)]
    if port is not None:
        agent_args = pairs.pair_agent_args(plan, task, agent_args, "client", port)
    return UserDataParams(
        run_id=rid,
        task_id=task.task_id,
        sample=task.sample,
        instance_type=task.instance_type,
        region=plan.region,
        benchmarks=benchmarks,
        collection_method=opts.collection_method,
        quick=opts.quick,
        market=market,
        agent_url=s3.presign_get(artifact_key(agent.sha256), expires_s),
        agent_sha256=agent.sha256,
        result_url=s3.presign_put(result_key(rid, task.task_id), expires_s, "application/json"),
        log_url=s3.presign_put(task_log_key(rid, task.task_id), expires_s, "text/plain"),
        watchdog_minutes=watchdog_minutes(task_s),
        agent_args=tuple(agent_args),
        runtime=opts.runtime,
        image=opts.image,
        # The container image carries its own toolchain; the host installs nothing.
        packages=registry.packages_for(benchmarks) if opts.runtime == "zipapp" else (),
    )


def spec_for(
    plan: Plan, task: Task, place: Placement, market: str, attempt: int, params: UserDataParams
) -> launch.LaunchSpec:
    """The `LaunchSpec` of one attempt of `task` with the user data of `params`."""
    opts = plan.options
    assert plan.security_group is not None
    return launch.LaunchSpec(
        run_id=plan.run_id,
        task_id=task.task_id,
        instance_type=task.instance_type,
        image_id=task.image_id,
        subnet_id=place.subnet_id,
        availability_zone=place.availability_zone,
        security_group_ids=[plan.security_group],
        key_name=opts.key_pair,
        user_data=render_user_data(params),
        expires_at=plan.expires_at,
        market=market,
        spot_max_price=opts.spot_max_price if market == "spot" else None,
        attempt=attempt,
        data_volume=opts.data_volume if task.benchmark == "storage" else None,
    )
