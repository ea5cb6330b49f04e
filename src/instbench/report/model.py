"""What the report and the terminal views show, read once from the ingested mirror.

Both `instbench report` (HTML) and `instbench results` (terminal) present the same
figures, so both are built from one `ReportData`: the aggregated statistics of
analysis.aggregate (one `Summary` per instance type x benchmark x test x thread mode x
metric), weekly summaries for history, the per-sample values for spread, and the machine
details of the newest result of each type (read from its raw document, which keeps what
the tidy table does not: AMI, OS, kernel, THP policy).

The headline figure is STREAM Triad with every CPU busy ("all" thread mode): the mean over
independent instances, with its 95 % t interval (analysis/stats.py).
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instbench.analysis import changes as changes_mod
from instbench.analysis.aggregate import Summary, excluded_counts, publishable_filter, summarize
from instbench.analysis.ingest import Dataset, IngestReport, ingest
from instbench.analysis.legacy import HistoryEntry, history
from instbench.analysis.tidy import METRICS
from instbench.errors import UserError
from instbench.prices import PriceSet
from instbench.results.schema import ResultDocument

HEADLINE = ("stream", "triad", "all", "bandwidth")
"""(benchmark, test, thread_mode, metric) of the headline figure."""


@dataclass(frozen=True)
class Machine:
    """Machine details of one type, from its newest accepted raw result."""

    key: str
    cpu_model: str
    architecture: str
    manufacturer: str
    vcpus: int
    memory_gib: float
    sockets: int
    numa_nodes: int
    compiler: str | None
    cflags: str
    ami_id: str | None
    os: str
    kernel: str
    thp: str | None
    region: str
    collection_method: str
    array_size_reason: str | None
    nontemporal_stores: str | None
    huge_pages: str | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Sample:
    """One measured STREAM bandwidth of one instance (a row of the tidy table)."""

    key: str
    instance_type: str
    timestamp: str
    region: str
    run_id: str
    sample: int
    test: str
    thread_mode: str
    value: float
    collection_method: str
    quick: bool


@dataclass(frozen=True)
class TypeRow:
    """One line of the overview: a type, its headline figure, its price when known."""

    instance_type: str
    family: str
    architecture: str | None
    manufacturer: str | None
    vcpus: int | None
    memory_gib: float | None
    triad: float | None
    ci_low: float | None
    ci_high: float | None
    per_vcpu: float | None
    price_per_hour: float | None
    gbps_per_dollar: float | None
    n: int
    last: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ReportData:
    """Everything a view needs; empty lists when the dataset holds no result."""

    input_dir: Path
    include_sandbox: bool
    types: list[TypeRow] = field(default_factory=list)
    summaries: list[Summary] = field(default_factory=list)
    weekly: list[Summary] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    machines: dict[str, Machine] = field(default_factory=dict)
    raw_keys: dict[str, list[str]] = field(default_factory=dict)
    """Accepted raw documents behind each type's figures (every benchmark)."""
    raw_sha256: dict[str, str] = field(default_factory=dict)
    """key -> the content sha256 ingest recorded for it (checked again before a copy)."""
    ingest: IngestReport | None = None
    excluded: dict[str, int] = field(default_factory=dict)
    prices: PriceSet | None = None
    compilers: list[str] = field(default_factory=list)
    cflags: list[str] = field(default_factory=list)
    collection_methods: dict[str, int] = field(default_factory=dict)
    changes: changes_mod.ChangeReport | None = None
    """Change points of the weekly series (analysis/changes.py), as publish finds them."""
    legacy: list[HistoryEntry] = field(default_factory=list)
    """The earlier Go collector's accepted files: history beside ours, never pooled."""

    def legacy_of(self, instance_type: str) -> list[HistoryEntry]:
        return [f for f in self.legacy if f.instance_type == instance_type]

    @property
    def empty(self) -> bool:
        return not self.types

    @property
    def documents(self) -> int:
        """Result documents behind the figures shown."""
        return len({k for keys in self.raw_keys.values() for k in keys})

    def summaries_of(self, instance_type: str) -> list[Summary]:
        return [s for s in self.summaries if s.instance_type == instance_type]

    def changes_of(self, instance_type: str) -> list[changes_mod.Change]:
        found = self.changes.changes if self.changes else []
        return [c for c in found if c.instance_type == instance_type]

    def mix_changes_of(self, instance_type: str) -> list[changes_mod.MixChange]:
        found = self.changes.mix_changes if self.changes else []
        return [m for m in found if m.instance_type == instance_type]

    def untested_of(self, instance_type: str) -> list[changes_mod.Untested]:
        found = self.changes.untested if self.changes else []
        return [u for u in found if u.instance_type == instance_type]

    def samples_of(self, instance_type: str) -> list[Sample]:
        return [s for s in self.samples if s.instance_type == instance_type]

    def row(self, instance_type: str) -> TypeRow:
        for row in self.types:
            if row.instance_type == instance_type:
                return row
        known = ", ".join(r.instance_type for r in self.types) or "none"
        raise UserError(f"no results for instance type {instance_type!r} (known: {known})")

    def filtered(self, pattern: str | None, benchmark: str | None) -> list[TypeRow]:
        """Types matching a glob (`m7*`; a plain word matches as a substring)."""
        rows = self.types
        if benchmark:
            have = {s.instance_type for s in self.summaries if s.benchmark == benchmark}
            rows = [r for r in rows if r.instance_type in have]
        if pattern:
            glob = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
            rows = [r for r in rows if fnmatch.fnmatchcase(r.instance_type, glob)]
        return rows


