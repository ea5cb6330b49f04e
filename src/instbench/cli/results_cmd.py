"""`instbench results list | show | compare`: the dataset's figures in the terminal.

Same figures as the HTML report (report.model): the headline is STREAM Triad with all
threads, mean over instances with its 95 % interval. Rich tables on a terminal, plain
aligned text without one (no colour, no box drawing), `--json` for scripts.

Every figure is shown with its unit (the tidy table's, from `analysis.tidy.METRICS`), and
the tables stay readable on an 80-column terminal (or a pipe, which Rich takes as 80
columns): labels may wrap, a number never does, and `compare` keeps each value and its
ratio on one line, splitting many types over several tables (each with the first type,
the baseline) rather than squeezing them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from instbench.analysis.aggregate import Summary
from instbench.analysis.tidy import METRICS
from instbench.context import Context
from instbench.errors import UserError
from instbench.report.model import ReportData, TypeRow, change_label, load, load_prices

results_app = typer.Typer(
    help="Show measured results: list types, show one, compare several.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Mount the `results` group on the root app."""
    app.add_typer(results_app, name="results")


InputOpt = typer.Option(Path("data"), "--input", "-i", help="Local mirror (holding raw/).")
SandboxOpt = typer.Option(
    False, "--include-sandbox", help="Count sandbox, local and quick-mode results too."
)
JsonOpt = typer.Option(False, "--json", help="Print JSON instead of a table.")


def _num(value: Any) -> Any:
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 6)
    return value


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _num(v) for k, v in d.items()}


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _ci(low: float | None, high: float | None) -> str:
    return "-" if low is None or high is None else f"{low:.2f}–{high:.2f}"


def _figure(value: float | None) -> str:
    """A measured figure, compactly: 88625 / 358.9 / 41.25 / 0.0034 ('-' when missing).

    Four or five significant digits say more than the spread of a benchmark, and the
    narrower cell keeps a table within 80 columns.
    """
    if value is None or not math.isfinite(value):
        return "-"
    size = abs(value)
    if size >= 1000:
        return f"{value:.0f}"
    if size >= 100:
        return f"{value:.1f}"
    if size >= 0.01 or size == 0:
        return f"{value:.2f}"
    return f"{value:.2g}"


def _interval(low: float | None, high: float | None) -> str:
    return "-" if low is None or high is None else f"{_figure(low)}–{_figure(high)}"


def _unit(summary: Summary) -> str:
    return summary.unit or (METRICS[summary.metric].unit if summary.metric in METRICS else "")


def _table(ctx: Context, title: str, console: Console | None = None) -> Table:
    interactive = ctx.interactive if console is None else console.is_terminal
    if interactive:
        return Table(title=title, box=box.SIMPLE_HEAD)
    return Table(title=title, box=None, pad_edge=False, title_justify="left")


LABEL_MIN_WIDTH = 20
"""Narrowest the names may become: the longest test name and unit word fit in it
("numa-remote-socket", "(iterations/s/MHz)"), so names wrap between words."""


def _label_column(table: Table, name: str) -> None:
    """A column of names: wraps (between words; inside one only if it must), never cut."""
    table.add_column(name, overflow="fold", ratio=1, min_width=LABEL_MIN_WIDTH)


def _number_column(table: Table, name: str) -> None:
    """A column of figures: never wrapped, so no number is split or parted from its ratio."""
    table.add_column(name, justify="right", no_wrap=True)


def _load(input_dir: Path, include_sandbox: bool, prices: Path | None) -> ReportData:
    return load(
        input_dir,
        include_sandbox=include_sandbox,
        prices=load_prices(prices) if prices else None,
    )


def _empty_note(ctx: Context, data: ReportData) -> None:
    hint = (
        "" if data.include_sandbox else " (sandbox, local and quick results need --include-sandbox)"
    )
    ctx.console.print(f"no results{hint}", soft_wrap=True)


def _overview(ctx: Context, rows: list[TypeRow], priced: bool) -> Table:
    table = _table(ctx, "STREAM Triad, all threads (GB/s): mean over instances")
    cols = ["type", "arch", "vendor", "vCPUs", "GiB", "Triad", "95% CI", "per vCPU"]
    if priced:
        cols += ["$/h", "GB/s per $/h"]
    cols += ["n", "last measured"]
    for c in cols:
        table.add_column(c, justify="left" if c in {"type", "arch", "vendor"} else "right")
    for r in rows:
        cells = [
            r.instance_type,
            r.architecture or "-",
            r.manufacturer or "-",
            str(r.vcpus or "-"),
            _fmt(r.memory_gib, 1),
            _fmt(r.triad),
            _ci(r.ci_low, r.ci_high),
            _fmt(r.per_vcpu),
        ]
        if priced:
            cells += [_fmt(r.price_per_hour, 4), _fmt(r.gbps_per_dollar, 1)]
        cells += [str(r.n), r.last[:10]]
        table.add_row(*cells)
    return table


