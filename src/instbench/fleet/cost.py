"""What a run will cost, at most, before it is launched.

A benchmark run that costs more than its user expected is a bug of the tool. So the plan
can be priced (`instbench run --dry-run` shows it) and refused above a ceiling
(`--max-cost USD`), before anything is created.

The estimate is an upper bound: each task is billed for its whole timeout (the controller
and the on-instance watchdog end the instance then; the watchdog rounds up to whole
minutes) plus `BOOT_MARGIN_S` of boot before the watchdog is armed. The benchmark
registry records no typical durations, so nothing shorter can be promised; most tasks
finish well before their timeout. The storage benchmark's gp3 data volume is counted for
the same billed duration (`data_volume_hourly_usd`); EBS root volumes (a few cents per
month, pro rata) and data transfer are not counted. A storage task's EBS burst run
(`Task.burst_s`, from --param storage.burst_s or chosen per type) is billed on top of its
timeout (`model.task_timeout_s`), instance and volume, and shown apart in the dry run.

Prices are USD per instance-hour from a `PriceSource` (instbench/prices.py): on AWS the
Pricing API's on-demand price and EC2's current spot price (aws/pricing.py), cached on
disk per region and day under the user's cache directory, so the estimate shows the date
the prices were read and a second dry run on the same day makes no Pricing call. The
sandbox bills nothing, so its prices are zero. When prices cannot be read (no permission,
the Pricing API unreachable, moto, which does not serve it), the estimate says which
prices are unknown and why; `--max-cost` then refuses the run, since a ceiling that
cannot be checked is no ceiling.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from instbench.aws.launch import DataVolume
from instbench.aws.pricing import PRICING_REGION, AwsPriceSource
from instbench.aws.session import AwsSession
from instbench.errors import AwsConfigError, PricesUnavailable, UserError
from instbench.fleet.model import (
    SANDBOX_SOURCE,
    CostEstimate,
    FleetOptions,
    Plan,
    TaskCost,
    task_timeout_s,
    watchdog_minutes,
)
from instbench.prices import InstancePrice, PriceSet, PriceSource
from instbench.storage.price_files import CachedPriceSource

BOOT_MARGIN_S = 120
"""Billed seconds before the on-instance watchdog is armed (boot, cloud-init start)."""

MIN_BILLED_S = 60
"""EC2 bills Linux instances per second with a one-minute minimum."""

GP3_GB_MONTH_USD = 0.08
GP3_IOPS_MONTH_USD = 0.005
"""Per provisioned IOPS-month above `GP3_FREE_IOPS`."""
GP3_MIBPS_MONTH_USD = 0.04
"""Per provisioned MiB/s-month above `GP3_FREE_MIBPS`."""
GP3_FREE_IOPS = 3000
GP3_FREE_MIBPS = 125
GP3_MONTH_HOURS = 30 * 24
"""gp3 list prices in us-east-1 (Amazon EBS pricing, https://aws.amazon.com/ebs/pricing/,
General Purpose SSD gp3). EBS bills per second, pro rata over the month; AWS's own example
there divides by a 30-day month, which is used here (other regions list somewhat higher
gp3 prices; the estimate says it used us-east-1's)."""

PRICING_ATTEMPTS = 3
"""Attempts per Pricing API call: an estimate is not worth a minute of retries."""


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """$XDG_CACHE_HOME/instbench/prices, else ~/.cache/instbench/prices."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "instbench" / "prices"


class SandboxPrices:
    """`PriceSource` of the sandbox: every type costs nothing (no account is billed)."""

    def prices(self, instance_types: Iterable[str], region: str) -> PriceSet:
        free = InstancePrice(on_demand=0.0, spot_current=0.0)
        return PriceSet(
            region=region,
            as_of=datetime.now(UTC).date(),
            source=SANDBOX_SOURCE,
            instances={t: free for t in instance_types},
        )


def price_source(
    session: AwsSession, opts: FleetOptions, environ: Mapping[str, str] | None = None
) -> PriceSource:
    """Where a plan's prices come from: free in the sandbox, else AWS behind a dated cache.

    The Pricing API is served from PRICING_REGION only, hence a session of its own (same
    credentials and endpoint settings, fewer retries).
    """
    if opts.collection_method == "sandbox":
        return SandboxPrices()
    pricing = AwsSession(
        dataclasses.replace(session.settings, region=PRICING_REGION, max_attempts=PRICING_ATTEMPTS)
    )
    return CachedPriceSource(AwsPriceSource(pricing, session), default_cache_dir(environ))


def billed_seconds(timeout_s: int) -> int:
    """Upper bound on the billed seconds of one task with this timeout."""
    return max(MIN_BILLED_S, watchdog_minutes(timeout_s) * 60 + BOOT_MARGIN_S)


def data_volume_hourly_usd(volume: DataVolume) -> float:
    """USD per hour of one gp3 data volume: size, plus IOPS and throughput above the
    free baseline (3,000 IOPS, 125 MiB/s)."""
    month = (
        volume.size_gib * GP3_GB_MONTH_USD
        + max(0, volume.iops - GP3_FREE_IOPS) * GP3_IOPS_MONTH_USD
        + max(0, volume.throughput_mibps - GP3_FREE_MIBPS) * GP3_MIBPS_MONTH_USD
    )
    return month / GP3_MONTH_HOURS


def hourly_price(
    price: InstancePrice | None,
    market: str,
    spot_max_price: float | None = None,
    fallback_on_demand: bool = False,
) -> float | None:
    """USD per hour of one task in `market`.

    Spot is priced at the current spot price. When that is unknown, the most a spot
    instance can cost stands in: --spot-max-price, else on-demand (the default maximum
    price). With --spot-fallback on-demand the task may end up on-demand, so it is priced
    on-demand.
    """
    if price is None:
        return None
    if market != "spot" or fallback_on_demand:
        return price.on_demand
    if price.spot_current is not None:
        return price.spot_current
    return spot_max_price if spot_max_price is not None else price.on_demand


def estimate_plan(plan: Plan, source: PriceSource) -> CostEstimate:
    """Price every task of `plan` (one `prices` call for all its types).

    An AWS error while reading prices leaves them unknown, with the reason: an estimate
    must never stop a dry run. Errors the user must fix (an unwritable cache) propagate.
    """
    types = sorted({t.instance_type for t in plan.tasks})
    opts = plan.options
    market = opts.market
    max_price = float(opts.spot_max_price) if opts.spot_max_price else None
    fallback = opts.spot_fallback == "on-demand"
    reason: str | None = None
    price_set: PriceSet | None = None
    try:
        price_set = source.prices(types, plan.region)
    except (PricesUnavailable, AwsConfigError) as exc:
        reason = str(exc)
    prices = price_set.instances if price_set else {}
    free = price_set is not None and price_set.source == SANDBOX_SOURCE
    volume_usd = 0.0 if free else data_volume_hourly_usd(opts.data_volume)
    tasks = tuple(
        TaskCost(
            task_id=t.task_id,
            instance_type=t.instance_type,
            market=market,
            vcpus=t.held_vcpus,
            instances=t.instances,
            seconds=billed_seconds(task_timeout_s(opts, t)),
            hourly_usd=hourly_price(prices.get(t.instance_type), market, max_price, fallback),
            volume_hourly_usd=volume_usd if t.benchmark == "storage" else 0.0,
            burst_s=t.burst_s,
            benchmark=t.benchmark,
        )
        for t in plan.tasks
    )
    if reason is None and any(t.hourly_usd is None for t in tasks):
        reason = f"no {market} price listed"
    minutes = billed_seconds(opts.timeout_s) / 60
    bursts = sorted({t.burst_s for t in plan.tasks if t.burst_s > 0 and t.benchmark == "storage"})
    net_bursts = sorted(
        {t.burst_s for t in plan.tasks if t.burst_s > 0 and t.benchmark == "network"}
    )
    return CostEstimate(
        region=plan.region,
        tasks=tasks,
        as_of=price_set.as_of if price_set else None,
        source=price_set.source if price_set else "none",
        basis=(
            f"upper bound: each task billed {minutes:.0f} min, its timeout plus "
            f"{BOOT_MARGIN_S // 60} min boot"
            + (
                f"; storage tasks' gp3 data volume {opts.data_volume.size_gib} GiB, "
                f"{opts.data_volume.iops} IOPS, {opts.data_volume.throughput_mibps} MiB/s at "
                f"{volume_usd:.4f} USD/h (us-east-1 list prices)"
                if any(t.benchmark == "storage" for t in plan.tasks)
                else ""
            )
            + (
                "; storage tasks' EBS burst run adds "
                + "/".join(f"{b / 60:.0f}" for b in bursts)
                + " min (--param storage.burst_s=0 skips it)"
                if bursts
                else ""
            )
            + (
                "; network tasks' burst run ('Up to' types, both instances) adds "
                + "/".join(f"{b / 60:.0f}" for b in net_bursts)
                + " min (--param network.burst_s=0 skips it)"
                if net_bursts
                else ""
            )
        ),
        unknown_reason=reason,
    )


def check_max_cost_value(max_cost: float | None) -> None:
    """--max-cost must be a positive, finite amount of USD (checked before any call)."""
    if max_cost is not None and (not math.isfinite(max_cost) or max_cost <= 0):
        raise UserError(f"--max-cost must be a positive amount in USD, got {max_cost}")


class CostTooHigh(UserError):
    """The plan's upper-bound cost is above --max-cost, or cannot be known."""


def enforce_max_cost(estimate: CostEstimate, max_cost: float) -> None:
    """Refuse a plan that may cost more than `max_cost`, or whose cost is unknown."""
    total = estimate.total_usd
    if total is None:
        raise CostTooHigh(
            f"--max-cost {max_cost:.2f} USD cannot be checked: price unknown for "
            f"{', '.join(estimate.unknown_types)} ({estimate.unknown_reason}); "
            "drop --max-cost to run without a cost ceiling"
        )
    if total > max_cost:
        raise CostTooHigh(
            f"estimated cost up to {total:.2f} USD is above --max-cost {max_cost:.2f} USD "
            f"({len(estimate.tasks)} tasks, {estimate.basis}); "
            "use fewer types or samples, or a shorter --timeout"
        )
