"""A simulated cloud-init: runs each launched instance's real user data on this machine.

In the sandbox nothing boots: moto records `RunInstances` and reports the instance as
running. This module plays the part of the instance itself. A background thread polls
`DescribeInstances` (pending/running, as the controller would see them), and for each
instance it has not seen yet reads the user data (`DescribeInstanceAttribute userData`)
and executes it, exactly as launched, with:

- the shims (`sandbox/shims/`) first on `PATH`: `shutdown`/`poweroff`/`halt` write their
  request into ``$INSTBENCH_SANDBOX_DIR`` instead of halting this machine, the package
  managers install nothing, `sudo` never escalates, `mktemp` keeps ``/tmp/...`` inside
  the instance's own directory;
- ``AWS_EC2_METADATA_SERVICE_ENDPOINT`` pointing at the sandbox IMDS with the instance's
  id as path prefix, so the agent reads the identity EC2 (moto) gave that instance;
- a fresh, minimal environment (``PATH``, ``HOME``, ``LANG``, ``TMPDIR``, ``USER``): no
  AWS credentials leak from the controller, as none exist on a real instance; only
  ``INSTBENCH_COREMARK_URL`` is passed on when the controller has it (`FORWARDED_ENV`):
  on EC2 the agent fetches the pinned CoreMark sources from GitHub, and the sandbox,
  which must not reach the network, can get them from a loopback mirror this way;
- its own process group and session, so powering off kills everything it started;
- its "disk" in ``workdir/{instance-id}/`` (user-data, console.log, home/, tmp/, sandbox/).

Scripts run one at a time by default (``max_parallel=1``): the instances of one run are
benchmarks, and two of them sharing this machine's cores would measure each other. The
others wait in launch order and meanwhile look "running" to the controller, like an
instance that is slow to boot. With more at once, two scripts start at least
``boot_spacing`` seconds apart (default 0.2). On EC2 every instance boots on its own
cores; here all of them share this machine's, and twenty start-ups (user data, agent,
their API calls: ~0.7 s of CPU each on a 2-vCPU machine) begun in the same tick share the
cores until all finish together, each late by the whole burst. One after another, each
starts about as fast as it would alone, and their ends stay spread out in the waves
after. Measured with ``bench/orchestrate.py`` (100 tasks, 20 at once, 2 vCPUs): parallel
efficiency 0.87 without spacing, 0.92 at 0.2 s (0.89 at 0.1 s, 0.91 at 0.3 s).

Power-off follows EC2: when the script requests it (``shutdown -h now``), when its
watchdog (``shutdown -h +N``) passes, or when the script exits (``halt_on_exit``, the
default; real EC2 would keep an instance whose script just exits running, pass
``halt_on_exit=False`` to get that), the instance's `InstanceInitiatedShutdownBehavior`
decides: ``terminate`` -> `TerminateInstances`, ``stop`` -> `StopInstances`. A requested
shutdown gives the script ``term_grace`` seconds to exit on its own, then SIGTERM, then
after another ``term_grace`` SIGKILL (as a halting system would); the watchdog starts at
SIGTERM, so the script's EXIT trap still uploads its log, as on a real instance. An
instance stopped or terminated from outside (controller, cleanup) loses its processes at
once (SIGKILL: the machine is gone). A halted instance loses every process it started,
also those that left the script's process group or session (`instance_processes`), and is
"done" only once none of them runs: what they held (a listening port) is free by then. An
instance stopped or terminated before its turn is skipped.

A "minute" of ``shutdown -h +N`` lasts ``minute_seconds`` (default
``$INSTBENCH_SANDBOX_MINUTE_SECONDS`` or 60), so watchdog behaviour is testable in seconds.

The console (stdout and stderr of the script, plus a few cloud-init lines) is kept in
``workdir/{instance-id}/console.log`` and served by `console_output()`. moto answers
`GetConsoleOutput` with a fixed sample text, so when moto runs in this process (the
sandbox's own server, or the test suite's) the sandbox also teaches it to return the last
64 KiB of that console, as EC2 does: then the controller's failure report works unchanged.
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import gzip
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import IO, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from instbench.aws import launch
from instbench.aws.session import AwsSession
from instbench.sandbox.service import Service

Log = Callable[[str], None]

MINUTE_SECONDS_ENV = "INSTBENCH_SANDBOX_MINUTE_SECONDS"
"""Seconds in a `shutdown +N` minute (tests set 1 or less to see watchdogs fire quickly)."""

SHIM_COMMANDS: dict[str, str] = {
    "shutdown": "shutdown",
    "poweroff": "shutdown",
    "halt": "shutdown",
    "reboot": "shutdown",
    "dnf": "pkg",
    "yum": "pkg",
    "apt-get": "pkg",
    "sudo": "sudo",
    "mktemp": "mktemp",
    "docker": "docker",
    "systemctl": "systemctl",
}
"""Command on the script's PATH -> shim file in the package (one shim plays several)."""

