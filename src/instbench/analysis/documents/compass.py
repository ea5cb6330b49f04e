"""The three files ComputeCompass fetches: memory-benchmarks.json, cpu-benchmarks.json and
price-performance.json, built from the publication's summaries.

Complete or absent, never invented: the client is the contract (analysis/compass_contract.py,
docs/computecompass.md). It reads fields without null checks, so a type enters a contract
file only when every field the client requires was measured (or read from the machine;
remote NUMA figures are 0 on one socket by the convention the format has always used).
`MEMORY_FIELDS`, `CPU_FIELDS` and `PRICE_FIELDS` list those fields and where each comes
from; a type that lacks any is listed in index.json `heldBack` under that file with
exactly what it lacks, and still appears in the tidy exports and the report.

Figures are means over samples (instances); beside each, a `stats` object gives n, the
median, the 95 % t interval of the mean, and the CV between instances (docs/statistics.md).

This is the "documents" stage for the client's contract: it takes summaries and facts
(`summarize.Summarized`) and prices, returns documents, and reads no database and writes
no file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from instbench.analysis import compass_schema, stats
from instbench.analysis.aggregate import Summary
from instbench.analysis.documents.jsonform import num
from instbench.prices import InstancePrice, PriceSet
from instbench.results.schema import STREAM_KERNELS

MEMORY_FILE = compass_schema.MEMORY_FILE
CPU_FILE = compass_schema.CPU_FILE
PRICE_FILE = compass_schema.PRICE_FILE

SummaryKey = tuple[str, str, str | None, str]
"""(benchmark, test, thread_mode or None for 'any', metric)."""


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
    Field(("coremark", "score"), ("coremark", "coremark", "all", "score")),
    Field(("coremark", "coremarkMhz"), ("coremark", "coremark", "all", "score_per_mhz")),
    *(
        Field(("vectorization", key), machine=_vector(ext))
        for key, ext in COMPASS_VECTOR_EXTENSIONS.items()
    ),
    Field(("scaling", "singleThread"), ("cpu", "instbench-int", "single", "score")),
    Field(("scaling", "allCores"), ("cpu", "instbench-int", "all", "score")),
    Field(("scaling", "smtEfficiency"), ("cpu", "instbench-int", "all", "smt_efficiency")),
)
"""Every field of cpu-benchmarks.json a type needs to enter the file, and its source.

