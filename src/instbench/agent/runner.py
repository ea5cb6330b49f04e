"""Run the requested benchmarks on this machine and write one result document.

Stdlib-only, Python 3.9. The document is assembled as plain dicts that follow the v1
schema (instbench/results/schema.py); the controller validates it when it comes back, and
this module's tests validate it too.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from instbench import __version__
from instbench.agent import imds, sysinfo
from instbench.benchmarks import registry
from instbench.benchmarks.errors import BenchmarkError, BenchmarkInputError

if TYPE_CHECKING:
    from instbench.agent import suite as agent_suite

# The suite runner and CoreMark's fetcher are imported where they are used: every agent
# start would otherwise compile them (a zipapp has no bytecode cache), ~35 ms of CPU that
# a sandbox running 20 "instances" on 2 cores pays 20 times per wave.

DATA_VERSION = "1.2.0"
"""Must equal instbench.results.schema.DATA_VERSION (a test checks); not imported from
there because the schema module needs pydantic, which the instance does not have."""

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class AgentInputError(Exception):
    """Bad agent input: the CLI prints one line and exits 2."""


@dataclass
class AgentRequest:
    """Everything one agent run needs, as parsed from its command line."""

    benchmarks: Tuple[str, ...]
    output: Path
    run_id: str
    sample: int = 0
    task_id: Optional[str] = None
    instance_type: Optional[str] = None
    region: Optional[str] = None
    collection_method: str = "local"
    market: Optional[str] = None
    hourly_price_usd: Optional[float] = None
    spot_interruptions: Optional[int] = None
    quick: bool = False
    array_elements: Optional[int] = None
    ntimes: Optional[int] = None
    threads: Optional[int] = None
    duration_s: Optional[int] = None
    cache_dir: Optional[Path] = None
    imds_timeout: float = 1.0
    argv: List[str] = field(default_factory=list)
    params: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    """Per-benchmark parameters, e.g. {"latency": {"max_size_bytes": 2**28}}."""
    suite: Optional[agent_suite.Suite] = None
    """A user-defined suite (already validated by agent_suite), run after the benchmarks."""
    coremark_url: Optional[str] = None
    """Base URL of the pinned CoreMark sources for `cpu`; None: $INSTBENCH_COREMARK_URL,
    else the pinned GitHub URL on EC2 (collection method aws) and off elsewhere."""


def default_cache_dir() -> Path:
    """Where compiled kernels are cached between runs on one machine."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "instbench" / "kernels"


def new_run_id(now: Optional[datetime] = None) -> str:
    """A sortable, unique run id: UTC timestamp plus random hex."""
    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + os.urandom(3).hex()


def check_request(req: AgentRequest) -> None:
    """Validate input before detecting or compiling anything."""
    if not _ID.fullmatch(req.run_id):
        raise AgentInputError(f"invalid run id {req.run_id!r}: use letters, digits, . _ -")
    if req.task_id is not None and not _ID.fullmatch(req.task_id):
        raise AgentInputError(f"invalid task id {req.task_id!r}: use letters, digits, . _ -")
    if req.sample < 0:
        raise AgentInputError("--sample must be >= 0")
    if not req.benchmarks and req.suite is None:
        raise AgentInputError("nothing to run: give --benchmarks and/or --suite")
    if req.collection_method not in ("local", "sandbox", "aws"):
        raise AgentInputError("--collection-method must be local, sandbox or aws")
    if req.market not in (None, "on-demand", "spot"):
        raise AgentInputError("--market must be on-demand or spot")
    price = req.hourly_price_usd
    if price is not None and not (math.isfinite(price) and price > 0):
        raise AgentInputError("--hourly-price-usd must be a positive number")
    if req.spot_interruptions is not None and req.spot_interruptions < 0:
        raise AgentInputError("--spot-interruptions must be >= 0")
    out = req.output
    if out.exists():
        raise AgentInputError(f"{out} exists; a result file is never overwritten")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise AgentInputError(f"output directory {parent} does not exist")
    if not os.access(str(parent), os.W_OK):
        raise AgentInputError(f"output directory {parent} is not writable")


_REQUEST_PARAMETERS = ("array_elements", "ntimes", "threads", "duration_s")
"""Agent options (--array-size, --ntimes, --threads, --duration-s) that set the parameter of
the same name of every requested benchmark that declares one (today: stream); the others ignore
them. Any parameter can be set per benchmark through `AgentRequest.params` (--param)."""

_REQUEST_OPTIONS = {
    "array_elements": "--array-size",
    "ntimes": "--ntimes",
    "threads": "--threads",
    "duration_s": "--duration-s",
}


def explicit_parameters(req: AgentRequest) -> Dict[str, Dict[str, Any]]:
    """The parameters this run was given, per benchmark (recorded in the result).

    From the request options and `params` (--param), before validation; a parameter set
    both ways is refused (AgentInputError): which one should win would be a guess.
    """
    out: Dict[str, Dict[str, Any]] = {}
    for name in req.benchmarks:
        try:
            declared = {p.name for p in registry.info(name).parameters}
        except KeyError:
            continue  # benchmark_plan names it
        given = {
            key: getattr(req, key)
            for key in _REQUEST_PARAMETERS
            if key in declared and getattr(req, key) is not None
        }
        extra = dict(req.params.get(name, {}))
        both = sorted(set(given) & set(extra))
        if both:
            raise AgentInputError(
                f"{_REQUEST_OPTIONS[both[0]]} and --param {name}.{both[0]} both set "
                f"{name}'s {both[0]}: give one"
            )
        given.update(extra)
        if given:
            out[name] = given
    return out


