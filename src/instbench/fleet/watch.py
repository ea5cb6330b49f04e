"""One poller for a whole run: which results have arrived, which instances still live.

Why one poller and not one per task: a task that polls for itself costs a HeadObject and,
every few polls, a DescribeInstances, so a run of C concurrent tasks makes ~C calls per
interval. That was the controller's main CPU cost, the main load on a sandbox's moto
server (which shares the cores with the "instances"), and a throttling risk on real
accounts. A round here is two calls whatever the number of tasks:

1. DescribeInstances for every instance a task is waiting on (one call per 200 ids),
   filtered in EC2 to those that are ending or ended: the usual answer is empty, so a
   round costs the same with 2 or 200 instances in flight;
2. ListObjectsV2 under ``incoming/{run}/`` (one page per 1,000 waiting results; collected
   results are deleted from there, so the listing stays small).

The order matters: an instance PUTs its result before it powers off, and S3 lists are
strongly consistent, so a result that existed when an instance was seen ending is in the
listing made after it. Tasks block on `next_round()` and read the snapshot; a failed
round (throttling past the SDK's retries, a network blip, any error of the injected
reads: this module never sees the SDK's exception types) keeps the last good view and
records the error, and the next round tries again: waiting tasks only see their deadline.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

States = Mapping[str, tuple[str, str]]
"""instance id -> (state name, reason) of the described instances that are ending or ended,
as `launch.ended_instances` returns them (an id left out is still pending or running)."""


WARN_AFTER_FAILED_ROUNDS = 3
"""Failed rounds in a row before the user is told the endpoint is not answering: one is a
blip botocore already retried; three in a row is an outage the user should hear about,
instead of silence until the timeout."""


@dataclass(frozen=True)
class Snapshot:
    """What one round saw. `round` increases by one per round (0: nothing seen yet)."""

    round: int
    keys: frozenset[str] = frozenset()
    states: States = field(default_factory=dict)
    described: frozenset[str] = frozenset()
    """The ids this round asked about: an id in here but not in `states` was not ending
    (or not yet visible); an id not in here was tracked after the round began."""
    error: str | None = None
    """Why this round failed (its keys and states are then the last good ones)."""


class RunWatcher:
    """Background rounds of (describe the tracked instances, list the arrived results).

    `describe(ids)` and `list_keys()` are the two AWS reads (injected so this module stays
    free of clients and is testable without AWS). Rounds run every `interval_s` while at
    least one instance is tracked or a task is waiting; idle otherwise.
    """

    def __init__(
        self,
        describe: Callable[[list[str]], States],
        list_keys: Callable[[], Iterable[str]],
        interval_s: float,
        stop: threading.Event,
        warn: Callable[[str], None] | None = None,
        warn_after: int = WARN_AFTER_FAILED_ROUNDS,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self._warn = warn or (lambda message: None)
        self._warn_after = warn_after
        self.failed_in_a_row = 0
        """Rounds failed since the last good one: the endpoint's health as the run sees it."""
        self._describe = describe
        self._list_keys = list_keys
        self.interval_s = interval_s
        self._stop = stop
        self._closed = threading.Event()
        self._cond = threading.Condition()
        self._tracked: dict[str, int] = {}
        self._waiting = 0
        self._snapshot = Snapshot(round=0)
        self._thread: threading.Thread | None = None
        self.errors = 0

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> RunWatcher:
        self._thread = threading.Thread(target=self._loop, name="run-watcher", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._closed.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def __enter__(self) -> RunWatcher:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- for tasks ------------------------------------------------------------------------

    def track(self, instance_id: str) -> None:
        """Include `instance_id` in the rounds (reference-counted)."""
        with self._cond:
            self._tracked[instance_id] = self._tracked.get(instance_id, 0) + 1
            self._cond.notify_all()

    def untrack(self, instance_id: str) -> None:
        with self._cond:
            count = self._tracked.get(instance_id, 0) - 1
            if count > 0:
                self._tracked[instance_id] = count
            else:
                self._tracked.pop(instance_id, None)

    @property
    def latest(self) -> Snapshot:
        with self._cond:
            return self._snapshot

    def next_round(self, after: int, timeout: float) -> Snapshot | None:
        """The first snapshot with ``round > after``; None after `timeout` seconds or on stop."""
        with self._cond:
            self._waiting += 1
            self._cond.notify_all()
            try:
                self._cond.wait_for(
                    lambda: self._snapshot.round > after or self._stopping(),
                    timeout=max(timeout, 0.0),
                )
                snap = self._snapshot
            finally:
                self._waiting -= 1
        return snap if snap.round > after else None

    # -- the rounds -------------------------------------------------------------------------

    def _stopping(self) -> bool:
        return self._stop.is_set() or self._closed.is_set()

    def _loop(self) -> None:
        while not self._stopping():
            with self._cond:
                self._cond.wait_for(
                    lambda: self._stopping() or bool(self._tracked) or self._waiting > 0
                )
                if self._stopping():
                    break
                ids = sorted(self._tracked)
            self._round(ids)
            # stop.wait wakes at once on Ctrl-C; close() sets _closed, checked next loop.
            self._stop.wait(self.interval_s)
        with self._cond:
            self._cond.notify_all()

    def _round(self, ids: list[str]) -> None:
        previous = self.latest
        try:
            states = dict(self._describe(ids)) if ids else {}
            keys = frozenset(self._list_keys())
            snap = Snapshot(
                round=previous.round + 1, keys=keys, states=states, described=frozenset(ids)
            )
        except Exception as exc:
            self.errors += 1
            snap = Snapshot(
                round=previous.round + 1,
                keys=previous.keys,
                states=previous.states,
                error=f"{type(exc).__name__}: {exc}",
            )
        with self._cond:
            self._snapshot = snap
            self._cond.notify_all()
        self._health(snap)

    def _health(self, snap: Snapshot) -> None:
        """Say so, once, when rounds keep failing; and once more when they work again."""
        if snap.error is None:
            if self.failed_in_a_row >= self._warn_after:
                self._warn(f"AWS answers again after {self.failed_in_a_row} failed rounds")
            self.failed_in_a_row = 0
            return
        self.failed_in_a_row += 1
        if self.failed_in_a_row == self._warn_after:
            self._warn(
                f"warning: AWS has not answered for {self.failed_in_a_row} rounds in a row "
                f"({snap.error}); still waiting for results until the timeout"
            )
