"""Run a planned fleet: launch, wait for results, validate, store, terminate.

Each task runs in a worker thread (at most `max_concurrency` at once, `fleet/workers.py`):

    journal launching -> run_instances (capacity failover across placements; what is
                         launched: `fleet/launching.py`)
    journal running   -> wait for incoming/{run}/{task}/result.json, watching the
                         instance's state and the deadline (one watcher polls for all
                         tasks: `fleet/watch.py`)
    validate          -> store locally first, then raw/ in S3 (never overwriting)
                         or quarantine with the reason (`fleet/collect.py`)
    terminate         -> whatever is still running

This module is the flow itself: `Fleet._execute` (launch, `_await`, then `_collect`,
`_fail` or `_interrupted`) for one task, `Fleet.run` around all of them. Whatever happens
(an exception, Ctrl-C), `run()` ends by terminating every instance tagged with the run id
and deleting the run's own security group (`fleet/resources.py`), then writes the manifest
(`fleet/status.py`). The journal is written before each state-changing call, so a killed
controller can be resumed or cleaned up.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from instbench.aws import launch, quotas
from instbench.aws.failures import AWS_ERRORS
from instbench.aws.metrics import MetricsPublisher
from instbench.aws.session import AwsSession
from instbench.errors import (
    CapacityError,
    CleanupIncomplete,
    CleanupInterrupted,
    InvalidResult,
    QuotaExceeded,
)
from instbench.fleet import capacity, launching, pairs
from instbench.fleet.collect import Collector, incoming_prefix, result_key, task_log_key
from instbench.fleet.model import Placement, Plan, Task, task_timeout_s
from instbench.fleet.resources import RunResources
from instbench.fleet.status import (
    INTERRUPTION_REASON,
    FleetOutcome,
    TaskStatus,
    interruptions_in,
    run_manifest,
)
from instbench.fleet.watch import RunWatcher
from instbench.fleet.workers import CleanupBound, PollPolicy, Workers
from instbench.journal import Journal
from instbench.storage.layout import manifest_key
from instbench.storage.local import AlreadyExists, LocalStore
from instbench.storage.s3 import ObjectNotFound, S3Store


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
        self.collector = Collector(
            plan,
            self.s3,
            local,
            journal,
            update=self._update,
            launched_zone=lambda task_id: self.statuses[task_id].availability_zone,
            notice=self.notice,
        )
        self.resources = RunResources(session, plan, journal, self.s3)
        # The server of each pair task and the ports of its attempts (`fleet/pairs.py`).
        # The sandbox runs every instance on this machine: one pair at a time, so a
        # client never waits behind another pair's server for a slot (see `Target`).
        self.servers = pairs.PairServers(session, plan, journal, self.s3, self.notice)
        self._pair_gate = threading.Lock()
        self.leftover_group: str | None = None
        self.leftover_placement_groups: list[str] = []
        # vCPUs held per quota class (and under --vcpu-budget): a big type waits for room.
        self.pool = capacity.pool_for_plan(plan, markets=launching.markets(self.plan.options))
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
        workers: Workers | None = None
        try:
            self.resources.prepare()
            self.servers.open_ingress(self.resources.created_group)
            self.servers.create_placement_groups()
            self.watcher.start()
            workers = Workers(opts.max_concurrency)
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
                        if not self._collect_late(workers, self.collector.waiting(), late):
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
            leftover_placement_groups=self.leftover_placement_groups,
        )

    def _end_run(self, interrupted: bool) -> list[str]:
        """Terminate what is left, journal the outcome, write the manifest.

        After Ctrl-C this gets `cleanup_bound_s`: then a hung endpoint ends the run as a
        second Ctrl-C would (the user is told to run cleanup) instead of holding the
        terminal for as long as botocore keeps retrying."""
        rid = self.plan.run_id
        bound = CleanupBound(self.poll.cleanup_bound_s) if interrupted else None
        failure: BaseException | None = None
        terminated: list[str] = []
        try:
            try:
                self.watcher.close()
                terminated = self.resources.terminate_all()
                self.servers.close()
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

    def _endpoint_warning(self, message: str) -> None:
        if message.startswith("warning"):
            message += (
                "; if it does not come back, press Ctrl-C and later run: "
                f"instbench cleanup --run-id {self.plan.run_id}"
            )
        self.notice(message)

    def _collect_late(self, workers: Workers, keys: frozenset[str], seen: set[str]) -> bool:
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
            if self.collector.still_waiting(task, keys):
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
                self._collect(task, instance, result_key(rid, task.task_id))
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

    # ---------------------------------------------------------------- one task

    def _execute(self, task: Task) -> None:
        sandbox_pair = pairs.is_pair(task) and self.servers.sandbox
        with self._pair_gate if sandbox_pair else contextlib.nullcontext():
            try:
                self._execute_inner(task)
            except Exception as exc:  # a worker must never die silently
                self._fail(task, f"controller error: {type(exc).__name__}: {exc}")
            finally:
                self._end_server(task, "pair concluded")

    def _end_server(self, task: Task, why: str) -> None:
        """End the pair's server, if it has one: after its shutdown grace when the pair's
        result is stored (it uploads and powers off, as a task's instance does), else
        keeping its console beside its client's."""
        state = self.statuses[task.task_id].state
        log_key = task_log_key(self.plan.run_id, pairs.server_task_id(task))

        def before(server: str) -> None:
            if state == "result_stored":
                self._let_shut_down(server, log_key)
            else:
                self._save_console(task, server)

        self.servers.end(task, why, before)

    def _execute_inner(self, task: Task) -> None:
        if self.stop.is_set():
            return
        self._update(task.task_id, started=time.monotonic())
        row = self.journal.task(self.plan.run_id, task.task_id)
        first_attempt = 0
        if self.resume and row.state != "planned":
            # A pair's server journalled as launched and not ended: watched with its
            # client below, or ended with the pair (`_execute`), never left running.
            server = self.servers.reattach(task)
            # A result that arrived while the controller was away is collected, not rerun.
            key = result_key(self.plan.run_id, task.task_id)
            if self.s3.head(key) is not None:
                if row.state in {"launching", "failed"}:
                    self.journal.transition(self.plan.run_id, task.task_id, "running")
                self._collect(task, row.instance_id, key)
                return
            live = row.instance_id and not row.terminated
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
                        self.pool.release(key, task.held_vcpus)
                    # Reclaimed by spot while we watched: launch again below.
            # A server of the last attempt never serves the client launched below.
            self._end_server(task, "resume launches the pair again")
            if row.state == "failed":
                self.journal.transition(self.plan.run_id, task.task_id, "planned")
            # A new attempt gets a new ClientToken, so EC2 launches a new instance.
            first_attempt = row.attempt + 1
        reasons: list[str] = []
        attempt = first_attempt
        for market in launching.markets(self.plan.options):
            key = quotas.pool_key(task.instance_type, market)
            try:
                if not self._acquire(task, key):
                    return  # stopped while waiting for room
            except QuotaExceeded as exc:
                reasons.append(f"{market}: {exc}")
                continue
            try:
                for placement in launching.placements_for(self.plan, task):
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
                self.pool.release(key, task.held_vcpus)
        capacity = any("interruption" not in r for r in reasons)
        self._fail(task, ("no capacity: " if capacity else "") + "; ".join(reasons))

    def _acquire(self, task: Task, key: str) -> bool:
        """Hold the task's vCPUs under its quota class and the budget, waiting for room."""
        if self.pool.limit(key) is not None or self.plan.options.vcpu_budget is not None:
            self._update(task.task_id, detail=f"waiting for {task.held_vcpus} vCPUs ({key})")
        granted = self.pool.acquire(key, task.held_vcpus, self.stop)
        if granted:
            self._update(task.task_id, detail="")
        return granted

    def _launch(
        self, task: Task, place: Placement, attempt: int, reasons: list[str], market: str
    ) -> str | None:
        status = self.statuses[task.task_id]
        zone = place.availability_zone
        price = launching.hourly_price(self.session, self.plan, task, market, zone)
        assert self.resources.agent is not None
        port = self.servers.take_port(task)  # a pair's: fresh for every attempt
        params = launching.user_data_params(
            self.plan,
            task,
            market,
            agent=self.resources.agent,
            s3=self.s3,
            price=price,
            interruptions=status.interruptions,
            port=port,
        )
        spec = launching.spec_for(self.plan, task, place, market, attempt, params)
        rid = self.plan.run_id
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
            try:
                expires_s = task_timeout_s(self.plan.options, task) + launching.URL_MARGIN_S
                spec = self.servers.launch(task, spec, params, port, expires_s)
            except CapacityError as exc:
                reasons.append(f"{market} {zone} (server): {exc.code}")
                self._update(task.task_id, detail=f"{exc.code} in {zone}")
                return None
            except pairs.NoPeer as exc:
                reasons.append(str(exc))
                return None
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

    def _await(self, task: Task, instance_id: str, server: str | None = None) -> bool:
        """Wait for the result, the instance's end, or the deadline; then conclude.

        True when spot reclaimed the instance (or a pair's `server`) before its result:
        not concluded, the caller decides whether the task runs again (see
        `launching.markets`). A pair's server that ends having served leaves the outcome
        to its client; one that ends without serving fails the pair at once."""
        opts = self.plan.options
        key = result_key(self.plan.run_id, task.task_id)
        task_s = task_timeout_s(opts, task)
        deadline = time.monotonic() + task_s
        watched = [instance_id] if server is None else [instance_id, server]
        for instance in watched:
            self.watcher.track(instance)
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
                    # A pair's server first: a client whose server died fails soon after,
                    # often in the same round, and the server's end is the reason.
                    if server is not None and server in snap.states:
                        verdict, why = self.servers.verdict(task, server, *snap.states[server])
                        if verdict == "interrupted":
                            self._interrupted(task, instance_id, f"pair server {server}: {why}")
                            return True
                        if verdict == "failed":
                            self._fail(task, why, instance_id)
                            return False
                        server = None  # it served: its client's end decides
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
                        self._fail(
                            task,
                            f"instance {state} without a result ({reason or 'no reason given'})",
                            instance_id,
                        )
                        return False
                if time.monotonic() >= deadline:
                    self._fail(task, f"no result within the timeout ({task_s}s)", instance_id)
                    return False
        finally:
            for instance in watched:
                self.watcher.untrack(instance)
        return False

    def _interrupted(self, task: Task, instance_id: str, reason: str) -> None:
        """Record a spot interruption: console kept, journal told, the count raised."""
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
        """Store the task's result (or quarantine it and fail the task: `fleet/collect.py`),
        then let its instance upload its log and end it."""
        try:
            doc = self.collector.collect(task, key)
        except InvalidResult as exc:
            self._fail(task, f"invalid result quarantined: {exc.reason}", instance_id)
            return
        self.metrics.task_result(doc, self.statuses[task.task_id].elapsed(), True)
        # An instance that cannot be ended now (EC2 racing its own shutdown, a throttled
        # call) is ended by the end-of-run sweep: the result stays stored.
        if instance_id:
            try:
                self._let_shut_down(instance_id, task_log_key(self.plan.run_id, task.task_id))
                self._terminate_task(instance_id)
            except AWS_ERRORS as exc:
                self.notice(
                    f"warning: task {task.task_id}: result stored, but terminating "
                    f"{instance_id} failed ({type(exc).__name__}: {exc}); the end-of-run "
                    "sweep tries again"
                )

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

    def _finish(self, interrupted: bool, cleaned: bool = True) -> None:
        """Journal the run's end and write its manifest (locally first).

        `cleaned` is False when the instances could not be terminated (AWS gone): then
        the group is left to cleanup and only what needs no AWS call is sure to happen."""
        rid = self.plan.run_id
        self.leftover_group = self.resources.release_group(cleaned)
        self.leftover_placement_groups = self.resources.release_placement_groups(cleaned)
        statuses = [self.statuses[t.task_id] for t in self.plan.tasks]
        ok = all(s.state == "result_stored" for s in statuses)
        status = "interrupted" if interrupted else ("succeeded" if ok else "failed")
        self.journal.set_run_status(rid, status)
        stored = sum(1 for s in statuses if s.state == "result_stored")
        self.metrics.run_finished(
            stored, len(statuses) - stored, time.monotonic() - self._run_started
        )
        agent = self.resources.agent
        manifest = run_manifest(self.plan, statuses, status, agent.sha256 if agent else None)
        data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
        self.local.put_replace(manifest_key(rid), data)
        if cleaned:
            self.s3.put_replace(manifest_key(rid), data, "application/json")