def family_of(instance_type: str) -> str:
    """`m7i.large` -> `m7i` (the part before the size)."""
    return instance_type.split(".", 1)[0]


def _headline(summaries: list[Summary]) -> Summary | None:
    for s in summaries:
        if (s.benchmark, s.test, s.thread_mode, s.metric) == HEADLINE:
            return s
    return None


def _price(prices: PriceSet | None, instance_type: str) -> float | None:
    if prices is None:
        return None
    p = prices.instances.get(instance_type)
    return p.on_demand if p and p.on_demand else None


def type_rows(summaries: list[Summary], prices: PriceSet | None) -> list[TypeRow]:
    """One `TypeRow` per instance type, sorted by name."""
    by_type: dict[str, list[Summary]] = {}
    for s in summaries:
        by_type.setdefault(s.instance_type, []).append(s)
    rows: list[TypeRow] = []
    for itype in sorted(by_type):
        ss = by_type[itype]
        head = _headline(ss)
        anyone = head or ss[0]
        price = _price(prices, itype)
        triad = head.mean if head else None
        rows.append(
            TypeRow(
                instance_type=itype,
                family=family_of(itype),
                architecture=anyone.architecture,
                manufacturer=anyone.manufacturer,
                vcpus=anyone.vcpus,
                memory_gib=anyone.memory_gib,
                triad=triad,
                ci_low=head.ci_low if head else None,
                ci_high=head.ci_high if head else None,
                per_vcpu=head.per_vcpu if head else None,
                price_per_hour=price,
                gbps_per_dollar=triad / price if triad is not None and price else None,
                n=max(s.n for s in ss),
                last=max(s.last for s in ss),
            )
        )
    return rows


def _machine(root: Path, key: str) -> Machine | None:
    try:
        doc = ResultDocument.model_validate_json((root / key).read_bytes())
    except (OSError, ValueError):
        return None
    system, ctx, meta = doc.system_info, doc.execution_context, doc.metadata
    stream = doc.performance_data.stream
    return Machine(
        key=key,
        cpu_model=system.cpu.model_name,
        architecture=system.architecture,
        manufacturer=system.cpu.manufacturer,
        vcpus=system.cpu.logical_cpus,
        memory_gib=system.memory.total_bytes / 2**30,
        sockets=system.cpu.sockets,
        numa_nodes=system.numa_nodes,
        compiler=ctx.compiler.version if ctx.compiler else None,
        cflags=" ".join(ctx.cflags),
        ami_id=system.ec2.ami_id if system.ec2 else None,
        os=system.os.pretty_name or f"{system.os.id} {system.os.version_id or ''}".strip(),
        kernel=system.os.kernel,
        thp=system.thp.enabled,
        region=meta.region,
        collection_method=meta.collection_method,
        array_size_reason=stream.array_size_reason if stream else None,
        nontemporal_stores=stream.nontemporal_stores if stream else None,
        huge_pages=stream.huge_pages if stream else None,
    )


