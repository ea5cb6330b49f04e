"""network: tidy rows (Gbps, µs), network-benchmarks.json and its schema in a publication.

The section is recorded from a real quick loopback run of the benchmark on the dev VM
(`network.run_network(NetworkOptions(quick=True, advertised_*=m7i.large's figures))`);
samples differ by a known factor so the statistics have known answers.
"""

from __future__ import annotations

import copy
import json
import statistics
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from tests.factories import raw_key_of, result_document, to_bytes

from instbench.analysis.documents import network as netdoc
from instbench.analysis.ingest import ingest
from instbench.analysis.publish import publish
from instbench.analysis.tidy import METRICS, document_rows
from instbench.results.validate import parse_result
from instbench.storage.local import LocalStore

RECORDED = json.loads((Path(__file__).with_name("test_network_recorded.json")).read_text())
FACTORS = (1.0, 0.9, 1.1)


def _network_doc(instance_type: str, sample: int, factor: float, role: str = "both") -> dict:
    doc = result_document(instance_type, sample=sample, collection_method="sandbox")
    section = copy.deepcopy(RECORDED)
    section["role"] = role
    for entry in section["throughput"]:
        entry["gbps"] = round(entry["gbps"] * factor, 4)
    if role == "server":
        for key in ("throughput", "burst", "latency", "advertised"):
            section.pop(key, None)
    doc["performance_data"] = {"network": section}
    doc["metadata"]["benchmark_suite"] = ["network"]
    return doc


def _rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    raw = json.dumps(doc).encode()
    return document_rows(parse_result(raw), "k", "sha")


def test_network_section_becomes_tidy_rows_in_gbps_and_us() -> None:
    rows = {(r["test"], r["metric"]): r for r in _rows(_network_doc("m7i.large", 0, 1.0))}
    one = rows[("tcp-1flow", "throughput")]
    assert one["unit"] == "Gbps" == METRICS["throughput"].unit
    assert one["value"] == RECORDED["throughput"][0]["gbps"] and one["thread_mode"] == "single"
    n = rows[("tcp-nflows-reverse", "throughput")]
    assert n["thread_mode"] == "all" and n["threads"] == RECORDED["flows"]
    rtt = rows[("rtt-p999", "round_trip")]
    assert rtt["unit"] == "µs" and rtt["value"] == RECORDED["latency"]["p999_us"]
    assert METRICS["round_trip"].higher_is_better is False
    assert rows[("peak", "advertised")]["value"] == 12.5
    ratio = rows[("nflows-to-peak", "advertised_ratio")]["value"]
    assert ratio == RECORDED["advertised"]["ratio_nflows_to_peak"]
    assert rows[("burst", "throughput")]["value"] == RECORDED["burst"]["burst_gbps"]
    # A server measured nothing: no row.
    assert _rows(_network_doc("m7i.large", 0, 1.0, role="server")) == []


def test_publication_carries_network_benchmarks_json_valid_against_its_schema(
    tmp_path: Path,
) -> None:
    mirror = tmp_path / "mirror"
    docs = [_network_doc("m7i.large", i, f) for i, f in enumerate(FACTORS)]
    docs.append(_network_doc("c7g.large", 0, 1.2))  # figures of its own (no copy)
    store = LocalStore(mirror)
    for doc in docs:
        store.put_new(raw_key_of(doc, "network"), to_bytes(doc))
    out = tmp_path / "pub"
    with ingest(mirror) as ds:
        publication = publish(ds, out, include_sandbox=True)
    latest = out / "latest"
    document = json.loads((latest / netdoc.NETWORK_FILE).read_text())
    schema = json.loads((latest / "schemas" / netdoc.SCHEMA_FILE).read_text())
    Draft202012Validator(schema).validate(document)
    assert [e["instanceType"] for e in document["instances"]] == ["c7g.large", "m7i.large"]
    m7i = document["instances"][1]
    single = m7i["throughput"]["singleFlow"]
    expected = [round(RECORDED["throughput"][0]["gbps"] * f, 4) for f in FACTORS]
    assert single["stats"]["n"] == 3
    assert single["value"] == pytest.approx(statistics.fmean(expected), rel=1e-5)
    assert m7i["latency"]["median"]["value"] == pytest.approx(RECORDED["latency"]["median_us"])
    assert m7i["advertised"]["peakGbps"] == 12.5 and m7i["advertised"]["baselineGbps"] == 0.781
    assert document["units"] == {"throughput": "Gbps", "latency": "µs"}
    paths = {f["path"] for f in publication.index["files"]}
    assert {netdoc.NETWORK_FILE, f"schemas/{netdoc.SCHEMA_FILE}"} <= paths
    card = (latest / "datacard.md").read_text()
    assert "## network-benchmarks.json" in card and "`round_trip` | µs | lower" in card


def test_a_type_without_its_four_throughput_tests_is_left_out() -> None:
    from instbench.analysis.aggregate import Summary

    def summary(test: str, metric: str) -> Summary:
        fields = dict.fromkeys(Summary.__dataclass_fields__)
        fields.update(
            instance_type="m7i.large", benchmark="network", test=test, thread_mode="all",
            metric=metric, unit="Gbps", window="all", n=1, median=1.0, mean=1.0, min=1.0,
            max=1.0,
        )  # fmt: skip
        return Summary(**fields)

    partial = [summary("tcp-1flow", "throughput"), summary("rtt-median", "round_trip")]
    doc = netdoc.network_document(partial, {"version": None, "lastUpdated": None})
    assert doc["instances"] == []
    Draft202012Validator(netdoc.SCHEMA).validate(doc)


def test_report_charts_measured_beside_advertised(tmp_path: Path) -> None:
    from instbench.analysis.aggregate import summarize
    from instbench.report import charts

    store = LocalStore(tmp_path)
    for i, factor in enumerate(FACTORS):
        doc = _network_doc("m7i.large", i, factor)
        store.put_new(raw_key_of(doc, "network"), to_bytes(doc))
    with ingest(tmp_path) as ds:
        summaries = summarize(ds.con, include_sandbox=True)
    spec = charts.network_vs_advertised(summaries)
    assert spec is not None
    bars = {v["what"]: v["gbps"] for v in spec["data"]["values"]}
    assert bars["advertised peak"] == 12.5 and bars["advertised baseline"] == 0.781
    assert bars["measured, sustained after the burst"] == RECORDED["burst"]["sustained_gbps"]
    svg = charts.render_svg(spec, "network")
    for label in ("TCP throughput (Gbps)", "Instance type", "advertised peak", "m7i.large"):
        assert label in svg, label
    assert charts.network_vs_advertised([s for s in summaries if s.metric == "advertised"]) is None
