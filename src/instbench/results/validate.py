"""Turn bytes that came back from a machine into a validated `ResultDocument`, or a reason.

Used by the fleet's collector (fleet/collect.py) before anything is stored and by ingest
before anything is aggregated: a document that fails here is quarantined with
`InvalidResult.reason`, never stored as data.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import ValidationError

from instbench.errors import InvalidResult
from instbench.results.schema import ResultDocument

MAX_RESULT_BYTES = 1024 * 1024
"""A result larger than this is refused unread: no honest STREAM result is near it."""

MAX_DEPTH = 64
"""Deepest nesting of arrays and objects a result may have (ours is below 10). A deeper
document is refused: it could only be an attack on the parsers and serialisers that walk
it recursively (json, pydantic, DuckDB's JSON), never data."""

QUARANTINE_PREFIX_BYTES = 64 * 1024
"""How much of an oversized file is kept in quarantine: enough to see what it was, never
a copy of an upload that may be as large as S3 allows."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} is not valid JSON data")


def load_json(raw: bytes) -> Any:
    """Strict JSON: size-limited, UTF-8, no NaN/Infinity."""
    if len(raw) > MAX_RESULT_BYTES:
        raise InvalidResult(f"result is {len(raw)} bytes, above the {MAX_RESULT_BYTES} limit")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise InvalidResult(f"result is not UTF-8: {exc.reason} at byte {exc.start}") from exc
    except ValueError as exc:
        raise InvalidResult(f"result is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise InvalidResult(f"result is nested too deeply (more than {MAX_DEPTH} levels)") from exc
    check_depth(data)
    return data


def check_depth(data: Any, limit: int = MAX_DEPTH) -> None:
    """`InvalidResult` when `data` nests arrays/objects deeper than `limit`.

    Iterative on purpose: a recursive walk is what a deep document attacks. Only
    containers are put on the stack (a result is mostly numbers in lists: pushing every
    scalar with its depth was 40 % of parsing a document)."""
    if not isinstance(data, (dict, list)):
        return
    stack: list[tuple[Any, int]] = [(data, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        value, depth = pop()
        if depth > limit:
            raise InvalidResult(f"result is nested too deeply (more than {limit} levels)")
        depth += 1
        for child in value.values() if isinstance(value, dict) else value:
            if isinstance(child, (dict, list)):
                push((child, depth))


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(document)"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"schema violation at {where}: {err['msg']}{more}"


def validate_document(data: Any) -> ResultDocument:
    """Validate an already-parsed JSON value against the v1 schema."""
    if not isinstance(data, dict):
        raise InvalidResult("result is not a JSON object")
    try:
        return ResultDocument.model_validate(data)
    except ValidationError as exc:
        raise InvalidResult(_first_error(exc)) from exc


def parse_result(raw: bytes) -> ResultDocument:
    """Bytes -> validated document; `InvalidResult` with a one-line reason otherwise."""
    return validate_document(load_json(raw))


def canonical_json(data: Any) -> bytes:
    """Canonical form (sorted keys, no whitespace, UTF-8) used for content hashes."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_sha256(data: Any) -> str:
    """sha256 of the canonical JSON: equal documents hash equal whatever their formatting."""
    return hashlib.sha256(canonical_json(data)).hexdigest()


def document_json(doc: ResultDocument) -> bytes:
    """The stored form of a document: pretty, sorted, stable."""
    return (
        json.dumps(doc.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    ).encode()
