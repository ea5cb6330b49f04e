"""Aggregation with DuckDB: per instance type x benchmark x test x thread mode x metric.

The unit of replication is the *sample* (one instance, one result document): `n` counts
samples, and mean, median, standard deviation, CV and the 95 % interval describe the
spread *between instances* of the type. The spread *within* an instance (its trials) is
reported beside it, pooled over samples as the root mean square of the per-sample trial
standard deviations. Keeping the two apart answers two different questions: "how much
does a new instance of this type vary?" (between) and "how repeatable is one run?"
(within). Methods and why: docs/statistics.md.

DuckDB does the heavy part (grouping millions of rows); stats.py finishes each group
(t quantile, order-statistic ranks) in Python; change detection over the windows is
changes.py.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from datetime import date, datetime, time
from typing import Any, Literal

import duckdb

from instbench.analysis import stats

Window = Literal["all", "week", "month"]

_NAME_OF = {"week": "strftime({}, '%G-W%V')", "month": "strftime({}, '%Y-%m')"}
"""SQL naming the week or month window of the timestamp column in braces."""

WINDOW_SQL = {"all": "'all'", **{w: name.format("timestamp") for w, name in _NAME_OF.items()}}
"""SQL naming each row's window ('all', '2025-W10', '2025-03')."""

WINDOW_START_SQL = {
    "all": "'all'",
    "week": "date_trunc('week', timestamp)",
    "month": "date_trunc('month', timestamp)",
}
"""What rows are grouped by: the start of their window (a Monday, a first of the month).
A truncation per row is 7x cheaper than formatting WINDOW_SQL's name per row, which was
0.04 s of every pass over 800,000 rows; `window_name_sql` names each group instead."""


def window_name_sql(window: Window, start: str) -> str:
    """SQL: WINDOW_SQL's name of the window that starts at column `start` (see
    WINDOW_START_SQL). The same name: a Monday's ISO week is its whole week's."""
    return start if window == "all" else _NAME_OF[window].format(start)


def window_start(window: Window, name: str) -> datetime:
    """The first instant of the week ('2025-W10') or month ('2025-03') window `name`."""
    if window == "week":
        year, week = name.split("-W")
        return datetime.combine(date.fromisocalendar(int(year), int(week), 1), time())
    year, month = name.split("-")
    return datetime(int(year), int(month), 1)


GROUP_COLUMNS = ("instance_type", "benchmark", "test", "thread_mode", "metric")

WINDOW_NAME = re.compile(r"^\d{4}-(W\d{2}|\d{2})$")


def publishable_filter(include_sandbox: bool) -> str:
    """SQL predicate on accepted_rows: what may be published.

    Only results measured on real EC2 ('aws'), in full mode, are published as data.
    `include_sandbox` (demos and tests) admits sandbox, local and quick-mode results too;
    never the earlier Go collector's ('legacy', analysis/legacy.py: shown as history only).
    """
    if include_sandbox:
        return "(collection_method <> 'legacy')"
    return "(collection_method = 'aws' AND NOT quick)"


@dataclass(frozen=True)
class Summary:
    """Statistics of one group in one window (window 'all' is the whole dataset)."""

    instance_type: str
    benchmark: str
    test: str
    thread_mode: str
    metric: str
    unit: str
    window: str
    n: int
    median: float
    mean: float
    sd: float | None
    cv: float | None
    min: float
    max: float
    ci_low: float | None
    ci_high: float | None
    median_ci_low: float | None
    median_ci_high: float | None
    within_sd: float | None
    within_cv: float | None
    trials: int | None
    vcpus: int | None
    memory_gib: float | None
    per_vcpu: float | None
    per_gib: float | None
    architecture: str | None
    manufacturer: str | None
    sockets: int | None
    first: str
    last: str

    def key(self) -> tuple[str, ...]:
        return (self.instance_type, self.benchmark, self.test, self.thread_mode, self.metric)

    def as_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies every value, 10x slower on flat records.
        # __dict__ holds the fields in declaration order (__init__ sets them in order).
        return dict(self.__dict__)


SUMMARY_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Summary))


_MACHINE = ("vcpus", "memory_gib", "architecture", "manufacturer", "sockets")
"""The machine's description carried by each row; a group reports its most common one."""

