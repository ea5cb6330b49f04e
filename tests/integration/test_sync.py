"""`storage.sync` against the moto server: incremental, resumable, verified, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from instbench.aws.session import AwsSession
from instbench.errors import AwsConfigError
from instbench.storage.local import LocalStore
from instbench.storage.sync import SyncEvent, sync

BUCKET = "instbench-sync-test"


def _bucket(session: AwsSession, objects: dict[str, bytes]) -> None:
    s3 = session.s3()
    s3.create_bucket(Bucket=BUCKET)
    for key, body in objects.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def _objects(n: int) -> dict[str, bytes]:
    return {
        f"raw/stream/m7i.large/us-east-1/2025/03/01/run-{i}.json": f'{{"i": {i}}}'.encode()
        for i in range(n)
    }


def test_second_sync_fetches_only_the_changed_object(
    aws_session: AwsSession, tmp_path: Path
) -> None:
    objects = _objects(5)
    _bucket(aws_session, {**objects, "logs/run/x.log": b"not mirrored"})
    store = LocalStore(tmp_path)
    first = sync(aws_session, BUCKET, store)
    assert (first.listed, first.fetched, first.skipped) == (5, 5, 0)
    for key, body in objects.items():
        assert store.read(key) == body
    assert not store.exists("logs/run/x.log")

    changed = next(iter(objects))
    aws_session.s3().put_object(Bucket=BUCKET, Key=changed, Body=b'{"i": "changed"}')
    events: list[SyncEvent] = []
    second = sync(aws_session, BUCKET, store, progress=events.append)
    assert (second.fetched, second.skipped, second.superseded) == (1, 4, 1)
    assert [e.key for e in events if e.action != "skipped"] == [changed]
    assert store.read(changed) == b'{"i": "changed"}'
    # The previous bytes are kept, not lost.
    kept = list((tmp_path / "superseded").rglob("*.json.*"))
    assert len(kept) == 1 and kept[0].read_bytes() == objects[changed]
    assert events[-1].done == events[-1].total == 5


def test_interrupted_sync_resumes_where_it_stopped(aws_session: AwsSession, tmp_path: Path) -> None:
    _bucket(aws_session, _objects(6))
    store = LocalStore(tmp_path)

    def interrupt(event: SyncEvent) -> None:
        if event.done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sync(aws_session, BUCKET, store, progress=interrupt)
    resumed = sync(aws_session, BUCKET, store)
    assert (resumed.fetched, resumed.skipped) == (4, 2)
    assert not list(tmp_path.rglob(".tmp-*"))


def test_files_already_in_the_mirror_are_adopted_not_fetched(
    aws_session: AwsSession, tmp_path: Path
) -> None:
    objects = _objects(3)
    _bucket(aws_session, objects)
    store = LocalStore(tmp_path)
    for key, body in objects.items():  # the controller stored them locally first
        store.put_new(key, body)
    report = sync(aws_session, BUCKET, store)
    assert (report.fetched, report.skipped) == (0, 3)


def test_missing_bucket_is_one_clear_error(aws_session: AwsSession, tmp_path: Path) -> None:
    with pytest.raises(AwsConfigError, match="does not exist"):
        sync(aws_session, "no-such-bucket-here", LocalStore(tmp_path / "m"))
    assert not (tmp_path / "m").exists()


def test_same_size_corruption_of_a_local_file_is_fetched_again(
    aws_session: AwsSession, tmp_path: Path
) -> None:
    """Issue 21, case 5: sync compares checksums, not sizes."""
    objects = _objects(3)
    _bucket(aws_session, objects)
    store = LocalStore(tmp_path)
    sync(aws_session, BUCKET, store)
    victim = next(iter(objects))
    path = tmp_path / victim
    corrupt = bytes(b ^ 0x20 for b in objects[victim])
    assert len(corrupt) == len(objects[victim])
    path.write_bytes(corrupt)

    events: list[SyncEvent] = []
    again = sync(aws_session, BUCKET, store, progress=events.append)
    assert [(e.key, e.action) for e in events if e.action != "skipped"] == [(victim, "replaced")]
    assert (again.fetched, again.skipped) == (1, 2)
    assert store.read(victim) == objects[victim]
    # The corrupt bytes are kept aside, not silently lost.
    kept = list((tmp_path / "superseded").rglob("*.json.*"))
    assert len(kept) == 1 and kept[0].read_bytes() == corrupt
