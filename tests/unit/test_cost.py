"""Cost estimate of a plan: upper-bound durations, prices per market, --max-cost.

Prices come from small in-test `PriceSource`s; the AWS source on recorded Pricing API
responses is exercised in tests/integration/test_cost_estimate.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from rich.console import Console
from tests.factories import TablePriceSource, offline_plan

from instbench.aws.pricing import unavailable_reason
from instbench.cli import run_cmd
from instbench.context import Context
from instbench.errors import PricesUnavailable, UserError
from instbench.fleet import cost
from instbench.fleet.plan import FleetOptions, Plan
from instbench.prices import InstancePrice, PriceSet

DAY = date(2025, 3, 5)


class _Denied:
    """A price source over AWS that was denied: it says so with PricesUnavailable."""

    def prices(self, instance_types: Iterable[str], region: str) -> PriceSet:
        denied = ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetProducts"
        )
        raise PricesUnavailable(unavailable_reason(denied))


def _plan(
    types: list[str], samples: int = 1, timeout_s: int = 20 * 60, market: str = "on-demand"
) -> Plan:
    opts = FleetOptions(
        instance_types=types,
        benchmarks=("stream",),
        bucket="b",
        samples=samples,
        timeout_s=timeout_s,
        market=market,
    )
    return offline_plan(opts, samples=samples)


def test_billed_seconds_is_the_watchdog_plus_boot() -> None:
    assert cost.billed_seconds(20 * 60) == 20 * 60 + cost.BOOT_MARGIN_S
    assert cost.billed_seconds(90) == 2 * 60 + cost.BOOT_MARGIN_S  # watchdog rounds up
    assert cost.billed_seconds(1) >= cost.MIN_BILLED_S


def test_hourly_price_per_market() -> None:
    both = InstancePrice(on_demand=0.1, spot_current=0.03)
    assert cost.hourly_price(both, "on-demand") == 0.1
    assert cost.hourly_price(both, "spot") == 0.03
    # Spot unknown: bounded by on-demand (the default spot maximum price).
    assert cost.hourly_price(InstancePrice(on_demand=0.1), "spot") == 0.1
    assert cost.hourly_price(InstancePrice(spot_current=0.03), "on-demand") is None
    assert cost.hourly_price(None, "on-demand") is None
    assert cost.hourly_price(InstancePrice(on_demand=0.1), "spot", spot_max_price=0.05) == 0.05
    # Spot with on-demand fallback: the task may run on-demand.
    assert cost.hourly_price(both, "spot", fallback_on_demand=True) == 0.1


def test_estimate_is_price_times_upper_bound_per_task() -> None:
    source = TablePriceSource(
        {"m7i.large": InstancePrice(on_demand=0.1008), "c7g.large": InstancePrice(on_demand=0.0725)}
    )
    plan = _plan(["m7i.large", "c7g.large"], samples=2, timeout_s=1800)
    est = cost.estimate_plan(plan, source)
    assert source.asked == [["c7g.large", "m7i.large"]]  # one call for all types
    hours = (1800 + cost.BOOT_MARGIN_S) / 3600
    assert est.total_usd == pytest.approx(2 * hours * (0.1008 + 0.0725))
    assert [t.seconds for t in est.tasks] == [1800 + cost.BOOT_MARGIN_S] * 4
    assert est.as_of == DAY and est.source == "test prices"
    assert est.unknown_types == [] and est.unknown_reason is None
    assert "upper bound" in est.basis and "32 min" in est.basis


def test_spot_runs_use_spot_prices() -> None:
    source = TablePriceSource({"m7i.large": InstancePrice(on_demand=0.1, spot_current=0.04)})
    est = cost.estimate_plan(_plan(["m7i.large"], market="spot"), source)
    assert est.tasks[0].hourly_usd == 0.04 and est.tasks[0].market == "spot"
    plan = _plan(["m7i.large"], market="spot")
    plan.options.spot_fallback = "on-demand"
    assert cost.estimate_plan(plan, source).tasks[0].hourly_usd == 0.1


def test_unlisted_price_is_unknown_not_zero() -> None:
    source = TablePriceSource({"m7i.large": InstancePrice(on_demand=0.1)})
    est = cost.estimate_plan(_plan(["m7i.large", "c7g.large"]), source)
    assert est.total_usd is None
    assert est.unknown_types == ["c7g.large"]
    assert est.unknown_reason == "no on-demand price listed"
    assert est.known_usd == pytest.approx(0.1 * cost.billed_seconds(1200) / 3600)


def test_an_aws_error_leaves_prices_unknown_with_the_reason() -> None:
    est = cost.estimate_plan(_plan(["m7i.large"]), _Denied())
    assert est.total_usd is None and est.as_of is None
    assert est.unknown_reason is not None and "AccessDeniedException" in est.unknown_reason


def test_max_cost_refuses_a_plan_above_it() -> None:
    source = TablePriceSource({"m7i.large": InstancePrice(on_demand=1.0)})
    est = cost.estimate_plan(_plan(["m7i.large"], samples=3, timeout_s=3600), source)
    cost.enforce_max_cost(est, 10.0)
    with pytest.raises(cost.CostTooHigh) as err:
        cost.enforce_max_cost(est, 3.0)
    message = str(err.value)
    assert "3.10 USD is above --max-cost 3.00 USD" in message and "\n" not in message
    assert isinstance(err.value, UserError)


def test_max_cost_refuses_when_prices_are_unknown() -> None:
    est = cost.estimate_plan(_plan(["m7i.large"]), _Denied())
    with pytest.raises(cost.CostTooHigh, match=r"cannot be checked: price unknown for m7i.large"):
        cost.enforce_max_cost(est, 100.0)


@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf")])
def test_max_cost_value_must_be_a_positive_amount(value: float) -> None:
    with pytest.raises(UserError, match="positive amount"):
        cost.check_max_cost_value(value)


def test_the_sandbox_bills_nothing() -> None:
    est = cost.estimate_plan(_plan(["m7i.large", "c7g.large"]), cost.SandboxPrices())
    assert est.total_usd == 0.0 and est.free
    cost.enforce_max_cost(est, 0.01)


def test_price_cache_lives_under_the_user_cache_dir(tmp_path: Path) -> None:
    assert cost.default_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == (
        tmp_path / "instbench" / "prices"
    )
    assert cost.default_cache_dir({}).parts[-3:] == (".cache", "instbench", "prices")


def _shown(plan: Plan) -> str:
    console = Console(record=True, width=200)
    run_cmd._print_cost(Context(console=console), None, plan)  # type: ignore[arg-type]
    return console.export_text()


def test_dry_run_says_price_unknown_and_why() -> None:
    plan = _plan(["m7i.large", "c7g.large"])
    plan.cost = cost.estimate_plan(
        plan, TablePriceSource({"m7i.large": InstancePrice(on_demand=0.1)})
    )
    text = _shown(plan)
    assert "price unknown" in text
    assert "estimated cost: price unknown for c7g.large (no on-demand price listed)" in text
    assert "the priced tasks cost at most 0.0367 USD" in text


def test_dry_run_shows_the_total_and_the_price_date() -> None:
    plan = _plan(["m7i.large"], samples=2)
    plan.vcpu_limits = {"Standard/on-demand": 64}
    plan.cost = cost.estimate_plan(
        plan, TablePriceSource({"m7i.large": InstancePrice(on_demand=0.1)})
    )
    text = _shown(plan)
    assert "0.1000" in text and "22 min" in text
    assert "estimated cost: at most 0.0733 USD in all (upper bound" in text
    assert "prices of 2025-03-05 from test prices" in text
    assert "vCPU limits: Standard/on-demand quota 64" in text
