"""The run's threads and timing: how often it looks (`PollPolicy`), the task workers
(`Workers`) and the bound on the cleanup after Ctrl-C (`CleanupBound`).

Apart from the orchestrator because none of this knows about tasks, instances or results:
it is the concurrency the fleet's flow runs on, and reads (and is tested) on its own.
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class PollPolicy:
    """How often the run's watcher looks (one round serves every task; see `fleet/watch.py`)."""

    interval_s: float = 5.0
    """Seconds between rounds. A round is one DescribeInstances and one ListObjectsV2 for
    the whole run, so this can stay short without costing more calls as the run grows."""
    shutdown_grace_s: float = 90.0
    """After its result arrives, an instance gets this long to upload its log and power
    itself off before the controller terminates it."""
    cleanup_bound_s: float = 60.0
    """After Ctrl-C, the end-of-run cleanup gets this long; then the run exits as on a
    second Ctrl-C (naming `instbench cleanup --run-id`), so a hung endpoint cannot hold
    the terminal."""


class CleanupBound:
    """After `seconds`, interrupt the main thread as a second Ctrl-C would.

    Armed only when run() is on the main thread and SIGINT raises KeyboardInterrupt
    (the CLI's case): then a blocking call to a hung endpoint is interrupted exactly where
    a user's second Ctrl-C would interrupt it, and ends the run the same way."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._done = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            self._target = threading.main_thread().ident
            self._timer = threading.Timer(seconds, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._done or self._target is None:
                return
            self.fired = True
            signal.pthread_kill(self._target, signal.SIGINT)

    def disarm(self, raising: bool = True) -> None:
        """Stop the timer; when it fired already, let its interrupt arrive here (raising
        KeyboardInterrupt) rather than somewhere after the run."""
        with self._lock:
            self._done = True
        if self._timer is not None:
            self._timer.cancel()
        if self.fired and raising:
            for _ in range(100):
                time.sleep(0.01)  # the pending SIGINT is handled here
            raise KeyboardInterrupt


class Workers:
    """At most `limit` tasks at once, on daemon threads, first come first served.

    Why not ThreadPoolExecutor: its threads are joined when the pool is shut down and
    again when the interpreter exits, so one worker stuck in a call to a hung endpoint
    holds the controller until botocore's timeouts run out (minutes). A run that was told
    to stop must be able to leave such a worker behind."""

    def __init__(self, limit: int) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._unfinished = 0
        self._idle = threading.Condition(self._lock)
        self._threads = [
            threading.Thread(target=self._loop, name=f"task-{i}", daemon=True)
            for i in range(max(1, limit))
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            self._unfinished += 1
        self._queue.put(job)

    def wait(self, timeout: float) -> bool:
        """True when every submitted job has finished (waits at most `timeout`)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._unfinished == 0, timeout=timeout)

    def close(self) -> None:
        """Let idle threads exit; queued jobs not yet started are dropped by their own
        stop check (every job looks at the run's stop event first)."""
        for _ in self._threads:
            self._queue.put(None)

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                job()
            finally:
                with self._idle:
                    self._unfinished -= 1
                    self._idle.notify_all()
