"""The run journal: state machine, persistence across processes, audit trail."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from instbench.errors import UserError
from instbench.journal import (
    Journal,
    JournalError,
    JournalUnusable,
    RunLocked,
    backup_path,
    default_path,
)


def _journal(tmp_path: Path) -> Journal:
    j = Journal(tmp_path / "j.sqlite")
    j.create_run(
        "r1",
        "us-east-1",
        "sandbox",
        {"samples": 1},
        [
            ("m7i.large-stream-0", "m7i.large", "stream", 0),
            ("c7g.large-stream-0", "c7g.large", "stream", 0),
        ],
    )
    return j


def test_happy_path_and_events(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.transition("r1", "m7i.large-stream-0", "launching", attempt=0, availability_zone="us-east-1a")
    j.transition("r1", "m7i.large-stream-0", "running", instance_id="i-1")
    j.transition("r1", "m7i.large-stream-0", "result_stored", result_key="raw/x.json")
    j.mark_terminated("r1", ["i-1"])
    row = j.task("r1", "m7i.large-stream-0")
    assert (row.state, row.instance_id, row.terminated, row.result_key) == (
        "result_stored",
        "i-1",
        True,
        "raw/x.json",
    )
    events = [e[2] for e in j.events("r1")]
    assert events == [
        "run_created",
        "planned->launching",
        "launching->running",
        "running->result_stored",
    ]


@pytest.mark.parametrize(
    ("path", "bad"),
    [([], "running"), (["launching", "running", "result_stored"], "failed"), ([], "result_stored")],
)
def test_illegal_transitions_are_refused(tmp_path: Path, path: list[str], bad: str) -> None:
    j = _journal(tmp_path)
    for state in path:
        j.transition("r1", "c7g.large-stream-0", state)
    with pytest.raises(JournalError, match="illegal transition"):
        j.transition("r1", "c7g.large-stream-0", bad)


def test_unknown_run_and_task(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    with pytest.raises(JournalError):
        j.run("nope")
    with pytest.raises(JournalError):
        j.transition("r1", "nope", "launching")
    with pytest.raises(JournalError):
        j.transition("r1", "c7g.large-stream-0", "launching", colour="red")


def test_state_survives_a_killed_process(tmp_path: Path) -> None:
    """A write committed before SIGKILL is there for the next process."""
    path = tmp_path / "j.sqlite"
    _journal(tmp_path).close()
    code = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from instbench.journal import Journal\n"
        f"j = Journal(Path({str(path)!r}))\n"
        "j.transition('r1', 'm7i.large-stream-0', 'launching')\n"
        "j.transition('r1', 'm7i.large-stream-0', 'running', instance_id='i-9')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False)
    assert proc.returncode == -9
    row = Journal(path).task("r1", "m7i.large-stream-0")
    assert (row.state, row.instance_id) == ("running", "i-9")


def test_default_path_honours_env(tmp_path: Path) -> None:
    assert default_path({"INSTBENCH_JOURNAL": str(tmp_path / "x")}) == tmp_path / "x"
    assert default_path({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "instbench/journal.sqlite"


def test_runs_listing(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.set_run_status("r1", "succeeded")
    [run] = j.runs()
    assert run.status == "succeeded" and run.finished_at and run.params == {"samples": 1}


# --------------------------------------------------------------- issue 21, case 6


def _damaged_line(path: Path) -> str:
    with pytest.raises(JournalUnusable) as err:
        Journal(path)
    message = str(err.value)
    assert "\n" not in message
    assert isinstance(err.value, UserError)  # one line, exit 2
    return message


def test_truncated_journal_is_refused_naming_the_backup(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    for i in range(200):  # enough rows for several pages
        j.create_run(f"r{i + 2}", "us-east-1", "aws", {"pad": "x" * 500}, [])
    j.close()
    path = tmp_path / "j.sqlite"
    Journal(path).close()  # a clean open keeps the good copy
    assert backup_path(path).stat().st_size == path.stat().st_size
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size // 2)
    message = _damaged_line(path)
    assert "damaged" in message and f"cp {backup_path(path)} {path}" in message
    # The named copy is whole: restoring it brings the runs back.
    path.write_bytes(backup_path(path).read_bytes())
    assert len(Journal(path).runs()) == 201


def test_zero_length_journal_is_not_an_empty_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    path.write_bytes(b"")
    message = _damaged_line(path)
    assert "0 bytes" in message and "move" in message
    assert path.stat().st_size == 0  # left as it was for the user to look at


def test_one_corrupt_page_is_refused(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    for i in range(100):
        j.create_run(f"r{i + 2}", "us-east-1", "aws", {"pad": "y" * 500}, [])
    j.close()
    path = tmp_path / "j.sqlite"
    page = 4096
    with path.open("r+b") as fh:
        fh.seek(3 * page)
        fh.write(b"\xff" * page)
    assert "integrity check" in _damaged_line(path) or "malformed" in _damaged_line(path)


def test_not_a_journal_and_unusable_paths(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    assert "not an instbench journal" in _damaged_line(other)
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a database at all" * 10)
    assert "damaged" in _damaged_line(text)
    assert "is a directory" in _damaged_line(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "pass another --journal" in _damaged_line(blocker / "j.sqlite")


def test_a_new_journal_is_never_seen_empty(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "j.sqlite"
    Journal(path).close()
    assert path.stat().st_size > 0
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".new")] == []


_HOLD = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from instbench.journal import Journal\n"
    "j = Journal(Path(sys.argv[1]))\n"
    "with j.run_lock('r1'):\n"
    "    print('held', flush=True)\n"
    "    time.sleep(60)\n"
)


def test_a_second_controller_of_a_run_is_refused(tmp_path: Path) -> None:
    """Two `--resume RID` at once: the second is refused with one line while the first
    holds the run; once the first is gone (even SIGKILLed) the run is free again."""
    _journal(tmp_path).close()
    path = tmp_path / "j.sqlite"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        j = Journal(path)
        assert j.run_locked_by("r1") == str(holder.pid)
        refused = f"another instbench process \\(pid {holder.pid}\\)"
        with pytest.raises(RunLocked, match=refused), j.run_lock("r1"):
            pass
        with j.run_lock("other-run"):  # other runs are not held
            pass
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert j.run_locked_by("r1") is None
    with j.run_lock("r1"):
        assert j.run_locked_by("r1") == str(os.getpid())
    j.close()


def test_cleanup_is_recorded(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.transition("r1", "m7i.large-stream-0", "launching")
    j.transition("r1", "m7i.large-stream-0", "running", instance_id="i-1")
    j.set_security_group("r1", "sg-1")
    status = j.record_cleanup("r1", ["i-1"], ["sg-1"], "terminated 1 instances")
    assert status == "swept" and j.run("r1").status == "swept"
    assert j.task("r1", "m7i.large-stream-0").terminated
    assert j.run("r1").security_group_id is None
    assert ("cleanup", "terminated 1 instances") in [(e[2], e[3]) for e in j.events("r1")]


def test_placement_groups_are_journalled_before_and_after(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.set_placement_group("r1", "instbench-r1-us-east-1a", "pending")
    j.set_placement_group("r1", "instbench-r1-us-east-1b", "pending")
    j.set_placement_group("r1", "instbench-r1-us-east-1a", "created")
    assert j.placement_groups("r1") == ["instbench-r1-us-east-1a", "instbench-r1-us-east-1b"]
    j.set_placement_group("r1", "instbench-r1-us-east-1b", "deleted")
    assert j.placement_groups("r1") == ["instbench-r1-us-east-1a"]
    with pytest.raises(JournalError, match="unknown state"):
        j.set_placement_group("r1", "instbench-r1-us-east-1a", "gone")
    # cleanup forgets what it deleted, in the same record as the rest of its work
    j.record_cleanup("r1", [], [], "deleted 1 placement groups", ["instbench-r1-us-east-1a"])
    assert j.placement_groups("r1") == []
    events = [(e[2], e[3]) for e in j.events("r1") if e[2].startswith("placement-group")]
    assert events == [
        ("placement-group-pending", "instbench-r1-us-east-1a"),
        ("placement-group-pending", "instbench-r1-us-east-1b"),
        ("placement-group-created", "instbench-r1-us-east-1a"),
        ("placement-group-deleted", "instbench-r1-us-east-1b"),
        ("placement-group-deleted", "instbench-r1-us-east-1a"),
    ]
    j.close()
    # Survives reopening (and an older journal gains the table when opened).
    again = Journal(tmp_path / "j.sqlite")
    assert again.placement_groups("r1") == []
    again.close()


def test_a_journal_from_before_placement_groups_opens(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    j = _journal(tmp_path)
    j.close()
    db = sqlite3.connect(tmp_path / "j.sqlite")
    db.execute("DROP TABLE placement_groups")
    db.commit()
    db.close()
    os.replace(tmp_path / "j.sqlite", path)
    old = Journal(path)
    assert old.placement_groups("r1") == []
    old.set_placement_group("r1", "instbench-r1-us-east-1a", "pending")
    assert old.placement_groups("r1") == ["instbench-r1-us-east-1a"]
    old.close()
