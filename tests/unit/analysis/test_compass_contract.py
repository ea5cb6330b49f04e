"""The client's contract (analysis/compass_contract.py) against our schemas, rules and docs.

For every field the ComputeCompass client requires in one type's object, checked with the
schema: a type that lacks the field's measurement is held back from that file with the
field named in `heldBack`, the file without it still validates, and the same file with
the type left in but the field missing does not.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from tests.factories import store_documents
from tests.unit.analysis.test_compass_documents import full_document

from instbench.analysis import compass_contract, compass_schema
from instbench.analysis.aggregate import summarize
from instbench.analysis.compass_contract import ClientField
from instbench.analysis.compass_schema import CPU_FILE, MEMORY_FILE, PRICE_FILE
from instbench.analysis.documents import compass as pub
from instbench.analysis.ingest import ingest
from instbench.analysis.tidy import document_rows
from instbench.prices import InstancePrice, PriceSet
from instbench.results.validate import validate_document

DOCS = Path(__file__).resolve().parents[3] / "docs" / "computecompass.md"
FILES = (MEMORY_FILE, CPU_FILE, PRICE_FILE)
COMPLETE = ("m7a.large", "m7i.large")
META = {
    "version": "2025.03.03",
    "lastUpdated": "2025-03-03T09:00:00Z",
    "methodology": {
        "tool": "test",
        "compiler": None,
        "optimization": None,
        "runs": None,
        "confidence": 0.95,
    },
}
PRICES = PriceSet(
    region="us-east-1",
    as_of=date(2025, 3, 5),
    source="recorded price file",
    instances={
        "m7i.large": InstancePrice(0.1008, 0.0635, 0.0437, 0.0391, 0.0402, 0.9),
        "m7a.large": InstancePrice(0.11592, 0.0690, 0.0501, 0.0730, 0.0500, 0.8),
    },
)


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pub.TypeFigures]:
    """Two x86 types complete in every file (real CoreMark, LINPACK peak, every price)."""
    root = tmp_path_factory.mktemp("contract")
    docs = [full_document(t, sample=i, coremark=True) for t in COMPLETE for i in range(2)]
    store_documents(root / "mirror", docs)
    with ingest(root / "mirror") as ds:
        assert ds.report.rejected == 0, ds.report.rejections
        summaries = summarize(ds.con, window="all")
    by_type: dict[str, list[Any]] = {}
    for s in summaries:
        by_type.setdefault(s.instance_type, []).append(s)
    return {t: pub.TypeFigures(t, ss) for t, ss in by_type.items()}


def _documents(
    figures: Mapping[str, pub.TypeFigures], prices: PriceSet
) -> dict[str, tuple[dict[str, Any], dict[str, list[str]]]]:
    return {
        MEMORY_FILE: pub.memory_document(figures, dict(META)),
        CPU_FILE: pub.cpu_document(figures, dict(META)),
        PRICE_FILE: pub.price_document(figures, prices, dict(META)),
    }


# ------------------------------------------------------------- inputs of one rule


class _Tracing(pub.TypeFigures):
    """TypeFigures that records which summaries and machine properties a rule reads."""

    def __init__(self, inner: pub.TypeFigures) -> None:
        super().__init__(inner.instance_type, inner.by_key.values())
        self.keys: set[pub.SummaryKey] = set()
        self.attrs: set[str] = set()

    def get(self, key: pub.SummaryKey) -> Any:
        self.keys.add(key)
        return super().get(key)

    def machine(self, attr: str) -> Any:
        self.attrs.add(attr)
        return super().machine(attr)


class _Without(pub.TypeFigures):
    """TypeFigures where the given summaries and machine properties were never measured."""

    def __init__(self, inner: pub.TypeFigures, keys: set[pub.SummaryKey], attrs: set[str]) -> None:
        super().__init__(inner.instance_type, inner.by_key.values())
        self.gone_keys = keys
        self.gone_attrs = attrs

    def get(self, key: pub.SummaryKey) -> Any:
        bench, test, _, metric = key
        if any(k[0] == bench and k[1] == test and k[3] == metric for k in self.gone_keys):
            return None
        return super().get(key)

    def machine(self, attr: str) -> Any:
        return None if attr in self.gone_attrs else super().machine(attr)


class _PriceTrace:
    """An InstancePrice stand-in that records which prices a rule reads."""

    def __init__(self, inner: InstancePrice) -> None:
        self._inner = inner
        self.read: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        self.read.add(name)
        return getattr(self._inner, name)


def _rule(file_name: str, path: tuple[str, ...]) -> Any:
    table: tuple[Any, ...] = {
        MEMORY_FILE: pub.MEMORY_FIELDS,
        CPU_FILE: pub.CPU_FIELDS,
        PRICE_FILE: pub.PRICE_FIELDS,
    }[file_name]
    return next((f for f in table if f.path == path), None)


def _strip(
    file_name: str, field: ClientField, figures: dict[str, pub.TypeFigures], itype: str
) -> tuple[dict[str, pub.TypeFigures], PriceSet]:
    """`figures` and prices as if nothing `field`'s rule reads had been measured for `itype`."""
    rule = _rule(file_name, field.path)
    tracing = _Tracing(figures[itype])
    price = PRICES.instances[itype]
    if file_name == PRICE_FILE:
        traced = _PriceTrace(price)
        rule.value(traced, tracing)
        price = dataclasses.replace(price, **{name: None for name in traced.read})
    else:
        rule.value(tracing)
    out = dict(figures)
    out[itype] = _Without(figures[itype], tracing.keys, tracing.attrs)
    prices = dataclasses.replace(PRICES, instances={**PRICES.instances, itype: price})
    return out, prices


