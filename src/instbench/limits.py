"""Upper bounds on every number and file a user hands instbench, checked before any work.

Why: a count is also an allocation. `--samples 100000000000000000000 --dry-run` expanded
into a task list until the machine ran out of memory, `--array-size` of 10^29 elements
passed planning and failed on every instance after the run had created its security
group, `--timeout` of 5,000 digits and `cleanup --older-than 99999999999d` ended in
tracebacks, and `--suite /dev/zero` was read until the process was killed. Each bound
here is far above any real run and far below what would hurt; a value outside it is a
`UserError` (one line, exit 2) raised before the sandbox starts or AWS is called.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from instbench.errors import UserError

MAX_SAMPLES = 100
"""Instances per type and benchmark: a hundred independent samples is already a census."""
MAX_TASKS = 2_000
"""Tasks in one run (types x benchmarks x samples): the 300-type census has 300."""
MAX_CONCURRENCY = 1_000
"""Instances at once."""
MAX_VCPU_BUDGET = 1_000_000
MAX_THREADS = 4_096
"""Threads of the all-CPU run; the largest EC2 types have 896 vCPUs."""
MAX_NTIMES = 1_000
"""STREAM trials per kernel (the reference uses 10, we default to 20)."""
STREAM_BYTES_PER_ELEMENT = 3 * 8
"""STREAM's three arrays of doubles: the memory one array element costs."""
MAX_ARRAY_SIZE = 2**40
"""Elements per STREAM array: three arrays of them fill 24 TiB, as much as the largest
EC2 type has (the plan also checks each type's own memory)."""
MAX_TIMEOUT_DIGITS = 6
"""--timeout digits; anything longer is over the 24 h limit anyway (and would not even
convert: Python refuses int() of more than 4,300 digits)."""
MAX_AGE_DAYS = 3_650
"""cleanup --older-than: ten years, the oldest anything instbench tags can be."""
MAX_SUITE_FILE_BYTES = 256 * 1024
MAX_PRICE_FILE_BYTES = 64 * 1024 * 1024


def check_range(value: int | None, flag: str, low: int, high: int) -> None:
    """`value` within [low, high], or a one-line error naming the flag and the range."""
    if value is None:
        return
    if isinstance(value, bool) or not low <= value <= high:
        shown = str(value) if len(str(value)) <= 24 else f"{str(value)[:20]}..."
        raise UserError(f"{flag} {shown} is out of range: use {low} to {high}")


@dataclass(frozen=True)
class AgentNumbers:
    """The numbers a run passes to the agent (`--array-size`, `--ntimes`, `--threads`)."""

    array_size: int | None = None
    ntimes: int | None = None
    threads: int | None = None

    def check(self) -> None:
        check_range(self.array_size, "--array-size", 1, MAX_ARRAY_SIZE)
        check_range(self.ntimes, "--ntimes", 2, MAX_NTIMES)
        check_range(self.threads, "--threads", 1, MAX_THREADS)


def agent_numbers(args: Sequence[str]) -> AgentNumbers:
    """The numbers among the agent arguments a run carries (flag, value pairs as the CLI
    builds them), checked; other arguments are the user-data renderer's to validate."""
    values: dict[str, int] = {}
    flags = {"--array-size": "array_size", "--ntimes": "ntimes", "--threads": "threads"}
    pairs = list(args)
    for flag, value in zip(pairs[::2], pairs[1::2], strict=False):
        if flag not in flags:
            continue
        if not re.fullmatch(r"\d{1,30}", value):
            raise UserError(f"{flag} {value[:24]!r} is not a whole number")
        values[flags[flag]] = int(value)
    numbers = AgentNumbers(**values)
    numbers.check()
    return numbers


def check_fleet_numbers(
    *,
    types: int,
    benchmarks: int,
    samples: int,
    max_concurrency: int,
    vcpu_budget: int | None,
    agent_args: Sequence[str],
) -> None:
    """Every count of a fleet run in range, before anything is expanded or created."""
    check_range(samples, "--samples", 1, MAX_SAMPLES)
    check_range(max_concurrency, "--max-concurrency", 1, MAX_CONCURRENCY)
    check_range(vcpu_budget, "--vcpu-budget", 1, MAX_VCPU_BUDGET)
    tasks = types * max(benchmarks, 1) * samples
    if tasks > MAX_TASKS:
        raise UserError(
            f"{types} types x {benchmarks} benchmarks x {samples} samples is {tasks} tasks; "
            f"one run takes at most {MAX_TASKS}: split it into several runs"
        )
    agent_numbers(agent_args)


def check_array_fits(array_size: int | None, instance_type: str, memory_mib: int) -> None:
    """STREAM's three arrays must fit in the instance's memory, or every task would fail."""
    if array_size is None:
        return
    need = array_size * STREAM_BYTES_PER_ELEMENT
    have = memory_mib * 1024 * 1024
    if need > have:
        raise UserError(
            f"--array-size {array_size} needs {need / 2**30:.1f} GiB for STREAM's three "
            f"arrays, but {instance_type} has {have / 2**30:.1f} GiB: choose a smaller size"
        )


_DURATION = re.compile(rf"(\d{{1,{MAX_TIMEOUT_DIGITS}}})([smh]?)")
MAX_TIMEOUT_S = 24 * 3600


def parse_duration(text: str) -> int:
    """'20m' / '90s' / '1h' / '600' -> seconds, at most 24 h; one-line error otherwise."""
    stripped = text.strip()
    match = _DURATION.fullmatch(stripped)
    if not match:
        if re.fullmatch(r"\d+[smh]?", stripped):
            raise UserError(f"timeout {stripped[:24]}... is over 24h: use e.g. 20m or 2h")
        raise UserError(f"invalid duration {text[:40]!r}: use e.g. 90s, 20m or 1h")
    value, unit = int(match.group(1)), match.group(2) or "s"
    if value == 0:
        raise UserError(f"invalid duration {text!r}: use e.g. 90s, 20m or 1h")
    seconds = value * {"s": 1, "m": 60, "h": 3600}[unit]
    if seconds > MAX_TIMEOUT_S:
        raise UserError(f"timeout {text} is over 24h: instances would run unwatched too long")
    return seconds


_AGE = re.compile(r"(\d{1,12})([mhd])")


def parse_age(text: str) -> timedelta:
    """'90m' / '2h' / '3d' -> timedelta, at most ten years; one-line error otherwise."""
    match = _AGE.fullmatch(text.strip())
    if not match:
        raise UserError(f"invalid age {text[:40]!r}: use e.g. 90m, 2h or 3d")
    value, unit = int(match.group(1)), match.group(2)
    minutes = value * {"m": 1, "h": 60, "d": 24 * 60}[unit]
    if minutes > MAX_AGE_DAYS * 24 * 60:
        raise UserError(f"age {text.strip()} is over {MAX_AGE_DAYS} days: use e.g. 2h or 30d")
    return timedelta(minutes=minutes)


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """The bytes of `path`, refusing (one line) a file larger than `limit`.

    Reads at most limit + 1 bytes whatever the file is, so a device (`/dev/zero`), a pipe
    or a file that grows while it is read cannot make this read without end; `stat` is not
    trusted (a device reports size 0).
    """
    try:
        if path.is_dir():
            raise UserError(f"{what} {path} is a directory, not a file")
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise UserError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise UserError(f"{what} {path} is larger than {limit} bytes: is it the right file?")
    return data
