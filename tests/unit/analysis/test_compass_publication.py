"""The ComputeCompass files from realistic result sets: schemas, CPU mapping, NUMA rules.

Every published file must validate against its committed schema (checked here with
jsonschema directly, independently of publish's own check); a document missing a field
the app reads must fail; a type enters a file only when everything it needs was
measured; instbench-int is never published as CoreMark.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from tests.factories import raw_key_of, store_documents
from tests.unit.analysis.test_compass_documents import full_document, recorded

from instbench.analysis import compass_schema
from instbench.analysis.compass_schema import (
    CPU_FILE,
    MEMORY_FILE,
    PRICE_FILE,
    SCHEMA_FILES,
    ContractViolation,
)
from instbench.analysis.documents import compass as compass_module
from instbench.analysis.ingest import ingest
from instbench.analysis.publish import publish
from instbench.analysis.tidy import document_rows
from instbench.prices import InstancePrice, PriceSet
from instbench.results.validate import validate_document

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def _documents() -> list[dict[str, Any]]:
    """A fleet: three m7i.large with real CoreMark, two m7a.large without it, two
    c7g.large (Graviton: no frequency, SVE offered but unmeasured), two m7i.48xlarge
    (two sockets, remote memory measured), one r7i.48xlarge (two sockets, remote figures
    withheld) and one c7i.48xlarge whose remote node was on the same socket."""
    docs = []
    for i, (triad, ns, single) in enumerate(
        ((41.0, 92.0, 160e3), (42.5, 95.0, 162e3), (40.2, 97.0, 158e3))
    ):
        docs.append(
            full_document(
                "m7i.large",
                sample=i,
                timestamp=T0 + timedelta(hours=i),
                triad=triad,
                memory_ns=ns,
                int_single=single,
                coremark=True,
            )
        )
    for i, triad in enumerate((48.0, 49.5)):
        docs.append(full_document("m7a.large", sample=i, triad=triad, memory_ns=110.0 + i))
    for i, triad in enumerate((55.0, 56.0)):
        docs.append(full_document("c7g.large", sample=i, run_id="run-c7g", triad=triad))
    for i, (remote_ns, remote_bw) in enumerate(((141.0, 9.2), (138.0, 9.6))):
        docs.append(
            full_document("m7i.48xlarge", sample=i, triad=480.0 + i, remote=(remote_ns, remote_bw))
        )
    docs.append(full_document("r7i.48xlarge", triad=470.0))
    docs.append(
        full_document("c7i.48xlarge", triad=475.0, remote=(118.0, 11.0), inter_socket=False)
    )
    return docs


def _prices() -> PriceSet:
    return PriceSet(
        region="us-east-1",
        as_of=datetime(2025, 3, 5).date(),
        source="test price file",
        instances={
            "m7i.large": InstancePrice(0.1008, 0.0635, 0.0437, 0.0391, 0.0402, 0.9),
            "m7a.large": InstancePrice(0.11592, 0.0690, 0.0501, 0.0730, 0.0500, 0.8),
        },
    )


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("compass")
    store_documents(root / "mirror", _documents())
    with ingest(root / "mirror") as ds:
        assert ds.report.rejected == 0, ds.report.rejections
        publish(ds, root / "out", prices=_prices())
    return root / "out" / "latest"


def _load(latest: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((latest / name).read_text())
    return data


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads(
        (Path(compass_schema.__file__).parent.parent / "schemas" / SCHEMA_FILES[name]).read_text()
    )
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


# ------------------------------------------------------------------------ schemas


def test_every_published_file_validates_against_its_shipped_schema(published: Path) -> None:
    for name in (MEMORY_FILE, CPU_FILE, PRICE_FILE):
        doc = _load(published, name)
        errors = list(_validator(name).iter_errors(doc))
        assert errors == [], (name, [e.message for e in errors])
        # The schema is published beside the data, byte for byte the shipped one.
        shipped = compass_schema.schema_bytes(name)
        assert (published / "schemas" / SCHEMA_FILES[name]).read_bytes() == shipped
    index = _load(published, "index.json")
    assert index["schemas"][MEMORY_FILE] == {
        "path": "schemas/computecompass-memory-v1.schema.json",
        "version": compass_schema.SCHEMA_VERSION,
    }


def test_the_schemas_require_every_field_publish_says_the_app_reads(published: Path) -> None:
    memory = _load(published, MEMORY_FILE)
    cpu = _load(published, CPU_FILE)
    for name, doc, fields in (
        (MEMORY_FILE, memory, compass_module.MEMORY_FIELDS),
        (CPU_FILE, cpu, compass_module.CPU_FIELDS),
    ):
        itype = next(t for t, e in doc["instances"].items() if fields[0].path[0] in e)
        for field in fields:
            broken = copy.deepcopy(doc)
            parent = broken["instances"][itype]
            for part in field.path[:-1]:
                parent = parent[part]
            del parent[field.path[-1]]
            problems = compass_schema.violations(name, broken)
            assert problems, f"{name}: removing {field.name} of {itype} went unnoticed"
            assert any(field.path[-1] in p for p in problems), problems


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        (("cache", "memory", "latency"), "'latency' is a required property"),
        (("numa", "socketCount"), "'socketCount' is a required property"),
        (("numa", "remoteBandwidth"), "'remoteBandwidth' is a required property"),
        (("stream", "triad"), "'triad' is a required property"),
    ],
)
def test_a_memory_document_missing_a_field_the_app_reads_fails(
    published: Path, path: tuple[str, ...], fragment: str
) -> None:
    doc = _load(published, MEMORY_FILE)
    entry = doc["instances"]["m7i.large"]
    for part in path[:-1]:
        entry = entry[part]
    del entry[path[-1]]
    with pytest.raises(ContractViolation) as info:
        compass_schema.validate(MEMORY_FILE, doc)
    message = str(info.value)
    assert fragment in message
    assert "instances/m7i.large" in message and "a bug in documents/compass.py" in message


def test_the_one_socket_convention_and_types_are_part_of_the_contract(published: Path) -> None:
    doc = _load(published, MEMORY_FILE)
    one = copy.deepcopy(doc)
    one["instances"]["m7i.large"]["numa"]["remoteBandwidth"] = 3.0
    assert any("remoteBandwidth" in p for p in compass_schema.violations(MEMORY_FILE, one))
    two = copy.deepcopy(doc)
    two["instances"]["m7i.48xlarge"]["numa"]["interSocketLatency"] = 0
    assert compass_schema.violations(MEMORY_FILE, two)
    text = copy.deepcopy(doc)
    text["instances"]["m7i.large"]["cache"]["memory"]["latency"] = "95"
    assert compass_schema.violations(MEMORY_FILE, text)
    cpu = _load(published, CPU_FILE)
    cpu["instances"]["m7i.large"]["coremark"]["kernel"] = "instbench-int"
    assert compass_schema.violations(CPU_FILE, cpu)


def test_publish_refuses_to_write_a_file_that_breaks_its_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bug no real input can cause: a rule table that forgets a field the app reads.
    store_documents(tmp_path / "mirror", [full_document("m7i.large")])
    broken = tuple(f for f in compass_module.MEMORY_FIELDS if f.name != "numa.socketCount")
    monkeypatch.setattr(compass_module, "MEMORY_FIELDS", broken)
    with ingest(tmp_path / "mirror") as ds, pytest.raises(ContractViolation) as info:
        publish(ds, tmp_path / "out")
    assert "memory-benchmarks.json does not match" in str(info.value)
    assert "'socketCount' is a required property" in str(info.value)
    assert not (tmp_path / "out" / "latest").exists()


# ---------------------------------------------------------------- complete or absent


def test_types_enter_each_file_only_when_complete(published: Path) -> None:
    memory = _load(published, MEMORY_FILE)
    cpu = _load(published, CPU_FILE)
    index = _load(published, "index.json")
    assert sorted(memory["instances"]) == ["c7g.large", "m7a.large", "m7i.48xlarge", "m7i.large"]
    held = index["heldBack"]
    assert held[MEMORY_FILE]["r7i.48xlarge"] == ["numa.remoteBandwidth", "numa.interSocketLatency"]
    # A remote node on the same socket is not another socket's memory.
    assert held[MEMORY_FILE]["c7i.48xlarge"] == ["numa.remoteBandwidth", "numa.interSocketLatency"]
    # Graviton: no frequency (no LINPACK peak, so no efficiency), no CoreMark, SVE not
    # measured.
    assert held[CPU_FILE]["c7g.large"] == [
        "linpack.efficiency",
        "coremark.score",
        "coremark.coremarkMhz",
        "vectorization.sve",
    ]
    assert "c7g.large" not in cpu["instances"]
    # No real CoreMark: held back from the cpu file, in the memory file all the same.
    assert held[CPU_FILE]["m7a.large"] == ["coremark.score", "coremark.coremarkMhz"]
    assert sorted(cpu["instances"]) == ["m7i.large"]
    m7i = memory["instances"]["m7i.large"]
    assert m7i["cache"]["memory"]["latency"] == pytest.approx((92.0 + 95.0 + 97.0) / 3)
    assert m7i["cache"]["memory"]["stats"]["latency"]["n"] == 3
    assert memory["rankings"]["memory_latency"][0]["instanceType"] == "m7i.large"


def test_cpu_figures_come_from_the_measured_results(published: Path) -> None:
    cpu = _load(published, CPU_FILE)
    docs = [d for d in _documents() if d["metadata"]["instance_type"] == "m7i.large"]
    entry = cpu["instances"]["m7i.large"]

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    linpack = [d["performance_data"]["linpack"] for d in docs]
    assert entry["linpack"]["gflops"] == pytest.approx(
        mean([x["gflops"] for x in linpack]), rel=1e-5
    )
    assert entry["linpack"]["efficiency"] == pytest.approx(
        mean([x["efficiency"] for x in linpack]), rel=1e-5
    )
    assert entry["linpack"]["problemSize"] == 20000
    integer = [d["performance_data"]["cpu"]["integer"] for d in docs]
    assert entry["scaling"] == {
        "singleThread": pytest.approx(mean([x["single_thread_score"] for x in integer]), rel=1e-5),
        "allCores": pytest.approx(mean([x["all_threads_score"] for x in integer]), rel=1e-5),
        "smtEfficiency": pytest.approx(mean([x["smt_efficiency"] for x in integer]), rel=1e-5),
        "kernel": "instbench-int",
        "unit": "iterations/s",
        "stats": entry["scaling"]["stats"],
    }
    measured = {
        r["extension"]: r["all_threads_gflops"]
        for r in docs[0]["performance_data"]["cpu"]["vector"]["measured"]
    }
    vec = entry["vectorization"]
    assert (vec["sse2"], vec["avx2"], vec["avx512"]) == pytest.approx(
        (measured["sse2"], measured["avx2"], measured["avx512f"]), rel=1e-5
    )
    # Not offered by an x86 CPU (its flags say so): 0 by convention, not a measurement.
    assert (vec["neon"], vec["sve"]) == (0, 0)
    assert "neon" not in vec["stats"] and "sve" not in vec["stats"]
    real = [d["performance_data"]["cpu"]["coremark"] for d in docs]
    assert entry["coremark"]["score"] == pytest.approx(
        mean([c["all_threads_score"] for c in real]), rel=1e-5
    )
    assert entry["coremark"]["coremarkMhz"] == pytest.approx(
        mean([c["all_threads_score_per_mhz"] for c in real]), rel=1e-5
    )
    assert [r["instanceType"] for r in cpu["rankings"]["coremark_score"]] == ["m7i.large"]
    peak = cpu["rankings"]["peak_gflops"]
    assert {r["instanceType"] for r in peak} == set(cpu["instances"])
    assert [r["gflops"] for r in peak] == sorted((r["gflops"] for r in peak), reverse=True)


def test_instbench_int_is_never_published_as_coremark(published: Path) -> None:
    cpu = _load(published, CPU_FILE)
    index = _load(published, "index.json")
    # No real CoreMark: held back, never filled with a placeholder or our kernel's score.
    assert "m7a.large" not in cpu["instances"]
    assert index["heldBack"][CPU_FILE]["m7a.large"] == ["coremark.score", "coremark.coremarkMhz"]
    assert "omitted" not in index
    assert cpu["instances"]["m7i.large"]["scaling"]["kernel"] == "instbench-int"
    assert cpu["instances"]["m7i.large"]["coremark"]["kernel"] == "EEMBC CoreMark"
    assert "real EEMBC CoreMark" in cpu["methodology"]["coremark"]
    assert "never published as CoreMark" in cpu["methodology"]["coremark"]
    # In the tidy rows too: our kernel's scores never carry the CoreMark name.
    doc = validate_document(full_document("m7a.large"))
    rows = document_rows(doc, "k", "s")
    assert not [r for r in rows if r["benchmark"] == "coremark" or r["test"] == "coremark"]
    assert {r["test"] for r in rows if r["metric"] == "score"} == {"instbench-int"}


def test_recorded_cpu_and_linpack_results_without_coremark_are_held_back(tmp_path: Path) -> None:
    """Real results of this repository's agent (local, quick: published only in demos),
    recorded before CoreMark ran in local runs: held back from the cpu file with what
    they lack, their figures kept in the aggregates. That machine has no SMT (2 vCPUs, 2
    cores), so its smtEfficiency is 1.0 although the result predates the per-core run."""
    from instbench.storage.local import LocalStore

    store = LocalStore(tmp_path / "mirror")
    for benchmark in ("cpu", "linpack", "latency"):
        doc = recorded(benchmark)
        store.put_new(raw_key_of(doc, benchmark), (json.dumps(doc) + "\n").encode())
    with ingest(tmp_path / "mirror") as ds:
        assert ds.report.rejected == 0, ds.report.rejections
        publish(ds, tmp_path / "demo", include_sandbox=True)
        publish(ds, tmp_path / "real")
    cpu = _load(tmp_path / "demo" / "latest", CPU_FILE)
    index = _load(tmp_path / "demo" / "latest", "index.json")
    assert cpu["instances"] == {}
    assert index["heldBack"][CPU_FILE]["local"] == ["coremark.score", "coremark.coremarkMhz"]
    smt = [
        line
        for line in (tmp_path / "demo" / "latest" / "aggregates.csv").read_text().splitlines()
        if ",smt_efficiency," in line
    ]
    assert len(smt) == 1 and ",1.0," in smt[0], smt
    raw = recorded("cpu")["performance_data"]["cpu"]
    aggregates = (tmp_path / "demo" / "latest" / "aggregates.csv").read_text()
    assert "instbench-int" in aggregates and "problem_size" in aggregates
    assert str(raw["integer"]["single_thread_score"])[:5] in aggregates
    memory = _load(tmp_path / "demo" / "latest", MEMORY_FILE)
    assert "local" not in memory["instances"]  # no STREAM in that run: held back
    assert index["heldBack"][MEMORY_FILE]["local"][0] == "stream.copy.bandwidth"
    # Local, quick-mode results are never part of a real publication.
    assert _load(tmp_path / "real" / "latest", CPU_FILE)["instances"] == {}


# ------------------------------------------------------------------------------ NUMA


def test_numa_on_one_socket_is_read_from_the_machine_and_the_convention(published: Path) -> None:
    memory = _load(published, MEMORY_FILE)
    numa = memory["instances"]["m7i.large"]["numa"]
    local = [
        d["performance_data"]["latency"]["numa"]["local_bandwidth_gbps"]
        for d in _documents()
        if d["metadata"]["instance_type"] == "m7i.large"
    ]
    assert numa["socketCount"] == 1
    assert numa["localBandwidth"] == pytest.approx(sum(local) / len(local), rel=1e-5)
    assert (numa["remoteBandwidth"], numa["interSocketLatency"]) == (0, 0)
    assert set(numa["stats"]) == {"localBandwidth"}


def test_numa_on_two_sockets_is_published_only_when_measured(published: Path) -> None:
    memory = _load(published, MEMORY_FILE)
    numa = memory["instances"]["m7i.48xlarge"]["numa"]
    assert numa["socketCount"] == 2
    assert numa["interSocketLatency"] == pytest.approx((141.0 + 138.0) / 2)
    assert numa["remoteBandwidth"] == pytest.approx((9.2 + 9.6) / 2)
    assert numa["stats"]["remoteBandwidth"]["n"] == 2
    assert "r7i.48xlarge" not in memory["instances"]
    assert "c7i.48xlarge" not in memory["instances"]


def test_one_node_without_a_numa_section_uses_the_memory_level_as_the_benchmark_does() -> None:
    doc = full_document("m7i.large")
    doc["performance_data"]["latency"]["numa"] = None
    rows = document_rows(validate_document(doc), "k", "s")
    local = {r["metric"]: r["value"] for r in rows if r["test"] == "numa-local"}
    level = doc["performance_data"]["latency"]["levels"]["memory"]
    assert local == {"latency": level["latency_ns"], "bandwidth": level["bandwidth_gbps"]}
    two = full_document("m7i.48xlarge", remote=(140.0, 9.0))
    two["performance_data"]["latency"]["numa"] = None
    rows = document_rows(validate_document(two), "k", "s")
    assert not [r for r in rows if r["test"].startswith("numa-")]
