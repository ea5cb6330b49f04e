"""`instbench runs list|show` and `instbench cleanup`: what runs did, and sweeping up."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

import typer
from rich import box
from rich.table import Table

from instbench.aws.cleanup import CleanupReport, sweep
from instbench.aws.regions import check_region
from instbench.aws.session import AwsSession, AwsSettings
from instbench.context import Context
from instbench.errors import UserError
from instbench.fleet import pairs
from instbench.journal import Journal, JournalError, RunRow, default_path
from instbench.limits import parse_age

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
    ctx.console.print(runs_table(rows, f"runs in {journal.path}"))


def runs_table(rows: list[tuple[RunRow, dict[str, int]]], title: str) -> Table:
    """Runs, newest first: the run id always whole and on one line (it is what a user
    copies for --resume and cleanup), every count whole; the other columns wrap."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    widest = max((len(run.run_id) for run, _ in rows), default=3)
    table.add_column("run", no_wrap=True, min_width=widest)
    table.add_column("created", no_wrap=True)
    table.add_column("mode/region", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("tasks", no_wrap=True)
    for run, counts in rows:
        summary = "\n".join(f"{n} {_STATE_LABEL.get(s, s)}" for s, n in sorted(counts.items()))
        created = run.created_at[:16].replace("T", "\n")
        table.add_row(run.run_id, created, f"{run.mode}\n{run.region}", run.status, summary)
    return table


_STATE_LABEL = {"result_stored": "stored"}
"""Short names in the counts, so that they fit whole at 80 columns."""


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
    servers = pairs.servers_in(journal.events(run_id))
    if as_json:
        doc = {"run": asdict(run), "tasks": [asdict(t) for t in tasks], "pair_servers": servers}
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
    if servers:
        # The other instance of each pair task (the task's own is its client).
        table = Table(title="pair servers")
        for col in ("task", "server"):  # what a user greps and copies: always whole
            widest = max(len(srv["task_id" if col == "task" else "instance_id"]) for srv in servers)
            table.add_column(col, no_wrap=True, min_width=widest)
        for col in ("zone", "port", "ended"):
            table.add_column(col)
        for srv in servers:
            ended = "" if srv["ended_at"] is None else f"yes: {srv['why']}"
            port = "" if srv["port"] is None else str(srv["port"])
            table.add_row(
                srv["task_id"], srv["instance_id"], srv["availability_zone"] or "", port, ended
            )
        ctx.console.print(table)


def cleanup(
    run_id: str | None = typer.Option(None, "--run-id", help="Sweep everything of this run."),
    older_than: str | None = typer.Option(
        None, "--older-than", help="Also sweep tagged resources older than this (e.g. 2h)."
    ),
    region: list[str] = typer.Option(
        [],
        "--region",
        "-r",
        help="Region(s) to sweep (repeatable; default: the run's region in the journal, "
        "else the boto3 chain).",
    ),
    profile: str | None = typer.Option(None, "--profile", help="AWS profile."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be done."),
    journal_path: Path | None = _JOURNAL_OPT,
) -> None:
    """Terminate instances, cancel spot requests, delete security and placement groups
    instbench tagged.

    Without --run-id, only what is expired (its instbench:expires-at tag has passed) or
    older than --older-than is swept. Untagged resources are never touched. What is swept
    is recorded in the run journal (a run whose controller is gone becomes `swept`); a
    --run-id that neither the journal nor any tag knows is an error (a typo, most often).
    """
    ctx = Context()
    if run_id is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", run_id):
        raise UserError(f"invalid run id {run_id!r}: see instbench runs list")
    age = parse_age(older_than) if older_than else None
    checked = [check_region(r) for r in region]
    journal = _cleanup_journal(ctx, journal_path)
    try:
        known = _known_run(journal, run_id)
        regions: list[str | None] = list(checked) or [known.region if known else None]
        reports = [
            sweep(
                AwsSession(AwsSettings(region=name, profile=profile)),
                now=ctx.clock(),
                run_id=run_id,
                older_than=age,
                dry_run=dry_run,
                log=lambda m: ctx.console.print(m, markup=False),
            )
            for name in regions
        ]
        found = any(
            r.instances or r.spot_requests or r.security_groups or r.placement_groups
            for r in reports
        )
        if run_id is not None and known is None and not found:
            where = ", ".join(r.region for r in reports)
            source = (
                f"not in the journal {journal.path}"
                if journal
                else f"no readable journal at {journal_path or default_path(ctx.environ)}"
            )
            raise UserError(
                f"unknown run {run_id}: {source}, and nothing in {where} is tagged with it; "
                "check the id (instbench runs list) or the region (--region)"
            )
        failed = _print_reports(ctx, reports, dry_run)
        if journal is not None and not dry_run:
            _record(ctx, journal, reports, run_id if known else None)
    finally:
        if journal is not None:
            journal.close()
    if failed:
        raise typer.Exit(1)


def _cleanup_journal(ctx: Context, path: Path | None) -> Journal | None:
    """The journal cleanup records into; cleanup still sweeps without one (or a damaged one:
    ending instances matters more than bookkeeping)."""
    target = path or default_path(ctx.environ)
    if not target.exists():
        return None
    try:
        return Journal(target)
    except UserError as exc:
        ctx.err_console.print(f"warning: {exc}; sweeping without it", markup=False)
        return None


def _known_run(journal: Journal | None, run_id: str | None) -> RunRow | None:
    if journal is None or run_id is None:
        return None
    try:
        return journal.run(run_id)
    except JournalError:
        return None


def _print_reports(ctx: Context, reports: list[CleanupReport], dry_run: bool) -> bool:
    failed = False
    for report in reports:
        verb = "would sweep" if dry_run else "swept"
        ctx.console.print(
            f"{report.region}: {verb} {len(report.instances)} instances, "
            f"{len(report.spot_requests)} spot requests, "
            f"{len(report.security_groups)} security groups, "
            f"{len(report.placement_groups)} placement groups",
            soft_wrap=True,  # one line at any width: scripts and tests read it
        )
        for iid, rid, state in report.instances:
            ctx.console.print(f"  instance {iid} (run {rid}, was {state})")
        for sid, rid in report.spot_requests:
            ctx.console.print(f"  spot request {sid} (run {rid})")
        for gid, rid in report.security_groups:
            ctx.console.print(f"  security group {gid} (run {rid})")
        for name, rid in report.placement_groups:
            ctx.console.print(f"  placement group {name} (run {rid})", soft_wrap=True)
        for err in report.errors:
            ctx.err_console.print(f"  could not delete {err}")
            failed = True
    return failed


def _record(
    ctx: Context, journal: Journal, reports: list[CleanupReport], run_id: str | None
) -> None:
    """Write into the journal what was swept, run by run (the runs it knows)."""
    runs: dict[str, tuple[list[str], list[str], list[str], list[str]]] = {}
    if run_id is not None:
        runs[run_id] = ([], [], [], [])
    for report in reports:
        for iid, rid, _state in report.instances:
            runs.setdefault(rid, ([], [], [], []))[0].append(iid)
        for sid, rid in report.spot_requests:
            runs.setdefault(rid, ([], [], [], []))[1].append(sid)
        for gid, rid in report.security_groups:
            if not any(err.startswith(f"{gid}:") for err in report.errors):
                runs.setdefault(rid, ([], [], [], []))[2].append(gid)
        for name, rid in report.placement_groups:
            if not any(err.startswith(f"{name}:") for err in report.errors):
                runs.setdefault(rid, ([], [], [], []))[3].append(name)
    for rid, (instances, spots, groups, placement) in sorted(runs.items()):
        if _known_run(journal, rid) is None:
            continue
        detail = (
            f"terminated {len(instances)} instances, cancelled {len(spots)} spot requests, "
            f"deleted {len(groups)} security groups, {len(placement)} placement groups"
        )
        status = journal.record_cleanup(rid, instances, groups, detail, placement)
        ctx.console.print(
            f"journal: run {rid}: {detail} (status {status})", soft_wrap=True, markup=False
        )


def register(app: typer.Typer) -> None:
    """Mount `runs` and `cleanup`."""
    app.add_typer(runs_app, name="runs")
    app.command("cleanup")(cleanup)
