"""Helpers for tests that drive long-running subprocesses (`instbench sandbox serve`)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from instbench.aws.session import AwsSession, AwsSettings
from instbench.journal import Journal, TaskRow

INSTBENCH = str(Path(sys.executable).parent / "instbench")
"""The CLI installed beside the Python running the tests (the venv's)."""


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


def stop(proc: subprocess.Popen[Any], grace: float = 30) -> None:
    """End `proc` the way an operator would: SIGTERM, SIGKILL if still there after `grace` s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextmanager
def served_sandbox(
    workdir: Path, *serve_args: str, env: Mapping[str, str] | None = None
) -> Iterator[dict[str, str]]:
    """`instbench sandbox serve --port 0 --workdir WORKDIR [serve_args]` as a process.

    Yields the environment a client needs to reach it: this process's environment without
    any AWS_* of its own, plus the sandbox's endpoint, credentials, region and bucket (and no
    config or credentials file, no instance metadata). `env` is the server's environment
    (default: this process's). The server is stopped (`stop`) on leaving.
    """
    proc = subprocess.Popen(
        [INSTBENCH, "sandbox", "serve", "--port", "0", "--workdir", str(workdir), *serve_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=None if env is None else dict(env),
    )
    try:
        lines = read_until(proc, r"^export ", timeout=60)
        info = dict(line.partition(": ")[::2] for line in lines if ": " in line)
        yield {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            "AWS_ENDPOINT_URL": info["endpoint"],
            "AWS_ACCESS_KEY_ID": "sandbox",
            "AWS_SECRET_ACCESS_KEY": "sandbox",
            "AWS_REGION": info["region"],
            "AWS_DEFAULT_REGION": info["region"],
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "INSTBENCH_BUCKET": info["bucket"],
        }
    finally:
        stop(proc)


def sandbox_session(env: Mapping[str, str]) -> AwsSession:
    """An AwsSession on the served sandbox that `env` (from `served_sandbox`) points at."""
    return AwsSession(
        AwsSettings(
            region=env["AWS_REGION"],
            endpoint_url=env["AWS_ENDPOINT_URL"],
            access_key_id="sandbox",
            secret_access_key="sandbox",
        )
    )


def start_run(
    env: Mapping[str, str], instance_types: str, max_concurrency: int, args: Sequence[str]
) -> subprocess.Popen[bytes]:
    """`instbench run --quick` of `instance_types` into the served sandbox's bucket, started
    and left running (output discarded): a controller for a fault test to interrupt.

    `args` are the run's other options (its --journal and --output-dir).
    """
    return subprocess.Popen(
        [
            *(INSTBENCH, "run", "--instance-types", instance_types),
            *("--bucket", env["INSTBENCH_BUCKET"], "--quick"),
            *("--max-concurrency", str(max_concurrency), "--timeout", "10m", *args),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(env),
    )


def sigkill_when(
    controller: subprocess.Popen[Any], ready: Callable[[], bool], timeout: float, what: str
) -> None:
    """Wait until `ready()` (up to `timeout` s, `what` naming it), then SIGKILL
    `controller`, as a crash or the OOM killer would; it is dead on return either way,
    and the assertion is that the SIGKILL is what ended it."""
    try:
        wait_for(ready, timeout, what)
        controller.send_signal(signal.SIGKILL)
        controller.wait(timeout=30)
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait(timeout=30)
    assert controller.returncode == -signal.SIGKILL


def journal_rows(path: Path) -> tuple[str, list[TaskRow]] | None:
    """The first run in the journal at `path` and its tasks; None while there is none."""
    if not path.exists():
        return None
    journal = Journal(path)
    try:
        runs = journal.runs()
        return (runs[0].run_id, journal.tasks(runs[0].run_id)) if runs else None
    finally:
        journal.close()
