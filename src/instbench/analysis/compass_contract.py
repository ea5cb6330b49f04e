"""What the ComputeCompass client declares and reads in our three files: the contract.

Why a table of its own: the client (github.com/scttfrdmn/computecompass) is the judge of
`memory-benchmarks.json`, `cpu-benchmarks.json` and `price-performance.json`, not our
reading of it. This module writes down, field by field, what its source declares
(`src/services/benchmark-data.ts`, the interfaces `BenchmarkMemoryData`,
`BenchmarkCpuData`, `BenchmarkPricingData` and `BenchmarkDatabase`) and where it reads
each one (`benchmark-data.ts`: the loader and the insight functions; `InstanceCard.tsx`;
`App.tsx` only passes the loader's objects on), with our unit and meaning, and where our
meaning differs from what the client displays.

Three things follow from it, each checked by a unit test:
- the JSON Schemas (`schemas/computecompass-*.json`) mark every field the client requires
  as required, with the declared JSON type (`schema_gaps`);
- publish has a rule for every required field of a type's object, so a type lacking one
  is held back from that file (index.json `heldBack`), never published half;
- `docs/computecompass.md` carries the tables `markdown()` renders (`python -m
  instbench.analysis.compass_contract` prints them).

`bench/computecompass_check.py` then runs the client itself over a publication.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from instbench.analysis.compass_schema import CPU_FILE, MEMORY_FILE, PRICE_FILE

CLIENT_REPOSITORY = "https://github.com/scttfrdmn/computecompass"
CLIENT_COMMIT = "79aabd3"
"""Commit of the client this table was read from (its `main` in December 2026)."""


@dataclass(frozen=True)
class ClientField:
    """One field as the client declares it, and what our file puts there.

    `path` is relative to one type's object (`instances[type]`) when `per_type`, else to
    the document. `ts_type` is the declared TypeScript type; `required` says the
    declaration has no `?` (the client may read it without a check). `read_by` names
    where the client reads it ("" when it is only declared). `differs` says where our
    meaning differs from what the client shows (empty when it does not).
    """

    path: tuple[str, ...]
    ts_type: str
    required: bool
    unit: str
    meaning: str
    read_by: str = ""
    differs: str = ""
    per_type: bool = True

    @property
    def name(self) -> str:
        return ".".join(self.path)

    @property
    def json_types(self) -> tuple[str, ...]:
        """JSON Schema types that satisfy the declared TypeScript type."""
        base = self.ts_type.removesuffix("[]")
        if self.ts_type.endswith("[]"):
            return ("array",)
        return {"number": ("number", "integer"), "string": ("string",)}.get(base, ("object",))


def _f(
    path: str, ts: str, unit: str, meaning: str, read: str = "", differs: str = ""
) -> ClientField:
    optional = ts.endswith("?")
    return ClientField(
        tuple(path.split(".")), ts.rstrip("?"), not optional, unit, meaning, read, differs
    )


def _d(path: str, ts: str, unit: str, meaning: str, read: str = "") -> ClientField:
    return ClientField(tuple(path.split(".")), ts, True, unit, meaning, read, "", per_type=False)


_CARD = "InstanceCard.tsx"
_INSIGHTS = "generatePerformanceInsights"

_CACHE_DIFF = (
    "Ours is nanoseconds (unit 'ns|GB/s'); the file the client was first written against "
    "(aws-instance-benchmarks, and the client's own test data) gave cycles ('cycles|GB/s'). "
    "The client displays no cache level, only declares it. Cycles would need the clock "
    "the core ran at during the chase, which a VM does not report; we keep ns."
)

MEMORY_FIELDS: tuple[ClientField, ...] = (
    *(
        _f(
            f"stream.{k}.bandwidth",
            "number",
            "GB/s",
            f"STREAM {k}, all threads: best-of-trials bandwidth (10^9 bytes/s, STREAM byte "
            "counting), mean over instances.",
            f"{_CARD} ('{{triad}} GB/s'); {_INSIGHTS} (> 200: 'Excellent memory "
            "bandwidth'); compareInstances('memory-bandwidth')"
            if k == "triad"
            else "",
        )
        for k in ("copy", "scale", "add", "triad")
    ),
    *(_f(f"stream.{k}.unit", "string", "", "'GB/s'.") for k in ("copy", "scale", "add", "triad")),
    *(
        f
        for level in ("l1", "l2", "l3")
        for f in (
            _f(
                f"cache.{level}.latency",
                "number",
                "ns",
                f"{level.upper()} load-to-use latency: median of the pointer-chase points "
                "on the level's plateau, mean over instances.",
                "",
                _CACHE_DIFF,
            ),
            _f(
                f"cache.{level}.bandwidth",
                "number",
                "GB/s",
                f"Single-thread read bandwidth at {level.upper()} working sets.",
            ),
            _f(f"cache.{level}.unit", "string", "", "'ns|GB/s' (latency|bandwidth)."),
        )
    ),
    _f(
        "cache.memory.latency",
        "number",
        "ns",
        "Main-memory load latency: pointer chase at working sets far beyond the caches.",
        f"{_CARD} ('Latency: {{x}} ns'); {_INSIGHTS} (< 80: 'Low memory latency')",
    ),
    _f("cache.memory.unit", "string", "", "'ns'."),
    _f(
        "numa.socketCount",
        "number",
        "sockets",
        "Sockets of the machine, read from it (an integer).",
        f"{_INSIGHTS} (> 1: NUMA insight)",
    ),
    _f(
        "numa.localBandwidth",
        "number",
        "GB/s",
        "Single-thread read bandwidth of memory on the measuring CPU's node.",
        f"{_INSIGHTS} (remote / local when socketCount > 1)",
    ),
    _f(
        "numa.remoteBandwidth",
        "number",
        "GB/s",
        "Single-thread read bandwidth of another socket's memory; 0 on one socket.",
        f"{_INSIGHTS} (remote / local < 0.7: 'Multi-socket NUMA penalty')",
    ),
    _f(
        "numa.interSocketLatency",
        "number",
        "ns",
        "Load latency of another socket's memory; 0 on one socket.",
    ),
)
"""`BenchmarkMemoryData` (benchmark-data.ts lines 6-25)."""

MEMORY_DOCUMENT: tuple[ClientField, ...] = (
    _d("version", "string", "", "Date of the newest measurement, YYYY.MM.DD."),
    _d("lastUpdated", "string", "", "Newest measurement, UTC ISO 8601."),
    _d("instances", "object", "", "Type -> its object (next table).", "getInstanceBenchmarks"),
    _d(
        "rankings.triad_bandwidth",
        "object[]",
        "GB/s",
        "{instanceType, bandwidth, architecture}, highest triad first.",
        "getTopPerformers('memory')",
    ),
    _d(
        "rankings.memory_latency",
        "object[]",
        "ns",
        "{instanceType, latency, architecture}, lowest memory latency first.",
    ),
    _d(
        "summary.totalInstances",
        "number",
        "types",
        "Types in the file.",
        "fetchBenchmarkData (log line)",
    ),
    _d("summary.architectures", "string[]", "", "intel, amd, graviton: those in the file."),
    _d(
        "summary.bestMemoryBandwidth",
        "object",
        "GB/s",
        "{instanceType, bandwidth, unit} of the first triad ranking; null in an empty file.",
    ),
    _d(
        "summary.bestMemoryLatency",
        "object",
        "ns",
        "{instanceType, latency, unit} of the first latency ranking; null in an empty file.",
    ),
)

CPU_FIELDS: tuple[ClientField, ...] = (
    _f(
        "linpack.gflops",
        "number",
        "GFLOPS",
        "LINPACK (LU with partial pivoting, double precision) on every CPU, HPL operation "
        "count / best solve time.",
        f"{_CARD} (.toFixed(1) GFLOPS); {_INSIGHTS} (> 500); compareInstances('cpu-performance')",
    ),
    _f(
        "linpack.efficiency",
        "number",
        "ratio",
        "gflops / the theoretical peak of the cores (FLOPs per cycle of the core x cores x "
        "nominal clock); a type whose peak is unknown is held back.",
    ),
    _f("linpack.problemSize", "number", "n", "Matrix order n of the timed solves (an integer)."),
    _f(
        "coremark.score",
        "number",
        "iterations/s",
        "Real EEMBC CoreMark 1.0 (pinned sources, checksummed, validated run), all threads. "
        "A type without it is held back from the file; our own integer kernel is never "
        "published under this name.",
        f"{_CARD} ('CoreMark: {{score}}', unchecked)",
    ),
    _f(
        "coremark.coremarkMhz",
        "number",
        "iterations/s/MHz",
        "coremark.score / the OS-reported maximum clock, MHz (all threads, not per core).",
    ),
    *(
        _f(
            f"vectorization.{key}",
            "number?",
            "GFLOPS",
            f"All-threads double-precision multiply-add GFLOPS of the kernel built for "
            f"{key}; 0 when the CPU does not offer it (read from its flags).",
            f"{_INSIGHTS} (avx512 > 1.5 x avx2: 'Strong AVX-512')"
            if key in ("avx2", "avx512")
            else "",
        )
        for key in ("sse2", "avx2", "avx512", "neon", "sve")
    ),
    _f(
        "scaling.singleThread",
        "number",
        "iterations/s",
        "instbench-int (our integer kernel, not CoreMark), one thread.",
    ),
    _f(
        "scaling.allCores",
        "number",
        "iterations/s",
        "instbench-int, one thread per vCPU (all of them).",
    ),
    _f(
        "scaling.smtEfficiency",
        "number",
        "ratio",
        "instbench-int throughput with all vCPUs / throughput with one thread per physical "
        "core. Exactly 1.0 for a CPU without SMT (one thread per core: the two runs are the "
        "same run).",
        f"{_INSIGHTS} (> 1.3: 'Good SMT scaling'; < 1.1: 'Poor SMT scaling ... consider "
        "disabling hyperthreading')",
        "The client's advice assumes SMT exists. At 1.0 there is none (Graviton, AMD types "
        "such as m7a): nothing to disable, although the client still prints its 'Poor SMT "
        "scaling (1.00x)' warning.",
    ),
)
"""`BenchmarkCpuData` (benchmark-data.ts lines 27-49)."""

CPU_DOCUMENT: tuple[ClientField, ...] = (
    _d("version", "string", "", "Date of the newest measurement, YYYY.MM.DD."),
    _d("lastUpdated", "string", "", "Newest measurement, UTC ISO 8601."),
    _d("instances", "object", "", "Type -> its object (next table).", "getInstanceBenchmarks"),
    _d(
        "rankings.peak_gflops",
        "object[]",
        "GFLOPS",
        "{instanceType, gflops, architecture}, highest LINPACK GFLOPS first.",
        "getTopPerformers('cpu')",
    ),
    _d(
        "rankings.coremark_score",
        "object[]",
        "iterations/s",
        "{instanceType, score, architecture}, highest CoreMark first.",
    ),
)

PRICE_FIELDS: tuple[ClientField, ...] = (
    _f(
        "onDemand",
        "number",
        "USD/hour",
        "On-demand price, Linux, shared tenancy, in the file's region.",
        f"{_INSIGHTS} (spot savings = 1 - spot.current / onDemand)",
    ),
    _f(
        "spot.current",
        "number",
        "USD/hour",
        "Latest spot price, mean over the region's zones.",
        f"{_INSIGHTS} (savings)",
    ),
    _f("spot.average7d", "number", "USD/hour", "Time-weighted mean spot price, last 7 days."),
    _f(
        "spot.reliability",
        "number",
        "fraction 0..1",
        "Spot placement score (1..10, AWS GetSpotPlacementScores) / 10: how likely a spot "
        "request for the type is to succeed in the region.",
        f"{_CARD} (> 0.95: 'High spot reliability ({{x * 100}}%)'); {_INSIGHTS} (> 0.99)",
        "The client shows it as a percentage, as if it were the share of time a spot "
        "instance survives. It is a placement score scaled to 0..1, not a probability nor "
        "an interruption rate: 0.9 means score 9 of 10 (shown as '90.0%'). Only score 10 "
        "passes the client's 0.95 and 0.99 thresholds.",
    ),
    _f("reserved.term1yr", "number", "USD/hour", "Effective hourly price, 1-year standard RI."),
    _f("reserved.term3yr", "number", "USD/hour", "Effective hourly price, 3-year standard RI."),
    _f(
        "costEfficiency.costPerGflop",
        "number",
        "USD/hour per GFLOPS",
        "onDemand / LINPACK GFLOPS: the hourly price of one GFLOPS of sustained LINPACK rate "
        "(USD per GFLOPS-hour).",
        f"{_CARD} ('${{x.toFixed(4)}}/GFLOP'); {_INSIGHTS} (< 0.001: 'Outstanding cost "
        "efficiency'); compareInstances('cost-efficiency', 1 / x)",
        "The client labels it '$/GFLOP'. It is not the price of 10^9 operations (that is "
        "this / 3600, and would show as $0.0000 at the client's 4 decimals and pass its "
        "0.001 threshold for every type); its threshold and display fit USD per "
        "GFLOPS-hour, which is what we publish.",
    ),
    _f(
        "costEfficiency.costPerGBs",
        "number",
        "USD/hour per GB/s",
        "onDemand / all-threads STREAM triad GB/s.",
    ),
)
"""`BenchmarkPricingData` (benchmark-data.ts lines 51-66)."""

PRICE_DOCUMENT: tuple[ClientField, ...] = (
    _d("version", "string", "", "Date of the newest measurement, YYYY.MM.DD."),
    _d("lastUpdated", "string", "", "Newest measurement, UTC ISO 8601."),
    _d("instances", "object", "", "Type -> its object (next table).", "getInstanceBenchmarks"),
)

PER_TYPE: Mapping[str, tuple[ClientField, ...]] = {
    MEMORY_FILE: MEMORY_FIELDS,
    CPU_FILE: CPU_FIELDS,
    PRICE_FILE: PRICE_FIELDS,
}
"""File -> the fields of one type's object."""

