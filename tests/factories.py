"""Synthetic, schema-valid result documents for tests and `bench/`.

Why: aggregation and publication need result sets with *known* answers (a chosen bandwidth
per sample, a chosen spread of the trials), and thousands of them, without running STREAM.
Every document built here validates against `ResultDocument` and passes ingest's
plausibility rules: bandwidths follow STREAM's byte counting from the trial times, the
machine in `system_info` is a realistic one for the instance type (vCPUs, memory, sockets,
caches, architecture from the name), and the execution context is what the agent writes.

Numbers are derived, never copied: the caller picks the best triad bandwidth of the sample
(`bandwidth_gbps`) and the within-sample spread (`trial_cv`); every other figure follows.
"""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from instbench.instance_types import parse_instance_type
from instbench.results.schema import DATA_VERSION, STREAM_BYTES_PER_ELEMENT, STREAM_KERNELS

if TYPE_CHECKING:
    from collections.abc import Iterable

    from instbench.fleet.plan import FleetOptions, Plan
    from instbench.prices import InstancePrice, PriceSet

GIB = 1024**3
ELEMENTS = 2**28
"""STREAM's fixed floor (2^28 doubles per array), what a real run uses."""

# vCPUs per size name (the x86 and Graviton general-purpose ladders agree on these).
_VCPUS = {
    "medium": 1,
    "large": 2,
    "xlarge": 4,
    "2xlarge": 8,
    "4xlarge": 16,
    "8xlarge": 32,
    "12xlarge": 48,
    "16xlarge": 64,
    "24xlarge": 96,
    "48xlarge": 192,
    "metal": 192,
}
# GiB of memory per vCPU by series letter (c: 2, m: 4, r: 8), the EC2 ratios.
_GIB_PER_VCPU = {"c": 2, "m": 4, "r": 8, "x": 16}

# Kernel bandwidth relative to triad: copy/scale move fewer bytes per element and run a
# little faster on most machines. Only the ordering matters to the tests.
_KERNEL_FACTOR = {"copy": 1.06, "scale": 1.04, "add": 1.01, "triad": 1.0}


