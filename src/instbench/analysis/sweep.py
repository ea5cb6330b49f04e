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
import subprocess
import sys
import threading
from collections.abc import Collection
from pathlib import Path

import duckdb

from instbench.analysis.stat_listing import changed_files
from instbench.errors import StorageError

HELPERS_FROM = 20_000
"""Cached files from which the stat'ing goes to helper processes."""

HELPER_SCRIPT = Path(__file__).with_name("stat_listing.py")

Edited = tuple[str, tuple[int, int], tuple[int, int]]
"""(key, cached (size, mtime_ns), current (size, mtime_ns))."""


class Sweep:
    """The check, started: `edited()` waits for it and returns what changed."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        root: Path,
        scratch: Path,
        helpers: int,
        helpers_from: int = HELPERS_FROM,
    ) -> None:
        """Start checking every cached file of `con` (ingest's cache): in `helpers`
        processes when there are at least `helpers_from` files and `helpers` > 0, their
        listings written by DuckDB on a thread of its own (it overlaps the walk); else
        here, when `edited` is called. `scratch`: a folder for the listings, removed by
        the caller. Call `ready` before closing `con`."""
        self._root = root
        self._procs: list[subprocess.Popen[bytes]] = []
        self._failed: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._cached: list[tuple[str, int, int]] | None = None
        total = con.execute("SELECT count(*) FROM files").fetchone()
        if helpers < 1 or (int(total[0]) if total else 0) < helpers_from:
            self._cached = [
                (str(k), int(s), int(m))
                for k, s, m in con.execute("SELECT key, size, mtime_ns FROM files").fetchall()
            ]
            return
        cursor = con.cursor()
        self._thread = threading.Thread(
            target=self._start, args=(cursor, scratch, helpers), name="sweep", daemon=True
        )
        self._thread.start()

    def _start(self, cursor: duckdb.DuckDBPyConnection, scratch: Path, helpers: int) -> None:
        try:
            for i in range(helpers):
                listing = scratch / f"stat-{i}.csv"
                cursor.execute(
                    f"COPY (SELECT key, size, mtime_ns FROM files WHERE hash(key) % {helpers} "
                    f"= {i}) TO '{listing.as_posix()}' (FORMAT csv, HEADER false)"
                )
                self._procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-I",
                            "-S",
                            str(HELPER_SCRIPT),
                            str(self._root),
                            str(listing),
                        ],
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                    )
                )
        except BaseException as exc:  # raised to the caller by edited()
            self._failed = exc
        finally:
            cursor.close()

    def ready(self) -> None:
        """Wait until the listings are written (the cache connection is then free)."""
        if self._thread is not None:
            self._thread.join()

    def edited(self, listed: Collection[str]) -> list[Edited]:
        """The cached files whose size or mtime changed, by key, but those in the folders
        in `listed` (the walk stat'ed their files itself)."""
        found: list[Edited] = []
        try:
            self.ready()
            if self._failed is not None:
                raise StorageError(
                    f"cannot check the mirror's files for edits: {self._failed}"
                ) from self._failed
            if self._cached is not None:
                found = [
                    (key, (size, mtime), (size_now, mtime_now))
                    for key, size, mtime, size_now, mtime_now in changed_files(
                        str(self._root), self._cached
                    )
                ]
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
                    found.append((key, (int(size), int(mtime)), (int(size_now), int(mtime_now))))
        finally:
            self.stop()
        return sorted(e for e in found if e[0].rpartition("/")[0] not in listed)

    def stop(self) -> None:
        """End the helpers still running (ingest failed before it needed their answer)."""
        self.ready()
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        self._procs = []