DOCUMENT: Mapping[str, tuple[ClientField, ...]] = {
    MEMORY_FILE: MEMORY_DOCUMENT,
    CPU_FILE: CPU_DOCUMENT,
    PRICE_FILE: PRICE_DOCUMENT,
}
"""File -> the document-level fields (BenchmarkDatabase lines 74-125)."""

INSTANCE_DEFS: Mapping[str, str] = {
    MEMORY_FILE: "memoryInstance",
    CPU_FILE: "cpuInstance",
    PRICE_FILE: "priceInstance",
}
"""File -> the schema's $defs entry of one type's object."""


def required_per_type(file_name: str) -> list[ClientField]:
    """The numeric fields of a type's object the client requires: each must be measured."""
    return [f for f in PER_TYPE[file_name] if f.required and f.ts_type == "number"]


# ---------------------------------------------------------------------- schema check


def _resolve(schema: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = node.get("$ref")
    while isinstance(ref, str) and ref.startswith("#/$defs/"):
        node = schema["$defs"][ref.removeprefix("#/$defs/")]
        ref = node.get("$ref")
    return node


def _types(node: Mapping[str, Any]) -> set[str]:
    """The JSON types `node` allows (its own, or the union over oneOf/anyOf branches)."""
    declared = node.get("type")
    if isinstance(declared, list):
        return set(declared)
    if isinstance(declared, str):
        return {declared}
    branches = node.get("oneOf") or node.get("anyOf") or []
    return {t for b in branches if isinstance(b, dict) for t in _types(b)}


def _walk(schema: Mapping[str, Any], start: Mapping[str, Any], field: ClientField) -> str | None:
    node = start
    for i, part in enumerate(field.path):
        node = _resolve(schema, node)
        where = ".".join(field.path[: i + 1])
        if field.required and part not in node.get("required", ()):
            return f"{where} is not required"
        child = node.get("properties", {}).get(part)
        if child is None:
            return f"{where} is not in the schema"
        node = child
    node = _resolve(schema, node)
    types = _types(node)
    if not types & set(field.json_types) and "const" not in node:
        return f"{field.name}: schema type {sorted(types)}, the client declares {field.ts_type}"
    if field.ts_type == "number" and "null" in types and field.per_type:
        return f"{field.name}: the schema allows null, the client declares number"
    return None


def schema_gaps(file_name: str, schema: Mapping[str, Any]) -> list[str]:
    """Every field the client declares that `schema` does not require with its type."""
    gaps: list[str] = []
    instance = schema["$defs"][INSTANCE_DEFS[file_name]]
    for field in PER_TYPE[file_name]:
        gap = _walk(schema, instance, field)
        if gap:
            gaps.append(gap)
    for field in DOCUMENT[file_name]:
        gap = _walk(schema, schema, field)
        if gap and "allows null" not in gap:
            gaps.append(gap)
    return gaps


# ---------------------------------------------------------------------- documentation


def _rows(fields: tuple[ClientField, ...]) -> Iterator[str]:
    yield "| field | declared | unit | our meaning | the client reads it in |"
    yield "|---|---|---|---|---|"
    for f in fields:
        declared = f.ts_type + ("" if f.required else " (optional)")
        read = f.read_by.replace("|", "\\|") or "declared only"
        yield f"| `{f.name}` | {declared} | {f.unit or '-'} | {f.meaning} | {read} |"


def markdown() -> str:
    """The contract tables of docs/computecompass.md (a test keeps the two equal)."""
    lines: list[str] = []
    for file_name in (MEMORY_FILE, CPU_FILE, PRICE_FILE):
        lines += [f"### {file_name}", "", "Document:", "", *_rows(DOCUMENT[file_name])]
        lines += ["", "One type's object (`instances[type]`):", "", *_rows(PER_TYPE[file_name])]
        differs = [f for f in PER_TYPE[file_name] if f.differs]
        seen: set[str] = set()
        if differs:
            lines += ["", "Where our meaning differs from what the client shows:", ""]
            for f in differs:
                if f.differs in seen:
                    continue
                seen.add(f.differs)
                names = ", ".join(f"`{g.name}`" for g in differs if g.differs == f.differs)
                lines.append(f"- {names}: {f.differs}")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(markdown())
