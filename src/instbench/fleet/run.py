"""`instbench run` against a cloud: real AWS, an endpoint (AWS_ENDPOINT_URL), or the sandbox.

One code path for all three: the sandbox only changes where the AWS session points (an
in-process moto server) and who executes the user data (the simulated cloud-init).
"""

from __future__ import annotations

import dataclasses
import math
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from instbench.agent.runner import new_run_id
from instbench.aws.launch import DataVolume
from instbench.aws.metrics import MetricsPublisher
from instbench.aws.regions import check_region
from instbench.aws.session import AwsSession, AwsSettings
from instbench.errors import UserError
from instbench.fleet.launching import URL_MARGIN_S
from instbench.fleet.model import task_timeout_s
from instbench.fleet.orchestrator import Fleet
from instbench.fleet.plan import FleetOptions, Plan, make_plan
from instbench.fleet.status import FleetOutcome, TaskStatus
from instbench.fleet.workers import PollPolicy
from instbench.journal import Journal, JournalError
from instbench.storage.local import LocalStore
from instbench.suites import SuiteArtifact

SANDBOX_POLL = PollPolicy(interval_s=0.5, shutdown_grace_s=15.0)


@dataclass
class Target:
    """Where the fleet runs: AWS settings, and the sandbox when it is the sandbox."""

    settings: AwsSettings
    sandbox: bool = False
    max_parallel: int = 1
    """Instances the in-process sandbox runs at once: 1 (they would measure each other),
    2 when the run has a pair benchmark, whose server and client must run together (the
    fleet then runs one pair at a time)."""


@contextmanager
def open_target(
    target: Target, log: Callable[[str], None]
) -> Iterator[tuple[AwsSession, str | None]]:
    """Yield a session (and the sandbox bucket), starting the sandbox when asked.

    The sandbox simulates the region the command names (moto serves every region), so a
    command meant for AWS runs unchanged with `--sandbox` appended. It never reads the
    profile: its moto takes its own static credentials, so `--profile` names nothing that
    must exist on this machine, and no real credential is ever sent to the sandbox.
    """
    if not target.sandbox:
        yield AwsSession(target.settings), None
        return
    try:
        from instbench.sandbox.motoserver import SANDBOX_REGION
        from instbench.sandbox.runtime import Sandbox
    except ImportError as exc:  # moto is the optional extra instbench[sandbox]
        raise UserError(
            "the sandbox needs moto: pip install 'instbench[sandbox]' (make run does this)"
        ) from exc
    region = target.settings.region or SANDBOX_REGION
    with Sandbox(region=check_region(region), log=log, max_parallel=target.max_parallel) as sb:
        yield AwsSession(sb.aws_settings()), sb.bucket


_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def is_loopback_endpoint(settings: AwsSettings, environ: Mapping[str, str]) -> bool:
    """True when AWS calls go to this machine: that is a sandbox, never real AWS.

    Results collected there are labelled `sandbox` whatever the user passed, so a run
    against `instbench sandbox serve` can never be published as real measurements.
    """
    endpoint = (
        settings.endpoint_url
        or environ.get("AWS_ENDPOINT_URL_EC2")
        or environ.get("AWS_ENDPOINT_URL")
    )
    if not endpoint:
        return False
    host = urllib.parse.urlsplit(endpoint).hostname or ""
    return host in _LOOPBACK or host.startswith("127.")


def options_to_params(opts: FleetOptions) -> dict[str, object]:
    """What the journal keeps of a run's options, so `--resume` can rebuild them.

    A suite is kept as its artifact text and sha256, never as the TOML path: a resumed
    run must launch the suite it was planned with, whatever the file says by then.
    """
    return {
        "instance_types": list(opts.instance_types),
        "benchmarks": list(opts.benchmarks),
        "bucket": opts.bucket,
        "samples": opts.samples,
        "subnets": list(opts.subnets),
        "security_group": opts.security_group,
        "key_pair": opts.key_pair,
        "ami_id": opts.ami_id,
        "max_concurrency": opts.max_concurrency,
        "timeout_s": opts.timeout_s,
        "quick": opts.quick,
        "agent_args": list(opts.agent_args),
        "collection_method": opts.collection_method,
        "market": opts.market,
        "spot_max_price": opts.spot_max_price,
        "spot_fallback": opts.spot_fallback,
        "runtime": opts.runtime,
        "image": opts.image,
        "vcpu_budget": opts.vcpu_budget,
        "max_cost": opts.max_cost,
        "suite": opts.suite.as_params() if opts.suite is not None else None,
        "params": opts.params,
        "data_volume": dataclasses.asdict(opts.data_volume),
    }


