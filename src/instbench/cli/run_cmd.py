"""`instbench run`: benchmark this machine (--local), a fleet on EC2, or the sandbox."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.live import Live
from rich.table import Table

from instbench.aws import launch
from instbench.aws.session import AwsSession, AwsSettings
from instbench.benchmarks import registry
from instbench.cli.render import stream_table
from instbench.context import Context
from instbench.errors import UserError
from instbench.fleet import cost, model
from instbench.fleet.plan import FleetOptions, Plan
from instbench.fleet.run import (
    Target,
    credentials_warning,
    execute,
    is_loopback_endpoint,
    open_target,
    options_from_journal,
    plan_run,
    suite_timeout_warning,
)
from instbench.fleet.status import FleetOutcome, TaskStatus
from instbench.instance_types import split_type_list
from instbench.journal import Journal, default_path
from instbench.limits import AgentNumbers, parse_duration
from instbench.local_run import LocalRunOptions, parse_benchmarks, run_local
from instbench.results.schema import NetworkResult, ResultDocument, StorageResult
from instbench.run_params import describe as describe_params
from instbench.run_params import parse_run_params
from instbench.suites import LoadedSuite, SuiteArtifact, load_suite


def parse_data_volume(text: str | None) -> launch.DataVolume:
    """--data-volume 'GIB,IOPS,MIBPS' -> a checked DataVolume (UserError, one line)."""
    if text is None:
        return launch.DataVolume()
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
        raise UserError(f"--data-volume {text!r}: use GIB,IOPS,MIBPS, e.g. 100,16000,1000")
    size, iops, mibps = (int(p) for p in parts)
    volume = launch.DataVolume(size_gib=size, iops=iops, throughput_mibps=mibps)
    volume.check()
    return volume


def run(
    instance_types: str | None = typer.Option(
        None, "--instance-types", "-t", help="Comma-separated EC2 types, e.g. m7i.large,c7g.large."
    ),
    local: bool = typer.Option(False, "--local", help="Benchmark this machine directly (no AWS)."),
    sandbox: bool = typer.Option(
        False,
        "--sandbox",
        help="Run the whole flow offline: moto plays AWS, this machine the instances.",
    ),
    region: str | None = typer.Option(
        None,
        "--region",
        "-r",
        help="AWS region (default: boto3 chain). With --sandbox: the region simulated "
        "(default us-east-1), recorded in each result as on AWS.",
    ),
    profile: str | None = typer.Option(
        None,
        "--profile",
        help="AWS profile (boto3 chain). With --sandbox it is accepted and not read: the "
        "sandbox has its own credentials, so the profile need not exist here.",
    ),
    bucket: str | None = typer.Option(None, "--bucket", help="Results bucket (required on AWS)."),
    subnet: str | None = typer.Option(
        None, "--subnet", help="Subnet id(s), comma-separated, same VPC (default: default VPC)."
    ),
    security_group: str | None = typer.Option(
        None,
        "--security-group",
        help="Security group id (default: one created for the run, no inbound rules).",
    ),
    key_pair: str | None = typer.Option(
        None, "--key-pair", help="Key pair, only for debugging access."
    ),
    ami: str | None = typer.Option(
        None, "--ami", help="AMI id (default: latest Amazon Linux 2023)."
    ),
    runtime: str = typer.Option(
        "zipapp",
        "--runtime",
        metavar="[zipapp|container]",
        help="How instances run the agent: zipapp (fetched by presigned URL, the default) "
        "or container (docker pulls and runs --image).",
    ),
    image: str | None = typer.Option(
        None,
        "--image",
        metavar="URI",
        help="Agent image for --runtime container: REGISTRY/REPO[:TAG][@sha256:DIGEST], "
        "built from the Dockerfile. Must be public (e.g. public.ecr.aws/ALIAS/REPO:TAG): "
        "instances have no credentials, so private ECR images are refused.",
    ),
    max_concurrency: int = typer.Option(5, "--max-concurrency", min=1, help="Instances at once."),
    benchmarks: str | None = typer.Option(
        None,
        "--benchmarks",
        "-b",
        help="Comma-separated benchmarks (default: stream; none when --suite is given).",
    ),
    suite: Path | None = typer.Option(
        None,
        "--suite",
        metavar="FILE.toml",
        help="Run the user-defined suite in FILE.toml (locally, or on every instance type "
        "as one more task per type and sample, stored under raw/suite/; with --benchmarks "
        "those run as their own tasks too): commands as argv lists (a shell only with "
        "shell = true), each value read from JSON output or a regex named group, with "
        "unit, higher_is_better, timeout_s, repeats and requirements. The file is "
        "validated before anything runs or is created; instances fetch it by presigned "
        "URL and check its sha256, it never enters the user data. See examples/suites/.",
    ),
    samples: int = typer.Option(
        1, "--samples", min=1, help="Instances per type (independent samples)."
    ),
    timeout: str = typer.Option(
        "20m",
        "--timeout",
        help="Per-task timeout; the on-instance watchdog too. A fleet run warns when its "
        "suite's worst case (timeout_s x repeats, plus 5 min of set-up) is longer.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Validate and print the plan; launch nothing."
    ),
    vcpu_budget: int | None = typer.Option(
        None,
        "--vcpu-budget",
        min=1,
        help="Most vCPUs running at once, over all types (the account's quotas apply too).",
    ),
    max_cost: float | None = typer.Option(
        None,
        "--max-cost",
        metavar="USD",
        help="Refuse the run if its estimated upper-bound cost is above this (see --dry-run).",
    ),
    data_volume: str | None = typer.Option(
        None,
        "--data-volume",
        metavar="GIB,IOPS,MIBPS",
        help="storage benchmark: the empty gp3 volume each storage task gets "
        "(default 100,16000,1000: size GiB, IOPS, throughput MiB/s).",
    ),
    spot: bool = typer.Option(
        False,
        "--spot",
        help="Launch spot instances. Interruptions are detected (state reason) and recorded "
        "in each result with the hourly price.",
    ),
    spot_max_price: str | None = typer.Option(
        None,
        "--spot-max-price",
        metavar="USD",
        help="With --spot: most to pay per instance-hour (default: up to the on-demand price).",
    ),
    spot_fallback: str | None = typer.Option(
        None,
        "--spot-fallback",
        metavar="on-demand",
        help="With --spot: when spot has no capacity or reclaims the instance, run the task "
        "on-demand instead of failing it.",
    ),
    output_dir: Path = typer.Option(
        Path("data"), "--output-dir", "-o", help="Local store (the bucket's mirror)."
    ),
    quick: bool = typer.Option(
        False, "--quick", help="Small arrays, few trials: tests and demos; never published."
    ),
    array_size: int | None = typer.Option(
        None, "--array-size", min=1, help="STREAM elements per array."
    ),
    ntimes: int | None = typer.Option(
        None, "--ntimes", min=2, help="STREAM trials per kernel (default 20)."
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="Threads for the all-CPU run."
    ),
    param: list[str] | None = typer.Option(
        None,
        "--param",
        metavar="BENCH.NAME=VALUE",
        help="A benchmark parameter, repeatable (e.g. --param linpack.n=3000): checked "
        "against its declared type and range (instbench benchmarks describe BENCH), "
        "recorded in each result. --array-size/--ntimes/--threads are STREAM's.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
    no_metrics: bool = typer.Option(
        False, "--no-metrics", help="Do not publish CloudWatch metrics for this run."
    ),
    resume: str | None = typer.Option(
        None, "--resume", help="Resume a run from the journal: collect, re-attach, launch the rest."
    ),
    journal_path: Path | None = typer.Option(
        None,
        "--journal",
        help="Run journal (default $INSTBENCH_JOURNAL or ~/.local/state/instbench).",
    ),
) -> None:
    """Run benchmarks and store every result under --output-dir (never overwritten).

    --local benchmarks this machine. With --instance-types, instances are launched on EC2
    (or in the sandbox with --sandbox), each runs the agent from its user data and uploads
    its result; the controller validates and stores it, and terminates every instance.
    """
    ctx = Context()
    if resume and (spot or spot_max_price is not None or spot_fallback is not None):
        raise UserError("--resume keeps the run's spot options: pass only --resume ID")
    if resume and (vcpu_budget is not None or max_cost is not None):
        raise UserError(
            "--resume keeps the run's --vcpu-budget and --max-cost: pass only --resume ID"
        )
    if resume and (param or array_size is not None or ntimes is not None or threads is not None):
        raise UserError(
            "--resume keeps the run's benchmark parameters (--param, --array-size, --ntimes, "
            "--threads): pass only --resume ID"
        )
    if resume:
        if local or sandbox or instance_types or runtime != "zipapp" or image:
            raise UserError("--resume takes its options from the journal: pass only --resume ID")
        if suite is not None or benchmarks is not None:
            raise UserError(
                "--resume keeps the run's --benchmarks and --suite (the suite as it was "
                "planned): pass only --resume ID"
            )
        _resume(ctx, resume, profile, output_dir, as_json, journal_path)
        return
    # Without --benchmarks: stream, unless a suite is given (then the suite alone).
    if benchmarks is None:
        benches: tuple[str, ...] = () if suite is not None else ("stream",)
    else:
        benches = parse_benchmarks(benchmarks)
    timeout_s = parse_duration(timeout)
    AgentNumbers(array_size, ntimes, threads).check()  # --local too; fleets: FleetOptions
    params = parse_run_params(
        param or [],
        benches,
        {"--array-size": array_size, "--ntimes": ntimes, "--threads": threads},
    )
    # Validated here, before the sandbox starts or anything is planned or created.
    loaded_suite = load_suite(suite) if suite is not None else None
    if local:
        if instance_types or sandbox:
            raise UserError("--local benchmarks this machine: drop --instance-types/--sandbox")
        if runtime != "zipapp" or image:
            raise UserError("--local runs the agent here directly: drop --runtime/--image")
        _run_local(ctx, output_dir, benches, quick, params, as_json, loaded_suite)
        return
    if not instance_types:
        raise UserError("pass --instance-types m7i.large,... (or --local for this machine)")
    types = split_type_list(instance_types)
    opts = FleetOptions(
        instance_types=types,
        benchmarks=benches,
        bucket=bucket or "",
        samples=samples,
        subnets=[s.strip() for s in subnet.split(",")] if subnet else [],
        security_group=security_group,
        key_pair=key_pair,
        ami_id=ami,
        max_concurrency=max_concurrency,
        timeout_s=timeout_s,
        quick=quick,
        params=params,
        vcpu_budget=vcpu_budget,
        max_cost=max_cost,
        collection_method="sandbox" if sandbox else "aws",
        runtime=runtime,
        image=image,
        market="spot" if spot else "on-demand",
        spot_max_price=spot_max_price,
        spot_fallback=spot_fallback,
        suite=SuiteArtifact.from_loaded(loaded_suite) if loaded_suite is not None else None,
        data_volume=parse_data_volume(data_volume),
    )
    if not sandbox and not bucket:
        raise UserError("pass --bucket NAME: the results bucket the instances upload to")
    pairs = any(registry.info(name).instances > 1 for name in opts.benchmarks)
    target = Target(
        AwsSettings(region=region, profile=profile),
        sandbox=sandbox,
        max_parallel=2 if pairs else 1,
    )
    local_cloud = sandbox or is_loopback_endpoint(target.settings, ctx.environ)
    if local_cloud:
        opts.collection_method = "sandbox"
    log = _logger(ctx)
    with open_target(target, log) as (session, sandbox_bucket):
        if sandbox_bucket and not bucket:
            opts.bucket = sandbox_bucket
        plan = plan_run(session, opts, ctx.clock())
        _print_plan(ctx, plan)
        suite_warning = suite_timeout_warning(plan)
        if suite_warning:
            _notice(suite_warning)
        if dry_run:
            _print_cost(ctx, session, plan)
            ctx.console.print("dry run: nothing launched")
            return
        warning = credentials_warning(session, plan, ctx.clock())
        if warning:
            _notice(warning)
        journal = Journal(journal_path or default_path(ctx.environ))
        try:
            mode = "sandbox" if sandbox else ("endpoint" if local_cloud else "aws")
            outcome = _execute_with_view(
                ctx,
                session,
                plan,
                journal,
                output_dir,
                local_cloud,
                metrics=not no_metrics,
                mode=mode,
            )
        finally:
            journal.close()
    _print_summary(ctx, outcome, as_json)
    if outcome.interrupted:
        raise typer.Exit(130)
    if not outcome.succeeded:
        raise typer.Exit(1)


def _resume(
    ctx: Context,
    run_id: str,
    profile: str | None,
    output_dir: Path,
    as_json: bool,
    journal_path: Path | None,
) -> None:
    path = journal_path or default_path(ctx.environ)
    if not path.exists():
        raise UserError(f"no run journal at {path}: nothing to resume")
    journal = Journal(path)
    try:
        opts, region, _mode = options_from_journal(journal, run_id)
        session = AwsSession(AwsSettings(region=region, profile=profile))
        plan = plan_run(session, opts, ctx.clock(), run_id=run_id)
        local_cloud = is_loopback_endpoint(session.settings, ctx.environ)
        outcome = _execute_with_view(
            ctx, session, plan, journal, output_dir, local_cloud, resume=True
        )
    finally:
        journal.close()
    _print_summary(ctx, outcome, as_json)
    if not outcome.succeeded:
        raise typer.Exit(130 if outcome.interrupted else 1)


def _logger(ctx: Context) -> Callable[[str], None]:
    def log(message: str) -> None:
        ctx.err_console.print(message, markup=False, highlight=False)

    return log


def _run_local(
    ctx: Context,
    output_dir: Path,
    benches: tuple[str, ...],
    quick: bool,
    params: dict[str, dict[str, Any]],
    as_json: bool,
    suite: LoadedSuite | None = None,
) -> None:
    """One agent run per benchmark (as on EC2: one document per benchmark), then one of
    the suite, when there is one (also as on EC2: the suite is a task of its own)."""
    docs = []
    echo = ctx.err_console.print if as_json else ctx.console.print
    runs: list[tuple[tuple[str, ...], LoadedSuite | None]] = [((bench,), None) for bench in benches]
    if suite is not None:
        runs.append(((), suite))
    for names, run_suite in runs:
        opts = LocalRunOptions(
            output_dir=output_dir,
            benchmarks=names,
            quick=quick,
            params=params,
            suite=run_suite,
        )
        result = run_local(opts, on_line=lambda line: echo(line, markup=False, highlight=False))
        docs.append(result.document.model_dump(mode="json"))
        if not as_json:
            if result.document.performance_data.stream is not None:
                ctx.console.print(stream_table(result.document))
            ctx.console.print(f"stored: {result.path}")
    if as_json:
        print(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2, sort_keys=True))


def _print_plan(ctx: Context, plan: Plan) -> None:
    table = Table(title=f"plan {plan.run_id} ({plan.region})")
    task_width = max((len(t.task_id) for t in plan.tasks), default=4)
    for col in ("task", "type", "arch", "instances", "vCPUs", "benchmark", "AMI"):
        # A task id is what a user greps the journal and the results for: never cut.
        table.add_column(
            col, no_wrap=col == "task", min_width=task_width if col == "task" else None
        )
    for t in plan.tasks:
        table.add_row(
            t.task_id,
            t.instance_type,
            t.architecture,
            str(t.instances),
            str(t.held_vcpus),
            t.benchmark,
            t.image_id,
        )
    ctx.console.print(table)
    zones = ", ".join(sorted({p.availability_zone for p in plan.placements}))
    ctx.console.print(
        f"{len(plan.tasks)} tasks, {plan.total_vcpus} vCPUs in all, at most "
        f"{plan.options.max_concurrency} at once; zones: {zones}; bucket: {plan.options.bucket}"
    )
    if plan.options.params:
        ctx.console.print(
            f"parameters: {describe_params(plan.options.params)}",
            soft_wrap=True,
            markup=False,
            highlight=False,
        )


def _usd(value: float) -> str:
    return f"{value:.2f}" if value >= 1 else f"{value:.4f}"


def _print_cost(ctx: Context, session: AwsSession, plan: Plan) -> None:
    """The dry run's price tag and vCPU limits: per task and in all (see fleet.cost)."""
    estimate = plan.cost or cost.estimate_plan(
        plan, cost.price_source(session, plan.options, ctx.environ)
    )
    table = Table(title=f"estimated cost, upper bound ({plan.options.market}, {plan.region})")
    bursts = any(t.burst_s for t in estimate.tasks)
    columns = ["task", "type", "instances", "vCPUs", "duration ≤", "USD/h", "cost ≤ USD"]
    if bursts:
        # storage: the EBS burst run; network: an 'Up to' type's burst run (both sides).
        kinds = {
            "EBS" if t.benchmark == "storage" else t.benchmark for t in estimate.tasks if t.burst_s
        }
        columns.append(f"of which {'/'.join(sorted(kinds))} burst run")
    task_width = max((len(t.task_id) for t in estimate.tasks), default=4)
    for col in columns:
        table.add_column(
            col,
            justify="left" if col in ("task", "type") else "right",
            no_wrap=col == "task",
            min_width=task_width if col == "task" else None,
        )
    for t in estimate.tasks:
        cost_usd = t.cost_usd
        row = [
            t.task_id,
            t.instance_type,
            str(t.instances),
            str(t.vcpus),
            f"{t.seconds / 60:.0f} min",
            "price unknown" if (hourly := t.task_hourly_usd) is None else _usd(hourly),
            "price unknown" if cost_usd is None else _usd(cost_usd),
        ]
        if bursts:
            burst_usd = t.burst_cost_usd
            row.append(
                ""
                if not t.burst_s
                else f"{t.burst_s / 60:.0f} min, "
                + ("price unknown" if burst_usd is None else f"{_usd(burst_usd)} USD")
            )
        table.add_row(*row)
    ctx.console.print(table)
    total = estimate.total_usd
    if estimate.free:
        line = f"estimated cost: 0 USD ({model.SANDBOX_SOURCE})"
    elif total is None:
        line = (
            f"estimated cost: price unknown for {', '.join(estimate.unknown_types)} "
            f"({estimate.unknown_reason}); the priced tasks cost at most "
            f"{_usd(estimate.known_usd)} USD"
        )
    else:
        line = (
            f"estimated cost: at most {_usd(total)} USD in all ({estimate.basis}; "
            f"prices of {estimate.as_of} from {estimate.source})"
        )
    ctx.console.print(line, soft_wrap=True, markup=False, highlight=False)
    limits = [
        f"{key} quota {'none known' if limit is None else limit}"
        for key, limit in sorted(plan.vcpu_limits.items())
    ]
    if plan.options.vcpu_budget is not None:
        limits.append(f"--vcpu-budget {plan.options.vcpu_budget}")
    ctx.console.print(f"vCPU limits: {'; '.join(limits)}", soft_wrap=True, markup=False)


