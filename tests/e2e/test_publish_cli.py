"""`instbench aggregate` and `instbench publish` through the installed console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.factories import result_document, store_documents

INSTBENCH = str(Path(sys.executable).parent / "instbench")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1"}
    return subprocess.run([INSTBENCH, *args], capture_output=True, text=True, timeout=120, env=env)


def _mirror(root: Path) -> None:
    docs = [result_document("m7i.large", bandwidth_gbps=40 + i, sample=i) for i in range(3)]
    docs.append(result_document("c7g.large", sample=0, collection_method="sandbox"))
    store_documents(root, docs)


def test_publish_writes_the_contract_files_and_holds_back_incomplete_types(tmp_path: Path) -> None:
    _mirror(tmp_path / "mirror")
    out = tmp_path / "processed"
    proc = _cli("publish", "--input", str(tmp_path / "mirror"), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "memory-benchmarks.json 1 held back" in proc.stdout
    assert "kept from the previous publication" not in proc.stdout
    assert "1 of 1 tidy partitions written" in proc.stdout
    assert not (out / "latest" / "tidy.csv").exists()
    partition = out / "latest/tidy/benchmark=stream/month=2025-03/part-0.parquet"
    before = partition.read_bytes()
    again = _cli("publish", "--input", str(tmp_path / "mirror"), "--output", str(out))
    assert "nothing changed since the previous publication" in again.stdout
    assert partition.read_bytes() == before
    # Other prices would change price-performance.json: the partitions are still kept.
    prices = tmp_path / "prices.json"
    prices.write_text(
        json.dumps(
            {
                "as_of": "2025-03-05",
                "region": "us-east-1",
                "source": "test",
                "instances": {"m7i.large": {"on_demand": 0.1008}},
            }
        )
    )
    priced = _cli(
        "publish",
        "--input",
        str(tmp_path / "mirror"),
        "--output",
        str(out),
        "--prices",
        str(prices),
    )
    assert priced.returncode == 0, priced.stderr
    assert "tidy exports unchanged (same inputs), kept from the previous" in priced.stdout
    index = json.loads((out / "latest" / "index.json").read_text())
    assert list(index["heldBack"]["memory-benchmarks.json"]) == ["m7i.large"]
    assert index["ingest"]["excluded"] == {"sandbox result": 1}
    memory = json.loads((out / "latest" / "memory-benchmarks.json").read_text())
    assert memory["instances"] == {}

    demo = _cli(
        "publish",
        "--input",
        str(tmp_path / "mirror"),
        "--output",
        str(out),
        "--include-sandbox",
        "--json",
    )
    assert demo.returncode == 0, demo.stderr
    assert sorted(json.loads(demo.stdout)["heldBack"]["memory-benchmarks.json"]) == [
        "c7g.large",
        "m7i.large",
    ]

    # --csv adds the single CSV; --memory-limit bounds DuckDB and changes no byte.
    bounded = _cli(
        "publish",
        "--input",
        str(tmp_path / "mirror"),
        "--output",
        str(out),
        "--csv",
        "--memory-limit",
        "200MB",
    )
    assert bounded.returncode == 0, bounded.stderr
    rows = (out / "latest" / "tidy.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 * 2 * 4  # header + 3 results x 2 thread modes x 4 kernels
    assert partition.read_bytes() == before


def test_aggregate_prints_tables_and_json(tmp_path: Path) -> None:
    _mirror(tmp_path)
    table = _cli("aggregate", "--input", str(tmp_path))
    assert table.returncode == 0, table.stderr
    assert "stream bandwidth (GB/s)" in table.stdout and "m7i.large" in table.stdout
    assert "\x1b[" not in table.stdout  # plain text without a TTY
    as_json = _cli("aggregate", "--input", str(tmp_path), "--json")
    data = json.loads(as_json.stdout)
    triad = [g for g in data["groups"] if (g["test"], g["thread_mode"]) == ("triad", "all")]
    assert [(g["instance_type"], g["n"], g["mean"]) for g in triad] == [("m7i.large", 3, 41.0)]


def test_aggregate_rescan_revalidates_a_file_edited_in_place(tmp_path: Path) -> None:
    [key] = store_documents(tmp_path, [result_document("m7i.large", bandwidth_gbps=40)])
    old = time.time_ns() - 3600 * 1_000_000_000
    for d in [tmp_path / "raw", *(p for p in (tmp_path / "raw").rglob("*") if p.is_dir())]:
        os.utime(d, ns=(old, old))
    first = json.loads(_cli("aggregate", "--input", str(tmp_path), "--json").stdout)
    assert first["ingest"]["accepted"] == 1
    doc = json.loads((tmp_path / key).read_text())
    doc["performance_data"]["stream"]["runs"][0]["validation_passed"] = False
    (tmp_path / key).write_text(json.dumps(doc))  # in place: no directory's mtime changes

    # Issue 21: the warm cache lists no folder, but sees the file changed and rejects it
    # as corrupted (it was accepted before with other content).
    warm = json.loads(_cli("aggregate", "--input", str(tmp_path), "--json").stdout)["ingest"]
    assert (warm["listed_dirs"], warm["validated_now"]) == (0, 1)
    assert (warm["accepted"], warm["rejected"]) == (0, 1)
    assert "changed after it was stored" in warm["rejections"][0]["reason"]
    # --rescan takes hand-edited files as they are now (edited again: another size), and
    # this one fails its own validation.
    (tmp_path / key).write_text(json.dumps(doc, indent=1))
    rescan = _cli("aggregate", "--input", str(tmp_path), "--json", "--rescan")
    assert rescan.returncode == 0, rescan.stderr
    ingest = json.loads(rescan.stdout)["ingest"]
    assert (ingest["validated_now"], ingest["accepted"], ingest["rejected"]) == (1, 0, 1)
    assert "validation" in ingest["rejections"][0]["reason"]


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = _cli("publish", "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o"))
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"error: input directory {tmp_path / 'nope'} does not exist"
    ]
    assert not (tmp_path / "o").exists()

    _mirror(tmp_path / "mirror")
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    unwritable = _cli(
        "publish", "--input", str(tmp_path / "mirror"), "--output", str(blocker / "x")
    )
    assert unwritable.returncode == 2
    assert len(unwritable.stderr.strip().splitlines()) == 1
    assert "cannot write to output directory" in unwritable.stderr

    no_prices = _cli(
        "publish",
        "--input",
        str(tmp_path / "mirror"),
        "--output",
        str(tmp_path / "o2"),
        "--prices",
        str(tmp_path / "none.json"),
    )
    assert no_prices.returncode == 2 and "price file" in no_prices.stderr
