"""`instbench runs list|show` and `instbench cleanup`: what runs did, and sweeping up."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

import typer
from rich.table import Table

from instbench.aws.cleanup import sweep
from instbench.aws.regions import check_region
from instbench.aws.session import AwsSession, AwsSettings
from instbench.context import Context
from instbench.errors import UserError
from instbench.journal import Journal, JournalError, default_path

runs_app = typer.Typer(help="Runs recorded in the journal.", no_args_is_help=True)

_JOURNAL_OPT = typer.Option(
    None, "--journal", help="Run journal (default $INSTBENCH_JOURNAL or ~/.local/state/instbench)."
)


def _journal(ctx: Context, path: Path | None) -> Journal:
    target = path or default_path(ctx.environ)
    if not target.exists():
        raise UserError(f"no run journal at {target}: no run has been started from here")
    return Journal(target)


@runs_app.command("list")
def runs_list(
    journal_path: Path | None = _JOURNAL_OPT,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List runs, newest first, with their task counts by state."""
    ctx = Context()
    journal = _journal(ctx, journal_path)
    rows = []
    for run in journal.runs():
        counts: dict[str, int] = {}
        for task in journal.tasks(run.run_id):
            counts[task.state] = counts.get(task.state, 0) + 1
        rows.append((run, counts))
    if as_json:
        print(json.dumps([{**asdict(r), "tasks": c} for r, c in rows], indent=2, sort_keys=True))
        return
    table = Table(title=f"runs in {journal.path}")
    for col in ("run", "created", "mode", "region", "status", "tasks"):
        table.add_column(col)
    for run, counts in rows:
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        table.add_row(run.run_id, run.created_at[:19], run.mode, run.region, run.status, summary)
    ctx.console.print(table)


@runs_app.command("show")
def runs_show(
    run_id: str = typer.Argument(..., help="Run id (see instbench runs list)."),
    journal_path: Path | None = _JOURNAL_OPT,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show one run: every task, its state, instance and reason."""
    ctx = Context()
    journal = _journal(ctx, journal_path)
    try:
        run = journal.run(run_id)
    except JournalError as exc:
        raise UserError(f"{exc}: see instbench runs list") from exc
    tasks = journal.tasks(run_id)
    if as_json:
        doc = {"run": asdict(run), "tasks": [asdict(t) for t in tasks]}
        print(json.dumps(doc, indent=2, sort_keys=True))
        return
    ctx.console.print(f"run {run.run_id}: {run.status} ({run.mode}, {run.region})")
    table = Table()
    for col in ("task", "state", "attempt", "instance", "zone", "terminated", "result / reason"):
        table.add_column(col)
    for t in tasks:
        table.add_row(
            t.task_id,
            t.state,
            str(t.attempt),
            t.instance_id or "",
            t.availability_zone or "",
            "yes" if t.terminated else "",
            t.result_key or t.reason or "",
        )
    ctx.console.print(table)


_AGE = re.compile(r"^(\d+)([mhd])$")


def parse_age(text: str) -> timedelta:
    """'90m' / '2h' / '3d' -> timedelta."""
    match = _AGE.match(text.strip())
    if not match:
        raise UserError(f"invalid age {text!r}: use e.g. 90m, 2h or 3d")
    value, unit = int(match.group(1)), match.group(2)
    return timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: value})


def cleanup(
    run_id: str | None = typer.Option(None, "--run-id", help="Sweep everything of this run."),
    older_than: str | None = typer.Option(
        None, "--older-than", help="Also sweep tagged resources older than this (e.g. 2h)."
    ),
    region: list[str] = typer.Option(
        [], "--region", "-r", help="Region(s) to sweep (repeatable; default: boto3 chain)."
    ),
    profile: str | None = typer.Option(None, "--profile", help="AWS profile."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be done."),
) -> None:
    """Terminate instances, cancel spot requests and delete security groups instbench tagged.

    Without --run-id, only what is expired (its instbench:expires-at tag has passed) or
    older than --older-than is swept. Untagged resources are never touched.
    """
    ctx = Context()
    if run_id is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", run_id):
        raise UserError(f"invalid run id {run_id!r}: see instbench runs list")
    age = parse_age(older_than) if older_than else None
    regions: list[str | None] = [check_region(r) for r in region] or [None]
    failed = False
    for name in regions:
        session = AwsSession(AwsSettings(region=name, profile=profile))
        report = sweep(
            session,
            now=ctx.clock(),
            run_id=run_id,
            older_than=age,
            dry_run=dry_run,
            log=lambda m: ctx.console.print(m, markup=False),
        )
        verb = "would sweep" if dry_run else "swept"
        ctx.console.print(
            f"{report.region}: {verb} {len(report.instances)} instances, "
            f"{len(report.spot_requests)} spot requests, "
            f"{len(report.security_groups)} security groups"
        )
        for iid, rid, state in report.instances:
            ctx.console.print(f"  instance {iid} (run {rid}, was {state})")
        for sid, rid in report.spot_requests:
            ctx.console.print(f"  spot request {sid} (run {rid})")
        for gid, rid in report.security_groups:
            ctx.console.print(f"  security group {gid} (run {rid})")
        for err in report.errors:
            ctx.err_console.print(f"  could not delete {err}")
            failed = True
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Mount `runs` and `cleanup`."""
    app.add_typer(runs_app, name="runs")
    app.command("cleanup")(cleanup)
