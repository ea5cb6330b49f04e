"""`instbench import legacy`: every layout of the Go collector, its own series, never ours.

Files are synthetic (tests/factories.go_collector_document), one per layout of the old
collector's history, written to a temporary results/ directory as the old repository
held them.
"""

from __future__ import annotations

import hashlib
import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from tests.factories import go_collector_document, result_document, store_documents

from instbench.analysis.aggregate import summarize
from instbench.analysis.ingest import ingest
from instbench.analysis.legacy import METHODS, parse_go_collector
from instbench.analysis.legacy_import import MAX_FILE_BYTES, import_legacy
from instbench.analysis.publish import publish
from instbench.aws.discovery import known_architectures
from instbench.aws.session import AwsSession
from instbench.errors import InvalidResult, UserError
from instbench.storage.local import LocalStore

GOOD: dict[str, dict[str, Any]] = {
    # schema_version 1.0.0, the x86_64 label (not intel/amd/graviton)
    "m7i.large-stream-1.json": go_collector_document("stream", "m7i.large", figure=14.5),
    # performance_data variant
    "c7a.large-stream-2.json": go_collector_document(
        "stream", "c7a.large", variant="performance_data", figure=28.6
    ),
    # a c7g (Graviton) file whose image is the x86 amd-zen4 one, labelled arm64: flagged
    "c7g.large-stream-3.json": go_collector_document(
        "stream", "c7g.large", figure=52.4, label="arm64", image_tag="amd-zen4"
    ),
    # an Intel type the collector labelled "graviton": the label is not trusted
    "c7i.large-coremark-4.json": go_collector_document(
        "coremark", "c7i.large", figure=36.39, label="graviton"
    ),
    "m7i.large-cache-5.json": go_collector_document("cache", "m7i.large", figure=1.2),
    "c7g.large-hpl-6.json": go_collector_document(
        "hpl", "c7g.large", figure=2.136, label="graviton", image_tag="graviton3"
    ),
}
PLACEHOLDERS = {
    f"{t}-stream-p.json": go_collector_document("stream", t, figure=41.9)
    for t in ("c5.large", "m6g.large", "r7a.large")
}
BAD: dict[str, dict[str, Any]] = {
    # "hpl" over STREAM figures (the collector did this)
    "i3.large-hpl-7.json": go_collector_document("stream", "i3.large", suite="hpl", figure=9.9),
    "c7g.large-cache-8.json": go_collector_document("cache", "c7g.large"),
}
for _level in BAD["c7g.large-cache-8.json"]["performance"]["memory"]["cache"].values():
    _level["access_time"] = 1.93  # the collector's file: one figure at every level


def _write(root: Path, files: dict[str, dict[str, Any]]) -> dict[str, bytes]:
    out = {}
    for name, doc in files.items():
        day = root / "results" / "2025-06-30"
        day.mkdir(parents=True, exist_ok=True)
        raw = (json.dumps(doc, indent=2) + "\n").encode()
        (day / name).write_bytes(raw)
        out[name] = raw
    return out


