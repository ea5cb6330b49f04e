"""Incremental windows: a publication reuses the previous one's window folders exactly
where a publication from scratch would write the same bytes, and nowhere else."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.factories import result_document, store_documents

from instbench.analysis.ingest import ingest
from instbench.analysis.publish import publish

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # Monday of ISO week 10
# Per-week triad bandwidths: week 2 drops significantly (a flagged regression).
WEEKS = [[40.0, 41.0, 40.5, 39.5], [40.2, 39.8, 40.6, 40.9], [36.0, 35.5, 36.4, 35.8]]


def _docs(week: int, values: list[float], run: str) -> list[dict[str, Any]]:
    return [
        result_document(
            bandwidth_gbps=bw,
            sample=i,
            run_id=f"{run}-w{week}",
            timestamp=T0 + timedelta(weeks=week, hours=i),
        )
        for i, bw in enumerate(values)
    ]


def _publish(mirror: Path, out: Path) -> dict[str, Any]:
    with ingest(mirror) as ds:
        return publish(ds, out).index


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _inodes(out: Path) -> dict[str, int]:
    return {
        p.relative_to(out).as_posix(): p.stat().st_ino
        for p in out.glob("20*/summary.*")  # window folders only
    }


def _published(tmp_path: Path) -> tuple[Path, Path, dict[str, Any]]:
    """Three weeks of results (the third a regression), published once: mirror, out, index."""
    mirror, out = tmp_path / "mirror", tmp_path / "out"
    for week, values in enumerate(WEEKS):
        store_documents(mirror, _docs(week, values, "first"))
    return mirror, out, _publish(mirror, out)


def _kept(before: dict[str, int], out: Path) -> list[str]:
    """Window files still the same inode (linked from the previous publication)."""
    after = _inodes(out)
    return sorted(k for k in before if after.get(k) == before[k])


def _same_as_fresh(tmp_path: Path, mirror: Path, out: Path, index: dict[str, Any]) -> None:
    fresh = tmp_path / "fresh"
    assert index == _publish(mirror, fresh)
    assert _tree(out) == _tree(fresh)


def test_new_results_rerender_only_their_windows_and_match_a_fresh_publication(
    tmp_path: Path,
) -> None:
    mirror, out, first = _published(tmp_path)
    assert {r["window"] for r in first["regressions"]} == {"2025-W12"}
    before = _inodes(out)
    # New results in the last week and in a new one.
    store_documents(mirror, _docs(2, [36.2, 35.9], "late"))
    store_documents(mirror, _docs(3, [36.1, 36.3, 35.7], "late"))
    incremental = _publish(mirror, out)
    assert _kept(before, out) == [
        "2025-W10/summary.csv",
        "2025-W10/summary.json",
        "2025-W11/summary.csv",
        "2025-W11/summary.json",
    ]  # the month changed (new results in it), and so did week 12
    _same_as_fresh(tmp_path, mirror, out, incremental)
    assert "2025-W13" in incremental["windows"]["weekly"]


def test_a_result_added_to_an_old_week_rerenders_it_and_every_later_week(tmp_path: Path) -> None:
    mirror, out, _ = _published(tmp_path)
    before = _inodes(out)
    store_documents(mirror, _docs(1, [30.0], "backfill"))  # week 11 gets a low sample
    index = _publish(mirror, out)
    assert _kept(before, out) == ["2025-W10/summary.csv", "2025-W10/summary.json"]
    _same_as_fresh(tmp_path, mirror, out, index)


def test_an_edited_window_file_is_rendered_again_not_republished(tmp_path: Path) -> None:
    mirror, out, _ = _published(tmp_path)
    good = _tree(out)
    summary = out / "2025-W11" / "summary.csv"
    summary.write_text(summary.read_text().replace("m7i.large", "m7i.xlarge"))
    _publish(mirror, out)
    assert _tree(out) == good


def test_nothing_changed_reuses_every_window_and_keeps_flagged_regressions(
    tmp_path: Path,
) -> None:
    mirror, out, first = _published(tmp_path)
    before, tree = _inodes(out), _tree(out)
    again = _publish(mirror, out)
    assert _kept(before, out) == sorted(before)  # every window folder linked, none rendered
    assert _tree(out) == tree
    assert again["regressions"] == first["regressions"] != []
    digests = json.loads((out / "latest" / "index.json").read_text())["windowDigests"]
    assert sorted(digests) == ["2025-03", "2025-W10", "2025-W11", "2025-W12"]


def test_a_malformed_previous_index_means_nothing_is_reused(tmp_path: Path) -> None:
    mirror, out, _ = _published(tmp_path)
    good = _tree(out)
    path = out / "latest" / "index.json"
    index = json.loads(path.read_text())
    index.update(files=3, windows="weekly", windowDigests=[], regressions=5)
    path.write_text(json.dumps(index))
    before = _inodes(out)
    _publish(mirror, out)
    assert _tree(out) == good
    assert _kept(before, out) == []  # every window rendered


def test_a_publication_of_another_format_is_not_reused(tmp_path: Path) -> None:
    """Window folders of format 1.0.0 compared weeks pairwise; 1.1.0 does not: an old
    publication's folders, however intact, are rendered again."""
    mirror, out, _ = _published(tmp_path)
    good = _tree(out)
    path = out / "latest" / "index.json"
    index = json.loads(path.read_text())
    index["publicationFormat"] = "1.0.0"
    path.write_text(json.dumps(index))
    before = _inodes(out)
    _publish(mirror, out)
    assert _kept(before, out) == []
    assert _tree(out) == good


