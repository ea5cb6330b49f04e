"""Write the static report: overview, charts, one page per type, methodology.

Layout of the output folder (replaced as a whole: written to a staging folder beside it,
then swapped in, so a failed build never leaves half a site):

    index.html          overview table (sortable, filterable)
    charts.html         bandwidth by type, per-vCPU scaling, price-performance, history,
                        network measured against advertised
    types/{type}.html   one page per instance type
    methodology.html    how the numbers were made, from the dataset's own metadata
    raw/...             the accepted raw result documents behind the figures: each one
                        checked against the sha256 ingest recorded (a file changed since
                        is left out), and written without account ids
    style.css, table.js

Nothing is fetched at view time: charts are inline SVG rendered at build time
(charts.py), the only script is table.js (sorting/filtering), all links are relative.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from instbench import __version__
from instbench.analysis import stats
from instbench.analysis.tidy import METRICS
from instbench.errors import InvalidResult, StorageError, UserError
from instbench.report import charts
from instbench.report.model import ReportData, change_label
from instbench.report.templates import STYLE, TABLE_JS, TEMPLATES
from instbench.results.validate import MAX_RESULT_BYTES, content_sha256, load_json

NAV = (
    ("index.html", "Overview", "index"),
    ("charts.html", "Charts", "charts"),
    ("methodology.html", "Methodology", "methodology"),
)

OVERVIEW_COLUMNS = (
    ("Type", "text"),
    ("Architecture", "text"),
    ("Vendor", "text"),
    ("vCPUs", "number"),
    ("Memory (GiB)", "number"),
    ("Triad GB/s [95 % CI]", "number"),
    ("GB/s per vCPU", "number"),
)
PRICE_COLUMNS = (("$/h (on-demand)", "number"), ("GB/s per $/h", "number"))
TAIL_COLUMNS = (("n", "number"), ("Last measured", "text"))

RESULT_COLUMNS = (
    ("Benchmark", "text"),
    ("Test", "text"),
    ("Threads", "text"),
    ("Metric", "text"),
    ("n", "number"),
    ("Mean", "number"),
    ("Median", "number"),
    ("95 % CI", "text"),
    ("Min", "number"),
    ("Max", "number"),
    ("CV", "number"),
    ("Within CV", "number"),
)


@dataclass(frozen=True)
class Chart:
    name: str
    title: str
    caption: str
    svg: str | None
    missing: str


@dataclass(frozen=True)
class Site:
    """What was written."""

    output: Path
    pages: list[str]
    empty: bool


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:,.{digits}f}"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.DictLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(fmt=fmt, pct=pct, version=__version__, nav=NAV)
    return env


def _chart_list(data: ReportData) -> list[Chart]:
    specs = charts.site_charts(data)
    texts = {
        "bandwidth": (
            "Bandwidth by instance type",
            "STREAM Triad, all threads: mean over instances (bars) and 95 % confidence "
            "interval (black lines, when n ≥ 2), coloured by architecture / vendor.",
            "No Triad figures to chart.",
        ),
        "scaling": (
            "Bandwidth per vCPU by size, within each family",
            "Triad GB/s per vCPU against the size in vCPUs (log scale), one line per family.",
            "No per-vCPU figures to chart.",
        ),
        "price": (
            "Price-performance",
            "Triad GB/s against the on-demand hourly price.",
            "No price data: pass --prices FILE (see instbench/prices.py for the format) to "
            "chart bandwidth against price.",
        ),
        "history": (
            "History",
            "Triad GB/s per ISO week with 95 % confidence intervals (when n ≥ 2 that week); "
            "dashed lines mark change points with their size and 95 % interval.",
            "No dated Triad figures to chart.",
        ),
        "network": (
            "Network: measured against advertised",
            "TCP throughput between two instances of the type (iperf3, N flows; the "
            "sustained rate after a burst run, for 'Up to' types) beside the baseline and "
            "peak Gbps that DescribeInstanceTypes advertises for its network card.",
            "No network figures to chart.",
        ),
    }
    out = []
    for name, spec in specs.items():
        title, caption, missing = texts[name]
        svg = charts.render_svg(spec, name) if spec else None
        out.append(Chart(name, title, caption, svg, missing))
    return out


def _stream_notes(data: ReportData) -> list[tuple[str, list[str]]]:
    machines = list(data.machines.values())

    def distinct(attr: str) -> list[str]:
        return sorted({str(getattr(m, attr)) for m in machines if getattr(m, attr)})

    return [
        ("Array size", distinct("array_size_reason")),
        ("Non-temporal stores", distinct("nontemporal_stores")),
        ("Huge pages", distinct("huge_pages")),
        ("THP policy", distinct("thp")),
    ]


def check_output(output: Path, input_dir: Path) -> None:
    """Refuse an output that would overwrite the input or a non-report folder."""
    out = output.resolve()
    src = input_dir.resolve()
    if out == src or src.is_relative_to(out):
        raise UserError(f"--output {output} would replace the input {input_dir}")
    if out.exists() and not out.is_dir():
        raise UserError(f"--output {output} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / "index.html").exists():
        raise UserError(
            f"--output {output} is a non-empty folder that is not a report: refusing to replace it"
        )


def build_site(data: ReportData, output: Path) -> Site:
    """Render every page of `data` into `output` (replaced as a whole)."""
    check_output(output, data.input_dir)
    published = publishable_raw(data)
    data.raw_keys = {
        itype: [k for k in keys if k in published] for itype, keys in data.raw_keys.items()
    }
    env = _environment()
    last = max((r.last for r in data.types), default=None)
    common: dict[str, Any] = {
        "data": data,
        "last": last,
        "linked": {r.instance_type for r in data.types},
    }
    pages: dict[str, str] = {}
    has_prices = any(r.price_per_hour for r in data.types)
    columns = OVERVIEW_COLUMNS + (PRICE_COLUMNS if has_prices else ()) + TAIL_COLUMNS
    pages["index.html"] = env.get_template("index.html").render(
        **common,
        root="",
        page="index",
        columns=columns,
        has_prices=has_prices,
        architectures=sorted({r.architecture for r in data.types if r.architecture}),
    )
    pages["charts.html"] = env.get_template("charts.html").render(
        **common, root="", page="charts", charts=[] if data.empty else _chart_list(data)
    )
    trials = sorted({s.trials for s in data.summaries if s.trials and s.benchmark == "stream"})
    pages["methodology.html"] = env.get_template("methodology.html").render(
        **common,
        root="",
        page="methodology",
        trials=trials[len(trials) // 2] if trials else None,
        stream_notes=_stream_notes(data),
        metrics=list(METRICS.values()),
        confidence_pct=round(stats.CONFIDENCE * 100),
    )
    type_template = env.get_template("type.html")
    for row in data.types:
        samples = data.samples_of(row.instance_type)
        spread = charts.spread(samples)
        weeks = {w.window for w in data.weekly if w.instance_type == row.instance_type}
        type_changes = data.changes_of(row.instance_type)
        hist = (
            charts.history(data.weekly, [row.instance_type], type_changes)
            if len(weeks) > 1
            else None
        )
        pages[f"types/{row.instance_type}.html"] = type_template.render(
            **common,
            root="../",
            page="type",
            row=row,
            summaries=data.summaries_of(row.instance_type),
            result_columns=RESULT_COLUMNS,
            spread_svg=charts.render_svg(spread, "spread") if spread else None,
            history_svg=charts.render_svg(hist, "history") if hist else None,
            storage_svg=charts.render_svg(disk, "storage")
            if (disk := charts.storage(data.summaries_of(row.instance_type)))
            else None,
            changes=type_changes,
            mix_changes=data.mix_changes_of(row.instance_type),
            untested=data.untested_of(row.instance_type),
            change_label=change_label,
            min_effect=data.changes.min_effect if data.changes else None,
            machine=data.machines.get(row.instance_type),
            raw_keys=data.raw_keys.get(row.instance_type, []),
            legacy=data.legacy_of(row.instance_type),
        )
    _write_site(output, pages, published)
    return Site(output=output, pages=sorted(pages), empty=data.empty)


PRIVATE_KEYS = frozenset({"account_id", "accountId", "AccountId", "owner_id", "OwnerId"})
"""Fields that name the AWS account a result was measured in: never published."""


def _redacted(value: Any) -> Any:
    """`value` without the fields of PRIVATE_KEYS, at any depth (the depth is bounded:
    the document passed `load_json`)."""
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items() if k not in PRIVATE_KEYS}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def publishable_raw(data: ReportData) -> dict[str, bytes]:
    """key -> the bytes the site publishes for each accepted raw document.

    Each file is read again, bounded, and its content sha256 compared with the one ingest
    recorded: a file changed since (corruption, an edit behind the cache's back) is left
    out rather than published as the source of figures it no longer holds. What is
    published is the document without account ids (`PRIVATE_KEYS`)."""
    out: dict[str, bytes] = {}
    for key in sorted({k for keys in data.raw_keys.values() for k in keys}):
        expected = data.raw_sha256.get(key)
        try:
            path = data.input_dir / key
            if path.stat().st_size > MAX_RESULT_BYTES:
                continue
            doc = load_json(path.read_bytes())
        except (OSError, InvalidResult):
            continue
        if expected is None or content_sha256(doc) != expected:
            continue
        text = json.dumps(_redacted(doc), indent=2, sort_keys=True, ensure_ascii=False)
        out[key] = (text + "\n").encode()
    return out


def _write_site(output: Path, pages: dict[str, str], raw: dict[str, bytes]) -> None:
    parent = output.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{output.name}-staging-", dir=parent))
    except OSError as exc:
        raise StorageError(f"cannot write the report under {parent}: {exc}") from exc
    try:
        (staging / "style.css").write_text(STYLE.lstrip(), encoding="utf-8")
        (staging / "table.js").write_text(TABLE_JS.lstrip(), encoding="utf-8")
        for name, html in pages.items():
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(html, encoding="utf-8")
        for key, body in raw.items():
            target = staging / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
        old = None
        if output.exists():
            old = parent / f".{output.name}-old-{staging.name}"
            output.rename(old)
        staging.rename(output)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        raise StorageError(f"cannot write the report into {output}: {exc}") from exc
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
