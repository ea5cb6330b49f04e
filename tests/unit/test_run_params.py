"""`--param BENCH.NAME=VALUE`: parsed and checked against the registry, sent per task, recorded.

The parsing is the registry's (stdlib, the agent uses it too); `run_params` adds STREAM's
alias options; the fleet's options give each task's agent its own benchmark's values only,
through a user-data pattern that lets nothing a shell could act on through; the agent
records what it was given in `execution_context.parameters`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from instbench.agent import runner
from instbench.benchmarks import registry
from instbench.benchmarks.errors import BenchmarkInputError
from instbench.errors import UserError
from instbench.fleet import userdata
from instbench.fleet.plan import FleetOptions
from instbench.fleet.run import options_from_journal, options_to_params
from instbench.journal import Journal
from instbench.local_run import LocalRunOptions, agent_command
from instbench.results.schema import DATA_VERSION
from instbench.results.validate import parse_result
from instbench.run_params import describe, parse_run_params

# ------------------------------------------------------------------ the registry's side


def test_values_are_typed_and_checked() -> None:
    got = registry.parse_assignments(
        [
            "linpack.n=3000",
            "linpack.time_budget_s=2.5",
            "stream.single_thread=false",
            "linpack.library=/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
        ],
        ("stream", "linpack"),
    )
    assert got == {
        "linpack": {
            "n": 3000,
            "time_budget_s": 2.5,
            "library": "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
        },
        "stream": {"single_thread": False},
    }
    assert registry.parse_assignments([], ("stream",)) == {}


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("linpack", "use BENCH.NAME=VALUE, e.g. linpack.n=3000"),
        ("linpack.n", "use BENCH.NAME=VALUE"),
        ("Linpack.n=3000", "use BENCH.NAME=VALUE"),
        ("linpak.n=3000", "unknown benchmark 'linpak'; known benchmarks: cpu, idle, latency"),
        ("latency.numa=true", "latency is not run (benchmarks: stream, linpack)"),
        ("linpack.m=3", "linpack has no parameter 'm'; its parameters: n, trials, time_budget_s"),
        ("linpack.n=big", "linpack.n must be an integer from 100 to 200000"),
        ("linpack.n=3000.0", "linpack.n must be an integer from 100 to 200000"),
        ("linpack.n=99", "linpack.n must be an integer from 100 to 200000"),
        ("linpack.n=", "linpack.n must be an integer from 100 to 200000"),
        ("linpack.time_budget_s=nan", "linpack.time_budget_s must be a number from 1 to 7200"),
        ("linpack.time_budget_s=0.5", "linpack.time_budget_s must be a number from 1 to 7200"),
        ("stream.single_thread=maybe", "stream.single_thread must be true or false"),
        ("stream.array_elements=10", "stream.array_elements must be an integer >= "),
        ("stream.ntimes=" + "9" * 600, "at most 512 characters"),
    ],
)
def test_each_bad_value_is_one_line_naming_what_is_allowed(item: str, message: str) -> None:
    with pytest.raises(BenchmarkInputError) as info:
        registry.parse_assignments([item], ("stream", "linpack"))
    text = str(info.value)
    assert message in text and "\n" not in text


def test_a_parameter_given_twice_and_too_many_are_refused() -> None:
    with pytest.raises(BenchmarkInputError, match=r"--param stream\.ntimes is given twice"):
        registry.parse_assignments(["stream.ntimes=3", "stream.ntimes=4"], ("stream",))
    many = [f"stream.ntimes={i}" for i in range(3, 3 + registry.MAX_ASSIGNMENTS + 1)]
    with pytest.raises(BenchmarkInputError, match="too many --param values"):
        registry.parse_assignments(many, ("stream",))


def test_agent_text_reads_back_as_the_same_values() -> None:
    values = {
        "linpack": {"n": 3000, "time_budget_s": 7.25, "library": "/opt/lib.so"},
        "stream": {"single_thread": False, "ntimes": 5},
    }
    args = registry.assignment_args(values)
    assert args[::2] == ["--param"] * 5
    assert args[1::2] == [
        "linpack.library=/opt/lib.so",
        "linpack.n=3000",
        "linpack.time_budget_s=7.25",
        "stream.ntimes=5",
        "stream.single_thread=false",
    ]
    assert registry.parse_assignments(args[1::2], ("stream", "linpack")) == values


# ------------------------------------------------------------ the controller's side


def test_stream_aliases_become_stream_parameters() -> None:
    aliases = {"--array-size": 2_000_000, "--ntimes": 4, "--threads": None}
    got = parse_run_params(["linpack.n=3000"], ("stream", "linpack"), aliases)
    assert got == {"linpack": {"n": 3000}, "stream": {"array_elements": 2_000_000, "ntimes": 4}}
    assert describe(got) == "linpack.n=3000, stream.array_elements=2000000, stream.ntimes=4"


@pytest.mark.parametrize(
    ("items", "benches", "aliases", "message"),
    [
        (["stream.ntimes=4"], ("stream",), {"--ntimes": 3}, "--ntimes and --param stream.ntimes"),
        ([], ("linpack",), {"--threads": 2}, "--threads sets stream.threads, but stream is not"),
        ([], ("stream",), {"--ntimes": 9999}, "--ntimes 9999: stream.ntimes must be an integer"),
        (["linpack.n=1"], ("linpack",), {}, "linpack.n must be an integer from 100 to"),
    ],
)
def test_controller_errors_are_user_errors(
    items: list[str], benches: tuple[str, ...], aliases: dict[str, int | None], message: str
) -> None:
    with pytest.raises(UserError, match=message.replace(".", r"\.")):
        parse_run_params(items, benches, aliases)


def _fleet(**changes: Any) -> FleetOptions:
    base: dict[str, Any] = {
        "instance_types": ["m7i.large"],
        "benchmarks": ("stream", "linpack"),
        "bucket": "b",
        "params": {"linpack": {"n": 3000}, "stream": {"ntimes": 4}},
    }
    return FleetOptions(**(base | changes))


def test_each_task_gets_its_own_benchmarks_parameters_only() -> None:
    opts = _fleet(agent_args=["--duration-s", "5"])
    assert opts.agent_args_for("linpack") == ["--duration-s", "5", "--param", "linpack.n=3000"]
    assert opts.agent_args_for("stream") == ["--duration-s", "5", "--param", "stream.ntimes=4"]
    assert opts.agent_args_for("suite") == ["--duration-s", "5"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"linpack": {"library": "/x;reboot"}}, "cannot be sent to an instance"),
        ({"linpack": {"library": "/a b/lib.so"}}, "cannot be sent to an instance"),
        ({"linpack": {"n": 5}}, "linpack.n must be an integer from 100"),
        ({"latency": {"numa": False}}, "latency is not run"),
        ({"linpack": {"nope": 1}}, "unknown benchmark or parameter 'nope'"),
    ],
)
def test_fleet_options_refuse_what_an_instance_would_refuse(
    params: dict[str, dict[str, Any]], message: str
) -> None:
    with pytest.raises(UserError, match=message):
        _fleet(params=params)


def test_user_data_takes_plain_parameters_and_refuses_the_rest() -> None:
    userdata.check_agent_args(["--param", "linpack.library=/usr/lib/libopenblas.so.0"])
    userdata.check_agent_args(["--param", "cpu.coremark_url=http://127.0.0.1:8000/cm"])
    for bad in ("linpack.n=1 2", "linpack.n=$(reboot)", "linpack.n=`id`", "n=3", "linpack.n="):
        with pytest.raises(UserError):
            userdata.check_agent_args(["--param", bad])


def test_parameters_survive_the_journal(tmp_path: Path) -> None:
    opts = _fleet()
    journal = Journal(tmp_path / "j.sqlite")
    journal.create_run("r1", "eu-west-1", "aws", options_to_params(opts), [])
    again, region, _mode = options_from_journal(journal, "r1")
    assert again.params == opts.params and region == "eu-west-1"
    # A run journalled before --param existed has none.
    legacy = {k: v for k, v in options_to_params(opts).items() if k != "params"}
    journal.create_run("r0", "us-east-1", "aws", legacy, [])
    assert options_from_journal(journal, "r0")[0].params == {}


def test_local_agent_command_carries_only_the_runs_benchmarks(tmp_path: Path) -> None:
    opts = LocalRunOptions(
        output_dir=tmp_path,
        benchmarks=("linpack",),
        params={"linpack": {"n": 3000}, "stream": {"ntimes": 4}},
    )
    cmd = agent_command(tmp_path / "agent.pyz", tmp_path / "r.json", opts)
    assert cmd[cmd.index("--param") :] == ["--param", "linpack.n=3000"]


# ----------------------------------------------------------------- the agent's side


def _request(tmp_path: Path, **kwargs: Any) -> runner.AgentRequest:
    base: dict[str, Any] = {"benchmarks": ("stream",), "output": tmp_path / "r.json", "run_id": "t"}
    return runner.AgentRequest(**(base | kwargs))


def test_agent_refuses_an_option_and_a_param_for_the_same_value(tmp_path: Path) -> None:
    req = _request(tmp_path, ntimes=3, params={"stream": {"ntimes": 4}})
    with pytest.raises(runner.AgentInputError, match=r"--ntimes and --param stream\.ntimes"):
        runner.benchmark_plan(req)
    req = _request(tmp_path, params={"linpack": {"n": 3000}})
    with pytest.raises(runner.AgentInputError, match="parameters given for linpack"):
        runner.benchmark_plan(req)


def test_agent_records_the_parameters_it_was_given(
    agent_pyz: Path, kernel_cache: Path, tmp_path: Path
) -> None:
    out = tmp_path / "result.json"
    cmd = [
        sys.executable, "-I", "-S", str(agent_pyz), "run", "--benchmarks", "stream",
        "--quick", "--param", "stream.ntimes=3", "--param", "stream.single_thread=false",
        "--output", str(out), "--cache-dir", str(kernel_cache),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = parse_result(out.read_bytes())
    assert doc.execution_context.parameters == {"stream": {"ntimes": 3, "single_thread": False}}
    stream = doc.performance_data.stream
    assert stream is not None and [r.thread_mode for r in stream.runs] == ["all"]
    assert all(r.ntimes == 3 for r in stream.runs)
    assert json.loads(out.read_text())["metadata"]["data_version"] == DATA_VERSION


def test_agent_refuses_a_bad_param_in_one_line(agent_pyz: Path, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    cmd = [
        sys.executable, "-I", "-S", str(agent_pyz), "run", "--benchmarks", "stream",
        "--param", "linpack.n=3000", "--output", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: invalid --param 'linpack.n=3000': linpack is not run (benchmarks: stream); "
        "add it to --benchmarks"
    ]
    assert not out.exists()
