"""Ingest: quarantine cases, duplicates counted once, legacy files, the incremental cache."""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.factories import (
    imported_legacy,
    legacy_document,
    legacy_key,
    raw_key_of,
    result_document,
    store_documents,
    to_bytes,
)

from instbench.analysis.ingest import ingest
from instbench.errors import UserError
from instbench.results.validate import content_sha256
from instbench.storage.local import LocalStore

KEY = "raw/stream/m7i.large/us-east-1/2025/03/01/bad-0.json"


def _doc(**kw: Any) -> dict[str, Any]:
    return result_document(run_id="bad", **kw)


def _triad(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["performance_data"]["stream"]["runs"][0]["kernels"]["triad"]


def _negative() -> bytes:
    doc = _doc()
    _triad(doc)["avg_gbps"] = -1.0
    return to_bytes(doc)


def _failed_validation() -> bytes:
    doc = _doc()
    doc["performance_data"]["stream"]["runs"][0]["validation_passed"] = False
    return to_bytes(doc)


def _invented() -> bytes:
    doc = _doc()
    k = _triad(doc)
    k["best_gbps"] = k["max_gbps"] = k["best_gbps"] * 1.5  # no longer bytes / fastest time
    return to_bytes(doc)


def _above_ceiling() -> bytes:
    # 400 GB/s from the 2 threads of an m7i.large: above 2 x 150 GB/s.
    return to_bytes(_doc(bandwidth_gbps=400.0))


def _wrong_schema() -> bytes:
    doc = _doc()
    doc["metadata"]["sampel"] = 1
    return to_bytes(doc)


def _wrong_key() -> bytes:
    return to_bytes(result_document("c7g.large", run_id="bad"))


def _wrong_arch() -> bytes:
    doc = _doc()
    doc["system_info"]["architecture"] = "arm64"
    return to_bytes(doc)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"metadata": ', "not valid JSON"),
        (b'{"x": NaN}', "non-finite number NaN"),
        (_wrong_schema(), "schema violation at metadata.sampel"),
        (_negative(), "schema violation"),
        (_failed_validation(), "STREAM validation failed"),
        (_invented(), "does not follow from bytes_per_trial / min_time_s"),
        (_above_ceiling(), "above the ceiling 300 GB/s for 2 threads"),
        (_wrong_key(), "stored under a key that does not match it"),
        (_wrong_arch(), "m7i.large is x86_64 but the machine reported arm64"),
        (b"[]", "not a JSON object"),
    ],
)
def test_bad_files_are_quarantined_with_a_reason(tmp_path: Path, raw: bytes, reason: str) -> None:
    store = LocalStore(tmp_path)
    store.put_new(KEY, raw)
    store_documents(tmp_path, [result_document()])
    with ingest(tmp_path) as ds:
        assert ds.report.rejected == 1
        assert ds.report.accepted == 1
        [(key, why)] = ds.report.rejections
    assert key == KEY and reason in why
    assert store.read(f"quarantine/{KEY}") == raw
    assert reason in store.read(f"quarantine/{KEY}.reason").decode()
    assert store.read(KEY) == raw  # nothing under raw/ is touched


def test_sandbox_and_quick_results_are_valid_but_excluded(tmp_path: Path) -> None:
    from instbench.analysis.aggregate import excluded_counts, summarize

    docs = [
        result_document(sample=0),
        result_document(sample=1, collection_method="sandbox"),
        result_document(sample=2, quick=True),
    ]
    store_documents(tmp_path, docs)
    with ingest(tmp_path) as ds:
        assert (ds.report.accepted, ds.report.rejected) == (3, 0)
        assert {s.n for s in summarize(ds.con)} == {1}
        assert {s.n for s in summarize(ds.con, include_sandbox=True)} == {3}
        assert excluded_counts(ds.con, False) == {"quick mode": 1, "sandbox result": 1}
    assert not (tmp_path / "quarantine").exists()


