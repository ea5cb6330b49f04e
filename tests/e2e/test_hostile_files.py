"""Issue 21, cases 4, 5 and 11 on the analysis side: a hostile or corrupted file in the
mirror, and what the report publishes.

Every file here is a real file written into a real mirror; the commands are the real CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.factories import raw_key_of, result_document, store_documents

from instbench.results.validate import QUARANTINE_PREFIX_BYTES

INSTBENCH = str(Path(sys.executable).parent / "instbench")
ACCOUNT = "123456789012"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1"}
    return subprocess.run([INSTBENCH, *args], capture_output=True, text=True, timeout=120, env=env)


def _with_ec2(doc: dict[str, Any]) -> dict[str, Any]:
    meta = doc["metadata"]
    doc["system_info"]["ec2"] = {
        "instance_id": "i-0123456789abcdef0",
        "instance_type": meta["instance_type"],
        "availability_zone": meta["availability_zone"] or f"{meta['region']}a",
        "region": meta["region"],
        "ami_id": "ami-0123456789abcdef0",
        "account_id": ACCOUNT,
    }
    return doc


def _mirror(root: Path) -> list[str]:
    docs = [
        _with_ec2(result_document("m7i.large", bandwidth_gbps=40 + i, sample=i)) for i in range(3)
    ]
    docs += [result_document("c7g.large", bandwidth_gbps=60 + i, sample=i) for i in range(3)]
    return store_documents(root, docs)


def test_one_hostile_file_never_fails_a_whole_command(tmp_path: Path) -> None:
    """Case 4: 100,000 nested '[' and a 3 MiB file in the mirror: every command works on
    the rest, the two are quarantined, and only a bounded prefix of the big one is kept."""
    mirror = tmp_path / "mirror"
    keys = _mirror(mirror)
    nested = keys[0].replace("-0.json", "-90.json")
    huge = keys[0].replace("-0.json", "-91.json")
    (mirror / nested).write_bytes(b"[" * 100_000)
    (mirror / huge).write_bytes(b'{"pad": "' + b"x" * (3 * 1024 * 1024) + b'"}')

    for args in (
        ("results", "list", "--input", str(mirror)),
        ("aggregate", "--input", str(mirror)),
        ("report", "--input", str(mirror), "--output", str(tmp_path / "site")),
        ("publish", "--input", str(mirror), "--output", str(tmp_path / "processed")),
    ):
        proc = _cli(*args)
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr
    reason = (mirror / "quarantine" / f"{nested}.reason").read_text()
    assert "nested too deeply" in reason
    assert "above the" in (mirror / "quarantine" / f"{huge}.reason").read_text()
    assert (mirror / "quarantine" / huge).stat().st_size <= QUARANTINE_PREFIX_BYTES
    listed = _cli("results", "list", "--input", str(mirror), "--json")
    types = {row["instance_type"] for row in json.loads(listed.stdout)["types"]}
    assert types == {"m7i.large", "c7g.large"}


def test_report_publishes_verified_raw_files_without_account_ids(tmp_path: Path) -> None:
    """Cases 5 and 11: a raw file corrupted after the cache saw it (same size, same folder
    mtime) is not published as a source; no published file carries the account id."""
    mirror = tmp_path / "mirror"
    keys = _mirror(mirror)
    site = tmp_path / "site"
    first = _cli("report", "--input", str(mirror), "--output", str(site))
    assert first.returncode == 0, first.stderr[-2000:]

    # 64 bytes overwritten in place: the size and the folder's mtime stay as they were.
    victim = mirror / keys[1]
    folder_mtime = victim.parent.stat().st_mtime_ns
    data = bytearray(victim.read_bytes())
    at = data.index(b'"bandwidth') if b'"bandwidth' in data else len(data) // 2
    data[at : at + 64] = b" " * 64
    victim.write_bytes(bytes(data))
    os.utime(victim.parent, ns=(folder_mtime, folder_mtime))

    again = _cli("report", "--input", str(mirror), "--output", str(site))
    assert again.returncode == 0, again.stderr[-2000:]
    published = sorted(p.relative_to(site).as_posix() for p in (site / "raw").rglob("*.json"))
    assert keys[1] not in published
    assert set(published) == set(keys) - {keys[1]}
    for path in site.rglob("*"):
        if path.is_file():
            assert ACCOUNT not in path.read_text(encoding="utf-8", errors="replace"), path
    # What is published is the stored document, less the account id.
    doc = json.loads((site / keys[0]).read_text())
    assert "account_id" not in doc["system_info"]["ec2"]
    assert doc["metadata"] == json.loads((mirror / keys[0]).read_text())["metadata"]
    assert raw_key_of(doc) == keys[0]


def test_a_file_changed_in_place_is_seen_with_a_warm_cache(tmp_path: Path) -> None:
    """Case 5: figures overwritten in a stored result (same size, folder mtime kept):
    `results list` no longer counts it, and says why in quarantine."""
    mirror = tmp_path / "mirror"
    keys = store_documents(
        mirror, [result_document("m7i.large", bandwidth_gbps=40 + i, sample=i) for i in range(3)]
    )
    first = _cli("results", "list", "--input", str(mirror), "--json")
    assert first.returncode == 0, first.stderr[-2000:]
    [row] = json.loads(first.stdout)["types"]
    assert row["n"] == 3  # the cache is warm from here on

    victim = mirror / keys[2]
    folder_mtime = victim.parent.stat().st_mtime_ns
    before = victim.read_bytes()
    after = before.replace(b"42.", b"99.")
    assert after != before and len(after) == len(before)
    victim.write_bytes(after)
    os.utime(victim.parent, ns=(folder_mtime, folder_mtime))

    again = _cli("results", "list", "--input", str(mirror), "--json")
    assert again.returncode == 0, again.stderr[-2000:]
    [row] = json.loads(again.stdout)["types"]
    assert row["n"] == 2
    reason = (mirror / "quarantine" / f"{keys[2]}.reason").read_text()
    assert "changed after it was stored" in reason
