"""`instbench types ...`: explain EC2 instance type names, offline.

`types_app` is a module-level Typer group so that other command modules can add their own
subcommands (`types list`, `types describe`) to it; `register` mounts it on the root app.
"""

from __future__ import annotations

import json

import typer
from rich.table import Table

from instbench.context import Context
from instbench.instance_types import InstanceTypeInfo, parse_many

types_app = typer.Typer(
    help="Explain EC2 instance type names: family, generation, CPU vendor, architecture, size.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Mount the `types` group on the root app."""
    app.add_typer(types_app, name="types")


@types_app.command("parse")
def parse(
    names: list[str] = typer.Argument(
        ..., metavar="TYPE", help="Instance types such as m7i.large c7gn.metal u-6tb1.metal."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print a JSON list of objects instead of a table."
    ),
) -> None:
    """Parse instance type names offline, without AWS credentials."""
    # Every name is validated before anything is printed: a bad one leaves stdout empty and
    # exits 2 with one line on stderr (app.main). Vendor and architecture are what the name
    # and AWS's documentation say; `instbench run` still confirms them with
    # DescribeInstanceTypes before launching.
    show_types(Context(), parse_many(names), as_json=as_json)


def show_types(ctx: Context, infos: list[InstanceTypeInfo], *, as_json: bool) -> None:
    """Render parsed types: JSON on plain stdout (for machines) or a Rich table (for people)."""
    if as_json:
        print(json.dumps([info.to_dict() for info in infos], indent=2))
        return
    ctx.console.print(types_table(infos, compact=ctx.console.width < 100))


def types_table(infos: list[InstanceTypeInfo], *, compact: bool = False) -> Table:
    """One row per instance type, in the order given; `compact` shortens two headers to fit."""
    table = Table(
        title="EC2 instance types (parsed offline from the names)",
        box=None,
        pad_edge=False,
    )

    def widest(values: list[str]) -> int:
        return max((len(v) for v in values), default=1)

    # No cell loses characters on a narrow terminal: every column but the last is at least
    # as wide as its longest value, and the last one (attributes, one per line) folds.
    table.add_column("instance type", no_wrap=True)
    table.add_column("family", min_width=widest([i.family for i in infos]))
    table.add_column("gen" if compact else "generation", justify="right", min_width=2)
    table.add_column("vendor", min_width=widest([i.vendor for i in infos]))
    table.add_column(
        "arch" if compact else "architecture", min_width=widest([i.architecture for i in infos])
    )
    table.add_column("size", min_width=widest([i.size for i in infos]))
    table.add_column("attributes", overflow="fold")
    for info in infos:
        table.add_row(
            info.instance_type,
            info.family,
            "-" if info.generation is None else str(info.generation),
            info.vendor,
            info.architecture,
            info.size,
            "\n".join(info.attributes) or "-",
        )
    return table
