"""The local directory store: the mirror of the bucket, and the only store of --local runs.

A result is written here before anything else is done with it, and an existing file is
never overwritten: writes go to a temporary file in the same directory, then are linked
into place with `os.link`, which fails if the name exists. A crash leaves either the whole
file or nothing under its final name.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from instbench.errors import StorageError


class AlreadyExists(Exception):
    """The key is already stored; the existing object was left untouched."""


class LocalStore:
    """A directory holding the storage tree of DESIGN.md."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def check_writable(self) -> None:
        """Fail early, with one line, if results could not be written here."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe-"):
                pass
        except OSError as exc:
            raise StorageError(
                f"cannot write to output directory {self.root}: {exc.strerror or exc}; "
                "choose another with --output-dir"
            ) from exc

    def path(self, key: str) -> Path:
        """Filesystem path of `key`, refusing keys that would leave the root."""
        if key.startswith("/") or any(part in {"", ".", ".."} for part in key.split("/")):
            raise ValueError(f"unsafe storage key {key!r}")
        return self.root / key

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def read(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def put_new(self, key: str, data: bytes) -> Path:
        """Store `data` under `key` unless the key exists (then `AlreadyExists`)."""
        target = self.path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.link(tmp, target)
            finally:
                os.unlink(tmp)
        except FileExistsError as exc:
            raise AlreadyExists(key) from exc
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                raise AlreadyExists(key) from exc
            raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from exc
        return target

    def put_replace(self, key: str, data: bytes) -> Path:
        """Atomically write a derived file (manifests, processed data); raw results use put_new."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
        return target

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Stored keys under `prefix`, sorted; temporary files are skipped."""
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.name.startswith(".tmp-"):
                yield path.relative_to(self.root).as_posix()
