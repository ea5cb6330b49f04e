"""The one form of every published file: JSON and CSV bytes that depend on the data alone.

Why one module: every document of a publication (the ComputeCompass files, index.json,
the window summaries, aggregates.csv) must give identical bytes for identical inputs, so
that publishing twice changes nothing and a git diff of two publications shows only what
changed. Floats are rounded here (`num`), JSON is written here (`dumps`), CSV here
(`csv_bytes`), and nowhere else.
"""

from __future__ import annotations

import csv
import io
import json
import typing
from collections.abc import Iterable
from typing import Any

from instbench.analysis.aggregate import SUMMARY_FIELDS, Summary

SIGNIFICANT_DIGITS = 6


def num(value: float | None) -> float | None:
    """Stable float formatting: 6 significant digits, -0.0 folded to 0.0."""
    if value is None:
        return None
    return float(format(value, _NUM_FORMAT)) or 0.0  # `or`: -0.0 is falsy too


_NUM_FORMAT = f".{SIGNIFICANT_DIGITS}g"


def dumps(data: Any) -> bytes:
    """The one JSON form of every published file: sorted keys, 2-space indent, newline;
    a list of flat records (tables: groups, rankings, regressions) has one record per line.

    One record per line keeps a git diff of two publications to the lines that changed,
    and lets the C encoder write each record: the stdlib's indenting encoder is pure
    Python, and was a fifth of publication time at 100,000 results.
    """
    return (_pretty(data, "") + "\n").encode()


_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


def _compact(value: Any) -> str:
    return _ENCODER.encode(value)


_CONTAINERS = frozenset({dict, list})


def _is_record(value: Any) -> bool:
    # Exact types (what json.loads and our builders make): 3x faster than isinstance per
    # value, and this runs over every value of every table of a publication.
    return type(value) is dict and _CONTAINERS.isdisjoint(map(type, value.values()))


def _pretty(value: Any, indent: str) -> str:
    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = sorted(value.items())
        body = ",\n".join(f"{inner}{_compact(str(k))}: {_pretty(v, inner)}" for k, v in items)
        return "{\n" + body + "\n" + indent + "}"
    if isinstance(value, list) and value:
        if all(_is_record(v) for v in value):
            body = ",\n".join(inner + _compact(v) for v in value)
        else:
            body = ",\n".join(inner + _pretty(v, inner) for v in value)
        return "[\n" + body + "\n" + indent + "]"
    return _compact(value)


def summary_rows(summaries: Iterable[Summary]) -> list[dict[str, Any]]:
    """Each summary as a flat record in SUMMARY_FIELDS order, floats through `num`."""
    rows = []
    for s in summaries:
        row = s.as_dict()
        for k in _FLOAT_FIELDS:
            row[k] = num(row[k])
        rows.append(row)
    return rows


_FLOAT_FIELDS = tuple(
    name
    for name, hint in typing.get_type_hints(Summary).items()
    if hint is float or float in typing.get_args(hint)
)


def csv_bytes(rows: list[dict[str, Any]], columns: list[str]) -> bytes:
    """CSV with a header; None is written as an empty field (the csv module's own rule)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([row.get(c) for c in columns] for row in rows)
    return buf.getvalue().encode()


SUMMARY_COLUMNS = list(SUMMARY_FIELDS)
"""The columns of aggregates.csv and of every window's summary.csv."""
