"""Reusing files of the previous publication: never without checking their bytes.

A publication may keep files of the one before it (the tidy exports, window folders)
when it would write the same bytes again. What makes that safe is here, once: the digest
that names a set of documents, and staging that links a file and hashes the linked copy
against what the previous index.json recorded.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path


def documents_digest_sql(sha_column: str) -> str:
    """SQL aggregate: sha256 of the lines "{key} {content sha256}\\n" of the rows it runs
    over, sorted by key (the digest index.json's `inputs` and `windowDigests` publish)."""
    return (
        f"sha256(coalesce(string_agg(key || ' ' || {sha_column} || chr(10), '' ORDER BY key), ''))"
    )


def sha256_file(path: Path) -> str:
    """sha256 of a file, read in 16 MiB pieces: hashing releases the GIL per piece, and
    in the export thread each piece then waits up to a switch interval (5 ms) for the
    main thread to give it back; 1 MiB pieces made hashing 390 MB take 2 s instead of 0.6."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(16 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def link_or_copy(source: Path, target: Path) -> None:
    """A hard link where the file system allows one (no bytes copied), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def stage_verified(source: Path, target: Path, expected: Mapping[str, object]) -> bool:
    """Link (or copy) each file named in `expected` from `source` into the existing folder
    `target` (subfolders made as needed) and check the staged copy's sha256 against
    `expected[name]`. False when one is missing or differs; what was staged is removed
    again. Hashing the staged copies, not the sources, makes what was checked what is
    published.
    """
    try:
        for name, sha in expected.items():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            link_or_copy(source / name, target / name)
            if sha256_file(target / name) != sha:
                raise ValueError(name)
    except (OSError, ValueError):
        for name in expected:
            (target / name).unlink(missing_ok=True)
        return False
    return True
