"""Typed errors of the benchmarks, so the agent can tell bad input from a broken run.

The agent maps `BenchmarkInputError` (and its subclass `ToolchainMissing`) to one line on
stderr and exit status 2 before anything is written: the user or the image must change
something. Any other `BenchmarkError` means the benchmark itself failed (exit 1).
Stdlib-only: shipped inside agent.pyz.
"""

from __future__ import annotations


class BenchmarkError(Exception):
    """A benchmark could not produce a trustworthy result (crash, unparseable output)."""


class BenchmarkInputError(BenchmarkError):
    """Bad input: an array size that does not fit in memory, a bad ntimes or thread count."""


class ToolchainMissing(BenchmarkInputError):
    """No usable C compiler (or no OpenMP runtime for it); the message names the package."""


__all__ = ["BenchmarkError", "BenchmarkInputError", "ToolchainMissing"]
