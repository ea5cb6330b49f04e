"""`instbench results list | show | compare` in-process, on a mirror built by the factories."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.factories import result_document, store_documents
from typer.testing import CliRunner

from instbench.cli.app import app
from instbench.report.model import load

runner = CliRunner()


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mirror")
    docs = [result_document("m7i.large", bandwidth_gbps=40 + i, sample=i) for i in range(3)] + [
        result_document("c7g.large", bandwidth_gbps=60 + i, sample=i) for i in range(2)
    ]
    docs.append(
        result_document(
            "r7a.large",
            collection_method="sandbox",
            timestamp=datetime(2025, 3, 2, tzinfo=UTC),
        )
    )
    store_documents(root, docs)
    return root


def _run(*args: str) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    return result.output


def test_list_prints_plain_table_without_a_tty(mirror: Path) -> None:
    out = _run("results", "list", "--input", str(mirror))
    assert "m7i.large" in out and "c7g.large" in out
    assert "r7a.large" not in out  # sandbox results need --include-sandbox
    assert "\x1b[" not in out and "┃" not in out and "│" not in out
    assert "41.00" in out  # mean triad of m7i.large (40, 41, 42)
    assert "r7a.large" in _run("results", "list", "--input", str(mirror), "--include-sandbox")


def test_list_json_and_type_pattern(mirror: Path) -> None:
    data = json.loads(_run("results", "list", "--input", str(mirror), "--json", "--type", "m7*"))
    assert [t["instance_type"] for t in data["types"]] == ["m7i.large"]
    row = data["types"][0]
    assert row["n"] == 3 and row["triad"] == pytest.approx(41.0)
    assert row["ci_low"] < 41.0 < row["ci_high"]
    assert row["per_vcpu"] == pytest.approx(41.0 / row["vcpus"])
    sub = json.loads(_run("results", "list", "--input", str(mirror), "--json", "--type", "c7g"))
    assert [t["instance_type"] for t in sub["types"]] == ["c7g.large"]
    none = json.loads(
        _run("results", "list", "--input", str(mirror), "--json", "--benchmark", "latency")
    )
    assert none["types"] == []
    assert "no results" in _run("results", "list", "--input", str(mirror), "--type", "x9*")


def test_show_gives_statistics_and_machine(mirror: Path) -> None:
    out = _run("results", "show", "m7i.large", "--input", str(mirror))
    assert "triad" in out and "single" in out and "AMI" in out and "-march=native" in out
    data = json.loads(_run("results", "show", "c7g.large", "--input", str(mirror), "--json"))
    assert data["machine"]["architecture"] == "arm64"
    assert len(data["raw"]) == 2 and all(k.startswith("raw/stream/c7g.large/") for k in data["raw"])
    assert {s["test"] for s in data["summaries"]} == {"copy", "scale", "add", "triad"}


def test_show_unknown_type_is_a_clear_error(mirror: Path) -> None:
    result = runner.invoke(app, ["results", "show", "x1.nope", "--input", str(mirror)])
    assert result.exit_code != 0
    assert "no results for instance type 'x1.nope'" in str(result.exception)


def test_compare_side_by_side_with_ratios(mirror: Path) -> None:
    out = _run("results", "compare", "m7i.large", "c7g.large", "--input", str(mirror))
    assert "triad" in out and "x)" in out
    data = json.loads(
        _run("results", "compare", "m7i.large", "c7g.large", "--input", str(mirror), "--json")
    )
    triad = next(r for r in data["rows"] if r["test"] == "triad" and r["thread_mode"] == "all")
    assert triad["types"]["m7i.large"]["ratio_to_first"] == pytest.approx(1.0)
    assert triad["types"]["c7g.large"]["ratio_to_first"] == pytest.approx(60.5 / 41.0)


def test_empty_mirror_is_an_empty_dataset(tmp_path: Path) -> None:
    assert load(tmp_path).empty
    data = json.loads(_run("results", "list", "--input", str(tmp_path), "--json"))
    assert data == {"types": []}
