"""EBS burst and baseline: the series analysis on synthetic series, the default duration,
the parameter, fio's bandwidth log read back from a real (short) run, tidy rows, cost."""

from __future__ import annotations

import random
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.factories import TablePriceSource, result_document

from instbench.analysis.tidy import document_rows
from instbench.aws.launch import DataVolume
from instbench.benchmarks import registry, storage
from instbench.benchmarks.errors import BenchmarkError, BenchmarkInputError
from instbench.fleet import cost
from instbench.fleet.model import storage_burst_s, task_timeout_s
from instbench.fleet.plan import FleetOptions, Placement, Plan, Task
from instbench.prices import InstancePrice
from instbench.results.schema import ResultDocument, StorageResult

needs_fio = pytest.mark.skipif(shutil.which("fio") is None, reason="needs fio")
BURSTS = {"ebs_baseline_mbps": 156.25, "ebs_maximum_mbps": 1250.0}
FLAT = {"ebs_baseline_mbps": 1250.0, "ebs_maximum_mbps": 1250.0}


def _series(rates: list[float]) -> list[tuple[float, float]]:
    return [(float(i + 1), r) for i, r in enumerate(rates)]


# ------------------------------------------------------------------ analysis


def test_step_down_gives_burst_sustained_and_when_it_fell() -> None:
    out = storage.analyse_burst(_series([1000.0] * 30 + [250.0] * 30))
    assert out["burst_mb_s"] == 1000.0 and out["sustained_mb_s"] == 250.0
    assert out["fell"] is True
    assert out["seconds_until_fall"] == 30.0  # the 30th interval ended at 30 s
    assert out["samples"] == 60


def test_no_step_did_not_fall() -> None:
    rng = random.Random(7)
    out = storage.analyse_burst(_series([500.0 * rng.uniform(0.9, 1.1) for _ in range(120)]))
    assert out["fell"] is False and out["seconds_until_fall"] is None
    assert 450 <= out["burst_mb_s"] <= 550 and 450 <= out["sustained_mb_s"] <= 550


def test_noise_and_single_outliers_move_neither_rate_nor_fall_time() -> None:
    rng = random.Random(11)
    rates = [1000.0 * rng.uniform(0.9, 1.1) for _ in range(100)]
    rates += [200.0 * rng.uniform(0.9, 1.1) for _ in range(100)]
    rates[40] = 150.0  # one slow interval during the burst
    rates[150] = 1100.0  # one fast interval after the fall
    out = storage.analyse_burst(_series(rates))
    assert out["fell"] is True and out["seconds_until_fall"] == 100.0
    assert 900 <= out["burst_mb_s"] <= 1100 and 180 <= out["sustained_mb_s"] <= 220


def test_fall_in_the_last_intervals_is_found() -> None:
    out = storage.analyse_burst(_series([800.0] * 8 + [100.0] * 2))
    assert out["fell"] is True and out["seconds_until_fall"] == 8.0


def test_a_small_dip_is_not_a_fall() -> None:
    out = storage.analyse_burst(_series([1000.0] * 20 + [900.0] * 20))
    assert out["fell"] is False and out["seconds_until_fall"] is None


def test_too_few_intervals_is_an_error() -> None:
    with pytest.raises(BenchmarkError, match="3 interval"):
        storage.analyse_burst(_series([1.0, 2.0, 3.0]))


def test_bw_log_is_read_in_kib_per_second() -> None:
    text = "1000, 976563, 1, 0, 0\n500, 1000, 1, 0, 0\n\ngarbage\n"
    assert storage.parse_bw_log(text) == [
        (0.5, pytest.approx(1.024)),
        (1.0, pytest.approx(1000.000512)),
    ]


# ------------------------------------------------------------------ duration


def test_default_duration_follows_the_type() -> None:
    assert storage.ebs_bursts(BURSTS) and not storage.ebs_bursts(FLAT)
    assert not storage.ebs_bursts({})
    assert storage.default_burst_s(BURSTS, False, "aws") == storage.BURST_S
    assert storage.default_burst_s(FLAT, False, "aws") == 0
    assert storage.default_burst_s(BURSTS, False, "sandbox") == 0  # a file has no burst
    assert storage.default_burst_s(FLAT, True, "aws") == storage.QUICK_BURST_S
    assert storage.BURST_S >= 30 * 60  # AWS's documented 30 minutes fit in it