def machine(instance_type: str, *, sockets: int | None = None) -> dict[str, Any]:
    """A realistic `system_info` for `instance_type` (sizes from the EC2 ladders)."""
    info = parse_instance_type(instance_type)
    vcpus = _VCPUS.get(info.size, 2)
    if sockets is None:
        sockets = 2 if vcpus >= 96 else 1
    arm = info.architecture == "arm64"
    threads_per_core = 1 if arm or (info.vendor == "AMD" and (info.generation or 0) >= 7) else 2
    cores = max(1, vcpus // threads_per_core)
    mem_bytes = int(vcpus * _GIB_PER_VCPU.get(info.series, 4) * GIB * 0.97)
    vendor, manufacturer, model_name = {
        "Intel": ("GenuineIntel", "Intel", "Intel(R) Xeon(R) Platinum 8488C"),
        "AMD": ("AuthenticAMD", "AMD", "AMD EPYC 9R14"),
        "AWS": ("ARM", "AWS", "Neoverse-V1"),
    }.get(info.vendor, ("GenuineIntel", "Intel", "Intel(R) Xeon(R)"))
    return {
        "architecture": info.architecture,
        "caches": [
            _cache(1, "Data", 48 * 1024 if not arm else 64 * 1024, cores, threads_per_core),
            _cache(1, "Instruction", 32 * 1024 if not arm else 64 * 1024, cores, threads_per_core),
            _cache(2, "Unified", 2 * 1024 * 1024 if not arm else 1024 * 1024, cores, 1),
            {
                "instances": sockets,
                "level": 3,
                "line_size_bytes": 64,
                "shared_cpu_count": vcpus // sockets,
                "size_bytes": 32 * 1024 * 1024 if arm else 105 * 1024 * 1024,
                "type": "Unified",
            },
        ],
        "cpu": {
            "cores_per_socket": max(1, cores // sockets),
            "family": None if arm else "6",
            "flags": ["fp", "asimd", "sve"] if arm else ["sse2", "avx2", "avx512f"],
            "logical_cpus": vcpus,
            "manufacturer": manufacturer,
            "max_mhz": None if arm else 3800.0,
            "model": "0xd40" if arm else "143",
            "model_name": model_name,
            "online_cpus": vcpus,
            "sockets": sockets,
            "stepping": "r1p1" if arm else "8",
            "threads_per_core": threads_per_core,
            "vendor": vendor,
        },
        "ec2": None,
        "memory": {
            "available_bytes": int(mem_bytes * 0.9),
            "hugepage_size_bytes": 2 * 1024 * 1024,
            "total_bytes": mem_bytes,
        },
        "numa_nodes": sockets,
        "os": {
            "id": "amzn",
            "kernel": "6.1.112-122.189.amzn2023." + ("aarch64" if arm else "x86_64"),
            "pretty_name": "Amazon Linux 2023.6.20241031",
            "version_id": "2023",
        },
        "page_size_bytes": 4096,
        "python_version": "3.9.20",
        "thp": {"defrag": "madvise", "enabled": "madvise"},
    }


def _cache(level: int, kind: str, size: int, cores: int, shared: int) -> dict[str, Any]:
    return {
        "instances": cores,
        "level": level,
        "line_size_bytes": 64,
        "shared_cpu_count": shared,
        "size_bytes": size,
        "type": kind,
    }


def _kernel(name: str, best_gbps: float, trials: int, trial_cv: float, rng: random.Random):
    nbytes = STREAM_BYTES_PER_ELEMENT[name] * ELEMENTS
    best_t = nbytes / (best_gbps * 1e9)
    # The best trial is exact; the others are slower by |N(0, cv)| so best stays best.
    times = [best_t] + [best_t * (1 + abs(rng.gauss(0.0, trial_cv))) for _ in range(trials - 1)]
    rng.shuffle(times)
    avg_t = sum(times) / len(times)
    return {
        "avg_gbps": nbytes / avg_t / 1e9,
        "avg_time_s": avg_t,
        "best_gbps": nbytes / best_t / 1e9,
        "bytes_per_trial": nbytes,
        "max_gbps": nbytes / best_t / 1e9,
        "max_time_s": max(times),
        "min_gbps": nbytes / max(times) / 1e9,
        "min_time_s": best_t,
        "trial_times_s": times,
    }


def _run(
    mode: str, threads: int, bandwidth: float, trials: int, cv: float, rng: random.Random
) -> dict[str, Any]:
    kernels = {
        k: _kernel(k, bandwidth * _KERNEL_FACTOR[k], trials, cv, rng) for k in STREAM_KERNELS
    }
    duration = sum(sum(k["trial_times_s"]) for k in kernels.values()) * (trials + 1) / trials
    return {
        "array_bytes": ELEMENTS * 8,
        "array_elements": ELEMENTS,
        "duration_s": duration,
        "kernels": kernels,
        "ntimes": trials + 1,
        "thread_mode": mode,
        "threads": threads,
        "timer_resolution_ns": 20.0,
        "total_bytes": ELEMENTS * 24,
        "trials_counted": trials,
        "validation_detail": "final arrays vs the scalar replay; tolerance 1e-13: passed",
        "validation_passed": True,
    }


def result_document(
    instance_type: str = "m7i.large",
    *,
    bandwidth_gbps: float = 40.0,
    single_gbps: float | None = None,
    trial_cv: float = 0.01,
    trials: int = 10,
    sample: int = 0,
    run_id: str = "run-20250301",
    timestamp: datetime | None = None,
    region: str = "us-east-1",
    collection_method: str = "aws",
    quick: bool = False,
    sockets: int | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """One valid result document (a dict) for one sample of `instance_type`.

    `bandwidth_gbps` is the sample's best all-threads triad; `single_gbps` the one-thread
    triad (default: a third of it, capped at 20 GB/s, what one server core sustains).
    `seed` makes the trial times reproducible (default: derived from type, run and sample).
    """
    ts = timestamp or datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    rng = random.Random(seed if seed is not None else f"{instance_type}/{run_id}/{sample}")
    system = machine(instance_type, sockets=sockets)
    vcpus = system["cpu"]["logical_cpus"]
    single = single_gbps if single_gbps is not None else min(bandwidth_gbps / 3, 20.0)
    runs = [
        _run("all", vcpus, bandwidth_gbps, trials, trial_cv, rng),
        _run("single", 1, single, trials, trial_cv, rng),
    ]
    stream_s = sum(r["duration_s"] for r in runs)
    return {
        "execution_context": {
            "agent_version": "0.1.0",
            "argv": ["agent.pyz", "run", "--benchmarks", "stream", "--run-id", run_id],
            "binary_cached": False,
            "cflags": [
                "-O3",
                "-mcpu=native" if system["architecture"] == "arm64" else "-march=native",
                "-fopenmp",
            ],
            "compiler": {
                "name": "gcc",
                "path": "/usr/bin/gcc",
                "version": "gcc (GCC) 11.4.1 20230605 (Red Hat 11.4.1-2)",
            },
            "openmp": {
                "OMP_NUM_THREADS": str(vcpus),
                "OMP_PLACES": "cores",
                "OMP_PROC_BIND": "spread",
            },
            "phase_durations_s": {
                "compile": 0.41,
                "detect": 0.004,
                "stream": stream_s,
                "total": stream_s + 0.42,
            },
        },
        "metadata": {
            "availability_zone": f"{region}a" if collection_method == "aws" else None,
            "benchmark_suite": ["stream"],
            "collection_method": collection_method,
            "data_version": DATA_VERSION,
            "instance_type": instance_type,
            "market": "on-demand" if collection_method == "aws" else None,
            "quick": quick,
            "region": region,
            "run_id": run_id,
            "sample": sample,
            "task_id": f"{instance_type}/stream/{sample}",
            "timestamp": ts.isoformat(),
            "tool_version": "0.1.0",
        },
        "performance_data": {
            "stream": {
                "array_size_reason": "fixed floor of 2^28 elements: 2.0 GiB per array",
                "huge_pages": "one posix_memalign block; system THP policy applies (madvise)",
                "kernel_version": "1.0.0",
                "nontemporal_stores": "compiler-default",
                "runs": runs,
                "source_sha256": "74d7d7b01759568ef9c05a586f45dca8258543efa60022c0f123e6f4e976572f",
            }
        },
        "system_info": system,
    }


def raw_key_of(doc: dict[str, Any], benchmark: str = "stream") -> str:
    """The storage key the orchestrator would give `doc` (layout.raw_key)."""
    from instbench.storage.layout import raw_key

    meta = doc["metadata"]
    return raw_key(
        benchmark,
        meta["instance_type"],
        meta["region"],
        datetime.fromisoformat(meta["timestamp"]),
        meta["run_id"],
        meta["sample"],
    )


def to_bytes(doc: dict[str, Any]) -> bytes:
    """The stored form (pretty, sorted), as `document_json` writes it."""
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def legacy_document(
    instance_type: str = "m7i.large",
    *,
    triad_gbps: float = 14.4981,
    architecture: str | None = None,
    region: str = "us-west-2",
    timestamp: str = "2025-06-29T23:21:58Z",
) -> dict[str, Any]:
    """A result of the earlier Go collector (`schema_version` 1.0.0), as it wrote them.

    Modelled on the files that collector published: STREAM figures only under
    `performance.memory.stream.{kernel}.bandwidth`, camelCase metadata, a validation block
    whose checksums are those of empty content (the collector hashed nothing).
    """
    info = parse_instance_type(instance_type)
    arch = architecture or {"Intel": "intel", "AMD": "amd", "AWS": "graviton"}[info.vendor]
    factors = {"copy": 0.985, "scale": 0.965, "add": 0.996, "triad": 1.0}
    return copy.deepcopy(
        {
            "execution_context": {
                "benchmark_version": "latest",
                "compiler_optimizations": "-O3 -march=native -mtune=native",
                "container_runtime": "docker",
            },
            "metadata": {
                "benchmark_suite": "stream",
                "collection_method": "automated",
                "data_version": "1.0",
                "duration_seconds": 228.883856167,
                "environment": {
                    "containerImage": "public.ecr.aws/aws-benchmarks/stream:intel-icelake",
                    "duration": 228.883856167,
                    "timestamp": timestamp,
                },
                "instanceFamily": info.family,
                "instanceType": instance_type,
                "instance_id": "i-0c953d1cf83bd048f",
                "processorArchitecture": arch,
                "region": region,
                "timestamp": timestamp,
            },
            "performance": {
                "memory": {
                    "metadata": {"timestamp": timestamp},
                    "stream": {
                        k: {"bandwidth": round(triad_gbps * f, 4), "unit": "GB/s"}
                        for k, f in factors.items()
                    },
                }
            },
            "schema_version": "1.0.0",
            "system_info": {
                "architecture": arch,
                "instance_family": info.family,
                "private_ip": "172.31.0.144",
                "public_ip": "",
                "status": "completed",
            },
            "validation": {
                "checksums": {
                    "md5": "d41d8cd98f00b204e9800998ecf8427e",
                    "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                },
                "reproducibility": {"confidence": 1, "runs": 1},
            },
        }
    )


def go_collector_document(
    kind: str = "stream",
    instance_type: str = "m7i.large",
    *,
    variant: str = "1.0.0",
    figure: float = 14.4981,
    label: str | None = "x86_64",
    image_tag: str | None = "intel-icelake",
    suite: str | None = None,
    instance_id: str = "i-0c953d1cf83bd048f",
    timestamp: str = "2025-06-30T01:15:48Z",
) -> dict[str, Any]:
    """A file of the earlier Go collector in any layout of its history (synthetic).

    `variant` "1.0.0": `schema_version`, camelCase metadata with processorArchitecture and
    environment.containerImage, figures under performance.memory.{kind}; variant
    "performance_data": no schema_version, metadata.instance_type, figures under
    performance_data.{kind}. `kind` is stream, coremark, cache or hpl; `figure` scales
    the figures (stream: triad GB/s; coremark: score; cache: L1 ns; hpl: GFLOPS). `suite`
    overrides metadata.benchmark_suite (the collector wrote "hpl" over STREAM figures).
    """
    info = parse_instance_type(instance_type)
    if kind == "stream":
        factors = {"copy": 1.01, "scale": 0.99, "add": 0.995, "triad": 1.0}
        block: dict[str, Any] = {
            k: {"bandwidth": round(figure * f, 4), "unit": "GB/s"} for k, f in factors.items()
        }
    elif kind == "coremark":
        block = {
            "execution_time": 0,
            "iterations": 10000000,
            "score": figure,
            "time_unit": "seconds",
            "unit": "operations/sec",
        }
    elif kind == "cache":
        block = {
            level: {"access_time": round(figure * m, 3), "size_kb": size, "unit": "ns"}
            for level, m, size in (
                ("l1", 1, 48),
                ("l2", 4, 2048),
                ("l3", 20, 32768),
                ("memory", 80, 131072),
            )
        }
    else:
        block = {
            "execution_time": 1.197,
            "gflops": figure,
            "matrix_size": 1000,
            "time_unit": "seconds",
            "unit": "GFLOPS",
        }
    meta: dict[str, Any] = {
        "benchmark_suite": suite or kind,
        "collection_method": "automated",
        "data_version": "1.0",
        "duration_seconds": 48.2,
        "instance_id": instance_id,
        "region": "us-east-1",
        "timestamp": timestamp,
    }
    doc: dict[str, Any] = {
        "execution_context": {
            "benchmark_version": "latest",
            "compiler_optimizations": "-O3 -march=native -mtune=native",
            "container_runtime": "docker",
        },
        "metadata": meta,
        "system_info": {
            "architecture": label or info.architecture,
            "instance_family": info.family,
            "private_ip": "172.31.39.70",
            "public_ip": "",
            "status": "completed",
        },
    }
    figures = {"metadata": {"timestamp": "2025-06-29T18:16:23-07:00"}, kind: block}
    if variant == "performance_data":
        meta["instance_type"] = instance_type
        doc["performance_data"] = figures
        return doc
    meta.update(instanceType=instance_type, instanceFamily=info.family)
    if label is not None:
        meta["processorArchitecture"] = label
    if image_tag is not None:
        meta["environment"] = {
            "containerImage": f"public.ecr.aws/aws-benchmarks/{kind}:{image_tag}",
            "duration": 48.2,
            "timestamp": timestamp,
        }
    doc.update(schema_version="1.0.0", performance={"memory": figures})
    doc["validation"] = {"reproducibility": {"confidence": 1, "runs": 1}}
    return doc


def imported_legacy(
    original: dict[str, Any], source_path: str = "results/x.json"
) -> dict[str, Any]:
    """`original` (a Go-collector file) as `instbench import legacy` stores it."""
    import hashlib

    from instbench.analysis.legacy import parse_go_collector, wrap

    raw = to_bytes(original)
    return wrap(
        original,
        parse_go_collector(original),
        source_path=source_path,
        source_sha256=hashlib.sha256(raw).hexdigest(),
        source_bytes=len(raw),
        repository_commit=None,
    )


def legacy_key(doc: dict[str, Any], name: str = "go-0") -> str:
    """Where `instbench import legacy` stores an imported document (any name)."""
    from instbench.analysis.legacy import parse_go_collector

    result = parse_go_collector(doc["original"])
    return (
        f"raw/{result.benchmark}/{result.instance_type}/{result.region}/"
        f"{result.timestamp:%Y/%m/%d}/{name}.json"
    )


def store_documents(root: Any, docs: list[dict[str, Any]]) -> list[str]:
    """Write `docs` into the mirror at `root` under their raw keys; return the keys."""
    from instbench.storage.local import LocalStore

    store = LocalStore(root)
    keys = []
    for doc in docs:
        key = raw_key_of(doc)
        store.put_new(key, to_bytes(doc))
        keys.append(key)
    return keys


def offline_plan(
    opts: FleetOptions, vcpus: dict[str, int] | None = None, samples: int = 1, **fields: Any
) -> Plan:
    """A `Plan` of stream tasks for `opts.instance_types` built without AWS (for unit tests
    of what reads a plan: quotas, cost). `vcpus` per type (default 2); `fields` are extra
    Plan fields such as `vcpu_limits`."""
    from instbench.fleet.plan import Placement, Plan, Task

    tasks = [
        Task(f"{t}-stream-{s}", t, "stream", s, "x86_64", "ami-1", (vcpus or {}).get(t, 2))
        for t in opts.instance_types
        for s in range(samples)
    ]
    return Plan(
        run_id="r",
        region="us-east-1",
        tasks=tasks,
        placements=[Placement("us-east-1a", None)],
        vpc_id="vpc-1",
        security_group=None,
        images={"x86_64": "ami-1"},
        expires_at=datetime(2025, 3, 5, tzinfo=UTC),
        options=opts,
        **fields,
    )


class TablePriceSource:
    """A price source for tests: the prices in `table`, or one price (`every`) for any type,
    dated 2025-03-05; `asked` records the types of each request."""

    def __init__(
        self,
        table: dict[str, InstancePrice] | None = None,
        *,
        every: InstancePrice | None = None,
        source: str = "test prices",
    ) -> None:
        self.table = table or {}
        self.every = every
        self.source = source
        self.asked: list[list[str]] = []

    def prices(self, instance_types: Iterable[str], region: str) -> PriceSet:
        from datetime import date

        from instbench.prices import PriceSet

        types = list(instance_types)
        self.asked.append(types)
        found = {t: self.every if self.every is not None else self.table.get(t) for t in types}
        return PriceSet(
            region=region,
            as_of=date(2025, 3, 5),
            source=self.source,
            instances={t: price for t, price in found.items() if price is not None},
        )
