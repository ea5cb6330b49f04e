"""Storage keys and the local store: layout, safety, never overwriting."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from instbench.errors import StorageError
from instbench.storage.layout import artifact_key, log_key, manifest_key, raw_key
from instbench.storage.local import AlreadyExists, LocalStore


def test_raw_key_follows_design_layout() -> None:
    ts = datetime(2026, 3, 4, 23, 59, tzinfo=UTC)
    key = raw_key("stream", "m7i.large", "us-east-1", ts, "r1", 2)
    assert key == "raw/stream/m7i.large/us-east-1/2026/03/04/r1-2.json"


def test_raw_key_uses_utc_date() -> None:
    from datetime import timedelta, timezone

    ts = datetime(2026, 3, 5, 1, 0, tzinfo=timezone(timedelta(hours=3)))
    assert "/2026/03/04/" in raw_key("stream", "c7g.large", "eu-west-1", ts, "r", 0)


@pytest.mark.parametrize("bad", ["..", "a/b", "", "x;rm -rf /", ".hidden", "a b"])
def test_unsafe_components_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        raw_key("stream", bad, "us-east-1", datetime.now(UTC), "r", 0)


def test_other_keys() -> None:
    assert log_key("r1", "i-0abc") == "logs/r1/i-0abc.log"
    assert manifest_key("r1") == "runs/r1/manifest.json"
    assert artifact_key("a" * 64) == f"artifacts/{'a' * 64}.pyz"
    with pytest.raises(ValueError):
        artifact_key("nothex")


def test_put_new_never_overwrites(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_new("raw/x/1.json", b"first")
    with pytest.raises(AlreadyExists):
        store.put_new("raw/x/1.json", b"second")
    assert store.read("raw/x/1.json") == b"first"
    assert list(store.keys()) == ["raw/x/1.json"]
    assert not [p for p in (tmp_path / "raw/x").iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize("key", ["../escape", "/abs", "a//b", "a/./b"])
def test_store_refuses_keys_leaving_root(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError):
        LocalStore(tmp_path).path(key)


def test_unwritable_output_dir_is_a_user_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError, match="--output-dir"):
        LocalStore(blocker / "sub").check_writable()
