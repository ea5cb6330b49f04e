"""The benchmark registry: built-ins, parameter validation, the agent's use of it, and
third-party benchmarks registered through a real entry point of a real (temporary)
distribution on sys.path."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from instbench.agent import runner
from instbench.benchmarks import latency, registry, stream
from instbench.benchmarks.errors import BenchmarkInputError
from instbench.benchmarks.registry import BenchmarkInfo, Parameter, Requirements

# ----------------------------------------------------------------------- built-ins


def test_builtin_names_and_declarations() -> None:
    assert {"cpu", "latency", "linpack", "stream"} <= set(registry.names())
    assert registry.names() == tuple(sorted(registry.names()))
    lat = registry.info("latency")
    assert lat.version == latency.KERNEL_VERSION and lat.origin == "built-in"
    assert lat.needs == ("c-compiler",) and lat.runs_in_agent
    assert registry.info("stream").needs == ("c-compiler", "openmp")
    assert registry.info("stream").version == stream.KERNEL_VERSION
    with pytest.raises(KeyError):
        registry.info("nope")


def test_parse_list() -> None:
    assert registry.parse_list(" stream , latency") == ("stream", "latency")
    for text, message in (
        ("", "empty benchmark name"),
        ("stream,", "empty benchmark name"),
        ("nope", f"unknown benchmark 'nope'; known benchmarks: {', '.join(registry.names())}"),
        ("stream,stream", "listed twice"),
    ):
        with pytest.raises(ValueError, match=message):
            registry.parse_list(text)


def test_parameters_get_defaults_and_are_checked() -> None:
    lat = registry.info("latency")
    params = lat.validate_params({"max_size_bytes": 2**26})
    assert params == {
        "max_size_bytes": 2**26,
        "points_per_doubling": None,
        "time_per_point_ms": None,
        "huge_pages": True,
        "numa": True,
    }
    assert lat.validate_params({"time_per_point_ms": 5})["time_per_point_ms"] == 5.0
    assert lat.parse_params({"numa": "no", "points_per_doubling": "2"})["numa"] is False
    for values, message in (
        ({"max_size": 1}, "unknown parameter 'max_size'; known parameters: max_size_bytes"),
        ({"max_size_bytes": "big"}, "must be an integer"),
        ({"max_size_bytes": True}, "must be an integer"),
        ({"max_size_bytes": 10}, "must be >= 65536"),
        ({"points_per_doubling": 9}, "must be <= 8"),
        ({"time_per_point_ms": float("inf")}, "must be a number"),
        ({"numa": 1}, "must be true or false"),
    ):
        with pytest.raises(BenchmarkInputError, match=message) as info:
            lat.validate_params(values)
        assert str(info.value).startswith("latency: parameter") or "unknown" in str(info.value)
    with pytest.raises(BenchmarkInputError, match="must be true or false"):
        lat.parse_params({"numa": "maybe"})
    with pytest.raises(BenchmarkInputError, match="must be an integer"):
        lat.parse_params({"points_per_doubling": "2.5"})


def test_stream_parameters_match_the_stream_limits() -> None:
    info = registry.info("stream")
    with pytest.raises(BenchmarkInputError, match=f">= {stream.MIN_ELEMENTS}"):
        info.validate_params({"array_elements": stream.MIN_ELEMENTS - 1})
    with pytest.raises(BenchmarkInputError, match=f"<= {stream.MAX_NTIMES}"):
        info.validate_params({"ntimes": stream.MAX_NTIMES + 1})
    with pytest.raises(BenchmarkInputError, match=">= 2"):
        info.validate_params({"ntimes": 1})


def _noop(ctx: registry.RunContext) -> tuple[dict[str, Any], dict[str, Any]]:
    return {"params": dict(ctx.params)}, {}


def test_malformed_declarations_are_refused() -> None:
    with pytest.raises(ValueError, match="invalid benchmark name"):
        BenchmarkInfo("Bad-Name", "1", "x", _noop)
    with pytest.raises(ValueError, match="one line"):
        BenchmarkInfo("ok", "1", "two\nlines", _noop)
    with pytest.raises(ValueError, match="declared twice"):
        BenchmarkInfo("ok", "1", "x", _noop, (Parameter("a", "int", "h"),) * 2)
    with pytest.raises(ValueError, match="kind"):
        Parameter("a", "complex", "h")
    with pytest.raises(BenchmarkInputError, match="<= 3"):
        Parameter("a", "int", "h", default=5, maximum=3)
    with pytest.raises(BenchmarkInputError, match="one of fast, slow"):
        Parameter("mode", "str", "h", choices=("fast", "slow")).check("medium")
    assert Requirements(True, False, ("openblas",), ("openssl",)).labels() == (
        "c-compiler",
        "package:openblas",
        "command:openssl",
    )


# -------------------------------------------------------------- the agent's side


def _request(tmp_path: Path, **kwargs: Any) -> runner.AgentRequest:
    base: dict[str, Any] = {
        "benchmarks": ("stream", "latency"),
        "output": tmp_path / "r.json",
        "run_id": "t",
    }
    return runner.AgentRequest(**{**base, **kwargs})


def test_agent_options_reach_only_benchmarks_that_declare_them(tmp_path: Path) -> None:
    req = _request(tmp_path, threads=2, ntimes=5, params={"latency": {"numa": False}})
    plan = {info.name: params for info, params in runner.benchmark_plan(req)}
    assert plan["stream"]["threads"] == 2 and plan["stream"]["ntimes"] == 5
    assert "threads" not in plan["latency"] and plan["latency"]["numa"] is False


def test_bad_parameters_stop_the_agent_before_anything_runs(tmp_path: Path) -> None:
    req = _request(tmp_path, params={"latency": {"max_size_bytes": 1}})
    lines: list[str] = []
    with pytest.raises(BenchmarkInputError, match="max_size_bytes must be >= 65536"):
        runner.run(req, lines.append)
    assert lines == [] and not (tmp_path / "r.json").exists()
    with pytest.raises(runner.AgentInputError, match="unknown benchmark 'nope'"):
        runner.benchmark_plan(_request(tmp_path, benchmarks=("nope",)))


# ----------------------------------------------------------------------- plugins

PLUGIN_MODULE = """
from instbench.benchmarks.registry import BenchmarkInfo, Parameter, Requirements