def test_burst_parameter_is_typed_and_bounded() -> None:
    param = {p.name: p for p in registry.info("storage").parameters}["burst_s"]
    assert param.parse("600", "storage") == 600
    with pytest.raises(BenchmarkInputError, match="burst_s must be >= 0"):
        param.parse("-1", "storage")
    with pytest.raises(BenchmarkInputError, match="burst_s must be <="):
        param.parse(str(storage.MAX_BURST_S + 1), "storage")
    with pytest.raises(BenchmarkInputError, match="an integer"):
        param.parse("10m", "storage")


def test_controller_duration_param_overrides_the_default() -> None:
    opts = FleetOptions(["m7i.large"], ("storage",), "b")
    assert storage_burst_s(opts, BURSTS) == storage.BURST_S
    assert storage_burst_s(opts, FLAT) == 0
    opts = FleetOptions(["m7i.large"], ("storage",), "b", params={"storage": {"burst_s": 60}})
    assert storage_burst_s(opts, FLAT) == 60


# ------------------------------------------------------------------ real fio


@needs_fio
def test_quick_run_measures_a_burst_on_the_ebs_standin_only(tmp_path: Path) -> None:
    opts = storage.StorageOptions(
        quick=True,
        size_mib=16,
        runtime_s=1,
        directory=str(tmp_path),
        advertised="ebs_baseline_mbps=156.25,ebs_maximum_mbps=1250,instance_store_disks=1",
    )
    section, _ = storage.run_storage(opts, lambda _m: None)
    result = StorageResult.model_validate(section)
    assert result.burst_s == storage.QUICK_BURST_S
    ebs, store = result.targets
    assert store.burst is None
    burst = ebs.burst
    assert burst is not None and burst.publishable is False
    assert burst.direct and burst.rw == "write" and burst.duration_s == storage.QUICK_BURST_S
    # fio's log at 0.5 s over 3 s: several intervals, each positive, in time order.
    assert burst.samples == len(burst.series_mb_s) >= storage.MIN_BURST_SAMPLES
    times = [t for t, _ in burst.series_mb_s]
    assert times == sorted(times) and all(r > 0 for _, r in burst.series_mb_s)
    assert burst.burst_mb_s > 0 and burst.sustained_mb_s > 0
    assert burst.baseline_mb_s == 156.25 and burst.maximum_mb_s == 1250
    assert burst.sustained_ratio_to_baseline == pytest.approx(burst.sustained_mb_s / 156.25)
    assert burst.io_seconds_before is not None and burst.io_seconds_before > 0
    assert ebs.jobs[-1].ended_unix <= burst.started_unix  # after the jobs
    assert list(tmp_path.iterdir()) == []


@needs_fio
def test_burst_zero_skips_it(tmp_path: Path) -> None:
    opts = storage.StorageOptions(
        quick=True, size_mib=16, runtime_s=1, directory=str(tmp_path), burst_s=0
    )
    section, _ = storage.run_storage(opts, lambda _m: None)
    assert section["burst_s"] == 0
    assert all(t["burst"] is None for t in section["targets"])


# ------------------------------------------------------------------ tidy rows


def _burst(publishable: bool) -> dict[str, Any]:
    return {
        "duration_s": 2400,
        "interval_s": 1.0,
        "rw": "write",
        "block_size_bytes": 2**20,
        "iodepth": 8,
        "mean_mb_s": 600.0,
        "direct": True,
        "started_unix": 1.0,
        "ended_unix": 2401.0,
        "series_mb_s": [[1.0, 1250.0], [2.0, 160.0]],
        "samples": 2400,
        "burst_mb_s": 1250.0,
        "sustained_mb_s": 160.0,
        "fell": True,
        "seconds_until_fall": 1500.0,
        "io_seconds_before": 200.0,
        "maximum_mb_s": 1250.0,
        "baseline_mb_s": 156.25,
        "burst_ratio_to_maximum": 1.0,
        "sustained_ratio_to_baseline": 160.0 / 156.25,
        "publishable": publishable,
    }


def _storage_document(
    burst: dict[str, Any] | None, names: tuple[str, ...] = ("write_1m_seq",)
) -> ResultDocument:
    job = {
        "name": names[0],
        "rw": "write",
        "block_size_bytes": 2**20,
        "iodepth": 8,
        "iops": 1000.0,
        "bw_mb_s": 1048.576,
        "io_bytes": 2**30,
        "runtime_ms": 1000,
        "clat_us": {"p50": 1.0, "p99": 2.0, "p99_9": 3.0, "mean": 1.5},
        "direct": True,
        "ioengine": "libaio",
        "fio_job_options": {"direct": "1"},
        "started_unix": 0.5,
        "ended_unix": 0.9,
    }
    target = {
        "path": "/dev/nvme1n1",
        "medium": "block-device",
        "role": "ebs",
        "precondition": None,
        "jobs": [{**job, "name": name} for name in names],
        "skipped": None,
        "burst": burst,
    }
    section = {
        "version": storage.VERSION,
        "fio_version": "fio-3.33",
        "ioengine": "libaio",
        "direct": True,
        "size_bytes": 2**30,
        "runtime_s": 30,
        "burst_s": 2400,
        "advertised": {},
        "targets": [target],
        "refused": [],
    }
    doc = result_document("m7i.large")
    doc["performance_data"] = {"storage": section}  # a storage task's document
    doc["metadata"]["benchmark_suite"] = ["storage"]
    return ResultDocument.model_validate(doc)


