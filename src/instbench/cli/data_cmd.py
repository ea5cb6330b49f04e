"""`instbench sync | aggregate | publish`: from the bucket to the published dataset.

Thin: parse options, build the library objects, render. Every bad input (missing input
directory, unwritable output, a bucket that does not exist, an unreadable price file)
is checked before work starts and ends as one line on stderr with exit code 2 (app.main);
publication writes into a staging folder and swaps it in, so nothing is half-written.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from instbench.analysis import changes
from instbench.analysis.aggregate import Summary, summarize
from instbench.analysis.documents.index import change_index
from instbench.analysis.documents.jsonform import num
from instbench.analysis.ingest import Dataset, IngestReport, ingest
from instbench.analysis.limits import check_memory_limit
from instbench.analysis.publish import publish
from instbench.analysis.write import check_output
from instbench.aws.regions import check_region
from instbench.aws.session import AwsSession, AwsSettings
from instbench.context import Context
from instbench.errors import StorageError, UserError
from instbench.prices import PriceSet, PriceSource
from instbench.storage.local import LocalStore
from instbench.storage.price_files import CachedPriceSource, FilePriceSource
from instbench.storage.sync import SyncEvent, SyncReport, sync


def register(app: typer.Typer) -> None:
    """Mount sync, aggregate and publish on the root app."""
    app.command("sync")(sync_cmd)
    app.command("aggregate")(aggregate_cmd)
    app.command("publish")(publish_cmd)


# ----------------------------------------------------------------------------- sync


def sync_cmd(
    bucket: str = typer.Option(..., "--bucket", help="Bucket holding the results."),
    prefix: str = typer.Option("raw/", "--prefix", help="Key prefix to mirror."),
    output_dir: Path = typer.Option(
        Path("data"), "--output-dir", "-o", help="Local mirror (same tree as the bucket)."
    ),
    region: str | None = typer.Option(None, "--region", "-r", help="AWS region of the bucket."),
    profile: str | None = typer.Option(None, "--profile", help="AWS profile (boto3 chain)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Mirror the bucket into the local store: only new or changed objects are fetched."""
    ctx = Context()
    session = AwsSession(AwsSettings(region=region, profile=profile))
    store = LocalStore(output_dir)
    with _local_write_errors(output_dir):
        report = _sync(ctx, session, bucket, store, prefix, as_json)
    summary = {
        "bucket": bucket,
        "prefix": prefix,
        "listed": report.listed,
        "fetched": report.fetched,
        "skipped": report.skipped,
        "bytes_fetched": report.bytes_fetched,
        "superseded": report.superseded,
        "unsafe_keys": report.unsafe,
    }
    if as_json:
        print(json.dumps(summary, indent=2, sort_keys=True))
        return
    ctx.console.print(
        f"synced s3://{bucket}/{prefix} -> {output_dir}: {report.fetched} fetched "
        f"({report.bytes_fetched} bytes), {report.skipped} unchanged of {report.listed}"
        + (f", {report.superseded} superseded copies kept" if report.superseded else "")
        + (f"; {len(report.unsafe)} unsafe keys skipped" if report.unsafe else ""),
        soft_wrap=True,
    )