@results_app.command("list")
def list_cmd(
    input_dir: Path = InputOpt,
    type_pattern: str | None = typer.Option(
        None, "--type", "-t", help="Glob on the type name (m7*); a plain word is a substring."
    ),
    benchmark: str | None = typer.Option(
        None, "--benchmark", "-b", help="Only types with results of this benchmark (stream)."
    ),
    include_sandbox: bool = SandboxOpt,
    prices: Path | None = typer.Option(None, "--prices", help="Price file for $/h columns."),
    as_json: bool = JsonOpt,
) -> None:
    """One line per instance type: headline bandwidth, interval, per vCPU, n."""
    ctx = Context()
    data = _load(input_dir, include_sandbox, prices)
    rows = data.filtered(type_pattern, benchmark)
    if as_json:
        print(json.dumps({"types": [_clean(r.as_dict()) for r in rows]}, indent=2, sort_keys=True))
        return
    if not rows:
        _empty_note(ctx, data)
        return
    ctx.console.print(_overview(ctx, rows, any(r.price_per_hour for r in rows)))


def _label(summary: Summary) -> str:
    """'triad bandwidth (GB/s)': the row's name within its benchmark, with the unit."""
    unit = _unit(summary)
    return f"{summary.test} {summary.metric}" + (f" ({unit})" if unit else "")


def _benchmark_row(table: Table, benchmark: str, seen: list[str]) -> None:
    """A line naming the benchmark before its first figure (the rows are sorted by it)."""
    if seen and seen[-1] == benchmark:
        return
    seen.append(benchmark)
    table.add_row(f"[bold]{benchmark}[/bold]", *([""] * (len(table.columns) - 1)))


def summaries_table(
    ctx: Context, title: str, summaries: list[Summary], console: Console | None = None
) -> Table:
    """`results show`: one line per figure, with its unit, mean, median, interval and CV."""
    table = _table(ctx, title, console)
    _label_column(table, "figure (unit)")
    _number_column(table, "threads")
    for c in ("n", "mean", "median", "95% CI", "CV"):
        _number_column(table, c)
    seen: list[str] = []
    for s in summaries:
        _benchmark_row(table, s.benchmark, seen)
        table.add_row(
            _label(s),
            s.thread_mode,
            str(s.n),
            _figure(s.mean),
            _figure(s.median),
            _interval(s.ci_low, s.ci_high),
            "-" if s.cv is None else f"{s.cv * 100:.1f}%",
        )
    return table


def _change_lines(data: ReportData, instance_type: str) -> list[str]:
    """The type's change points on its weekly history (size, 95 % interval, where), its
    CPU-mix changes, and the series that could not be tested, with the reason."""
    lines = []
    for c in data.changes_of(instance_type):
        lines.append(
            f"change point {c.window}: {c.benchmark} {c.test} {c.thread_mode} {c.metric} "
            f"({c.cpu_model or 'all CPU models'}) {change_label(c)}, "
            f"{'worse' if c.worse else 'better'}; mean {_fmt(c.mean_before)} "
            f"({c.first_window}..{c.previous_window}, n={c.n_before}) -> "
            f"{_fmt(c.mean_after)} ({c.window}..{c.last_window}, n={c.n_after}), "
            f"q={c.q_value:.2g}"
        )
    for m in data.mix_changes_of(instance_type):
        lines.append(
            f"not a regression {m.window}: {m.benchmark} {m.test} {m.thread_mode} {m.metric}: "
            f"{m.message}"
        )
    if not lines:
        lines.append("no change point found in the weekly history")
    for u in data.untested_of(instance_type):
        model = f" ({u.cpu_model})" if u.cpu_model else ""
        lines.append(
            f"not tested: {u.benchmark} {u.test} {u.thread_mode} {u.metric}{model}: {u.reason}"
        )
    return lines


