"""`instbench report`: the static HTML report of a local mirror.

Thin: parse options, load the figures (report.model), write the site (report.site),
print where it is. Bad input (missing input folder, unreadable price file, an output
that is not a report folder) is one line on stderr and exit code 2 (app.main).
"""

from __future__ import annotations

from pathlib import Path

import typer

from instbench.context import Context
from instbench.report.model import load, load_prices
from instbench.report.site import build_site, check_output


def register(app: typer.Typer) -> None:
    """Mount `report` on the root app."""
    app.command("report")(report_cmd)


def report_cmd(
    input_dir: Path = typer.Option(
        Path("data"), "--input", "-i", help="Local mirror (the folder holding raw/)."
    ),
    output: Path = typer.Option(Path("site"), "--output", "-o", help="Folder to write."),
    include_sandbox: bool = typer.Option(
        False,
        "--include-sandbox",
        help="Show sandbox, local and quick-mode results too (demos and tests).",
    ),
    prices: Path | None = typer.Option(
        None, "--prices", help="Price file (JSON, see instbench/prices.py) for $/h columns."
    ),
) -> None:
    """Write a static HTML report (works offline from a folder or on GitHub Pages)."""
    ctx = Context()
    check_output(output, input_dir)
    price_set = load_prices(prices) if prices else None
    data = load(input_dir, include_sandbox=include_sandbox, prices=price_set)
    site = build_site(data, output)
    index = (site.output / "index.html").resolve()
    if site.empty:
        ctx.console.print("no results to show: the report says so", soft_wrap=True)
    else:
        ctx.console.print(
            f"{len(data.types)} instance types, {len(site.pages)} pages", soft_wrap=True
        )
    ctx.console.print(f"report: {index}", soft_wrap=True, markup=False, highlight=False)
