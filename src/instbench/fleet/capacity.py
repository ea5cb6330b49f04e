"""vCPU room for a run: the plan's check against quotas and budget, and the pool that keeps
a running fleet under them.

The quotas themselves, and what the region's other instances hold, are read from AWS by
`aws.quotas` (Service Quotas, DescribeInstances); this module decides with those figures
and never calls AWS. See `aws.quotas` for why EC2's vCPU limits need a pool at all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from instbench.aws.quotas import (
    QuotaSource,
    ServiceQuotasSource,
    StaticQuotaSource,
    Usage,
    pool_key,
    quota_class,
)
from instbench.aws.session import AwsSession
from instbench.errors import QuotaExceeded, UserError
from instbench.fleet.model import FleetOptions, Plan

log = logging.getLogger(__name__)


def default_source(session: AwsSession, opts: FleetOptions) -> QuotaSource:
    """Service Quotas for AWS; no limits for the sandbox (moto has no EC2 quotas)."""
    if opts.collection_method == "sandbox":
        return StaticQuotaSource()
    return ServiceQuotasSource(session)


# --------------------------------------------------------------------------- plan check


class QuotaTooSmall(UserError):
    """A type needs more vCPUs than its quota (or the budget) will ever allow."""


@dataclass(frozen=True)
class Limit:
    """The tightest vCPU limit on one pool key, what imposes it, and the verdict with what
    to do about it (for messages)."""

    vcpus: int
    what: str
    hint: str


def plan_limits(
    vcpus_by_type: Mapping[str, int],
    market: str,
    source: QuotaSource,
    budget: int | None,
    region: str,
    in_use: Callable[[], Mapping[str, Usage]] | None = None,
) -> dict[str, int | None]:
    """Room per pool key for the types of a plan (quota minus `in_use()`, asked once and only
    when some quota is known; None: unknown); UserError for a type that does not fit under
    min(that room, budget), naming what it needs and what binds.

    Checked at plan time so that a run never launches half its types and then waits
    forever for room that cannot exist.
    """
    if budget is not None and budget < 1:
        raise UserError("--vcpu-budget must be at least 1")
    limits: dict[str, int | None] = {}
    used: Mapping[str, Usage] | None = None
    for name, vcpus in vcpus_by_type.items():
        cls = quota_class(name)
        key = pool_key(name, market)
        quota = source.vcpu_limit(cls, market) if cls is not None else None
        binding: Limit | None = None
        if quota is not None and cls is not None:
            if used is None:
                used = in_use() if in_use is not None else {}
            held = used.get(key, Usage(0, 0))
            what = f"the {cls.quota_name(market)} quota ({cls.code(market)}) in {region} is {quota}"
            hint = "it can never run; request a quota increase in Service Quotas or drop the type"
            if held.vcpus:
                plural = "" if held.instances == 1 else "s"
                what += (
                    f", of which {held.vcpus} are held by {held.instances} running "
                    f"instance{plural} outside this run"
                )
                hint = (
                    "it cannot run now; end those instances, request a quota increase, "
                    "or drop the type"
                )
            quota = max(0, quota - held.vcpus)
            binding = Limit(quota, what, hint)
        limits[key] = quota
        if budget is not None and (binding is None or budget < binding.vcpus):
            binding = Limit(
                budget,
                f"--vcpu-budget is {budget}",
                "it can never run; raise the budget or drop the type",
            )
        if binding is not None and vcpus > binding.vcpus:
            raise QuotaTooSmall(f"{name} needs {vcpus} vCPUs but {binding.what}: {binding.hint}")
    return limits


# --------------------------------------------------------------------------------- pool


class _Waiter:
    __slots__ = ("granted", "key", "vcpus")

    def __init__(self, key: str, vcpus: int) -> None:
        self.key = key
        self.vcpus = vcpus
        self.granted = False


_GLOBAL = "\0budget"


class VcpuPool:
    """vCPUs a run may hold at once, per quota key and in all; thread-safe.

    `limits` maps a pool key (`pool_key`) to its vCPU limit (None: no limit; keys not in
    the mapping have none either); `budget` caps the sum over all keys (None: no cap).

    Fairness: first come, first served per resource. Requests are considered in arrival
    order; a request that does not fit reserves the resources it is short of (its key's
    quota, the global budget), and no later request may take from a reserved resource
    until the earlier one is served. So a 192-vCPU type waiting for room is never
    overtaken by a stream of 2-vCPU types on the same quota (no starvation), while a
    request on another quota with room to spare, and that does not need a reserved
    budget, goes ahead (no needless head-of-line blocking).
    """

    poll_s = 0.25
    """How often a waiting `acquire` re-checks its stop event if nobody calls `interrupt`."""

    def __init__(self, limits: Mapping[str, int | None], budget: int | None = None) -> None:
        if budget is not None and budget < 1:
            raise ValueError("budget must be at least 1")
        self._limits = {k: v for k, v in limits.items() if v is not None}
        self.budget = budget
        self._held: dict[str, int] = {}
        self._queue: list[_Waiter] = []
        self._cond = threading.Condition()

    def limit(self, key: str) -> int | None:
        """The quota limit on `key` (None: none)."""
        return self._limits.get(key)

    def held(self, key: str | None = None) -> int:
        """vCPUs held now, on `key` or in all."""
        with self._cond:
            if key is None:
                return sum(self._held.values())
            return self._held.get(key, 0)

    def waiting(self) -> int:
        """How many `acquire` calls are waiting for room."""
        with self._cond:
            return len(self._queue)

    def max_fit(self, key: str) -> int | None:
        """The most vCPUs one request on `key` can ever get (None: unlimited)."""
        bounds = [b for b in (self._limits.get(key), self.budget) if b is not None]
        return min(bounds) if bounds else None

    def acquire(self, key: str, vcpus: int, stop: threading.Event) -> bool:
        """Block until `vcpus` fit under `key`'s limit and the budget, then hold them.

        True: the vCPUs are held, give them back with `release`. False: `stop` was set
        first, nothing is held. A request that can never fit raises QuotaExceeded at once
        (the plan refuses such types, so this is a caller's bug or a changed quota).
        """
        if vcpus < 1:
            raise ValueError(f"vcpus must be at least 1, got {vcpus}")
        most = self.max_fit(key)
        if most is not None and vcpus > most:
            raise QuotaExceeded(f"{vcpus} vCPUs on {key} can never fit under {most}")
        waiter = _Waiter(key, vcpus)
        with self._cond:
            self._queue.append(waiter)
            self._dispatch()
            while not waiter.granted:
                if stop.is_set():
                    self._queue.remove(waiter)
                    self._dispatch()  # it may have been reserving room others can use
                    self._cond.notify_all()
                    return False
                self._cond.wait(self.poll_s)
            return True

    def release(self, key: str, vcpus: int) -> None:
        """Give back vCPUs taken with `acquire` (once per successful acquire)."""
        with self._cond:
            held = self._held.get(key, 0)
            if vcpus < 1 or vcpus > held:
                raise ValueError(f"release of {vcpus} vCPUs on {key}, which holds {held}")
            self._held[key] = held - vcpus
            self._dispatch()
            self._cond.notify_all()

    def interrupt(self) -> None:
        """Wake every waiting `acquire` now, so that those whose stop event is set return."""
        with self._cond:
            self._cond.notify_all()

    def _dispatch(self) -> None:
        """Grant, in arrival order, every waiter that fits and is not behind a reservation.

        Called with the lock held.
        """
        reserved: set[str] = set()
        total = sum(self._held.values())
        granted_any = False
        for waiter in list(self._queue):
            needs = self._needs(waiter.key)
            short = set()
            limit = self._limits.get(waiter.key)
            if limit is not None and self._held.get(waiter.key, 0) + waiter.vcpus > limit:
                short.add(waiter.key)
            if self.budget is not None and total + waiter.vcpus > self.budget:
                short.add(_GLOBAL)
            if short or needs & reserved:
                reserved |= short
                continue
            self._held[waiter.key] = self._held.get(waiter.key, 0) + waiter.vcpus
            total += waiter.vcpus
            waiter.granted = True
            self._queue.remove(waiter)
            granted_any = True
        if granted_any:
            self._cond.notify_all()

    def _needs(self, key: str) -> set[str]:
        needs: set[str] = set()
        if key in self._limits:
            needs.add(key)
        if self.budget is not None:
            needs.add(_GLOBAL)
        return needs


def pool_for_plan(
    plan: Plan,
    quota_source: QuotaSource | None = None,
    markets: Iterable[str] | None = None,
) -> VcpuPool:
    """The pool a run of `plan` takes its vCPUs from.

    Limits are those read at plan time (`plan.vcpu_limits`) unless `quota_source` is
    given; `markets` (default: the plan's market) adds the keys of other markets a task
    may fall back to, e.g. ("spot", "on-demand") for a spot run with on-demand fallback.
    The budget is the plan's --vcpu-budget.
    """
    wanted = tuple(markets) if markets is not None else (plan.options.market,)
    limits: dict[str, int | None] = {}
    for task in plan.tasks:
        cls = quota_class(task.instance_type)
        for market in wanted:
            key = pool_key(task.instance_type, market)
            if key in limits:
                continue
            if quota_source is not None:
                limits[key] = quota_source.vcpu_limit(cls, market) if cls else None
            else:
                limits[key] = plan.vcpu_limits.get(key)
    return VcpuPool(limits, plan.options.vcpu_budget)
