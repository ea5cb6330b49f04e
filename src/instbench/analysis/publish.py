"""Publication: the files ComputeCompass fetches, and the dataset behind them.

Layout written under the output directory (replaced as a whole, never half-written):

    latest/memory-benchmarks.json   ComputeCompass contract (shape in the issue / DESIGN)
    latest/cpu-benchmarks.json      ComputeCompass contract
    latest/price-performance.json   ComputeCompass contract
    latest/index.json               files + sha256, versions, row counts, held-back types,
                                    ingest counts, change points (regressions, CPU-mix
                                    changes, untested series), price provenance
    latest/tidy.parquet, tidy.csv   every published figure, one row per sample
    latest/aggregates.csv, .parquet every group's statistics
    latest/quarantine.csv           every rejected file with its reason
    latest/schemas/                 JSON Schemas: result document, tidy table
    latest/datacard.md              what each column means and how it was measured
    {YYYY}-W{WW}/summary.json|csv   weekly statistics
    {YYYY}-{MM}/summary.json|csv    monthly statistics

Complete or absent, never invented: the app reads some fields without null checks, so a
type enters a contract file only when every field the app reads was measured (or read
from the machine; remote NUMA figures are 0 on one socket by the convention the format
has always used). `FIELDS` lists those fields and where each comes from; a type that lacks
any is listed in index.json `heldBack` with exactly what it lacks, and still appears in
the tidy exports.

Figures are means over samples (instances); beside each, a `stats` object gives n, the
median, the 95 % t interval of the mean, and the CV between instances (docs/statistics.md).

Determinism: keys sorted, rows sorted, floats rounded to 6 significant digits, and
`lastUpdated` is the newest published measurement, not the wall clock, so publishing the
same mirror twice gives identical bytes.
"""

from __future__ import annotations

import concurrent.futures
import csv
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from instbench import __version__
from instbench.analysis import changes as changes_mod
from instbench.analysis import compass_schema, reuse, stats
from instbench.analysis import windows as windows_mod
from instbench.analysis.aggregate import (
    SUMMARY_FIELDS,
    Summary,
    excluded_counts,
    publishable_filter,
    summarize,
)
from instbench.analysis.ingest import CACHE_VERSION, Dataset
from instbench.analysis.pricing import InstancePrice, PriceSet
from instbench.analysis.tidy import COLUMN_NAMES, COLUMNS, METRICS
from instbench.errors import StorageError, UserError
from instbench.results.jsonschema import SCHEMA_PATH
from instbench.results.schema import DATA_VERSION, STREAM_KERNELS

PUBLICATION_VERSION = "1.1.0"
"""Version of the publication layout (index.json, exports); independent of data_version.
1.1.0: change points replace the per-pair regression flags (index.json `regressions`,
`improvements`, `cpuMixChanges`, `untested`, `changeDetection`); window summaries carry
the median's interval and `notes`, no `regressions`. A previous publication of another
format is never reused (its window folders are of the old form)."""

SIGNIFICANT_DIGITS = 6

MEMORY_FILE = compass_schema.MEMORY_FILE
CPU_FILE = compass_schema.CPU_FILE
PRICE_FILE = compass_schema.PRICE_FILE

_WINDOW_DIR = re.compile(r"^\d{4}-(W\d{2}|\d{2})$")

SummaryKey = tuple[str, str, str | None, str]
"""(benchmark, test, thread_mode or None for 'any', metric)."""


def num(value: float | None) -> float | None:
    """Stable float formatting: 6 significant digits, -0.0 folded to 0.0."""
    if value is None:
        return None
    return float(format(value, _NUM_FORMAT)) or 0.0  # `or`: -0.0 is falsy too


_NUM_FORMAT = f".{SIGNIFICANT_DIGITS}g"


def dumps(data: Any) -> bytes:
    """The one JSON form of every published file: sorted keys, 2-space indent, newline;
    a list of flat records (tables: groups, rankings, regressions) has one record per line.

    One record per line keeps a git diff of two publications to the lines that changed,
    and lets the C encoder write each record: the stdlib's indenting encoder is pure
    Python, and was a fifth of publication time at 100,000 results.
    """
    return (_pretty(data, "") + "\n").encode()


_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


def _compact(value: Any) -> str:
    return _ENCODER.encode(value)


_CONTAINERS = frozenset({dict, list})


def _is_record(value: Any) -> bool:
    # Exact types (what json.loads and our builders make): 3x faster than isinstance per
    # value, and this runs over every value of every table of a publication.
    return type(value) is dict and _CONTAINERS.isdisjoint(map(type, value.values()))


def _pretty(value: Any, indent: str) -> str:
    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = sorted(value.items())
        body = ",\n".join(f"{inner}{_compact(str(k))}: {_pretty(v, inner)}" for k, v in items)
        return "{\n" + body + "\n" + indent + "}"
    if isinstance(value, list) and value:
        if all(_is_record(v) for v in value):
            body = ",\n".join(inner + _compact(v) for v in value)
        else:
            body = ",\n".join(inner + _pretty(v, inner) for v in value)
        return "[\n" + body + "\n" + indent + "]"
    return _compact(value)


def _stats(s: Summary) -> dict[str, Any]:
    return {
        "n": s.n,
        "mean": num(s.mean),
        "median": num(s.median),
        "ciLow": num(s.ci_low),
        "ciHigh": num(s.ci_high),
        "cv": num(s.cv),
        "withinCv": num(s.within_cv),
    }


