"""storage-benchmarks.json: per instance type, what its disks delivered under fio, with
the advertised ceilings beside the measured figures, and the JSON Schema it follows.

Documents stage: from the all-time summaries (summarize.py) to bytes, nothing else read.
Our own file (not a ComputeCompass contract): one entry per instance type with storage
figures; per target role (ebs: the gp3 data volume; instance-store, instance-store-2 ...;
file: a local or sandbox file) and fio job, each metric's statistics over instances
(n, median, mean, 95 % interval of the mean), plus the advertised IOPS and MB/s ceilings.
Where an EBS burst run was published (EC2, not --quick), the role also has the jobs
'burst' and 'sustained' (throughput MB/s, limit_ratio: burst over the advertised maximum,
sustained over the baseline) and 'burst' has seconds_until_fall (only runs that fell).
The file is written only when at least one storage figure is published, so publications
without storage results are unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from jsonschema import Draft202012Validator

from instbench.analysis.aggregate import Summary
from instbench.analysis.documents.jsonform import dumps

STORAGE_FILE = "storage-benchmarks.json"
SCHEMA_FILE = "storage-benchmarks-v1.schema.json"
FORMAT_VERSION = "1.0.0"

_STAT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["n", "median", "mean", "ci_low", "ci_high", "unit"],
    "properties": {
        "n": {"type": "integer", "minimum": 1, "description": "Instances measured."},
        "median": {"type": "number"},
        "mean": {"type": "number"},
        "ci_low": {"type": ["number", "null"], "description": "95 % t interval of the mean."},
        "ci_high": {"type": ["number", "null"]},
        "unit": {"type": "string"},
    },
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": f"https://instbench.dev/schemas/{SCHEMA_FILE}",
    "title": "instbench storage benchmarks",
    "description": "fio with O_DIRECT per instance type: per target role and job, IOPS, "
    "MB/s, completion latency percentiles (µs), measured/advertised ratios.",
    "type": "object",
    "additionalProperties": False,
    "required": ["formatVersion", "lastUpdated", "instances"],
    "properties": {
        "formatVersion": {"const": FORMAT_VERSION},
        "lastUpdated": {"type": ["string", "null"]},
        "instances": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["instanceType", "targets"],
                "properties": {
                    "instanceType": {"type": "string"},
                    "targets": {
                        "type": "object",
                        "description": "Role (ebs, instance-store, file) -> job -> metric. "
                        "Jobs: the fio jobs, 'advertised', and for EBS 'burst' / 'sustained' "
                        "(throughput MB/s, limit_ratio; seconds_until_fall under 'burst').",
                        "additionalProperties": {
                            "type": "object",
                            "additionalProperties": {
                                "type": "object",
                                "additionalProperties": _STAT,
                            },
                        },
                    },
                },
            },
        },
    },
}


def storage_document(summaries: Iterable[Summary], last_updated: str | None) -> dict[str, Any]:
    """The storage file's content from the all-time summaries of benchmark 'storage'."""
    by_type: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for s in summaries:
        if s.benchmark != "storage" or "/" not in s.test:
            continue
        role, job = s.test.split("/", 1)
        by_type.setdefault(s.instance_type, {}).setdefault(role, {}).setdefault(job, {})[
            s.metric
        ] = {
            "n": s.n,
            "median": s.median,
            "mean": s.mean,
            "ci_low": s.ci_low,
            "ci_high": s.ci_high,
            "unit": s.unit,
        }
    return {
        "formatVersion": FORMAT_VERSION,
        "lastUpdated": last_updated,
        "instances": [{"instanceType": name, "targets": by_type[name]} for name in sorted(by_type)],
    }


def schema_bytes() -> bytes:
    """The JSON Schema, as published under latest/schemas/."""
    return (json.dumps(SCHEMA, indent=2, sort_keys=True) + "\n").encode()


def storage_files(summaries: list[Summary], last_updated: str | None) -> dict[str, bytes]:
    """latest/ files: the storage document and its schema, validated; {} without storage."""
    doc = storage_document(summaries, last_updated)
    if not doc["instances"]:
        return {}
    errors = sorted(e.message for e in Draft202012Validator(SCHEMA).iter_errors(doc))
    if errors:
        raise ValueError(f"{STORAGE_FILE} does not match its schema: {errors[0]}")
    return {STORAGE_FILE: dumps(doc), f"schemas/{SCHEMA_FILE}": schema_bytes()}


__all__ = ["SCHEMA", "SCHEMA_FILE", "STORAGE_FILE", "storage_document", "storage_files"]
