"""The v1 schema: the committed JSON Schema matches the models; real and broken documents."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest

from instbench.agent.runner import DATA_VERSION as AGENT_DATA_VERSION
from instbench.errors import InvalidResult
from instbench.results.jsonschema import SCHEMA_PATH, schema_text
from instbench.results.schema import DATA_VERSION, ResultDocument
from instbench.results.validate import (
    MAX_RESULT_BYTES,
    canonical_json,
    content_sha256,
    parse_result,
)


def test_committed_schema_matches_models() -> None:
    assert SCHEMA_PATH.read_text() == schema_text(), (
        "schema file is stale: run python -m instbench.results.jsonschema --write"
    )


def test_agent_writes_the_schema_data_version() -> None:
    assert AGENT_DATA_VERSION == DATA_VERSION


def _undocumented(schema: dict[str, Any], path: str = "") -> list[str]:
    missing = []
    for name, prop in schema.get("properties", {}).items():
        if "description" not in prop and "$ref" not in prop and "allOf" not in prop:
            missing.append(f"{path}.{name}")
    for def_name, sub in schema.get("$defs", {}).items():
        missing += _undocumented(sub, def_name)
    return missing


def test_every_field_is_documented() -> None:
    schema = json.loads(schema_text())
    assert _undocumented(schema) == []
    for def_name, sub in schema["$defs"].items():
        assert sub.get("description"), f"model {def_name} has no docstring"


def test_real_agent_document_validates_both_ways(quick_result: bytes) -> None:
    doc = parse_result(quick_result)
    data = json.loads(quick_result)
    jsonschema.validate(data, json.loads(SCHEMA_PATH.read_text()))
    assert doc.metadata.quick is True
    assert doc.metadata.collection_method == "local"
    assert doc.performance_data.stream is not None
    modes = {run.thread_mode for run in doc.performance_data.stream.runs}
    assert modes == {"all", "single"}


def _mutated(raw: bytes, path: list[str | int], value: Any) -> bytes:
    data = copy.deepcopy(json.loads(raw))
    target = data
    for part in path[:-1]:
        target = target[part]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(data).encode()


_DELETE = object()
_TRIAD = ["performance_data", "stream", "runs", 0, "kernels", "triad"]


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        (["metadata", "collection_method"], "cloud", "collection_method"),
        (["metadata", "run_id"], "a b;c", "run_id"),
        (["metadata", "extra"], 1, "metadata.extra"),
        (["metadata", "data_version"], "2.0.0", "data_version"),
        ([*_TRIAD, "best_gbps"], -1.0, "best_gbps"),
        ([*_TRIAD, "best_gbps"], 0, "best_gbps"),
        ([*_TRIAD, "min_gbps"], 1e9, "min <= avg"),
        (["performance_data", "stream", "runs", 0, "kernels", "copy"], _DELETE, "copy"),
        (["performance_data", "stream"], None, "no benchmark"),
        (["system_info", "architecture"], "sparc", "architecture"),
    ],
)
def test_broken_documents_are_rejected_with_a_reason(
    quick_result: bytes, path: list[str | int], value: Any, reason: str
) -> None:
    with pytest.raises(InvalidResult) as info:
        parse_result(_mutated(quick_result, path, value))
    assert reason in info.value.reason
    assert "\n" not in info.value.reason


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"x": NaN}', "non-finite"),
        (b"\xff\xfe", "not UTF-8"),
        (b" " * (MAX_RESULT_BYTES + 1), "limit"),
    ],
)
def test_malformed_bytes(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidResult, match=reason):
        parse_result(raw)


def test_content_hash_ignores_formatting() -> None:
    a = {"b": 1, "a": [1, 2]}
    assert content_sha256(a) == content_sha256(json.loads(json.dumps(a, indent=4)))
    assert canonical_json(a) == b'{"a":[1,2],"b":1}'
    assert content_sha256(a) != content_sha256({"b": 2, "a": [1, 2]})


def test_document_round_trip_is_lossless(quick_result: bytes) -> None:
    doc = parse_result(quick_result)
    again = ResultDocument.model_validate(doc.model_dump(mode="json"))
    assert again == doc


@pytest.mark.parametrize(
    ("build", "depth"),
    [
        (lambda d: [d], 1),
        (lambda d: {"k": d}, 1),
        (lambda d: [1.0, {"a": [2, d], "b": "s"}], 3),
    ],
)
def test_check_depth_refuses_one_level_past_the_limit(build: Any, depth: int) -> None:
    """Nesting exactly MAX_DEPTH deep passes, one container more is refused, whatever
    mix of arrays, objects and scalars leads there; scalars never count as a level."""
    from instbench.results.validate import MAX_DEPTH, check_depth, load_json

    def nest(levels: int) -> Any:
        value: Any = [0.5, "x", None]  # one level
        while levels > 1:
            value = build(value)
            levels -= depth
        return value

    seen = set()
    for levels in range(MAX_DEPTH - 4, MAX_DEPTH + 5):
        doc = nest(levels)
        actual = _nesting(doc)
        seen.add(actual)
        if actual <= MAX_DEPTH:
            check_depth(doc)
            assert load_json(json.dumps(doc).encode()) == doc
        else:
            with pytest.raises(InvalidResult, match="nested too deeply"):
                check_depth(doc)
    assert min(seen) <= MAX_DEPTH < max(seen)
    if depth == 1:
        assert {MAX_DEPTH, MAX_DEPTH + 1} <= seen
    check_depth(3.5)
    check_depth("text")


def _nesting(value: Any) -> int:
    """Levels of arrays/objects, counted recursively (the test's own reference)."""
    if isinstance(value, dict):
        return 1 + max((_nesting(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_nesting(v) for v in value), default=0)
    return 0
