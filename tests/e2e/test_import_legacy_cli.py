"""`instbench import legacy` as a user runs it: the installed console script, in a process.

Synthetic Go-collector files (tests/factories.go_collector_document) in a results/ folder
as the old repository holds them. Checked: the table (found / imported / quarantined by
reason / flagged), --dry-run writes nothing, a second import finds every file already
imported, and bad input is one `error:` line with exit code 2 and nothing written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.factories import go_collector_document

INSTBENCH = str(Path(sys.executable).parent / "instbench")

pytestmark = pytest.mark.slow


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    return subprocess.run([INSTBENCH, *args], capture_output=True, text=True, timeout=120, env=env)


def _row(out: str, label: str) -> int:
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if len(cells) == 2 and cells[0] == label:
            return int(cells[1])
    raise AssertionError(f"no row {label!r} in:\n{out}")


@pytest.fixture()
def old_repo(tmp_path: Path) -> Path:
    day = tmp_path / "old" / "results" / "2025-06-30"
    day.mkdir(parents=True)
    files = {
        "m7i.large-stream.json": go_collector_document("stream", "m7i.large", figure=14.5),
        "c7g.large-coremark.json": go_collector_document(
            "coremark", "c7g.large", figure=25.7, label="graviton", image_tag="amd-zen4"
        ),
        "c5.large-stream.json": go_collector_document("stream", "c5.large", figure=41.9),
        "r5.large-stream.json": go_collector_document("stream", "r5.large", figure=41.9),
    }
    for name, doc in files.items():
        (day / name).write_text(json.dumps(doc))
    (day / "notes.json").write_text("not json")
    return tmp_path / "old"


def test_import_prints_the_table_and_is_idempotent(tmp_path: Path, old_repo: Path) -> None:
    mirror = tmp_path / "mirror"
    dry = _cli("import", "legacy", str(old_repo), "--output-dir", str(mirror), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run, nothing written" in dry.stdout and not mirror.exists()
    assert (_row(dry.stdout, "found"), _row(dry.stdout, "imported (would be)")) == (5, 2)
    first = _cli("import", "legacy", str(old_repo), "--output-dir", str(mirror))
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert (_row(out, "found"), _row(out, "imported"), _row(out, "quarantined")) == (5, 2, 3)
    assert (
        _row(out, "placeholder figures: identical legacy-stream figures for 2 instance types") == 2
    )
    assert _row(out, "container-image-contradicts-type") == 1
    assert len(list((mirror / "raw").rglob("*.json"))) == 2
    again = _cli("import", "legacy", str(old_repo), "--output-dir", str(mirror))
    assert (_row(again.stdout, "imported"), _row(again.stdout, "already imported")) == (0, 2)
    assert len(list((mirror / "raw").rglob("*.json"))) == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("import", "legacy", "{tmp}/nowhere"), "does not exist"),
        (("import", "legacy", "{tmp}/file.txt"), "is not a directory"),
        (("import", "legacy", "{old}", "--region", "us-east-1"), "are for --describe-types"),
        (("import", "legacy", "{old}", "--describe-types", "--region", "us-esat-1"), "us-esat-1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, old_repo: Path, argv: tuple[str, ...], message: str
) -> None:
    (tmp_path / "file.txt").write_text("x")
    mirror = tmp_path / "mirror"
    args = [a.format(tmp=tmp_path, old=old_repo) for a in argv]
    proc = _cli(*args, "--output-dir", str(mirror))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not mirror.exists()