def test_duplicates_are_counted_once(tmp_path: Path) -> None:
    doc = imported_legacy(legacy_document())
    store = LocalStore(tmp_path)
    store.put_new(legacy_key(doc, "a"), to_bytes(doc))
    # Same content, other formatting, under a second key (the file copied twice).
    store.put_new(legacy_key(doc, "b"), json.dumps(doc).encode())
    store_documents(tmp_path, [result_document()])
    with ingest(tmp_path) as ds:
        assert (ds.report.accepted, ds.report.duplicates) == (2, 1)
        row = ds.con.execute(
            "SELECT DISTINCT result_sha256, key FROM accepted_rows WHERE source_format <> "
            "'instbench-1'"
        ).fetchall()
    assert row == [(content_sha256(doc), legacy_key(doc, "a"))]


def test_identical_figures_for_different_types_are_placeholders(tmp_path: Path) -> None:
    a = imported_legacy(legacy_document("m7i.large", triad_gbps=41.9))
    b = imported_legacy(legacy_document("m7a.large", triad_gbps=41.9))
    store = LocalStore(tmp_path)
    store.put_new(legacy_key(a, "a"), json.dumps(a).encode())
    store.put_new(legacy_key(b, "b"), json.dumps(b).encode())
    with ingest(tmp_path) as ds:
        assert ds.report.accepted == 0 and ds.report.rejected == 2
        assert all("identical figures for 2 instance types" in r for _, r in ds.report.rejections)
    assert store.exists(f"quarantine/{legacy_key(b, 'b')}.reason")


def test_legacy_files_are_their_own_series_with_unknowns_left_null(tmp_path: Path) -> None:
    doc = imported_legacy(legacy_document())
    LocalStore(tmp_path).put_new(legacy_key(doc), json.dumps(doc).encode())
    with ingest(tmp_path) as ds:
        assert ds.report.accepted == 1
        rows = ds.con.execute(
            "SELECT source_format, test, thread_mode, value, vcpus, trials, timestamp, "
            "benchmark, collection_method FROM accepted_rows ORDER BY test"
        ).fetchall()
    assert [r[1] for r in rows] == ["add", "copy", "scale", "triad"]
    triad = rows[-1]
    assert triad[0] == "go-collector-1.0.0" and triad[2] == "single"
    assert triad[3] == pytest.approx(14.4981)
    assert triad[4] is None and triad[5] == 1
    assert triad[6] == datetime(2025, 6, 29, 23, 21, 58)
    assert triad[7:] == ("legacy-stream", "legacy")


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d.pop("kind"), "placed by hand: bring it in with `instbench import legacy"),
        (
            lambda d: d["performance"]["memory"]["stream"]["copy"].update(bandwidth=-3),
            "not positive",
        ),
        (
            lambda d: d["performance"]["memory"]["stream"]["add"].update(bandwidth=5000.0),
            "above the one-thread ceiling",
        ),
        (lambda d: d.update(schema_version="0.9"), "unsupported schema_version"),
        (lambda d: d["performance"]["memory"]["stream"].pop("triad"), "missing"),
    ],
)
def test_implausible_legacy_files_are_quarantined(tmp_path: Path, mutate: Any, reason: str) -> None:
    wrapper = imported_legacy(legacy_document())
    key = legacy_key(wrapper)
    if "placed by hand" in reason:
        doc = wrapper["original"]  # the Go collector's file itself, not imported
    else:
        doc = copy.deepcopy(wrapper)
        mutate(doc["original"])
    LocalStore(tmp_path).put_new(key, json.dumps(doc).encode())
    with ingest(tmp_path) as ds:
        [(_, why)] = ds.report.rejections
    assert reason in why


