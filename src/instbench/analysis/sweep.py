"""The in-place edit check of ingest: one stat per cached file, on the spare cores.

A file overwritten in place leaves its folder's mtime as it was, so the walk (which skips
unchanged folders) cannot see it; only its own size and mtime can. Ingest therefore stats
every cached file the walk did not list (analysis/ingest.py explains why raw results must
never change). At 100,000 results that is 0.26 s of Python on one core, as long as
validating 1,000 new files after a sync. So on a large mirror the stat'ing runs in helper
processes (analysis/stat_listing.py, standard library only, started by path) while
ingest validates: the listing goes to them as CSV files written by DuckDB, one slice
each, and the changed files come back on their standard output.

A small mirror is checked in this process: starting a helper costs ~20 ms, more than
stat'ing a few thousand files.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Collection
from pathlib import Path

import duckdb

from instbench.errors import StorageError

HELPERS_FROM = 20_000
"""Cached files from which the stat'ing goes to helper processes."""

HELPER_SCRIPT = Path(__file__).with_name("stat_listing.py")

Edited = tuple[str, tuple[int, int], tuple[int, int]]
"""(key, cached (size, mtime_ns), current (size, mtime_ns))."""

_KEY_DIR = "left(key, length(key) - strpos(reverse(key), '/'))"
"""SQL: a key's folder, all before its last '/' (10x faster than a regexp)."""


class Sweep:
    """The check, started: `edited()` waits for it and returns what changed."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        root: Path,
        listed: Collection[str],
        scratch: Path,
        helpers: int,
        helpers_from: int = HELPERS_FROM,
    ) -> None:
        """Start checking the cached files of `con` (ingest's cache) outside the folders
        in `listed` (the walk stat'ed their files itself): in `helpers` processes when
        there are at least `helpers_from` files and `helpers` > 0, else here and now.
        `scratch`: a folder for the listings, removed by the caller."""
        self._procs: list[subprocess.Popen[bytes]] = []
        self._edited: list[Edited] = []
        where = f"{_KEY_DIR} NOT IN (SELECT unnest(?::VARCHAR[]))" if listed else "true"
        params: list[object] = [sorted(listed)] if listed else []
        total_row = con.execute(f"SELECT count(*) FROM files WHERE {where}", params).fetchone()
        total = int(total_row[0]) if total_row else 0
        if helpers < 1 or total < helpers_from:
            self._edited = _check_here(con, root, where, params)
            return
        try:
            for i in range(helpers):
                listing = scratch / f"stat-{i}.csv"
                con.execute(
                    f"COPY (SELECT key, size, mtime_ns FROM files WHERE {where} "
                    f"AND hash(key) % {helpers} = {i}) TO '{listing.as_posix()}' "
                    "(FORMAT csv, HEADER false)",
                    params,
                )
                self._procs.append(
                    subprocess.Popen(
                        [sys.executable, "-I", "-S", str(HELPER_SCRIPT), str(root), str(listing)],
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                    )
                )
        except BaseException:
            self.stop()
            raise

    def edited(self) -> list[Edited]:
        """The cached files whose size or mtime changed, by key."""
        try:
            for proc in self._procs:
                out, err = proc.communicate()
                if proc.returncode != 0:
                    raise StorageError(
                        "cannot check the mirror's files for edits: "
                        + (err.decode(errors="replace").strip().splitlines() or ["?"])[-1]
                    )
                for key, size, mtime, size_now, mtime_now in csv.reader(
                    out.decode("utf-8").splitlines()
                ):
                    self._edited.append(
                        (key, (int(size), int(mtime)), (int(size_now), int(mtime_now)))
                    )
        finally:
            self.stop()
        return sorted(self._edited)

    def stop(self) -> None:
        """End the helpers still running (ingest failed before it needed their answer)."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        self._procs = []


def _check_here(
    con: duckdb.DuckDBPyConnection, root: Path, where: str, params: list[object]
) -> list[Edited]:
    base = f"{root}{os.sep}"  # string paths: a Path per file costs more than the stat
    stat = os.stat
    edited = []
    rows = con.execute(f"SELECT key, size, mtime_ns FROM files WHERE {where}", params)
    for key, size, mtime in rows.fetchall():
        try:
            st = stat(base + key)
        except FileNotFoundError:
            continue  # its folder changed, so the walk saw it go
        if (st.st_size, st.st_mtime_ns) != (size, mtime):
            edited.append((str(key), (int(size), int(mtime)), (st.st_size, st.st_mtime_ns)))
    return edited