def test_a_window_named_from_its_start_is_the_window_of_each_of_its_rows() -> None:
    """Rows are grouped by their window's start (a truncation) and each group is named
    once: that name must be the one WINDOW_SQL gives every row of it, ISO weeks across
    year ends (2020-W53, 2026-W53) included; and `window_start` inverts the names."""
    import duckdb

    from instbench.analysis.aggregate import (
        WINDOW_SQL,
        WINDOW_START_SQL,
        window_name_sql,
        window_start,
    )

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t AS SELECT unnest(generate_series(TIMESTAMP '2020-12-20', "
        "TIMESTAMP '2027-01-12', INTERVAL 97 MINUTE)) AS timestamp"
    )
    for window in ("week", "month"):
        named = window_name_sql(window, f"({WINDOW_START_SQL[window]})")  # type: ignore[arg-type]
        differ = con.execute(
            f"SELECT count(*) FROM t WHERE {named} <> {WINDOW_SQL[window]}"  # type: ignore[index]
        ).fetchone()
        assert differ == (0,)
        names = con.execute(
            f"SELECT {WINDOW_SQL[window]} AS w, min(timestamp) FROM t GROUP BY w"  # type: ignore[index]
        ).fetchall()
        for name, first in names:
            start = window_start(window, name)  # type: ignore[arg-type]
            assert start <= first < start + timedelta(days=7 if window == "week" else 31)
    assert {n for n, in con.execute("SELECT DISTINCT strftime(timestamp, '%G-W%V') FROM t")
            .fetchall()} >= {"2020-W53", "2026-W53", "2021-W01"}  # fmt: skip


def test_summaries_since_a_window_are_those_of_every_window_from_it_on(tmp_path: Path) -> None:
    """`since` reads only the rows from the window's start: the summaries are the same as
    those of all windows, cut at `since`."""
    from instbench.analysis.aggregate import summarize

    mirror = tmp_path / "mirror"
    for week in (0, 2, 4, 6):  # March and April
        store_documents(mirror, _docs(week, [40.0 + week, 41.0, 42.5], f"w{week}"))
    with ingest(mirror) as ds:
        for window in ("week", "month"):
            every = summarize(ds.con, include_sandbox=True, window=window)  # type: ignore[arg-type]
            names = sorted({s.window for s in every})
            assert len(names) >= 2
            since = names[1]
            cut = summarize(ds.con, include_sandbox=True, window=window, since=since)  # type: ignore[arg-type]
            assert cut == [s for s in every if s.window >= since]
