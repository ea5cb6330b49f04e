"""Window and partition digests remembered in the ingest cache (analysis/digest_memo.py):
after every kind of change, the digests a publication reads are those of a cache built
from scratch. Each step changes one window only, so a change that failed to mark its
window would leave a remembered digest wrong, and the comparison would fail."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.factories import result_document, store_documents

from instbench.analysis import windows
from instbench.analysis.documents.exports import partition_digests
from instbench.analysis.ingest import ingest

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # Monday of ISO week 10


def _digests(con: Any) -> list[Any]:
    return [
        windows.all_window_digests(con, sandbox, windows.KINDS.values())
        for sandbox in (False, True)
    ] + [partition_digests(con, sandbox) for sandbox in (False, True)]


def _doc(week: int, sample: int, **kw: Any) -> dict[str, Any]:
    kw.setdefault("bandwidth_gbps", 40.0 + sample)
    return result_document(
        sample=sample, run_id=f"w{week}", timestamp=T0 + timedelta(weeks=week), **kw
    )


def _check(mirror: Path, scratch: Path) -> tuple[Any, Any, int]:
    """(remembered, from scratch, rejected files): the digests read through the mirror's
    cache, and those of a cache built now from a copy of its raw files."""
    with ingest(mirror) as ds:
        remembered = _digests(ds.con)
        rejected = ds.report.rejected
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(mirror / "raw", scratch / "raw")
    with ingest(scratch) as ds:
        return remembered, _digests(ds.con), rejected


def test_remembered_digests_are_those_of_a_cache_built_from_scratch(tmp_path: Path) -> None:
    mirror, scratch = tmp_path / "mirror", tmp_path / "scratch"
    keys = store_documents(mirror, [_doc(w, s) for w in (0, 5) for s in range(3)])
    with ingest(mirror) as ds:
        first = _digests(ds.con)  # remembered from here on
    assert len(first[0]["week"]) == 2

    # A document in a new window (week 10, May).
    store_documents(mirror, [_doc(10, 0)])
    remembered, fresh, _ = _check(mirror, scratch)
    assert remembered == fresh and len(fresh[0]["week"]) == 3

    # A document gone from week 0 only.
    (mirror / keys[0]).unlink()
    remembered, fresh, _ = _check(mirror, scratch)
    assert remembered == fresh and fresh[0]["week"] != first[0]["week"]

    # A placeholder in week 10: another type with the figures of a week-5 document. Both
    # are rejected, so week 5 changes although none of its files came or went.
    store_documents(mirror, [_doc(5, 7, seed=99)])
    before, _, rejected = _check(mirror, scratch)
    assert rejected == 0
    other = result_document(
        "c7g.large", sample=7, run_id="w5", timestamp=T0 + timedelta(weeks=10), seed=99,
        bandwidth_gbps=47.0,
    )  # fmt: skip
    store_documents(mirror, [other])
    remembered, fresh, rejected = _check(mirror, scratch)
    assert rejected == 2  # the pair: identical figures for two types
    assert remembered == fresh
    assert remembered[0]["week"]["2025-W15"] != before[0]["week"]["2025-W15"]

    # A file edited in place: rejected as corrupted, its window changes.
    victim = mirror / keys[4]
    victim.write_bytes(victim.read_bytes().replace(b'"w0"', b'"wX"').replace(b'"w5"', b'"wX"'))
    remembered, fresh, rejected = _check(mirror, scratch)
    assert rejected == 3 and remembered == fresh
