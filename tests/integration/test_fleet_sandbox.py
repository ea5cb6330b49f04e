"""The fleet flow against the sandbox, in-process, inspected through the moto API."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from instbench.aws.session import AwsSession
from instbench.fleet.plan import FleetOptions
from instbench.fleet.run import execute, plan_run
from instbench.journal import Journal
from instbench.results.validate import parse_result
from instbench.sandbox.runtime import Sandbox
from instbench.storage.local import LocalStore

LAYOUT = re.compile(
    r"^(raw/[a-z]+/[a-z0-9.-]+/[a-z0-9-]+/\d{4}/\d{2}/\d{2}/[\w.-]+-\d+\.json"
    r"|logs/[\w.-]+/[\w.-]+\.log|runs/[\w.-]+/manifest\.json|artifacts/[0-9a-f]{64}\.pyz)$"
)


def test_fleet_stores_everything_and_leaves_nothing(moto_endpoint: str, tmp_path: Path) -> None:
    with Sandbox(endpoint=moto_endpoint, workdir=tmp_path / "cloud") as sb:
        session = AwsSession(sb.aws_settings())
        opts = FleetOptions(
            instance_types=["m7i.large", "m7a.large", "c7g.large"],
            benchmarks=("stream",),
            bucket=sb.bucket,
            quick=True,
            collection_method="sandbox",
            timeout_s=300,
        )
        plan = plan_run(session, opts, datetime.now(UTC))
        journal = Journal(tmp_path / "journal.sqlite")
        outcome = execute(session, plan, journal, tmp_path / "data", lambda s: None, True)
        assert outcome.succeeded, [(s.task.task_id, s.detail) for s in outcome.failures]

        ec2 = session.ec2()
        reservations = ec2.describe_instances()["Reservations"]
        states = {i["InstanceId"]: i["State"]["Name"] for r in reservations for i in r["Instances"]}
        assert len(states) == 3 and set(states.values()) == {"terminated"}
        for r in reservations:
            for inst in r["Instances"]:
                tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
                assert tags["instbench:run-id"] == plan.run_id
                assert inst["MetadataOptions"]["HttpTokens"] == "required"
        groups = ec2.describe_security_groups(
            Filters=[{"Name": "tag:instbench:run-id", "Values": [plan.run_id]}]
        )["SecurityGroups"]
        assert groups == []

        keys = [o["Key"] for o in session.s3().list_objects_v2(Bucket=sb.bucket)["Contents"]]
        assert [k for k in keys if not LAYOUT.match(k)] == []
        raw_keys = [k for k in keys if k.startswith("raw/")]
        assert len(raw_keys) == 3
        local = LocalStore(tmp_path / "data")
        for key in raw_keys:
            body = session.s3().get_object(Bucket=sb.bucket, Key=key)["Body"].read()
            assert local.read(key) == body  # the mirror holds the same bytes
            assert parse_result(body).metadata.collection_method == "sandbox"
        assert len([k for k in keys if k.startswith("logs/")]) == 3