class TypeFigures:
    """The summaries of one instance type, looked up by (benchmark, test, mode, metric)."""

    def __init__(self, instance_type: str, summaries: Iterable[Summary]) -> None:
        self.instance_type = instance_type
        self.by_key: dict[tuple[str, str, str, str], Summary] = {}
        for s in summaries:
            self.by_key[(s.benchmark, s.test, s.thread_mode, s.metric)] = s

    def get(self, key: SummaryKey) -> Summary | None:
        bench, test, mode, metric = key
        if mode is not None:
            return self.by_key.get((bench, test, mode, metric))
        for candidate in ("single", "all"):
            found = self.by_key.get((bench, test, candidate, metric))
            if found is not None:
                return found
        return None

    def machine(self, attr: str) -> Any:
        """A machine property (sockets, architecture, vcpus), the same in every summary."""
        for s in sorted(self.by_key.values(), key=lambda s: s.key()):
            value = getattr(s, attr)
            if value is not None:
                return value
        return None


FigureValue = Summary | int | float | None
"""What a field's source yields: a summary (published as its mean, with stats), a number
fixed by the machine or a documented convention, or None (not measured)."""


@dataclass(frozen=True)
class Field:
    """One field the app reads: its path in the type's object and where its value comes from.

    `source` names a summary (benchmark, test, thread mode, metric); `machine` computes
    the value from the type's figures when it is not one summary (a machine property, a
    convention, a choice between summaries). `integer` publishes a summary's median
    rounded to an integer (a count such as LINPACK's n, where a mean of sizes is no size).
    """

    path: tuple[str, ...]
    source: SummaryKey | None = None
    machine: Callable[[TypeFigures], FigureValue] | None = None
    integer: bool = False

    @property
    def name(self) -> str:
        return ".".join(self.path)

    def value(self, fig: TypeFigures) -> FigureValue:
        """The field's value for `fig`, or None when it was not measured."""
        if self.source is not None:
            return fig.get(self.source)
        assert self.machine is not None
        return self.machine(fig)


def _sockets(fig: TypeFigures) -> int | None:
    sockets = fig.machine("sockets")
    return None if sockets is None else int(sockets)


def _remote(metric: str) -> Callable[[TypeFigures], FigureValue]:
    """Remote NUMA figure: 0 on one socket (documented convention), measured otherwise.

    On two or more sockets only a measurement against memory of *another socket*
    (tidy test `numa-remote-socket`) counts; a same-package node (sub-NUMA clustering)
    is not what the app's remoteBandwidth / interSocketLatency mean, and nothing is
    derived from the socket count: without the measurement the type is held back.
    """

    def value(fig: TypeFigures) -> FigureValue:
        sockets = _sockets(fig)
        if sockets is None:
            return None
        if sockets == 1:
            return 0
        return fig.get(("latency", "numa-remote-socket", "single", metric))

    return value


MEMORY_FIELDS: tuple[Field, ...] = (
    *(Field(("stream", k, "bandwidth"), ("stream", k, "all", "bandwidth")) for k in STREAM_KERNELS),
    *(
        Field(("cache", level, metric), ("latency", level, None, metric))
        for level in ("l1", "l2", "l3")
        for metric in ("latency", "bandwidth")
    ),
    Field(("cache", "memory", "latency"), ("latency", "memory", None, "latency")),
    Field(("numa", "socketCount"), machine=_sockets),
    Field(("numa", "localBandwidth"), ("latency", "numa-local", "single", "bandwidth")),
    Field(("numa", "remoteBandwidth"), machine=_remote("bandwidth")),
    Field(("numa", "interSocketLatency"), machine=_remote("latency")),
)
"""Every field of memory-benchmarks.json the app reads, and its source.

Cache figures come from the latency benchmark's rows (tidy._latency_rows): benchmark
'latency', test l1/l2/l3/memory, metrics latency (ns) and bandwidth (GB/s). NUMA
bandwidths are single-thread reads of local and of another socket's memory
(tidy._numa_rows), the same method on every type so that local and remote compare."""

_MEMORY_CONSTANTS: dict[tuple[str, ...], dict[str, str]] = {
    **{("stream", k): {"unit": "GB/s"} for k in STREAM_KERNELS},
    **{("cache", level): {"unit": "ns|GB/s"} for level in ("l1", "l2", "l3")},
    ("cache", "memory"): {"unit": "ns"},
}
"""Constant keys added to a complete entry (units the app displays)."""

COMPASS_VECTOR_EXTENSIONS: dict[str, str] = {
    "sse2": "sse2",
    "avx2": "avx2",
    "avx512": "avx512f",
    "neon": "neon",
    "sve": "sve",
}
"""ComputeCompass's vectorization keys -> the extension names the CPU benchmark uses."""


def _vector(extension: str) -> Callable[[TypeFigures], FigureValue]:
    """All-threads GFLOPS of `extension`; 0 when no sample's CPU offers it.

    0 is read from the machine (the CPU flags), like socketCount: a CPU without AVX-512
    delivers no AVX-512 FLOPS. When the extension is offered, every sample that offers
    it must have measured it (an offered extension the compiler could not target leaves
    the type held back); when samples disagree on whether it is offered (mixed CPU
    models under one type), nothing is published for it either.
    """

    def value(fig: TypeFigures) -> FigureValue:
        offered = fig.get(("cpu", f"vector-{extension}", "all", "offered"))
        if offered is None:
            return None
        if offered.max == 0:
            return 0
        measured = fig.get(("cpu", f"vector-{extension}", "all", "gflops"))
        if offered.min == 1 and measured is not None and measured.n == offered.n:
            return measured
        return None

    return value