def _sync(
    ctx: Context, session: AwsSession, bucket: str, store: LocalStore, prefix: str, quiet: bool
) -> SyncReport:
    if ctx.interactive and not quiet:
        with _progress(ctx) as bar:
            task = bar.add_task("sync", total=None)

            def on_event(event: SyncEvent) -> None:
                bar.update(task, total=event.total, completed=event.done)

            return sync(session, bucket, store, prefix=prefix, progress=on_event)
    step = {"next": 0}

    def on_line(event: SyncEvent) -> None:
        # Plain log lines without a TTY: every fetched object, and every 10 %.
        if event.action not in {"skipped", "adopted"}:
            ctx.err_console.print(f"{event.action} {event.key}", soft_wrap=True)
        if event.done >= step["next"] or event.done == event.total:
            ctx.err_console.print(f"{event.done}/{event.total} objects", soft_wrap=True)
            step["next"] = event.done + max(1, event.total // 10)

    return sync(session, bucket, store, prefix=prefix, progress=on_line)


@contextmanager
def _local_write_errors(output_dir: Path) -> Iterator[None]:
    """What the local file system refuses while mirroring, as one line (exit 2).

    Objects completed before the error are journaled, so the next sync after the fix
    fetches only the rest. The causes a user meets: a read-only mirror (or part of it),
    a key that is a file in the bucket and a folder of another key (raw/x and raw/x/y),
    a key whose name is too long for this file system (S3 allows 1,024 bytes).
    """
    try:
        yield
    except OSError as exc:
        where = exc.filename2 or exc.filename or output_dir  # filename2: a rename's target
        if exc.errno in (errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            hint = (
                "two keys clash (one is a file in the bucket, the other a folder of the same "
                "name); sync them with --prefix apart, or into another --output-dir"
            )
        elif exc.errno == errno.ENAMETOOLONG:
            hint = (
                "a key is longer than this file system allows, so it cannot be mirrored here; "
                "sync the other keys with --prefix"
            )
        elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            hint = "make the mirror writable, or pass another --output-dir"
        elif exc.errno == errno.ENOSPC:
            hint = "the disk is full: free space, or pass another --output-dir"
        else:
            hint = "pass another --output-dir"
        raise StorageError(f"cannot write {where}: {exc.strerror or exc}; {hint}") from exc


def _progress(ctx: Context) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=ctx.err_console,
        transient=True,
    )


_RESCAN_HELP = (
    "Stat every raw file again instead of only the directories that changed: for a mirror "
    "whose files were edited in place. The cache it updates serves later commands too."
)


_MEMORY_HELP = (
    "Bound DuckDB's memory during ingest and publication (e.g. 1GB, 512MiB); what does not "
    "fit is spilled to disk beside the ingest cache. Default: DuckDB's, 80% of the machine."
)


def _ingest(
    ctx: Context, root: Path, quiet: bool, rescan: bool, memory_limit: str | None = None
) -> Dataset:
    if not ctx.interactive or quiet:
        return ingest(root, rescan=rescan, memory_limit=memory_limit)
    with _progress(ctx) as bar:
        task = bar.add_task("validating new results", total=None)

        def on_progress(done: int, total: int) -> None:
            bar.update(task, total=total, completed=done)

        return ingest(root, progress=on_progress, rescan=rescan, memory_limit=memory_limit)


# ------------------------------------------------------------------------ aggregate


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def summaries_table(title: str, rows: list[Summary]) -> Table:
    """One row per type x test x thread mode: n, centre, interval, spreads, per-vCPU."""
    table = Table(title=title, box=None, pad_edge=False)
    for name, justify in (
        ("instance type", "left"),
        ("test", "left"),
        ("threads", "left"),
        ("n", "right"),
        ("median", "right"),
        ("mean", "right"),
        ("95% CI", "right"),
        ("CV between", "right"),
        ("CV within", "right"),
        ("per vCPU", "right"),
        ("per GiB", "right"),
    ):
        table.add_column(name, justify=justify, no_wrap=name != "instance type")  # type: ignore[arg-type]
    for s in rows:
        ci = "-" if s.ci_low is None else f"{s.ci_low:.2f}–{s.ci_high:.2f}"
        table.add_row(
            s.instance_type,
            s.test,
            s.thread_mode,
            str(s.n),
            _fmt(s.median),
            _fmt(s.mean),
            ci,
            _pct(s.cv),
            _pct(s.within_cv),
            _fmt(s.per_vcpu),
            _fmt(s.per_gib),
        )
    return table


def _ingest_json(report: IngestReport) -> dict[str, Any]:
    return {
        "files": report.files,
        "validated_now": report.validated_now,
        "listed_dirs": report.listed_dirs,
        "accepted": report.accepted,
        "duplicates": report.duplicates,
        "rejected": report.rejected,
        "rejections": [{"key": k, "reason": r} for k, r in report.rejections],
    }


def aggregate_cmd(
    input_dir: Path = typer.Option(
        Path("data"), "--input", "-i", help="Local mirror holding raw/ (see instbench sync)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print statistics as JSON."),
    include_sandbox: bool = typer.Option(
        False,
        "--include-sandbox",
        help="Count sandbox, local and quick-mode results too (demos and tests).",
    ),
    rescan: bool = typer.Option(False, "--rescan", help=_RESCAN_HELP),
    memory_limit: str | None = typer.Option(None, "--memory-limit", help=_MEMORY_HELP),
) -> None:
    """Validate the mirror and print statistics per instance type, benchmark and kernel."""
    ctx = Context()
    check_memory_limit(memory_limit)
    with _ingest(ctx, input_dir, as_json, rescan, memory_limit) as dataset:
        rows = summarize(dataset.con, include_sandbox=include_sandbox)
        detected = changes.detect(
            changes.series_cells(dataset.con, include_sandbox=include_sandbox)
        )
        report = dataset.report
    if as_json:
        groups = []
        for s in rows:
            d = s.as_dict()
            groups.append({k: num(v) if isinstance(v, float) else v for k, v in d.items()})
        out = {
            "ingest": _ingest_json(report),
            "groups": groups,
            **change_index(detected),
        }
        print(json.dumps(out, indent=2, sort_keys=True))
        return
    by_metric: dict[tuple[str, str, str], list[Summary]] = {}
    for s in rows:
        by_metric.setdefault((s.benchmark, s.metric, s.unit), []).append(s)
    for (bench, metric, unit), group in sorted(by_metric.items()):
        ctx.console.print(summaries_table(f"{bench} {metric} ({unit})", group))
        ctx.console.print()
    if not rows:
        ctx.console.print(
            "no publishable results"
            + (
                ""
                if include_sandbox
                else " (sandbox, local and quick results need --include-sandbox)"
            )
        )
    ctx.console.print(
        f"{report.files} files: {report.accepted} accepted, {report.duplicates} duplicates, "
        f"{report.rejected} rejected (see quarantine/)",
        soft_wrap=True,
    )
    for key, reason in report.rejections[:10]:
        ctx.console.print(f"  rejected {key}: {reason}", soft_wrap=True, markup=False)
    for line in change_lines(detected):
        ctx.console.print(line, soft_wrap=True, markup=False)


def change_lines(report: changes.ChangeReport) -> list[str]:
    """One line per regression and CPU-mix change, and how many series were not tested."""
    lines = []
    for c in report.regressions:
        model = c.cpu_model or "all CPU models"
        lines.append(
            f"regression: {c.instance_type} {c.benchmark} {c.test} {c.thread_mode} "
            f"{c.metric} ({model}) from {c.window}: {100 * c.change:+.1f}% "
            f"[{100 * c.ci_low:+.1f}%, {100 * c.ci_high:+.1f}%] vs {c.first_window}.."
            f"{c.previous_window} (q={c.q_value:.2g})"
        )
    for m in report.mix_changes:
        lines.append(
            f"not a regression: {m.instance_type} {m.benchmark} {m.test} {m.thread_mode} "
            f"{m.metric} {m.window}: {m.message}, all models pooled {100 * m.change:+.1f}%"
        )
    if report.untested:
        lines.append(
            f"{len(report.untested)} series not tested for changes (too few samples; "
            "the reasons are in index.json `untested`)"
        )
    return lines


# -------------------------------------------------------------------------- publish


def _price_source(
    prices: Path | None, aws_prices: bool, price_region: str, profile: str | None, cache: Path
) -> PriceSource | None:
    if prices and aws_prices:
        raise UserError("pass either --prices FILE or --aws-prices, not both")
    if prices:
        if not prices.is_file():
            raise UserError(f"price file {prices} does not exist")
        return FilePriceSource(prices)
    if aws_prices:
        from instbench.aws.pricing import PRICING_REGION, AwsPriceSource

        pricing = AwsSession(AwsSettings(region=PRICING_REGION, profile=profile))
        ec2 = AwsSession(AwsSettings(region=price_region, profile=profile))
        return CachedPriceSource(AwsPriceSource(pricing, ec2), cache)
    return None


def publish_cmd(
    input_dir: Path = typer.Option(
        Path("data"), "--input", "-i", help="Local mirror holding raw/ (see instbench sync)."
    ),
    output_dir: Path = typer.Option(
        Path("data/processed"), "--output", "-o", help="Publication directory (latest/, weeks)."
    ),
    include_sandbox: bool = typer.Option(
        False,
        "--include-sandbox",
        help="Publish sandbox, local and quick-mode results too (demos and tests only).",
    ),
    prices: Path | None = typer.Option(
        None, "--prices", help="JSON price file (format: instbench/prices.py)."
    ),
    aws_prices: bool = typer.Option(
        False, "--aws-prices", help="Read prices from the AWS Pricing and EC2 APIs (cached daily)."
    ),
    price_region: str = typer.Option(
        "us-east-1", "--price-region", help="Region whose prices are published."
    ),
    profile: str | None = typer.Option(None, "--profile", help="AWS profile for --aws-prices."),
    as_json: bool = typer.Option(False, "--json", help="Print index.json instead of a summary."),
    rescan: bool = typer.Option(False, "--rescan", help=_RESCAN_HELP),
    min_effect: float = typer.Option(
        changes.MIN_EFFECT,
        "--min-effect",
        help="Smallest relative change of a mean reported as a change point (0.05 = 5 %).",
    ),
    memory_limit: str | None = typer.Option(None, "--memory-limit", help=_MEMORY_HELP),
    csv: bool = typer.Option(
        False,
        "--csv",
        help="Also write latest/tidy.csv, the whole tidy table as one CSV file (390 MB at "
        "100,000 results; the Parquet partitions under latest/tidy/ hold the same rows).",
    ),
) -> None:
    """Validate the mirror and write the ComputeCompass files, exports and summaries."""
    ctx = Context()
    if not 0.0 <= min_effect < 1.0:
        raise UserError(f"--min-effect must be a fraction in [0, 1) such as 0.05, not {min_effect}")
    check_memory_limit(memory_limit)
    if not input_dir.is_dir():
        raise UserError(f"input directory {input_dir} does not exist")
    check_region(price_region)
    check_output(output_dir)
    source = _price_source(
        prices, aws_prices, price_region, profile, input_dir / ".instbench" / "prices"
    )
    with _ingest(ctx, input_dir, as_json, rescan, memory_limit) as dataset:
        price_set: PriceSet | None = None
        if source is not None:
            types = [
                str(r[0])
                for r in dataset.con.execute(
                    "SELECT DISTINCT instance_type FROM accepted_rows ORDER BY 1"
                ).fetchall()
            ]
            price_set = source.prices(types, price_region)
        publication = publish(
            dataset,
            output_dir,
            include_sandbox=include_sandbox,
            prices=price_set,
            min_effect=min_effect,
            csv=csv,
        )
    index = publication.index
    if as_json:
        print(json.dumps(index, indent=2, sort_keys=True))
        return
    held = index["heldBack"]
    ingest_counts = index["ingest"]
    ctx.console.print(
        f"published {output_dir}/latest: "
        + ", ".join(f"{name} {len(held[name])} held back" for name in sorted(held))
        + f"; {ingest_counts['accepted']} results, {ingest_counts['rejected']} rejected, "
        f"{ingest_counts['duplicates']} duplicates"
        + (f", excluded {ingest_counts['excluded']}" if ingest_counts["excluded"] else "")
        + f"; {len(index['regressions'])} regressions, {len(index['cpuMixChanges'])} CPU-mix "
        f"changes, {len(index['untested'])} series not tested for changes"
        + (
            "; nothing changed since the previous publication (same sourceDigest, every "
            "file intact): left as it is"
            if publication.unchanged
            else "; tidy exports unchanged (same inputs), kept from the previous publication"
            if publication.reused_exports
            else f"; {publication.partitions_written} of {publication.partitions} tidy "
            "partitions written (the others unchanged, linked)"
        ),
        soft_wrap=True,
        markup=False,
    )