def _status_table(statuses: list[TaskStatus]) -> Table:
    table = Table()
    for col in ("task", "state", "instance", "zone", "elapsed", "detail"):
        table.add_column(col)
    now = time.monotonic()
    for s in statuses:
        table.add_row(
            s.task.task_id,
            s.state,
            s.instance_id or "",
            s.availability_zone or "",
            f"{s.elapsed(now):.0f}s",
            s.detail[:80],
        )
    return table


def _execute_with_view(
    ctx: Context,
    session: AwsSession,
    plan: Plan,
    journal: Journal,
    output_dir: Path,
    sandbox: bool,
    resume: bool = False,
    metrics: bool = True,
    mode: str | None = None,
) -> FleetOutcome:
    statuses: list[TaskStatus] = []
    if ctx.interactive:
        with Live(console=ctx.console, refresh_per_second=4, transient=False) as live:

            def on_change(status: TaskStatus) -> None:
                if status not in statuses:
                    statuses.append(status)
                live.update(_status_table(sorted(statuses, key=lambda s: s.task.task_id)))

            return execute(
                session,
                plan,
                journal,
                output_dir,
                on_change,
                sandbox,
                resume,
                metrics,
                mode,
                notice=_notice,
            )

    def on_line(status: TaskStatus) -> None:
        where = f" {status.instance_id}" if status.instance_id else ""
        detail = f": {status.detail}" if status.detail else ""
        print(
            f"[{status.elapsed():6.1f}s] {status.task.task_id} {status.state}{where}{detail}",
            flush=True,
        )

    return execute(
        session, plan, journal, output_dir, on_line, sandbox, resume, metrics, mode, _notice
    )