CONSOLE_LIMIT = 64 * 1024
"""EC2 GetConsoleOutput returns the most recent 64 KiB."""

DEFAULT_BOOT_SPACING = 0.2
"""Seconds between two scripts' starts (see `CloudInit`)."""

KILL_WAIT_S = 10.0
"""How long a halting instance's processes may take to die before the sandbox warns."""

_CONSOLE_ATTR = "instbench_console_output"

Phase = Literal["queued", "running", "idle", "done", "skipped"]


@dataclass(frozen=True)
class Boot:
    """What happened to one instance in the sandbox (a snapshot; see `CloudInit.boots`).

    ``phase``: queued (waiting for its turn), running (script executing), idle (script
    ended, instance left running: no user data, or ``halt_on_exit=False``), done (powered
    off by the sandbox or from outside), skipped (gone before its turn).
    """

    instance_id: str
    instance_type: str
    phase: Phase = "queued"
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    """The script's exit status (negative: killed by that signal)."""
    reason: str | None = None
    """Why it ended: 'shutdown', 'exit', 'watchdog', 'external', 'sandbox stopped'..."""
    action: str | None = None
    """What the sandbox asked EC2 to do: 'terminate', 'stop', or None."""


class _Slot:
    """Mutable supervision state of one instance (only the supervisor thread touches it)."""

    def __init__(self, instance_id: str, instance_type: str, seen_at: float, root: Path) -> None:
        self.boot = Boot(instance_id, instance_type)
        self.seen_at = seen_at
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None
        self.console: IO[bytes] | None = None
        self.console_size = -1
        self.poweroff_at: float | None = None
        self.term_at: float | None = None
        self.reason: str | None = None
        self.watchdog_stamp: int | None = None
        self.deadline: float | None = None

    @property
    def sandbox_dir(self) -> Path:
        return self.root / "sandbox"


FORWARDED_ENV = ("INSTBENCH_COREMARK_URL",)
"""Variables of the controller's environment every instance script gets (see above)."""


