"""Run a planned fleet: launch, wait for results, validate, store, terminate.

Each task runs in a worker thread (at most `max_concurrency` at once):

    journal launching -> run_instances (capacity failover across placements)
    journal running   -> wait for incoming/{run}/{task}/result.json, watching the
                         instance's state and the deadline (one watcher polls for all
                         tasks: `fleet/watch.py`)
    validate          -> store locally first, then raw/ in S3 (never overwriting)
                         or quarantine with the reason
    terminate         -> whatever is still running

Whatever happens (an exception, Ctrl-C), `run()` ends by terminating every instance tagged
with the run id and deleting the run's own security group. The journal is written before
each state-changing call, so a killed controller can be resumed or cleaned up.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import queue
import signal
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from instbench.agentpkg import AgentArchive, build_agent
from instbench.aws import launch, network, quotas
from instbench.aws.failures import AWS_ERRORS, REFUSED
from instbench.aws.metrics import MetricsPublisher
from instbench.aws.session import AwsSession
from instbench.benchmarks import registry
from instbench.errors import (
    CapacityError,
    CleanupIncomplete,
    CleanupInterrupted,
    InvalidResult,
    QuotaExceeded,
)
from instbench.fleet import capacity, pairs
from instbench.fleet.model import task_timeout_s
from instbench.fleet.plan import SUITE_BENCHMARK, Placement, Plan, Task, watchdog_minutes
from instbench.fleet.userdata import UserDataParams, advertised_text, render_user_data
from instbench.fleet.watch import RunWatcher
from instbench.journal import Journal
from instbench.results.schema import ResultDocument
from instbench.results.validate import MAX_RESULT_BYTES, QUARANTINE_PREFIX_BYTES, parse_result
from instbench.storage.layout import artifact_key, manifest_key, raw_key, safe_component
from instbench.storage.local import AlreadyExists, LocalStore
from instbench.storage.s3 import ObjectNotFound, S3Store

URL_MARGIN_S = 30 * 60
"""Presigned URLs stay valid this long beyond the task timeout."""


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


class _CleanupBound:
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


class _Workers:
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


@dataclass
class TaskStatus:
    """Live status of one task, read by the CLI's view."""

    task: Task
    state: str = "planned"
    instance_id: str | None = None
    availability_zone: str | None = None
    started: float | None = None
    finished: float | None = None
    detail: str = ""
    result_key: str | None = None
    document: ResultDocument | None = None
    market: str | None = None
    """The purchase option of the task's current (or last) instance."""
    interruptions: int = 0
    """Spot instances of this task that EC2 reclaimed before it produced a result."""

    def elapsed(self, now: float | None = None) -> float:
        if self.started is None:
            return 0.0
        end = self.finished if self.finished is not None else (now or time.monotonic())
        return end - self.started


@dataclass
class FleetOutcome:
    """What the run produced."""

    run_id: str
    statuses: list[TaskStatus]
    local_root: str
    bucket: str
    terminated: list[str] = field(default_factory=list)
    interrupted: bool = False
    leftover_group: str | None = None
    """The run's security group, when it could not be deleted yet (cleanup sweeps it)."""

    @property
    def succeeded(self) -> bool:
        return not self.interrupted and all(s.state == "result_stored" for s in self.statuses)

    @property
    def failures(self) -> list[TaskStatus]:
        return [s for s in self.statuses if s.state != "result_stored"]


def incoming_prefix(run_id: str) -> str:
    """Where a run's instances PUT their results before the controller validated them."""
    return f"incoming/{safe_component(run_id, 'run id')}/"


def incoming_key(run_id: str, task_id: str, name: str) -> str:
    """Where an instance PUTs its result before the controller has validated it."""
    return f"{incoming_prefix(run_id)}{safe_component(task_id, 'task')}/{name}"


def task_log_prefix(run_id: str) -> str:
    """Where a run's instances PUT their logs."""
    return f"logs/{safe_component(run_id, 'run id')}/"


def task_log_key(run_id: str, task_id: str) -> str:
    """Where an instance PUTs its log (the key is fixed before the instance id is known)."""
    return f"{task_log_prefix(run_id)}{safe_component(task_id, 'task')}.log"


INTERRUPTION_REASON = "spot interruption "
"""How the journal's running -> running event of a spot interruption starts its reason
(then the task's count so far and EC2's state reason)."""


def interruptions_in(events: Iterable[tuple[str, str | None, str, str | None]]) -> Counter[str]:
    """Spot interruptions per task, counted from a run's journal events (`Journal.events`)."""
    counts: Counter[str] = Counter()
    for _at, task_id, event, detail in events:
        if task_id is None or event != "running->running" or not detail:
            continue
        reason = json.loads(detail).get("reason")
        if isinstance(reason, str) and reason.startswith(INTERRUPTION_REASON):
            counts[task_id] += 1
    return counts


