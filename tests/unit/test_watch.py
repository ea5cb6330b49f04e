"""The run watcher: one round serves every task, failed rounds keep the last view."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import pytest
from botocore.exceptions import ClientError

from instbench.fleet.watch import RunWatcher, States


class FakeCloud:
    """Counts calls; the test changes what it answers between rounds."""

    def __init__(self) -> None:
        self.states: dict[str, tuple[str, str]] = {}
        self.keys: set[str] = set()
        self.describe_calls: list[list[str]] = []
        self.list_calls = 0
        self.fail_next = 0
        self.lock = threading.Lock()

    def describe(self, ids: list[str]) -> States:
        with self.lock:
            self.describe_calls.append(list(ids))
            if self.fail_next:
                self.fail_next -= 1
                raise ClientError(
                    {"Error": {"Code": "RequestLimitExceeded", "Message": "slow down"}},
                    "DescribeInstances",
                )
            return {i: self.states[i] for i in ids if i in self.states}

    def list_keys(self) -> Iterable[str]:
        with self.lock:
            self.list_calls += 1
            return sorted(self.keys)


@pytest.fixture
def cloud() -> FakeCloud:
    return FakeCloud()


def make(cloud: FakeCloud, stop: threading.Event | None = None) -> RunWatcher:
    return RunWatcher(cloud.describe, cloud.list_keys, 0.01, stop or threading.Event())


def test_one_describe_serves_every_tracked_instance(cloud: FakeCloud) -> None:
    ids = [f"i-{n:017x}" for n in range(50)]
    for iid in ids:
        cloud.states[iid] = ("running", "")
    with make(cloud) as watcher:
        for iid in ids:
            watcher.track(iid)
        snap = watcher.next_round(watcher.latest.round, timeout=30)
        assert snap is not None
        snap = watcher.next_round(snap.round, timeout=30)  # a round begun after every track
    assert snap is not None
    assert set(snap.states) == set(ids)
    assert snap.described == frozenset(ids)
    # Every round is one describe (all tracked ids at once) and one list, not one per task.
    assert sorted(cloud.describe_calls[-1]) == ids
    assert len(cloud.describe_calls) == cloud.list_calls


def test_results_and_ends_are_seen(cloud: FakeCloud) -> None:
    cloud.states["i-a"] = ("running", "")
    with make(cloud) as watcher:
        watcher.track("i-a")
        first = watcher.next_round(0, timeout=30)
        assert first is not None and "incoming/r/t/result.json" not in first.keys
        cloud.keys.add("incoming/r/t/result.json")
        cloud.states["i-a"] = ("terminated", "Client.UserInitiatedShutdown")
        later = watcher.next_round(first.round, timeout=30)
        while later is not None and "incoming/r/t/result.json" not in later.keys:
            later = watcher.next_round(later.round, timeout=30)
    assert later is not None
    assert later.states["i-a"] == ("terminated", "Client.UserInitiatedShutdown")


def test_failed_round_keeps_last_view_and_recovers(cloud: FakeCloud) -> None:
    cloud.states["i-a"] = ("running", "")
    cloud.keys.add("incoming/r/x/result.json")
    with make(cloud) as watcher:
        watcher.track("i-a")
        good = watcher.next_round(0, timeout=30)
        assert good is not None and good.error is None
        with cloud.lock:
            cloud.fail_next = 2
        bad = watcher.next_round(good.round, timeout=30)
        while bad is not None and bad.error is None:
            bad = watcher.next_round(bad.round, timeout=30)
        assert bad is not None
        assert "RequestLimitExceeded" in (bad.error or "")
        assert bad.states == good.states and bad.keys == good.keys
        again = watcher.next_round(bad.round, timeout=30)
        while again is not None and again.error is not None:
            again = watcher.next_round(again.round, timeout=30)
    assert again is not None and again.error is None
    assert watcher.errors == 2


def test_idle_without_tracked_instances_or_waiters(cloud: FakeCloud) -> None:
    watcher = make(cloud).start()
    try:
        # Nobody tracks or waits: no round may run. Give the thread a chance to misbehave.
        threading.Event().wait(0.1)
        assert cloud.list_calls == 0 and not cloud.describe_calls
        snap = watcher.next_round(0, timeout=30)  # a waiter alone starts a round
        assert snap is not None and snap.states == {}
        assert cloud.describe_calls == []  # nothing tracked: no DescribeInstances
    finally:
        watcher.close()


def test_stop_wakes_waiters(cloud: FakeCloud) -> None:
    stop = threading.Event()
    watcher = RunWatcher(cloud.describe, cloud.list_keys, 3600.0, stop).start()
    try:
        watcher.track("i-a")
        first = watcher.next_round(0, timeout=30)
        assert first is not None
        got: list[object] = []
        waiter = threading.Thread(target=lambda: got.append(watcher.next_round(first.round, 600)))
        waiter.start()
        stop.set()
        waiter.join(timeout=30)
        assert not waiter.is_alive()
        assert got == [None]
    finally:
        watcher.close()


def test_untrack_is_reference_counted(cloud: FakeCloud) -> None:
    with make(cloud) as watcher:
        watcher.track("i-a")
        watcher.track("i-a")
        watcher.untrack("i-a")
        snap = watcher.next_round(watcher.latest.round, timeout=30)
        snap = watcher.next_round(snap.round if snap else 0, timeout=30)
        assert snap is not None and "i-a" in snap.described
        watcher.untrack("i-a")
        after = watcher.next_round(snap.round, timeout=30)
        after = watcher.next_round(after.round if after else 0, timeout=30)
    assert after is not None and "i-a" not in after.described


def test_interval_must_be_positive(cloud: FakeCloud) -> None:
    with pytest.raises(ValueError):
        RunWatcher(cloud.describe, cloud.list_keys, 0, threading.Event())
