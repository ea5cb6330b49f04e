"""Results written by the earlier Go collector (`schema_version` "1.0.0"), read as tidy rows.

Why convert rather than reject: those files are the history users already have, and
their STREAM figures are real measurements when they are plausible. Why not convert them
into `ResultDocument`s: they lack what our schema requires (trial times, the machine's
CPU and memory, compiler), and inventing those would be exactly the kind of fabricated
provenance this project exists to avoid. So a legacy file becomes tidy rows with the
fields it does have; the unknown ones (vCPUs, memory, trials) stay null, and every row is
labelled `source_format = "go-collector-1.0.0"`.

What is read (everything else is ignored):
    schema_version                          "1.0.0"
    metadata.instanceType, .region, .timestamp, .processorArchitecture, .instance_id,
    metadata.availabilityZone (optional)
    performance.memory.stream.{copy,scale,add,triad}.{bandwidth, unit="GB/s"}

Validation mirrors ours: a valid EC2 type name whose vendor agrees with the declared
processor architecture (the collector published "graviton" for Intel types), positive
finite bandwidths, the same ceiling as our plausibility rules (vCPUs estimated from the
size name, generously), and a timestamp. Failures are quarantined like any document.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from instbench.analysis.plausibility import bandwidth_ceiling
from instbench.analysis.tidy import Row
from instbench.errors import InvalidInstanceType, InvalidResult
from instbench.instance_types import parse_instance_type
from instbench.results.schema import STREAM_KERNELS

SOURCE_FORMAT = "go-collector-1.0.0"
LEGACY_SCHEMA_VERSION = "1.0.0"

_ARCH = {
    "intel": ("x86_64", "Intel"),
    "amd": ("x86_64", "AMD"),
    "graviton": ("arm64", "AWS"),
}
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


def is_legacy(data: Any) -> bool:
    """True for a document of the Go collector (its own top-level layout)."""
    return (
        isinstance(data, dict)
        and "schema_version" in data
        and "performance" in data
        and "performance_data" not in data
    )


def _vcpus_from_size(size: str) -> int | None:
    """A generous vCPU estimate from the size name (`4xlarge` -> 16); None when unknown."""
    if size == "large":
        return 2
    if size in {"nano", "micro", "small", "medium"}:
        return 1
    if size == "xlarge":
        return 4
    match = re.fullmatch(r"(\d+)xlarge", size)
    return 4 * int(match.group(1)) if match else None


def _get(data: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            raise InvalidResult(f"legacy result: missing {'.'.join(path)}")
        data = data[part]
    return data


def legacy_rows(data: dict[str, Any], key: str, sha256: str) -> list[Row]:
    """Validate a Go-collector document and return its tidy rows; `InvalidResult` otherwise."""
    version = data.get("schema_version")
    if version != LEGACY_SCHEMA_VERSION:
        raise InvalidResult(f"legacy result: unsupported schema_version {version!r}")
    itype = _get(data, "metadata", "instanceType")
    region = _get(data, "metadata", "region")
    if not isinstance(itype, str):
        raise InvalidResult("legacy result: metadata.instanceType is not a string")
    try:
        info = parse_instance_type(itype)
    except InvalidInstanceType as exc:
        raise InvalidResult(f"legacy result: {exc}") from exc
    if not isinstance(region, str) or not _REGION.match(region):
        raise InvalidResult(f"legacy result: invalid region {region!r}")
    declared = _get(data, "metadata", "processorArchitecture")
    if declared not in _ARCH:
        raise InvalidResult(f"legacy result: unknown processorArchitecture {declared!r}")
    architecture, manufacturer = _ARCH[declared]
    if manufacturer != info.vendor:
        raise InvalidResult(
            f"legacy result: {itype} is made by {info.vendor} but the file says {declared!r}"
        )
    parts = key.split("/")
    if len(parts) > 3 and parts[0] == "raw" and parts[2] != itype:
        raise InvalidResult(f"legacy result for {itype} is stored under {parts[2]}'s key")
    instance_id = data["metadata"].get("instance_id")
    if not (isinstance(instance_id, str) and instance_id.startswith("i-")):
        raise InvalidResult("legacy result: no EC2 instance id, cannot tell where it ran")
    stamp = _get(data, "metadata", "timestamp")
    try:
        ts = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidResult(f"legacy result: bad timestamp {stamp!r}") from exc
    if ts.tzinfo is None:
        raise InvalidResult(f"legacy result: timestamp {stamp!r} has no UTC offset")
    stream = _get(data, "performance", "memory", "stream")
    vcpus = _vcpus_from_size(info.size)
    ceiling = bandwidth_ceiling(vcpus, 2) if vcpus else bandwidth_ceiling(10**6, 2)
    az = data["metadata"].get("availabilityZone")
    base: Row = {
        "result_sha256": sha256,
        "key": key,
        "source_format": SOURCE_FORMAT,
        "instance_type": itype,
        "region": region,
        "availability_zone": az if isinstance(az, str) else None,
        "run_id": key.rsplit("/", 1)[-1].removesuffix(".json"),
        "sample": 0,
        "timestamp": ts.astimezone(UTC),
        "collection_method": "aws",
        "quick": False,
        "market": None,
        "architecture": architecture,
        "manufacturer": manufacturer,
        "cpu_model": None,
        "vcpus": None,
        "memory_gib": None,
        "sockets": None,
        "numa_nodes": None,
        "compiler": None,
        "cflags": str(data.get("execution_context", {}).get("compiler_optimizations") or "")
        or None,
    }
    rows: list[Row] = []
    for name in STREAM_KERNELS:
        entry = _get(data, "performance", "memory", "stream", name)
        value = entry.get("bandwidth") if isinstance(entry, dict) else None
        unit = entry.get("unit") if isinstance(entry, dict) else None
        if unit != "GB/s":
            raise InvalidResult(f"legacy result: stream {name} unit {unit!r} is not GB/s")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidResult(f"legacy result: stream {name} bandwidth is not a number")
        if not math.isfinite(value) or value <= 0:
            raise InvalidResult(f"legacy result: stream {name} bandwidth {value!r} not positive")
        if value > ceiling:
            raise InvalidResult(
                f"legacy result: stream {name} {value:.1f} GB/s is above the ceiling "
                f"{ceiling:.0f} GB/s for {itype}"
            )
        rows.append(
            {
                **base,
                "benchmark": "stream",
                "test": name,
                # The collector ran STREAM with OpenMP over every vCPU and recorded one figure.
                "thread_mode": "all",
                "threads": None,
                "metric": "bandwidth",
                "unit": "GB/s",
                "value": float(value),
                "trials": None,
                "trial_mean": None,
                "trial_sd": None,
            }
        )
    if not isinstance(stream, dict):
        raise InvalidResult("legacy result: performance.memory.stream is not an object")
    return rows