def _run(ctx):
    return {"echo": dict(ctx.params)}, {}


def benchmark():
    return BenchmarkInfo(
        name="fake",
        version="0.1.0",
        description="A benchmark from another distribution.",
        run=_run,
        parameters=(Parameter("rounds", "int", "How many rounds.", default=3, minimum=1),),
        requires=Requirements(commands=("true",)),
    )


INSTANCE = BenchmarkInfo("named", "1", "Declared as an object.", _run)
WRONG = BenchmarkInfo("other", "1", "Registered under another name.", _run)
SHADOW = BenchmarkInfo("stream", "1", "Tries to replace a built-in.", _run)


def not_info():
    return 42
"""

ENTRY_POINTS = """
[instbench.benchmarks]
fake = fakebench_plugin:benchmark
named = fakebench_plugin:INSTANCE
wrongname = fakebench_plugin:WRONG
stream = fakebench_plugin:SHADOW
notinfo = fakebench_plugin:not_info
missing = fakebench_missing_module:thing
"""


def make_plugin_dist(root: Path) -> Path:
    """A real installed distribution (dist-info with entry_points.txt) under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "fakebench_plugin.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    info = root / "fakebench_plugin-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fakebench-plugin\nVersion: 0.1.0\n"
    )
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return root


@pytest.fixture()
def plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = make_plugin_dist(tmp_path / "site")
    monkeypatch.syspath_prepend(str(root))
    yield root
    sys.modules.pop("fakebench_plugin", None)


def test_plugins_register_through_entry_points(plugin_path: Path) -> None:
    cat = registry.catalog()
    assert cat.names() == tuple(sorted((*registry.names(), "fake", "named")))
    fake = cat.get("fake")
    assert fake is not None and fake.origin == "plugin fakebench-plugin 0.1.0"
    assert not fake.runs_in_agent and fake.needs == ("command:true",)
    assert fake.validate_params({}) == {"rounds": 3}
    with pytest.raises(BenchmarkInputError, match="fake: parameter rounds must be >= 1"):
        fake.validate_params({"rounds": 0})
    # The agent side never sees plugins.
    assert "fake" not in registry.names()
    with pytest.raises(ValueError, match="unknown benchmark 'fake'"):
        registry.parse_list("fake")
    assert cat.get("stream") is not None and cat.get("stream").origin == "built-in"  # type: ignore[union-attr]


def test_broken_plugins_are_reported_not_raised(plugin_path: Path) -> None:
    problems = {p.entry_point: p for p in registry.catalog().problems}
    assert set(problems) == {"wrongname", "stream", "notinfo", "missing"}
    assert "declares benchmark 'other'" in problems["wrongname"].error
    assert "built-in benchmark name" in problems["stream"].error
    assert "loads int" in problems["notinfo"].error
    assert problems["missing"].error.startswith("ModuleNotFoundError")
    assert problems["missing"].distribution == "fakebench-plugin"


def test_catalog_without_plugins(plugin_path: Path) -> None:
    cat = registry.catalog(include_plugins=False)
    assert cat.names() == registry.names() and cat.problems == ()
    assert registry.catalog(group="instbench.no-such-group").names() == registry.names()