def _notice(message: str) -> None:
    """Messages that must reach the user at once, whatever the view (stderr, flushed)."""
    print(message, file=sys.stderr, flush=True)


def _print_summary(ctx: Context, outcome: FleetOutcome, as_json: bool) -> None:
    if as_json:
        print(
            json.dumps(
                {
                    "run_id": outcome.run_id,
                    "succeeded": outcome.succeeded,
                    "tasks": [
                        {
                            "task_id": s.task.task_id,
                            "state": s.state,
                            "result_key": s.result_key,
                            "reason": s.detail or None,
                        }
                        for s in outcome.statuses
                    ],
                },
                indent=2,
                sort_keys=True,
            )
        )
        return
    table = Table(title=f"run {outcome.run_id}")
    for col in ("task", "state", "elapsed", "headline", "reason"):
        table.add_column(col)
    for s in outcome.statuses:
        headline = _headline(s.document) if s.document is not None else ""
        table.add_row(s.task.task_id, s.state, f"{s.elapsed():.0f}s", headline, s.detail)
    ctx.console.print(table)
    stored = sum(1 for s in outcome.statuses if s.state == "result_stored")
    ctx.console.print(
        f"{stored}/{len(outcome.statuses)} results stored in {outcome.local_root}/raw/ "
        f"and s3://{outcome.bucket}/raw/"
    )
    if outcome.leftover_group:
        ctx.console.print(
            f"security group {outcome.leftover_group} is still in use; "
            f"instbench cleanup --run-id {outcome.run_id} removes it later"
        )
    if outcome.leftover_placement_groups:
        ctx.console.print(
            f"placement group(s) {', '.join(outcome.leftover_placement_groups)} still in use; "
            f"instbench cleanup --run-id {outcome.run_id} removes them later"
        )
    if outcome.terminated:
        ctx.console.print(f"terminated at the end: {', '.join(outcome.terminated)}")
    for s in outcome.failures:
        ctx.console.print(f"FAILED {s.task.task_id}: {s.detail or s.state}", style="red")
    if outcome.interrupted:
        print("interrupted: instances terminated; check with instbench cleanup", file=sys.stderr)


