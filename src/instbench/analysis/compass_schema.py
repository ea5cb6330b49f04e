"""JSON Schemas of the three files the ComputeCompass app fetches, and their validation.

Why schemas for our own output: the app reads `cache.memory.latency`, `numa.*` and the
CPU figures without null checks, so a missing or mistyped field in a published file
breaks it for every user. `publish` builds the documents from a rule table
(`documents.compass.MEMORY_FIELDS`, `documents.compass.CPU_FIELDS`); the schemas state the contract
independently of that code, and every file is validated against its schema before
anything is written. A failure is a bug in publication, never a property of the data:
it raises `ContractViolation` and the previous publication stays in place.

The schemas (draft 2020-12) are committed under `instbench/schemas/` and published
beside the data in `latest/schemas/`, so the app's developers can validate what they
fetch against the same text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

from instbench.errors import InstbenchError

MEMORY_FILE = "memory-benchmarks.json"
CPU_FILE = "cpu-benchmarks.json"
PRICE_FILE = "price-performance.json"

SCHEMA_FILES: dict[str, str] = {
    MEMORY_FILE: "computecompass-memory-v1.schema.json",
    CPU_FILE: "computecompass-cpu-v1.schema.json",
    PRICE_FILE: "computecompass-price-v1.schema.json",
}
"""Published file -> its schema file under instbench/schemas/ (and latest/schemas/)."""

SCHEMA_VERSION = "1.1.0"
"""Version of the three contract schemas; the `-v1` in their names is its major part."""

MAX_REPORTED_ERRORS = 5


class ContractViolation(InstbenchError):
    """A document publish built does not match the ComputeCompass schema: a bug.

    Raised before anything is written, with every violation (up to a few) located by
    its JSON path, so the message alone says which rule of documents/compass.py produced what.
    """


def schema_bytes(file_name: str) -> bytes:
    """The schema text for published file `file_name` (e.g. 'memory-benchmarks.json')."""
    schema_name = SCHEMA_FILES[file_name]
    return resources.files("instbench").joinpath("schemas", schema_name).read_bytes()


@cache
def _validator(file_name: str) -> Draft202012Validator:
    """The schema's validator. The schema itself is not checked against the metaschema
    here (0.1 s for the three, a tenth of a publication with nothing new): it ships with
    the package, and test_compass_publication checks every one of them."""
    return Draft202012Validator(json.loads(schema_bytes(file_name)))


def schema(file_name: str) -> dict[str, Any]:
    """The parsed schema for `file_name` (a fresh copy; callers may modify it)."""
    parsed: dict[str, Any] = json.loads(schema_bytes(file_name))
    return parsed


def violations(file_name: str, document: Any) -> list[str]:
    """Every way `document` breaks the schema of `file_name`, as 'path: message' lines.

    Sorted by path so the message is the same on every run.
    """
    errors = _validator(file_name).iter_errors(document)
    found = sorted(
        [(("/".join(str(p) for p in e.absolute_path) or "(document)"), e.message) for e in errors]
        + [(path, f"{value!r} is not a finite number") for path, value in _non_finite(document)]
    )
    return [f"{path}: {message}" for path, message in found]


def _non_finite(node: Any, path: str = "") -> Iterator[tuple[str, float]]:
    """NaN and infinities anywhere in `node`, with their paths.

    JSON Schema cannot say "finite": NaN passes every bound (each comparison is false)
    and Python's json writes it as `NaN`, which the client's JSON.parse rejects, losing
    the whole file. So the contract check looks for them itself.
    """
    if isinstance(node, float) and not math.isfinite(node):
        yield (path or "(document)", node)
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _non_finite(value, f"{path}/{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _non_finite(value, f"{path}/{i}" if path else str(i))


def validate(file_name: str, document: Any) -> None:
    """Raise `ContractViolation` unless `document` matches the schema of `file_name`."""
    problems = violations(file_name, document)
    if not problems:
        return
    shown = problems[:MAX_REPORTED_ERRORS]
    more = len(problems) - len(shown)
    raise ContractViolation(
        f"{file_name} does not match {SCHEMA_FILES[file_name]} (a bug in documents/compass.py; "
        "nothing was written): " + "; ".join(shown) + (f"; and {more} more" if more else "")
    )
