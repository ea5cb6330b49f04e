"""Issue 21 cases 7 and 8: every number range-checked, every input read with a bound.

Each bad value must be refused with a one-line `UserError` before anything is expanded,
allocated or read in full: these tests would hang or exhaust memory if a check were
missing, so they also bound themselves (nothing here allocates more than a few KiB).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from instbench.errors import UserError
from instbench.fleet.plan import FleetOptions
from instbench.limits import (
    MAX_SAMPLES,
    AgentNumbers,
    agent_numbers,
    check_array_fits,
    parse_age,
    parse_duration,
    read_bounded,
)
from instbench.suites import load_suite


def _opts(**kw: object) -> FleetOptions:
    args: dict[str, object] = {
        "instance_types": ["m7i.large"],
        "benchmarks": ("stream",),
        "bucket": "b",
    }
    args.update(kw)
    return FleetOptions(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize("samples", [10**20, 100_000, MAX_SAMPLES + 1, 0])
def test_samples_out_of_range_refused_before_expansion(samples: int) -> None:
    with pytest.raises(UserError, match=r"--samples .* out of range"):
        _opts(samples=samples)


def test_tasks_in_all_are_bounded() -> None:
    with pytest.raises(UserError, match="tasks; one run takes at most"):
        _opts(instance_types=[f"m7i.{i}xlarge" for i in range(1, 60)], samples=MAX_SAMPLES)


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--array-size", "1" + "0" * 29], "--array-size"),
        (["--ntimes", "1000000"], "--ntimes"),
        (["--threads", "0"], "--threads"),
    ],
)
def test_agent_numbers_are_range_checked(args: list[str], flag: str) -> None:
    with pytest.raises(UserError, match=f"{flag} .*out of range"):
        _opts(agent_args=args)


def test_agent_numbers_parse_and_pass() -> None:
    numbers = agent_numbers(["--array-size", "1000000", "--ntimes", "10"])
    assert numbers == AgentNumbers(array_size=1_000_000, ntimes=10)
    with pytest.raises(UserError):
        agent_numbers(["--array-size", "9" * 5000])
    assert agent_numbers(["--duration-s", "5", "--threads", "2"]).threads == 2


def test_array_must_fit_the_type() -> None:
    check_array_fits(10**8, "m7i.large", 8192)  # 2.2 GiB of 8
    with pytest.raises(UserError, match=r"m7i\.large has 8\.0 GiB"):
        check_array_fits(10**9, "m7i.large", 8192)


def test_timeout_with_5000_digits_is_one_line() -> None:
    with pytest.raises(UserError, match="over 24h") as err:
        parse_duration("9" * 5000)
    assert "\n" not in str(err.value) and len(str(err.value)) < 200
    assert parse_duration("20m") == 1200
    with pytest.raises(UserError):
        parse_duration("25h")


def test_older_than_is_bounded() -> None:
    with pytest.raises(UserError, match="over 3650 days"):
        parse_age("99999999999d")
    with pytest.raises(UserError, match="invalid age"):
        parse_age("9" * 5000 + "d")
    assert parse_age("2h") == timedelta(hours=2)


def test_suite_from_dev_zero_is_refused_after_a_bounded_read() -> None:
    with pytest.raises(UserError, match="larger than"):
        load_suite(Path("/dev/zero"))


def test_read_bounded(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.write_bytes(b"x" * 10)
    assert read_bounded(small, 10, "file") == b"x" * 10
    with pytest.raises(UserError, match="larger than 9 bytes"):
        read_bounded(small, 9, "file")
    with pytest.raises(UserError, match="is a directory"):
        read_bounded(tmp_path, 9, "file")
    with pytest.raises(UserError, match="cannot read"):
        read_bounded(tmp_path / "missing", 9, "file")