_STATS = (
    *GROUP_COLUMNS,
    "unit", "win", "n", "median", "mean", "sd", "min", "max", "within_sd", "within_mean",
    "trials", "first", "last",
)  # fmt: skip


def _summary_sql(
    window: Window, include_sandbox: bool, with_values: bool, since: datetime | None = None
) -> str:
    """Statistics per group and window, and the group's machine (of the rows measured
    from `since` on, when given).

    The machine is the most common (vcpus, memory_gib, architecture, manufacturer,
    sockets) among the group's rows, ties going to the smallest in that order: one
    configuration, so per_vcpu and per_gib describe the same machine. It is picked from
    per-configuration counts (a handful of rows per group) rather than by five `mode()`
    aggregates, which were 0.45 s of each window's query at 100,000 results.
    """
    values = ", list(value ORDER BY value) AS vals" if with_values else ""
    # Columns in the order `summarize` unpacks them: _STATS, _MACHINE, mci_low, mci_high.
    keys = ", ".join(GROUP_COLUMNS)
    machine = ", ".join(_MACHINE)
    # Only the columns used below, and not materialised: `r` is read twice (stats and
    # configs), and DuckDB materialises such a CTE whole by default: every column of
    # 8,000,000 rows at a million results, more than a 1 GB memory limit (Out of Memory).
    # `win` is the window's start (WINDOW_START_SQL) until the last SELECT names it.
    rows = (
        f"SELECT {keys}, unit, value, trial_sd, trial_mean, trials, timestamp, {machine}, "
        f"{WINDOW_START_SQL[window]} AS win FROM accepted_rows "
        f"WHERE {publishable_filter(include_sandbox)} AND value IS NOT NULL"
        + (f" AND timestamp >= TIMESTAMP '{since.isoformat(sep=' ')}'" if since else "")
    )
    return f"""
    WITH r AS NOT MATERIALIZED ({rows}),
    stats AS (
        SELECT {keys}, win, any_value(unit) AS unit,
               count(*) AS n, median(value) AS median, avg(value) AS mean,
               stddev_samp(value) AS sd, min(value) AS min, max(value) AS max,
               sqrt(avg(trial_sd * trial_sd)) AS within_sd, avg(trial_mean) AS within_mean,
               median(trials) AS trials,
               strftime(min(timestamp), '%Y-%m-%dT%H:%M:%SZ') AS first,
               strftime(max(timestamp), '%Y-%m-%dT%H:%M:%SZ') AS last
               {values}
        FROM r GROUP BY {keys}, win
    ),
    configs AS (
        SELECT {keys}, win, {machine}, count(*) AS c FROM r GROUP BY ALL
    ),
    machine AS (
        SELECT {keys}, win,
               first(struct_pack({machine})
                     ORDER BY c DESC, {", ".join(f"{m} NULLS LAST" for m in _MACHINE)}) AS m
        FROM configs GROUP BY {keys}, win
    )
    SELECT {
        ", ".join(
            f"{window_name_sql(window, 'stats.win')} AS win" if c == "win" else f"stats.{c}"
            for c in _STATS
        )
    },
           {", ".join(f"m.{c} AS {c}" for c in _MACHINE)},
           {"vals" if with_values else "NULL AS mci_low, NULL AS mci_high"}
    FROM stats JOIN machine USING ({keys}, win)
    ORDER BY {keys}, win
    """