class CloudInit(Service):
    """Background executor of user data for the instances launched through `session`.

    Use as a context manager or call ``start()``/``stop()``. ``imds_endpoint`` is the base
    URL of a running `ImdsServer` (the sandbox shares one); without it the cloud-init
    starts its own. ``extra_env`` is added to every script's environment.
    """

    def __init__(
        self,
        session: AwsSession,
        workdir: Path,
        *,
        max_parallel: int = 1,
        poll_interval: float = 0.5,
        boot_delay: float = 0.0,
        boot_spacing: float = DEFAULT_BOOT_SPACING,
        minute_seconds: float | None = None,
        term_grace: float = 3.0,
        halt_on_exit: bool = True,
        imds_endpoint: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        log: Log | None = None,
    ) -> None:
        if max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")
        if poll_interval <= 0 or min(boot_delay, boot_spacing, term_grace) < 0:
            raise ValueError(
                "poll_interval must be > 0, boot_delay, boot_spacing and term_grace >= 0"
            )
        self.session = session
        self.workdir = Path(workdir)
        self.max_parallel = max_parallel
        self.poll_interval = poll_interval
        self.boot_delay = boot_delay
        self.boot_spacing = boot_spacing
        self.minute_seconds = _minute_seconds(minute_seconds)
        self.term_grace = term_grace
        self.halt_on_exit = halt_on_exit
        self.extra_env = dict(extra_env or {})
        self._log: Log = log or logging.getLogger("instbench.sandbox").info
        self._imds_endpoint = imds_endpoint.rstrip("/") if imds_endpoint else None
        self._own_imds: Any = None
        self._slots: dict[str, _Slot] = {}
        self._queue: list[str] = []
        self._live: dict[str, tuple[datetime | None, str]] | None = None
        self._last_boot_at = float("-inf")
        self._boot_due: float | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._console = _MotoConsole(session)
        self._last_error = ""
        self.shim_dir = self.workdir / "shims"

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> CloudInit:
        self.workdir.mkdir(parents=True, exist_ok=True)
        install_shims(self.shim_dir)
        if self._imds_endpoint is None:
            from instbench.sandbox.imds import ImdsServer

            self._own_imds = ImdsServer(self.session).start()
            self._imds_endpoint = self._own_imds.endpoint
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, name="instbench-sandbox-cloudinit", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching, and kill every script still running (their instances stay)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        for slot in list(self._slots.values()):
            if slot.boot.phase in ("running", "idle"):
                self._kill(slot, signal.SIGKILL)
                self._finish(slot, "sandbox stopped", action=None)
        if self._own_imds is not None:
            self._own_imds.stop()
            self._own_imds = None

    # -- what tests and the runtime read ------------------------------------------------

    def boots(self) -> dict[str, Boot]:
        """Every instance seen so far, by id."""
        with self._lock:
            return {iid: slot.boot for iid, slot in self._slots.items()}

    def boot(self, instance_id: str) -> Boot | None:
        with self._lock:
            slot = self._slots.get(instance_id)
            return None if slot is None else slot.boot

    def wait_ended(self, instance_id: str, timeout: float) -> Boot:
        """Block until the instance is done or skipped; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            boot = self.boot(instance_id)
            if boot is not None and boot.phase in ("done", "skipped"):
                return boot
            time.sleep(min(0.05, self.poll_interval))
        last = self.boot(instance_id)
        raise TimeoutError(f"{instance_id} did not end within {timeout} s: {last}")

    def instance_dir(self, instance_id: str) -> Path:
        """The instance's "disk": user-data, console.log, home/, tmp/, sandbox/."""
        return self.workdir / instance_id

    def console_output(self, instance_id: str) -> str:
        """Everything the instance's script printed so far ('' if it never ran)."""
        try:
            return (self.instance_dir(instance_id) / "console.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- the supervisor -----------------------------------------------------------------

    def _loop(self) -> None:
        next_tick = 0.0
        woken = True
        while not self._stop.is_set():
            try:
                if woken or time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + self.poll_interval
                    self._tick()
                else:  # only the boot spacing came due: boot from the last tick's view
                    self._start_queued(self._live, time.monotonic())
            except Exception as exc:  # keep supervising: a dead loop would leak scripts
                self._warn(f"cloud-init error: {type(exc).__name__}: {exc}")
            due = next_tick if self._boot_due is None else min(next_tick, self._boot_due)
            woken = self._wake.wait(max(0.0, due - time.monotonic()))
            self._wake.clear()

    def _warn(self, message: str) -> None:
        if message != self._last_error:  # a down endpoint must not flood the log
            self._last_error = message
            self._log(f"sandbox: {message}")

    def _tick(self) -> None:
        live: dict[str, tuple[datetime | None, str]] | None
        try:
            live = self._describe_live()
        except (ClientError, BotoCoreError) as exc:
            self._warn(f"DescribeInstances failed: {exc}")
            live = None
        now = time.monotonic()
        self._live = live
        if live is not None:
            self._note_new(live, now)
        for slot in list(self._slots.values()):
            if slot.boot.phase in ("running", "idle"):
                self._supervise(slot, live, now)
        self._start_queued(live, now)

    def _describe_live(self) -> dict[str, tuple[datetime | None, str]]:
        """id -> (launch time, type) of every pending or running instance.

        Which instances live comes from DescribeInstanceStatus, whose entries are a few
        fields; the full DescribeInstances is asked only about instances not seen before.
        moto serialises a described instance in ~4 ms, so describing every live instance
        each tick cost the cores the simulated instances run on ~80 ms per tick at 20 in
        flight, against ~18 ms now.
        """
        ec2 = self.session.ec2()
        live: list[str] = []
        statuses = ec2.get_paginator("describe_instance_status").paginate(
            IncludeAllInstances=True,
            Filters=[{"Name": "instance-state-name", "Values": list(launch.RUNNING_STATES)}],
        )
        for page in statuses:
            live.extend(
                s["InstanceId"] for s in page.get("InstanceStatuses", []) if s.get("InstanceId")
            )
        found: dict[str, tuple[datetime | None, str]] = {}
        with self._lock:
            for iid in live:
                if iid in self._slots:
                    found[iid] = (None, self._slots[iid].boot.instance_type)
        new = [iid for iid in live if iid not in found]
        if new:
            described = ec2.get_paginator("describe_instances").paginate(
                Filters=[{"Name": "instance-id", "Values": new}]
            )
            for listing in described:
                for reservation in listing.get("Reservations", []):
                    for inst in reservation.get("Instances", []):
                        new_id = inst.get("InstanceId") or ""
                        if new_id in new:
                            found[new_id] = (inst.get("LaunchTime"), inst.get("InstanceType", "?"))
            # An id gone between the two calls is left out: if it lives, the next tick sees it.
        return found

    def _note_new(self, live: dict[str, tuple[datetime | None, str]], now: float) -> None:
        new = [iid for iid in live if iid not in self._slots]

        def order(iid: str) -> tuple[float, str]:
            launched = live[iid][0]
            return (launched.timestamp() if launched else 0.0, iid)

        for iid in sorted(new, key=order):
            slot = _Slot(iid, live[iid][1], now, self.instance_dir(iid))
            with self._lock:
                self._slots[iid] = slot
            self._queue.append(iid)

    def _start_queued(self, live: dict[str, Any] | None, now: float) -> None:
        self._boot_due = None
        if live is None:
            return  # cannot tell whether a queued instance still exists
        for iid in list(self._queue):
            slot = self._slots[iid]
            if iid not in live:
                self._queue.remove(iid)
                self._set(slot, phase="skipped", ended_at=time.time(), reason="gone before boot")
                self._log(f"sandbox: {iid} was stopped or terminated before it booted: skipped")
                continue
            running = sum(1 for s in self._slots.values() if s.boot.phase == "running")
            if running >= self.max_parallel or now < slot.seen_at + self.boot_delay:
                continue
            # The clock now, not the tick's `now`: a slow DescribeInstances before this
            # must not shorten the spacing.
            if time.monotonic() < self._last_boot_at + self.boot_spacing:
                self._boot_due = self._last_boot_at + self.boot_spacing  # the loop wakes then
                return
            self._queue.remove(iid)
            self._boot(slot)
            self._last_boot_at = time.monotonic()  # counted from the script's start

    def _boot(self, slot: _Slot) -> None:
        iid = slot.boot.instance_id
        for sub in ("home", "tmp", "sandbox"):
            (slot.root / sub).mkdir(parents=True, exist_ok=True)
        slot.console = (slot.root / "console.log").open("ab")
        self._console_line(slot, f"booting {iid} ({slot.boot.instance_type}) on this machine")
        try:
            data = self._user_data(iid)
        except (ClientError, BotoCoreError) as exc:
            data = None
            self._console_line(slot, f"could not read user data: {exc}")
        command = _command_for(data, slot.root / "user-data") if data else None
        if command is None:
            why = "no user data" if not data else "user data is not a script (#!...)"
            self._console_line(slot, f"{why}: nothing to run; the instance idles")
            self._log(f"sandbox: {iid} has {why}; it stays running until ended")
            self._set(slot, phase="idle", started_at=time.time())
            self._publish_console(slot)
            return
        host_path = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")
        assert self._imds_endpoint is not None
        env = {
            "PATH": f"{self.shim_dir}:{host_path}",
            "HOME": str(slot.root / "home"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "TMPDIR": str(slot.root / "tmp"),
            "USER": _user(),
            "LOGNAME": _user(),
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": f"{self._imds_endpoint}/{iid}/",
            "INSTBENCH_SANDBOX_DIR": str(slot.sandbox_dir),
            "INSTBENCH_SANDBOX_HOST_PATH": host_path,
            # The docker shim plays the agent image with the agent of this installation.
            "INSTBENCH_SANDBOX_PYTHON": sys.executable,
            **{k: os.environ[k] for k in FORWARDED_ENV if k in os.environ},
            **self.extra_env,
        }
        self._console_line(slot, "running user data")
        slot.proc = subprocess.Popen(
            command,
            cwd=slot.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=slot.console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
        self._set(slot, phase="running", started_at=time.time())
        self._log(f"sandbox: {iid} ({slot.boot.instance_type}) running its user data")
        # Wake the supervisor the moment the script exits: powering off (and starting the
        # next queued script) then does not wait for the next poll.
        threading.Thread(
            target=self._wait_exit, args=(slot.proc,), name=f"wait-{iid}", daemon=True
        ).start()

    def _wait_exit(self, proc: subprocess.Popen[bytes]) -> None:
        proc.wait()
        self._wake.set()

    def _user_data(self, instance_id: str) -> bytes | None:
        attr = self.session.ec2().describe_instance_attribute(
            InstanceId=instance_id, Attribute="userData"
        )
        value = attr.get("UserData", {}).get("Value")
        if not value:
            return None
        data = base64.b64decode(value)
        if data[:2] == b"\x1f\x8b":  # cloud-init accepts gzip-compressed user data
            data = gzip.decompress(data)
        return data

    def _supervise(self, slot: _Slot, live: dict[str, Any] | None, now: float) -> None:
        iid = slot.boot.instance_id
        if live is not None and iid not in live:
            self._kill(slot, signal.SIGKILL)
            self._console_line(slot, "instance stopped or terminated from outside: halted")
            self._log(f"sandbox: {iid} was stopped or terminated from outside; script killed")
            self._finish(slot, "external", action=None)
            return
        proc = slot.proc
        rc = proc.poll() if proc is not None else None
        if slot.poweroff_at is None and (slot.sandbox_dir / "poweroff").exists():
            slot.poweroff_at = now
            slot.reason = slot.reason or "shutdown"
        self._read_watchdog(slot)
        if slot.deadline is not None and time.time() >= slot.deadline and slot.term_at is None:
            slot.reason = slot.reason or "watchdog"
            slot.deadline = None
            if slot.poweroff_at is None:
                slot.poweroff_at = now - self.term_grace  # no grace: halt now
            self._console_line(slot, "watchdog: shutdown time reached")
        if proc is not None and rc is None:
            if slot.poweroff_at is not None:
                if slot.term_at is None and now - slot.poweroff_at >= self.term_grace:
                    slot.term_at = now
                    self._kill(slot, signal.SIGTERM)
                elif slot.term_at is not None and now - slot.term_at >= self.term_grace:
                    self._kill(slot, signal.SIGKILL)
            self._publish_console(slot, only_if_grown=True)
            return
        if slot.boot.phase == "running" and proc is not None and rc is not None:
            self._set(slot, exit_code=rc)
            self._console_line(slot, f"user data finished with status {rc}")
            if slot.poweroff_at is None and self.halt_on_exit:
                slot.reason = "exit"
                slot.poweroff_at = now
            if slot.poweroff_at is None:
                self._set(slot, phase="idle")
                self._log(f"sandbox: {iid} user data exited ({rc}); the instance idles")
        if slot.poweroff_at is not None:
            self._power_off(slot)

    def _read_watchdog(self, slot: _Slot) -> None:
        path = slot.sandbox_dir / "watchdog"
        try:
            stat = path.stat()
        except FileNotFoundError:
            if slot.watchdog_stamp is not None:  # shutdown -c
                slot.watchdog_stamp, slot.deadline = None, None
            return
        if stat.st_mtime_ns == slot.watchdog_stamp:
            return
        slot.watchdog_stamp = stat.st_mtime_ns
        try:
            minutes = float(path.read_text().strip())
        except (OSError, ValueError):
            return
        slot.deadline = stat.st_mtime + minutes * self.minute_seconds

    def _power_off(self, slot: _Slot) -> None:
        """Halt the 'machine' and apply its shutdown behaviour through the EC2 API."""
        iid = slot.boot.instance_id
        self._kill(slot, signal.SIGKILL)  # whatever the script left behind dies with it
        reason = slot.reason or "shutdown"
        try:
            attr = self.session.ec2().describe_instance_attribute(
                InstanceId=iid, Attribute="instanceInitiatedShutdownBehavior"
            )
            behaviour = attr.get("InstanceInitiatedShutdownBehavior", {}).get("Value") or "stop"
        except (ClientError, BotoCoreError) as exc:
            self._warn(f"{iid}: shutdown behaviour unknown ({exc}); stopping it")
            behaviour = "stop"
        action = "terminate" if behaviour == "terminate" else "stop"
        self._console_line(slot, f"power off ({reason}): instance will {action}")
        self._publish_console(slot)  # readable by the time EC2 shows the instance ended
        try:
            if action == "terminate":
                self.session.ec2().terminate_instances(InstanceIds=[iid])
            else:
                self.session.ec2().stop_instances(InstanceIds=[iid])
        except (ClientError, BotoCoreError) as exc:
            self._warn(f"{iid}: {action} failed: {exc}")
        self._finish(slot, reason, action=action)  # after the API: "done" means EC2 knows
        self._log(f"sandbox: {iid} powered off ({reason}): {action}")

    def _finish(self, slot: _Slot, reason: str, action: str | None) -> None:
        if slot.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                slot.proc.wait(timeout=5)
        code = slot.proc.returncode if slot.proc is not None else None
        self._publish_console(slot)
        if slot.console is not None:
            slot.console.close()
            slot.console = None
        self._set(
            slot, phase="done", ended_at=time.time(), reason=reason, action=action, exit_code=code
        )

    # -- helpers ------------------------------------------------------------------------

    def _set(self, slot: _Slot, **changes: Any) -> None:
        with self._lock:
            slot.boot = replace(slot.boot, **changes)

    def _kill(self, slot: _Slot, sig: signal.Signals) -> None:
        """Signal the script's process group; SIGKILL (the machine halts or is gone) also
        kills what left the group, and returns once nothing of the instance runs."""
        if slot.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(slot.proc.pid, sig)
        if sig == signal.SIGKILL:
            self._kill_escaped(slot)

    def _kill_escaped(self, slot: _Slot, timeout: float = KILL_WAIT_S) -> None:
        """SIGKILL every process of the instance until none is left (or `timeout`).

        On EC2 a halted machine takes all its processes with it; here a process that left
        the script's process group (`timeout`, a shell's job control, `setsid`, a daemon)
        would outlive its instance and keep what it holds, such as a listening port a
        later instance is given. The instance's processes are those of the script's
        session and those whose environment names the instance's sandbox directory
        (inherited by whatever the script started, even in a session of its own)."""
        assert slot.proc is not None
        marker = f"INSTBENCH_SANDBOX_DIR={slot.sandbox_dir}".encode()
        deadline = time.monotonic() + timeout
        while True:
            pids = instance_processes(slot.proc.pid, marker)
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() >= deadline:
                self._warn(f"{slot.boot.instance_id}: processes {sorted(pids)} would not die")
                return
            time.sleep(0.02)

    def _console_line(self, slot: _Slot, text: str) -> None:
        if slot.console is None:
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        slot.console.write(f"[{stamp}] instbench-sandbox cloud-init: {text}\n".encode())
        slot.console.flush()

    def _publish_console(self, slot: _Slot, only_if_grown: bool = False) -> None:
        path = slot.root / "console.log"
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return
        if only_if_grown and size == slot.console_size:
            return
        slot.console_size = size
        with path.open("rb") as fh:
            fh.seek(max(0, size - CONSOLE_LIMIT))
            text = fh.read(CONSOLE_LIMIT).decode("utf-8", errors="replace")
        self._console.publish(slot.boot.instance_id, text)


def instance_processes(session_id: int, marker: bytes) -> set[int]:
    """Live processes (zombies excluded: they hold nothing) in session `session_id` or
    whose environment holds the entry `marker` (``NAME=value``); empty without /proc."""
    found: set[int] = set()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    own = os.getpid()
    for entry in entries:
        if not entry.isdigit() or int(entry) == own:
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...: comm may hold spaces and parentheses.
        fields = stat.rsplit(b")", 1)[-1].split()
        if len(fields) < 4 or fields[0] in (b"Z", b"X"):
            continue
        if int(fields[3]) == session_id:
            found.add(pid)
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                environ = fh.read()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.add(pid)
    return found


def _minute_seconds(value: float | None) -> float:
    if value is None:
        raw = os.environ.get(MINUTE_SECONDS_ENV, "").strip()
        try:
            value = float(raw) if raw else 60.0
        except ValueError:
            raise ValueError(f"{MINUTE_SECONDS_ENV}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise ValueError("a sandbox minute must last more than 0 seconds")
    return value


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "root"


def _command_for(data: bytes, path: Path) -> list[str] | None:
    """Write the script and say how to run it, as cloud-init would; None if not a script.

    A ``#!`` script naming bash or sh is run with ``bash`` (the user data instbench renders
    is bash); another interpreter line is honoured by executing the file itself. Other
    formats (#cloud-config, MIME multipart) are beyond the sandbox.
    """
    if not data.startswith(b"#!"):
        return None
    path.write_bytes(data)
    path.chmod(0o700)
    first = data.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    if "bash" in first or first.rstrip().endswith(("/sh", " sh")):
        return ["bash", str(path)]
    return [str(path)]


def install_shims(target: Path) -> None:
    """Copy the shims into `target` with mode 0755 (package data may lose the x bit)."""
    target.mkdir(parents=True, exist_ok=True)
    package = resources.files("instbench.sandbox").joinpath("shims")
    common = package.joinpath("_common.sh").read_bytes()
    (target / "_common.sh").write_bytes(common)
    for command, shim in SHIM_COMMANDS.items():
        dest = target / command
        dest.write_bytes(package.joinpath(shim).read_bytes())
        dest.chmod(0o755)
    _install_python(target)


def _install_python(target: Path) -> None:
    """`python3` on the instances' PATH: this installation's base interpreter, fixed.

    Like the one python3 of a machine image, rather than whatever the host's PATH resolves
    at each call: a version manager's shim (pyenv's is a shell script) costs a fraction of
    a second per call, which 20 simulated instances starting at once on 2 cores multiply.
    The base interpreter, not a virtualenv's; the user data runs the agent with -I -S, so
    it sees none of the interpreter's site-packages either, as on a clean image.
    """
    base = Path(sys.base_prefix) / "bin"
    for name in (f"python{sys.version_info[0]}.{sys.version_info[1]}", "python3"):
        if (base / name).is_file() and os.access(base / name, os.X_OK):
            link = target / "python3"
            link.unlink(missing_ok=True)
            link.symlink_to(base / name)
            return


class _MotoConsole:
    """Make moto's GetConsoleOutput return what a sandbox instance printed.

    moto answers GetConsoleOutput with a constant sample and keeps no console per
    instance, so this stores the text on moto's own instance object (in moto's backend, so
    a moto reset forgets it) and wraps moto's response handler once per process to return
    that text when present and moto's sample otherwise. It only works when moto runs in
    this process; otherwise (an external endpoint) it does nothing and
    `CloudInit.console_output` remains the way to read the console.
    """

    _installed = False
    _install_lock = threading.Lock()

    def __init__(self, session: AwsSession) -> None:
        self.session = session
        self._account: str | None = None
        self._enabled = self._install()

    @classmethod
    def _install(cls) -> bool:
        with cls._install_lock:
            if cls._installed:
                return True
            try:
                from moto.core.responses import ActionResult
                from moto.core.types import Base64EncodedString
                from moto.core.utils import utcnow
                from moto.ec2.responses.general import General
            except ImportError:
                return False
            original = General.get_console_output

            def get_console_output(self: Any) -> Any:
                instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
                text = getattr(instance, _CONSOLE_ATTR, None)
                if text is None:
                    return original(self)
                output = Base64EncodedString.from_raw_string(text)
                return ActionResult(
                    {"InstanceId": instance.id, "Timestamp": utcnow(), "Output": output}
                )

            General.get_console_output = get_console_output  # type: ignore[method-assign]
            cls._installed = True
            return True

    def _backend(self) -> Any:
        from moto.ec2.models import ec2_backends

        if self._account is None:
            self._account = self.session.sts().get_caller_identity()["Account"]
        return ec2_backends[self._account][self.session.region]

    def publish(self, instance_id: str, text: str) -> None:
        if not self._enabled:
            return
        try:
            instance = self._backend().get_instance(instance_id)
        except Exception:  # not an in-process moto, or the instance is unknown there
            return
        setattr(instance, _CONSOLE_ATTR, text)
