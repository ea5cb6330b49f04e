"""Stat every file of a listing; print those whose size or mtime is not the listed one.

    python -I -S stat_listing.py ROOT LISTING.csv

LISTING.csv rows: key (path under ROOT), size, mtime_ns, as ingest's cache recorded
them. Printed (CSV, to standard output): key, recorded size, recorded mtime_ns, size now,
mtime_ns now, for each file that changed; a file gone is not printed (its folder changed,
so the walk saw it go).

This is the in-place edit check of ingest (analysis/sweep.py), run by path in helper
processes so that stat'ing 100,000 files happens on the other cores while ingest
validates the new ones. It imports only the standard library (it runs with -S, without
the virtual environment's packages), so it starts in ~15 ms.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Iterable


def changed_files(
    root: str, cached: Iterable[tuple[str, int, int]]
) -> list[tuple[str, int, int, int, int]]:
    """(key, size, mtime_ns, size now, mtime_ns now) of each file of `cached` (key, size,
    mtime_ns) under `root` whose size or mtime is not the recorded one; a file gone is
    left out (its folder changed, so the walk saw it go). Also the check ingest runs in
    its own process on a small mirror (sweep.py)."""
    base = root + os.sep  # string paths: a Path per file costs more than the stat
    stat = os.stat
    found = []
    for key, size, mtime in cached:
        try:
            st = stat(base + key)
        except FileNotFoundError:
            continue
        if st.st_size != size or st.st_mtime_ns != mtime:
            found.append((key, size, mtime, st.st_size, st.st_mtime_ns))
    return found


def changed(root: str, listing: str) -> list[tuple[str, int, int, int, int]]:
    """The changed files of `listing` under `root` (see the module docstring)."""
    with open(listing, newline="", encoding="utf-8") as fh:
        rows = ((key, int(size), int(mtime)) for key, size, mtime in csv.reader(fh))
        return changed_files(root, rows)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: stat_listing.py ROOT LISTING.csv", file=sys.stderr)
        return 2
    if hasattr(os, "nice"):
        # Below the parent: while it validates new files it keeps its core, and the
        # helpers share the others (as equals they took a third of its time on 2 cores).
        os.nice(10)
    csv.writer(sys.stdout, lineterminator="\n").writerows(changed(argv[0], argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
