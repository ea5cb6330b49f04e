"""The benchmarks the agent can run, by name.

Stdlib-only (it is part of agent.pyz). Each entry says what the benchmark needs on the
machine and how to run it; the agent validates names against this table before it
detects or compiles anything, so a typo fails in a second with exit 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Tuple


@dataclass(frozen=True)
class BenchmarkInfo:
    """What the controller and the agent know about a benchmark before running it."""

    name: str
    version: str
    description: str
    needs: Tuple[str, ...] = field(default_factory=tuple)
    """Requirements on the instance, e.g. ('c-compiler', 'openmp')."""


def _stream_info() -> BenchmarkInfo:
    from instbench.benchmarks import stream

    return BenchmarkInfo(
        name="stream",
        version=stream.KERNEL_VERSION,
        description="STREAM memory bandwidth (Copy, Scale, Add, Triad), all threads and one.",
        needs=("c-compiler", "openmp"),
    )


_REGISTRY = {"stream": _stream_info}


def names() -> Tuple[str, ...]:
    """Registered benchmark names, sorted."""
    return tuple(sorted(_REGISTRY))


def info(name: str) -> BenchmarkInfo:
    """Describe `name`; KeyError if unknown (callers turn it into a one-line error)."""
    return _REGISTRY[name]()


def parse_list(text: str) -> Tuple[str, ...]:
    """'stream, latency' -> ('stream', 'latency'); ValueError with a one-line reason."""
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise ValueError(f"empty benchmark name in {text!r}; known: {', '.join(names())}")
    unknown = [item for item in items if item not in _REGISTRY]
    if unknown:
        raise ValueError(
            f"unknown benchmark {unknown[0]!r}; known benchmarks: {', '.join(names())}"
        )
    if len(set(items)) != len(items):
        raise ValueError(f"benchmark listed twice in {text!r}")
    return tuple(items)
