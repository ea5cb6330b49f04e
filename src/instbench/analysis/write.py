"""The "write" stage of a publication: a staging folder beside the output, the documents
written into it, the previous publication's vouched-for files linked in, and one swap.

Readers of the output never see a half-written publication: everything is staged in a
temporary folder inside `output` (same file system), then each top-level folder is
replaced by a rename. Kept files are hard links (a copy where links fail): no bytes are
copied for a window folder or an export that did not change.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

import duckdb

from instbench.analysis import reuse
from instbench.analysis.documents.index import StagedFile
from instbench.analysis.previous import WINDOW_DIR
from instbench.errors import StorageError


def check_output(output: Path) -> None:
    """Fail with one line, before any work, when `output` cannot be written."""
    try:
        output.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output, prefix=".probe-"):
            pass
    except OSError as exc:
        raise StorageError(
            f"cannot write to output directory {output}: {exc.strerror or exc}"
        ) from exc


class Staging:
    """A staging folder inside `output`, removed on exit whatever happened; `swap()`
    moves what it holds into `output`."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.root = Path(tempfile.mkdtemp(prefix=".staging-", dir=output))
        self.latest = self.root / "latest"
        self.latest.mkdir()

    def __enter__(self) -> Staging:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def write(self, files: Mapping[str, bytes]) -> None:
        """Write each file (path relative to the publication root)."""
        for rel, data in files.items():
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def keep(self, folders: Mapping[str, Iterable[str]]) -> None:
        """Link each kept folder's files from the current publication (already checked
        against the previous index by `previous.Previous`)."""
        for name, files in folders.items():
            (self.root / name).mkdir()
            for f in files:
                reuse.link_or_copy(self.output / name / f, self.root / name / f)

    def parquet_of_csv(self, con: duckdb.DuckDBPyConnection, csv_rel: str, rel: str) -> None:
        """A Parquet copy of a staged CSV (DuckDB reads it back, so both hold one table)."""
        con.execute(
            f"COPY (SELECT * FROM read_csv('{(self.root / csv_rel).as_posix()}', "
            f"header=true)) TO '{(self.root / rel).as_posix()}' (FORMAT parquet)"
        )

    def latest_files(self, known: Mapping[str, str]) -> list[StagedFile]:
        """Every file staged under latest/, with its size and sha256 (`known`: files
        already hashed, by path under latest/)."""
        out = []
        for p in sorted(p for p in self.latest.rglob("*") if p.is_file()):
            rel = p.relative_to(self.latest).as_posix()
            sha = known.get(rel) or reuse.sha256_file(p)
            out.append(StagedFile(path=rel, bytes=p.stat().st_size, sha256=sha))
        return out

    def swap(self) -> None:
        """Move the staged tree into `output`: each top-level folder replaced by a rename.

        Window folders that the new publication no longer has are removed, so the output is
        a function of the input alone.
        """
        output = self.output
        trash = Path(tempfile.mkdtemp(prefix=".old-", dir=output))
        try:
            new = {p.name for p in self.root.iterdir()}
            for old in output.iterdir():
                if old.name in new or (old.is_dir() and WINDOW_DIR.match(old.name)):
                    os.replace(old, trash / old.name)
            for name in sorted(new):
                os.replace(self.root / name, output / name)
        finally:
            shutil.rmtree(trash, ignore_errors=True)
