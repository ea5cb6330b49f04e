"""Who made a publication, in the words index.json records.

A publication may reuse files of the previous one only when the same generator made it
with the same layout (`previous.read_previous`), so both names live here, apart from the
stages that write and read them.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import instbench
from instbench import __version__

PUBLICATION_VERSION = "2.0.0"
"""Version of the publication layout (index.json, exports); independent of data_version.
1.1.0: change points replace the per-pair regression flags (index.json `regressions`,
`improvements`, `cpuMixChanges`, `untested`, `changeDetection`); window summaries carry
the median's interval and `notes`, no `regressions`. 2.0.0: the tidy table as Hive
partitions (latest/tidy/) instead of tidy.parquet, tidy.csv optional, monthly aggregates
partitions (latest/aggregates/). A previous publication of another format is never
reused (its files are of the old form)."""

GENERATOR = f"instbench {__version__}"


@cache
def generator_digest() -> str:
    """sha256 of the code that makes a publication: every file of the installed instbench
    package (path and bytes, compiled caches left out), index.json `generatorDigest`.

    The version number alone does not say which code ran: between two releases, or while
    the code is being changed, a publication must never reuse files (partitions, window
    folders, a whole unchanged publication) that other code wrote. Hashing the package
    (about 2 MB) takes ~10 ms.
    """
    root = Path(instbench.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file() or path.suffix in (".pyc", ".pyo"):
            continue
        data = path.read_bytes()
        rel = path.relative_to(root).as_posix()
        digest.update(f"{rel}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()