def _headline(doc: ResultDocument) -> str:
    """One measured figure per benchmark for the summary table."""
    perf = doc.performance_data
    if perf.stream is not None:
        runs = {r.thread_mode: r for r in perf.stream.runs}
        triad = " / ".join(
            f"{runs[m].kernels['triad'].best_gbps:.1f}" for m in ("all", "single") if m in runs
        )
        return f"Triad {triad} GB/s (all / 1 thread)"
    if perf.latency is not None and perf.latency.memory is not None:
        return f"memory latency {perf.latency.memory.latency_ns:.0f} ns"
    if perf.storage is not None:
        return _storage_headline(perf.storage)
    if perf.network is not None:
        return _network_headline(perf.network)
    if perf.suite is not None:
        ok = sum(1 for b in perf.suite.benchmarks if b.status == "ok")
        return f"suite {perf.suite.name}: {ok}/{len(perf.suite.benchmarks)} measured"
    return ""


def _network_headline(section: NetworkResult) -> str:
    """TCP with one flow and with N flows (client to server, Gbit/s) and the median round
    trip; the parts the result lacks are left out."""
    flows = {t.name: t for t in section.throughput}
    parts = [
        f"{label} {flows[name].gbps:.2f}"
        for name, label in (("tcp_1flow", "1 flow"), ("tcp_nflows", f"{section.flows} flows"))
        if name in flows
    ]
    text = f"TCP {' / '.join(parts)} Gbps" if parts else ""
    if section.latency is not None:
        text = f"{text}, RTT {section.latency.median_us:.1f} µs".lstrip(", ")
    return text


