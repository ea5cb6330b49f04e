"""Issue 21 case 13: `runs list` at 80 columns cut the run id to "20261204T202…", the one
value a user must copy for `--resume` and `cleanup`, and cut the state counts too."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from instbench.cli.app import app
from instbench.cli.runs_cmd import runs_table
from instbench.journal import Journal, RunRow

RUN_ID = "20261204T202533Z-8f3a1c"
STATES = {"result_stored": 297, "failed": 3, "launching": 12, "planned": 40, "running": 50}
SMALL = {"result_stored": 2, "failed": 1, "launching": 1, "planned": 3, "running": 1}


def _journal(path: Path) -> Journal:
    j = Journal(path)
    tasks = []
    for state, n in SMALL.items():
        tasks += [(f"{state}-{i}", "m7i.large", "stream", i) for i in range(n)]
    for rid in (RUN_ID, "20261205T010203Z-0a1b2c"):
        j.create_run(rid, "ap-southeast-2", "endpoint", {}, tasks)
        for state in ("result_stored", "failed", "launching", "running"):
            for i in range(SMALL[state]):
                task = f"{state}-{i}"
                if state in {"result_stored", "running"}:
                    j.transition(rid, task, "launching")
                if state == "result_stored":
                    j.transition(rid, task, "running")
                j.transition(rid, task, state)
    j.set_run_status(RUN_ID, "interrupted")
    return j


def _expected_counts(states: dict[str, int]) -> list[str]:
    return [f"{n} {'stored' if s == 'result_stored' else s}" for s, n in states.items()]


def _run(run_id: str, status: str) -> RunRow:
    created = "2026-12-04T20:25:33.123+00:00"
    return RunRow(run_id, created, "ap-southeast-2", "endpoint", {}, status, None, None)


def test_run_ids_and_counts_whole_at_80_columns(tmp_path: Path) -> None:
    rows = [
        (_run(RUN_ID, "interrupted"), dict(STATES)),
        (_run("20261205T010203Z-0a1b2c", "running"), dict(STATES)),
    ]
    console = Console(width=80, record=True)
    console.print(runs_table(rows, f"runs in {tmp_path / 'a' / 'long' / 'path' / 'j.sqlite'}"))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    lines = text.splitlines()
    for run_id in (RUN_ID, "20261205T010203Z-0a1b2c"):
        assert any(run_id in line for line in lines), text
    for count in _expected_counts(STATES):
        assert sum(1 for line in lines if count in line) == 2, (count, text)
    assert "…" not in text


@pytest.mark.parametrize("columns", ["80"])
def test_the_command_at_80_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, columns: str
) -> None:
    _journal(tmp_path / "j.sqlite").close()
    monkeypatch.setenv("COLUMNS", columns)
    result = CliRunner().invoke(app, ["runs", "list", "--journal", str(tmp_path / "j.sqlite")])
    assert result.exit_code == 0, result.output
    assert RUN_ID in result.output and "…" not in result.output
    for count in _expected_counts(SMALL):
        assert count in result.output, result.output
