"""The run journal: what the controller is about to do, written before it does it.

SQLite (stdlib), one row per task with a small state machine:

    planned -> launching -> running -> result_stored
                   |           |
                   +-----------+----> failed

plus the instance id and whether it is known to be terminated, and the run's own
resources: its security group and its placement groups (one per zone with pair tasks).
Every transition is committed *before* the AWS call that changes state, so after a crash
the journal says which instances may exist (launching/running rows) and which tasks still
need a result.
`instbench runs list/show`, `--resume` and `cleanup` read it.

The file is checked (`PRAGMA integrity_check`) every time it is opened, and a copy that
passed is kept beside it (`journal.sqlite.bak`): a truncated, zeroed or damaged journal is
a one-line error naming that copy, never a traceback and never silently an empty journal.
A new journal is built in a temporary file and linked into place, so a journal of zero
bytes only ever comes from damage. One controller at a time works on a run: `run_lock`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from instbench.errors import UserError

FINISHED_STATUSES = frozenset({"succeeded", "failed", "interrupted", "swept"})
"""Run statuses of a run no controller is working on. `swept`: its controller was gone
and `instbench cleanup` ended what it left behind (it can still be resumed)."""

PLACEMENT_GROUP_STATES = ("pending", "created", "deleted")
"""A run's placement group in the journal: about to be created, created, deleted."""

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
CREATE TABLE IF NOT EXISTS placement_groups (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
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


class JournalUnusable(UserError):
    """The journal file cannot be opened, or fails its integrity check (one line, exit 2)."""


class RunLocked(UserError):
    """Another instbench process is working on the run (a second `--resume RID`)."""


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


def backup_path(path: Path) -> Path:
    """The last copy of the journal that passed its integrity check."""
    return path.with_name(path.name + ".bak")


def _lock_path(path: Path, run_id: str) -> Path:
    if not _safe_run_id(run_id):
        raise JournalError(f"run id {run_id!r} cannot name a lock file")
    return path.with_name(path.name + ".locks") / f"{run_id}.lock"


def _safe_run_id(run_id: str) -> bool:
    return bool(run_id) and len(run_id) <= 128 and all(c.isalnum() or c in "._-" for c in run_id)


def _unusable(path: Path, why: str) -> JournalUnusable:
    return JournalUnusable(f"cannot use the run journal {path}: {why}; pass another --journal")


def _damaged(path: Path, why: str) -> JournalUnusable:
    """The one line for a damaged journal: what is wrong, and how to get going again."""
    backup = backup_path(path)
    if backup.is_file() and backup.stat().st_size > 0:
        taken = datetime.fromtimestamp(backup.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M")
        remedy = (
            f"restore the last good copy ({taken} UTC) with: cp {backup} {path} "
            f"(or move {path} aside to start an empty journal)"
        )
    else:
        remedy = f"no good copy exists; move {path} aside to start an empty journal"
    return JournalUnusable(
        f"run journal {path} is damaged ({why}): {remedy}; instbench cleanup --older-than "
        "finds instances of runs it no longer knows"
    )


def _create(path: Path) -> None:
    """A new, empty journal: built aside and linked into place, never seen half-made."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".new")
        os.close(fd)
    except OSError as exc:
        raise _unusable(path, exc.strerror or str(exc)) from None
    try:
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
        finally:
            db.close()
        with contextlib.suppress(FileExistsError):  # another process made it first: use it
            os.link(tmp, path)
    except (OSError, sqlite3.Error) as exc:
        raise _unusable(path, getattr(exc, "strerror", None) or str(exc)) from None
    finally:
        for leftover in (tmp, tmp + "-wal", tmp + "-shm"):
            Path(leftover).unlink(missing_ok=True)


def _open_checked(path: Path) -> sqlite3.Connection:
    """Connect, and refuse a journal that is not a whole, sound SQLite database."""
    try:
        if path.is_dir():
            raise _unusable(path, "it is a directory")
        size = path.stat().st_size
    except OSError as exc:
        raise _unusable(path, exc.strerror or str(exc)) from None
    if size == 0:
        raise _damaged(path, "the file is empty: 0 bytes")
    try:
        db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    except sqlite3.Error as exc:
        raise _unusable(path, str(exc)) from None
    try:
        problems = [r[0] for r in db.execute("PRAGMA integrity_check(5)").fetchall()]
        if problems != ["ok"]:
            found = " ".join(" ".join(problems).replace("*** in database main ***", "").split())
            raise _damaged(path, f"integrity check: {found[:100]}")
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"runs", "tasks", "events"} <= tables:
            raise _damaged(path, "not an instbench journal: its tables are missing")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
    except sqlite3.DatabaseError as exc:
        db.close()
        if "unable to open" in str(exc) or "readonly" in str(exc):
            raise _unusable(path, str(exc)) from None
        raise _damaged(path, str(exc)) from None
    except BaseException:
        db.close()
        raise
    return db


def _backup(db: sqlite3.Connection, target: Path) -> None:
    """Copy the checked journal to `target` (atomically); best effort, never fatal."""
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".new")
        os.close(fd)
    except OSError:
        return
    try:
        copy = sqlite3.connect(tmp)
        try:
            db.backup(copy)
        finally:
            copy.close()
        os.replace(tmp, target)
    except (OSError, sqlite3.Error):
        Path(tmp).unlink(missing_ok=True)


class Journal:
    """Thread-safe access to the journal file (one connection, serialised by a lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        if not path.exists() and not path.is_symlink():
            _create(path)
        self._db = _open_checked(path)
        _backup(self._db, backup_path(path))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def run_lock(self, run_id: str) -> Iterator[None]:
        """Hold the run for this process: a second controller of the same run (two
        `--resume RID` at once, or a resume of a run still being run) is refused.

        An advisory lock (flock) on a file beside the journal: the kernel drops it when
        the process ends however it ends, so a SIGKILLed controller never leaves a stale
        lock behind.
        """
        lock_path = _lock_path(self.path, run_id)
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise JournalUnusable(
                f"cannot lock run {run_id} in {lock_path.parent}: {exc.strerror or exc}"
            ) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                raise RunLocked(
                    f"run {run_id} is being run by another instbench process (pid {holder}): "
                    "wait for it to end (instbench runs show " + run_id + "), or stop it "
                    "and then resume"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def run_locked_by(self, run_id: str) -> str | None:
        """The pid holding the run (a controller working on it now), else None."""
        lock_path = _lock_path(self.path, run_id)
        try:
            fd = os.open(lock_path, os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
        finally:
            os.close(fd)
        return None

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
            finished = _now() if status in FINISHED_STATUSES else None
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

    def set_placement_group(self, run_id: str, name: str, state: str) -> None:
        """Journal one of the run's placement groups: `pending` before creating it (a crash
        in between leaves a name for cleanup to look for), `created` once EC2 has it,
        `deleted` once it is gone. Each change is an event of the run as well."""
        if state not in PLACEMENT_GROUP_STATES:
            raise JournalError(f"placement group {name}: unknown state {state!r}")
        now = _now()
        with self._tx() as db:
            db.execute(
                "INSERT INTO placement_groups (run_id, name, state, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (run_id, name) "
                "DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                (run_id, name, state, now),
            )
            db.execute(
                "INSERT INTO events (run_id, at, event, detail) VALUES (?, ?, ?, ?)",
                (run_id, now, f"placement-group-{state}", name),
            )

    def placement_groups(self, run_id: str) -> list[str]:
        """The run's placement groups that may exist (pending or created), by name."""
        with self._lock:
            rows = self._db.execute(
                "SELECT name FROM placement_groups WHERE run_id = ? AND state != 'deleted' "
                "ORDER BY name",
                (run_id,),
            ).fetchall()
        return [r[0] for r in rows]

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

    def note(self, run_id: str, task_id: str | None, event: str, detail: dict[str, Any]) -> None:
        """An event that changes no task state: the server instance of a pair task (its
        launch and its end), so the journal names both instances of the pair, and the
        run group's inbound rule for pairs (`task_id` None)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO events (run_id, task_id, at, event, detail) VALUES (?, ?, ?, ?, ?)",
                (run_id, task_id, _now(), event, json.dumps(detail, sort_keys=True)),
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

    def record_cleanup(
        self,
        run_id: str,
        instance_ids: list[str],
        security_groups: list[str],
        detail: str,
        placement_groups: list[str] | None = None,
    ) -> str:
        """What `instbench cleanup` did to a run, in its journal; the run's status after.

        The swept instances are marked terminated, a deleted run group is forgotten, so
        are deleted placement groups, an event says what was done, and a run still
        marked `running` whose controller is gone (no process holds its lock) becomes
        `swept`.
        """
        run = self.run(run_id)
        self.mark_terminated(run_id, instance_ids)
        if run.security_group_id and run.security_group_id in security_groups:
            self.set_security_group(run_id, None)
        for name in placement_groups or []:
            self.set_placement_group(run_id, name, "deleted")
        with self._tx() as db:
            db.execute(
                "INSERT INTO events (run_id, at, event, detail) VALUES (?, ?, 'cleanup', ?)",
                (run_id, _now(), detail),
            )
        if run.status == "running" and self.run_locked_by(run_id) is None:
            self.set_run_status(run_id, "swept")
            return "swept"
        return run.status

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
