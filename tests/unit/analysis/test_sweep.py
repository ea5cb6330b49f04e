"""The in-place edit check (analysis/sweep.py): the helper processes find what the
in-process check finds, and ingest rejects a file overwritten in place either way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from tests.factories import result_document, store_documents

from instbench.analysis import sweep
from instbench.analysis.ingest import CACHE_DIR, CACHE_FILE, ingest
from instbench.errors import StorageError


def _mirror(root: Path) -> list[str]:
    keys = store_documents(
        root, [result_document(sample=i, bandwidth_gbps=40 + i) for i in range(6)]
    )
    with ingest(root) as ds:
        assert ds.report.accepted == 6
    return keys


def _edit_in_place(path: Path, data: bytes) -> None:
    """Overwrite a file's bytes without touching its folder's mtime."""
    folder = path.parent.stat()
    with path.open("r+b") as fh:
        fh.write(data)
    os.utime(path.parent, ns=(folder.st_atime_ns, folder.st_mtime_ns))


@pytest.mark.parametrize("helpers", [0, 1, 3])
def test_helpers_find_what_the_in_process_check_finds(tmp_path: Path, helpers: int) -> None:
    root = tmp_path / "mirror"
    keys = _mirror(root)
    before = (root / keys[2]).stat()
    _edit_in_place(root / keys[2], b"{}  ")  # same size, later mtime
    (root / keys[4]).unlink()  # gone: not an edit (the walk sees its folder change)
    con = duckdb.connect(str(root / CACHE_DIR / CACHE_FILE))
    try:
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        check = sweep.Sweep(con, root, scratch, helpers, helpers_from=0)
        edited = check.edited(set())
        # Files in a listed folder are left to the walk.
        listed = {keys[2].rpartition("/")[0]}
        assert sweep.Sweep(con, root, scratch, helpers, helpers_from=0).edited(listed) == []
    finally:
        con.close()
    now = (root / keys[2]).stat()
    assert edited == [
        (keys[2], (before.st_size, before.st_mtime_ns), (now.st_size, now.st_mtime_ns))
    ]


def test_a_file_edited_in_place_is_rejected_as_corrupted(tmp_path: Path) -> None:
    root = tmp_path / "mirror"
    keys = _mirror(root)
    _edit_in_place(root / keys[1], b'{"metadata": 1}' + b" " * 20)
    with ingest(root) as ds:
        assert (ds.report.accepted, ds.report.rejected) == (5, 1)
        assert "changed after it was stored" in ds.report.rejections[0][1]


def test_the_helper_script_runs_on_the_standard_library_alone(tmp_path: Path) -> None:
    """It is started with -I -S (no site-packages): anything but the standard library
    would fail to import there; a failing helper is one StorageError, not a hang."""
    listing = tmp_path / "listing.csv"
    (tmp_path / "a.json").write_text("{}")
    listing.write_text("a.json,2,0\nb.json,1,1\n")
    proc = subprocess.run(
        [sys.executable, "-I", "-S", str(sweep.HELPER_SCRIPT), str(tmp_path), str(listing)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    mtime = (tmp_path / "a.json").stat().st_mtime_ns
    assert proc.stdout == f"a.json,2,0,2,{mtime}\n"

    root = tmp_path / "mirror"
    _mirror(root)
    con = duckdb.connect(str(root / CACHE_DIR / CACHE_FILE))
    try:
        con.execute("UPDATE files SET size = -1 WHERE key = (SELECT min(key) FROM files)")
        con.execute("UPDATE files SET mtime_ns = NULL WHERE key = (SELECT max(key) FROM files)")
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        with pytest.raises(StorageError, match="cannot check the mirror's files for edits"):
            sweep.Sweep(con, root, scratch, 1, helpers_from=0).edited(set())
    finally:
        con.close()


def test_a_listing_that_cannot_be_written_is_one_storage_error(tmp_path: Path) -> None:
    """The listings are written on a thread; its failure reaches the caller of edited()."""
    root = tmp_path / "mirror"
    _mirror(root)
    con = duckdb.connect(str(root / CACHE_DIR / CACHE_FILE))
    try:
        check = sweep.Sweep(con, root, tmp_path / "no-such-folder", 2, helpers_from=0)
        check.ready()
        with pytest.raises(StorageError, match="cannot check the mirror's files for edits"):
            check.edited(set())
    finally:
        con.close()
