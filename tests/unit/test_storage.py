"""Storage benchmark: real fio on files and (as root) loop devices; the safety rule.

Tests assert behaviour (what ran, in which order, with which options, what was refused),
never timings.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from instbench.benchmarks import blockdev, storage
from instbench.benchmarks.errors import BenchmarkError, BenchmarkInputError
from instbench.results.schema import StorageResult

needs_fio = pytest.mark.skipif(shutil.which("fio") is None, reason="needs fio")
MIB = 1024**2
READS = ("randread_4k_qd1", "randread_4k_qd32", "read_1m_seq")


def _opts(tmp_path: Path, **kw: object) -> storage.StorageOptions:
    base: dict[str, object] = {
        "quick": True,
        "size_mib": 16,
        "runtime_s": 1,
        "directory": str(tmp_path),
    }
    base.update(kw)
    return storage.StorageOptions(**base)  # type: ignore[arg-type]


@needs_fio
def test_file_run_preconditions_before_reads_with_direct_io(tmp_path: Path) -> None:
    lines: list[str] = []
    section, _ = storage.run_storage(_opts(tmp_path, targets="file"), lines.append)
    result = StorageResult.model_validate(section)  # the schema accepts what the agent writes
    assert result.fio_version.startswith("fio-")
    assert result.refused == []
    (target,) = result.targets
    assert target.medium == "file" and target.skipped is None
    assert [j.name for j in target.jobs] == [name for name, *_ in storage.JOBS]
    pre = target.precondition
    assert pre is not None
    # The whole area was written once before the first read, by a direct sequential write.
    assert pre.io_bytes >= 16 * MIB == target.area_bytes
    assert pre.fio_job_options["rw"] == "write"
    for job in target.jobs:
        if job.name in READS:
            assert pre.ended_unix <= job.started_unix
    # Log order says the same: preconditioning is the first thing fio did.
    fio_lines = [line for line in lines if line.startswith("storage: ")]
    assert "preconditioning" in fio_lines[0]
    # --direct=1 is in effect, by fio's own account of every job.
    for job in [pre, *target.jobs]:
        assert job.fio_job_options["direct"] == "1" and job.direct
        assert job.iops > 0 and job.bw_mb_s > 0 and job.clat_us.p50 is not None
        assert job.clat_us.p99 is not None and job.clat_us.p99_9 is not None
        assert job.clat_us.p50 <= job.clat_us.p99 <= job.clat_us.p99_9
    assert result.direct
    qd32 = next(j for j in target.jobs if j.name == "randread_4k_qd32")
    assert qd32.fio_job_options["iodepth"] == "32" and qd32.fio_job_options["bs"] == "4096"
    # The test file was ours, and it is gone.
    assert list(tmp_path.iterdir()) == []


def test_parse_job_reports_buffered_io_as_not_direct() -> None:
    doc = {
        "jobs": [
            {
                "jobname": "x",
                "error": 0,
                "job options": {"rw": "randread", "direct": "0"},
                "read": {"iops": 5.0, "bw_bytes": 20480, "io_bytes": 1, "runtime": 1},
            }
        ]
    }
    assert storage.parse_job(doc, "randread")["direct"] is False
    doc["jobs"][0]["job options"] = {"rw": "randread"}
    assert storage.parse_job(doc, "randread")["direct"] is False


@needs_fio
def test_standins_and_ratios_from_advertised(tmp_path: Path) -> None:
    advertised = (
        "volume_iops=3000,volume_throughput_mibps=125,ebs_baseline_iops=3600,"
        "ebs_maximum_iops=20000,ebs_baseline_mbps=78.75,ebs_maximum_mbps=1250,"
        "instance_store_disks=1,instance_store_disk_gb=118"
    )
    section, _ = storage.run_storage(_opts(tmp_path, advertised=advertised), lambda _m: None)
    result = StorageResult.model_validate(section)
    assert [t.stands_in_for for t in result.targets] == ["ebs", "instance-store"]
    ebs, store = result.targets
    assert ebs.limits is not None and ebs.limits.iops == 3000
    assert ebs.limits.throughput_mb_s == pytest.approx(125 * MIB / 1e6)
    for job in ebs.jobs:
        limit = ebs.limits.throughput_mb_s if job.block_size_bytes == MIB else ebs.limits.iops
        measured = job.bw_mb_s if job.block_size_bytes == MIB else job.iops
        assert job.ratio_to_limit == pytest.approx(measured / limit)
    assert store.limits is not None and store.limits.iops is None
    assert all(j.ratio_to_limit is None for j in store.jobs)
    assert result.advertised["instance_store_disks"] == 1


def test_bad_advertised_is_input_error() -> None:
    with pytest.raises(BenchmarkInputError, match="unknown advertised key"):
        storage.parse_advertised("volume_iopz=3")
    with pytest.raises(BenchmarkInputError, match="key=number"):
        storage.parse_advertised("volume_iops=$(reboot)")


@needs_fio
def test_existing_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    victim = tmp_path / "precious.img"
    victim.write_bytes(os.urandom(MIB))
    digest = hashlib.sha256(victim.read_bytes()).hexdigest()
    with pytest.raises(BenchmarkError, match="writes only files it creates"):
        storage.run_storage(_opts(tmp_path, targets=str(victim)), lambda _m: None)
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == digest


def test_root_volume_is_refused() -> None:
    root = blockdev.root_disk()
    if root is None or not os.path.exists(f"/dev/{root}"):
        pytest.skip("the root filesystem is not on a block device here (overlay)")
    verdict = blockdev.check_device(f"/dev/{root}")
    assert not verdict.allowed and "root volume" in verdict.reason
    assert f"/dev/{root}" not in [d.path for d in blockdev.data_devices()]


@pytest.mark.skipif(shutil.which("mkfs.ext4") is None, reason="needs mkfs.ext4")
def test_signature_found_in_an_ext4_image(tmp_path: Path) -> None:
    image = tmp_path / "fs.img"
    image.write_bytes(b"\0" * 8 * MIB)
    assert blockdev.signature(str(image)) is None
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    assert blockdev.signature(str(image)) == "ext2/3/4"


# ------------------------------------------------------------------ loop devices


@contextlib.contextmanager
def _loop(image: Path) -> Iterator[str]:
    proc = subprocess.run(
        ["losetup", "-f", "--show", str(image)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        pytest.skip(f"losetup does not work here: {proc.stderr.strip()}")
    dev = proc.stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


needs_root_losetup = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("losetup") is None, reason="needs root and losetup"
)


@needs_root_losetup
@needs_fio
def test_fresh_loop_device_is_measured(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    image.write_bytes(b"\0" * 32 * MIB)
    with _loop(image) as dev:
        assert blockdev.check_device(dev).allowed
        section, _ = storage.run_storage(_opts(tmp_path, targets=dev, size_mib=16), lambda _m: None)
    (target,) = StorageResult.model_validate(section).targets
    assert target.medium == "block-device" and target.path == dev
    assert target.device_size_bytes == 32 * MIB and len(target.jobs) == len(storage.JOBS)
    assert all(j.fio_job_options["direct"] == "1" for j in target.jobs)


@needs_root_losetup
@pytest.mark.skipif(shutil.which("mkfs.ext4") is None, reason="needs mkfs.ext4")
def test_loop_device_with_a_filesystem_is_refused(tmp_path: Path) -> None:
    image = tmp_path / "fs.img"
    image.write_bytes(b"\0" * 32 * MIB)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    before = hashlib.sha256(image.read_bytes()).hexdigest()
    with _loop(image) as dev:
        verdict = blockdev.check_device(dev)
        assert not verdict.allowed and "ext2/3/4 signature" in verdict.reason
        with pytest.raises(BenchmarkError, match="did not create"):
            storage.run_storage(_opts(tmp_path, targets=dev), lambda _m: None)
    assert hashlib.sha256(image.read_bytes()).hexdigest() == before


@needs_root_losetup
@pytest.mark.skipif(shutil.which("mkfs.ext4") is None, reason="needs mkfs.ext4")
def test_mounted_loop_device_is_refused(tmp_path: Path) -> None:
    image = tmp_path / "fs.img"
    image.write_bytes(b"\0" * 32 * MIB)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with _loop(image) as dev:
        proc = subprocess.run(["mount", dev, str(mnt)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"mount does not work here: {proc.stderr.strip()}")
        try:
            verdict = blockdev.check_device(dev)
        finally:
            subprocess.run(["umount", str(mnt)], check=False)
    assert not verdict.allowed and f"mounted at {mnt}" in verdict.reason


def test_directory_that_does_not_exist_is_input_error(tmp_path: Path) -> None:
    opts = _opts(tmp_path, targets="file", directory=str(tmp_path / "nope"))
    if shutil.which("fio") is None:
        pytest.skip("needs fio")
    with pytest.raises(BenchmarkInputError, match="does not exist"):
        storage.run_storage(opts, lambda _m: None)
