"""Mirror a bucket prefix into the local store: incremental, resumable, verified.

Incremental: an object is fetched only when the local file's checksum differs from the
object's: its MD5 against a single-part ETag, or (multipart ETags, which are no file hash)
its sha256 against the one recorded when it was fetched. Sizes decide nothing: a local
file corrupted in place keeps its size. What the mirror holds is recorded in a journal,
`{root}/.instbench/sync/{bucket}.jsonl`, one line appended (and flushed) per object
fetched; a file that is already present but not journaled (the controller writes results
locally before uploading them) is adopted when its MD5 equals the single-part ETag, so it
is not downloaded again.

Resumable: an interrupted sync leaves every completed object journaled and the object in
flight only as a temporary file, so the next sync fetches exactly what is missing.

Verified: a downloaded body whose MD5 differs from a single-part ETag is refused.

Nothing is lost: when an object changed in the bucket (raw results never should), the
previous local bytes are kept under `superseded/{key}.{md5}` before the new ones replace
them.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from instbench.aws.regions import aws_config_errors
from instbench.aws.session import AwsSession
from instbench.errors import StorageError
from instbench.storage.local import LocalStore
from instbench.storage.s3 import S3Store

JOURNAL_DIR = ".instbench/sync"


@dataclass(frozen=True)
class SyncEvent:
    """Progress of one object: what was done, and how far the sync is."""

    key: str
    action: str
    """fetched | skipped | adopted | unsafe-key"""
    size: int
    done: int
    total: int


@dataclass(frozen=True)
class SyncReport:
    listed: int
    fetched: int
    skipped: int
    bytes_fetched: int
    superseded: int
    unsafe: list[str]


Progress = Callable[[SyncEvent], None]


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class _Journal:
    """Append-only record of (key -> etag, size) of the mirrored objects."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, tuple[str, int, str | None]] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    item = json.loads(line)
                    sha = item.get("sha256")
                    self.entries[item["key"]] = (
                        item["etag"],
                        int(item["size"]),
                        sha if isinstance(sha, str) else None,
                    )
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue  # a line cut short by a crash: that object is fetched again
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("a", encoding="utf-8")

    def record(self, key: str, etag: str, data: bytes) -> None:
        sha = hashlib.sha256(data).hexdigest()
        self.entries[key] = (etag, len(data), sha)
        line = {"key": key, "etag": etag, "size": len(data), "sha256": sha}
        self._fh.write(json.dumps(line) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()
        # Compact: one line per key, written atomically.
        tmp = self.path.with_name(f".tmp-{self.path.name}")
        lines = [
            json.dumps({"key": k, "etag": e, "size": s, "sha256": h})
            for k, (e, s, h) in sorted(self.entries.items())
        ]
        tmp.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        os.replace(tmp, self.path)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sync(
    session: AwsSession,
    bucket: str,
    store: LocalStore,
    *,
    prefix: str = "raw/",
    progress: Progress | None = None,
) -> SyncReport:
    """Mirror s3://bucket/prefix into `store` (see the module docstring)."""
    s3store = S3Store(session, bucket)
    s3store.check_bucket()
    store.check_writable()
    client = session.s3()
    listed: list[tuple[str, str, int]] = []
    with aws_config_errors("AWS S3"):
        try:
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix
            ):
                for obj in page.get("Contents", []):
                    etag = str(obj.get("ETag", "")).strip('"')
                    listed.append((obj["Key"], etag, int(obj.get("Size", 0))))
        except ClientError as exc:
            raise StorageError(f"cannot list s3://{bucket}/{prefix}: {exc}") from exc
    journal = _Journal(store.root / JOURNAL_DIR / f"{bucket}.jsonl")
    fetched = skipped = superseded = 0
    nbytes = 0
    unsafe: list[str] = []
    total = len(listed)
    try:
        for done, (key, etag, size) in enumerate(listed, start=1):
            action = _sync_one(client, bucket, store, journal, key, etag, size)
            if action == "unsafe-key":
                unsafe.append(key)
            elif action in {"fetched", "replaced"}:
                fetched += 1
                nbytes += size
                superseded += action == "replaced"
            else:
                skipped += 1
            if progress:
                progress(SyncEvent(key, action, size, done, total))
    finally:
        journal.close()
    return SyncReport(
        listed=total,
        fetched=fetched,
        skipped=skipped,
        bytes_fetched=nbytes,
        superseded=superseded,
        unsafe=unsafe,
    )


def _sync_one(
    client: object,
    bucket: str,
    store: LocalStore,
    journal: _Journal,
    key: str,
    etag: str,
    size: int,
) -> str:
    try:
        path = store.path(key)
    except ValueError:
        return "unsafe-key"
    single_part = "-" not in etag
    old = path.read_bytes() if path.is_file() else None
    entry = journal.entries.get(key)
    journaled = entry is not None and entry[0] == etag
    if old is not None:
        if single_part and _md5(old) == etag:
            if journaled:
                return "skipped"
            journal.record(key, etag, old)
            return "adopted"
        if (
            not single_part
            and journaled
            and entry is not None
            and entry[2] == hashlib.sha256(old).hexdigest()
        ):
            return "skipped"
    with aws_config_errors("AWS S3"):
        try:
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[attr-defined]
        except ClientError as exc:
            raise StorageError(f"cannot fetch s3://{bucket}/{key}: {exc}") from exc
    if single_part and _md5(body) != etag:
        raise StorageError(f"s3://{bucket}/{key}: downloaded bytes do not match the ETag")
    action = "fetched"
    if old is not None and old != body:
        _write_atomic(store.path(f"superseded/{key}.{_md5(old)}"), old)
        action = "replaced"
    _write_atomic(path, body)
    journal.record(key, etag, body)
    return action
