"""Charts of the report: Vega-Lite specifications rendered to SVG when the site is built.

Why Vega-Lite through `vl-convert-python` (and not plotly, or Vega-Lite in the browser):
- Offline by construction: vl-convert embeds the Vega/Vega-Lite JavaScript in its own
  V8 (deno) runtime and renders static SVG at build time. The site ships no JavaScript
  library at all, so there is nothing to fetch from a CDN and nothing to vendor; pages
  open from a folder, a file:// URL or GitHub Pages alike.
- Size: a chart is a few tens of kB of SVG; plotly inlines ~3.5 MB of plotly.js per page
  (or one shared copy), which the reader downloads to see four charts.
- Accessibility: the SVG carries `role="graphics-document"` and an `aria-label` from each
  spec's `description`, text stays text (readable by screen readers, selectable, crisp at
  any zoom), and every chart has the table of the same numbers next to it.
- Well kept: Vega-Lite (UW IDL / Vega project) and vl-convert (the project behind
  Altair's static export) are maintained; specs are plain JSON dicts, so no Altair
  (and its pandas-era dependencies) is needed. One dependency: vl-convert-python.

Every chart has axis titles with units and a legend when colour encodes something.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import vl_convert

from instbench.analysis.aggregate import Summary
from instbench.analysis.changes import Change
from instbench.report.model import HEADLINE, ReportData, Sample, TypeRow, change_label

Spec = dict[str, Any]

_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
_WIDTH = 640


def _base(description: str, values: list[dict[str, Any]]) -> Spec:
    return {
        "$schema": _SCHEMA,
        "description": description,
        "data": {"values": values},
        "width": _WIDTH,
        # A generic family: the build-time renderer and the browser then measure text alike.
        "config": {
            "font": "sans-serif",
            "axis": {"labelLimit": 240, "titlePadding": 10},
            "legend": {"titleLimit": 400, "labelLimit": 300},
        },
    }


def group_label(architecture: str | None, manufacturer: str | None) -> str:
    return f"{architecture or '?'} / {manufacturer or '?'}"


def bandwidth_by_type(rows: Sequence[TypeRow]) -> Spec | None:
    """Headline Triad bandwidth per type, bars coloured by architecture / vendor, CI bars."""
    values = [
        {
            "type": r.instance_type,
            "group": group_label(r.architecture, r.manufacturer),
            "gbps": r.triad,
            "low": r.ci_low,
            "high": r.ci_high,
            "n": r.n,
        }
        for r in rows
        if r.triad is not None
    ]
    if not values:
        return None
    ranked = sorted(
        (r for r in rows if r.triad is not None),
        key=lambda r: (group_label(r.architecture, r.manufacturer), -(r.triad or 0.0)),
    )
    order = [r.instance_type for r in ranked]
    y = {"field": "type", "type": "nominal", "sort": order, "title": "Instance type"}
    spec = _base(
        "Bar chart: STREAM Triad bandwidth (GB/s, all threads, mean over instances) per "
        "instance type, coloured by architecture and CPU vendor, with 95 % confidence "
        "intervals as error bars.",
        values,
    )
    spec["height"] = {"step": 22}
    spec["layer"] = [
        {
            "mark": {"type": "bar"},
            "encoding": {
                "y": y,
                "x": {
                    "field": "gbps",
                    "type": "quantitative",
                    "title": "Triad bandwidth, all threads (GB/s)",
                },
                "color": {
                    "field": "group",
                    "type": "nominal",
                    "title": "Architecture / vendor",
                },
            },
        },
        {
            "transform": [{"filter": "isValid(datum.low) && isValid(datum.high)"}],
            "mark": {"type": "rule", "color": "black"},
            "encoding": {
                "y": y,
                "x": {"field": "low", "type": "quantitative"},
                "x2": {"field": "high"},
            },
        },
    ]
    return spec


def per_vcpu_scaling(rows: Sequence[TypeRow]) -> Spec | None:
    """Triad GB/s per vCPU against vCPUs, one line per family (how sizes scale)."""
    values = [
        {"family": r.family, "type": r.instance_type, "vcpus": r.vcpus, "per_vcpu": r.per_vcpu}
        for r in rows
        if r.per_vcpu is not None and r.vcpus
    ]
    if not values:
        return None
    spec = _base(
        "Line chart: STREAM Triad bandwidth per vCPU (GB/s) against the number of vCPUs, "
        "one line per instance family, showing how bandwidth scales with size.",
        values,
    )
    spec["height"] = 320
    spec["mark"] = {"type": "line", "point": {"size": 60}}
    spec["encoding"] = {
        "x": {
            "field": "vcpus",
            "type": "quantitative",
            "scale": {"type": "log", "base": 2},
            "axis": {"values": sorted({v["vcpus"] for v in values}), "format": "d"},
            "title": "Size (vCPUs, log scale)",
        },
        "y": {"field": "per_vcpu", "type": "quantitative", "title": "Triad per vCPU (GB/s)"},
        "color": {"field": "family", "type": "nominal", "title": "Family"},
        "detail": {"field": "family"},
        "tooltip": [{"field": "type"}, {"field": "per_vcpu", "format": ".2f"}],
    }
    return spec


def price_performance(rows: Sequence[TypeRow]) -> Spec | None:
    """Triad GB/s against on-demand $/h; None when no type has both."""
    values = [
        {
            "type": r.instance_type,
            "price": r.price_per_hour,
            "gbps": r.triad,
            "group": group_label(r.architecture, r.manufacturer),
        }
        for r in rows
        if r.price_per_hour and r.triad is not None
    ]
    if not values:
        return None
    spec = _base(
        "Scatter plot: STREAM Triad bandwidth (GB/s) against on-demand price (USD per hour), "
        "coloured by architecture and vendor; points up and to the left give more bandwidth "
        "per dollar.",
        values,
    )
    spec["height"] = 320
    point = {
        "mark": {"type": "point", "filled": True, "size": 80},
        "encoding": {
            "x": {"field": "price", "type": "quantitative", "title": "On-demand price (USD/h)"},
            "y": {"field": "gbps", "type": "quantitative", "title": "Triad bandwidth (GB/s)"},
            "color": {"field": "group", "type": "nominal", "title": "Architecture / vendor"},
        },
    }
    label = {
        "mark": {"type": "text", "align": "left", "dx": 6, "fontSize": 10},
        "encoding": {
            "x": {"field": "price", "type": "quantitative"},
            "y": {"field": "gbps", "type": "quantitative"},
            "text": {"field": "type"},
        },
    }
    spec["layer"] = [point, label]
    return spec


def history(
    weekly: Sequence[Summary],
    types: Sequence[str] | None = None,
    changes: Sequence[Change] = (),
) -> Spec | None:
    """Headline figure per ISO week and type, with the 95 % interval as bars, and each
    change point of the headline series as a dashed line labelled with its size."""
    wanted = set(types) if types is not None else None
    values = [
        {
            "type": s.instance_type,
            "week": s.window,
            "mean": s.mean,
            "low": s.ci_low,
            "high": s.ci_high,
            "n": s.n,
        }
        for s in weekly
        if (s.benchmark, s.test, s.thread_mode, s.metric) == HEADLINE
        and (wanted is None or s.instance_type in wanted)
    ]
    if not values:
        return None
    weeks = {v["week"] for v in values}
    marks: list[dict[str, Any]] = [
        {
            "week": c.window,
            "type": c.instance_type,
            "label": f"{c.instance_type}: {change_label(c)}",
        }
        for c in changes
        if (c.benchmark, c.test, c.thread_mode, c.metric) == HEADLINE
        and (wanted is None or c.instance_type in wanted)
        and c.window in weeks
    ]
    for i, mark in enumerate(marks):
        mark["y"] = 4 + 14 * i  # one line per label, from the top of the plot
    spec = _base(
        "Line chart: STREAM Triad bandwidth (GB/s, mean over the instances measured that "
        "week) per ISO week and instance type, with 95 % confidence intervals as error bars"
        + (
            "; dashed lines mark change points, labelled with the relative change and its "
            "95 % interval."
            if marks
            else "."
        ),
        values,
    )
    spec["height"] = 320
    x = {"field": "week", "type": "ordinal", "title": "Week measured (ISO year-week)"}
    color = {"field": "type", "type": "nominal", "title": "Instance type"}
    spec["layer"] = [
        {
            "mark": {"type": "line", "point": {"size": 50}},
            "encoding": {
                "x": x,
                "y": {"field": "mean", "type": "quantitative", "title": "Triad bandwidth (GB/s)"},
                "color": color,
            },
        },
        {
            "transform": [{"filter": "isValid(datum.low) && isValid(datum.high)"}],
            "mark": {"type": "rule"},
            "encoding": {
                "x": x,
                "y": {"field": "low", "type": "quantitative"},
                "y2": {"field": "high"},
                "color": color,
            },
        },
    ]
    if marks:
        spec["layer"] += [
            {
                "data": {"values": marks},
                "mark": {"type": "rule", "strokeDash": [5, 3], "color": "#cf222e"},
                "encoding": {"x": x},
            },
            {
                "data": {"values": marks},
                # Left of its line: a change is never at the first week, so the label
                # stays inside the plot and clear of the legend on the right.
                "mark": {
                    "type": "text",
                    "align": "right",
                    "dx": -4,
                    "baseline": "top",
                    "color": "#cf222e",
                    "fontSize": 11,
                },
                "encoding": {
                    "x": x,
                    "y": {"field": "y", "type": "quantitative", "scale": None},
                    "text": {"field": "label"},
                },
            },
        ]
    return spec


def spread(samples: Sequence[Sample]) -> Spec | None:
    """Every instance's value per kernel and thread mode (a strip plot of the spread)."""
    values = [
        {
            "kernel": s.test,
            "mode": s.thread_mode,
            "gbps": s.value,
            "instance": f"{s.run_id}-{s.sample}",
        }
        for s in samples
    ]
    if not values:
        return None
    spec = _base(
        "Strip plot: STREAM bandwidth (GB/s) of each measured instance, per kernel, one "
        "panel row per thread mode; the spread of points is the spread between instances.",
        values,
    )
    del spec["width"]
    spec["mark"] = {"type": "tick", "thickness": 2, "size": 18}
    spec["encoding"] = {
        "y": {"field": "kernel", "type": "nominal", "title": "STREAM kernel"},
        "x": {
            "field": "gbps",
            "type": "quantitative",
            "title": "Bandwidth (GB/s)",
            "scale": {"zero": False},
        },
        "color": {"field": "mode", "type": "nominal", "title": "Thread mode"},
        "row": {"field": "mode", "type": "nominal", "title": "Thread mode"},
    }
    spec["resolve"] = {"scale": {"x": "independent"}}
    spec["width"] = _WIDTH
    return spec