def _strings(dataset: Dataset, column: str, where: str) -> list[str]:
    rows = dataset.con.execute(
        f"SELECT DISTINCT {column} FROM accepted_rows WHERE {column} IS NOT NULL AND {where} "
        "ORDER BY 1"
    ).fetchall()
    return [str(r[0]) for r in rows]


def from_dataset(
    dataset: Dataset, root: Path, *, include_sandbox: bool, prices: PriceSet | None
) -> ReportData:
    """Read every view's figures from an ingested dataset."""
    con = dataset.con
    where = publishable_filter(include_sandbox)
    summaries = summarize(con, include_sandbox=include_sandbox, window="all")
    data = ReportData(
        input_dir=root,
        include_sandbox=include_sandbox,
        summaries=summaries,
        weekly=summarize(con, include_sandbox=include_sandbox, window="week"),
        types=type_rows(summaries, prices),
        ingest=dataset.report,
        excluded=excluded_counts(con, include_sandbox),
        prices=prices,
        compilers=_strings(dataset, "compiler", where),
        cflags=_strings(dataset, "cflags", where),
        changes=changes_mod.detect(changes_mod.series_cells(con, include_sandbox=include_sandbox)),
    )
    data.legacy = history(con, root)
    data.collection_methods = {
        str(k): int(v)
        for k, v in con.execute(
            f"SELECT collection_method, count(DISTINCT key) FROM accepted_rows WHERE {where} "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
    }
    result = con.execute(
        "SELECT key, instance_type, strftime(timestamp, '%Y-%m-%dT%H:%M:%SZ'), region, run_id, "
        "sample, test, thread_mode, value, collection_method, quick FROM accepted_rows "
        f"WHERE {where} AND benchmark = 'stream' AND metric = 'bandwidth' AND value IS NOT NULL "
        "ORDER BY instance_type, timestamp, key, test, thread_mode"
    ).fetchall()
    data.samples = [
        Sample(
            key=str(r[0]),
            instance_type=str(r[1]),
            timestamp=str(r[2]),
            region=str(r[3]),
            run_id=str(r[4]),
            sample=int(r[5]),
            test=str(r[6]),
            thread_mode=str(r[7]),
            value=float(r[8]),
            collection_method=str(r[9]),
            quick=bool(r[10]),
        )
        for r in result
    ]
    for itype, key, sha in con.execute(
        "SELECT k.instance_type, k.key, f.sha256 FROM (SELECT DISTINCT instance_type, key "
        f"FROM accepted_rows WHERE {where}) k JOIN files f ON f.key = k.key ORDER BY 1, 2"
    ).fetchall():
        data.raw_keys.setdefault(str(itype), []).append(str(key))
        data.raw_sha256[str(key)] = str(sha)
    newest = con.execute(
        f"SELECT instance_type, arg_max(key, timestamp) FROM accepted_rows WHERE {where} "
        "GROUP BY instance_type ORDER BY instance_type"
    ).fetchall()
    for itype, key in newest:
        machine = _machine(root, str(key))
        if machine is not None:
            data.machines[str(itype)] = machine
    return data


def load(
    root: Path, *, include_sandbox: bool = False, prices: PriceSet | None = None
) -> ReportData:
    """Ingest the mirror at `root` and read the views' figures.

    A directory without raw/ (nothing collected yet) is an empty dataset, not an error:
    the report then says so. A missing directory is a UserError.
    """
    if not root.is_dir():
        raise UserError(f"input directory {root} does not exist")
    if not (root / "raw").is_dir():
        return ReportData(input_dir=root, include_sandbox=include_sandbox, prices=prices)
    with ingest(root) as dataset:
        return from_dataset(dataset, root, include_sandbox=include_sandbox, prices=prices)


def load_prices(path: Path) -> PriceSet:
    """A price file (instbench/prices.py format), in whatever region it was read for."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read price file {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise UserError(f"price file {path} is not valid JSON: {exc}") from exc
    return PriceSet.from_json(raw, str(path))


def change_label(c: changes_mod.Change) -> str:
    """'−15.0 % [−17.2, −12.9]': a change point's size with its 95 % interval."""

    def pct(v: float) -> str:
        return f"{100 * v:+.1f}".replace("-", "−")

    return f"{pct(c.change)} % [{pct(c.ci_low)}, {pct(c.ci_high)}]"


def metric_unit(metric: str) -> str:
    return METRICS[metric].unit if metric in METRICS else ""
