"""The controller's IAM policy is exactly what the controller calls.

A whole sandbox run (plan, launch, wait, collect, terminate, delete the group), then the
CloudWatch metrics of its tasks, a `sync` of the bucket and a `cleanup` of the run are made
through one controller session carrying the operation recorder. The recorded operations
are then compared with `instbench.aws.policy`: an operation no permission authorises fails
the test, and so does a permission no operation used (unless the table says why the audit
cannot observe it). The simulated instances' own calls are not the controller's and are
excluded by the recorder.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.integration.conftest import OperationRecorder

from instbench.aws.cleanup import sweep
from instbench.aws.metrics import MetricsPublisher
from instbench.aws.policy import audit
from instbench.aws.session import AwsSettings
from instbench.fleet.plan import FleetOptions
from instbench.fleet.run import Target, execute, open_target, plan_run
from instbench.journal import Journal
from instbench.results.validate import parse_result
from instbench.storage.local import LocalStore
from instbench.storage.sync import sync

TYPES = ["m7i.large"]


def test_policy_grants_exactly_what_the_controller_calls(tmp_path: Path) -> None:
    recorder = OperationRecorder()
    messages: list[str] = []
    with open_target(Target(AwsSettings(), sandbox=True), messages.append) as (session, bucket):
        assert bucket
        recorder.attach(session)
        opts = FleetOptions(
            instance_types=TYPES,
            benchmarks=("stream",),
            bucket=bucket,
            quick=True,
            collection_method="sandbox",
        )
        plan = plan_run(session, opts, datetime.now(UTC))
        journal = Journal(tmp_path / "journal.sqlite")
        try:
            outcome = execute(
                session, plan, journal, tmp_path / "data", on_change=lambda _s: None, sandbox=True
            )
        finally:
            journal.close()
        assert outcome.succeeded, messages[-20:]

        publisher = MetricsPublisher(session)
        for path in sorted((tmp_path / "data" / "raw").rglob("*.json")):
            publisher.task_result(parse_result(path.read_bytes()), 12.5, True)
        publisher.run_finished(succeeded=len(TYPES), failed=0, duration_s=60.0)
        assert publisher.sent > 0 and publisher.dropped == 0

        sync(session, bucket, LocalStore(tmp_path / "mirror"))
        sweep(session, now=datetime.now(UTC), run_id=plan.run_id)

    called = recorder.as_mapping()
    assert "ec2:RunInstances" in called, called
    report = audit(called)
    assert report.ok, report.explain() + f"\nrecorded: {sorted(called)}"