def _with_median_ci(con: duckdb.DuckDBPyConnection, groups_sql: str) -> list[tuple[Any, ...]]:
    """Run `groups_sql` (with its sorted `vals` last) and put the median's interval,
    mci_low and mci_high, in its place.

    The interval is a pair of order statistics whose ranks depend only on n
    (`stats.median_ci_ranks`), so the ranks are computed once per distinct n and DuckDB
    picks the two values out of each sorted list: the values themselves never reach
    Python (at 100,000 results that transfer was a fifth of a publication).
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE summary_groups AS {groups_sql}")
    counts = [int(n) for (n,) in con.execute("SELECT DISTINCT n FROM summary_groups").fetchall()]
    con.execute("CREATE OR REPLACE TEMP TABLE median_ranks (n BIGINT, lo BIGINT, hi BIGINT)")
    ranks = [(n, *r) for n in counts if (r := stats.median_ci_ranks(n)) is not None]
    if ranks:
        con.executemany("INSERT INTO median_ranks VALUES (?, ?, ?)", ranks)
    result = con.execute(
        """
        SELECT g.* EXCLUDE (vals), g.vals[r.lo] AS mci_low, g.vals[r.hi] AS mci_high
        FROM summary_groups g LEFT JOIN median_ranks r ON r.n = g.n
        ORDER BY g.instance_type, g.benchmark, g.test, g.thread_mode, g.metric, g.win
        """
    )
    records = result.fetchall()
    con.execute("DROP TABLE summary_groups; DROP TABLE median_ranks")
    return records


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0 or not math.isfinite(a):
        return None
    return a / b


def summarize(
    con: duckdb.DuckDBPyConnection,
    *,
    include_sandbox: bool = False,
    window: Window = "all",
    since: str | None = None,
) -> list[Summary]:
    """One `Summary` per group and window, sorted by group then window.

    `since` (week or month windows) keeps the windows from `since` on.
    """
    # Every window gets the median's interval where n allows it (n >= 6 at 95 %): the
    # values stay in DuckDB, only the two order statistics come back (_with_median_ci).
    start = None
    if since is not None:
        if not WINDOW_NAME.match(since) or window == "all":
            raise ValueError(f"since must name a week or month window, not {since!r}")
        # Only the rows of those windows are read (their start is a bound on timestamp).
        start = window_start(window, since)
    sql = _summary_sql(window, include_sandbox, with_values=True, since=start)
    if since is not None:
        sql = f"SELECT * FROM ({sql}) WHERE win >= '{since}'"
    records = _with_median_ci(con, sql)
    out: list[Summary] = []
    # Unpacked by position (the SQL's column order): a dict per record was a third of the
    # loop at 11,000 weekly groups.
    for (
        itype, bench, test, mode, metric, unit, win, n, median, mean, sd, lo, hi,
        within_sd, within_mean, trials, first, last,
        vcpus, memory, arch, manufacturer, sockets, mci_low, mci_high,
    ) in records:  # fmt: skip
        n = int(n)
        mean = float(mean)
        sd = float(sd) if sd is not None and n >= 2 else None
        ci = stats.mean_ci(n, mean, sd)
        vcpus = int(vcpus) if vcpus is not None else None
        memory = float(memory) if memory is not None else None
        within_sd = float(within_sd) if within_sd is not None else None
        out.append(
            Summary(
                instance_type=itype,
                benchmark=bench,
                test=test,
                thread_mode=mode,
                metric=metric,
                unit=unit,
                window=win,
                n=n,
                median=float(median),
                mean=mean,
                sd=sd,
                cv=_ratio(sd, mean),
                min=float(lo),
                max=float(hi),
                ci_low=ci[0] if ci else None,
                ci_high=ci[1] if ci else None,
                median_ci_low=mci_low,
                median_ci_high=mci_high,
                within_sd=within_sd,
                within_cv=_ratio(within_sd, within_mean),
                trials=int(trials) if trials is not None else None,
                vcpus=vcpus,
                memory_gib=memory,
                per_vcpu=_ratio(mean, vcpus),
                per_gib=_ratio(mean, memory),
                architecture=arch,
                manufacturer=manufacturer,
                sockets=int(sockets) if sockets is not None else None,
                first=first,
                last=last,
            )
        )
    return out


def excluded_counts(con: duckdb.DuckDBPyConnection, include_sandbox: bool) -> dict[str, int]:
    """Valid documents left out of the publication, by reason (sandbox, local, quick,
    legacy: the last even with `include_sandbox`)."""
    rows = con.execute(
        f"""
        SELECT CASE WHEN quick THEN 'quick mode' ELSE collection_method || ' result' END AS why,
               count(DISTINCT key)
        FROM accepted_rows WHERE NOT {publishable_filter(include_sandbox)}
        GROUP BY why ORDER BY why
        """
    ).fetchall()
    return {str(k): int(v) for k, v in rows}
