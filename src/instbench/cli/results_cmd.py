"""`instbench results list | show | compare`: the dataset's figures in the terminal.

Same figures as the HTML report (report.model): the headline is STREAM Triad with all
threads, mean over instances with its 95 % interval. Rich tables on a terminal, plain
aligned text without one (no colour, no box drawing), `--json` for scripts.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from instbench.analysis.aggregate import Summary
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


def _table(ctx: Context, title: str) -> Table:
    if ctx.interactive:
        return Table(title=title)
    return Table(title=title, box=None, pad_edge=False, title_justify="left")


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


def _summaries_table(ctx: Context, title: str, summaries: list[Summary]) -> Table:
    table = _table(ctx, title)
    for c in ("benchmark", "test", "threads", "metric", "n", "mean", "median", "95% CI", "CV"):
        table.add_column(
            c, justify="right" if c in {"n", "mean", "median", "95% CI", "CV"} else "left"
        )
    for s in summaries:
        table.add_row(
            s.benchmark,
            s.test,
            s.thread_mode,
            f"{s.metric} ({s.unit})",
            str(s.n),
            _fmt(s.mean),
            _fmt(s.median),
            _ci(s.ci_low, s.ci_high),
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
    ctx.console.print(_summaries_table(ctx, f"{instance_type}: {row.n} instance(s)", summaries))
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
    table = _table(ctx, f"mean over instances (ratio to {first})")
    for c in ("benchmark", "test", "threads", "metric"):
        table.add_column(c)
    for t in instance_types:
        table.add_column(t, justify="right")
    for (bench, test, mode, metric), per in sorted(by_key.items()):
        base = per.get(first)
        cells = [bench, test, mode, metric]
        for t in instance_types:
            got = per.get(t)
            if got is None:
                cells.append("-")
            elif t == first or base is None or not base.mean:
                cells.append(_fmt(got.mean))
            else:
                cells.append(f"{_fmt(got.mean)} ({got.mean / base.mean:.2f}x)")
        table.add_row(*cells)
    ctx.console.print(table)