def test_cache_revalidates_only_new_and_changed_files(tmp_path: Path) -> None:
    docs = [result_document(sample=i, bandwidth_gbps=40 + i) for i in range(4)]
    keys = store_documents(tmp_path, docs)
    with ingest(tmp_path) as ds:
        assert ds.report.validated_now == 4
    with ingest(tmp_path) as ds:
        assert ds.report.validated_now == 0 and ds.report.accepted == 4
    store_documents(tmp_path, [result_document(sample=9)])
    (tmp_path / keys[0]).unlink()  # a file removed from the mirror leaves the dataset
    with ingest(tmp_path) as ds:
        assert ds.report.validated_now == 1
        assert ds.report.accepted == 4
        samples = [
            r[0]
            for r in ds.con.execute(
                "SELECT DISTINCT sample FROM accepted_rows ORDER BY 1"
            ).fetchall()
        ]
    assert samples == [1, 2, 3, 9]


def test_parallel_workers_give_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from instbench.analysis import ingest as ingest_mod

    docs = [
        result_document(t, sample=i, bandwidth_gbps=30 + i % 7)
        for i in range(12)
        for t in ("m7i.large", "c7g.large")
    ]
    store_documents(tmp_path / "a", docs)
    store_documents(tmp_path / "b", docs)
    with ingest(tmp_path / "a", workers=1) as ds:
        serial = ds.con.execute("SELECT * EXCLUDE (key) FROM accepted_rows ORDER BY ALL").fetchall()
    monkeypatch.setattr(ingest_mod, "PARALLEL_THRESHOLD", 1)
    monkeypatch.setattr(ingest_mod, "CHUNK", 5)
    with ingest(tmp_path / "b", workers=2) as ds:
        parallel = ds.con.execute(
            "SELECT * EXCLUDE (key) FROM accepted_rows ORDER BY ALL"
        ).fetchall()
    assert serial == parallel and len(serial) == 24 * 8


def test_missing_input_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        ingest(tmp_path / "nope")
    with pytest.raises(UserError, match="no raw/ directory"):
        ingest(tmp_path)


def test_rows_carry_within_instance_spread_from_trial_times(tmp_path: Path) -> None:
    doc = result_document(trial_cv=0.05, trials=12, timestamp=datetime(2025, 3, 3, tzinfo=UTC))
    store_documents(tmp_path, [doc])
    with ingest(tmp_path) as ds:
        trials, mean, sd, value = ds.con.execute(
            "SELECT trials, trial_mean, trial_sd, value FROM accepted_rows "
            "WHERE test = 'triad' AND thread_mode = 'all'"
        ).fetchone() or (0, 0, 0, 0)
    k = _triad(doc)
    rates = [k["bytes_per_trial"] / t / 1e9 for t in k["trial_times_s"]]
    assert trials == 12 and value == pytest.approx(max(rates))
    assert mean == pytest.approx(sum(rates) / 12)
    assert 0 < sd < value * 0.1
    assert raw_key_of(doc).endswith("/2025/03/03/run-20250301-0.json")


def _age_directories(root: Path, seconds: int = 3600) -> None:
    """Give every directory under raw/ an mtime in the past (no longer 'racy')."""
    old = time.time_ns() - seconds * 1_000_000_000
    for d in [root / "raw", *(p for p in (root / "raw").rglob("*") if p.is_dir())]:
        os.utime(d, ns=(old, old))


def test_warm_walk_lists_only_directories_that_changed(tmp_path: Path) -> None:
    docs = [
        result_document(t, sample=i, bandwidth_gbps=40 + i)
        for i in range(3)
        for t in ("m7i.large", "c7g.large")
    ]
    keys = store_documents(tmp_path, docs)
    _age_directories(tmp_path)
    with ingest(tmp_path) as ds:
        assert ds.report.validated_now == 6
    with ingest(tmp_path) as ds:  # nothing changed: no directory is read again
        assert (ds.report.listed_dirs, ds.report.validated_now) == (0, 0)
        assert (ds.report.files, ds.report.accepted) == (6, 6)

    new_key = store_documents(tmp_path, [result_document("m7i.large", sample=7)])[0]
    with ingest(tmp_path) as ds:
        # only the new file's own directory changed (its parents already existed)
        assert ds.report.listed_dirs == 1 and ds.report.validated_now == 1
        assert ds.report.accepted == 7
    _age_directories(tmp_path)

    # A whole directory removed: its files leave the dataset, though it was never listed.
    c7g_dir = tmp_path / "raw" / "stream" / "c7g.large"
    shutil.rmtree(c7g_dir)
    with ingest(tmp_path) as ds:
        left = {r[0] for r in ds.con.execute("SELECT key FROM files").fetchall()}
        status = ds.con.execute("SELECT count(*) FROM file_status").fetchone()
    assert left == {k for k in [*keys, new_key] if "/c7g.large/" not in k}
    assert status == (4,)