def storage(summaries: Sequence[Summary]) -> Spec | None:
    """Measured IOPS of each fio job per disk role, beside the advertised IOPS ceiling."""
    bars = [
        {"target": s.test.replace("/", " · "), "role": s.test.split("/")[0], "iops": s.mean}
        for s in summaries
        if s.benchmark == "storage" and s.metric == "iops"
    ]
    if not bars:
        return None
    ceiling = {
        s.test.split("/")[0]: s.mean
        for s in summaries
        if s.benchmark == "storage" and s.metric == "advertised_iops"
    }
    limits = [
        {"target": b["target"], "role": b["role"], "advertised": ceiling[b["role"]]}
        for b in bars
        if b["role"] in ceiling
    ]
    spec = _base(
        "Bar chart: IOPS of each fio job (O_DIRECT) per disk role, mean over instances; a "
        "black tick on a bar marks that disk's advertised IOPS ceiling, where AWS states one.",
        bars,
    )
    bar_layer: Spec = {
        "mark": {"type": "bar"},
        "encoding": {
            "y": {
                "field": "target",
                "type": "nominal",
                "title": "Disk role · fio job",
                "sort": None,
            },
            "x": {"field": "iops", "type": "quantitative", "title": "IOPS (mean over instances)"},
            "color": {"field": "role", "type": "nominal", "title": "Disk role"},
            "tooltip": [
                {"field": "target", "type": "nominal"},
                {"field": "iops", "type": "quantitative", "format": ",.0f"},
            ],
        },
    }
    layers = [bar_layer]
    if limits:
        layers.append(
            {
                "data": {"values": limits},
                "mark": {"type": "tick", "color": "black", "thickness": 2},
                "encoding": {
                    "y": {"field": "target", "type": "nominal", "sort": None},
                    "x": {"field": "advertised", "type": "quantitative"},
                    "tooltip": [
                        {"field": "role", "type": "nominal", "title": "Advertised for"},
                        {"field": "advertised", "type": "quantitative", "format": ",.0f"},
                    ],
                },
            }
        )
    spec["layer"] = layers
    return spec


