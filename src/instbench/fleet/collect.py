"""Where a run's results arrive, and how one becomes stored data or goes to quarantine.

An instance PUTs its result under incoming/ through a presigned URL; the `Collector` reads
it (bounded), checks that it is the result the task asked for, and stores it locally
first, then under raw/ in S3 (never overwriting), or quarantines it with the reason.

Apart from the orchestrator because this is the one place that decides what counts as a
result: the orchestrator only decides when to look and what a task's instance does next.
The collector gets exactly what it needs (the plan, both stores, the journal and two
callbacks into the run's live status), so it never reaches into the `Fleet`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from instbench.aws.failures import AWS_ERRORS
from instbench.errors import InvalidResult
from instbench.fleet.model import SUITE_BENCHMARK, Plan, Task
from instbench.journal import Journal
from instbench.results.schema import ResultDocument
from instbench.results.validate import MAX_RESULT_BYTES, QUARANTINE_PREFIX_BYTES, parse_result
from instbench.storage.layout import raw_key, safe_component
from instbench.storage.local import AlreadyExists, LocalStore
from instbench.storage.s3 import S3Store


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


def result_key(run_id: str, task_id: str) -> str:
    """Where a task's instance PUTs its result document."""
    return incoming_key(run_id, task_id, "result.json")


class Collector:
    """Turns a result uploaded under incoming/ into a stored one, or a quarantined one.

    `update(task_id, **changes)` changes the task's live status (the Fleet's, shown by
    the CLI); `launched_zone(task_id)` is the zone the task's instance was launched in
    this session (None before a launch, e.g. after a resume: then the journal's)."""

    def __init__(
        self,
        plan: Plan,
        s3: S3Store,
        local: LocalStore,
        journal: Journal,
        *,
        update: Callable[..., None],
        launched_zone: Callable[[str], str | None],
        notice: Callable[[str], None],
    ) -> None:
        self.plan = plan
        self.s3 = s3
        self.local = local
        self.journal = journal
        self._update = update
        self._launched_zone = launched_zone
        self.notice = notice

    def waiting(self) -> frozenset[str]:
        """The results waiting under incoming/ now (empty when AWS does not answer)."""
        try:
            return frozenset(self.s3.keys(incoming_prefix(self.plan.run_id)))
        except AWS_ERRORS:
            return frozenset()

    def still_waiting(self, task: Task, keys: frozenset[str]) -> bool:
        """True when `task`'s result is among `keys` (a listing) and still there."""
        key = result_key(self.plan.run_id, task.task_id)
        if key not in keys:
            return False
        # The snapshot may predate a quarantine that deleted the key: look again.
        try:
            return self.s3.head(key) is not None
        except AWS_ERRORS:
            return False

    def collect(self, task: Task, key: str) -> ResultDocument:
        """Read the result at `key`, validate it, store it and journal the task as
        result_stored; the staging copy is deleted. An invalid result is quarantined (its
        staging copy deleted) and `InvalidResult` raised: the caller fails the task."""
        rid = self.plan.run_id
        # Bounded: HEAD, then at most MAX_RESULT_BYTES + 1 bytes (a presigned PUT may
        # carry 5 GB); of an oversized upload only a prefix is kept, in quarantine.
        raw, oversize = self.s3.get_bounded(key, MAX_RESULT_BYTES, QUARANTINE_PREFIX_BYTES)
        try:
            doc, rkey = self.validated(task, raw, oversize)
        except InvalidResult as exc:
            self._quarantine(task, raw, exc.reason)
            self.s3.delete(key)
            raise
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
        # From here on the result is stored: nothing that fails below (here or in the
        # caller, which ends the instance) may undo that; the staging copy is only a copy.
        try:
            self.s3.delete(key)  # the staging copy; raw/ now holds the result
        except AWS_ERRORS as exc:
            self.notice(f"warning: task {task.task_id}: could not delete {key} ({exc})")
        return doc

    def validated(self, task: Task, raw: bytes, oversize: int | None) -> tuple[ResultDocument, str]:
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
        self.check_identity(task, doc)
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

    def check_identity(self, task: Task, doc: ResultDocument) -> None:
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
        zone = self.task_zone(task)
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

    def task_zone(self, task: Task) -> str | None:
        """The zone the task's instance was launched in (the journal's, after a resume)."""
        zone = self._launched_zone(task.task_id)
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
