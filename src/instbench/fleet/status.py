"""What a run knows about its tasks: live (`TaskStatus`, shown by the CLI's view), at its
end (`FleetOutcome`, and the manifest written beside the results) and after a restart (the
spot interruptions counted back from the journal).

Apart from the orchestrator because the CLI, the run entry points and the manifest read
these without needing anything of how a run is executed.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from instbench.fleet.model import Plan, Task
from instbench.results.schema import ResultDocument
from instbench.storage.layout import artifact_key


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
    leftover_placement_groups: list[str] = field(default_factory=list)
    """The run's placement groups that could not be deleted yet (cleanup sweeps them)."""

    @property
    def succeeded(self) -> bool:
        return not self.interrupted and all(s.state == "result_stored" for s in self.statuses)

    @property
    def failures(self) -> list[TaskStatus]:
        return [s for s in self.statuses if s.state != "result_stored"]


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


def run_manifest(
    plan: Plan, statuses: list[TaskStatus], status: str, agent_sha256: str | None
) -> dict[str, Any]:
    """The run's manifest: its options, its end `status` and every task's outcome."""
    return {
        "run_id": plan.run_id,
        "region": plan.region,
        "status": status,
        "collection_method": plan.options.collection_method,
        "benchmarks": list(plan.options.benchmarks),
        "suite": suite_manifest(plan),
        "agent_sha256": agent_sha256,
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


def suite_manifest(plan: Plan) -> dict[str, str] | None:
    """The run's suite in its manifest: which one, and the artifact the tasks ran."""
    suite = plan.options.suite
    if suite is None:
        return None
    return {
        "name": suite.name,
        "version": suite.version,
        "artifact_sha256": suite.sha256,
        "artifact_key": artifact_key(suite.sha256, "json"),
    }
