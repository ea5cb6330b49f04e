"""Benchmark parameters of `instbench run`: `--param BENCH.NAME=VALUE` and STREAM's aliases.

Checked here, on the controller, against the registry's declared kinds and ranges before
the sandbox starts or anything is planned, so a typo is one line and exit 2 and nothing
is created. The same values reach the agent as `--param` options (one task's benchmark's
only), which checks them again; no value ever reaches a shell unquoted (the user data
quotes every word and accepts only plain characters in a parameter).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from instbench.benchmarks import registry
from instbench.benchmarks.errors import BenchmarkInputError
from instbench.errors import UserError

STREAM_ALIASES = {"--array-size": "array_elements", "--ntimes": "ntimes", "--threads": "threads"}
"""`run` options that predate --param: each sets one of STREAM's parameters."""


def parse_run_params(
    items: Sequence[str],
    benchmarks: Sequence[str],
    aliases: Mapping[str, int | None] | None = None,
) -> dict[str, dict[str, Any]]:
    """{bench: {name: value}} from --param texts and the alias options given (not None).

    UserError (one line, exit 2) for a malformed --param, an unknown benchmark or
    parameter, a wrong type, a value out of range (the message gives the range), a
    benchmark that is not run, and an alias that sets what a --param sets too.
    """
    try:
        params = registry.parse_assignments(items, benchmarks)
    except BenchmarkInputError as exc:
        raise UserError(str(exc)) from exc
    stream = registry.info("stream")
    for flag, value in (aliases or {}).items():
        if value is None:
            continue
        name = STREAM_ALIASES[flag]
        if "stream" not in benchmarks:
            raise UserError(
                f"{flag} sets stream.{name}, but stream is not run: add it to --benchmarks, "
                f"or use --param BENCH.{name}=... for another benchmark"
            )
        if name in params.get("stream", {}):
            raise UserError(f"{flag} and --param stream.{name} both set stream.{name}: give one")
        param = stream.parameter(name)
        try:
            checked = param.check(value, "stream")
        except BenchmarkInputError:
            raise UserError(f"{flag} {value}: stream.{name} must be {param.allowed()}") from None
        params.setdefault("stream", {})[name] = checked
    return params


def describe(params: Mapping[str, Mapping[str, Any]]) -> str:
    """'linpack.n=3000, stream.ntimes=5' (the plan's and the summary's line)."""
    args = registry.assignment_args(params)
    return ", ".join(args[1::2])