CPU_FIELDS: tuple[Field, ...] = (
    Field(("linpack", "gflops"), ("linpack", "hpl", "all", "gflops")),
    Field(("linpack", "efficiency"), ("linpack", "hpl", "all", "efficiency")),
    Field(("linpack", "problemSize"), ("linpack", "hpl", "all", "problem_size"), integer=True),
    *(
        Field(("vectorization", key), machine=_vector(ext))
        for key, ext in COMPASS_VECTOR_EXTENSIONS.items()
    ),
    Field(("scaling", "singleThread"), ("cpu", "instbench-int", "single", "score")),
    Field(("scaling", "allCores"), ("cpu", "instbench-int", "all", "score")),
    Field(("scaling", "smtEfficiency"), ("cpu", "instbench-int", "all", "smt_yield")),
)
"""Every field of cpu-benchmarks.json a type needs to enter the file, and its source.

LINPACK: gflops, efficiency (gflops / estimated peak; a type whose peak could not be
estimated is held back), the matrix order n. Vectorization: the all-threads GFLOPS of
the multiply-add kernel built for each extension (`_vector`). Scaling: instbench-int,
our own integer kernel, one thread and all threads, and its SMT yield. instbench-int is
never published as CoreMark: see `COREMARK_FIELDS`."""

COREMARK_FIELDS: tuple[Field, ...] = (
    Field(("coremark", "score"), ("coremark", "coremark", "all", "score")),
    Field(("coremark", "coremarkMhz"), ("coremark", "coremark", "all", "score_per_mhz")),
)
"""The optional `coremark` object: real EEMBC CoreMark only (tidy._coremark_rows reads
it only from a result section that names itself CoreMark), all threads, and its score
per MHz of the OS-reported maximum clock. A type without it still enters the file, with
no `coremark` object (never our kernel's score in its place); index.json `omitted` lists
such types."""

_CPU_CONSTANTS: dict[tuple[str, ...], dict[str, str]] = {
    ("linpack",): {"unit": "GFLOPS"},
    ("coremark",): {"unit": "iterations/s", "kernel": "EEMBC CoreMark"},
    ("vectorization",): {"unit": "GFLOPS"},
    ("scaling",): {"unit": "iterations/s", "kernel": "instbench-int"},
}


