"""`instbench types parse`, through the installed console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

INSTBENCH = str(Path(sys.executable).parent / "instbench")
JSON_KEYS = [
    "instance_type",
    "family",
    "generation",
    "vendor",
    "architecture",
    "attributes",
    "size",
]


def _cli(*args: str, columns: int = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1"}
    return subprocess.run([INSTBENCH, *args], capture_output=True, text=True, timeout=60, env=env)


def test_json_output_is_a_list_with_the_contract_keys() -> None:
    proc = _cli("types", "parse", "m7i.large", "c7gn.metal", "u-6tb1.metal", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [d["instance_type"] for d in data] == ["m7i.large", "c7gn.metal", "u-6tb1.metal"]
    for item in data:
        assert list(item)[: len(JSON_KEYS)] == JSON_KEYS
    m7i, c7gn, u6 = data
    assert (m7i["family"], m7i["generation"], m7i["vendor"], m7i["architecture"]) == (
        "m7i",
        7,
        "Intel",
        "x86_64",
    )
    assert (c7gn["vendor"], c7gn["architecture"], c7gn["attributes"], c7gn["size"]) == (
        "AWS",
        "arm64",
        ["network-optimised"],
        "metal",
    )
    assert (u6["family"], u6["generation"], u6["vendor"]) == ("u-6tb1", 1, "Intel")


def test_table_shows_every_column_and_name() -> None:
    proc = _cli("types", "parse", "m6gd.xlarge", "g4ad.xlarge", "mac2.metal", "m7i-flex.large")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for word in ("instance type", "family", "generation", "vendor", "architecture", "size"):
        assert word in out
    for word in ("m6gd.xlarge", "g4ad.xlarge", "mac2.metal", "m7i-flex.large", "Apple", "AMD"):
        assert word in out
    assert "local-nvme" in out and "flex" in out


def test_table_keeps_names_whole_on_a_narrow_terminal() -> None:
    proc = _cli("types", "parse", "u7inh-32tb.480xlarge", "x2iezn.metal", columns=80)
    assert proc.returncode == 0, proc.stderr
    assert "u7inh-32tb.480xlarge" in proc.stdout and "480xlarge" in proc.stdout
    assert "…" not in proc.stdout


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["m7i"], "expected FAMILY.SIZE such as m7i.large"),
        (["m7i.huge"], "unknown size 'huge'"),
        (["m7i.large;rm -rf /"], "shell metacharacters"),
        ([""], "the name is empty"),
        (["c7g.large", "M7I.LARGE", "--json"], "lower case"),
        (["m7i.large", "zz9.large"], "unknown family series 'zz'"),
    ],
)
def test_invalid_name_exits_2_with_one_line_and_no_output(args: list[str], reason: str) -> None:
    proc = _cli("types", "parse", *args)
    assert proc.returncode == 2
    assert proc.stdout == ""  # nothing printed for the valid names before the bad one
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: invalid instance type ")
    assert reason in lines[0]


def test_types_group_lists_parse() -> None:
    proc = _cli("types", "--help")
    assert proc.returncode == 0
    assert "parse" in proc.stdout
