"""The storage chart of a type page: measured IOPS per disk role and job, and the
advertised ceiling drawn only on the disks it applies to."""

from __future__ import annotations

from dataclasses import replace

from instbench.analysis.aggregate import Summary
from instbench.report import charts


def _summary(test: str, metric: str, mean: float) -> Summary:
    return Summary(
        instance_type="m6gd.large",
        benchmark="storage",
        test=test,
        thread_mode="single",
        metric=metric,
        unit="IOPS",
        window="all",
        n=1,
        median=mean,
        mean=mean,
        sd=None,
        cv=None,
        min=mean,
        max=mean,
        ci_low=None,
        ci_high=None,
        median_ci_low=None,
        median_ci_high=None,
        within_sd=None,
        within_cv=None,
        trials=None,
        vcpus=2,
        memory_gib=8.0,
        per_vcpu=None,
        per_gib=None,
        architecture="arm64",
        manufacturer="AWS",
        sockets=1,
        first="2026-12-04",
        last="2026-12-04",
    )


def test_storage_chart_marks_ceilings_only_where_advertised() -> None:
    rows = [
        _summary("ebs/randread_4k_qd32", "iops", 15000.0),
        _summary("instance-store/randread_4k_qd32", "iops", 90000.0),
        _summary("ebs/advertised", "advertised_iops", 16000.0),
    ]
    spec = charts.storage(rows)
    assert spec is not None
    _bars, ticks = spec["layer"]
    assert [v["target"] for v in spec["data"]["values"]] == [
        "ebs · randread_4k_qd32",
        "instance-store · randread_4k_qd32",
    ]
    assert ticks["data"]["values"] == [
        {"target": "ebs · randread_4k_qd32", "role": "ebs", "advertised": 16000.0}
    ]
    svg = charts.render_svg(spec, "storage")
    assert svg.startswith("<svg") and "IOPS (mean over instances)" in svg


def test_no_storage_no_chart() -> None:
    other = replace(_summary("copy", "bandwidth", 10.0), benchmark="stream")
    assert charts.storage([other]) is None
