"""The storage benchmark through the fleet in the sandbox: a gp3 data volume per task
that exists in moto while the task runs and is gone afterwards, advertised limits from
DescribeInstanceTypes in every result, and an instance-store section for m6gd.large."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from instbench.aws.launch import DATA_VOLUME_DEVICE, DataVolume
from instbench.aws.session import AwsSession
from instbench.benchmarks import storage
from instbench.errors import UserError
from instbench.fleet.plan import FleetOptions
from instbench.fleet.run import execute, plan_run
from instbench.journal import Journal
from instbench.results.validate import parse_result
from instbench.sandbox.runtime import Sandbox
from instbench.storage.local import LocalStore


def test_storage_tasks_get_a_data_volume_that_is_gone_afterwards(
    moto_endpoint: str, tmp_path: Path
) -> None:
    with Sandbox(endpoint=moto_endpoint, workdir=tmp_path / "cloud") as sb:
        session = AwsSession(sb.aws_settings())
        ec2 = session.ec2()
        seen: list[dict[str, Any]] = []

        def volumes_after_launch(parsed: dict[str, Any], **_kw: Any) -> None:
            for inst in parsed.get("Instances", []):
                found = ec2.describe_volumes(
                    Filters=[{"Name": "attachment.instance-id", "Values": [inst["InstanceId"]]}]
                )["Volumes"]
                seen.extend(found)

        requested: list[dict[str, Any]] = []

        def mappings_sent(params: dict[str, Any], **_kw: Any) -> None:
            requested.extend(params.get("BlockDeviceMappings", []))

        ec2.meta.events.register("after-call.ec2.RunInstances", volumes_after_launch)
        ec2.meta.events.register("provide-client-params.ec2.RunInstances", mappings_sent)
        opts = FleetOptions(
            instance_types=["m6gd.large", "m7i.large"],
            benchmarks=("storage",),
            bucket=sb.bucket,
            quick=True,
            collection_method="sandbox",
            timeout_s=300,
            data_volume=DataVolume(size_gib=64, iops=6000, throughput_mibps=500),
        )
        plan = plan_run(session, opts, datetime.now(UTC))
        journal = Journal(tmp_path / "journal.sqlite")
        outcome = execute(session, plan, journal, tmp_path / "data", lambda s: None, True)
        assert outcome.succeeded, [(s.task.task_id, s.detail) for s in outcome.failures]

        data = [v for v in seen if v["Attachments"][0]["Device"] == DATA_VOLUME_DEVICE]
        assert len(data) == 2  # one per task, while it ran
        for vol in data:
            assert vol["VolumeType"] == "gp3" and vol["Size"] == 64
            assert vol["Encrypted"]  # moto keeps neither Iops nor Throughput: see below
            tags = {t["Key"]: t["Value"] for t in vol.get("Tags", [])}
            assert tags["instbench:run-id"] == plan.run_id
        assert ec2.describe_volumes()["Volumes"] == []  # nothing left behind
        sent = [m["Ebs"] for m in requested if m["DeviceName"] == DATA_VOLUME_DEVICE]
        assert len(sent) == 2
        for ebs_request in sent:
            assert ebs_request == {
                "VolumeType": "gp3",
                "VolumeSize": 64,
                "Iops": 6000,
                "Throughput": 500,
                "Encrypted": True,
                "DeleteOnTermination": True,
            }

        local = LocalStore(tmp_path / "data")
        docs = {}
        for key in local.keys("raw/storage/"):
            doc = parse_result(local.read(key))
            docs[doc.metadata.instance_type] = doc
        assert sorted(docs) == ["m6gd.large", "m7i.large"]
        for name, doc in docs.items():
            section = doc.performance_data.storage
            assert section is not None and section.direct
            assert section.advertised["volume_iops"] == 6000
            assert section.advertised["volume_throughput_mibps"] == 500
            ebs = [t for t in section.targets if t.stands_in_for == "ebs"]
            assert len(ebs) == 1 and ebs[0].limits is not None
            assert len(ebs[0].jobs) == 6
            for job in ebs[0].jobs:
                assert job.ratio_to_limit is not None and job.clat_us.p99_9 is not None
            stores = [t for t in section.targets if t.stands_in_for == "instance-store"]
            if name == "m6gd.large":
                assert section.advertised["ebs_maximum_iops"] == 20000
                assert section.advertised["instance_store_disks"] == 1
                assert section.advertised["instance_store_total_gb"] == 118
                assert len(stores) == 1 and len(stores[0].jobs) == 6
                assert ebs[0].limits.iops == 6000  # the volume, below the type's 20000
                assert ebs[0].limits.throughput_mb_s == pytest.approx(500 * 1024**2 / 1e6)
            else:
                assert section.advertised["ebs_maximum_mbps"] == 1250
                assert "instance_store_disks" not in section.advertised and stores == []
            # --quick runs the burst path for seconds on the EBS stand-in, never published.
            assert section.burst_s == storage.QUICK_BURST_S
            burst = ebs[0].burst
            assert burst is not None and not burst.publishable and burst.samples >= 4
            assert all(t.burst is None for t in stores)
        assert {t.burst_s for t in plan.tasks} == {storage.QUICK_BURST_S}


def test_bad_data_volume_is_a_one_line_error() -> None:
    with pytest.raises(UserError, match=r"0\.25 MiB/s per IOPS"):
        DataVolume(size_gib=100, iops=3000, throughput_mibps=1000).check()
    with pytest.raises(UserError, match="500 IOPS per GiB"):
        DataVolume(size_gib=8, iops=16000, throughput_mibps=125).check()
