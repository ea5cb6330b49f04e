"""Command line of the agent (argparse: the agent is stdlib-only).

    python3 agent.pyz run --benchmarks stream --output result.json [options]
    python3 agent.pyz run --benchmarks linpack --param linpack.n=3000 --output result.json
    python3 agent.pyz run --suite suite.json --output result.json
    python3 agent.pyz run --suite-url PRESIGNED_URL --suite-sha256 HEX --output result.json
    python3 agent.pyz upload --url PRESIGNED_URL --file result.json
    python3 agent.pyz sysinfo
    python3 agent.pyz version

Exit codes: 0 success; 2 bad input or missing toolchain (one line on stderr, nothing
written); 1 a benchmark failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

from instbench import __version__
from instbench.agent import imds, runner, sysinfo, upload
from instbench.benchmarks import registry
from instbench.benchmarks.errors import BenchmarkError, BenchmarkInputError

if TYPE_CHECKING:
    from instbench.agent import suite as agent_suite


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def _benchmarks(text: str) -> tuple:  # type: ignore[type-arg]
    try:
        return registry.parse_list(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _OneLineParser(argparse.ArgumentParser):
    """argparse prints usage + message; keep it to one line, exit 2 as argparse does."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="agent.pyz", description="instbench agent")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)

    run = sub.add_parser("run", help="run benchmarks and write one result document")
    run.add_argument(
        "--benchmarks", type=_benchmarks, default=None, help="default: stream (none with --suite)"
    )
    run.add_argument("--suite", type=Path, default=None, help="suite artifact (JSON) to run")
    run.add_argument("--suite-url", default=None, help="GET the suite artifact from this URL")
    run.add_argument("--suite-sha256", default=None, help="required sha256 of the artifact")
    run.add_argument(
        "--coremark-url",
        default=None,
        help="base URL of the pinned CoreMark sources, or 'off' (default: "
        "$INSTBENCH_COREMARK_URL, else GitHub on EC2 and off elsewhere)",
    )
    run.add_argument("--output", type=Path, required=True, help="result file (must not exist)")
    run.add_argument("--run-id", default=None, help="run identifier (default: generated)")
    run.add_argument("--sample", type=int, default=0)
    run.add_argument("--task-id", default=None)
    run.add_argument("--instance-type", default=None, help="default: from IMDS, else 'local'")
    run.add_argument("--region", default=None, help="default: from IMDS, else 'local'")
    run.add_argument("--collection-method", choices=("local", "sandbox", "aws"), default="local")
    run.add_argument("--market", choices=("on-demand", "spot"), default=None)
    run.add_argument("--hourly-price-usd", type=float, default=None, help="launch price, USD/h")
    run.add_argument("--spot-interruptions", type=int, default=None, help="before this run")
    run.add_argument("--quick", action="store_true", help="small arrays, few trials; tests")
    run.add_argument("--array-size", type=_positive_int, default=None, help="elements/array")
    run.add_argument("--ntimes", type=_positive_int, default=None, help="trials per kernel")
    run.add_argument("--threads", type=_positive_int, default=None, help="threads (all-CPU run)")
    run.add_argument("--duration-s", type=int, default=None, help="idle benchmark: seconds")
    run.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="BENCH.NAME=VALUE",
        help="a benchmark parameter (repeatable), checked against its declared range",
    )
    run.add_argument("--cache-dir", type=Path, default=None, help="compiled kernel cache")
    run.add_argument("--imds-timeout", type=float, default=1.0)
    run.add_argument(
        "--storage-advertised",
        default=None,
        help="storage: what AWS advertises, key=number,... (set by the controller)",
    )

    up = sub.add_parser("upload", help="PUT a file to a presigned URL")
    up.add_argument("--url", required=True)
    up.add_argument("--file", type=Path, required=True)
    up.add_argument("--content-type", default="application/json")

    sub.add_parser("sysinfo", help="print what the agent detects about this machine")
    sub.add_parser("version", help="print the agent version")
    return parser


def _load_suite(args: argparse.Namespace) -> Optional[agent_suite.Suite]:
    """The suite named by --suite or --suite-url, checked before anything else runs."""
    if args.suite is None and args.suite_url is None and args.suite_sha256 is None:
        return None
    from instbench.agent import suite as agent_suite  # only a suite run pays for it

    if args.suite is not None and args.suite_url is not None:
        raise agent_suite.SuiteError("give --suite or --suite-url, not both")
    if args.suite_url is not None:
        return agent_suite.fetch_artifact(args.suite_url, args.suite_sha256 or "")
    if args.suite is not None:
        return agent_suite.load_artifact(args.suite, args.suite_sha256)
    if args.suite_sha256 is not None:
        raise agent_suite.SuiteError("--suite-sha256 needs --suite or --suite-url")
    return None


def main(argv: Optional[List[str]] = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(args_list)
    log = runner.stderr_log
    try:
        if args.command == "version":
            print(__version__)
            return 0
        if args.command == "sysinfo":
            identity = imds.fetch_identity(timeout=1.0, log=log)
            print(json.dumps(sysinfo.collect(identity=identity), indent=2, sort_keys=True))
            return 0
        if args.command == "upload":
            upload.put_file(args.url, args.file, args.content_type)
            return 0
        suite = _load_suite(args)
        benchmarks = args.benchmarks
        if benchmarks is None:
            benchmarks = () if suite is not None else ("stream",)
        params = registry.parse_assignments(args.param, benchmarks)
        req = runner.AgentRequest(
            benchmarks=tuple(benchmarks),
            suite=suite,
            coremark_url=args.coremark_url,
            output=args.output,
            run_id=args.run_id or runner.new_run_id(),
            sample=args.sample,
            task_id=args.task_id,
            instance_type=args.instance_type,
            region=args.region,
            collection_method=args.collection_method,
            market=args.market,
            hourly_price_usd=args.hourly_price_usd,
            spot_interruptions=args.spot_interruptions,
            quick=args.quick,
            array_elements=args.array_size,
            ntimes=args.ntimes,
            threads=args.threads,
            duration_s=args.duration_s,
            params=params,
            cache_dir=args.cache_dir,
            imds_timeout=args.imds_timeout,
            argv=["agent.pyz", *args_list],
        )
        if args.storage_advertised is not None:
            from instbench.benchmarks import storage

            storage.parse_advertised(args.storage_advertised)  # bad input: exit 2, now
            req.params.setdefault("storage", {})["advertised"] = args.storage_advertised
        runner.run(req, log)
        return 0
    except (runner.AgentInputError, BenchmarkInputError, upload.UploadError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except BenchmarkError as exc:
        sys.stderr.write(f"error: benchmark failed: {exc}\n")
        return 1
