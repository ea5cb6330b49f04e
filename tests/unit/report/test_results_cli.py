"""`instbench results list | show | compare` in-process, on a mirror built by the factories."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console
from tests.factories import result_document, store_documents
from typer.testing import CliRunner

from instbench.cli import results_cmd
from instbench.cli.app import app
from instbench.context import Context
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


# ------------------------------------------------------------ units, 80 columns

WIDE = ["m7i.48xlarge", "c7g.16xlarge", "m7a.48xlarge", "r7i.48xlarge", "c7gn.16xlarge"]
"""Five big types (bandwidths of hundreds of GB/s): too wide for one 80-column comparison."""


@pytest.fixture(scope="module")
def wide_mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wide")
    docs = [
        result_document(name, bandwidth_gbps=300.0 + 61.0 * j + 3.0 * i, sample=i)
        for j, name in enumerate(WIDE)
        for i in range(3)
    ]
    store_documents(root, docs)
    return root


def _at_80(*args: str) -> list[str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # The tables (show's machine lines after them are key: value text, not a table).
    tables = lines[: lines.index("")] if "" in lines else lines
    assert max(len(line) for line in tables) <= 80, result.output
    assert "…" not in result.output, result.output  # nothing cut off
    return tables


def test_compare_at_80_columns_keeps_each_value_with_its_ratio(wide_mirror: Path) -> None:
    lines = _at_80("results", "compare", *WIDE, "--input", str(wide_mirror))
    data = json.loads(_run("results", "compare", *WIDE, "--input", str(wide_mirror), "--json"))
    rows = [r for r in data["rows"] if r["test"] in ("triad", "copy")]
    assert rows and all(r["unit"] == "GB/s" for r in rows)
    # More than one table, each headed by the baseline, every type in one of them.
    headers = [line for line in lines if line.startswith("figure (unit)")]
    assert len(headers) > 1 and all(WIDE[0] in h for h in headers)
    assert {t for t in WIDE if any(t in h for h in headers)} == set(WIDE)
    for row in rows:
        label = f"{row['test']} {row['metric']}"
        threads = row["thread_mode"]
        for name in WIDE[1:]:
            cell = row["types"][name]
            text = f"{results_cmd._figure(cell['mean'])} ({cell['ratio_to_first']:.2f}x)"
            assert any(
                line.startswith(label) and f" {threads} " in line and text in line for line in lines
            ), (label, threads, text, "\n".join(lines))
    assert any("(GB/s)" in line for line in lines)


def test_compare_on_an_80_column_terminal(wide_mirror: Path) -> None:
    """The boxed terminal rendering, through a Rich console of width 80."""
    console = Console(width=80, force_terminal=True, color_system=None, record=True)
    data = load(wide_mirror)
    by_key: results_cmd.Figures = {}
    for name in WIDE[:3]:
        for s in data.summaries_of(name):
            by_key.setdefault((s.benchmark, s.test, s.thread_mode, s.metric), {})[name] = s
    tables = results_cmd.compare_tables(Context(), WIDE[:3], by_key, console)
    assert len(tables) == 1  # three types fit
    for table in tables:
        console.print(table)
    text = console.export_text()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in text
    triad = {s.thread_mode: s for s in data.summaries_of(WIDE[2]) if s.test == "triad"}
    base = {s.thread_mode: s for s in data.summaries_of(WIDE[0]) if s.test == "triad"}
    for mode, s in triad.items():
        cell = f"{results_cmd._figure(s.mean)} ({s.mean / base[mode].mean:.2f}x)"
        assert sum(cell in line for line in lines) == 1, text


def test_show_at_80_columns_gives_units_and_whole_numbers(wide_mirror: Path) -> None:
    name = WIDE[3]
    lines = _at_80("results", "show", name, "--input", str(wide_mirror))
    data = json.loads(_run("results", "show", name, "--input", str(wide_mirror), "--json"))
    assert data["summaries"]
    for s in data["summaries"]:
        label = f"{s['test']} {s['metric']}"
        threads = s["thread_mode"]
        mean = results_cmd._figure(s["mean"])
        ci = f"{results_cmd._figure(s['ci_low'])}–{results_cmd._figure(s['ci_high'])}"
        assert any(
            line.startswith(label) and f" {threads} " in line and mean in line and ci in line
            for line in lines
        ), (label, mean, ci, "\n".join(lines))
    assert sum("(GB/s)" in line for line in lines) == len(data["summaries"])


@pytest.mark.parametrize(
    ("value", "text"),
    [(88625.23, "88625"), (358.87, "358.9"), (41.254, "41.25"), (0.0034, "0.0034"), (0.0, "0.00")],
)
def test_figures_are_compact(value: float, text: str) -> None:
    assert results_cmd._figure(value) == text
    assert results_cmd._figure(float("nan")) == "-" and results_cmd._figure(None) == "-"