class Fleet:
    """Executes one plan. Thread-safe status updates; `run()` is called once."""

    def __init__(
        self,
        session: AwsSession,
        plan: Plan,
        journal: Journal,
        local: LocalStore,
        *,
        poll: PollPolicy | None = None,
        on_change: Callable[[TaskStatus], None] | None = None,
        resume: bool = False,
        metrics: MetricsPublisher | None = None,
        notice: Callable[[str], None] | None = None,
    ) -> None:
        self.session = session
        self.notice = notice or (lambda message: None)
        self.metrics = metrics or MetricsPublisher(None, enabled=False)
        self._run_started = time.monotonic()
        self.plan = plan
        self.journal = journal
        self.local = local
        self.s3 = S3Store(session, plan.options.bucket)
        self.poll = poll or PollPolicy()
        self.on_change = on_change or (lambda status: None)
        self.resume = resume
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.statuses = {t.task_id: TaskStatus(task=t) for t in plan.tasks}
        if resume:
            for row in journal.tasks(plan.run_id):
                if row.state == "result_stored" and row.task_id in self.statuses:
                    status = self.statuses[row.task_id]
                    status.state, status.result_key = row.state, row.result_key
                    status.instance_id = row.instance_id
            # Spot interruptions before the controller went away still count: in the
            # result of the next attempt and in the manifest.
            for task_id, count in interruptions_in(journal.events(plan.run_id)).items():
                if task_id in self.statuses:
                    self.statuses[task_id].interruptions = count
        self._agent: AgentArchive | None = None
        # Pair tasks (fleet/pairs.py): a fresh port pair per launch attempt, claimed on
        # loopback in the sandbox, and each pair's server. The sandbox runs every instance
        # on this machine: one pair at a time, so a client never waits behind another
        # pair's server for a slot (see `Target`).
        sandbox = plan.options.collection_method == "sandbox"
        self.pair_ports = pairs.PortBook(loopback=sandbox)
        self.servers = pairs.PairServers(
            session, journal, plan.run_id, self.pair_ports, self.notice
        )
        self._pair_gate = threading.Lock()
        self.placement_group: str | None = None
        """The run's cluster placement group, in which every pair launches (None: none).
        Set before `run()` by whoever creates the group (aws/network.py)."""
        self._created_group: str | None = None
        self.leftover_group: str | None = None
        # vCPUs held per quota class (and under --vcpu-budget): a big type waits for room.
        self.pool = capacity.pool_for_plan(plan, markets=self._markets())
        self.watcher = RunWatcher(
            lambda ids: launch.ended_instances(self.session, ids),
            lambda: self.s3.keys(incoming_prefix(plan.run_id)),
            self.poll.interval_s,
            self.stop,
            warn=self._endpoint_warning,
        )

    # ------------------------------------------------------------------ status

    def _update(self, task_id: str, **changes: Any) -> None:
        with self._lock:
            status = self.statuses[task_id]
            for key, value in changes.items():
                setattr(status, key, value)
        self.on_change(status)

    # --------------------------------------------------------------- the run

    def run(self) -> FleetOutcome:
        """Run every task; always terminate what the run launched, even on Ctrl-C."""
        opts = self.plan.options
        interrupted = False
        workers: _Workers | None = None
        try:
            self._prepare()
            self.watcher.start()
            workers = _Workers(opts.max_concurrency)
            for task in self.plan.tasks:
                if self.statuses[task.task_id].state != "result_stored":
                    workers.submit(lambda task=task: self._execute(task))  # type: ignore[misc]
            late: set[str] = set()
            try:
                # A timeout keeps the main thread responsive to Ctrl-C. While tasks run, a
                # result that arrives for a task already failed (too late) is collected.
                while True:
                    if workers.wait(timeout=0.5):
                        # The last look: one listing, then done unless it found one.
                        if not self._collect_late(workers, self._incoming_keys(), late):
                            break
                    else:
                        self._collect_late(workers, self.watcher.latest.keys, late)
            except KeyboardInterrupt:
                interrupted = True
                self.stop.set()
                self.pool.interrupt()
                self._notice_interrupt()
                raise
        except KeyboardInterrupt:
            if not interrupted:
                self._notice_interrupt()
            interrupted = True
        finally:
            self.stop.set()
            self.pool.interrupt()
            if workers is not None:
                workers.close()
            terminated = self._end_run(interrupted)
        return FleetOutcome(
            run_id=self.plan.run_id,
            statuses=[self.statuses[t.task_id] for t in self.plan.tasks],
            local_root=str(self.local.root),
            bucket=opts.bucket,
            terminated=terminated,
            interrupted=interrupted,
            leftover_group=self.leftover_group,
        )

    def _end_run(self, interrupted: bool) -> list[str]:
        """Terminate what is left, journal the outcome, write the manifest.

        After Ctrl-C this gets `cleanup_bound_s`: then a hung endpoint ends the run as a
        second Ctrl-C would (the user is told to run cleanup) instead of holding the
        terminal for as long as botocore keeps retrying."""
        rid = self.plan.run_id
        bound = _CleanupBound(self.poll.cleanup_bound_s) if interrupted else None
        failure: BaseException | None = None
        terminated: list[str] = []
        try:
            try:
                self.watcher.close()
                terminated = self._terminate_all()
                self._drop_server_results()
                self.pair_ports.close()
            except AWS_ERRORS as exc:
                failure = exc
            self._finish(interrupted, cleaned=failure is None)
            if bound is not None:
                bound.disarm()
        except KeyboardInterrupt:
            if bound is not None:
                bound.disarm(raising=False)
            if bound is not None and bound.fired:
                why = f"AWS did not answer within {self.poll.cleanup_bound_s:.0f} s of Ctrl-C"
                raise CleanupInterrupted(rid, why) from None
            # The second Ctrl-C: the user wants out now. Say what is left to do.
            raise CleanupInterrupted(rid) from None
        if failure is not None:
            raise CleanupIncomplete(rid, f"{type(failure).__name__}: {failure}") from failure
        return terminated

    def _drop_server_results(self) -> None:
        """Delete what pair servers uploaded under incoming/ (they measure nothing): one
        may arrive after its pair's own delete, until its instance is gone."""
        if not any(pairs.is_pair(t) for t in self.plan.tasks):
            return
        try:
            for key in self.s3.keys(incoming_prefix(self.plan.run_id)):
                if key.endswith(f"/{pairs.SERVER_RESULT}"):
                    self.s3.delete(key)
        except AWS_ERRORS as exc:  # a staging copy only: never what fails the cleanup
            self.notice(f"warning: could not delete pair servers' uploads ({exc})")

    def _endpoint_warning(self, message: str) -> None:
        if message.startswith("warning"):
            message += (
                "; if it does not come back, press Ctrl-C and later run: "
                f"instbench cleanup --run-id {self.plan.run_id}"
            )
        self.notice(message)

    def _incoming_keys(self) -> frozenset[str]:
        """The results waiting under incoming/ now (empty when AWS does not answer)."""
        try:
            return frozenset(self.s3.keys(incoming_prefix(self.plan.run_id)))
        except AWS_ERRORS:
            return frozenset()

    def _collect_late(self, workers: _Workers, keys: frozenset[str], seen: set[str]) -> bool:
        """Queue the collection of results that arrived for tasks already failed; True
        when any was queued. A task fails at its timeout, but its instance may still
        upload (a slow boot, a slow network): a valid result is data, never dropped."""
        if self.stop.is_set() or not keys:
            return False
        queued = False
        for task in self.plan.tasks:
            status = self.statuses[task.task_id]
            if status.state != "failed" or task.task_id in seen:
                continue
            key = incoming_key(self.plan.run_id, task.task_id, "result.json")
            if key in keys:
                # The snapshot may predate a quarantine that deleted the key: look again.
                try:
                    if self.s3.head(key) is None:
                        continue
                except AWS_ERRORS:
                    continue
                seen.add(task.task_id)  # one late collection per task and run
                workers.submit(lambda task=task: self._late_result(task))  # type: ignore[misc]
                queued = True
        return queued

    def _late_result(self, task: Task) -> None:
        """Collect the result of a task marked failed (journal failed -> running -> stored)."""
        rid = self.plan.run_id
        if self.stop.is_set():
            return
        try:
            row = self.journal.task(rid, task.task_id)
            if row.state != "failed":
                return
            prior = self.statuses[task.task_id].detail
            self.journal.transition(rid, task.task_id, "running", reason="late result")
            self._update(task.task_id, state="running", detail="late result")
            instance = None if row.terminated else row.instance_id
            try:
                self._collect(task, instance, incoming_key(rid, task.task_id, "result.json"))
            except ObjectNotFound:
                self._fail(task, prior)  # gone meanwhile: the task failed as it was
        except Exception as exc:  # a worker must never die silently
            self._fail(task, f"controller error on a late result: {type(exc).__name__}: {exc}")

    def _notice_interrupt(self) -> None:
        rid = self.plan.run_id
        self.notice(
            f"Ctrl-C: terminating every instance of run {rid} before exiting; "
            f"Ctrl-C again exits at once (then run: instbench cleanup --run-id {rid})"
        )

    def _prepare(self) -> None:
        """Upload the agent (and the suite artifact) once per run; create the run's
        security group if none was given."""
        self._agent = build_agent()
        # AlreadyExists: same sha256, same bytes, uploaded by an earlier run.
        with contextlib.suppress(AlreadyExists):
            self.s3.put_new(artifact_key(self._agent.sha256), self._agent.data, "application/zip")
        suite = self.plan.options.suite
        if suite is not None:
            # Named by its digest like the agent; the instance checks the digest anyway.
            with contextlib.suppress(AlreadyExists):
                self.s3.put_new(artifact_key(suite.sha256, "json"), suite.data, "application/json")
        if self.plan.security_group is None:
            # create_run_security_group reuses the run's own group when it still exists
            # (a resume), and creates a new one when cleanup has deleted it meanwhile.
            self.journal.set_security_group(self.plan.run_id, "pending")
            group = network.create_run_security_group(
                self.session, self.plan.run_id, self.plan.vpc_id, self.plan.expires_at
            )
            self.journal.set_security_group(self.plan.run_id, group)
            self.plan.security_group = group
            self._created_group = group
        if any(pairs.is_pair(t) for t in self.plan.tasks):
            # The plan refuses --security-group with pairs: this is the run's own group.
            assert self._created_group is not None
            first, last = pairs.PAIR_PORT_FIRST, pairs.PAIR_PORT_LAST
            network.allow_pair_ports(self.session, self._created_group, first, last)
            self.journal.note(
                self.plan.run_id,
                None,
                "pair-ingress-rule",
                {"group_id": self._created_group, "ports": [first, last], "source": "itself"},
            )

    # ---------------------------------------------------------------- one task

    def _task_vcpus(self, task: Task) -> int:
        """vCPUs the task holds while it runs: both instances of a pair."""
        return task.held_vcpus

    def _execute(self, task: Task) -> None:
        gate = (
            self._pair_gate
            if pairs.is_pair(task) and self.plan.options.collection_method == "sandbox"
            else contextlib.nullcontext()
        )
        with gate:
            try:
                self._execute_inner(task)
            except Exception as exc:  # a worker must never die silently
                self._fail(task, f"controller error: {type(exc).__name__}: {exc}")
            finally:
                # A pair whose result is stored lets its server upload and power off
                # first (as a task's instance does), so nothing is left under incoming/.
                state = self.statuses[task.task_id].state
                self._end_server(task, "pair concluded", wait=state == "result_stored")

    def _end_server(self, task: Task, why: str, wait: bool = False) -> None:
        """Terminate the pair's server (its result measures nothing and is not stored);
        with `wait`, after it had its shutdown grace to upload and power off; the console
        of the server of a failed pair is kept beside its client's."""
        rid = self.plan.run_id
        log_key = task_log_key(rid, pairs.server_task_id(task))

        def before(server: str) -> None:
            if wait:
                self._let_shut_down(server, log_key)
            elif self.statuses[task.task_id].state == "failed":
                self._save_console(task, server)

        self.servers.end(
            task,
            why,
            before=before,
            after=lambda: self.s3.delete(incoming_key(rid, task.task_id, pairs.SERVER_RESULT)),
        )

    def _execute_inner(self, task: Task) -> None:
        if self.stop.is_set():
            return
        self._update(task.task_id, started=time.monotonic())
        row = self.journal.task(self.plan.run_id, task.task_id)
        first_attempt = 0
        if self.resume and row.state != "planned":
            # A result that arrived while the controller was away is collected, not rerun.
            key = incoming_key(self.plan.run_id, task.task_id, "result.json")
            if self.s3.head(key) is not None:
                if row.state in {"launching", "failed"}:
                    self.journal.transition(self.plan.run_id, task.task_id, "running")
                self._collect(task, row.instance_id, key)
                return
            live = row.instance_id and not row.terminated
            server = self.servers.reattach(task)  # watched with its client, or ended below
            if row.state == "running" and live:
                state = launch.instance_states(self.session, [row.instance_id or ""]).get(
                    row.instance_id or "", ("unknown", "")
                )[0]
                if state in {"pending", "running"}:
                    self._update(task.task_id, state="running", instance_id=row.instance_id)
                    key = quotas.pool_key(task.instance_type, self.plan.options.market)
                    if not self._acquire(task, key):
                        return
                    try:
                        if not self._await(task, row.instance_id or "", server):
                            return
                    finally:
                        self.pool.release(key, self._task_vcpus(task))
                    # Reclaimed by spot while we watched: launch again below.
            # Launched again below: a server of the last attempt never serves the new client.
            self._end_server(task, "resume launches the pair again")
            if row.state == "failed":
                self.journal.transition(self.plan.run_id, task.task_id, "planned")
            # A new attempt gets a new ClientToken, so EC2 launches a new instance.
            first_attempt = row.attempt + 1
        reasons: list[str] = []
        attempt = first_attempt
        for market in self._markets():
            key = quotas.pool_key(task.instance_type, market)
            try:
                if not self._acquire(task, key):
                    return  # stopped while waiting for room
            except QuotaExceeded as exc:
                reasons.append(f"{market}: {exc}")
                continue
            try:
                for placement in self._placements_for(task):
                    if self.stop.is_set():
                        return
                    instance_id = self._launch(task, placement, attempt, reasons, market)
                    attempt += 1
                    if instance_id is None:
                        continue
                    if not self._await(task, instance_id, self.servers.get(task)):
                        return  # concluded: result stored or failed
                    # Interrupted: EC2 reclaimed the spot instance (or a pair's server)
                    # before the result came; a pair is launched again as a whole.
                    self._end_server(task, "pair interrupted by spot")
                    reasons.append(f"spot interruption in {placement.availability_zone}")
                    break  # the next market (on-demand), when --spot-fallback allows one
            finally:
                self.pool.release(key, self._task_vcpus(task))
        capacity = any("interruption" not in r for r in reasons)
        self._fail(task, ("no capacity: " if capacity else "") + "; ".join(reasons))

    def _acquire(self, task: Task, key: str) -> bool:
        """Hold the task's vCPUs under its quota class and the budget, waiting for room."""
        if self.pool.limit(key) is not None or self.plan.options.vcpu_budget is not None:
            self._update(task.task_id, detail=f"waiting for {self._task_vcpus(task)} vCPUs ({key})")
        granted = self.pool.acquire(key, self._task_vcpus(task), self.stop)
        if granted:
            self._update(task.task_id, detail="")
        return granted

    def _markets(self) -> list[str]:
        """The purchase options to try, in order (spot, then on-demand with the fallback)."""
        opts = self.plan.options
        if opts.market == "spot" and opts.spot_fallback == "on-demand":
            return ["spot", "on-demand"]
        return [opts.market]

    def _hourly_price(self, task: Task, market: str, zone: str) -> float | None:
        """What the instance costs per hour as launched (recorded in its result)."""
        if market == "spot":
            return launch.spot_price_now(self.session, task.instance_type, zone)
        estimate = self.plan.cost
        if estimate is not None:
            for cost in estimate.tasks:
                if cost.task_id == task.task_id and cost.market == market:
                    return cost.hourly_usd
        return None

    def _placements_for(self, task: Task) -> list[Placement]:
        """Every placement, starting at a different one per task to spread load."""
        places = self.plan.placements
        start = zlib.crc32(task.task_id.encode()) % len(places)
        return places[start:] + places[:start]

    def _launch(
        self, task: Task, place: Placement, attempt: int, reasons: list[str], market: str
    ) -> str | None:
        opts = self.plan.options
        status = self.statuses[task.task_id]
        agent_args = opts.agent_args_for(task.benchmark)
        price = self._hourly_price(task, market, place.availability_zone)
        if price is not None:
            agent_args += ["--hourly-price-usd", f"{price:.6g}"]
        if opts.market == "spot":
            agent_args += ["--spot-interruptions", str(status.interruptions)]
        assert self._agent is not None and self.plan.security_group is not None
        task_s = task_timeout_s(opts, task)  # --timeout plus a storage burst run
        expires_s = task_s + URL_MARGIN_S
        rid = self.plan.run_id
        if task.benchmark == SUITE_BENCHMARK:
            # Only the artifact's URL and digest reach the user data, never the suite.
            assert opts.suite is not None
            benchmarks: tuple[str, ...] = ()
            agent_args += [
                "--suite-url",
                self.s3.presign_get(artifact_key(opts.suite.sha256, "json"), expires_s),
                "--suite-sha256",
                opts.suite.sha256,
            ]
        else:
            benchmarks = (task.benchmark,)
        data_volume = opts.data_volume if task.benchmark == "storage" else None
        if data_volume is not None:
            advertised = {
                **self.plan.storage_advertised.get(task.instance_type, {}),
                **data_volume.advertised(),
            }
            agent_args += ["--storage-advertised", advertised_text(advertised)]
        port: int | None = None
        if pairs.is_pair(task):
            port = self.pair_ports.take()  # fresh for every attempt; given back with the pair
            agent_args = pairs.pair_agent_args(self.plan, task, agent_args, "client", port)
        params = UserDataParams(
            run_id=rid,
            task_id=task.task_id,
            sample=task.sample,
            instance_type=task.instance_type,
            region=self.plan.region,
            benchmarks=benchmarks,
            collection_method=opts.collection_method,
            quick=opts.quick,
            market=market,
            agent_url=self.s3.presign_get(artifact_key(self._agent.sha256), expires_s),
            agent_sha256=self._agent.sha256,
            result_url=self.s3.presign_put(
                incoming_key(rid, task.task_id, "result.json"), expires_s, "application/json"
            ),
            log_url=self.s3.presign_put(task_log_key(rid, task.task_id), expires_s, "text/plain"),
            watchdog_minutes=watchdog_minutes(task_s),
            agent_args=tuple(agent_args),
            runtime=opts.runtime,
            image=opts.image,
            # The container image carries its own toolchain; the host installs nothing.
            packages=registry.packages_for(benchmarks) if opts.runtime == "zipapp" else (),
        )
        spec = launch.LaunchSpec(
            run_id=rid,
            task_id=task.task_id,
            instance_type=task.instance_type,
            image_id=task.image_id,
            subnet_id=place.subnet_id,
            availability_zone=place.availability_zone,
            security_group_ids=[self.plan.security_group],
            key_name=opts.key_pair,
            user_data=render_user_data(params),
            expires_at=self.plan.expires_at,
            market=market,
            spot_max_price=opts.spot_max_price if market == "spot" else None,
            attempt=attempt,
            data_volume=data_volume,
        )
        self.journal.transition(
            rid,
            task.task_id,
            "launching",
            attempt=attempt,
            availability_zone=place.availability_zone,
        )
        self._update(
            task.task_id,
            state="launching",
            availability_zone=place.availability_zone,
            market=market,
        )
        if port is not None:
            launched = self._launch_server(task, spec, params, port, reasons)
            if launched is None:
                return None
            spec = launched
        try:
            instance_id = launch.launch_instance(self.session, spec)
        except CapacityError as exc:
            # A pair is launched or failed over as a whole: never a server left waiting.
            self._end_server(task, f"client launch failed: {exc.code}")
            reasons.append(f"{market} {place.availability_zone}: {exc.code}")
            self._update(task.task_id, detail=f"{exc.code} in {place.availability_zone}")
            return None
        except BaseException:
            self._end_server(task, "client launch refused")
            raise
        self.journal.transition(rid, task.task_id, "running", instance_id=instance_id)
        self._update(task.task_id, state="running", instance_id=instance_id, detail="")
        return instance_id

    def _launch_server(
        self,
        task: Task,
        client: launch.LaunchSpec,
        params: UserDataParams,
        port: int,
        reasons: list[str],
    ) -> launch.LaunchSpec | None:
        """Launch the server of a pair (same zone, market and group as its client, its
        own id, role and upload keys); the client's spec with the server's address, or
        None (the reason in `reasons`, the port given back) when it could not launch."""
        rid = self.plan.run_id
        zone = client.availability_zone or ""
        expires_s = task_timeout_s(self.plan.options, task) + URL_MARGIN_S
        server_id = pairs.server_task_id(task)
        server = pairs.server_params(
            self.plan,
            task,
            params,
            port,
            result_url=self.s3.presign_put(
                incoming_key(rid, task.task_id, pairs.SERVER_RESULT), expires_s, "application/json"
            ),
            log_url=self.s3.presign_put(task_log_key(rid, server_id), expires_s, "text/plain"),
        )
        spec = dataclasses.replace(
            client,
            task_id=server_id,
            user_data=render_user_data(server),
            # Both sides in the run's cluster placement group (when the run has one).
            placement_group=self.placement_group,
        )
        try:
            instance_id, address = launch.launch_instance_addressed(self.session, spec)
        except CapacityError as exc:
            self.pair_ports.release(port)
            reasons.append(f"{client.market} {zone} (server): {exc.code}")
            self._update(task.task_id, detail=f"{exc.code} in {zone}")
            return None
        except BaseException:
            self.pair_ports.release(port)
            raise
        self.servers.launched(task, instance_id, port, zone)
        try:
            peer = pairs.pair_peer(address, self.plan.options.collection_method == "sandbox")
        except ValueError as exc:
            self._end_server(task, "no usable address")
            reasons.append(f"{zone}: server {instance_id}: {exc}")
            return None
        with_peer = pairs.with_peer(params, task, peer)
        return dataclasses.replace(
            client, user_data=render_user_data(with_peer), placement_group=self.placement_group
        )

    def _await(self, task: Task, instance_id: str, server: str | None = None) -> bool:
        """Wait for the result, the instance's end, or the deadline; then conclude.

        True when spot reclaimed the instance (or a pair's `server`) before its result:
        not concluded, the caller decides whether the task runs again (see `_markets`).
        A pair's server that ends having served (its upload is there) leaves the outcome
        to its client; one that ends without serving fails the pair at once."""
        opts = self.plan.options
        key = incoming_key(self.plan.run_id, task.task_id, "result.json")
        served_key = incoming_key(self.plan.run_id, task.task_id, pairs.SERVER_RESULT)
        task_s = task_timeout_s(opts, task)
        deadline = time.monotonic() + task_s
        self.watcher.track(instance_id)
        if server is not None:
            self.watcher.track(server)
        served = False
        try:
            seen = self.watcher.latest.round
            while not self.stop.is_set():
                remaining = deadline - time.monotonic()
                snap = self.watcher.next_round(seen, timeout=min(max(remaining, 0.0), 60.0))
                if snap is not None:
                    seen = snap.round
                    if key in snap.keys:
                        self._collect(task, instance_id, key)
                        return False
                    if instance_id in snap.states:
                        state, reason = snap.states[instance_id]
                        # The round listed results after describing instances, and the
                        # result PUT precedes shutdown; one direct look settles a race
                        # with a failed round.
                        if self.s3.head(key) is not None:
                            self._collect(task, instance_id, key)
                            return False
                        if launch.is_spot_interruption(reason):
                            self._interrupted(task, instance_id, reason)
                            return True
                        why = f"instance {state} without a result ({reason or 'no reason given'})"
                        self._fail(task, why, instance_id)
                        return False
                    if server is not None and not served and server in snap.states:
                        # A server uploads its result before it powers off: whether it
                        # served is known the moment its end is seen.
                        state, reason = snap.states[server]
                        served = served_key in snap.keys or self.s3.head(served_key) is not None
                        verdict, why = pairs.server_verdict(served, state, reason)
                        if verdict == "interrupted":
                            self._interrupted(task, instance_id, why, side=f"server {server}")
                            return True
                        if verdict == "failed":
                            self._fail(task, f"pair server {server} {why}", instance_id)
                            return False
                if time.monotonic() >= deadline:
                    self._fail(task, f"no result within the timeout ({task_s}s)", instance_id)
                    return False
        finally:
            self.watcher.untrack(instance_id)
            if server is not None:
                self.watcher.untrack(server)
        return False

    def _interrupted(
        self, task: Task, instance_id: str, reason: str, side: str | None = None
    ) -> None:
        """Record a spot interruption: console kept, journal told, the count raised.

        `side`: the reclaimed instance when it is not the task's own (a pair's server,
        whose console is kept; the client is ended with it, the caller ends the server)."""
        if side is not None:
            reason = f"{side}: {reason}"
            with contextlib.suppress(*AWS_ERRORS):
                self._save_console(task, self.servers.get(task) or instance_id)
        self._save_console(task, instance_id)
        self._terminate_task(instance_id)
        status = self.statuses[task.task_id]
        self._update(
            task.task_id,
            interruptions=status.interruptions + 1,
            detail=f"spot interruption ({reason})",
        )
        self.journal.transition(
            self.plan.run_id,
            task.task_id,
            "running",
            reason=f"{INTERRUPTION_REASON}{status.interruptions}: {reason}",
        )

    def _collect(self, task: Task, instance_id: str | None, key: str) -> None:
        rid = self.plan.run_id
        # Bounded: HEAD, then at most MAX_RESULT_BYTES + 1 bytes (a presigned PUT may
        # carry 5 GB); of an oversized upload only a prefix is kept, in quarantine.
        raw, oversize = self.s3.get_bounded(key, MAX_RESULT_BYTES, QUARANTINE_PREFIX_BYTES)
        try:
            doc, rkey = self._validated(task, raw, oversize)
        except InvalidResult as exc:
            self._quarantine(task, raw, exc.reason)
            self.s3.delete(key)
            self._fail(task, f"invalid result quarantined: {exc.reason}", instance_id)
            return
        try:
            self.local.put_new(rkey, raw)  # local first: nothing is lost if S3 fails next
        except AlreadyExists:
            if self.local.read(rkey) != raw:
                raise
        try:
            self.s3.put_new(rkey, raw, "application/json")
        except AlreadyExists:
            if self.s3.get(rkey) != raw:
                raise
        self.journal.transition(rid, task.task_id, "result_stored", result_key=rkey)
        self._update(
            task.task_id,
            state="result_stored",
            result_key=rkey,
            document=doc,
            finished=time.monotonic(),
            detail="",
        )
        # From here on the result is stored: nothing that fails below may undo that. An
        # instance that cannot be ended now (EC2 racing its own shutdown, a throttled
        # call) is ended by the end-of-run sweep; the staging copy is only a copy.
        try:
            self.s3.delete(key)  # the staging copy; raw/ now holds the result
        except AWS_ERRORS as exc:
            self.notice(f"warning: task {task.task_id}: could not delete {key} ({exc})")
        self.metrics.task_result(doc, self.statuses[task.task_id].elapsed(), True)
        if instance_id:
            try:
                self._let_shut_down(instance_id, task_log_key(rid, task.task_id))
                self._terminate_task(instance_id)
            except AWS_ERRORS as exc:
                self.notice(
                    f"warning: task {task.task_id}: result stored, but terminating "
                    f"{instance_id} failed ({type(exc).__name__}: {exc}); the end-of-run "
                    "sweep tries again"
                )

    def _validated(
        self, task: Task, raw: bytes, oversize: int | None
    ) -> tuple[ResultDocument, str]:
        """The document and its raw/ key, or `InvalidResult`: everything an uploaded
        result is checked for happens here, before a single byte is written locally."""
        if oversize is not None:
            raise InvalidResult(
                f"result is {oversize} bytes, above the {MAX_RESULT_BYTES} limit "
                f"(only its first {len(raw)} bytes are kept)"
            )
        try:
            doc = parse_result(raw)
        except InvalidResult:
            raise
        except Exception as exc:  # any parser failure is the document's fault
            raise InvalidResult(f"unreadable result: {type(exc).__name__}: {exc}") from exc
        self._check_identity(task, doc)
        meta = doc.metadata
        try:
            rkey = raw_key(
                task.benchmark,
                task.instance_type,
                meta.region,
                meta.timestamp,
                self.plan.run_id,
                task.sample,
            )
        except ValueError as exc:
            raise InvalidResult(str(exc)) from exc
        return doc, rkey

    def _let_shut_down(self, instance_id: str, log_key: str) -> None:
        """Give the instance time to upload its log (the last thing it does before powering
        off); as soon as the log is there, or the instance is going, the caller terminates
        it. Waiting for the power-off itself would hold the slot (and the bill) for the
        length of an OS shutdown, for nothing."""
        deadline = time.monotonic() + self.poll.shutdown_grace_s
        # The instance uploads its log right after its result: usually it is there already.
        # Then one look per round for the few tasks in their grace (cheaper than listing
        # every log of the run in every round).
        if self.s3.head(log_key) is not None:
            return
        self.watcher.track(instance_id)
        try:
            seen = self.watcher.latest.round
            while not self.stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                snap = self.watcher.next_round(seen, timeout=remaining)
                if snap is None:
                    continue
                seen = snap.round
                if self.s3.head(log_key) is not None:
                    return
                if instance_id in snap.states:
                    return  # going or gone
        finally:
            self.watcher.untrack(instance_id)

    def _check_identity(self, task: Task, doc: ResultDocument) -> None:
        """A result must be the one this task asked for (guards against mix-ups)."""
        meta = doc.metadata
        if meta.run_id != self.plan.run_id or meta.task_id != task.task_id:
            raise InvalidResult(f"result belongs to {meta.run_id}/{meta.task_id}")
        if meta.instance_type != task.instance_type or meta.sample != task.sample:
            raise InvalidResult(
                f"result is for {meta.instance_type} sample {meta.sample}, "
                f"expected {task.instance_type} sample {task.sample}"
            )
        if meta.benchmark_suite != [task.benchmark]:
            raise InvalidResult(f"result holds {meta.benchmark_suite}, not [{task.benchmark}]")
        # Where it ran: the region of the run, the zone the task was launched in. These
        # become part of the stored key and of every table, so a result may not pick them.
        if meta.region != self.plan.region:
            raise InvalidResult(f"result is from region {meta.region!r}, not {self.plan.region}")
        zone = self._task_zone(task)
        if zone is not None and meta.availability_zone != zone:
            raise InvalidResult(
                f"result is from zone {meta.availability_zone!r}, the task ran in {zone}"
            )
        ec2 = doc.system_info.ec2
        if ec2 is not None:
            seen = (ec2.instance_type, ec2.region, ec2.availability_zone)
            wanted = (task.instance_type, self.plan.region, zone or ec2.availability_zone)
            if seen != wanted:
                raise InvalidResult(
                    f"result's EC2 identity {seen} does not match the task's {wanted}"
                )
        if meta.collection_method != self.plan.options.collection_method:
            raise InvalidResult(f"collection_method is {meta.collection_method}")
        if task.benchmark == SUITE_BENCHMARK:
            # The agent writes ["suite"] for any suite: the section says which one ran.
            expected = self.plan.options.suite
            section = doc.performance_data.suite
            assert expected is not None
            if section is None:
                raise InvalidResult("a suite task's result has no suite section")
            if section.name != expected.name or section.artifact_sha256 != expected.sha256:
                raise InvalidResult(
                    f"result holds suite {section.name} (artifact {section.artifact_sha256}), "
                    f"not {expected.name} ({expected.sha256})"
                )

    def _task_zone(self, task: Task) -> str | None:
        """The zone the task's instance was launched in (the journal's, after a resume)."""
        zone = self.statuses[task.task_id].availability_zone
        if zone is None:
            zone = self.journal.task(self.plan.run_id, task.task_id).availability_zone
        return zone

    def _quarantine(self, task: Task, raw: bytes, reason: str) -> None:
        base = f"quarantine/{self.plan.run_id}/{task.task_id}"
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        for store_put in (self.local.put_new, self._s3_put):
            try:
                store_put(f"{base}-{stamp}.json", raw)
                store_put(f"{base}-{stamp}.reason", (reason + "\n").encode())
            except AlreadyExists:
                pass

    def _s3_put(self, key: str, data: bytes) -> None:
        self.s3.put_new(key, data, "application/octet-stream")

    def _save_console(self, task: Task, instance_id: str) -> None:
        console = launch.console_output(self.session, instance_id)
        if console:
            with contextlib.suppress(AlreadyExists):
                self.local.put_new(
                    f"logs/{self.plan.run_id}/{task.task_id}-{instance_id}.console",
                    console.encode(),
                )

    def _fail(self, task: Task, reason: str, instance_id: str | None = None) -> None:
        """Journal the failure first (local, cannot fail on AWS), then end the instance.

        A task whose result is stored is never turned into a failed one: whatever went
        wrong after storage is reported, and the end-of-run sweep ends the instance."""
        status = self.statuses[task.task_id]
        if status.state == "result_stored":
            self.notice(f"warning: task {task.task_id} (result stored): {reason}")
            return
        row = self.journal.task(self.plan.run_id, task.task_id)
        if row.state == "result_stored":
            return
        if row.state != "failed":
            self.journal.transition(self.plan.run_id, task.task_id, "failed", reason=reason)
        self._update(task.task_id, state="failed", detail=reason, finished=time.monotonic())
        if instance_id:
            try:
                self._save_console(task, instance_id)
                self._terminate_task(instance_id)
            except AWS_ERRORS as exc:
                self.notice(
                    f"warning: task {task.task_id}: could not terminate {instance_id} "
                    f"({type(exc).__name__}: {exc}); the end-of-run sweep tries again"
                )
        self.metrics.task_result(
            None,
            status.elapsed(),
            False,
            instance_type=task.instance_type,
            benchmark=task.benchmark,
        )

    def _terminate_task(self, instance_id: str) -> None:
        launch.terminate_instance(self.session, instance_id)
        self.journal.mark_terminated(self.plan.run_id, [instance_id])

    # -------------------------------------------------------------- the end

    def _terminate_all(self, attempts: int = 3) -> list[str]:
        """Terminate every instance tagged with this run that is not already gone.

        A refused TerminateInstances (EC2 racing an instance's own shutdown, e.g.
        InvalidAttachment.NotFound) is retried after describing again; what still fails
        after `attempts` is raised (the caller names `instbench cleanup`)."""
        ended: list[str] = []
        for attempt in range(1, attempts + 1):
            live = sorted(
                launch.describe_instances_by_run(self.session, self.plan.run_id, launch.LIVE_STATES)
            )
            if not live:
                break
            try:
                launch.terminate_instances(self.session, live)
            except REFUSED:
                if attempt == attempts:
                    raise
                time.sleep(attempt)
                continue
            self.journal.mark_terminated(self.plan.run_id, live)
            ended = sorted({*ended, *live})
            break
        return ended

    def _finish(self, interrupted: bool, cleaned: bool = True) -> None:
        """Journal the run's end and write its manifest (locally first).

        `cleaned` is False when the instances could not be terminated (AWS gone): then
        the group is left to cleanup and only what needs no AWS call is sure to happen."""
        rid = self.plan.run_id
        group = self._created_group or self._journalled_group()
        if group and not cleaned:
            self.leftover_group = group
        elif group:
            ids = [r.instance_id for r in self.journal.tasks(rid) if r.instance_id]
            try:
                deleted = network.delete_security_group(self.session, group, ids)
            except AWS_ERRORS:
                deleted = False
            if deleted:
                self.journal.set_security_group(rid, None)
            else:
                # Still in use after waiting: the journal keeps it, cleanup sweeps it later.
                self.leftover_group = group
        statuses = [self.statuses[t.task_id] for t in self.plan.tasks]
        ok = all(s.state == "result_stored" for s in statuses)
        status = "interrupted" if interrupted else ("succeeded" if ok else "failed")
        self.journal.set_run_status(rid, status)
        stored = sum(1 for s in statuses if s.state == "result_stored")
        self.metrics.run_finished(
            stored, len(statuses) - stored, time.monotonic() - self._run_started
        )
        manifest = {
            "run_id": rid,
            "region": self.plan.region,
            "status": status,
            "collection_method": self.plan.options.collection_method,
            "benchmarks": list(self.plan.options.benchmarks),
            "suite": self._suite_manifest(),
            "agent_sha256": self._agent.sha256 if self._agent else None,
            "tasks": [
                {
                    "task_id": s.task.task_id,
                    "instance_type": s.task.instance_type,
                    "benchmark": s.task.benchmark,
                    "sample": s.task.sample,
                    "state": s.state,
                    "instance_id": s.instance_id,
                    "availability_zone": s.availability_zone,
                    "market": s.market,
                    "spot_interruptions": s.interruptions,
                    "result_key": s.result_key,
                    "reason": s.detail or None,
                }
                for s in statuses
            ],
        }
        data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
        self.local.put_replace(manifest_key(rid), data)
        if cleaned:
            self.s3.put_replace(manifest_key(rid), data, "application/json")

    def _suite_manifest(self) -> dict[str, str] | None:
        """The run's suite in its manifest: which one, and the artifact the tasks ran."""
        suite = self.plan.options.suite
        if suite is None:
            return None
        return {
            "name": suite.name,
            "version": suite.version,
            "artifact_sha256": suite.sha256,
            "artifact_key": artifact_key(suite.sha256, "json"),
        }

    def _journalled_group(self) -> str | None:
        if self.plan.options.security_group:
            return None
        group = self.journal.run(self.plan.run_id).security_group_id
        return group if group and group != "pending" else None
