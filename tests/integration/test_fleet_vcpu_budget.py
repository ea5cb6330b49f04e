"""Quota-aware scheduling in a real (sandbox) fleet: --vcpu-budget holds tasks back.

Two 2-vCPU types under a 2-vCPU budget with room for two tasks at once: the second task
may launch only once the first instance has ended, which the journal's event order shows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from instbench.aws.session import AwsSession
from instbench.fleet.plan import FleetOptions
from instbench.fleet.run import execute, plan_run
from instbench.journal import Journal
from instbench.sandbox.runtime import Sandbox


def test_budget_serialises_tasks_that_would_not_fit_together(
    moto_endpoint: str, tmp_path: Path
) -> None:
    with Sandbox(endpoint=moto_endpoint, workdir=tmp_path / "cloud", max_parallel=2) as sb:
        session = AwsSession(sb.aws_settings())
        opts = FleetOptions(
            instance_types=["m7i.large", "c7g.large"],
            benchmarks=("idle",),
            bucket=sb.bucket,
            collection_method="sandbox",
            max_concurrency=2,
            vcpu_budget=2,
            timeout_s=120,
            agent_args=["--duration-s", "1"],
        )
        plan = plan_run(session, opts, datetime.now(UTC))
        assert {t.vcpus for t in plan.tasks} == {2}
        journal = Journal(tmp_path / "journal.sqlite")
        outcome = execute(session, plan, journal, tmp_path / "data", lambda s: None, True)
        assert outcome.succeeded, [s.detail for s in outcome.statuses]
        events = journal.events(outcome.run_id)
        terminated = [
            (i["InstanceId"], i["State"]["Name"])
            for r in session.ec2().describe_instances()["Reservations"]
            for i in r["Instances"]
        ]

    order = [(task, event) for _at, task, event, _detail in events if task]
    launches = [i for i, (_t, e) in enumerate(order) if e == "planned->launching"]
    stored = [i for i, (_t, e) in enumerate(order) if e == "running->result_stored"]
    assert len(launches) == 2 and len(stored) == 2
    first_task = order[launches[0]][0]
    first_done = next(i for i in stored if order[i][0] == first_task)
    # The second launch waited for the first task to finish (and its instance to end).
    assert launches[1] > first_done
    assert {state for _iid, state in terminated} == {"terminated"}