def test_recent_directories_are_listed_again(tmp_path: Path) -> None:
    """A directory modified within RACY_NS of the walk may still gain a file in the same
    clock tick without its mtime changing, so the next walk reads it again."""
    store_documents(tmp_path, [result_document(sample=1)])
    with ingest(tmp_path) as ds:
        first = ds.report.listed_dirs
    with ingest(tmp_path) as ds:
        assert ds.report.listed_dirs == first > 0


def test_rescan_sees_a_file_edited_in_place(tmp_path: Path) -> None:
    [key] = store_documents(tmp_path, [result_document(sample=1, bandwidth_gbps=40)])
    _age_directories(tmp_path)
    with ingest(tmp_path) as ds:
        assert ds.report.accepted == 1
    (tmp_path / key).write_bytes(_negative())  # in place: the directory's mtime is unchanged
    with ingest(tmp_path, rescan=True) as ds:
        assert ds.report.validated_now == 1
        assert ds.report.accepted == 0 and ds.report.rejected == 1


def test_derived_tables_kept_up_to_date_equal_a_fresh_derivation(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    docs = [
        result_document(t, sample=i, bandwidth_gbps=40 + i)
        for i in range(3)
        for t in ("m7i.large", "c7g.large")
    ]
    keys = store_documents(mirror, docs)
    store = LocalStore(mirror)
    imported = imported_legacy(legacy_document())
    legacy = to_bytes(imported)
    store.put_new(legacy_key(imported, "b"), legacy)
    with ingest(mirror) as ds:
        assert ds.report.accepted == 7
    # The same content under a key sorting before it: the older key becomes a duplicate.
    first = legacy_key(imported, "a")
    store.put_new(first, legacy)
    (mirror / keys[1]).unlink()  # a file gone
    (mirror / keys[2]).write_bytes(_negative())  # a file changed in place: now rejected
    # ... and one changed in place that is still valid, with other figures
    (mirror / keys[3]).write_bytes(
        to_bytes(result_document("c7g.large", sample=1, bandwidth_gbps=60))
    )
    store_documents(mirror, [result_document("m7i.large", sample=5, bandwidth_gbps=47)])
    with ingest(mirror, rescan=True) as ds:
        kept = _derived(ds.con)
        held = _held(ds.con)
        assert (ds.report.accepted, ds.report.duplicates, ds.report.rejected) == (6, 1, 1)
    shutil.copytree(mirror / "raw", tmp_path / "fresh" / "raw")
    with ingest(tmp_path / "fresh") as ds:
        assert _derived(ds.con) == kept
        assert _held(ds.con) == held and held  # the duplicate's rows, stored once
    assert first in {row[1] for row in kept[1]}  # accepted_rows' key column


def _derived(con: Any) -> tuple[list[Any], list[Any]]:
    status = con.execute("SELECT * FROM file_status ORDER BY ALL").fetchall()
    rows = con.execute("SELECT * FROM accepted_rows ORDER BY ALL").fetchall()
    return status, rows


def _held(con: Any) -> list[Any]:
    """The rows of validated files that are not published (held_rows), and a check that
    no row is stored twice (in accepted_rows and held_rows)."""
    both = con.execute(
        "SELECT count(*) FROM accepted_rows WHERE key IN (SELECT key FROM held_rows)"
    ).fetchone()
    assert both == (0,)
    return list(con.execute("SELECT * FROM held_rows ORDER BY ALL").fetchall())


def _fresh_derivation(mirror: Path, scratch: Path) -> tuple[list[Any], list[Any], list[Any]]:
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(mirror / "raw", scratch / "raw")
    with ingest(scratch) as ds:
        return (*_derived(ds.con), _held(ds.con))


def test_status_derived_again_only_where_touched_equals_a_fresh_derivation(
    tmp_path: Path,
) -> None:
    """Step by step, without --rescan: a placeholder pair formed and undone, a duplicate
    whose first key goes (the next one stands for the content), a file changed in place;
    after each step the incrementally kept file_status, accepted_rows and directory table
    are those of an ingest from scratch. (A file changed in place differs from scratch by
    design, rejected as corrupted: test_derived_tables_kept_up_to_date_... covers it.)"""
    mirror = tmp_path / "mirror"
    store = LocalStore(mirror)
    keys = store_documents(
        mirror,
        [
            result_document(t, sample=i, bandwidth_gbps=40 + i)
            for i in range(2)
            for t in ("m7i.large", "c7g.large")
        ],
    )
    a = imported_legacy(legacy_document("m7i.large", triad_gbps=41.9))
    b = imported_legacy(legacy_document("m7a.large", triad_gbps=41.9))
    with ingest(mirror) as ds:
        assert ds.report.accepted == 4

    def step() -> tuple[list[Any], list[Any]]:
        _age_directories(mirror)
        with ingest(mirror) as ds:
            kept = _derived(ds.con)
            held = _held(ds.con)
            dirs = sorted(ds.con.execute("SELECT path FROM dirs").fetchall())
        assert (*kept, held) == _fresh_derivation(mirror, tmp_path / "fresh")
        walked = sorted(
            (p.relative_to(mirror).as_posix(),)
            for p in [mirror / "raw", *(mirror / "raw").rglob("*")]
            if p.is_dir()
        )
        assert dirs == walked
        return kept

    store.put_new(legacy_key(a, "a"), to_bytes(a))
    status, _ = step()
    assert {s[3] for s in status} == {"ok"}
    store.put_new(legacy_key(b, "b"), to_bytes(b))  # same figures, other type: both out
    status, _ = step()
    assert sorted(s[3] for s in status).count("rejected") == 2
    (mirror / legacy_key(b, "b")).unlink()  # undone: a is ok again
    status, rows = step()
    assert {s[3] for s in status} == {"ok"} and legacy_key(a, "a") in {r[1] for r in rows}
    store.put_new(legacy_key(a, "0"), json.dumps(a).encode())  # duplicate sorting first
    status, rows = step()
    assert [s[3] for s in status if s[0] == legacy_key(a, "a")] == ["duplicate"]
    (mirror / legacy_key(a, "0")).unlink()  # the first key gone: "a" stands for it again
    status, rows = step()
    assert legacy_key(a, "a") in {r[1] for r in rows}
    (mirror / keys[0]).unlink()  # an ordinary document gone
    store_documents(mirror, [result_document("c7g.large", sample=9, bandwidth_gbps=49)])
    status, _ = step()
    assert keys[0] not in {s[0] for s in status} and len(status) == 5


def test_cache_checkpointed_beside_the_caller_is_complete_at_close(tmp_path: Path) -> None:
    """After files came, ingest checkpoints in the background while the caller queries;
    by close the cache file holds everything (no write-ahead log left) and the next
    ingest validates nothing again."""
    store_documents(tmp_path, [result_document(sample=i, bandwidth_gbps=40 + i) for i in range(3)])
    with ingest(tmp_path) as ds:
        assert ds.report.validated_now == 3
    store_documents(tmp_path, [result_document(sample=9, bandwidth_gbps=49)])
    with ingest(tmp_path) as ds:
        assert ds.report.validated_now == 1
        # the caller's queries run while the checkpoint may still be writing
        assert ds.con.execute("SELECT count(DISTINCT key) FROM accepted_rows").fetchone() == (4,)
    assert not (tmp_path / ".instbench" / "ingest.duckdb.wal").exists()
    with ingest(tmp_path) as ds:
        assert (ds.report.validated_now, ds.report.accepted) == (0, 4)