def benchmark_plan(req: AgentRequest) -> List[Tuple[registry.BenchmarkInfo, Dict[str, Any]]]:
    """Each requested benchmark with its validated parameters, before anything runs.

    BenchmarkInputError (exit 2) on an unknown parameter or a bad value; AgentInputError
    on an unknown benchmark.
    """
    plan = []
    unknown = [name for name in req.benchmarks if name not in registry.names()]
    if unknown:
        raise AgentInputError(
            f"unknown benchmark {unknown[0]!r}; known: {', '.join(registry.names())}"
        )
    strange = sorted(set(req.params) - set(req.benchmarks))
    if strange:
        raise AgentInputError(f"parameters given for {strange[0]}, which is not run")
    explicit = explicit_parameters(req)
    for name in req.benchmarks:
        info = registry.info(name)
        given: Dict[str, Any] = {}
        url = coremark_url(req) if name == "cpu" else None
        if url is not None:
            given["coremark_url"] = url  # a declared parameter, like any other
        given.update(explicit.get(name, {}))
        plan.append((info, info.validate_params(given)))
    return plan


def run(req: AgentRequest, log: Callable[[str], None]) -> Dict[str, Any]:
    """Detect the machine, run every benchmark, write the document; return it."""
    check_request(req)
    plan = benchmark_plan(req)
    started = time.monotonic()
    durations: Dict[str, float] = {}

    t0 = time.monotonic()
    log("detecting the machine")
    identity = imds.fetch_identity(timeout=req.imds_timeout, log=log)
    system = sysinfo.collect(identity=identity)
    durations["detect"] = time.monotonic() - t0

    cache_dir = req.cache_dir or default_cache_dir()
    performance: Dict[str, Any] = {}
    builds: List[Dict[str, Any]] = []
    for info, params in plan:
        name = info.name
        t0 = time.monotonic()
        log(f"running {name}")
        context = registry.RunContext(
            params=params,
            quick=req.quick,
            cache_dir=cache_dir,
            log=log,
            collection_method=req.collection_method,
        )
        section, build = info.run(context)
        performance[name] = section
        builds.append(build)
        durations[name] = time.monotonic() - t0
        if "compile_s" in build:
            durations["compile"] = durations.get("compile", 0.0) + float(build["compile_s"])

    if req.suite is not None:
        from instbench.agent import suite as agent_suite

        t0 = time.monotonic()
        log(f"running suite {req.suite.name}")
        performance["suite"] = agent_suite.run_suite(req.suite, log)
        durations["suite"] = time.monotonic() - t0

    durations["total"] = time.monotonic() - started
    ec2 = system.get("ec2") or {}
    first_build = builds[0] if builds else {}
    doc = {
        "metadata": {
            "timestamp": datetime.now(timezone.utc).isoformat(),
            "run_id": req.run_id,
            "sample": req.sample,
            "task_id": req.task_id,
            "instance_type": req.instance_type or ec2.get("instance_type") or "local",
            "region": req.region or ec2.get("region") or "local",
            "availability_zone": ec2.get("availability_zone"),
            "benchmark_suite": list(req.benchmarks) + (["suite"] if req.suite else []),
            "data_version": DATA_VERSION,
            "collection_method": req.collection_method,
            "tool_version": __version__,
            "quick": req.quick,
            "market": req.market,
            "hourly_price_usd": req.hourly_price_usd,
            "spot_interruptions": req.spot_interruptions,
        },
        "performance_data": performance,
        "system_info": system,
        "execution_context": {
            "agent_version": __version__,
            "compiler": first_build.get("compiler"),
            "cflags": list(first_build.get("cflags", [])),
            "openmp": dict(first_build.get("openmp", {})),
            "binary_cached": all(bool(b.get("binary_cached")) for b in builds) if builds else False,
            "phase_durations_s": {k: round(v, 6) for k, v in durations.items()},
            "argv": list(req.argv),
            "parameters": _recorded(plan, explicit_parameters(req)),
        },
    }
    write_new(req.output, doc)
    log(f"result written to {req.output}")
    return doc


def _recorded(
    plan: List[Tuple[registry.BenchmarkInfo, Dict[str, Any]]],
    explicit: Dict[str, Dict[str, Any]],
) -> Optional[Dict[str, Dict[str, Any]]]:
    """The explicitly set parameters with their validated values; None when none was set."""
    out = {
        info.name: {key: params[key] for key in sorted(explicit[info.name])}
        for info, params in plan
        if explicit.get(info.name)
    }
    return out or None


def coremark_url(req: AgentRequest) -> Optional[str]:
    """Where `cpu` fetches CoreMark from: the request, else the environment, else the
    pinned GitHub URL on EC2 only (local, sandbox and tests never reach the network
    unless asked); None or 'off' disables CoreMark."""
    from instbench.benchmarks import coremark

    if req.coremark_url is not None:
        return req.coremark_url
    if os.environ.get(coremark.ENV_URL) is not None:
        return os.environ[coremark.ENV_URL]
    return coremark.DEFAULT_BASE_URL if req.collection_method == "aws" else None


def write_new(path: Path, doc: Dict[str, Any]) -> None:
    """Write the document atomically and never over an existing file."""
    data = json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n"
    directory = str(path.parent) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".result-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, str(path))
    except FileExistsError:
        raise AgentInputError(f"{path} exists; a result file is never overwritten") from None
    finally:
        os.unlink(tmp)


def stderr_log(message: str) -> None:
    """Timestamped progress line on stderr (captured into the instance log)."""
    stamp = datetime.now(timezone.utc).strftime("%H:%M:%S")
    sys.stderr.write(f"[agent {stamp}] {message}\n")
    sys.stderr.flush()


__all__ = [
    "DATA_VERSION",
    "AgentInputError",
    "AgentRequest",
    "BenchmarkError",
    "BenchmarkInputError",
    "check_request",
    "new_run_id",
    "run",
]