_ID = re.compile(r'\bid="([^"]+)"')


def render_svg(spec: Spec, prefix: str) -> str:
    """SVG text of `spec`, ids prefixed so many charts can be inlined in one page."""
    svg = vl_convert.vegalite_to_svg(spec)
    for ident in set(_ID.findall(svg)):
        new = f"{prefix}-{ident}"
        svg = svg.replace(f'id="{ident}"', f'id="{new}"')
        svg = svg.replace(f"url(#{ident})", f"url(#{new})")
        svg = svg.replace(f'href="#{ident}"', f'href="#{new}"')
    return svg


NETWORK_BARS = (
    ("tcp-nflows", "throughput", "measured, N flows"),
    ("sustained", "throughput", "measured, sustained after the burst"),
    ("baseline", "advertised", "advertised baseline"),
    ("peak", "advertised", "advertised peak"),
)
"""(test, metric, label) of the network chart's bars, in legend order."""


def network_vs_advertised(summaries: Sequence[Summary]) -> Spec | None:
    """Per type, what a pair measured (N flows; sustained rate of a burst run) beside what
    AWS advertises (baseline, peak): grouped horizontal bars, Gbps."""
    wanted = {(test, metric): label for test, metric, label in NETWORK_BARS}
    values: list[dict[str, Any]] = [
        {"type": s.instance_type, "what": wanted[(s.test, s.metric)], "gbps": s.mean, "n": s.n}
        for s in summaries
        if s.benchmark == "network" and (s.test, s.metric) in wanted
    ]
    if not any(str(v["what"]).startswith("measured") for v in values):
        return None
    spec = _base(
        "Grouped bar chart: per instance type, the TCP throughput a pair of instances "
        "measured (N flows; the sustained rate after a burst, when one ran) beside the "
        "baseline and peak bandwidth AWS advertises, Gbps.",
        sorted(values, key=lambda v: (v["type"], v["what"])),
    )
    order = [label for _, _, label in NETWORK_BARS]
    spec["height"] = {"step": 14}
    spec["mark"] = {"type": "bar"}
    spec["encoding"] = {
        "y": {"field": "type", "type": "nominal", "title": "Instance type"},
        "yOffset": {"field": "what", "sort": order},
        "x": {"field": "gbps", "type": "quantitative", "title": "TCP throughput (Gbps)"},
        "color": {
            "field": "what",
            "type": "nominal",
            "sort": order,
            "title": "Measured or advertised",
        },
    }
    return spec


def site_charts(data: ReportData) -> dict[str, Spec | None]:
    """The charts page, by chart name (None: not enough data for that chart)."""
    return {
        "bandwidth": bandwidth_by_type(data.types),
        "scaling": per_vcpu_scaling(data.types),
        "price": price_performance(data.types),
        "history": history(data.weekly, changes=data.changes.changes if data.changes else ()),
        "network": network_vs_advertised(data.summaries),
    }
