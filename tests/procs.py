"""Helpers for tests that drive long-running subprocesses (`instbench sandbox serve`)."""

from __future__ import annotations

import queue
import re
import subprocess
import threading
import time
from collections.abc import Callable


def read_until(proc: subprocess.Popen[str], pattern: str, timeout: float) -> list[str]:
    """stdout lines up to the first that matches `pattern`; fail after `timeout`.

    A reader thread, because select() cannot see lines already in the pipe's buffer; it
    keeps draining the pipe afterwards so the process never blocks on a full pipe.
    """
    assert proc.stdout is not None
    stream = proc.stdout
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in iter(stream.readline, ""):
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        seen.append(line.rstrip("\n"))
        if re.match(pattern, line):
            return seen
    raise AssertionError(f"serve printed no {pattern!r}: {seen} (rc={proc.poll()})")


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` until it holds; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