@results_app.command("show")
def show_cmd(
    instance_type: str = typer.Argument(..., help="Instance type, e.g. m7i.large."),
    input_dir: Path = InputOpt,
    include_sandbox: bool = SandboxOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Every statistic of one type, and the machine it ran on."""
    ctx = Context()
    data = _load(input_dir, include_sandbox, None)
    row = data.row(instance_type)
    summaries = data.summaries_of(instance_type)
    machine = data.machines.get(instance_type)
    if as_json:
        out = {
            "type": _clean(row.as_dict()),
            "summaries": [_clean(s.as_dict()) for s in summaries],
            "machine": machine.as_dict() if machine else None,
            "raw": data.raw_keys.get(instance_type, []),
            "changes": [_clean(c.as_dict()) for c in data.changes_of(instance_type)],
            "cpuMixChanges": [_clean(m.as_dict()) for m in data.mix_changes_of(instance_type)],
            "untested": [_clean(u.as_dict()) for u in data.untested_of(instance_type)],
        }
        print(json.dumps(out, indent=2, sort_keys=True))
        return
    ctx.console.print(summaries_table(ctx, f"{instance_type}: {row.n} instance(s)", summaries))
    ctx.console.print()
    for line in _change_lines(data, instance_type):
        ctx.console.print(line, soft_wrap=True, markup=False)
    if machine:
        ctx.console.print()
        for label, value in (
            ("CPU model", machine.cpu_model),
            ("architecture", f"{machine.architecture} ({machine.manufacturer})"),
            ("vCPUs", str(machine.vcpus)),
            ("memory", f"{machine.memory_gib:.2f} GiB"),
            ("compiler", machine.compiler or "-"),
            ("flags", machine.cflags),
            ("AMI", machine.ami_id or "not on EC2"),
            ("OS", f"{machine.os} / {machine.kernel}"),
            ("newest result", machine.key),
        ):
            ctx.console.print(f"{label:>14}: {value}", soft_wrap=True, markup=False)


@results_app.command("compare")
def compare_cmd(
    instance_types: list[str] = typer.Argument(..., help="Two or more instance types."),
    input_dir: Path = InputOpt,
    include_sandbox: bool = SandboxOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Side by side: mean per kernel and thread mode, and the ratio to the first type."""
    ctx = Context()
    if len(instance_types) < 2:
        raise UserError("compare needs at least two instance types")
    data = _load(input_dir, include_sandbox, None)
    for t in instance_types:
        data.row(t)  # a clear error naming the known types
    by_key: dict[tuple[str, str, str, str], dict[str, Summary]] = {}
    for t in instance_types:
        for s in data.summaries_of(t):
            by_key.setdefault((s.benchmark, s.test, s.thread_mode, s.metric), {})[t] = s
    first = instance_types[0]
    if as_json:
        rows = []
        for (bench, test, mode, metric), per in sorted(by_key.items()):
            base = per.get(first)
            rows.append(
                {
                    "benchmark": bench,
                    "test": test,
                    "thread_mode": mode,
                    "metric": metric,
                    "unit": _unit(next(iter(per.values()))),
                    "types": {
                        t: {
                            "mean": _num(s.mean),
                            "ci_low": _num(s.ci_low),
                            "ci_high": _num(s.ci_high),
                            "n": s.n,
                            "ratio_to_first": _num(s.mean / base.mean)
                            if base and base.mean
                            else None,
                        }
                        for t, s in per.items()
                    },
                }
            )
        print(json.dumps({"types": instance_types, "rows": rows}, indent=2, sort_keys=True))
        return
    for table in compare_tables(ctx, instance_types, by_key):
        ctx.console.print(table)


Figures = dict[tuple[str, str, str, str], dict[str, Summary]]
"""(benchmark, test, thread mode, metric) -> instance type -> its summary."""


def _compare_table(
    ctx: Context, types: list[str], by_key: Figures, title: str, console: Console | None
) -> Table:
    first = types[0]
    table = _table(ctx, title, console)
    _label_column(table, "figure (unit)")
    _number_column(table, "threads")
    for t in types:
        _number_column(table, t)
    seen: list[str] = []
    for (bench, _test, mode, _metric), per in sorted(by_key.items()):
        base = per.get(first)
        _benchmark_row(table, bench, seen)
        cells = [_label(next(iter(per.values()))), mode]
        for t in types:
            got = per.get(t)
            if got is None:
                cells.append("-")
            elif t == first or base is None or not base.mean:
                cells.append(_figure(got.mean))
            else:
                cells.append(f"{_figure(got.mean)} ({got.mean / base.mean:.2f}x)")
        table.add_row(*cells)
    return table


def compare_tables(
    ctx: Context, types: list[str], by_key: Figures, console: Console | None = None
) -> list[Table]:
    """The comparison as tables that fit the console's width.

    All types in one table when it fits; otherwise the others in groups, each table with
    the first type (the baseline of the ratios) and as many others as fit. Value cells
    never wrap, so each value stays on one line with its ratio.
    """
    out = console or ctx.console
    first, others = types[0], types[1:]
    for size in range(len(others), 0, -1):
        groups = [others[i : i + size] for i in range(0, len(others), size)]
        tables = [
            _compare_table(
                ctx,
                [first, *group],
                by_key,
                f"mean over instances (ratio to {first})"
                + (f", {n + 1}/{len(groups)}" if len(groups) > 1 else ""),
                console,
            )
            for n, group in enumerate(groups)
        ]
        # Measured as if unbounded: a measurement is capped at the width it is given.
        unbounded = out.options.update_width(10 * max(out.width, 80))
        if all(Measurement.get(out, unbounded, t).minimum <= out.width for t in tables):
            return tables
    return tables  # even one other type does not fit: the narrowest there is
