"""network-benchmarks.json: what a pair of instances of each type moved, beside what AWS
advertises for it, and its JSON Schema and datacard section.

Built from the publication's summaries of benchmark `network` (tidy rows: Gbps, µs,
advertised figures and measured/advertised ratios), like the ComputeCompass files and
beside them, but not part of the ComputeCompass contract: no client reads it without
null checks, so a figure that was not measured (a burst run, the advertised baseline) is
null rather than the type being held back. A type enters only with its four throughput
tests and its median round trip.

This is a "documents" stage module: summaries in, bytes out; it reads no database and
writes no file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from jsonschema import Draft202012Validator

from instbench.analysis.aggregate import Summary
from instbench.analysis.documents.jsonform import dumps, num
from instbench.errors import InstbenchError

NETWORK_FILE = "network-benchmarks.json"
SCHEMA_FILE = "network-benchmarks-v1.schema.json"
SCHEMA_VERSION = "1.0.0"

_THROUGHPUT = (
    ("singleFlow", "tcp-1flow"),
    ("singleFlowReverse", "tcp-1flow-reverse"),
    ("nFlows", "tcp-nflows"),
    ("nFlowsReverse", "tcp-nflows-reverse"),
)

_FIGURE = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "required": ["value", "stats"],
    "properties": {
        "value": {"type": "number", "description": "Mean over instances (samples)."},
        "stats": {
            "type": "object",
            "additionalProperties": False,
            "required": ["n", "median", "ciLow", "ciHigh", "cv"],
            "properties": {
                "n": {"type": "integer", "minimum": 1},
                "median": {"type": "number"},
                "ciLow": {"type": ["number", "null"]},
                "ciHigh": {"type": ["number", "null"]},
                "cv": {"type": ["number", "null"]},
            },
        },
    },
}


def _object(properties: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": sorted(properties),
        "description": description,
        "properties": properties,
    }


SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": f"https://instbench.dev/schemas/{SCHEMA_FILE}",
    "title": "instbench network benchmarks",
    "version": SCHEMA_VERSION,
    **_object(
        {
            "version": {"type": ["string", "null"]},
            "lastUpdated": {"type": ["string", "null"]},
            "units": _object(
                {"throughput": {"const": "Gbps"}, "latency": {"const": "µs"}},
                "Units of every figure.",
            ),
            "instances": {
                "type": "array",
                "items": _object(
                    {
                        "instanceType": {"type": "string"},
                        "architecture": {"type": ["string", "null"]},
                        "throughput": _object(
                            {
                                **{name: _FIGURE for name, _ in _THROUGHPUT},
                                "burst": _FIGURE,
                                "sustained": _FIGURE,
                                "secondsUntilFall": _FIGURE,
                            },
                            "iperf3 TCP, the receiver's rate, Gbps; burst/sustained from a "
                            "long sampled run (null when none ran).",
                        ),
                        "latency": _object(
                            {"median": _FIGURE, "p99": _FIGURE, "p999": _FIGURE},
                            "1-byte TCP round trips, µs.",
                        ),
                        "advertised": _object(
                            {
                                "baselineGbps": {"type": ["number", "null"]},
                                "peakGbps": {"type": ["number", "null"]},
                                "ratioNFlowsToPeak": _FIGURE,
                                "ratioSustainedToBaseline": _FIGURE,
                            },
                            "DescribeInstanceTypes' figures of the default network card and "
                            "measured/advertised.",
                        ),
                    },
                    "One instance type.",
                ),
            },
        },
        "What a pair of instances of each type moved, beside what AWS advertises.",
    ),
}

DATACARD_LINES: tuple[str, ...] = (
    "## network-benchmarks.json",
    "",
    "Per instance type, what a pair of instances of that type moved (iperf3 TCP, the",
    "receiver's rate in Gbps: one flow and N flows, N the vCPU count, each direction) and",
    "the round trip of 1-byte TCP messages on one connection (instbench's C kernel netlat:",
    "median, p99, p99.9 in µs), beside what DescribeInstanceTypes advertises for the",
    "type's default network card (baseline and peak Gbps) and measured/advertised. For",
    "'Up to' types a long sampled run gives the burst rate, the sustained rate after it",
    "and the seconds until it fell (null when none ran or it did not fall). A type",
    "appears only with its four throughput tests and its median round trip. Schema:",
    f"schemas/{SCHEMA_FILE}.",
    "",
)


class NetworkDocumentInvalid(InstbenchError):
    """The document publish built does not match its own schema: a bug in this module."""


def _figure(s: Summary | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "value": num(s.mean),
        "stats": {
            "n": s.n,
            "median": num(s.median),
            "ciLow": num(s.ci_low),
            "ciHigh": num(s.ci_high),
            "cv": num(s.cv),
        },
    }


def network_document(summaries: Iterable[Summary], header: dict[str, Any]) -> dict[str, Any]:
    """The document, from the all-time summaries (only benchmark `network` is read)."""
    by_type: dict[str, dict[tuple[str, str], Summary]] = {}
    for s in summaries:
        if s.benchmark == "network":
            by_type.setdefault(s.instance_type, {})[(s.test, s.metric)] = s
    instances = []
    for name in sorted(by_type):
        figs = by_type[name]
        if any((test, "throughput") not in figs for _, test in _THROUGHPUT):
            continue
        if ("rtt-median", "round_trip") not in figs:
            continue
        nflows = figs[("tcp-nflows", "throughput")]
        baseline = figs.get(("baseline", "advertised"))
        peak = figs.get(("peak", "advertised"))
        instances.append(
            {
                "instanceType": name,
                "architecture": nflows.architecture,
                "throughput": {
                    **{key: _figure(figs[(test, "throughput")]) for key, test in _THROUGHPUT},
                    "burst": _figure(figs.get(("burst", "throughput"))),
                    "sustained": _figure(figs.get(("sustained", "throughput"))),
                    "secondsUntilFall": _figure(figs.get(("burst", "seconds_until_fall"))),
                },
                "latency": {
                    "median": _figure(figs[("rtt-median", "round_trip")]),
                    "p99": _figure(figs.get(("rtt-p99", "round_trip"))),
                    "p999": _figure(figs.get(("rtt-p999", "round_trip"))),
                },
                "advertised": {
                    "baselineGbps": num(baseline.mean) if baseline else None,
                    "peakGbps": num(peak.mean) if peak else None,
                    "ratioNFlowsToPeak": _figure(figs.get(("nflows-to-peak", "advertised_ratio"))),
                    "ratioSustainedToBaseline": _figure(
                        figs.get(("sustained-to-baseline", "advertised_ratio"))
                    ),
                },
            }
        )
    return {
        "version": header["version"],
        "lastUpdated": header["lastUpdated"],
        "units": {"throughput": "Gbps", "latency": "µs"},
        "instances": instances,
    }


def network_files(summaries: Iterable[Summary], header: dict[str, Any]) -> dict[str, bytes]:
    """latest/ files of the network dataset: the document (validated) and its schema."""
    document = network_document(summaries, header)
    errors = sorted(Draft202012Validator(SCHEMA).iter_errors(document), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "(root)"
        raise NetworkDocumentInvalid(f"{NETWORK_FILE} at {where}: {first.message}")
    return {
        NETWORK_FILE: dumps(document),
        f"schemas/{SCHEMA_FILE}": (json.dumps(SCHEMA, indent=2, sort_keys=True) + "\n").encode(),
    }


__all__ = [
    "DATACARD_LINES",
    "NETWORK_FILE",
    "SCHEMA",
    "SCHEMA_FILE",
    "network_document",
    "network_files",
]