def _storage_headline(section: StorageResult) -> str:
    """The first measured target's 4 KiB random read at QD 32 (IOPS) and 1 MiB sequential
    read (MB/s); the EBS burst and sustained rates when a publishable burst run fell."""
    for target in section.targets:
        jobs = {j.name: j for j in target.jobs}
        if not jobs:
            continue
        role = target.stands_in_for or target.role
        parts = []
        if "randread_4k_qd32" in jobs:
            parts.append(f"randread 4k QD32 {_count(jobs['randread_4k_qd32'].iops)} IOPS")
        if "read_1m_seq" in jobs:
            parts.append(f"seq read 1M {jobs['read_1m_seq'].bw_mb_s:.0f} MB/s")
        line = f"{role}: " + ", ".join(parts)
        burst = next((t.burst for t in section.targets if t.burst and t.burst.publishable), None)
        if burst is not None:
            line += f"; EBS burst {burst.burst_mb_s:.0f} MB/s"
            if burst.fell and burst.seconds_until_fall is not None:
                line += (
                    f" for {burst.seconds_until_fall / 60:.0f} min, then "
                    f"{burst.sustained_mb_s:.0f} MB/s"
                )
            else:
                line += f", did not fall in {burst.duration_s / 60:.0f} min"
        return line
    return "storage: nothing measured"


def _count(value: float) -> str:
    """38012 -> '38.0k', 950 -> '950'."""
    return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}"


def register(app: typer.Typer) -> None:
    """Mount `run` on the app."""
    app.command("run")(run)
