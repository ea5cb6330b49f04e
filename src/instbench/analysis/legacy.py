"""Results of the earlier Go collector: read, checked, wrapped on import, and read as rows.

Why its own series, never pooled with ours: the Go collector's "stream" was a loop compiled
without OpenMP (one thread) and each kernel was timed once (one pass, no best of N); its
"coremark" was its own loop, not EEMBC CoreMark; its "hpl" a DGEMM of order 1000, not
HPL; its "cache" one access-time loop per level. Those are real measurements of something
else than what our benchmarks of the same name measure. So every figure becomes a row of
benchmark `legacy-{kind}` with `collection_method = "legacy"` and `thread_mode = "single"`:
`aggregate.publishable_filter` never admits them, so they reach no summary, no export and
no ComputeCompass file; the report reads them separately as history (report/model.py).

Why a wrapper document: `instbench import legacy` (analysis/legacy_import.py) stores under
raw/ a document of kind `instbench-legacy-import` holding the original file verbatim,
its source path and the sha256 of its bytes, the method label, and the flags found. The
ingest recognises that kind by its `kind` field and re-derives the rows from the
original with the same checks as the import (nothing in the wrapper is trusted); our own
documents still go through the v1 schema unchanged. A Go-collector file placed by hand
under raw/ is quarantined with a reason naming the import command.

The variants the collector wrote over its history (all are read):
    go-collector-1.0.0          `schema_version` "1.0.0"; metadata.instanceType,
                                processorArchitecture, environment.containerImage;
                                figures under performance.memory.{kind}
    go-collector-performance-data   no schema_version; metadata.instance_type; figures
                                under performance_data.{kind}
where {kind} is one of stream ({copy,scale,add,triad}.bandwidth GB/s), coremark
(score), cache ({l1,l2,l3,memory}.access_time ns) and hpl (gflops, matrix_size).

What is never trusted: the file's architecture labels (`processorArchitecture`,
`system_info.architecture`: x86_64, arm64, intel, amd, graviton; the collector wrote
"graviton" for Intel types). The type's vendor and architecture come from the offline
name parser (instance_types.py). A label, a container image or compiler flags that
contradict the type are recorded as flags on the imported document (the figures were
measured by a natively compiled loop started from user data, so a wrong image tag is a
wrong label, not proof of emulation); the report shows them beside the figures.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from instbench.analysis.plausibility import (
    L1_LATENCY_NS,
    LEVEL_LATENCY_NS,
    MEMORY_LATENCY_NS,
    bandwidth_ceiling,
)
from instbench.analysis.tidy import Row
from instbench.errors import InvalidInstanceType, InvalidResult
from instbench.instance_types import parse_instance_type
from instbench.results.schema import STREAM_KERNELS
from instbench.results.validate import load_json

if TYPE_CHECKING:
    import duckdb

IMPORT_KIND = "instbench-legacy-import"
IMPORT_VERSION = 1
COLLECTION_METHOD = "legacy"
"""`collection_method` of every legacy row: outside `publishable_filter`, always."""

FORMAT_V1 = "go-collector-1.0.0"
FORMAT_PERFORMANCE_DATA = "go-collector-performance-data"
LEGACY_SCHEMA_VERSION = "1.0.0"

KINDS = ("stream", "coremark", "cache", "hpl")
BENCHMARKS = {kind: f"legacy-{kind}" for kind in KINDS}

METHODS = {
    "legacy-stream": "one thread, one pass: the Go collector's STREAM loop, compiled without "
    "OpenMP, each kernel timed once (no best of N)",
    "legacy-coremark": "one thread: the Go collector's own CoreMark-like loop, not EEMBC "
    "CoreMark; score in that collector's units, comparable with nothing else",
    "legacy-cache": "one thread, one pass: the Go collector's access-time loop per cache level",
    "legacy-hpl": "one thread, one pass: the Go collector's 'hpl', a DGEMM loop of order "
    "1000, not HPL/LINPACK",
}
"""How each legacy series was measured (from the collector's source); shown with it."""

CACHE_LEVELS = ("l1", "l2", "l3", "memory")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")

_LABELS = {
    "x86_64": ("x86_64", None),
    "amd64": ("x86_64", None),
    "intel": ("x86_64", "Intel"),
    "amd": ("x86_64", "AMD"),
    "arm64": ("arm64", None),
    "aarch64": ("arm64", None),
    "graviton": ("arm64", "AWS"),
}
"""An architecture label of the collector -> (architecture, vendor it implies or None)."""

_IMAGE_ARCH = (
    (re.compile(r"graviton|arm64|aarch64|neoverse"), "arm64"),
    (re.compile(r"intel|amd|x86|skylake|icelake|sapphire|zen"), "x86_64"),
)
_CFLAG_ARCH = (
    (re.compile(r"-mcpu=neoverse|-mcpu=graviton|-march=armv"), "arm64"),
    (re.compile(r"-mavx|-mprefer-avx|-msse|-march=(skylake|icelake|znver)"), "x86_64"),
)


@dataclass(frozen=True)
class Figure:
    """One legacy figure: (test, metric, unit, value)."""

    test: str
    metric: str
    unit: str
    value: float


@dataclass(frozen=True)
class LegacyResult:
    """A checked Go-collector file: what it measured, where, when, and what contradicts."""

    source_format: str
    kind: str
    instance_type: str
    architecture: str
    manufacturer: str
    region: str
    instance_id: str
    timestamp: datetime
    availability_zone: str | None
    cflags: str | None
    figures: tuple[Figure, ...]
    flags: tuple[dict[str, str], ...] = field(default=())
    architecture_from: str = "name-parser"
    """Where architecture and manufacturer come from: describe-instance-types or
    name-parser (never the file's labels)."""

    @property
    def benchmark(self) -> str:
        return BENCHMARKS[self.kind]

    def fingerprint(self) -> str:
        """The figures alone: equal for two types means copied or placeholder numbers."""
        figures = sorted(f"{f.test}/{f.metric}={f.value!r}" for f in self.figures)
        return self.benchmark + "|" + "|".join(figures)


def is_go_collector(data: Any) -> bool:
    """True for a document in one of the Go collector's own layouts (not yet imported)."""
    if not isinstance(data, dict) or data.get("kind") == IMPORT_KIND:
        return False
    if "schema_version" in data and "performance" in data:
        return True
    meta = data.get("metadata")
    return (
        "performance_data" in data
        and "data_version" not in data
        and isinstance(meta, dict)
        and meta.get("data_version") == "1.0"
        and "instance_type" in meta
    )


def is_legacy_import(data: Any) -> bool:
    """True for a document written by `instbench import legacy`."""
    return isinstance(data, dict) and data.get("kind") == IMPORT_KIND


def _get(data: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            raise InvalidResult(f"legacy result: missing {'.'.join(path)}")
        data = data[part]
    return data


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidResult(f"legacy result: {what} is not a number")
    if not math.isfinite(value) or value <= 0:
        raise InvalidResult(f"legacy result: {what} {value!r} is not positive")
    return float(value)


def _stream(block: Any, itype: str) -> list[Figure]:
    ceiling = bandwidth_ceiling(1, 1)  # one thread: the collector's loop had no OpenMP
    figures = []
    for name in STREAM_KERNELS:
        entry = _get(block, name)
        unit = entry.get("unit") if isinstance(entry, dict) else None
        if unit != "GB/s":
            raise InvalidResult(f"legacy result: stream {name} unit {unit!r} is not GB/s")
        value = _number(entry.get("bandwidth"), f"stream {name} bandwidth")
        if value > ceiling:
            raise InvalidResult(
                f"legacy result: stream {name} {value:.1f} GB/s is above the one-thread "
                f"ceiling {ceiling:.0f} GB/s for {itype}"
            )
        figures.append(Figure(name, "bandwidth", "GB/s", value))
    return figures


def _coremark(block: Any) -> list[Figure]:
    if not isinstance(block, dict):
        raise InvalidResult("legacy result: coremark is not an object")
    unit = block.get("unit")
    return [
        Figure(
            "go-coremark",
            "score",
            str(unit) if isinstance(unit, str) else "score",
            _number(block.get("score"), "coremark score"),
        )
    ]


def _cache(block: Any) -> list[Figure]:
    figures = []
    for level in CACHE_LEVELS:
        entry = _get(block, level)
        unit = entry.get("unit") if isinstance(entry, dict) else None
        if unit not in {"ns", "nanoseconds"}:  # the collector spelled it both ways
            raise InvalidResult(f"legacy result: cache {level} unit {unit!r} is not ns")
        value = _number(entry.get("access_time"), f"cache {level} access_time")
        figures.append(Figure(level, "latency", "ns", value))
    if len({f.value for f in figures}) == 1:
        raise InvalidResult(
            "legacy result: the same access time at every cache level and memory "
            f"({figures[0].value} ns): not a measurement"
        )
    for f in figures:  # the same ranges as our latency sweep's (plausibility.py)
        low, high = {"l1": L1_LATENCY_NS, "memory": MEMORY_LATENCY_NS}.get(f.test, LEVEL_LATENCY_NS)
        if not low <= f.value <= high:
            raise InvalidResult(
                f"legacy result: cache {f.test} access time {f.value} ns is outside the "
                f"plausible {low:g}-{high:g} ns (no {f.test} answers that fast or slow)"
            )
    return figures


def _hpl(block: Any) -> list[Figure]:
    if not isinstance(block, dict):
        raise InvalidResult("legacy result: hpl is not an object")
    if block.get("unit") != "GFLOPS":
        raise InvalidResult(f"legacy result: hpl unit {block.get('unit')!r} is not GFLOPS")
    figures = [Figure("dgemm", "gflops", "GFLOPS", _number(block.get("gflops"), "hpl gflops"))]
    if "matrix_size" in block:
        figures.append(
            Figure("dgemm", "problem_size", "n", _number(block["matrix_size"], "hpl matrix_size"))
        )
    return figures


def _arch_of(text: str, table: tuple[tuple[re.Pattern[str], str], ...]) -> str | None:
    for pattern, arch in table:
        if pattern.search(text.lower()):
            return arch
    return None


def _flags(
    data: dict[str, Any], meta: dict[str, Any], itype: str, arch: str, vendor: str
) -> list[dict[str, str]]:
    """What in the file contradicts the type (parser's architecture and vendor)."""
    flags: list[dict[str, str]] = []
    labels = {
        "metadata.processorArchitecture": meta.get("processorArchitecture"),
        "system_info.architecture": (data.get("system_info") or {}).get("architecture")
        if isinstance(data.get("system_info"), dict)
        else None,
    }
    for where, label in labels.items():
        if not isinstance(label, str):
            continue
        implied = _LABELS.get(label.lower())
        if implied is None:
            flags.append({"code": "unknown-architecture-label", "detail": f"{where} is {label!r}"})
        elif implied[0] != arch or (implied[1] is not None and implied[1] != vendor):
            flags.append(
                {
                    "code": "architecture-label-contradicts-type",
                    "detail": f"{where} says {label!r} but {itype} is {arch} ({vendor})",
                }
            )
    env = meta.get("environment")
    image = env.get("containerImage") if isinstance(env, dict) else None
    if isinstance(image, str):
        tag = image.rsplit(":", 1)[-1] if ":" in image else image
        image_arch = _arch_of(tag, _IMAGE_ARCH)
        if image_arch is not None and image_arch != arch:
            flags.append(
                {
                    "code": "container-image-contradicts-type",
                    "detail": f"container image {image} is for {image_arch} but {itype} is {arch}",
                }
            )
    ctx = data.get("execution_context")
    cflags = ctx.get("compiler_optimizations") if isinstance(ctx, dict) else None
    if isinstance(cflags, str):
        flag_arch = _arch_of(cflags, _CFLAG_ARCH)
        if flag_arch is not None and flag_arch != arch:
            flags.append(
                {
                    "code": "compiler-flags-contradict-type",
                    "detail": f"compiler flags {cflags!r} are for {flag_arch} but {itype} is "
                    f"{arch}",
                }
            )
    return flags


TypeFacts = Mapping[str, tuple[str, str]]
"""instance type -> (architecture, manufacturer) as DescribeInstanceTypes reports them."""


def instance_type_of(data: Any) -> str | None:
    """The instance type a Go-collector document names, if any (to look it up first)."""
    meta = data.get("metadata") if isinstance(data, dict) else None
    if not isinstance(meta, dict):
        return None
    name = meta.get("instanceType", meta.get("instance_type"))
    return name if isinstance(name, str) else None


def parse_go_collector(data: Any, facts: TypeFacts | None = None) -> LegacyResult:
    """Check one Go-collector document (any variant); `InvalidResult` with the reason.

    The type's architecture and manufacturer come from `facts` (DescribeInstanceTypes)
    when it has the type, else from the name parser; never from the file.
    """
    if not isinstance(data, dict):
        raise InvalidResult("not a Go-collector result: not a JSON object")
    if "schema_version" in data:
        version = data.get("schema_version")
        if version != LEGACY_SCHEMA_VERSION:
            raise InvalidResult(f"legacy result: unsupported schema_version {version!r}")
        source_format = FORMAT_V1
        perf = _get(data, "performance", "memory")
        itype = _get(data, "metadata", "instanceType")
    elif "performance_data" in data:
        source_format = FORMAT_PERFORMANCE_DATA
        perf = data["performance_data"]
        itype = _get(data, "metadata", "instance_type")
    else:
        raise InvalidResult(
            "not a Go-collector result: neither schema_version nor performance_data"
        )
    meta = data["metadata"]
    if not isinstance(meta, dict) or not isinstance(perf, dict):
        raise InvalidResult("legacy result: metadata or figures are not objects")
    if not isinstance(itype, str):
        raise InvalidResult("legacy result: the instance type is not a string")
    try:
        info = parse_instance_type(itype)
    except InvalidInstanceType as exc:
        raise InvalidResult(f"legacy result: {exc}") from exc
    region = _get(data, "metadata", "region")
    if not isinstance(region, str) or not _REGION.match(region):
        raise InvalidResult(f"legacy result: invalid region {region!r}")
    instance_id = meta.get("instance_id")
    if not (isinstance(instance_id, str) and _INSTANCE_ID.match(instance_id)):
        raise InvalidResult("legacy result: no EC2 instance id, cannot tell where it ran")
    stamp = _get(data, "metadata", "timestamp")
    try:
        ts = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidResult(f"legacy result: bad timestamp {stamp!r}") from exc
    if ts.tzinfo is None:
        raise InvalidResult(f"legacy result: timestamp {stamp!r} has no UTC offset")
    arch, vendor, arch_from = str(info.architecture), str(info.vendor), "name-parser"
    if facts is not None and itype in facts:
        arch, vendor = facts[itype]
        arch_from = "describe-instance-types"
    kinds = [k for k in KINDS if k in perf]
    if len(kinds) != 1:
        found = ", ".join(sorted(k for k in perf if k != "metadata")) or "none"
        raise InvalidResult(
            f"legacy result: expected one of stream/coremark/cache/hpl figures, found {found}"
        )
    kind = kinds[0]
    suite = meta.get("benchmark_suite")
    if suite is not None and suite != kind:
        raise InvalidResult(
            f"legacy result: benchmark_suite says {suite!r} but the file holds {kind} figures"
        )
    block = perf[kind]
    if kind == "stream":
        figures = _stream(block, itype)
    elif kind == "coremark":
        figures = _coremark(block)
    elif kind == "cache":
        figures = _cache(block)
    else:
        figures = _hpl(block)
    az = meta.get("availabilityZone")
    ctx = data.get("execution_context")
    cflags = ctx.get("compiler_optimizations") if isinstance(ctx, dict) else None
    return LegacyResult(
        source_format=source_format,
        kind=kind,
        instance_type=itype,
        architecture=arch,
        manufacturer=vendor,
        region=region,
        instance_id=instance_id,
        timestamp=ts.astimezone(UTC),
        availability_zone=az if isinstance(az, str) else None,
        cflags=cflags if isinstance(cflags, str) and cflags else None,
        figures=tuple(figures),
        flags=tuple(_flags(data, meta, itype, arch, vendor)),
        architecture_from=arch_from,
    )


def wrap(
    original: dict[str, Any],
    result: LegacyResult,
    *,
    source_path: str,
    source_sha256: str,
    source_bytes: int,
    repository_commit: str | None,
) -> dict[str, Any]:
    """The document `instbench import legacy` stores: the original, verbatim, with provenance."""
    return {
        "kind": IMPORT_KIND,
        "import_version": IMPORT_VERSION,
        "benchmark": result.benchmark,
        "method": METHODS[result.benchmark],
        "source": {
            "path": source_path,
            "sha256": source_sha256,
            "bytes": source_bytes,
            "format": result.source_format,
            "repository_commit": repository_commit,
        },
        "instance_type": result.instance_type,
        "architecture": result.architecture,
        "manufacturer": result.manufacturer,
        "architecture_from": result.architecture_from,
        "flags": list(result.flags),
        "original": original,
    }


def imported_rows(data: dict[str, Any], key: str, sha256: str) -> list[Row]:
    """Rows of a stored import document; the original is checked again, nothing trusted."""
    if data.get("import_version") != IMPORT_VERSION:
        raise InvalidResult(
            f"legacy import: unsupported import_version {data.get('import_version')!r}"
        )
    source = data.get("source")
    if not (
        isinstance(source, dict)
        and isinstance(source.get("path"), str)
        and isinstance(source.get("sha256"), str)
        and re.fullmatch(r"[0-9a-f]{64}", source["sha256"])
    ):
        raise InvalidResult("legacy import: no source path and sha256")
    original = data.get("original")
    facts: dict[str, tuple[str, str]] = {}
    # DescribeInstanceTypes' answer, recorded at import, is the truth (DESIGN principle 4);
    # the file's own labels never are.
    if data.get("architecture_from") == "describe-instance-types":
        arch, vendor = data.get("architecture"), data.get("manufacturer")
        name = instance_type_of(original)
        if arch in {"x86_64", "arm64"} and isinstance(vendor, str) and name:
            facts[name] = (str(arch), vendor)
    result = parse_go_collector(original, facts)
    if data.get("benchmark") != result.benchmark:
        raise InvalidResult(
            f"legacy import: benchmark {data.get('benchmark')!r} but the original holds "
            f"{result.kind} figures"
        )
    parts = key.split("/")
    if (
        len(parts) > 3
        and parts[0] == "raw"
        and (parts[1] != result.benchmark or parts[2] != result.instance_type)
    ):
        raise InvalidResult(
            f"legacy import for {result.benchmark} {result.instance_type} is stored "
            f"under {parts[1]}/{parts[2]}"
        )
    base: Row = {
        "result_sha256": sha256,
        "key": key,
        "source_format": result.source_format,
        "instance_type": result.instance_type,
        "region": result.region,
        "availability_zone": result.availability_zone,
        "run_id": key.rsplit("/", 1)[-1].removesuffix(".json"),
        "sample": 0,
        "timestamp": result.timestamp,
        "collection_method": COLLECTION_METHOD,
        "quick": False,
        "market": None,
        "architecture": result.architecture,
        "manufacturer": result.manufacturer,
        "cpu_model": None,
        "vcpus": None,
        "memory_gib": None,
        "sockets": None,
        "numa_nodes": None,
        "compiler": None,
        "cflags": result.cflags,
        "benchmark": result.benchmark,
        "thread_mode": "single",
        "threads": 1,
        "trials": 1,
        "trial_mean": None,
        "trial_sd": None,
    }
    return [
        {**base, "test": f.test, "metric": f.metric, "unit": f.unit, "value": f.value}
        for f in result.figures
    ]


HEADLINE_TESTS = {"legacy-stream": "triad", "legacy-cache": "memory"}
"""The figure a history row sorts by (else its first: the CoreMark score, the GFLOPS)."""


@dataclass(frozen=True)
class HistoryEntry:
    """One accepted legacy file as the report shows it: beside ours, never pooled."""

    instance_type: str
    benchmark: str
    timestamp: str
    region: str
    key: str
    source_path: str
    method: str
    figures: tuple[tuple[str, float, str], ...]
    """(test, value, unit) in the order stored."""
    flags: tuple[str, ...]

    @property
    def headline(self) -> float:
        want = HEADLINE_TESTS.get(self.benchmark)
        for test, value, _ in self.figures:
            if test == want:
                return value
        return self.figures[0][1]


def history(con: duckdb.DuckDBPyConnection, root: Path) -> list[HistoryEntry]:
    """The accepted legacy files of an ingested mirror, with their provenance and flags.

    Read from `accepted_rows` (so placeholders and quarantined files are never shown) and
    from the stored import documents (source path, flags): a few dozen small files.
    """
    rows = con.execute(
        "SELECT key, instance_type, benchmark, strftime(timestamp, '%Y-%m-%dT%H:%M:%SZ'), "
        "region, test, value, unit FROM accepted_rows "
        f"WHERE collection_method = '{COLLECTION_METHOD}' AND metric <> 'problem_size' "
        "ORDER BY instance_type, benchmark, timestamp, key"
    ).fetchall()
    by_key: dict[str, list[tuple[Any, ...]]] = {}
    for r in rows:
        by_key.setdefault(str(r[0]), []).append(r)
    entries = []
    for key, group in by_key.items():
        try:
            doc = load_json((root / key).read_bytes())
            flags = tuple(str(f["detail"]) for f in doc.get("flags", []) if isinstance(f, dict))
            source = str(doc["source"]["path"])
        except (OSError, KeyError, TypeError, InvalidResult):
            flags, source = (), "(unreadable)"
        order = {name: i for i, name in enumerate((*STREAM_KERNELS, *CACHE_LEVELS))}
        figures = sorted(
            ((str(r[5]), float(r[6]), str(r[7])) for r in group),
            key=lambda f: order.get(f[0], len(order)),
        )
        first = group[0]
        entries.append(
            HistoryEntry(
                instance_type=str(first[1]),
                benchmark=str(first[2]),
                timestamp=str(first[3]),
                region=str(first[4]),
                key=key,
                source_path=source,
                method=METHODS.get(str(first[2]), ""),
                figures=tuple(figures),
                flags=flags,
            )
        )
    return entries
