"""The benchmarks instbench knows, by name: what each needs, accepts and produces.

A benchmark is declared once, as a `BenchmarkInfo`: its name (also the key of its section
under `performance_data`), version, a one-line description, its parameters (typed, with
ranges, validated before anything runs), what it needs on the instance (a C compiler,
OpenMP, packages, commands), and how to run it (a callable that returns the section and
the build information). The agent validates names and parameters against this table
before it detects or compiles anything, so a typo fails in a second with exit 2, and the
controller shows the same table (`instbench benchmarks list|describe`).

Built-in benchmarks are declared in `builtins.py` (their modules are imported only when
their entry is asked for); the declaration types are in `declarations.py` and re-exported
here. This module is part of agent.pyz: stdlib-only, Python 3.9.

Third-party benchmarks register through the entry point group `instbench.benchmarks`: the
entry point's name is the benchmark name, and it loads either a `BenchmarkInfo` or a
zero-argument callable returning one. Plugins are loaded only on the controller, with
`importlib.metadata` (`catalog()`), for listing, describing and validating parameters; the
agent on the instance is a stdlib zipapp that contains only instbench's own code, so it
runs built-in benchmarks only (`names()`, `info()`, `parse_list()` never see plugins).
Shipping a plugin's code to instances is not supported yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from instbench.benchmarks.builtins import BUILTINS as _BUILTINS
from instbench.benchmarks.declarations import (
    PARAMETER_KINDS,
    RESERVED_NAMES,
    BenchmarkInfo,
    Parameter,
    Requirements,
    RunContext,
    Runner,
)
from instbench.benchmarks.errors import BenchmarkInputError

ENTRY_POINT_GROUP = "instbench.benchmarks"
"""Entry point group through which installed distributions add benchmarks."""


def names() -> Tuple[str, ...]:
    """Built-in benchmark names (the ones the agent runs), sorted."""
    return tuple(sorted(_BUILTINS))


def info(name: str) -> BenchmarkInfo:
    """Describe built-in `name`; KeyError if unknown (callers turn it into a one-line error)."""
    return _BUILTINS[name]()


def parse_list(text: str) -> Tuple[str, ...]:
    """'stream, latency' -> ('stream', 'latency'); ValueError with a one-line reason."""
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise ValueError(f"empty benchmark name in {text!r}; known: {', '.join(names())}")
    unknown = [item for item in items if item not in _BUILTINS]
    if unknown:
        raise ValueError(
            f"unknown benchmark {unknown[0]!r}; known benchmarks: {', '.join(names())}"
        )
    if len(set(items)) != len(items):
        raise ValueError(f"benchmark listed twice in {text!r}")
    return tuple(items)


_ASSIGNMENT = re.compile(r"([a-z][a-z0-9_]{0,31})\.([a-z][a-z0-9_]{0,63})=(.*)", re.DOTALL)
MAX_ASSIGNMENTS = 64
"""Most `--param` values one run takes (a bound on input, like every other)."""
MAX_VALUE_CHARS = 512
"""Longest text of one `--param` value (a path or a URL fits)."""


def parse_assignments(items: Sequence[str], selected: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """`--param BENCH.NAME=VALUE` texts -> {bench: {name: typed, checked value}}.

    Every value is converted and checked against the parameter's declared kind and range
    before anything runs; the one-line BenchmarkInputError names the `--param`, what went
    wrong and what is allowed (the range, the choices, the benchmark's parameters). A
    parameter of a benchmark that is not in `selected` is refused too: it would silently
    do nothing. Built-in benchmarks only, as everywhere the agent runs.
    """
    if len(items) > MAX_ASSIGNMENTS:
        raise BenchmarkInputError(
            f"too many --param values ({len(items)}; at most {MAX_ASSIGNMENTS})"
        )
    out: Dict[str, Dict[str, Any]] = {}
    for item in items:
        match = _ASSIGNMENT.fullmatch(item)
        if match is None:
            raise BenchmarkInputError(
                f"invalid --param {item!r}: use BENCH.NAME=VALUE, e.g. linpack.n=3000 "
                "(instbench benchmarks describe BENCH lists the parameters)"
            )
        bench, name, text = match.groups()
        if bench not in _BUILTINS:
            raise BenchmarkInputError(
                f"invalid --param {item!r}: unknown benchmark {bench!r}; known benchmarks: "
                f"{', '.join(names())}"
            )
        if bench not in selected:
            chosen = ", ".join(selected) or "none"
            raise BenchmarkInputError(
                f"invalid --param {item!r}: {bench} is not run (benchmarks: {chosen}); "
                f"add it to --benchmarks"
            )
        described = info(bench)
        declared = {p.name: p for p in described.parameters}
        if name not in declared:
            raise BenchmarkInputError(
                f"invalid --param {item!r}: {bench} has no parameter {name!r}; its "
                f"parameters: {', '.join(declared) or 'none'}"
            )
        if name in out.get(bench, {}):
            raise BenchmarkInputError(f"--param {bench}.{name} is given twice")
        param = declared[name]
        if len(text) > MAX_VALUE_CHARS or not text.strip():
            raise BenchmarkInputError(
                f"invalid --param {item[:80]!r}: {bench}.{name} must be {param.allowed()} "
                f"(at most {MAX_VALUE_CHARS} characters)"
            )
        try:
            value = param.parse(text, bench)
        except BenchmarkInputError:
            raise BenchmarkInputError(
                f"invalid --param {item!r}: {bench}.{name} must be {param.allowed()}"
            ) from None
        out.setdefault(bench, {})[name] = value
    return out


def assignment_args(params: Mapping[str, Mapping[str, Any]]) -> List[str]:
    """{bench: {name: value}} -> ['--param', 'bench.name=text', ...], sorted: what the
    controller passes to the agent, which parses and checks it again."""
    args: List[str] = []
    for bench in sorted(params):
        declared = {p.name: p for p in info(bench).parameters}
        for name in sorted(params[bench]):
            args += ["--param", f"{bench}.{name}={declared[name].format(params[bench][name])}"]
    return args


def packages_for(benchmarks: Sequence[str]) -> Tuple[str, ...]:
    """The packages the built-in `benchmarks` declare, each once, in declaration order.

    What the fleet's user data installs for a task (KeyError for an unknown name: the
    caller has validated the list already).
    """
    out: List[str] = []
    for name in benchmarks:
        for package in info(name).requires.packages:
            if package not in out:
                out.append(package)
    return tuple(out)


# ----------------------------------------------------------------------- plugins


@dataclass(frozen=True)
class PluginProblem:
    """An entry point that could not be registered, and why (shown, never fatal)."""

    entry_point: str
    distribution: Optional[str]
    error: str


@dataclass(frozen=True)
class Catalog:
    """Built-in and plugin benchmarks, plus the plugins that failed to load."""

    benchmarks: Tuple[BenchmarkInfo, ...]
    problems: Tuple[PluginProblem, ...] = ()

    def get(self, name: str) -> Optional[BenchmarkInfo]:
        """The benchmark called `name`, or None."""
        for item in self.benchmarks:
            if item.name == name:
                return item
        return None

    def names(self) -> Tuple[str, ...]:
        """Every name, sorted."""
        return tuple(sorted(b.name for b in self.benchmarks))


def _entry_points(group: str) -> List[Any]:
    from importlib import metadata

    eps = metadata.entry_points()
    select = getattr(eps, "select", None)
    if select is not None:
        return list(select(group=group))
    return list(eps.get(group, []))  # Python 3.9: a dict of group -> entry points


def _distribution(ep: Any) -> Tuple[Optional[str], str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None, "plugin"
    name = dist.metadata["Name"] if dist.metadata is not None else None
    return name, f"plugin {name} {dist.version}"


def load_plugins(
    group: str = ENTRY_POINT_GROUP,
) -> Tuple[Tuple[BenchmarkInfo, ...], Tuple[PluginProblem, ...]]:
    """Benchmarks declared by installed distributions, and the entry points that failed.

    A plugin may not reuse a built-in's name or another plugin's; its entry point name
    must equal the benchmark's name; loading errors of any kind are reported, not raised,
    so one broken plugin never hides the others.
    """
    found: List[BenchmarkInfo] = []
    problems: List[PluginProblem] = []
    for ep in sorted(_entry_points(group), key=lambda e: (e.name, e.value)):
        dist_name, origin = _distribution(ep)
        try:
            obj = ep.load()
            item = obj if isinstance(obj, BenchmarkInfo) else obj()
            if not isinstance(item, BenchmarkInfo):
                raise TypeError(
                    f"loads {type(item).__name__}, not instbench.benchmarks.registry.BenchmarkInfo"
                )
            if item.name != ep.name:
                raise ValueError(f"declares benchmark {item.name!r} under entry point {ep.name!r}")
            if item.name in _BUILTINS:
                raise ValueError(f"{item.name!r} is a built-in benchmark name")
            if any(other.name == item.name for other in found):
                raise ValueError(f"{item.name!r} is registered by another plugin too")
            found.append(replace(item, origin=origin))
        except Exception as exc:  # a plugin's bug must not break the CLI
            problems.append(
                PluginProblem(ep.name, dist_name, f"{type(exc).__name__}: {exc}".strip())
            )
    return tuple(found), tuple(problems)


def catalog(include_plugins: bool = True, group: str = ENTRY_POINT_GROUP) -> Catalog:
    """Built-ins, then plugins (controller side; the agent uses names()/info())."""
    builtins = tuple(info(name) for name in names())
    if not include_plugins:
        return Catalog(builtins)
    plugins, problems = load_plugins(group)
    return Catalog(builtins + plugins, problems)


__all__ = [
    "ENTRY_POINT_GROUP",
    "MAX_ASSIGNMENTS",
    "MAX_VALUE_CHARS",
    "PARAMETER_KINDS",
    "RESERVED_NAMES",
    "BenchmarkInfo",
    "Catalog",
    "Parameter",
    "PluginProblem",
    "Requirements",
    "RunContext",
    "Runner",
    "assignment_args",
    "catalog",
    "info",
    "load_plugins",
    "names",
    "packages_for",
    "parse_assignments",
    "parse_list",
]
