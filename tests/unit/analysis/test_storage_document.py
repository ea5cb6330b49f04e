"""storage-benchmarks.json: tidy rows with units, statistics over instances, the schema.

The storage sections come from a real fio run on a file (the agent's own code), put into
otherwise synthetic result documents of two samples of one type.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from tests.factories import result_document, store_documents

from instbench.analysis.documents.storage import SCHEMA, SCHEMA_FILE, STORAGE_FILE
from instbench.analysis.ingest import ingest
from instbench.analysis.publish import publish
from instbench.analysis.tidy import METRICS, document_rows
from instbench.benchmarks import storage
from instbench.results.schema import ResultDocument

pytestmark = pytest.mark.skipif(shutil.which("fio") is None, reason="needs fio")
ADVERTISED = "volume_iops=3000,volume_throughput_mibps=125,ebs_maximum_iops=20000"


@pytest.fixture(scope="module")
def section(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    opts = storage.StorageOptions(
        quick=True,
        size_mib=16,
        runtime_s=1,
        directory=str(tmp_path_factory.mktemp("fio")),
        advertised=ADVERTISED,
    )
    return storage.run_storage(opts, lambda _m: None)[0]


def _doc(section: dict[str, Any], sample: int, scale: float) -> dict[str, Any]:
    doc = result_document("m6gd.large", sample=sample)
    data = copy.deepcopy(section)
    for target in data["targets"]:
        for job in target["jobs"]:
            job["iops"] *= scale
    doc["performance_data"]["storage"] = data
    doc["metadata"]["benchmark_suite"] = ["stream", "storage"]
    return doc


def test_tidy_rows_carry_units_and_roles(section: dict[str, Any]) -> None:
    doc = ResultDocument.model_validate(_doc(section, 0, 1.0))
    rows = [r for r in document_rows(doc, "k", "s") if r["benchmark"] == "storage"]
    tests = {r["test"] for r in rows}
    assert "ebs/randread_4k_qd32" in tests and "ebs/advertised" in tests
    for row in rows:
        # 'throughput' is MB/s for storage (the metrics table lists network's Gbps).
        unit = "MB/s" if row["metric"] == "throughput" else METRICS[row["metric"]].unit
        assert row["unit"] == unit
    ratio = next(
        r for r in rows if r["test"] == "ebs/randread_4k_qd32" and r["metric"] == "limit_ratio"
    )
    iops = next(r for r in rows if r["test"] == "ebs/randread_4k_qd32" and r["metric"] == "iops")
    assert ratio["value"] == pytest.approx(iops["value"] / 3000)
    # Throughput only where it is the point (1 MiB jobs).
    assert {r["test"] for r in rows if r["metric"] == "throughput"} == {
        "ebs/read_1m_seq",
        "ebs/write_1m_seq",
    }


def test_publication_has_the_storage_file_and_schema(
    section: dict[str, Any], tmp_path: Path
) -> None:
    store_documents(tmp_path / "mirror", [_doc(section, 0, 1.0), _doc(section, 1, 1.1)])
    with ingest(tmp_path / "mirror") as ds:
        pub = publish(ds, tmp_path / "out")
    latest = tmp_path / "out" / "latest"
    doc = json.loads((latest / STORAGE_FILE).read_text())
    assert list(Draft202012Validator(SCHEMA).iter_errors(doc)) == []
    assert json.loads((latest / "schemas" / SCHEMA_FILE).read_text()) == SCHEMA
    (entry,) = doc["instances"]
    assert entry["instanceType"] == "m6gd.large"
    iops = entry["targets"]["ebs"]["randread_4k_qd32"]["iops"]
    assert iops["n"] == 2 and iops["unit"] == "IOPS"
    assert iops["ci_low"] is not None and iops["ci_low"] <= iops["mean"] <= iops["ci_high"]
    assert entry["targets"]["ebs"]["advertised"]["advertised_iops"]["median"] == 3000
    files = {f["path"] for f in pub.index["files"]}
    assert {STORAGE_FILE, f"schemas/{SCHEMA_FILE}"} <= files
    assert "## storage-benchmarks.json" in (latest / "datacard.md").read_text()


def test_publication_carries_a_publishable_ebs_burst(
    section: dict[str, Any], tmp_path: Path
) -> None:
    docs = []
    for sample, (burst, sustained, fell_at) in enumerate(
        ((1250.0, 160.0, 1500.0), (1200.0, 150.0, 1400.0))
    ):
        doc = _doc(section, sample, 1.0)
        (ebs,) = [
            t for t in doc["performance_data"]["storage"]["targets"] if t["stands_in_for"] == "ebs"
        ]
        assert ebs["burst"] is not None and ebs["burst"]["publishable"] is False  # --quick
        ebs["burst"].update(
            publishable=True,
            burst_mb_s=burst,
            sustained_mb_s=sustained,
            fell=True,
            seconds_until_fall=fell_at,
            sustained_ratio_to_baseline=sustained / 156.25,
        )
        docs.append(doc)
    store_documents(tmp_path / "mirror", docs)
    with ingest(tmp_path / "mirror") as ds:
        publish(ds, tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "latest" / STORAGE_FILE).read_text())
    assert list(Draft202012Validator(SCHEMA).iter_errors(doc)) == []
    ebs = doc["instances"][0]["targets"]["ebs"]
    assert ebs["burst"]["throughput"]["median"] == 1225.0
    assert ebs["burst"]["throughput"]["unit"] == "MB/s" and ebs["burst"]["throughput"]["n"] == 2
    assert ebs["sustained"]["throughput"]["median"] == 155.0
    assert ebs["sustained"]["limit_ratio"]["median"] == pytest.approx(155.0 / 156.25)
    assert ebs["burst"]["seconds_until_fall"]["median"] == 1450.0
    assert ebs["burst"]["seconds_until_fall"]["unit"] == "s"