def _set(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value


def _lookup(entry: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = entry
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _values(fig: TypeFigures, fields: Iterable[Field]) -> tuple[dict[Field, Any], list[str]]:
    found: dict[Field, Any] = {}
    missing: list[str] = []
    for f in fields:
        value = f.value(fig)
        if value is None:
            missing.append(f.name)
        else:
            found[f] = value
    return found, missing


def _fill(entry: dict[str, Any], found: Mapping[Field, Any]) -> None:
    for f, value in found.items():
        if isinstance(value, Summary):
            figure = round(value.median) if f.integer else num(value.mean)
            _set(entry, f.path, figure)
            _set(entry, (*f.path[:-1], "stats", f.path[-1]), _stats(value))
        else:
            _set(entry, f.path, value)


def build_entry(
    fig: TypeFigures,
    fields: Iterable[Field],
    constants: Mapping[tuple[str, ...], Mapping[str, str]] | None = None,
    optional: Iterable[tuple[Field, ...]] = (),
) -> tuple[dict[str, Any] | None, list[str]]:
    """(the type's object, []) when every field is known, else (None, missing fields).

    `optional` groups are added whole when every field of the group is known and left
    out entirely otherwise (never half an object). `constants` adds fixed keys (units)
    to the objects that exist.
    """
    found, missing = _values(fig, fields)
    if missing:
        return None, missing
    entry: dict[str, Any] = {}
    _fill(entry, found)
    for group in optional:
        group_found, group_missing = _values(fig, group)
        if not group_missing:
            _fill(entry, group_found)
    for path, keys in (constants if constants is not None else _MEMORY_CONSTANTS).items():
        parent = _lookup(entry, path)
        if isinstance(parent, dict):
            parent.update(keys)
    return entry, []


def _architecture(fig: TypeFigures) -> str:
    manufacturer = fig.machine("manufacturer")
    return {"Intel": "intel", "AMD": "amd", "AWS": "graviton"}.get(
        str(manufacturer), str(manufacturer or "unknown").lower()
    )


def memory_document(
    figures: Mapping[str, TypeFigures], meta: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """memory-benchmarks.json and the held-back types with what they lack."""
    instances: dict[str, Any] = {}
    held: dict[str, list[str]] = {}
    for itype in sorted(figures):
        entry, missing = build_entry(figures[itype], MEMORY_FIELDS)
        if entry is None:
            held[itype] = missing
        else:
            instances[itype] = entry
    triad = sorted(
        (
            {
                "instanceType": t,
                "bandwidth": e["stream"]["triad"]["bandwidth"],
                "architecture": _architecture(figures[t]),
            }
            for t, e in instances.items()
        ),
        key=lambda r: (-r["bandwidth"], r["instanceType"]),
    )
    latency = sorted(
        (
            {
                "instanceType": t,
                "latency": e["cache"]["memory"]["latency"],
                "architecture": _architecture(figures[t]),
            }
            for t, e in instances.items()
        ),
        key=lambda r: (r["latency"], r["instanceType"]),
    )
    doc = {
        **meta,
        "description": "Memory performance of AWS EC2 instance types: STREAM bandwidth, "
        "cache and memory latency, NUMA; means over independent instances with 95 % "
        "confidence intervals.",
        "instances": instances,
        "rankings": {"triad_bandwidth": triad, "memory_latency": latency},
        "summary": {
            "totalInstances": len(instances),
            "architectures": sorted({r["architecture"] for r in triad}),
            "bestMemoryBandwidth": (
                {
                    "instanceType": triad[0]["instanceType"],
                    "bandwidth": triad[0]["bandwidth"],
                    "unit": "GB/s",
                }
                if triad
                else None
            ),
            "bestMemoryLatency": (
                {
                    "instanceType": latency[0]["instanceType"],
                    "latency": latency[0]["latency"],
                    "unit": "ns",
                }
                if latency
                else None
            ),
        },
    }
    return doc, held


@dataclass(frozen=True)
class CpuPublication:
    """cpu-benchmarks.json, the types held back (with what they lack), and the types
    published without a `coremark` object (with the CoreMark fields they lack)."""

    document: dict[str, Any]
    held: dict[str, list[str]]
    omitted: dict[str, list[str]]


def cpu_document(figures: Mapping[str, TypeFigures], meta: dict[str, Any]) -> CpuPublication:
    """cpu-benchmarks.json: LINPACK, vectorization, scaling; real CoreMark where measured."""
    instances: dict[str, Any] = {}
    held: dict[str, list[str]] = {}
    omitted: dict[str, list[str]] = {}
    for itype in sorted(figures):
        fig = figures[itype]
        entry, missing = build_entry(fig, CPU_FIELDS, _CPU_CONSTANTS, (COREMARK_FIELDS,))
        if entry is None:
            held[itype] = missing
            continue
        instances[itype] = entry
        if "coremark" not in entry:
            omitted[itype] = _values(fig, COREMARK_FIELDS)[1]
    peak = sorted(
        (
            {
                "instanceType": t,
                "gflops": e["linpack"]["gflops"],
                "architecture": _architecture(figures[t]),
            }
            for t, e in instances.items()
        ),
        key=lambda r: (-r["gflops"], r["instanceType"]),
    )
    coremark = sorted(
        (
            {
                "instanceType": t,
                "score": e["coremark"]["score"],
                "architecture": _architecture(figures[t]),
            }
            for t, e in instances.items()
            if "coremark" in e
        ),
        key=lambda r: (-r["score"], r["instanceType"]),
    )
    doc = {
        **meta,
        "description": "CPU performance of AWS EC2 instance types: LINPACK GFLOPS and "
        "efficiency, multiply-add GFLOPS per vector extension, integer throughput scaling "
        "(instbench-int, our own kernel) and, only where real EEMBC CoreMark ran and "
        "validated, a coremark object; means over independent instances with 95 % "
        "confidence intervals.",
        "instances": instances,
        "rankings": {"peak_gflops": peak, "coremark_score": coremark},
    }
    return CpuPublication(doc, held, omitted)


def price_document(
    figures: Mapping[str, TypeFigures],
    cpu_instances: Mapping[str, Any],
    prices: PriceSet | None,
    meta: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """price-performance.json: prices, cost per GB/s and per GFLOPS, GB/s per vCPU."""
    instances: dict[str, Any] = {}
    held: dict[str, list[str]] = {}
    for itype in sorted(figures):
        fig = figures[itype]
        price = prices.instances.get(itype) if prices else None
        price = price or InstancePrice()
        triad = fig.get(("stream", "triad", "all", "bandwidth"))
        gflops = cpu_instances.get(itype, {}).get("linpack", {}).get("gflops")
        values: dict[tuple[str, ...], Any] = {
            ("onDemand",): price.on_demand,
            ("spot", "current"): price.spot_current,
            ("spot", "average7d"): price.spot_average_7d,
            ("spot", "reliability"): price.spot_reliability,
            ("reserved", "term1yr"): price.reserved_1yr,
            ("reserved", "term3yr"): price.reserved_3yr,
            ("costEfficiency", "costPerGBs"): (
                price.on_demand / triad.mean if price.on_demand is not None and triad else None
            ),
            ("costEfficiency", "costPerGflop"): (
                price.on_demand / gflops if price.on_demand is not None and gflops else None
            ),
        }
        missing = [".".join(p) for p, v in values.items() if v is None]
        if missing:
            held[itype] = missing
            continue
        entry: dict[str, Any] = {}
        for path, value in values.items():
            _set(entry, path, num(value))
        if triad and triad.per_vcpu is not None:
            entry["costEfficiency"]["gbpsPerVcpu"] = num(triad.per_vcpu)
        instances[itype] = entry
    doc = {
        **meta,
        "description": "Hourly prices (USD, Linux, shared tenancy) and cost per unit of "
        "measured performance.",
        "currency": "USD",
        "prices": (
            {"region": prices.region, "asOf": prices.as_of.isoformat(), "source": prices.source}
            if prices
            else None
        ),
        "instances": instances,
    }
    return doc, held


# ------------------------------------------------------------------------- exports


def _summary_rows(summaries: Iterable[Summary]) -> list[dict[str, Any]]:
    """Each summary as a flat record in SUMMARY_FIELDS order, floats through `num`."""
    rows = []
    for s in summaries:
        row = s.as_dict()
        for k in _FLOAT_FIELDS:
            row[k] = num(row[k])
        rows.append(row)
    return rows


_FLOAT_FIELDS = tuple(
    name
    for name, hint in typing.get_type_hints(Summary).items()
    if hint is float or float in typing.get_args(hint)
)


def _csv_bytes(rows: list[dict[str, Any]], columns: list[str]) -> bytes:
    """CSV with a header; None is written as an empty field (the csv module's own rule)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([row.get(c) for c in columns] for row in rows)
    return buf.getvalue().encode()


_SUMMARY_COLUMNS = list(SUMMARY_FIELDS)


def tidy_schema() -> dict[str, Any]:
    """JSON Schema of one row of the tidy export (generated from tidy.COLUMNS)."""
    types = {
        "VARCHAR": "string",
        "INTEGER": "integer",
        "BIGINT": "integer",
        "DOUBLE": "number",
        "BOOLEAN": "boolean",
        "TIMESTAMP": "string",
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://instbench.dev/schemas/tidy-v1.schema.json",
        "title": "instbench tidy row",
        "type": "object",
        "properties": {
            c.name: {"type": [types[c.sql_type], "null"], "description": c.description}
            for c in COLUMNS
        },
        "required": list(COLUMN_NAMES),
        "additionalProperties": False,
    }


def datacard(index: dict[str, Any]) -> str:
    """The datacard: what the dataset is, each column, each metric, how it was measured."""
    lines = [
        "# instbench dataset — datacard",
        "",
        f"Publication format {PUBLICATION_VERSION}, result data_version {DATA_VERSION}, "
        f"last measurement {index['lastUpdated'] or 'none'}.",
        "",
        "## What it is",
        "",
        "Benchmarks of AWS EC2 instance types measured by instbench on real instances. Each",
        "result document (one instance, one run) is validated against the published JSON",
        "Schema and plausibility rules before it counts; rejected files are listed in",
        "quarantine.csv with the reason. Sandbox, local and quick-mode results are not part of",
        "a real publication. A figure is the mean over independent instances (samples) of",
        "each instance's best-of-trials value; its 95 % interval is a Student t interval of",
        "that mean (docs/statistics.md explains the choice).",
        "",
        "## ComputeCompass files",
        "",
        "memory-benchmarks.json, cpu-benchmarks.json and price-performance.json are validated",
        "against the JSON Schemas in schemas/ (computecompass-*-v1.schema.json) before they",
        "are written. A type appears in one only when every field the app reads was measured;",
        "index.json `heldBack` lists the others with what they lack. The cpu file's `coremark`",
        "object comes only from real EEMBC CoreMark; `scaling` is instbench-int, our own",
        "integer kernel, and is never labelled CoreMark (index.json `omitted` lists the",
        "types published without CoreMark).",
        "",
        "## Counts",
        "",
        f"- files under raw/: {index['ingest']['files']}",
        f"- accepted documents (duplicates counted once): {index['ingest']['accepted']}",
        f"- duplicates: {index['ingest']['duplicates']}",
        f"- rejected (quarantined): {index['ingest']['rejected']}",
        f"- excluded from publication: {index['ingest']['excluded'] or 'none'}",
        "",
        "## Columns of tidy.csv / tidy.parquet",
        "",
        "| column | type | meaning |",
        "|---|---|---|",
        *(f"| `{c.name}` | {c.sql_type} | {c.description} |" for c in COLUMNS),
        "",
        "## Metrics",
        "",
        "| metric | unit | better | meaning |",
        "|---|---|---|---|",
        *(
            f"| `{m.name}` | {m.unit} | {'higher' if m.higher_is_better else 'lower'} | "
            f"{m.description} |"
            for m in METRICS.values()
        ),
        "",
        "## Columns of aggregates.csv",
        "",
        "One row per instance type x benchmark x test x thread mode x metric. `n` counts",
        "instances; `mean`, `median`, `sd`, `cv`, `min`, `max` describe the spread between",
        "instances; `ci_low`/`ci_high` the 95 % t interval of the mean (n >= 2);",
        "`median_ci_low`/`median_ci_high` the distribution-free interval of the median",
        "(n >= 6); `within_sd`/`within_cv` the pooled spread of trials inside one instance;",
        "`per_vcpu`, `per_gib` the mean divided by the machine's vCPUs and memory (GiB).",
        "",
        "## Change points (index.json)",
        "",
        "Each series (type x benchmark x test x thread mode x metric) is searched as a whole",
        "over its weekly windows, within one CPU model at a time. `regressions` and",
        "`improvements` list each change once, at the first window after it, with the",
        "relative change of the mean and its 95 % interval; `cpuMixChanges` the changes",
        "explained by a change of the CPU models behind a type; `untested` every series",
        "that had too few samples, with the reason; `changeDetection` the method and its",
        "thresholds (minimum effect, false-discovery rate). docs/statistics.md section 4.",
        "",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------- writing


def check_output(output: Path) -> None:
    """Fail with one line, before any work, when `output` cannot be written."""
    try:
        output.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output, prefix=".probe-"):
            pass
    except OSError as exc:
        raise StorageError(
            f"cannot write to output directory {output}: {exc.strerror or exc}"
        ) from exc


@dataclass(frozen=True)
class Publication:
    """What was written: the index (also in latest/index.json) and the output root."""

    output: Path
    index: dict[str, Any]
    reused_exports: bool = False
    """The tidy exports were the previous publication's (same inputs), not written again."""


TIDY_FILES = ("tidy.csv", "tidy.parquet")


def inputs_digest(con: duckdb.DuckDBPyConnection) -> str:
    """sha256 of the lines "{key} {content sha256}\n" of every accepted document, by key.

    It names the exact set of results a publication was computed from: two publications
    with the same digest (and generator) were made from the same documents.
    """
    row = con.execute(
        f"SELECT {reuse.documents_digest_sql('sha256')} FROM file_status WHERE status = 'ok'"
    ).fetchone()
    return str(row[0]) if row else ""


GENERATOR = f"instbench {__version__}"


@dataclass(frozen=True)
class Exported:
    """The tidy exports in the staging folder: row count, sha256 per file, reused or not,
    and the publication's `inputs` (index.json) that decided it."""

    rows: int
    sha256: dict[str, str]
    reused: bool
    inputs: dict[str, Any]


def _previous_index(output: Path, include_sandbox: bool) -> dict[str, Any] | None:
    """The previous publication's index.json when it was made by this generator, with the
    same options and ingest rules: only then may any of its files be reused."""
    try:
        old = json.loads((output / "latest" / "index.json").read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(old, dict) or not isinstance(old.get("inputs"), dict):
        return None
    same = (
        old.get("generator") == GENERATOR
        and old.get("publicationFormat") == PUBLICATION_VERSION
        and old.get("includeSandbox") == include_sandbox
        and old["inputs"].get("ingest") == CACHE_VERSION
    )
    return old if same else None


def previous_exports(previous: Mapping[str, Any] | None, inputs: Any) -> dict[str, Any] | None:
    """The previous index's entries of the tidy exports when it was made from the same
    `inputs` (so the files are what this publication would write); None otherwise."""
    if previous is None or previous.get("inputs") != inputs:
        return None
    files = previous.get("files")
    entries = (
        {f.get("path"): f for f in files if isinstance(f, dict)} if isinstance(files, list) else {}
    )
    if not all(isinstance(entries.get(name), dict) for name in TIDY_FILES):
        return None
    return {name: entries[name] for name in TIDY_FILES}


def _export_tidy(
    con: duckdb.DuckDBPyConnection,
    documents: int,
    include_sandbox: bool,
    previous_index: Mapping[str, Any] | None,
    output: Path,
    staging: Path,
) -> Exported:
    """Stage the tidy exports: the previous publication's files when they were made from
    the same inputs and their bytes still hash to what its index.json recorded; else new.

    At 100,000 results the two files are 390 MB and four seconds of DuckDB, most of a
    publication whose inputs did not change. Reused files are hard links (a copy where
    links fail), hashed after linking so that what is checked is what gets published.
    """
    inputs = {"documents": documents, "sha256": inputs_digest(con), "ingest": CACHE_VERSION}
    previous = previous_exports(previous_index, inputs)
    latest = staging / "latest"
    if previous is not None:
        recorded = {name: previous[name].get("sha256") for name in TIDY_FILES}
        rows = {previous[name].get("rows") for name in TIDY_FILES}
        if (
            len(rows) == 1
            and isinstance(count := rows.pop(), int)
            and reuse.stage_verified(output / "latest", latest, recorded)
        ):
            return Exported(rows=count, sha256=dict(recorded), reused=True, inputs=inputs)
    count = _copy_exports(con, publishable_filter(include_sandbox), latest)
    sha = {name: reuse.sha256_file(latest / name) for name in TIDY_FILES}
    return Exported(rows=count, sha256=sha, reused=False, inputs=inputs)


def _copy_exports(con: duckdb.DuckDBPyConnection, where: str, latest: Path) -> int:
    order = "key, benchmark, test, thread_mode, metric"
    cols = ", ".join(COLUMN_NAMES)
    query = f"SELECT {cols} FROM accepted_rows WHERE {where} ORDER BY {order}"
    parquet = (latest / "tidy.parquet").as_posix()
    csv_path = (latest / "tidy.csv").as_posix()
    con.execute("SET preserve_insertion_order = true")
    con.execute(f"COPY ({query}) TO '{parquet}' (FORMAT parquet, COMPRESSION zstd)")
    # The CSV is the Parquet file's rows in the same order: read back, not sorted again
    # (the sort of 800,000 rows was a fifth of the exports at 100,000 results).
    exported = f"read_parquet('{parquet}')"
    con.execute(
        f"COPY (SELECT * FROM {exported}) TO '{csv_path}' (FORMAT csv, HEADER, "
        "TIMESTAMPFORMAT '%Y-%m-%dT%H:%M:%S.%fZ')"
    )
    count = con.execute(f"SELECT count(*) FROM {exported}").fetchone()
    return int(count[0]) if count else 0


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _distinct(
    con: duckdb.DuckDBPyConnection,
    column: str,
    benchmarks: tuple[str, ...],
    include_sandbox: bool,
) -> list[str]:
    names = ", ".join(f"'{b}'" for b in benchmarks)
    rows = con.execute(
        f"SELECT DISTINCT {column} FROM accepted_rows WHERE {column} IS NOT NULL AND "
        f"benchmark IN ({names}) AND {publishable_filter(include_sandbox)} ORDER BY 1"
    ).fetchall()
    return [str(r[0]) for r in rows]


def _methodology(
    con: duckdb.DuckDBPyConnection,
    summaries: Iterable[Summary],
    include_sandbox: bool,
    benchmarks: tuple[str, ...],
    tool: str,
) -> dict[str, Any]:
    """The `methodology` of one file, from the rows of the benchmarks it publishes.

    Compilers and flags are those of the published results of these benchmarks only (a
    file about STREAM does not list LINPACK's flags); `runs` is the middle of the
    distinct counted-trial numbers, the typical number of trials behind one sample.
    """
    trials = sorted(
        {s.trials for s in summaries if s.trials is not None and s.benchmark in benchmarks}
    )
    return {
        "tool": tool,
        "compiler": "; ".join(_distinct(con, "compiler", benchmarks, include_sandbox)) or None,
        "optimization": "; ".join(_distinct(con, "cflags", benchmarks, include_sandbox)) or None,
        "runs": trials[len(trials) // 2] if trials else None,
        "confidence": stats.CONFIDENCE,
        "samples": "figures are means over independent instances; stats.n counts them",
    }


def publish(
    dataset: Dataset,
    output: Path,
    *,
    include_sandbox: bool = False,
    prices: PriceSet | None = None,
    min_effect: float = changes_mod.MIN_EFFECT,
) -> Publication:
    """Write the whole publication into `output` (see the module docstring).

    `min_effect`: the smallest relative change of a mean reported as a change point
    (changes.py; printed in index.json `changeDetection`)."""
    if not 0.0 <= min_effect < 1.0:
        raise UserError(f"--min-effect must be a fraction in [0, 1), not {min_effect}")
    check_output(output)
    previous = _previous_index(output, include_sandbox)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=output))
    # The tidy exports (DuckDB, which releases the GIL) are written by a thread on a
    # connection of its own, from the start: they overlap the summaries' SQL and their
    # rendering (pure Python) on 2 cores.
    exporter = dataset.con.cursor()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="export")
    try:
        (staging / "latest").mkdir()
        tidy = pool.submit(
            _export_tidy,
            exporter,
            dataset.report.accepted,
            include_sandbox,
            previous,
            output,
            staging,
        )
        try:
            index = _write_publication(
                dataset, output, staging, include_sandbox, prices, previous, tidy, min_effect
            )
        finally:
            if not tidy.done():
                exporter.interrupt()  # failed before the exports were needed: stop them
            pool.shutdown(wait=True)
        _swap_into(staging, output)
    except OSError as exc:
        raise StorageError(
            f"cannot write the publication to {output}: {exc.strerror or exc}"
        ) from exc
    finally:
        exporter.close()
        shutil.rmtree(staging, ignore_errors=True)
    return Publication(output=output, index=index, reused_exports=tidy.result().reused)


def _write_publication(
    dataset: Dataset,
    output: Path,
    staging: Path,
    include_sandbox: bool,
    prices: PriceSet | None,
    previous: Mapping[str, Any] | None,
    tidy: concurrent.futures.Future[Exported],
    min_effect: float = changes_mod.MIN_EFFECT,
) -> dict[str, Any]:
    """Everything but the tidy exports, into `staging`; returns the index. `tidy` is the
    export thread's future, awaited once the window summaries are written. `previous` is
    the previous publication's index when its windows may be reused (`_previous_index`)."""
    con = dataset.con
    summaries = summarize(con, include_sandbox=include_sandbox, window="all")

    by_type: dict[str, list[Summary]] = {}
    for s in summaries:
        by_type.setdefault(s.instance_type, []).append(s)
    figures = {t: TypeFigures(t, ss) for t, ss in by_type.items()}
    last = max((s.last for s in summaries), default=None)
    header = {"version": last[:10].replace("-", ".") if last else None, "lastUpdated": last}
    memory_meta = {
        **header,
        "methodology": _methodology(
            con,
            summaries,
            include_sandbox,
            ("stream", "latency"),
            "STREAM (instbench kernel; best of counted trials after a discarded first); "
            "cache and memory latency: single-thread dependent pointer chase over a "
            "working-set sweep, levels read off the curve's plateaus; NUMA: single-thread "
            "reads of local and of another socket's memory",
        ),
    }
    cpu_meta = {
        **header,
        "methodology": {
            **_methodology(
                con,
                summaries,
                include_sandbox,
                ("linpack", "cpu", "coremark"),
                "LINPACK: LU with partial pivoting (LAPACK dgetrf + dgetrs), double "
                "precision, HPL operation count, best of the timed solves; vectorization: "
                "multiply-add kernel built per extension, all threads; scaling: "
                "instbench-int, our own integer kernel (not CoreMark)",
            ),
            "coremark": "present only for types where real EEMBC CoreMark 1.0 (fetched at a "
            "pinned commit, checksummed, validated run) was measured; otherwise the type has "
            "no coremark object. instbench-int scores are never published as CoreMark.",
        },
    }
    price_meta = {
        **header,
        "methodology": _methodology(
            con,
            summaries,
            include_sandbox,
            ("stream", "linpack"),
            "AWS prices (on-demand, reserved, spot history and placement score) divided "
            "by the measured all-threads STREAM triad and LINPACK GFLOPS",
        ),
    }
    memory_doc, memory_held = memory_document(figures, memory_meta)
    cpu = cpu_document(figures, cpu_meta)
    cpu_doc, cpu_held = cpu.document, cpu.held
    price_doc, price_held = price_document(figures, cpu_doc["instances"], prices, price_meta)
    contract = {MEMORY_FILE: memory_doc, CPU_FILE: cpu_doc, PRICE_FILE: price_doc}
    for name, document in contract.items():
        compass_schema.validate(name, document)

    latest = staging / "latest"
    for name, document in contract.items():
        _write(latest / name, dumps(document))
        schema_name = compass_schema.SCHEMA_FILES[name]
        _write(latest / "schemas" / schema_name, compass_schema.schema_bytes(name))
    summary_rows = _summary_rows(summaries)
    _write(latest / "aggregates.csv", _csv_bytes(summary_rows, _SUMMARY_COLUMNS))
    con.execute(
        f"COPY (SELECT * FROM read_csv('{(latest / 'aggregates.csv').as_posix()}', "
        f"header=true)) TO '{(latest / 'aggregates.parquet').as_posix()}' (FORMAT parquet)"
    )
    report = dataset.report
    _write(
        latest / "quarantine.csv",
        _csv_bytes([{"key": k, "reason": r} for k, r in report.rejections], ["key", "reason"]),
    )
    _write(latest / "schemas" / "result-v1.schema.json", SCHEMA_PATH.read_bytes())
    _write(latest / "schemas" / "tidy-v1.schema.json", dumps(tidy_schema()))

    windows, window_digests = _write_windows(con, output, staging, include_sandbox, previous)
    detected = changes_mod.detect(
        changes_mod.series_cells(con, include_sandbox=include_sandbox), min_effect=min_effect
    )
    exported = tidy.result()
    tidy_rows = exported.rows

    files = sorted(p for p in latest.rglob("*") if p.is_file())
    counts = {
        MEMORY_FILE: {"instances": len(memory_doc["instances"])},
        CPU_FILE: {"instances": len(cpu_doc["instances"])},
        PRICE_FILE: {"instances": len(price_doc["instances"])},
        "tidy.csv": {"rows": tidy_rows},
        "tidy.parquet": {"rows": tidy_rows},
        "aggregates.csv": {"rows": len(summaries)},
        "aggregates.parquet": {"rows": len(summaries)},
        "quarantine.csv": {"rows": len(report.rejections)},
    }
    index = {
        "version": header["version"],
        "lastUpdated": last,
        "publicationFormat": PUBLICATION_VERSION,
        "dataVersion": DATA_VERSION,
        "generator": GENERATOR,
        "includeSandbox": include_sandbox,
        "inputs": exported.inputs,
        "files": [
            {
                "path": rel,
                "bytes": p.stat().st_size,
                "sha256": exported.sha256.get(rel) or reuse.sha256_file(p),
                **counts.get(rel, {}),
            }
            for p in files
            for rel in (p.relative_to(latest).as_posix(),)
        ],
        "heldBack": {MEMORY_FILE: memory_held, CPU_FILE: cpu_held, PRICE_FILE: price_held},
        "omitted": {CPU_FILE: cpu.omitted},
        "schemas": {
            name: {
                "path": f"schemas/{compass_schema.SCHEMA_FILES[name]}",
                "version": compass_schema.SCHEMA_VERSION,
            }
            for name in contract
        },
        "ingest": {
            "files": report.files,
            "accepted": report.accepted,
            "duplicates": report.duplicates,
            "rejected": report.rejected,
            "excluded": excluded_counts(con, include_sandbox),
        },
        **change_index(detected),
        "windows": windows,
        "windowDigests": window_digests,
        "prices": price_doc["prices"],
    }
    _write(latest / "datacard.md", datacard(index).encode())
    index["files"].append(
        {
            "path": "datacard.md",
            "bytes": (latest / "datacard.md").stat().st_size,
            "sha256": reuse.sha256_file(latest / "datacard.md"),
        }
    )
    index["files"].sort(key=lambda f: f["path"])
    _write(latest / "index.json", dumps(index))
    return index


def _write_windows(
    con: duckdb.DuckDBPyConnection,
    output: Path,
    staging: Path,
    include_sandbox: bool,
    previous: Mapping[str, Any] | None,
) -> tuple[dict[str, list[str]], dict[str, dict[str, str]]]:
    """Stage every weekly and monthly folder: the previous publication's where it still
    holds (windows.unchanged_windows, checked by reuse.stage_verified), the others
    computed. Returns index.json's `windows` and `windowDigests`. Change points are not
    in the folders: they are found over whole series (changes.py) and listed once, in
    index.json, at the window where they happened."""
    names: dict[str, list[str]] = {}
    digests_out: dict[str, dict[str, str]] = {}
    for kind, window in windows_mod.KINDS.items():
        digests = windows_mod.window_digests(con, window, include_sandbox)
        names[kind] = sorted(digests)
        old = windows_mod.previous_windows(previous, kind)
        reused: set[str] = set()
        for name in windows_mod.unchanged_windows(digests, old):
            recorded = {f: old[name].get(f) for f in windows_mod.WINDOW_FILES}
            (staging / name).mkdir()  # rendered into instead when the check fails
            if not reuse.stage_verified(output / name, staging / name, recorded):
                break
            reused.add(name)
            digests_out[name] = dict(old[name])
        since = next((n for n in names[kind] if n not in reused), None)
        if since is None:
            continue
        rows = summarize(con, include_sandbox=include_sandbox, window=window, since=since)
        by_window: dict[str, list[Summary]] = {}
        for s in rows:
            by_window.setdefault(s.window, []).append(s)
        for name in sorted(by_window):
            groups = _summary_rows(by_window[name])
            document = {
                "window": name,
                "kind": kind,
                "groups": groups,
                "notes": WINDOW_NOTES,
            }
            files = {
                "summary.json": dumps(document),
                "summary.csv": _csv_bytes(groups, _SUMMARY_COLUMNS),
            }
            for f, data in files.items():
                _write(staging / name / f, data)
            digests_out[name] = {
                "inputs": digests[name],
                **{f: hashlib.sha256(data).hexdigest() for f, data in files.items()},
            }
    return names, digests_out


WINDOW_NOTES = {
    "median_ci": "median_ci_low/median_ci_high are the distribution-free 95 % interval of "
    "the median (order statistics); null where n < 6, because with fewer than 6 values no "
    "pair of them covers the median with 95 % probability (even [min, max] covers 93.75 % "
    "at n = 5)",
    "ci": "ci_low/ci_high are the 95 % Student t interval of the mean; null where n = 1",
    "changes": "change points are found over whole series and listed in "
    "latest/index.json (regressions, improvements, cpuMixChanges, untested)",
}
"""Why a window summary's intervals can be null, said in every summary.json."""


def change_index(report: changes_mod.ChangeReport) -> dict[str, Any]:
    """index.json's change-detection entries: settings, the changes (worse ones under
    `regressions`), CPU-mix changes reported instead of regressions, untested series."""

    def record(d: dict[str, Any]) -> dict[str, Any]:
        return {k: num(v) if isinstance(v, float) else v for k, v in d.items()}

    return {
        "changeDetection": report.settings(),
        "regressions": [record(c.as_dict()) for c in report.regressions],
        "improvements": [record(c.as_dict()) for c in report.improvements],
        "cpuMixChanges": [record(m.as_dict()) for m in report.mix_changes],
        "untested": [record(u.as_dict()) for u in report.untested],
    }


def _swap_into(staging: Path, output: Path) -> None:
    """Move the staged tree into `output`: each top-level folder replaced by a rename.

    Window folders that the new publication no longer has are removed, so the output is
    a function of the input alone.
    """
    trash = Path(tempfile.mkdtemp(prefix=".old-", dir=output))
    try:
        new = {p.name for p in staging.iterdir()}
        for old in output.iterdir():
            if old.name in new or (old.is_dir() and _WINDOW_DIR.match(old.name)):
                os.replace(old, trash / old.name)
        for name in sorted(new):
            os.replace(staging / name, output / name)
    finally:
        shutil.rmtree(trash, ignore_errors=True)
