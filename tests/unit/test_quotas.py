"""vCPU quotas: the class of each type, the plan-time check and the VcpuPool.

The pool is tested with real threads; the tests synchronise on events and on the pool's
own counters (never on elapsed time), so they assert order and invariants, not timings.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import pytest
from tests.factories import offline_plan

from instbench.aws.policy import audit, permission_for
from instbench.aws.quotas import (
    QUOTA_CLASSES,
    StaticQuotaSource,
    Usage,
    pool_key,
    quota_class,
)
from instbench.errors import QuotaExceeded, UserError
from instbench.fleet.capacity import (
    QuotaTooSmall,
    VcpuPool,
    plan_limits,
    pool_for_plan,
)
from instbench.fleet.plan import FleetOptions, Plan

WAIT_S = 30.0
"""Generous deadline for a condition that must become true (a hang guard, not a timing)."""


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.005)


class _Acquirer(threading.Thread):
    """Calls pool.acquire in a thread and records the outcome."""

    def __init__(self, pool: VcpuPool, key: str, vcpus: int, order: list[str], name: str):
        super().__init__(daemon=True)
        self.pool, self.key, self.vcpus, self.order, self.label = pool, key, vcpus, order, name
        self.stop = threading.Event()
        self.done = threading.Event()
        self.result: bool | None = None

    def run(self) -> None:
        self.result = self.pool.acquire(self.key, self.vcpus, self.stop)
        self.order.append(self.label)
        self.done.set()


def _start_waiting(pool: VcpuPool, acquirer: _Acquirer) -> None:
    """Start a thread and return once its acquire is queued (it must not fit yet)."""
    before = pool.waiting()
    acquirer.start()
    _until(lambda: pool.waiting() == before + 1, f"{acquirer.label} waits")


# ------------------------------------------------------------------- classification


@pytest.mark.parametrize(
    ("itype", "cls"),
    [
        ("m7i.large", "Standard"),
        ("c7gn.large", "Standard"),
        ("r8g.large", "Standard"),
        ("t4g.nano", "Standard"),
        ("im4gn.large", "Standard"),
        ("is4gen.large", "Standard"),
        ("z1d.large", "Standard"),
        ("a1.large", "Standard"),
        ("d3.xlarge", "Standard"),
        ("g4dn.xlarge", "G and VT"),
        ("gr6.4xlarge", "G and VT"),
        ("vt1.3xlarge", "G and VT"),
        ("p5.48xlarge", "P"),
        ("inf2.xlarge", "Inf"),
        ("trn1.2xlarge", "Trn"),
        ("dl1.24xlarge", "DL"),
        ("f1.2xlarge", "F"),
        ("x2gd.large", "X"),
        ("hpc7g.16xlarge", "HPC"),
        ("u-6tb1.56xlarge", "High Memory"),
    ],
)
def test_types_map_to_their_quota_class(itype: str, cls: str) -> None:
    found = quota_class(itype)
    assert found is not None and found.name == cls


def test_codes_per_market() -> None:
    std = QUOTA_CLASSES["Standard"]
    assert (std.code("on-demand"), std.code("spot")) == ("L-1216C47A", "L-34B43A08")
    g = QUOTA_CLASSES["G and VT"]
    assert (g.code("on-demand"), g.code("spot")) == ("L-DB2E81BA", "L-3819A6DF")
    assert QUOTA_CLASSES["P"].code("spot") == "L-7212CCBC"
    assert QUOTA_CLASSES["HPC"].code("spot") is None  # no spot market for HPC types
    assert std.code("reserved") is None
    codes = [c.on_demand_code for c in QUOTA_CLASSES.values()]
    codes += [c.spot_code for c in QUOTA_CLASSES.values() if c.spot_code]
    assert len(codes) == len(set(codes))


def test_pool_keys() -> None:
    assert pool_key("m7i.large", "on-demand") == "Standard/on-demand"
    assert pool_key("c7g.large", "spot") == "Standard/spot"
    assert pool_key("g5.xlarge", "spot") == "G and VT/spot"
    assert quota_class("mac2.metal") is None  # dedicated hosts: no vCPU quota
    assert pool_key("mac2.metal", "on-demand") == "mac2.metal/on-demand"


# --------------------------------------------------------------------------- plan check


def test_plan_limits_pass_and_record_the_quota() -> None:
    source = StaticQuotaSource({("Standard", "on-demand"): 64})
    limits = plan_limits({"m7i.large": 2, "g5.xlarge": 4}, "on-demand", source, None, "us-east-1")
    assert limits == {"Standard/on-demand": 64, "G and VT/on-demand": None}


def test_a_type_over_its_quota_fails_naming_what_it_needs() -> None:
    source = StaticQuotaSource({("Standard", "on-demand"): 64})
    with pytest.raises(QuotaTooSmall) as err:
        plan_limits({"m7i.48xlarge": 192}, "on-demand", source, None, "us-east-1")
    message = str(err.value)
    assert "m7i.48xlarge needs 192 vCPUs" in message
    assert "L-1216C47A" in message and "is 64" in message and "us-east-1" in message
    assert "\n" not in message
    assert isinstance(err.value, UserError)  # exit 2


def test_spot_quota_is_checked_for_spot_runs() -> None:
    source = StaticQuotaSource({("Standard", "on-demand"): 1000, ("Standard", "spot"): 8})
    plan_limits({"m7i.4xlarge": 16}, "on-demand", source, None, "eu-west-1")
    with pytest.raises(QuotaTooSmall, match="L-34B43A08"):
        plan_limits({"m7i.4xlarge": 16}, "spot", source, None, "eu-west-1")


def test_the_budget_binds_when_it_is_smaller_than_the_quota() -> None:
    source = StaticQuotaSource({("Standard", "on-demand"): 64})
    with pytest.raises(QuotaTooSmall, match=r"needs 32 vCPUs but --vcpu-budget is 16"):
        plan_limits({"m7i.8xlarge": 32}, "on-demand", source, 16, "us-east-1")
    with pytest.raises(QuotaTooSmall, match="L-1216C47A"):
        plan_limits({"m7i.24xlarge": 96}, "on-demand", source, 128, "us-east-1")
    with pytest.raises(UserError, match="at least 1"):
        plan_limits({"m7i.large": 2}, "on-demand", source, 0, "us-east-1")


def test_instances_outside_the_run_take_room_from_the_quota() -> None:
    source = StaticQuotaSource({("Standard", "on-demand"): 64, ("Standard", "spot"): 8})
    held = {"Standard/on-demand": Usage(48, 3), "Standard/spot": Usage(8, 1)}
    asked: list[int] = []

    def in_use() -> dict[str, Usage]:
        asked.append(1)
        return held

    fits = {"m7i.4xlarge": 16, "c7i.2xlarge": 8}
    limits = plan_limits(fits, "on-demand", source, None, "us-east-1", in_use)
    assert limits == {"Standard/on-demand": 16}
    with pytest.raises(QuotaTooSmall) as err:
        plan_limits({"m7i.8xlarge": 32, "c7i.8xlarge": 32}, "on-demand", source, 64, "x-1", in_use)
    assert str(err.value) == (
        "m7i.8xlarge needs 32 vCPUs but the Running On-Demand Standard (A, C, D, H, I, M, R, T, "
        "Z) instances quota (L-1216C47A) in x-1 is 64, of which 48 are held by 3 running "
        "instances outside this run: it cannot run now; end those instances, request a quota "
        "increase, or drop the type"
    )
    assert asked == [1, 1]  # once per plan, however many types share the class
    # No quota known, nothing to subtract from: the instances are not even listed.
    asked.clear()
    plan_limits({"m7i.large": 2}, "on-demand", StaticQuotaSource(), None, "us-east-1", in_use)
    assert asked == []


# --------------------------------------------------------------------------------- pool


def test_acquire_and_release_within_limits() -> None:
    pool = VcpuPool({"Standard/on-demand": 8}, budget=None)
    stop = threading.Event()
    assert pool.acquire("Standard/on-demand", 4, stop)
    assert pool.acquire("Standard/on-demand", 4, stop)
    assert pool.held("Standard/on-demand") == 8 and pool.held() == 8
    pool.release("Standard/on-demand", 4)
    assert pool.held() == 4
    with pytest.raises(ValueError, match="holds 4"):
        pool.release("Standard/on-demand", 5)
    with pytest.raises(ValueError):
        pool.acquire("Standard/on-demand", 0, stop)


def test_a_request_that_can_never_fit_fails_at_once() -> None:
    pool = VcpuPool({"Standard/on-demand": 8}, budget=6)
    assert pool.max_fit("Standard/on-demand") == 6
    with pytest.raises(QuotaExceeded):
        pool.acquire("Standard/on-demand", 7, threading.Event())
    assert pool.waiting() == 0


def test_a_waiting_request_runs_when_room_is_released() -> None:
    pool = VcpuPool({"Standard/on-demand": 4})
    order: list[str] = []
    assert pool.acquire("Standard/on-demand", 4, threading.Event())
    waiter = _Acquirer(pool, "Standard/on-demand", 2, order, "waiter")
    _start_waiting(pool, waiter)
    assert not waiter.done.is_set()
    pool.release("Standard/on-demand", 4)
    assert waiter.done.wait(WAIT_S)
    assert waiter.result is True and pool.held() == 2


def test_big_requests_are_not_overtaken_by_small_ones() -> None:
    """FIFO: a small request that would fit now still waits behind an earlier big one."""
    key = "Standard/on-demand"
    pool = VcpuPool({key: 8})
    order: list[str] = []
    stop = threading.Event()
    assert pool.acquire(key, 6, stop)  # 2 free
    big = _Acquirer(pool, key, 8, order, "big")
    _start_waiting(pool, big)
    small = _Acquirer(pool, key, 2, order, "small")
    _start_waiting(pool, small)  # would fit in the 2 free vCPUs, but big came first
    assert pool.held(key) == 6 and order == []
    pool.release(key, 6)
    assert big.done.wait(WAIT_S)
    assert order == ["big"] and not small.done.is_set()
    pool.release(key, 8)
    assert small.done.wait(WAIT_S)
    assert order == ["big", "small"]
    assert big.result is True and small.result is True


def test_other_quota_classes_are_not_blocked_without_a_budget() -> None:
    pool = VcpuPool({"G and VT/on-demand": 4, "Standard/on-demand": 8})
    order: list[str] = []
    assert pool.acquire("G and VT/on-demand", 4, threading.Event())
    gpu = _Acquirer(pool, "G and VT/on-demand", 4, order, "gpu")
    _start_waiting(pool, gpu)
    # Standard has its own quota: it goes ahead of the waiting G request.
    assert pool.acquire("Standard/on-demand", 8, threading.Event())
    assert order == [] and pool.waiting() == 1
    pool.release("G and VT/on-demand", 4)
    assert gpu.done.wait(WAIT_S) and gpu.result is True


def test_the_budget_is_shared_across_classes_in_arrival_order() -> None:
    pool = VcpuPool({"G and VT/on-demand": 64, "Standard/on-demand": 64}, budget=8)
    order: list[str] = []
    assert pool.acquire("Standard/on-demand", 6, threading.Event())  # 2 left in the budget
    gpu = _Acquirer(pool, "G and VT/on-demand", 8, order, "gpu")
    _start_waiting(pool, gpu)
    std = _Acquirer(pool, "Standard/on-demand", 2, order, "std")
    _start_waiting(pool, std)  # fits the budget and its quota, but gpu reserved the budget
    pool.release("Standard/on-demand", 6)
    assert gpu.done.wait(WAIT_S)
    assert order == ["gpu"]
    pool.release("G and VT/on-demand", 8)
    assert std.done.wait(WAIT_S)
    assert order == ["gpu", "std"]


def test_stop_ends_a_wait_and_hands_its_place_on() -> None:
    key = "Standard/on-demand"
    pool = VcpuPool({key: 8})
    order: list[str] = []
    assert pool.acquire(key, 6, threading.Event())
    big = _Acquirer(pool, key, 8, order, "big")
    _start_waiting(pool, big)
    small = _Acquirer(pool, key, 2, order, "small")
    _start_waiting(pool, small)
    big.stop.set()
    pool.interrupt()
    assert big.done.wait(WAIT_S) and big.result is False
    # big held nothing and no longer reserves the quota: small fits in the 2 free vCPUs.
    assert small.done.wait(WAIT_S) and small.result is True
    assert pool.held(key) == 8 and pool.waiting() == 0


def test_stop_is_noticed_without_interrupt() -> None:
    pool = VcpuPool({"Standard/on-demand": 2})
    assert pool.acquire("Standard/on-demand", 2, threading.Event())
    waiter = _Acquirer(pool, "Standard/on-demand", 2, [], "waiter")
    _start_waiting(pool, waiter)
    waiter.stop.set()  # noticed at the next poll (VcpuPool.poll_s)
    assert waiter.done.wait(WAIT_S) and waiter.result is False


def test_many_threads_never_exceed_the_limits_and_all_finish() -> None:
    limits = {"Standard/on-demand": 16, "G and VT/on-demand": 8}
    budget = 20
    pool = VcpuPool(limits, budget=budget)
    lock = threading.Lock()
    in_use: dict[str, int] = {k: 0 for k in limits}
    violations: list[str] = []
    done: list[int] = []
    rng = random.Random(4)
    jobs = [(rng.choice(list(limits)), rng.choice([1, 2, 4, 8])) for _ in range(120)]
    start = threading.Barrier(8)

    def worker(mine: list[tuple[str, int]]) -> None:
        start.wait()
        stop = threading.Event()
        for key, vcpus in mine:
            assert pool.acquire(key, vcpus, stop)
            with lock:
                in_use[key] += vcpus
                if in_use[key] > limits[key] or sum(in_use.values()) > budget:
                    violations.append(f"{key}={in_use[key]} total={sum(in_use.values())}")
            time.sleep(0)  # let others run while this is held
            with lock:
                in_use[key] -= vcpus
                done.append(vcpus)
            pool.release(key, vcpus)

    threads = [threading.Thread(target=worker, args=(jobs[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    assert not any(t.is_alive() for t in threads)
    assert violations == []
    assert len(done) == len(jobs)
    assert pool.held() == 0 and pool.waiting() == 0


# ---------------------------------------------------------------------- pool_for_plan


def _plan(types: dict[str, int], budget: int | None, market: str = "on-demand") -> Plan:
    opts = FleetOptions(
        instance_types=list(types),
        benchmarks=("stream",),
        bucket="b",
        vcpu_budget=budget,
        market=market,
    )
    return offline_plan(
        opts, types, vcpu_limits={"Standard/on-demand": 32, "G and VT/on-demand": None}
    )


def test_pool_for_plan_uses_the_plan_limits_and_budget() -> None:
    pool = pool_for_plan(_plan({"m7i.large": 2, "g5.xlarge": 4}, budget=24))
    assert pool.limit("Standard/on-demand") == 32
    assert pool.limit("G and VT/on-demand") is None
    assert pool.budget == 24
    assert pool.max_fit("Standard/on-demand") == 24


def test_pool_for_plan_can_read_a_source_for_fallback_markets() -> None:
    source = StaticQuotaSource({("Standard", "spot"): 8, ("Standard", "on-demand"): 48})
    plan = _plan({"m7i.large": 2}, budget=None, market="spot")
    pool = pool_for_plan(plan, source, markets=("spot", "on-demand"))
    assert pool.limit("Standard/spot") == 8
    assert pool.limit("Standard/on-demand") == 48
    assert pool.budget is None


# ------------------------------------------------------------------------------ policy


def test_the_policy_authorises_the_quota_calls_in_botocore_spelling() -> None:
    """The recorder sees `service-quotas:...` (botocore), IAM says `servicequotas:...`."""
    for operation in ("GetServiceQuota", "GetAWSDefaultServiceQuota"):
        perm = permission_for(f"service-quotas:{operation}")
        assert perm is not None and perm.action == f"servicequotas:{operation}"
        assert perm.unobserved  # the sandbox has no quotas: the audit cannot see the calls
    report = audit({"service-quotas:GetServiceQuota": ["instbench.aws.quotas"]})
    assert report.missing == {}
