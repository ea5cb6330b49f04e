"""The run journal: what the controller is about to do, written before it does it.

SQLite (stdlib), one row per task with a small state machine:

    planned -> launching -> running -> result_stored
                   |           |
                   +-----------+----> failed

plus the instance id and whether it is known to be terminated. Every transition is
committed *before* the AWS call that changes state, so after a crash the journal says
which instances may exist (launching/running rows) and which tasks still need a result.
`instbench runs list/show`, `--resume` and `cleanup` read it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TASK_STATES = ("planned", "launching", "running", "result_stored", "failed")
_ALLOWED = {
    "planned": {"launching", "failed"},
    "launching": {"running", "failed", "launching", "planned"},
    "running": {"result_stored", "failed", "running", "launching"},
    "result_stored": set(),
    "failed": {"planned", "running"},
}
"""Legal transitions. failed -> planned is a resume retrying a task; launching -> launching
is a capacity failover to another zone; running -> launching is a relaunch (spot)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    region TEXT NOT NULL,
    mode TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    security_group_id TEXT,
    finished_at TEXT
);
CREATE TABLE IF NOT EXISTS tasks (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    task_id TEXT NOT NULL,
    instance_type TEXT NOT NULL,
    benchmark TEXT NOT NULL,
    sample INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    instance_id TEXT,
    availability_zone TEXT,
    terminated INTEGER NOT NULL DEFAULT 0,
    result_key TEXT,
    reason TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (run_id, task_id)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    task_id TEXT,
    at TEXT NOT NULL,
    event TEXT NOT NULL,
    detail TEXT
);
"""


class JournalError(Exception):
    """An illegal transition or an unknown run: a bug or a corrupted journal."""


@dataclass(frozen=True)
class TaskRow:
    """One task as journalled."""

    run_id: str
    task_id: str
    instance_type: str
    benchmark: str
    sample: int
    state: str
    attempt: int
    instance_id: str | None
    availability_zone: str | None
    terminated: bool
    result_key: str | None
    reason: str | None
    updated_at: str


@dataclass(frozen=True)
class RunRow:
    """One run as journalled."""

    run_id: str
    created_at: str
    region: str
    mode: str
    params: dict[str, Any]
    status: str
    security_group_id: str | None
    finished_at: str | None


def default_path(environ: dict[str, str] | None = None) -> Path:
    """$INSTBENCH_JOURNAL, else $XDG_STATE_HOME/instbench/journal.sqlite."""
    env = os.environ if environ is None else environ
    if env.get("INSTBENCH_JOURNAL"):
        return Path(env["INSTBENCH_JOURNAL"])
    state = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "instbench" / "journal.sqlite"


def _run_row(r: Any) -> RunRow:
    return RunRow(
        run_id=r[0],
        created_at=r[1],
        region=r[2],
        mode=r[3],
        params=json.loads(r[4]),
        status=r[5],
        security_group_id=r[6],
        finished_at=r[7],
    )


def _task_row(r: Any) -> TaskRow:
    return TaskRow(
        run_id=r[0],
        task_id=r[1],
        instance_type=r[2],
        benchmark=r[3],
        sample=r[4],
        state=r[5],
        attempt=r[6],
        instance_id=r[7],
        availability_zone=r[8],
        terminated=bool(r[9]),
        result_key=r[10],
        reason=r[11],
        updated_at=r[12],
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Journal:
    """Thread-safe access to the journal file (one connection, serialised by a lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # ---------------------------------------------------------------- runs

    def create_run(
        self,
        run_id: str,
        region: str,
        mode: str,
        params: dict[str, Any],
        tasks: list[tuple[str, str, str, int]],
    ) -> None:
        """Record a run and its planned tasks (task_id, instance_type, benchmark, sample)."""
        now = _now()
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, 'running', NULL, NULL)",
                (run_id, now, region, mode, json.dumps(params, sort_keys=True)),
            )
            db.executemany(
                "INSERT INTO tasks (run_id, task_id, instance_type, benchmark, sample, state, "
                "updated_at) VALUES (?, ?, ?, ?, ?, 'planned', ?)",
                [(run_id, t, it, b, s, now) for t, it, b, s in tasks],
            )
            db.execute(
                "INSERT INTO events (run_id, at, event, detail) VALUES (?, ?, 'run_created', ?)",
                (run_id, now, f"{len(tasks)} tasks"),
            )

    def set_run_status(self, run_id: str, status: str) -> None:
        with self._tx() as db:
            finished = _now() if status in {"succeeded", "failed", "interrupted"} else None
            db.execute(
                "UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?",
                (status, finished, run_id),
            )
            db.execute(
                "INSERT INTO events (run_id, at, event, detail) VALUES (?, ?, 'run_status', ?)",
                (run_id, _now(), status),
            )

    def set_security_group(self, run_id: str, group_id: str | None) -> None:
        """Journal the run's own security group (before creating it: use 'pending')."""
        with self._tx() as db:
            db.execute("UPDATE runs SET security_group_id = ? WHERE run_id = ?", (group_id, run_id))

    def run(self, run_id: str) -> RunRow:
        with self._lock:
            row = self._db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise JournalError(f"no run {run_id!r} in the journal {self.path}")
        return _run_row(row)

    def runs(self) -> list[RunRow]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM runs ORDER BY created_at DESC").fetchall()
        return [_run_row(r) for r in rows]

    # --------------------------------------------------------------- tasks

    def tasks(self, run_id: str) -> list[TaskRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM tasks WHERE run_id = ? ORDER BY task_id", (run_id,)
            ).fetchall()
        return [_task_row(r) for r in rows]

    def task(self, run_id: str, task_id: str) -> TaskRow:
        with self._lock:
            r = self._db.execute(
                "SELECT * FROM tasks WHERE run_id = ? AND task_id = ?", (run_id, task_id)
            ).fetchone()
        if r is None:
            raise JournalError(f"no task {task_id!r} in run {run_id!r}")
        return _task_row(r)

    def transition(self, run_id: str, task_id: str, state: str, **fields: Any) -> None:
        """Move a task to `state` (checked), updating the given columns."""
        allowed_cols = {"instance_id", "availability_zone", "result_key", "reason", "attempt"}
        unknown = set(fields) - allowed_cols
        if unknown:
            raise JournalError(f"unknown task fields {sorted(unknown)}")
        with self._tx() as db:
            row = db.execute(
                "SELECT state FROM tasks WHERE run_id = ? AND task_id = ?", (run_id, task_id)
            ).fetchone()
            if row is None:
                raise JournalError(f"no task {task_id!r} in run {run_id!r}")
            if state not in _ALLOWED[row[0]]:
                raise JournalError(f"task {task_id}: illegal transition {row[0]} -> {state}")
            sets = ", ".join(f"{c} = ?" for c in fields)
            db.execute(
                f"UPDATE tasks SET state = ?, updated_at = ?{', ' + sets if sets else ''} "
                "WHERE run_id = ? AND task_id = ?",
                (state, _now(), *fields.values(), run_id, task_id),
            )
            detail = json.dumps(fields, sort_keys=True, default=str) if fields else None
            db.execute(
                "INSERT INTO events (run_id, task_id, at, event, detail) VALUES (?, ?, ?, ?, ?)",
                (run_id, task_id, _now(), f"{row[0]}->{state}", detail),
            )

    def mark_terminated(self, run_id: str, instance_ids: list[str]) -> None:
        """Record that these instances are terminated (or being terminated)."""
        if not instance_ids:
            return
        with self._tx() as db:
            db.executemany(
                "UPDATE tasks SET terminated = 1, updated_at = ? "
                "WHERE run_id = ? AND instance_id = ?",
                [(_now(), run_id, iid) for iid in instance_ids],
            )

    def events(self, run_id: str) -> list[tuple[str, str | None, str, str | None]]:
        """(at, task_id, event, detail) in order: the run's audit trail."""
        with self._lock:
            return [
                (r[0], r[1], r[2], r[3])
                for r in self._db.execute(
                    "SELECT at, task_id, event, detail FROM events WHERE run_id = ? ORDER BY id",
                    (run_id,),
                )
            ]