LINPACK: gflops, efficiency (gflops / estimated peak; a type whose peak could not be
estimated is held back), the matrix order n. CoreMark: real EEMBC CoreMark only
(tidy._coremark_rows reads it only from a result section that names itself CoreMark),
all threads, and its score per MHz of the OS-reported maximum clock; the client reads
`coremark.score` without a check, so a type without real CoreMark is held back (never a
placeholder, never our kernel's score under the CoreMark name). Vectorization: the
all-threads GFLOPS of the multiply-add kernel built for each extension (`_vector`).
Scaling: instbench-int, our own integer kernel, one thread and all threads, and its SMT
efficiency (all vCPUs / one thread per physical core; 1.0 exactly without SMT)."""

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
) -> tuple[dict[str, Any] | None, list[str]]:
    """(the type's object, []) when every field is known, else (None, missing fields).

    `constants` adds fixed keys (units) to the objects that exist.
    """
    found, missing = _values(fig, fields)
    if missing:
        return None, missing
    entry: dict[str, Any] = {}
    _fill(entry, found)
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


def cpu_document(
    figures: Mapping[str, TypeFigures], meta: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """cpu-benchmarks.json (LINPACK, real CoreMark, vectorization, scaling) and the
    held-back types with what they lack."""
    instances: dict[str, Any] = {}
    held: dict[str, list[str]] = {}
    for itype in sorted(figures):
        entry, missing = build_entry(figures[itype], CPU_FIELDS, _CPU_CONSTANTS)
        if entry is None:
            held[itype] = missing
            continue
        instances[itype] = entry
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
        ),
        key=lambda r: (-r["score"], r["instanceType"]),
    )
    doc = {
        **meta,
        "description": "CPU performance of AWS EC2 instance types: LINPACK GFLOPS and "
        "efficiency, real EEMBC CoreMark, multiply-add GFLOPS per vector extension, integer "
        "throughput scaling (instbench-int, our own kernel); a type enters only with every "
        "one of them measured. Means over independent instances with 95 % confidence "
        "intervals.",
        "instances": instances,
        "rankings": {"peak_gflops": peak, "coremark_score": coremark},
    }
    return doc, held


@dataclass(frozen=True)
class PriceField:
    """One field of a type's price object and how it is computed from the type's price
    and figures (None: unknown, and the type is held back from the price file)."""

    path: tuple[str, ...]
    value: Callable[[InstancePrice, TypeFigures], float | None]

    @property
    def name(self) -> str:
        return ".".join(self.path)


def _per(
    figure: SummaryKey,
) -> Callable[[InstancePrice, TypeFigures], float | None]:
    """On-demand USD/hour divided by the mean of a measured figure (> 0)."""

    def value(price: InstancePrice, fig: TypeFigures) -> float | None:
        measured = fig.get(figure)
        if price.on_demand is None or measured is None or not measured.mean > 0:
            return None
        return price.on_demand / measured.mean

    return value


PRICE_FIELDS: tuple[PriceField, ...] = (
    PriceField(("onDemand",), lambda p, _: p.on_demand),
    PriceField(("spot", "current"), lambda p, _: p.spot_current),
    PriceField(("spot", "average7d"), lambda p, _: p.spot_average_7d),
    PriceField(("spot", "reliability"), lambda p, _: p.spot_reliability),
    PriceField(("reserved", "term1yr"), lambda p, _: p.reserved_1yr),
    PriceField(("reserved", "term3yr"), lambda p, _: p.reserved_3yr),
    PriceField(("costEfficiency", "costPerGBs"), _per(("stream", "triad", "all", "bandwidth"))),
    PriceField(("costEfficiency", "costPerGflop"), _per(("linpack", "hpl", "all", "gflops"))),
)
"""Every field of price-performance.json a type needs to enter the file, and its source.

Prices are USD per instance-hour (instbench/prices.py); `spot.reliability` is the spot
placement score / 10. costPerGflop is USD per hour per LINPACK GFLOPS (per GFLOPS-hour),
whether or not the type entered the cpu file (that file has requirements of its own)."""


def price_document(
    figures: Mapping[str, TypeFigures],
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
        values = {f.path: f.value(price, fig) for f in PRICE_FIELDS}
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


# ------------------------------------------------------------------------- the three files


Toolchains = Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]
"""benchmark -> (distinct compilers, distinct flags) of its published rows (summarize)."""


def _methodology(
    summaries: Iterable[Summary],
    toolchains: Toolchains,
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
    compilers = sorted({c for b in benchmarks for c in toolchains.get(b, ((), ()))[0]})
    flags = sorted({f for b in benchmarks for f in toolchains.get(b, ((), ()))[1]})
    return {
        "tool": tool,
        "compiler": "; ".join(compilers) or None,
        "optimization": "; ".join(flags) or None,
        "runs": trials[len(trials) // 2] if trials else None,
        "confidence": stats.CONFIDENCE,
        "samples": "figures are means over independent instances; stats.n counts them",
    }


@dataclass(frozen=True)
class CompassDocuments:
    """The three files (validated against their schemas) and what each held back."""

    documents: dict[str, dict[str, Any]]
    """File name -> document, in the order they are written."""
    held: dict[str, dict[str, list[str]]]
    """File name -> held-back type -> the fields it lacks (index.json `heldBack`)."""


def compass_documents(
    summaries: list[Summary],
    toolchains: Toolchains,
    header: Mapping[str, Any],
    prices: PriceSet | None,
) -> CompassDocuments:
    """The three ComputeCompass files of `summaries` (all-time), each checked against its
    JSON Schema before anything is written (a failure is a bug here, not bad data)."""
    by_type: dict[str, list[Summary]] = {}
    for s in summaries:
        by_type.setdefault(s.instance_type, []).append(s)
    figures = {t: TypeFigures(t, ss) for t, ss in by_type.items()}
    memory_meta = {
        **header,
        "methodology": _methodology(
            summaries,
            toolchains,
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
                summaries,
                toolchains,
                ("linpack", "cpu", "coremark"),
                "LINPACK: LU with partial pivoting (LAPACK dgetrf + dgetrs), double "
                "precision, HPL operation count, best of the timed solves; vectorization: "
                "multiply-add kernel built per extension, all threads; scaling: "
                "instbench-int, our own integer kernel (not CoreMark)",
            ),
            "coremark": "real EEMBC CoreMark 1.0 (fetched at a pinned commit, checksummed, "
            "validated run), all threads. A type without it is held back from this file "
            "(index.json heldBack); instbench-int scores are never published as CoreMark.",
        },
    }
    price_meta = {
        **header,
        "methodology": _methodology(
            summaries,
            toolchains,
            ("stream", "linpack"),
            "AWS prices (on-demand, reserved, spot history and placement score) divided "
            "by the measured all-threads STREAM triad and LINPACK GFLOPS",
        ),
    }
    memory_doc, memory_held = memory_document(figures, memory_meta)
    cpu_doc, cpu_held = cpu_document(figures, cpu_meta)
    price_doc, price_held = price_document(figures, prices, price_meta)
    documents = {MEMORY_FILE: memory_doc, CPU_FILE: cpu_doc, PRICE_FILE: price_doc}
    for name, document in documents.items():
        compass_schema.validate(name, document)
    return CompassDocuments(
        documents=documents,
        held={MEMORY_FILE: memory_held, CPU_FILE: cpu_held, PRICE_FILE: price_held},
    )
