"""DuckDB's memory bound for ingest and publication (`--memory-limit`).

Why a bound: DuckDB's default is 80 % of the machine's memory, and it keeps what it may
in its buffer pool, so a publication's peak grew with the dataset (1.1 GiB at 100,000
results). With a limit, DuckDB spills what does not fit (sorts, temporary tables) to
its temporary directory beside the ingest cache, and the peak stays flat.
"""

from __future__ import annotations

import re

import duckdb

from instbench.errors import UserError

_LIMIT = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)


def check_memory_limit(value: str | None) -> str | None:
    """`value` as DuckDB's memory_limit takes it ("1GB", "512MiB"), or a UserError that
    says what is accepted."""
    if value is None:
        return None
    if not _LIMIT.match(value):
        raise UserError(
            f"--memory-limit {value!r} is not a size: pass a number and a unit, e.g. 1GB or "
            "512MiB (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"
        )
    return value.strip()


def apply_memory_limit(con: duckdb.DuckDBPyConnection, limit: str | None) -> None:
    """Bound DuckDB's memory on `con` (None: DuckDB's default, 80 % of the machine)."""
    if limit is not None:
        con.execute(f"SET memory_limit = '{check_memory_limit(limit)}'")
