"""Plausibility of the latency sweep: what a machine can produce, or quarantine with a reason.

Accepted: factory sweeps (one and two sockets) and a recorded real sweep. Rejected, each
with a one-line reason that ingest writes beside the quarantined copy: latencies outside
physical ranges, plateaus out of order, figures that do not follow from the points or
samples, bandwidth above a single thread's ceiling, NUMA figures that contradict the
machine; non-finite or negative numbers fail the schema before any rule.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.factories import raw_key_of, store_documents
from tests.unit.analysis.test_compass_documents import full_document, recorded, with_changes

from instbench.analysis.ingest import examine, ingest
from instbench.analysis.plausibility import (
    L1_LATENCY_NS,
    MEMORY_LATENCY_NS,
    check_latency,
)
from instbench.errors import InvalidResult
from instbench.results.validate import validate_document


def _reason(doc: dict[str, Any]) -> str:
    with pytest.raises(InvalidResult) as info:
        examine(json.dumps(doc).encode(), raw_key_of(doc))
    return info.value.reason


def _level(doc: dict[str, Any], name: str) -> dict[str, Any]:
    level: dict[str, Any] = doc["performance_data"]["latency"]["levels"][name]
    return level


def _set_level_latency(doc: dict[str, Any], name: str, ns: float) -> dict[str, Any]:
    """Move a whole plateau (its points, their samples and the level) to `ns`: the
    figures stay self-consistent, so only the range or order rule can object."""
    level = _level(doc, name)
    lo, hi = level["size_range_bytes"]
    for p in doc["performance_data"]["latency"]["points"]:
        if lo <= p["size_bytes"] <= hi:
            p["latency_ns"] = ns
            p["latency_samples_ns"] = [ns * 1.02, ns]
    level["latency_ns"] = ns
    return doc


def test_realistic_sweeps_are_accepted() -> None:
    for doc in (
        full_document("m7i.large"),
        full_document("c7g.large"),
        full_document("m7i.48xlarge", remote=(140.0, 9.0)),
    ):
        check_latency(validate_document(doc))
    latency = recorded("latency")
    check_latency(validate_document(latency))
    # The recorded VM: L1 ~1.4 ns and DRAM ~180 ns, inside the ranges with room to spare.
    levels = latency["performance_data"]["latency"]["levels"]
    assert L1_LATENCY_NS[0] < levels["l1"]["latency_ns"] < L1_LATENCY_NS[1]
    assert MEMORY_LATENCY_NS[0] < levels["memory"]["latency_ns"] < MEMORY_LATENCY_NS[1]


@pytest.mark.parametrize(
    ("level", "ns", "fragment"),
    [
        ("l1", 0.1, "latency point 4096 B 0.1 ns is outside 0.3-1000 ns"),
        ("l1", 12.0, "latency l1 12 ns is outside 0.3-10 ns"),
        ("memory", 20.0, "latency memory 20 ns is outside 30-1000 ns"),
        ("memory", 2500.0, "outside"),
    ],
)
def test_latencies_outside_physical_ranges_are_rejected(
    level: str, ns: float, fragment: str
) -> None:
    doc = _set_level_latency(full_document(), level, ns)
    assert fragment in _reason(doc)


def test_plateaus_out_of_order_are_rejected() -> None:
    doc = _set_level_latency(full_document(), "l3", 3.0)  # L3 faster than L2 (4.2 ns)
    assert "latency levels out of order: l3 3.00 ns is faster than l2 4.20 ns" in _reason(doc)
    # Memory's plateau reaching down into L3's sizes: its medians still lie among its
    # (now wider) points, so only the order of the size ranges can object.
    doc = full_document()
    memory, l3 = _level(doc, "memory"), _level(doc, "l3")
    memory["size_range_bytes"] = [l3["size_range_bytes"][0], memory["size_range_bytes"][1]]
    assert "latency levels out of order: memory starts at" in _reason(doc)


def test_figures_that_do_not_follow_from_the_sweep_are_rejected() -> None:
    doc = full_document()
    _level(doc, "l2")["latency_ns"] = 7.5  # no point of the L2 plateau is near 7.5 ns
    assert "latency l2: latency_ns 7.5 is not within the points of its plateau" in _reason(doc)
    doc = with_changes(full_document(), performance_data__latency__points__0__latency_ns=0.9)
    assert "is not the lowest of its samples" in _reason(doc)
    doc = with_changes(full_document(), performance_data__latency__points__0__bandwidth_gbps=50.0)
    assert "is not the highest of its samples" in _reason(doc)


def test_bandwidth_above_a_single_thread_ceiling_is_rejected() -> None:
    doc = full_document()
    level = _level(doc, "memory")
    lo, hi = level["size_range_bytes"]
    for p in doc["performance_data"]["latency"]["points"]:
        if lo <= p["size_bytes"] <= hi:
            p["bandwidth_gbps"] = 400.0
            p["bandwidth_samples_gbps"] = [400.0]
    level["bandwidth_gbps"] = 400.0
    assert "latency memory: 400.0 GB/s is above the single-thread ceiling 150 GB/s" in _reason(doc)


def test_numa_figures_that_contradict_the_machine_are_rejected() -> None:
    doc = full_document("m7i.large")
    doc["performance_data"]["latency"]["numa"]["socket_count"] = 2
    assert "latency numa: 2 socket(s), but system_info reports 1" in _reason(doc)
    doc = full_document("m7i.48xlarge", remote=(9.0, 9.0))  # remote DRAM at 9 ns
    assert "latency numa remote_latency_ns 9 ns is outside 30-1000 ns" in _reason(doc)


@pytest.mark.parametrize("value", ["NaN", "-1.5", "0"])
def test_non_finite_or_non_positive_latencies_fail_before_the_rules(value: str) -> None:
    text = json.dumps(full_document())
    doc = json.loads(text)
    doc["performance_data"]["latency"]["levels"]["l1"]["latency_ns"] = "@"
    raw = json.dumps(doc).replace('"@"', value).encode()
    with pytest.raises(InvalidResult):
        examine(raw, raw_key_of(doc))


def test_rejected_sweeps_are_quarantined_with_their_reason(tmp_path: Path) -> None:
    good = full_document("m7i.large", sample=0)
    bad = _set_level_latency(full_document("m7i.large", sample=1), "memory", 12.0)
    keys = store_documents(tmp_path, [good, bad])
    with ingest(tmp_path) as ds:
        assert ds.report.accepted == 1 and ds.report.rejected == 1
        assert ds.report.rejections == [
            (keys[1], "latency memory 12 ns is outside 30-1000 ns (DRAM is 50-300 ns)")
        ]
    reason = (tmp_path / "quarantine" / f"{keys[1]}.reason").read_text()
    assert reason.startswith("latency memory 12 ns is outside 30-1000 ns")
    assert (tmp_path / keys[1]).exists()  # raw/ untouched