def _old_repo(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    repo = tmp_path / "aws-instance-benchmarks"
    written = _write(repo, {**GOOD, **PLACEHOLDERS, **BAD})
    day = repo / "results" / "2025-06-30"
    (day / "truncated.json").write_bytes(b'{"metadata": {')
    (day / "huge.json").write_bytes(b" " * (MAX_FILE_BYTES + 1))
    return repo, written


def test_every_layout_is_imported_or_quarantined_with_one_reason(tmp_path: Path) -> None:
    repo, written = _old_repo(tmp_path)
    mirror = tmp_path / "mirror"
    report = import_legacy(repo, mirror)
    by_name = {Path(o.path).name: o for o in report.outcomes}
    assert report.found == len(by_name) == 13
    assert {n for n, o in by_name.items() if o.status == "imported"} == set(GOOD)
    reasons = {n: o.reason for n, o in by_name.items() if o.status == "quarantined"}
    assert all(
        "placeholder figures: identical legacy-stream figures for 3" in reasons[n]
        for n in PLACEHOLDERS
    )
    assert (
        "benchmark_suite says 'hpl' but the file holds stream figures"
        in reasons["i3.large-hpl-7.json"]
    )
    assert "same access time at every cache level" in reasons["c7g.large-cache-8.json"]
    assert "not valid JSON" in reasons["truncated.json"]
    assert "above the 1048576-byte bound" in reasons["huge.json"]
    store = LocalStore(mirror)
    assert store.exists(
        "quarantine/legacy-import/"
        + hashlib.sha256(written["c5.large-stream-p.json"]).hexdigest()[:16]
        + "-c5.large-stream-p.json.reason"
    )
    # Stored: the original verbatim, where it came from, the sha256 of its bytes.
    [key] = [k for k in store.keys("raw/legacy-stream/c7g.large")]
    doc = json.loads(store.read(key))
    name = "c7g.large-stream-3.json"
    assert doc["source"]["path"] == f"results/2025-06-30/{name}"
    assert doc["source"]["sha256"] == hashlib.sha256(written[name]).hexdigest()
    assert doc["original"] == GOOD[name]
    assert (doc["architecture"], doc["manufacturer"]) == ("arm64", "AWS")
    assert doc["method"] == METHODS["legacy-stream"] and "one thread, one pass" in doc["method"]
    assert [f["code"] for f in doc["flags"]] == ["container-image-contradicts-type"]
    assert "amd-zen4 is for x86_64 but c7g.large is arm64" in doc["flags"][0]["detail"]
    assert {k.split("/")[1] for k in store.keys("raw")} == {
        "legacy-stream",
        "legacy-coremark",
        "legacy-cache",
        "legacy-hpl",
    }
    [coremark_key] = list(store.keys("raw/legacy-coremark"))
    coremark = json.loads(store.read(coremark_key))
    assert coremark["architecture"] == "x86_64" and coremark["manufacturer"] == "Intel"
    assert "architecture-label-contradicts-type" in {f["code"] for f in coremark["flags"]}


def test_reimport_is_idempotent_and_dry_run_writes_nothing(tmp_path: Path) -> None:
    repo, _ = _old_repo(tmp_path)
    mirror = tmp_path / "mirror"
    dry = import_legacy(repo, mirror, dry_run=True)
    assert dry.count("imported") == len(GOOD) and not mirror.exists()
    import_legacy(repo, mirror)
    before = sorted(LocalStore(mirror).keys("raw"))
    again = import_legacy(repo, mirror)
    assert again.count("imported") == 0
    assert again.count("already imported") == len(GOOD)
    assert again.count("quarantined") == 7
    assert sorted(LocalStore(mirror).keys("raw")) == before


def test_placeholder_against_an_earlier_import_is_caught(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    _write(first, {"m5.large-stream.json": go_collector_document("stream", "m5.large")})
    _write(second, {"r5.large-stream.json": go_collector_document("stream", "r5.large")})
    mirror = tmp_path / "mirror"
    assert import_legacy(first, mirror).count("imported") == 1
    [outcome] = import_legacy(second, mirror).outcomes
    assert outcome.status == "quarantined"
    assert "identical legacy-stream figures for 2 instance types (m5.large, r5.large)" in (
        outcome.reason
    )


def test_bad_paths_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        import_legacy(tmp_path / "nope", tmp_path / "mirror")
    (tmp_path / "file.json").write_text("{}")
    with pytest.raises(UserError, match="not a directory"):
        import_legacy(tmp_path / "file.json", tmp_path / "mirror")


def test_labels_are_never_trusted_and_checks_follow_our_rules() -> None:
    result = parse_go_collector(go_collector_document("stream", "c6i.large", label="graviton"))
    assert (result.architecture, result.manufacturer) == ("x86_64", "Intel")
    assert result.benchmark == "legacy-stream"
    doc = go_collector_document("stream", "m7i.large", figure=200.0)
    with pytest.raises(InvalidResult, match="one-thread ceiling"):
        parse_go_collector(doc)
    doc = go_collector_document("hpl", "m7i.large")
    doc["performance"]["memory"]["stream"] = doc["performance"]["memory"]["hpl"]
    with pytest.raises(InvalidResult, match="expected one of"):
        parse_go_collector(doc)
    with pytest.raises(InvalidResult, match="no EC2 instance id"):
        parse_go_collector(go_collector_document(instance_id="none"))


def test_legacy_series_are_never_pooled_nor_published(tmp_path: Path) -> None:
    repo, _ = _old_repo(tmp_path)
    mirror = tmp_path / "mirror"
    # Ours for m7i.large, and the old collector's m7i.large STREAM beside it.
    store_documents(mirror, [result_document("m7i.large", sample=i) for i in range(3)])
    import_legacy(repo, mirror)
    with ingest(mirror) as ds:
        assert ds.report.rejected == 0
        rows = ds.con.execute(
            "SELECT DISTINCT benchmark, collection_method, thread_mode, threads FROM "
            "accepted_rows WHERE source_format LIKE 'go-collector%' ORDER BY 1"
        ).fetchall()
        assert rows == [
            (b, "legacy", "single", 1)
            for b in ("legacy-cache", "legacy-coremark", "legacy-hpl", "legacy-stream")
        ]
        for include_sandbox in (False, True):
            summaries = summarize(ds.con, include_sandbox=include_sandbox)
            assert not [s for s in summaries if s.benchmark.startswith("legacy")]
            stream = [s for s in summaries if (s.benchmark, s.test) == ("stream", "triad")]
            assert {s.instance_type for s in stream} == {"m7i.large"}
            assert {s.n for s in stream} == {3}
    out = tmp_path / "published"
    with ingest(mirror) as ds:
        publish(ds, out)
    for name in ("memory-benchmarks.json", "cpu-benchmarks.json", "price-performance.json"):
        text = (out / "latest" / name).read_text()
        assert "c7g.large" not in text and "c7a.large" not in text and "41.9" not in text
        assert "legacy" not in text
    # A type with figures but missing fields is listed as held back: legacy figures would
    # put c7g.large/c7a.large there; only ours (m7i.large) is.
    index = json.loads((out / "latest" / "index.json").read_text())
    assert sorted(index["heldBack"]["memory-benchmarks.json"]) == ["m7i.large"]
    assert index["ingest"]["excluded"] == {"legacy result": len(GOOD)}
    aggregates = (out / "latest" / "aggregates.csv").read_text()
    assert "m7i.large" in aggregates and "legacy" not in aggregates
    assert "c7g.large" not in aggregates


def test_hand_placed_or_altered_legacy_documents_are_quarantined(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    store = LocalStore(mirror)
    doc = go_collector_document("stream", "m7i.large")
    store.put_new("raw/stream/m7i.large/us-east-1/2025/06/30/hand.json", json.dumps(doc).encode())
    repo = tmp_path / "old"
    _write(repo, {"m7a.large-stream.json": go_collector_document("stream", "m7a.large")})
    import_legacy(repo, mirror)
    [key] = list(store.keys("raw/legacy-stream"))
    wrapper = json.loads(store.read(key))
    wrapper["benchmark"] = "legacy-hpl"  # a wrapper edited by hand: the original decides
    altered = "raw/legacy-stream/m7a.large/us-east-1/2025/06/30/altered-0.json"
    store.put_new(altered, json.dumps(wrapper).encode())
    with ingest(mirror) as ds:
        reasons = dict(ds.report.rejections)
        assert ds.report.accepted == 1
    assert (
        "instbench import legacy" in reasons["raw/stream/m7i.large/us-east-1/2025/06/30/hand.json"]
    )
    assert "benchmark 'legacy-hpl' but the original holds stream" in reasons[altered]


def test_describe_instance_types_decides_where_it_knows_the_type(
    tmp_path: Path, aws_session: AwsSession
) -> None:
    repo = tmp_path / "old"
    _write(
        repo,
        {
            # labelled x86_64 and with an Intel image: EC2 says arm64 / AWS
            "c7g.large-stream.json": go_collector_document("stream", "c7g.large", figure=50.1),
            # a name EC2 does not know: the name parser decides, the import goes on
            "c10g.large-stream.json": go_collector_document("stream", "c10g.large", figure=60.2),
        },
    )
    mirror = tmp_path / "mirror"
    report = import_legacy(repo, mirror, describe=partial(known_architectures, aws_session))
    assert report.count("imported") == 2
    store = LocalStore(mirror)
    docs = {
        d["instance_type"]: d
        for d in (json.loads(store.read(k)) for k in store.keys("raw/legacy-stream"))
    }
    c7g = docs["c7g.large"]
    assert (c7g["architecture"], c7g["manufacturer"]) == ("arm64", "AWS")
    assert c7g["architecture_from"] == "describe-instance-types"
    assert {f["code"] for f in c7g["flags"]} == {
        "architecture-label-contradicts-type",
        "container-image-contradicts-type",
    }
    assert docs["c10g.large"]["architecture_from"] == "name-parser"
    with ingest(mirror) as ds:
        rows = ds.con.execute(
            "SELECT DISTINCT instance_type, architecture, manufacturer FROM accepted_rows "
            "ORDER BY 1"
        ).fetchall()
    assert rows == [("c10g.large", "arm64", "AWS"), ("c7g.large", "arm64", "AWS")]


def test_deeply_nested_json_is_quarantined_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "deep.json").write_bytes(b"[" * 200_000)
    [outcome] = import_legacy(tmp_path / "old", tmp_path / "mirror").outcomes
    assert (outcome.status, outcome.path) == ("quarantined", "deep.json")
    assert "nested too deeply" in outcome.reason


def test_the_same_file_twice_in_one_batch_is_stored_once(tmp_path: Path) -> None:
    doc = go_collector_document("stream", "m7i.large")
    for sub in ("a", "b"):
        (tmp_path / "old" / sub).mkdir(parents=True)
        (tmp_path / "old" / sub / "m7i.json").write_text(json.dumps(doc))
    for dry_run in (True, False):
        report = import_legacy(tmp_path / "old", tmp_path / "mirror", dry_run=dry_run)
        assert [o.status for o in report.outcomes] == ["imported", "already imported"]
    assert len(list(LocalStore(tmp_path / "mirror").keys("raw"))) == 1
