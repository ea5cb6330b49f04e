"""Object keys of the storage tree (S3 and the local mirror share it; see DESIGN.md).

    raw/{benchmark}/{instance_type}/{region}/{YYYY}/{MM}/{DD}/{run_id}-{sample}.json
    logs/{run_id}/{instance_id}.log
    runs/{run_id}/manifest.json
    artifacts/{sha256}.pyz      (the agent zipapp)
    artifacts/{sha256}.json     (a user-defined suite's artifact)
    processed/...
    quarantine/...

Keys are built only from validated components, so a key can never escape its prefix.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def safe_component(value: str, what: str) -> str:
    """Return `value` if it is safe as one path component, else raise ValueError."""
    if not _SAFE.fullmatch(value) or value in {".", ".."}:
        raise ValueError(f"{what} {value!r} is not a safe path component")
    return value


def raw_key(
    benchmark: str,
    instance_type: str,
    region: str,
    timestamp: datetime,
    run_id: str,
    sample: int,
) -> str:
    """Key of one raw result document."""
    ts = timestamp.astimezone(UTC)
    parts = [
        "raw",
        safe_component(benchmark, "benchmark"),
        safe_component(instance_type, "instance type"),
        safe_component(region, "region"),
        f"{ts:%Y}",
        f"{ts:%m}",
        f"{ts:%d}",
        f"{safe_component(run_id, 'run id')}-{int(sample)}.json",
    ]
    return "/".join(parts)


def log_key(run_id: str, instance_id: str) -> str:
    """Key of an instance's agent log."""
    return f"logs/{safe_component(run_id, 'run id')}/{safe_component(instance_id, 'id')}.log"


def manifest_key(run_id: str) -> str:
    """Key of a run's manifest."""
    return f"runs/{safe_component(run_id, 'run id')}/manifest.json"


ARTIFACT_SUFFIXES = ("pyz", "json")
"""Artifacts a run uploads for its instances: the agent zipapp, a suite's JSON artifact."""


def artifact_key(sha256: str, suffix: str = "pyz") -> str:
    """Key of an artifact uploaded once per run and fetched by presigned GET.

    Named by its sha256 (the instance checks it), so identical bytes share one object
    across runs and a key can never hold anything but those bytes.
    """
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError("artifact key needs a sha256 hex digest")
    if suffix not in ARTIFACT_SUFFIXES:
        raise ValueError(f"artifact suffix {suffix!r} is not one of {ARTIFACT_SUFFIXES}")
    return f"artifacts/{sha256}.{suffix}"
