"""Aggregation with known answers, and the publication: golden files, determinism, errors.

Regenerate the golden files after an intended change with
    INSTBENCH_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/analysis/test_publish.py
and review the diff like any other change of the published contract.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from tests.factories import (
    imported_legacy,
    legacy_document,
    legacy_key,
    result_document,
    store_documents,
)

from instbench.analysis.aggregate import summarize
from instbench.analysis.documents.compass import (
    MEMORY_FIELDS,
    TypeFigures,
    build_entry,
    memory_document,
)
from instbench.analysis.documents.exports import inputs_digest
from instbench.analysis.generator import generator_digest
from instbench.analysis.ingest import ingest
from instbench.analysis.publish import publish
from instbench.errors import StorageError
from instbench.prices import InstancePrice, PriceSet
from instbench.results.jsonschema import SCHEMA_PATH

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "publish"
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # a Monday (ISO week 10)

# Per-sample best triad bandwidths (GB/s): the known answers of the tests below.
M7I = [41.0, 42.0, 43.5, 40.5, 42.5]
C7G = [55.0, 56.5, 54.0]


def _dataset(root: Path) -> None:
    docs = [
        result_document("m7i.large", bandwidth_gbps=bw, sample=i, timestamp=T0 + timedelta(hours=i))
        for i, bw in enumerate(M7I)
    ]
    docs += [
        result_document("c7g.large", bandwidth_gbps=bw, sample=i, run_id="run-c7g", timestamp=T0)
        for i, bw in enumerate(C7G)
    ]
    docs.append(result_document("m7a.large", sample=0, collection_method="sandbox"))
    store_documents(root, docs)
    # The earlier Go collector's r7i.large, imported: its own series, never published.
    legacy = imported_legacy(
        legacy_document("r7i.large", triad_gbps=33.3, timestamp="2025-03-04T10:00:00Z")
    )
    (root / legacy_key(legacy)).parent.mkdir(parents=True)
    (root / legacy_key(legacy)).write_text(json.dumps(legacy))
    (root / "raw/stream/bad.json").write_text('{"metadata": 1}')


def _golden(name: str, data: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("INSTBENCH_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    assert path.exists(), f"missing golden file {path}: run with INSTBENCH_UPDATE_GOLDEN=1"
    assert data.decode() == path.read_text(), f"{name} differs from its golden file"


def test_summaries_have_the_known_answers(tmp_path: Path) -> None:
    _dataset(tmp_path)
    with ingest(tmp_path) as ds:
        rows = {(s.instance_type, s.test, s.thread_mode): s for s in summarize(ds.con)}
    s = rows[("m7i.large", "triad", "all")]
    assert s.n == 5
    assert s.mean == pytest.approx(statistics.fmean(M7I))
    assert s.median == pytest.approx(statistics.median(M7I))
    assert s.sd == pytest.approx(statistics.stdev(M7I))
    assert s.cv == pytest.approx(statistics.stdev(M7I) / statistics.fmean(M7I))
    assert (s.min, s.max) == pytest.approx((min(M7I), max(M7I)))
    half = 2.7764 * statistics.stdev(M7I) / 5**0.5
    assert (s.ci_low, s.ci_high) == pytest.approx((s.mean - half, s.mean + half), abs=1e-3)
    assert s.median_ci_low is None  # n = 5 is too few for a 95 % median interval
    assert s.vcpus == 2 and s.per_vcpu == pytest.approx(s.mean / 2)
    assert s.per_gib == pytest.approx(s.mean / s.memory_gib)
    # Within-instance spread (trials, cv 1 %) is far below the between-instance spread.
    assert s.within_cv is not None and s.cv is not None and s.within_cv < s.cv
    assert rows[("c7g.large", "triad", "all")].n == 3
    assert ("m7a.large", "triad", "all") not in rows  # sandbox: not published
    assert not [k for k in rows if k[0] == "r7i.large"]  # legacy: history only


def _prices() -> PriceSet:
    return PriceSet(
        region="us-east-1",
        as_of=datetime(2025, 3, 5).date(),
        source="test price file",
        instances={
            "m7i.large": InstancePrice(0.1008, 0.0635, 0.0437, 0.0391, 0.0402, 0.9),
            "c7g.large": InstancePrice(0.0725, 0.0457, 0.0314, None, None, None),
        },
    )


def test_publication_matches_the_golden_files(tmp_path: Path) -> None:
    _dataset(tmp_path / "mirror")
    out = tmp_path / "out"
    with ingest(tmp_path / "mirror") as ds:
        publish(ds, out, prices=_prices())
    latest = out / "latest"
    for name in ("memory-benchmarks.json", "cpu-benchmarks.json", "price-performance.json"):
        _golden(name, (latest / name).read_bytes())
    index = json.loads((latest / "index.json").read_text())
    # Parquet bytes depend on the DuckDB version; their hashes are checked for stability
    # by test_publication_is_deterministic instead.
    # The result schema is owned by results/ and changes with it: checked by equality.
    for entry in index["files"]:
        if entry["path"].endswith(".parquet"):
            entry["sha256"] = entry["bytes"] = "(parquet)"
        if entry["path"] == "schemas/result-v1.schema.json":
            entry["sha256"] = entry["bytes"] = "(results/jsonschema.py)"
    assert (latest / "schemas" / "result-v1.schema.json").read_bytes() == SCHEMA_PATH.read_bytes()
    # Both digests name the code, which changes with every commit: their form is checked.
    assert index["generatorDigest"] == generator_digest()
    assert re.fullmatch("[0-9a-f]{64}", index["sourceDigest"])
    index["generatorDigest"] = "(the instbench package)"
    index["sourceDigest"] = "(documents, rejections, options, prices, code)"
    _golden("index.json", (json.dumps(index, indent=2, sort_keys=True) + "\n").encode())
    _golden("aggregates.csv", (latest / "aggregates.csv").read_bytes())
    # Complete or absent: this set has STREAM only (no latency), so no type is in the file,
    # and each is listed with exactly what it lacks; the tidy export has every row.
    memory = json.loads((latest / "memory-benchmarks.json").read_text())
    assert memory["instances"] == {}
    held = index["heldBack"]["memory-benchmarks.json"]
    assert sorted(held) == ["c7g.large", "m7i.large"]  # not r7i.large (legacy only)
    assert "cache.memory.latency" in held["m7i.large"]
    assert index["ingest"]["excluded"] == {"legacy result": 1, "sandbox result": 1}
    assert index["ingest"]["rejected"] == 1
    parts = f"{(latest / 'tidy').as_posix()}/*/*/*.parquet"
    with duckdb.connect() as con:
        tidy = con.execute(
            f"SELECT benchmark, month, count(*) FROM read_parquet('{parts}', "
            "hive_partitioning = true) GROUP BY ALL"
        ).fetchall()
    assert tidy == [("stream", "2025-03", (5 + 3) * 2 * 4)]
    # tidy.csv only with csv=True; the legacy rows are not exported
    assert not (latest / "tidy.csv").exists()
    assert index["partitioning"]["tidy"]["rows"] == (5 + 3) * 2 * 4
    assert (out / "2025-W10" / "summary.json").exists()
    assert (out / "2025-03" / "summary.csv").exists()
    assert (latest / "schemas" / "result-v1.schema.json").exists()
    assert "| `value` | DOUBLE |" in (latest / "datacard.md").read_text()


def test_publication_is_deterministic(tmp_path: Path) -> None:
    _dataset(tmp_path / "mirror")
    outputs = []
    for name in ("a", "b"):
        with ingest(tmp_path / "mirror") as ds:
            publish(ds, tmp_path / name)
        files = sorted(p for p in (tmp_path / name).rglob("*") if p.is_file())
        outputs.append({p.relative_to(tmp_path / name).as_posix(): p.read_bytes() for p in files})
    assert outputs[0] == outputs[1]


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_inputs_digest_names_the_accepted_documents(tmp_path: Path) -> None:
    _dataset(tmp_path)
    with ingest(tmp_path) as ds:
        ok = ds.con.execute(
            "SELECT key, sha256 FROM file_status WHERE status = 'ok' ORDER BY key"
        ).fetchall()
        digest = inputs_digest(ds.con)
    lines = "".join(f"{key} {sha}\n" for key, sha in ok)
    assert len(ok) == 10 and digest == hashlib.sha256(lines.encode()).hexdigest()


def test_unchanged_inputs_reuse_the_tidy_exports_and_change_nothing(tmp_path: Path) -> None:
    mirror, out = tmp_path / "mirror", tmp_path / "out"
    _dataset(mirror)
    with ingest(mirror) as ds:
        first = publish(ds, out, csv=True)
    before = _tree(out)
    with ingest(mirror) as ds:
        again = publish(ds, out, csv=True)
    assert (first.reused_exports, again.reused_exports) == (False, True)
    assert _tree(out) == before  # byte for byte, index.json's hashes included

    # Another option (sandbox results admitted): written again, with the extra rows.
    with ingest(mirror) as ds:
        demo = publish(ds, out, include_sandbox=True, csv=True)
    assert not demo.reused_exports
    assert _tree(out)["latest/tidy.csv"] != before["latest/tidy.csv"]

    # A new document: written again, and it is in them.
    with ingest(mirror) as ds:
        publish(ds, out, csv=True)
    store_documents(mirror, [result_document("m7i.large", sample=9, run_id="late")])
    with ingest(mirror) as ds:
        later = publish(ds, out, csv=True)
    assert not later.reused_exports
    assert "late-9.json" in (out / "latest" / "tidy.csv").read_text()

    # Without --csv the CSV is gone, the partitions (same inputs) are kept.
    with ingest(mirror) as ds:
        plain = publish(ds, out)
    assert plain.reused_exports and plain.partitions_written == 0
    assert not (out / "latest" / "tidy.csv").exists()


def _partition_files(out: Path) -> dict[str, Path]:
    latest = out / "latest"
    return {p.relative_to(latest).as_posix(): p for p in (latest / "tidy").rglob("*.parquet")}


def test_a_sync_rewrites_only_the_partitions_whose_documents_changed(tmp_path: Path) -> None:
    mirror, out = tmp_path / "mirror", tmp_path / "out"
    _dataset(mirror)
    with ingest(mirror) as ds:
        publish(ds, out)
    before = {p: (f.stat().st_ino, f.read_bytes()) for p, f in _partition_files(out).items()}
    march = "tidy/benchmark=stream/month=2025-03/part-0.parquet"
    monthly = out / "latest" / "aggregates/benchmark=stream/month=2025-03/part-0.parquet"
    monthly_before = (monthly.stat().st_ino, monthly.read_bytes())
    assert list(before) == [march]
    april = T0 + timedelta(days=40)
    store_documents(
        mirror, [result_document("m7i.large", sample=7, run_id="april", timestamp=april)]
    )
    with ingest(mirror) as ds:
        synced = publish(ds, out)
    after = _partition_files(out)
    assert sorted(after) == [march, march.replace("2025-03", "2025-04")]
    assert (synced.partitions_written, synced.partitions) == (1, 2)
    # March's file is the previous one, linked (same inode), not written again.
    assert (after[march].stat().st_ino, after[march].read_bytes()) == before[march]
    # So is March's aggregates partition (its window folder is kept).
    assert (monthly.stat().st_ino, monthly.read_bytes()) == monthly_before
    index = json.loads((out / "latest" / "index.json").read_text())
    entries = {f["path"]: f for f in index["files"]}
    assert entries[march.replace("2025-03", "2025-04")]["rows"] == 2 * 4
    assert all(len(entries[p]["inputs"]) == 64 for p in after)

    # The same documents published into an empty folder: the same bytes everywhere.
    with ingest(mirror) as ds:
        publish(ds, tmp_path / "fresh")
    assert _tree(tmp_path / "fresh") == _tree(out)


def test_tampered_exports_are_written_again_not_reused(tmp_path: Path) -> None:
    mirror, out = tmp_path / "mirror", tmp_path / "out"
    _dataset(mirror)
    with ingest(mirror) as ds:
        publish(ds, out)
    before = _tree(out)
    (part,) = _partition_files(out).values()
    monthly = out / "latest" / "aggregates/benchmark=stream/month=2025-03/part-0.parquet"
    for path in (part, monthly):
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    with ingest(mirror) as ds:
        again = publish(ds, out)
    assert not again.reused_exports
    assert _tree(out) == before  # the right bytes and hashes, not the edited file's


class _Latency:
    """A latency section shaped as tidy._latency_rows documents it."""

    def __init__(self, ns: float, gbps: float | None) -> None:
        self.latency_ns = ns
        self.bandwidth_gbps = gbps


def test_a_type_with_every_field_measured_enters_the_memory_file() -> None:
    from instbench.analysis.aggregate import Summary

    def summary(bench: str, test: str, mode: str, metric: str, mean: float) -> Summary:
        return Summary(
            instance_type="m7i.large",
            benchmark=bench,
            test=test,
            thread_mode=mode,
            metric=metric,
            unit="",
            window="all",
            n=4,
            median=mean,
            mean=mean,
            sd=0.5,
            cv=0.5 / mean,
            min=mean - 1,
            max=mean + 1,
            ci_low=mean - 0.8,
            ci_high=mean + 0.8,
            median_ci_low=None,
            median_ci_high=None,
            within_sd=0.1,
            within_cv=0.1 / mean,
            trials=19,
            vcpus=2,
            memory_gib=7.6,
            per_vcpu=mean / 2,
            per_gib=mean / 7.6,
            architecture="x86_64",
            manufacturer="Intel",
            sockets=1,
            first="2025-03-03T09:00:00Z",
            last="2025-03-03T13:00:00Z",
        )

    rows = [
        summary("stream", k, "all", "bandwidth", v)
        for k, v in (("copy", 45.2), ("scale", 44.8), ("add", 42.1), ("triad", 41.9))
    ]
    for level, ns, gbps in (("l1", 1.1, 800.0), ("l2", 3.9, 400.0), ("l3", 14.0, 200.0)):
        rows.append(summary("latency", level, "single", "latency", ns))
        rows.append(summary("latency", level, "single", "bandwidth", gbps))
    rows.append(summary("latency", "memory", "single", "latency", 85.0))
    rows.append(summary("latency", "numa-local", "single", "bandwidth", 12.5))
    fig = TypeFigures("m7i.large", rows)
    entry, missing = build_entry(fig, MEMORY_FIELDS)
    assert missing == [] and entry is not None
    doc, held = memory_document({"m7i.large": fig}, {"version": "2025.03.03"})
    assert held == {}
    _golden(
        "memory-benchmarks-complete.json",
        (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode(),
    )
    numa = doc["instances"]["m7i.large"]["numa"]
    # One socket: the count from the machine, local = single-thread read of local memory
    # (measured), nothing remote (0 by convention).
    assert (numa["socketCount"], numa["localBandwidth"], numa["remoteBandwidth"]) == (1, 12.5, 0)
    assert numa["interSocketLatency"] == 0
    # Without the memory latency it is held back again, naming the field.
    _, missing = build_entry(TypeFigures("m7i.large", rows[:-2] + rows[-1:]), MEMORY_FIELDS)
    assert missing == ["cache.memory.latency"]


def test_latency_section_becomes_tidy_rows() -> None:
    from instbench.analysis.tidy import _latency_rows

    class Section:
        l1 = _Latency(1.2, 900.0)
        memory = _Latency(88.0, None)

    rows = list(_latency_rows(Section(), {"key": "k"}))
    assert [(r["test"], r["metric"], r["value"]) for r in rows] == [
        ("l1", "latency", 1.2),
        ("l1", "bandwidth", 900.0),
        ("memory", "latency", 88.0),
    ]


def test_unwritable_output_is_one_error_and_nothing_is_written(tmp_path: Path) -> None:
    _dataset(tmp_path / "mirror")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with ingest(tmp_path / "mirror") as ds, pytest.raises(StorageError, match="cannot write"):
        publish(ds, blocker / "out")
    assert blocker.read_text() == "not a directory"


def test_a_group_reports_its_most_common_machine_ties_to_the_smallest(tmp_path: Path) -> None:
    """One machine per group: the most common configuration among its samples."""
    gib = 2**30
    memories = {"m7i.large": [8 * gib, 8 * gib, 7 * gib], "c7g.large": [5 * gib, 4 * gib]}
    docs = []
    for itype, totals in memories.items():
        for i, total in enumerate(totals):
            doc = result_document(itype, sample=i, timestamp=T0 + timedelta(hours=i))
            doc["system_info"]["memory"]["total_bytes"] = total
            docs.append(doc)
    store_documents(tmp_path, docs)
    with ingest(tmp_path) as ds:
        rows = {
            s.instance_type: s
            for s in summarize(ds.con)
            if (s.test, s.thread_mode) == ("triad", "all")
        }
    assert rows["m7i.large"].memory_gib == 8.0  # two of three samples
    assert rows["c7g.large"].memory_gib == 4.0  # one each: the smaller
    assert rows["c7g.large"].per_gib == pytest.approx(rows["c7g.large"].mean / 4.0)


def test_a_previous_index_naming_paths_outside_its_partitions_is_not_followed(
    tmp_path: Path,
) -> None:
    """A file entry of the previous index.json that climbs out of latest/tidy/ (with the
    hash of a file out there) is not linked into the output: only partition paths count."""
    mirror, out = tmp_path / "mirror", tmp_path / "out"
    _dataset(mirror)
    with ingest(mirror) as ds:
        publish(ds, out)
    fresh = _tree(out)
    secret = tmp_path / "secret"
    secret.write_bytes(b"not part of any publication")
    path = out / "latest" / "index.json"
    index = json.loads(path.read_text())
    index["files"].append(
        {
            "path": "tidy/../../../secret",
            "rows": 1,
            "sha256": hashlib.sha256(secret.read_bytes()).hexdigest(),
            "inputs": "0" * 64,
        }
    )
    index["partitioning"]["tidy"]["partitions"] += 1
    path.write_text(json.dumps(index))
    with ingest(mirror) as ds:
        publish(ds, out)
    assert not (out / "secret").exists()
    assert _tree(out) == fresh


def test_inputs_digest_streamed_equals_the_sql_digest() -> None:
    """inputs_digest hashes the sorted rows as they stream by; it must be the digest
    `reuse.documents_digest_sql` computes in one string (what index.json has published),
    empty set, batch boundaries and non-ASCII keys included."""
    import duckdb

    from instbench.analysis import reuse
    from instbench.analysis.documents.exports import inputs_digest

    con = duckdb.connect()
    con.execute("CREATE TABLE file_status (key VARCHAR, sha256 VARCHAR, status VARCHAR)")

    def sql() -> str:
        row = con.execute(
            f"SELECT {reuse.documents_digest_sql('sha256')} FROM file_status WHERE status = 'ok'"
        ).fetchone()
        assert row is not None
        return str(row[0])

    assert inputs_digest(con) == sql()
    con.execute(
        "INSERT INTO file_status SELECT 'raw/k-' || lpad(i::VARCHAR, 6, '0') || "
        "CASE WHEN i % 7 = 0 THEN '-é' ELSE '' END || '.json', sha256(i::VARCHAR), "
        "CASE WHEN i % 5 = 0 THEN 'duplicate' ELSE 'ok' END FROM range(120000) t(i)"
    )
    assert inputs_digest(con) == sql()


def _stamps(root: Path) -> dict[str, tuple[int, int]]:
    """Every file of a publication -> (inode, mtime_ns): what a rewrite would change."""
    return {
        p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


def _publish(mirror: Path, out: Path, **options: object) -> Any:
    with ingest(mirror) as ds:
        return publish(ds, out, **options)  # type: ignore[arg-type]


def test_nothing_new_leaves_an_intact_publication_as_it_is(tmp_path: Path) -> None:
    """Same sources (documents, rejections, options, prices, code) and every file as the
    index recorded: nothing is written. Anything else: written, and the bytes are those
    of a publication made from scratch."""
    mirror, out = tmp_path / "mirror", tmp_path / "out"
    _dataset(mirror)
    first = _publish(mirror, out, prices=_prices())
    assert not first.unchanged
    stamps, tree = _stamps(out), _tree(out)
    again = _publish(mirror, out, prices=_prices())
    assert again.unchanged and again.reused_exports and again.index == first.index
    assert _stamps(out) == stamps and _tree(out) == tree

    def fresh(**options: object) -> dict[str, bytes]:
        target = tmp_path / f"fresh-{len(list(tmp_path.glob('fresh-*')))}"
        _publish(mirror, target, **options)
        return _tree(target)

    # Each source of the publication: another value is a new publication, as from scratch.
    for options in ({}, {"prices": _prices(), "min_effect": 0.1}, {"prices": _prices()}):
        redone = _publish(mirror, out, **options)
        assert not redone.unchanged
        assert _tree(out) == fresh(**options)
    # A file more, a file edited, a window file removed, a symbolic link: written anew.
    for spoil in (
        lambda: (out / "latest" / "extra.txt").write_text("planted"),
        lambda: (out / "latest" / "memory-benchmarks.json").write_text("{}"),
        lambda: (out / "2025-W10" / "summary.csv").unlink(),
        lambda: (out / "2024-W01").mkdir(),
        lambda: (out / "latest" / "link.json").symlink_to(out / "latest" / "index.json"),
    ):
        spoil()
        redone = _publish(mirror, out, prices=_prices())
        assert not redone.unchanged
        assert _tree(out) == tree
        assert _publish(mirror, out, prices=_prices()).unchanged
    # A new rejected file changes quarantine.csv and the counts: written anew.
    (mirror / "raw/stream/worse.json").write_text("[1, 2")
    redone = _publish(mirror, out, prices=_prices())
    assert not redone.unchanged
    assert b"worse.json" in (out / "latest" / "quarantine.csv").read_bytes()


def test_a_publication_by_other_code_is_never_reused(tmp_path: Path) -> None:
    """generatorDigest names the code: a publication whose digest differs (made by
    another commit at the same version number) lends no file to this one."""
    mirror, out = tmp_path / "mirror", tmp_path / "out"
    _dataset(mirror)
    _publish(mirror, out)
    index_path = out / "latest" / "index.json"
    index = json.loads(index_path.read_text())
    index["generatorDigest"] = "0" * 64
    index_path.write_text(json.dumps(index))
    stamps = _stamps(out)
    redone = _publish(mirror, out)
    assert not redone.unchanged and not redone.reused_exports
    assert redone.partitions_written == redone.partitions == 1
    new = _stamps(out)
    assert not any(new[p] == stamps[p] for p in new if p in stamps)  # every file written
