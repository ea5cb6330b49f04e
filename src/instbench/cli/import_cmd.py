"""`instbench import legacy PATH`: the earlier Go collector's results into the mirror.

Thin: parse options, call analysis.legacy_import, render its counts as a Rich table.
Bad input (a path that does not exist or is not a directory, an unwritable output) is
one line and exit code 2 (app.main); a bad file is quarantined with its reason.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import typer
from rich.table import Table

from instbench.analysis.legacy_import import ImportReport, import_legacy
from instbench.aws import discovery, regions
from instbench.aws.session import AwsSession, AwsSettings
from instbench.context import Context
from instbench.errors import UserError

import_app = typer.Typer(
    help="Bring results of other collectors into the mirror, as their own series.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Mount `import` on the root app."""
    app.add_typer(import_app, name="import")


def summary_table(report: ImportReport) -> Table:
    """found / imported / already imported / quarantined (by reason) / flagged."""
    title = "Legacy import (dry run, nothing written)" if report.dry_run else "Legacy import"
    table = Table(title=title, caption=f"from {report.source}")
    table.add_column("outcome")
    table.add_column("files", justify="right")
    table.add_row("found", str(report.found))
    table.add_row(
        "imported" + (" (would be)" if report.dry_run else ""), str(report.count("imported"))
    )
    table.add_row("already imported", str(report.count("already imported")))
    table.add_row("quarantined", str(report.count("quarantined")))
    for reason, n in report.quarantined_by_reason():
        table.add_row(f"  {reason}", str(n))
    flagged = report.flagged()
    if flagged:
        table.add_row("accepted with flags (shown in the report)", "")
        for code, n in flagged:
            table.add_row(f"  {code}", str(n))
    return table


@import_app.command("legacy")
def legacy_cmd(
    path: Path = typer.Argument(
        ..., help="The old Go collector's checkout (its results/ is read) or a directory."
    ),
    output_dir: Path = typer.Option(
        Path("data"), "--output-dir", "-o", help="Local mirror (same tree as the bucket)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the counts, write nothing."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="One line per file, too."),
    describe_types: bool = typer.Option(
        False,
        "--describe-types",
        help="Take each type's architecture from DescribeInstanceTypes (read-only AWS "
        "call); without it, from the offline name parser. Never from the file.",
    ),
    region: str | None = typer.Option(
        None, "--region", "-r", help="Region for --describe-types (default: boto3 chain)."
    ),
    profile: str | None = typer.Option(
        None, "--profile", help="AWS profile for --describe-types (default: boto3 chain)."
    ),
) -> None:
    """Import the Go collector's result files as legacy-* series (never pooled with ours)."""
    ctx = Context()
    describe = None
    if describe_types:
        if region is not None:
            regions.check_region(region)
        session = AwsSession(AwsSettings(region=region, profile=profile))
        regions.check_region(session.region)
        describe = partial(discovery.known_architectures, session)
    elif region is not None or profile is not None:
        raise UserError("--region and --profile are for --describe-types: add it, or drop them")
    report = import_legacy(path, output_dir, dry_run=dry_run, describe=describe)
    if verbose:
        for o in report.outcomes:
            detail = o.reason or o.key
            if o.flags:
                detail += f" [flags: {', '.join(o.flags)}]"
            ctx.console.print(f"{o.status}: {o.path}: {detail}", markup=False, highlight=False)
    ctx.console.print(summary_table(report))