REQUIRED = [(name, field) for name in FILES for field in compass_contract.required_per_type(name)]


@pytest.mark.parametrize(
    ("file_name", "field"), REQUIRED, ids=[f"{n}:{f.name}" for n, f in REQUIRED]
)
def test_a_type_without_a_required_field_is_held_back_with_the_reason(
    figures: dict[str, pub.TypeFigures], file_name: str, field: ClientField
) -> None:
    assert _rule(file_name, field.path) is not None, f"publish has no rule for {field.name}"
    complete, held = _documents(figures, PRICES)[file_name]
    assert held == {} and sorted(complete["instances"]) == list(COMPLETE)
    assert compass_schema.violations(file_name, complete) == []

    itype, other = COMPLETE
    stripped, prices = _strip(file_name, field, figures, itype)
    document, held = _documents(stripped, prices)[file_name]
    assert field.name in held[itype], held
    assert itype not in document["instances"] and other in document["instances"]
    assert compass_schema.violations(file_name, document) == []
    # The schema is what refuses the half-published type: the same file with the type
    # left in and the field taken out is a contract violation naming the field.
    broken = copy.deepcopy(complete)
    parent = broken["instances"][itype]
    for part in field.path[:-1]:
        parent = parent[part]
    del parent[field.path[-1]]
    problems = compass_schema.violations(file_name, broken)
    assert any(f"'{field.path[-1]}' is a required property" in p for p in problems), problems


@pytest.mark.parametrize("file_name", FILES)
def test_the_schemas_require_every_field_the_client_declares(file_name: str) -> None:
    schema = compass_schema.schema(file_name)
    assert compass_contract.schema_gaps(file_name, schema) == []


def test_the_gap_check_notices_a_field_the_schema_leaves_optional() -> None:
    schema = compass_schema.schema(CPU_FILE)
    schema["$defs"]["cpuInstance"]["required"].remove("coremark")
    gaps = compass_contract.schema_gaps(CPU_FILE, schema)
    assert "coremark is not required" in gaps
    schema = compass_schema.schema(PRICE_FILE)
    spot = schema["$defs"]["priceInstance"]["properties"]["spot"]
    spot["properties"]["reliability"]["type"] = "string"
    assert compass_contract.schema_gaps(PRICE_FILE, schema) == [
        "spot.reliability: schema type ['string'], the client declares number"
    ]


def test_the_client_required_numbers_are_the_schemas_and_vectorization_is_optional() -> None:
    cpu = {f.name for f in compass_contract.required_per_type(CPU_FILE)}
    assert {"coremark.score", "coremark.coremarkMhz", "scaling.smtEfficiency"} <= cpu
    assert not {n for n in cpu if n.startswith("vectorization.")}
    assert len(compass_contract.required_per_type(MEMORY_FILE)) == 4 + 3 * 2 + 1 + 4
    assert len(compass_contract.required_per_type(PRICE_FILE)) == 8


def test_numbers_must_be_finite(figures: dict[str, pub.TypeFigures]) -> None:
    document, _ = _documents(figures, PRICES)[MEMORY_FILE]
    for bad in (float("nan"), float("inf")):
        broken = copy.deepcopy(document)
        broken["instances"]["m7i.large"]["stream"]["triad"]["bandwidth"] = bad
        problems = compass_schema.violations(MEMORY_FILE, broken)
        assert problems == [
            f"instances/m7i.large/stream/triad/bandwidth: {bad!r} is not a finite number"
        ]


def test_smt_efficiency_is_one_without_smt_and_measured_with_it(
    figures: dict[str, pub.TypeFigures],
) -> None:
    document, _ = _documents(figures, PRICES)[CPU_FILE]
    # m7i.large: 2 threads on 1 core, the factory's SMT adds a quarter of a thread.
    smt = document["instances"]["m7i.large"]["scaling"]["smtEfficiency"]
    assert smt == pytest.approx(1.25, rel=1e-5)
    # m7a.large (Zen 4 on EC2: one thread per core): exactly 1, not a measurement.
    assert document["instances"]["m7a.large"]["scaling"]["smtEfficiency"] == 1.0
    integer = full_document("m7a.large")["performance_data"]["cpu"]["integer"]
    assert integer["smt_efficiency"] == 1.0 and integer["per_core_score"] is None

    # Results from before the per-core run (data_version < 1.2.0): 1.0 where every vCPU is
    # a core; with SMT there is nothing to publish, and the type is held back for it.
    def smt_rows(itype: str) -> list[float]:
        doc = full_document(itype)
        doc["performance_data"]["cpu"]["integer"].update(smt_efficiency=None, per_core_score=None)
        rows = document_rows(validate_document(doc), "k", "s")
        return [r["value"] for r in rows if r["metric"] == "smt_efficiency"]

    assert smt_rows("m7a.large") == [1.0]
    assert smt_rows("m7i.large") == []


def test_the_docs_carry_the_contract_tables() -> None:
    text = DOCS.read_text()
    assert compass_contract.markdown() in text, (
        "docs/computecompass.md is out of date: paste the output of "
        "`python -m instbench.analysis.compass_contract`"
    )


def _fields(tables: Mapping[str, tuple[ClientField, ...]]) -> list[str]:
    return [f"{name}:{f.name}" for name, fields in tables.items() for f in fields]


def test_every_field_is_listed_once() -> None:
    for tables in (compass_contract.PER_TYPE, compass_contract.DOCUMENT):
        names = _fields(tables)
        assert len(names) == len(set(names))
