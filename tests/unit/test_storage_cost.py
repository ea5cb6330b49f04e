"""The storage benchmark's gp3 data volume in the cost estimate and --max-cost."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tests.factories import TablePriceSource

from instbench.aws.launch import DataVolume
from instbench.fleet import cost
from instbench.fleet.plan import FleetOptions, Placement, Plan, Task
from instbench.prices import InstancePrice


def _plan(benchmarks: tuple[str, ...], volume: DataVolume) -> Plan:
    opts = FleetOptions(
        instance_types=["m6gd.large"],
        benchmarks=benchmarks,
        bucket="b",
        timeout_s=1800,
        data_volume=volume,
    )
    tasks = [Task(f"m6gd.large-{b}-0", "m6gd.large", b, 0, "arm64", "ami-1", 2) for b in benchmarks]
    return Plan(
        run_id="r",
        region="us-east-1",
        tasks=tasks,
        placements=[Placement("us-east-1a", None)],
        vpc_id="vpc-1",
        security_group=None,
        images={"arm64": "ami-1"},
        expires_at=datetime(2025, 3, 5, tzinfo=UTC),
        options=opts,
    )


def test_gp3_hourly_price_counts_only_what_is_above_the_free_baseline() -> None:
    base = DataVolume(size_gib=100, iops=3000, throughput_mibps=125)
    assert cost.data_volume_hourly_usd(base) == pytest.approx(100 * 0.08 / 720)
    top = DataVolume(size_gib=100, iops=16000, throughput_mibps=1000)
    month = 100 * 0.08 + 13000 * 0.005 + 875 * 0.04
    assert cost.data_volume_hourly_usd(top) == pytest.approx(month / 720)


def test_storage_tasks_pay_for_their_volume_and_others_do_not() -> None:
    volume = DataVolume()
    plan = _plan(("stream", "storage"), volume)
    est = cost.estimate_plan(plan, TablePriceSource({"m6gd.large": InstancePrice(on_demand=0.1)}))
    hours = cost.billed_seconds(1800) / 3600
    by_task = {t.task_id: t for t in est.tasks}
    assert by_task["m6gd.large-stream-0"].cost_usd == pytest.approx(0.1 * hours)
    storage = by_task["m6gd.large-storage-0"]
    assert storage.cost_usd == pytest.approx((0.1 + cost.data_volume_hourly_usd(volume)) * hours)
    assert "gp3 data volume" in est.basis
    # The volume alone can push a plan over --max-cost.
    just_instances = 2 * 0.1 * hours
    with pytest.raises(cost.CostTooHigh):
        cost.enforce_max_cost(est, just_instances * 1.01)


def test_sandbox_volume_is_free() -> None:
    plan = _plan(("storage",), DataVolume())
    est = cost.estimate_plan(plan, cost.SandboxPrices())
    assert est.total_usd == 0.0