@pytest.mark.parametrize("publishable", [True, False])
def test_tidy_rows_of_a_burst_only_when_publishable(publishable: bool) -> None:
    doc = _storage_document(_burst(publishable))
    rows = [
        r
        for r in document_rows(doc, "k", "s")
        if "/burst" in r["test"] or "/sustained" in r["test"]
    ]
    if not publishable:
        assert rows == []
        return
    got = {(r["test"], r["metric"]): (r["value"], r["unit"]) for r in rows}
    assert got == {
        ("ebs/burst", "throughput"): (1250.0, "MB/s"),
        ("ebs/burst", "limit_ratio"): (1.0, "ratio"),
        ("ebs/sustained", "throughput"): (160.0, "MB/s"),
        ("ebs/sustained", "limit_ratio"): (pytest.approx(160.0 / 156.25), "ratio"),
        ("ebs/burst", "seconds_until_fall"): (1500.0, "s"),
    }


# ------------------------------------------------------------------ cost


def _plan(burst_s: int) -> Plan:
    opts = FleetOptions(["m7i.large"], ("stream", "storage"), "b", timeout_s=1800)
    tasks = [
        Task("m7i.large-stream-0", "m7i.large", "stream", 0, "x86_64", "ami-1", 2),
        Task("m7i.large-storage-0", "m7i.large", "storage", 0, "x86_64", "ami-1", 2, burst_s),
    ]
    return Plan(
        run_id="r",
        region="us-east-1",
        tasks=tasks,
        placements=[Placement("us-east-1a", None)],
        vpc_id="vpc-1",
        security_group=None,
        images={"x86_64": "ami-1"},
        expires_at=datetime(2025, 3, 5, tzinfo=UTC),
        options=opts,
    )


def test_burst_is_billed_on_top_of_the_timeout_with_its_volume() -> None:
    plan = _plan(2400)
    assert task_timeout_s(plan.options, plan.tasks[1]) == 1800 + 2400
    prices = TablePriceSource({"m7i.large": InstancePrice(on_demand=0.1)})
    est = cost.estimate_plan(plan, prices)
    stream, store = est.tasks
    assert stream.seconds == cost.billed_seconds(1800) and stream.burst_s == 0
    assert store.seconds == cost.billed_seconds(1800 + 2400) and store.burst_s == 2400
    hourly = 0.1 + cost.data_volume_hourly_usd(DataVolume())
    assert store.burst_cost_usd == pytest.approx(hourly * 2400 / 3600)
    assert store.cost_usd == pytest.approx(hourly * store.seconds / 3600)
    assert "EBS burst run adds 40 min" in est.basis
    # --max-cost counts it: enough without the burst is not enough with it.
    without = cost.estimate_plan(_plan(0), prices).total_usd
    assert without is not None and est.total_usd is not None and without < est.total_usd
    cost.enforce_max_cost(cost.estimate_plan(_plan(0), prices), without * 1.001)
    with pytest.raises(cost.CostTooHigh):
        cost.enforce_max_cost(est, without * 1.001)


# ------------------------------------------------------------------ run table


def test_run_table_headline_of_a_storage_task() -> None:
    from instbench.cli.run_cmd import _headline

    names = ("randread_4k_qd32", "read_1m_seq")
    doc = _storage_document(_burst(True), names)
    assert _headline(doc) == (
        "ebs: randread 4k QD32 1.0k IOPS, seq read 1M 1049 MB/s; "
        "EBS burst 1250 MB/s for 25 min, then 160 MB/s"
    )
    quick = _storage_document(_burst(False), names)  # a quick run's burst is not shown
    assert _headline(quick) == "ebs: randread 4k QD32 1.0k IOPS, seq read 1M 1049 MB/s"
    flat = _burst(True) | {"fell": False, "seconds_until_fall": None}
    assert _headline(_storage_document(flat, names)).endswith(
        "EBS burst 1250 MB/s, did not fall in 40 min"
    )