def options_from_journal(journal: Journal, run_id: str) -> tuple[FleetOptions, str, str]:
    """Rebuild a run's options from the journal: (options, region, mode)."""
    try:
        run = journal.run(run_id)
    except JournalError as exc:
        raise UserError(f"{exc}: see instbench runs list") from exc
    if run.mode == "sandbox":
        raise UserError(
            f"run {run_id} ran in the in-process sandbox, which ended with its controller; "
            "sandbox runs that must survive the controller use instbench sandbox serve"
        )
    p = run.params
    # absent in runs journalled before fleet suites existed
    suite = p.get("suite")
    opts = FleetOptions(
        instance_types=list(p["instance_types"]),
        benchmarks=tuple(p["benchmarks"]),
        bucket=str(p["bucket"]),
        samples=int(p["samples"]),
        subnets=list(p.get("subnets", [])),
        security_group=p.get("security_group"),
        key_pair=p.get("key_pair"),
        ami_id=p.get("ami_id"),
        max_concurrency=int(p.get("max_concurrency", 5)),
        timeout_s=int(p["timeout_s"]),
        quick=bool(p["quick"]),
        agent_args=list(p.get("agent_args", [])),
        collection_method=str(p.get("collection_method", "aws")),
        market=str(p.get("market", "on-demand")),
        spot_max_price=p.get("spot_max_price"),
        spot_fallback=p.get("spot_fallback"),
        runtime=str(p.get("runtime", "zipapp")),  # runs journalled before the container runtime
        image=p.get("image"),
        # absent (None) in runs journalled before --vcpu-budget / --max-cost existed
        vcpu_budget=None if p.get("vcpu_budget") is None else int(p["vcpu_budget"]),
        max_cost=None if p.get("max_cost") is None else float(p["max_cost"]),
        suite=None if suite is None else SuiteArtifact.from_params(suite, f"journal of {run_id}"),
        params=dict(p.get("params") or {}),  # absent in runs journalled before --param
        run_id=run_id,
    )
    volume = p.get("data_volume")  # absent in runs journalled before the storage benchmark
    if isinstance(volume, dict):
        opts.data_volume = DataVolume(**{k: int(v) for k, v in volume.items()})
    return opts, run.region, run.mode


def credentials_warning(session: AwsSession, plan: Plan, now: datetime) -> str | None:
    """A warning when the credentials expire before the presigned URLs would.

    An instance uploads its result through a URL signed with the controller's credentials;
    if those are temporary, the URL dies with them, possibly before the task's timeout.
    """
    expiry = session.credentials_expiry()
    if expiry is None:
        return None
    longest = max(
        (task_timeout_s(plan.options, t) for t in plan.tasks), default=plan.options.timeout_s
    )
    needed = now + timedelta(seconds=longest + URL_MARGIN_S)
    if expiry >= needed:
        return None
    return (
        f"warning: the AWS credentials expire at {expiry:%Y-%m-%d %H:%M:%S %Z}, before the "
        f"upload URLs need them (until {needed:%H:%M:%S %Z}: --timeout plus "
        f"{URL_MARGIN_S // 60} min, and a storage task's EBS burst run); a task still "
        "running then cannot upload its result. "
        "Use credentials valid for longer (e.g. a longer role session) or a shorter --timeout"
    )


SUITE_SETUP_MARGIN_S = 300
"""What a suite task needs besides the suite itself: boot, the suite's packages, the agent's
download, the machine's detection, the upload (a few minutes at most on EC2)."""


def suite_timeout_warning(plan: Plan) -> str | None:
    """A warning when the run's suite may outlast --timeout (the instance's watchdog).

    timeout_s x repeats is an upper bound that most suites never reach, so this warns and
    does not refuse; but a suite that does reach it loses its instance to the watchdog
    before it uploads anything, and the task fails with nothing to show.
    """
    suite = plan.options.suite
    if suite is None:
        return None
    worst = suite.worst_case_s
    if worst + SUITE_SETUP_MARGIN_S <= plan.options.timeout_s:
        return None
    advice = math.ceil((worst + SUITE_SETUP_MARGIN_S) / 60)
    return (
        f"warning: suite {suite.name!r} may run up to {math.ceil(worst / 60)} min (its "
        f"timeout_s x repeats), and its task has --timeout "
        f"{math.ceil(plan.options.timeout_s / 60)} min in all: the watchdog would end a slow "
        f"run before its result is uploaded. Pass --timeout {advice}m, or lower the "
        "suite's timeouts"
    )


def plan_run(
    session: AwsSession, opts: FleetOptions, now: datetime, run_id: str | None = None
) -> Plan:
    """Validate and expand (read-only; nothing created)."""
    return make_plan(session, opts, run_id or opts.run_id or new_run_id(now), now)


def execute(
    session: AwsSession,
    plan: Plan,
    journal: Journal,
    output_dir: Path,
    on_change: Callable[[TaskStatus], None],
    sandbox: bool,
    resume: bool = False,
    metrics: bool = True,
    mode: str | None = None,
    notice: Callable[[str], None] | None = None,
    poll: PollPolicy | None = None,
) -> FleetOutcome:
    """Journal the plan (unless resuming) and run it.

    `sandbox` picks the fast poll policy (the cloud is on this machine); `mode` is what the
    journal records: "sandbox" only for the in-process sandbox (it ends with the controller,
    so such runs cannot be resumed), "endpoint" for a loopback endpoint such as
    `instbench sandbox serve`, "aws" otherwise.
    """
    local = LocalStore(output_dir)
    local.check_writable()
    # One controller per run: a second `--resume RID` (or a resume of a run still being
    # run) is refused here, before it launches or collects anything.
    with journal.run_lock(plan.run_id):
        if not resume:
            journal.create_run(
                plan.run_id,
                plan.region,
                mode or ("sandbox" if sandbox else "aws"),
                options_to_params(plan.options),
                [(t.task_id, t.instance_type, t.benchmark, t.sample) for t in plan.tasks],
            )
        fleet = Fleet(
            session,
            plan,
            journal,
            local,
            poll=poll or (SANDBOX_POLL if sandbox else None),
            on_change=on_change,
            resume=resume,
            metrics=MetricsPublisher(session, enabled=metrics),
            notice=notice,
        )
        return fleet.run()
