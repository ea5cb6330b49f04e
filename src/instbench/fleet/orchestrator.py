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
import json
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from instbench.agentpkg import AgentArchive, build_agent
from instbench.aws import launch, network, quotas
from instbench.aws.metrics import MetricsPublisher
from instbench.aws.session import AwsSession
from instbench.benchmarks import registry
from instbench.errors import CapacityError, CleanupInterrupted, InvalidResult, QuotaExceeded
from instbench.fleet import capacity
from instbench.fleet.plan import SUITE_BENCHMARK, Placement, Plan, Task, watchdog_minutes
from instbench.fleet.userdata import UserDataParams, advertised_text, render_user_data
from instbench.fleet.watch import RunWatcher
from instbench.journal import Journal
from instbench.results.schema import ResultDocument
from instbench.results.validate import parse_result
from instbench.storage.layout import artifact_key, manifest_key, raw_key, safe_component
from instbench.storage.local import AlreadyExists, LocalStore
from instbench.storage.s3 import S3Store

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
        self._created_group: str | None = None
        self.leftover_group: str | None = None
        # vCPUs held per quota class (and under --vcpu-budget): a big type waits for room.
        self.pool = capacity.pool_for_plan(plan, markets=self._markets())
        self.watcher = RunWatcher(
            lambda ids: launch.ended_instances(self.session, ids),
            lambda: self.s3.keys(incoming_prefix(plan.run_id)),
            self.poll.interval_s,
            self.stop,
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
        try:
            self._prepare()
            self.watcher.start()
            with ThreadPoolExecutor(
                max_workers=opts.max_concurrency, thread_name_prefix="task"
            ) as pool:
                futures: dict[Future[None], str] = {}
                for task in self.plan.tasks:
                    if self.statuses[task.task_id].state == "result_stored":
                        continue
                    futures[pool.submit(self._execute, task)] = task.task_id
                pending = set(futures)
                try:
                    while pending:
                        # A timeout keeps the main thread responsive to Ctrl-C.
                        _done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:
                    interrupted = True
                    self.stop.set()
                    self.pool.interrupt()
                    self._notice_interrupt()
                    for fut in pending:
                        fut.cancel()
                    raise
        except KeyboardInterrupt:
            if not interrupted:
                self._notice_interrupt()
            interrupted = True
        finally:
            self.stop.set()
            self.pool.interrupt()
            try:
                self.watcher.close()
                terminated = self._terminate_all()
                self._finish(interrupted)
            except KeyboardInterrupt:
                # The second Ctrl-C: the user wants out now. Say what is left to do.
                raise CleanupInterrupted(self.plan.run_id) from None
        return FleetOutcome(
            run_id=self.plan.run_id,
            statuses=[self.statuses[t.task_id] for t in self.plan.tasks],
            local_root=str(self.local.root),
            bucket=opts.bucket,
            terminated=terminated,
            interrupted=interrupted,
            leftover_group=self.leftover_group,
        )

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

    # ---------------------------------------------------------------- one task

    def _execute(self, task: Task) -> None:
        try:
            self._execute_inner(task)
        except Exception as exc:  # a worker must never die silently
            self._fail(task, f"controller error: {type(exc).__name__}: {exc}")

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
                        if not self._await(task, row.instance_id or ""):
                            return
                    finally:
                        self.pool.release(key, task.vcpus)
                    # Reclaimed by spot while we watched: launch again below.
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
                    if not self._await(task, instance_id):
                        return  # concluded: result stored or failed
                    # Interrupted: EC2 reclaimed the spot instance before the result came.
                    reasons.append(f"spot interruption in {placement.availability_zone}")
                    break  # the next market (on-demand), when --spot-fallback allows one
            finally:
                self.pool.release(key, task.vcpus)
        capacity = any("interruption" not in r for r in reasons)
        self._fail(task, ("no capacity: " if capacity else "") + "; ".join(reasons))

    def _acquire(self, task: Task, key: str) -> bool:
        """Hold the task's vCPUs under its quota class and the budget, waiting for room."""
        if self.pool.limit(key) is not None or self.plan.options.vcpu_budget is not None:
            self._update(task.task_id, detail=f"waiting for {task.vcpus} vCPUs ({key})")
        granted = self.pool.acquire(key, task.vcpus, self.stop)
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
        agent_args = list(opts.agent_args)
        price = self._hourly_price(task, market, place.availability_zone)
        if price is not None:
            agent_args += ["--hourly-price-usd", f"{price:.6g}"]
        if opts.market == "spot":
            agent_args += ["--spot-interruptions", str(status.interruptions)]
        assert self._agent is not None and self.plan.security_group is not None
        expires_s = opts.timeout_s + URL_MARGIN_S
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
            watchdog_minutes=watchdog_minutes(opts.timeout_s),
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
        try:
            instance_id = launch.launch_instance(self.session, spec)
        except CapacityError as exc:
            reasons.append(f"{market} {place.availability_zone}: {exc.code}")
            self._update(task.task_id, detail=f"{exc.code} in {place.availability_zone}")
            return None
        self.journal.transition(rid, task.task_id, "running", instance_id=instance_id)
        self._update(task.task_id, state="running", instance_id=instance_id, detail="")
        return instance_id

    def _await(self, task: Task, instance_id: str) -> bool:
        """Wait for the result, the instance's end, or the deadline; then conclude.

        True when spot reclaimed the instance before its result: not concluded, the caller
        decides whether the task runs again (see `_markets`)."""
        opts = self.plan.options
        key = incoming_key(self.plan.run_id, task.task_id, "result.json")
        deadline = time.monotonic() + opts.timeout_s
        self.watcher.track(instance_id)
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
                        self._fail(
                            task,
                            f"instance {state} without a result ({reason or 'no reason given'})",
                            instance_id,
                        )
                        return False
                if time.monotonic() >= deadline:
                    self._fail(
                        task, f"no result within the timeout ({opts.timeout_s}s)", instance_id
                    )
                    return False
        finally:
            self.watcher.untrack(instance_id)
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
        rid = self.plan.run_id
        raw = self.s3.get(key)
        try:
            doc = parse_result(raw)
            self._check_identity(task, doc)
        except InvalidResult as exc:
            self._quarantine(task, raw, exc.reason)
            self.s3.delete(key)
            self._fail(task, f"invalid result quarantined: {exc.reason}", instance_id)
            return
        meta = doc.metadata
        rkey = raw_key(
            task.benchmark, task.instance_type, meta.region, meta.timestamp, rid, task.sample
        )
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
        self.s3.delete(key)  # the staging copy; raw/ now holds the result
        self._update(
            task.task_id,
            state="result_stored",
            result_key=rkey,
            document=doc,
            finished=time.monotonic(),
            detail="",
        )
        self.metrics.task_result(doc, self.statuses[task.task_id].elapsed(), True)
        if instance_id:
            self._let_shut_down(instance_id, task_log_key(rid, task.task_id))
            self._terminate_task(instance_id)

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
        if instance_id:
            self._save_console(task, instance_id)
            self._terminate_task(instance_id)
        row = self.journal.task(self.plan.run_id, task.task_id)
        if row.state not in {"failed", "result_stored"}:
            self.journal.transition(self.plan.run_id, task.task_id, "failed", reason=reason)
        self._update(task.task_id, state="failed", detail=reason, finished=time.monotonic())
        self.metrics.task_result(
            None,
            self.statuses[task.task_id].elapsed(),
            False,
            instance_type=task.instance_type,
            benchmark=task.benchmark,
        )

    def _terminate_task(self, instance_id: str) -> None:
        launch.terminate_instance(self.session, instance_id)
        self.journal.mark_terminated(self.plan.run_id, [instance_id])

    # -------------------------------------------------------------- the end

    def _terminate_all(self) -> list[str]:
        """Terminate every instance tagged with this run that is not already gone."""
        live = sorted(
            launch.describe_instances_by_run(self.session, self.plan.run_id, launch.LIVE_STATES)
        )
        if live:
            launch.terminate_instances(self.session, live)
            self.journal.mark_terminated(self.plan.run_id, live)
        return live

    def _finish(self, interrupted: bool) -> None:
        rid = self.plan.run_id
        group = self._created_group or self._journalled_group()
        if group:
            ids = [r.instance_id for r in self.journal.tasks(rid) if r.instance_id]
            if network.delete_security_group(self.session, group, ids):
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
