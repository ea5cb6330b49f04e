"""The publication's JSON form: same data as json.loads reads it, one record per line."""

from __future__ import annotations

import json

from instbench.analysis.documents.jsonform import dumps

DOC = {
    "version": "2025.03.03",
    "empty": {},
    "none": [],
    "instances": {
        "m7i.large": {"stream": {"triad": {"bandwidth": 41.9, "unit": "GB/s"}}},
        "c7g.large": {"stream": {"triad": {"bandwidth": 52.25, "unit": "GB/s"}}},
    },
    "rankings": {
        "triad_bandwidth": [
            {"instanceType": "c7g.large", "bandwidth": 52.25, "architecture": "graviton"},
            {"instanceType": "m7i.large", "bandwidth": 41.9, "architecture": "intel"},
        ]
    },
    "numbers": [1, 2.5, None, True, "ünï"],
    "mixed": [{"a": 1}, {"b": [1, 2]}],
}


def test_dumps_reads_back_as_the_same_data() -> None:
    assert json.loads(dumps(DOC)) == DOC


def test_dumps_is_sorted_indented_and_one_record_per_line() -> None:
    text = dumps(DOC).decode()
    lines = text.splitlines()
    assert text.endswith("}\n") and lines[0] == "{"
    top_keys = [line.split('"')[1] for line in lines if line.startswith('  "')]
    assert top_keys == sorted(DOC)
    record = '      {"architecture": "graviton", "bandwidth": 52.25, "instanceType": "c7g.large"},'
    assert record in lines
    assert '    "ünï"' in lines  # UTF-8 kept, scalars of a list one per line
    assert '  "empty": {},' in lines and '  "none": [],' in lines
    # A list holding a nested value is not a table: its items are indented as usual.
    assert '      "b": [' in lines


def test_dumps_is_deterministic_whatever_the_key_order() -> None:
    shuffled = dict(reversed(list(DOC.items())))
    assert dumps(shuffled) == dumps(DOC)
