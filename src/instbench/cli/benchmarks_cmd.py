"""`instbench benchmarks list|describe`: what can be run, what it needs, what it accepts.

Shows the registry (instbench/benchmarks/registry.py): the built-in benchmarks and any
that installed distributions add through the `instbench.benchmarks` entry point group.
Plugins are listed with their origin and `runs in agent: no`, because the agent shipped to
instances contains only instbench's own code. A plugin that fails to load is reported on
stderr and never hides the others.
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from instbench.benchmarks.registry import BenchmarkInfo, Catalog, Parameter, catalog
from instbench.context import Context
from instbench.errors import InvalidBenchmark

_WIDE = 90
"""Terminal width from which `list` also shows parameter names."""

benchmarks_app = typer.Typer(
    help="List the benchmarks instbench can run and describe their parameters.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Mount the `benchmarks` group on the root app."""
    app.add_typer(benchmarks_app, name="benchmarks")


def _warn_problems(ctx: Context, cat: Catalog) -> None:
    for problem in cat.problems:
        dist = f" (from {problem.distribution})" if problem.distribution else ""
        ctx.err_console.print(
            f"warning: benchmark plugin {problem.entry_point!r}{dist} not loaded: {problem.error}",
            markup=False,
            soft_wrap=True,
        )


@benchmarks_app.command("list")
def list_benchmarks(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
) -> None:
    """List built-in and plugin benchmarks."""
    show_list(Context(), catalog(), as_json=as_json)


@benchmarks_app.command("describe")
def describe(
    name: str = typer.Argument(..., metavar="NAME", help="Benchmark name, e.g. latency."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object instead."),
) -> None:
    """Describe one benchmark: version, origin, requirements and parameters."""
    show_describe(Context(), catalog(), name, as_json=as_json)


def show_list(ctx: Context, cat: Catalog, *, as_json: bool) -> None:
    """Render the catalog: JSON on plain stdout, or a Rich table."""
    _warn_problems(ctx, cat)
    if as_json:
        print(json.dumps([b.as_dict() for b in cat.benchmarks], indent=2))
        return
    # On a narrow terminal the parameter names go (`describe` shows them) so that the
    # description keeps room to wrap at word boundaries.
    wide = ctx.console.width >= _WIDE
    table = Table(title="instbench benchmarks", box=None, pad_edge=False)
    table.add_column("name", no_wrap=True)
    table.add_column("version", no_wrap=True)
    table.add_column("origin")
    table.add_column("needs")
    if wide:
        table.add_column("parameters", no_wrap=True)
    table.add_column("description", overflow="fold", ratio=1)
    for b in cat.benchmarks:
        cells = [b.name, b.version, b.origin, "\n".join(b.needs) or "-"]
        if wide:
            cells.append("\n".join(p.name for p in b.parameters) or "-")
        table.add_row(*cells, b.description)
    ctx.console.print(table)


def _lookup(cat: Catalog, name: str) -> BenchmarkInfo:
    found = cat.get(name)
    if found is None:
        raise InvalidBenchmark(
            f"unknown benchmark {name!r}; known benchmarks: {', '.join(cat.names())}"
        )
    return found


def _default_text(p: Parameter) -> str:
    if p.default is not None:
        return str(p.default).lower() if isinstance(p.default, bool) else str(p.default)
    return f"auto: {p.default_note}" if p.default_note else "auto"


def _bound(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _range_text(p: Parameter) -> str:
    if p.choices:
        return " | ".join(p.choices)
    lo, hi = _bound(p.minimum), _bound(p.maximum)
    return f"{lo}..{hi}" if lo or hi else "-"


def show_describe(ctx: Context, cat: Catalog, name: str, *, as_json: bool) -> None:
    """Render one benchmark; InvalidBenchmark (exit 2) if the name is unknown."""
    _warn_problems(ctx, cat)
    b = _lookup(cat, name)
    if as_json:
        data: dict[str, Any] = b.as_dict()
        print(json.dumps(data, indent=2))
        return
    console = ctx.console
    console.print(f"[bold]{b.name}[/bold] {b.version} — {b.description}")
    console.print(f"origin: {b.origin}", markup=False)
    console.print(
        "runs in the agent: "
        + ("yes" if b.runs_in_agent else "no (plugins run on the controller side only)"),
        markup=False,
    )
    console.print(f"needs on the instance: {', '.join(b.needs) or 'nothing'}", markup=False)
    if b.instances > 1:
        console.print(
            f"instances: {b.instances} (a server and a client: fleet runs launch them as a "
            "pair in one zone; instbench run --local runs both over 127.0.0.1)",
            markup=False,
        )
    if not b.parameters:
        console.print("parameters: none")
        return
    table = Table(title="parameters", box=None, pad_edge=False)
    table.add_column("name", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("range", overflow="fold")
    table.add_column("description and default", overflow="fold", min_width=24)
    for p in b.parameters:
        table.add_row(p.name, p.kind, _range_text(p), f"{p.help}\ndefault: {_default_text(p)}")
    console.print(table)
