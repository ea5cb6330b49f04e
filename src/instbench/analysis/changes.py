"""Change detection over whole series: real drops, reported once, with their size.

Why not a test of each window against the one before (what publication did until now):
one-sided Welch at p < 0.05 per pair, with no floor on the size of the change and no
correction for the number of tests, flags about one pair in twenty of an unchanged
series, so most types carry a flag within a few months, a step is flagged again whenever
a later week happens to be lower, and a pair is untestable whenever one week has a
single instance. Here each series (instance type x benchmark x test x thread mode x
metric) is looked at as a whole, the way MongoDB's CI (E-Divisive Means, Daly et al.
ICPE 2020) and Apache Otava (formerly Hunter, Fleming et al. ICPE 2023) do:

1. **Stratified by CPU model.** One EC2 type can land on different CPU models (m5:
   Skylake or Cascade Lake). Each (series, CPU model the agent recorded) is its own
   stratum: a change is searched for within one model only, so a shift in the mix of
   models is never a regression. The series with every model pooled is searched too;
   a change found there but in no model, while the shares of the models moved, is
   reported as "CPU model mix changed", not as a change of the type.
2. **Binary segmentation** of a stratum's windows (weekly by default): the boundary
   between two windows that best splits the segment (largest two-sample t, pooled
   variance) is a candidate when it is significant after a Bonferroni correction for the
   number of boundaries it was chosen from; both sides are searched again. As in Otava,
   each candidate is finally tested between its neighbouring change points, and the
   significance is that of a t test, not of permutations (deterministic, and exact
   enough for Benjamini-Hochberg, which needs p-values far below what a few hundred
   permutations resolve). Each side of a boundary needs 2 samples.
3. **Across the publication**, every test performed (the candidates, and for a stratum
   with none the best boundary it had) enters one Benjamini-Hochberg procedure at
   false-discovery rate 5 % (checked against scipy.stats.false_discovery_control).
4. **A minimum practical effect**: a significant change is reported only when the
   relative change of the mean is at least `min_effect` (5 % by default).
5. **Its size**: the relative change of the mean, after / before - 1, with the 95 %
   interval of the difference of the means (Student, pooled variance: the same test)
   divided by the mean before. It is located at the first window after the change and
   is reported there once, whatever windows come after.

Why pooled variance and not Welch: the spread between instances of one type on one CPU
model is a property of that hardware; a software or firmware step moves the mean, not
the spread. With a single new window of 5 instances, Welch's test has ~4 degrees of
freedom and cannot find even a 20 % step against the false-discovery threshold of a
publication; the pooled estimate has the whole series behind it.

Why neither library: `signal-processing-algorithms` (MongoDB's E-Divisive) requires
Python < 3.12 and pins setuptools, more-itertools and pulls gevent and structlog;
`apache-otava` 0.8 pins numpy 2.2.0 and pulls Google BigQuery, Slack and PostgreSQL
clients. SciPy gives the distributions and Benjamini-Hochberg; the segmentation is the
few lines below. docs/statistics.md §4 has the method and bench/regressions.py its
false-alarm and detection rates against the per-pair test.

This module is part of the "summarize" stage: it takes cells (per series, CPU model and
window: n, mean, sum of squared deviations) and returns typed results; it never writes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import duckdb
import numpy as np

from instbench.analysis.aggregate import (
    GROUP_COLUMNS,
    WINDOW_START_SQL,
    Window,
    publishable_filter,
    window_name_sql,
)
from instbench.analysis.stats import CONFIDENCE
from instbench.analysis.tidy import METRICS

MIN_EFFECT = 0.05
"""Default minimum practical effect: a relative change of the mean below it is not reported."""

FDR = 0.05
"""False-discovery rate of the Benjamini-Hochberg procedure over a publication's tests."""

MIN_SIDE = 2
"""Samples needed on each side of a boundary (one instance is never a change point)."""

MIX_SHIFT = 0.25
"""Total-variation distance between the CPU-model shares before and after a pooled change
from which the change is attributed to the mix of models."""

SeriesKey = tuple[str, str, str, str, str]
"""(instance_type, benchmark, test, thread_mode, metric)."""

METHOD = (
    "binary segmentation per series and CPU model (pooled two-sample t test at window "
    "boundaries, Bonferroni over the boundaries searched), Benjamini-Hochberg across the "
    "publication, minimum effect on the relative change of the mean"
)


def _special() -> Any:
    """scipy.special, imported on first use: Student's t distribution and its inverse
    (`stdtr`, `stdtrit`) without scipy.stats, whose import (0.4 s) was a third of a
    publication with nothing new; scipy.special takes 0.1 s. Not at module load: every
    `instbench` command (even `--help`) would pay it."""
    from scipy import special

    return special


def _t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with `df` degrees of freedom (scipy.stats.t.sf)."""
    return float(_special().stdtr(df, -t))


def _t_ppf(q: float, df: float) -> float:
    """The `q` quantile of Student's t with `df` degrees of freedom (scipy.stats.t.ppf)."""
    return float(_special().stdtrit(df, q))


@dataclass(frozen=True)
class Cell:
    """The samples of one series on one CPU model in one window, as sufficient statistics."""

    key: SeriesKey
    cpu_model: str | None
    window: str
    n: int
    mean: float
    m2: float
    """Sum of squared deviations from `mean` (n x population variance)."""


@dataclass(frozen=True)
class _Record:
    """Base of the flat records below: one `as_dict` for all of them."""

    def as_dict(self) -> dict[str, Any]:
        """Each declared field's name -> value, in declaration order (the keys and their
        order in index.json and `instbench results`).

        Not dataclasses.asdict: it deep-copies every value, which flat records of str, int,
        float, bool and None do not need.
        """
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Change(_Record):
    """A reported change point: where, how large (with its interval), how sure."""

    instance_type: str
    benchmark: str
    test: str
    thread_mode: str
    metric: str
    cpu_model: str | None
    """The CPU model tested within; None: every model pooled (the mix did not move)."""
    window: str
    """First window after the change."""
    previous_window: str
    first_window: str
    """First window of the segment before (since the previous change point)."""
    last_window: str
    """Last window of the segment after (until the next change point)."""
    n_before: int
    n_after: int
    mean_before: float
    mean_after: float
    change: float
    """Relative change of the mean, mean_after / mean_before - 1."""
    ci_low: float
    ci_high: float
    p_value: float
    """Two-sided, Bonferroni-corrected for the boundaries the change was chosen from."""
    q_value: float
    """Benjamini-Hochberg adjusted p-value across the publication. For a change of every
    model pooled (cpu_model None) it is `p_value`, which passed the procedure's cutoff."""
    worse: bool


@dataclass(frozen=True)
class MixChange(_Record):
    """A change of a type's figure explained by a change of the CPU models behind it."""

    instance_type: str
    benchmark: str
    test: str
    thread_mode: str
    metric: str
    window: str
    previous_window: str
    change: float
    """Relative change of the pooled mean (all models), what a per-pair test would see."""
    models_before: str
    models_after: str
    """Samples per CPU model in the segments before and after, 'model: n; ...'."""
    message: str


@dataclass(frozen=True)
class Untested(_Record):
    """A series (on one CPU model) that could not be tested, and why."""

    instance_type: str
    benchmark: str
    test: str
    thread_mode: str
    metric: str
    cpu_model: str | None
    windows: int
    n: int
    reason: str


@dataclass(frozen=True)
class ChangeReport:
    """Everything change detection found in one publication."""

    changes: list[Change]
    mix_changes: list[MixChange]
    untested: list[Untested]
    tests: int
    min_effect: float
    fdr: float
    window: Window

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.worse]

    @property
    def improvements(self) -> list[Change]:
        return [c for c in self.changes if not c.worse]

    def settings(self) -> dict[str, Any]:
        """index.json's `changeDetection`: what was done, with which thresholds."""
        return {
            "method": METHOD,
            "windows": {"week": "weekly", "month": "monthly"}.get(self.window, self.window),
            "minEffect": self.min_effect,
            "falseDiscoveryRate": self.fdr,
            "confidence": CONFIDENCE,
            "minSamplesPerSide": MIN_SIDE,
            "tests": self.tests,
            "stratifiedBy": "cpu_model",
        }


# ------------------------------------------------------------------------ input


def series_cells(
    con: duckdb.DuckDBPyConnection, *, include_sandbox: bool = False, window: Window = "week"
) -> list[Cell]:
    """One `Cell` per series, CPU model and window of the published rows (DuckDB does
    the grouping; only a handful of numbers per cell reach Python)."""
    keys = ", ".join(GROUP_COLUMNS)
    rows = con.execute(
        f"""
        SELECT {keys}, cpu_model, {window_name_sql(window, "start")} AS win, n, mean, m2
        FROM (
            SELECT {keys}, cpu_model, {WINDOW_START_SQL[window]} AS start, count(*) AS n,
                   avg(value) AS mean, var_pop(value) * count(*) AS m2
            FROM accepted_rows
            WHERE {publishable_filter(include_sandbox)} AND value IS NOT NULL
            GROUP BY ALL
        )
        ORDER BY {keys}, cpu_model NULLS FIRST, win
        """
    ).fetchall()
    return [
        Cell(
            key=(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4])),
            cpu_model=None if r[5] is None else str(r[5]),
            window=str(r[6]),
            n=int(r[7]),
            mean=float(r[8]),
            m2=max(0.0, float(r[9] or 0.0)),
        )
        for r in rows
    ]


# -------------------------------------------------------------------- one stratum


@dataclass(frozen=True)
class _Test:
    """The two-sample test at one boundary of a segment."""

    a: int
    tau: int
    b: int
    n_before: int
    n_after: int
    mean_before: float
    mean_after: float
    diff: float
    se: float
    df: int
    p_value: float


def _two_sided(diff: float, se: float, df: float) -> float:
    """Two-sided p-value of t = diff / se; without spread any difference is certain."""
    if se > 0:
        return 2.0 * _t_sf(abs(diff / se), df)
    return 0.0 if diff != 0 else 1.0


class _Stratum:
    """A stratum's windows with prefix sums, so any segment's statistics are O(1)."""

    def __init__(self, cells: Sequence[Cell]) -> None:
        self.windows = [c.window for c in cells]
        n = np.array([c.n for c in cells], dtype=float)
        means = np.array([c.mean for c in cells], dtype=float)
        m2 = np.array([c.m2 for c in cells], dtype=float)
        # Centred on the overall mean: sums of squares stay well conditioned at any scale.
        self.centre = float(np.sum(n * means) / np.sum(n))
        x = means - self.centre
        self.count = np.concatenate(([0.0], np.cumsum(n)))
        self.total = np.concatenate(([0.0], np.cumsum(n * x)))
        self.squares = np.concatenate(([0.0], np.cumsum(m2 + n * x * x)))

    def __len__(self) -> int:
        return len(self.windows)

    def _segment(self, a: Any, b: Any) -> tuple[Any, Any, Any]:
        n = self.count[b] - self.count[a]
        s = self.total[b] - self.total[a]
        ss = np.maximum(self.squares[b] - self.squares[a] - s * s / n, 0.0)
        return n, s / n, ss

    def best(self, a: int, b: int) -> _Test | None:
        """The boundary of [a, b) with the largest |t|, its p-value Bonferroni-corrected
        for the eligible boundaries; None when no boundary leaves MIN_SIDE on each side."""
        taus = np.arange(a + 1, b)
        if taus.size == 0:
            return None
        nl, ml, ssl = self._segment(a, taus)
        nr, mr, ssr = self._segment(taus, b)
        ok = (nl >= MIN_SIDE) & (nr >= MIN_SIDE)
        if not ok.any():
            return None
        taus, nl, ml, ssl, nr, mr, ssr = (v[ok] for v in (taus, nl, ml, ssl, nr, mr, ssr))
        df = nl + nr - 2
        se = np.sqrt((ssl + ssr) / df * (1.0 / nl + 1.0 / nr))
        diff = mr - ml
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(se > 0, diff / se, np.where(diff != 0, np.inf, 0.0))
        i = int(np.argmax(np.abs(t)))
        p = 2.0 * _t_sf(abs(float(t[i])), float(df[i]))
        return _Test(
            a=a,
            tau=int(taus[i]),
            b=b,
            n_before=int(nl[i]),
            n_after=int(nr[i]),
            mean_before=float(ml[i]) + self.centre,
            mean_after=float(mr[i]) + self.centre,
            diff=float(diff[i]),
            se=float(se[i]),
            df=int(df[i]),
            p_value=min(1.0, p * int(taus.size)),
        )

    def at(self, a: int, tau: int, b: int) -> _Test | None:
        """The test of boundary `tau` between the neighbouring change points a and b."""
        nl, ml, ssl = self._segment(a, tau)
        nr, mr, ssr = self._segment(tau, b)
        if nl < MIN_SIDE or nr < MIN_SIDE:
            return None
        taus = np.arange(a + 1, b)
        nla, _, _ = self._segment(a, taus)
        nra, _, _ = self._segment(taus, b)
        eligible = int(np.sum((nla >= MIN_SIDE) & (nra >= MIN_SIDE)))
        df = int(nl + nr - 2)
        se = math.sqrt((float(ssl) + float(ssr)) / df * (1.0 / nl + 1.0 / nr))
        diff = float(mr - ml)
        p = _two_sided(diff, se, df)
        return _Test(
            a=a,
            tau=tau,
            b=b,
            n_before=int(nl),
            n_after=int(nr),
            mean_before=float(ml) + self.centre,
            mean_after=float(mr) + self.centre,
            diff=diff,
            se=se,
            df=df,
            p_value=min(1.0, p * max(1, eligible)),
        )

    def segment(self, alpha: float) -> tuple[list[_Test], _Test | None]:
        """Change points by binary segmentation (each split at corrected p < alpha), each
        tested again between its neighbours; and the first (whole-series) best split."""
        first = self.best(0, len(self))
        points: list[int] = []
        stack = [(0, len(self))]
        while stack:
            a, b = stack.pop()
            found = first if (a, b) == (0, len(self)) else self.best(a, b)
            if found is None or found.p_value >= alpha:
                continue
            points.append(found.tau)
            stack += [(a, found.tau), (found.tau, b)]
        bounds = [0, *sorted(points), len(self)]
        tests = [
            t
            for j in range(1, len(bounds) - 1)
            if (t := self.at(bounds[j - 1], bounds[j], bounds[j + 1])) is not None
        ]
        return tests, first


# ----------------------------------------------------------------------- detection


def _higher_is_better(metric: str) -> bool:
    return METRICS[metric].higher_is_better if metric in METRICS else True


def _pool(cells: Sequence[Cell]) -> list[Cell]:
    """Cells of every CPU model merged per window (exact pooled mean and squares)."""
    by_window: dict[str, list[Cell]] = {}
    for c in cells:
        by_window.setdefault(c.window, []).append(c)
    out = []
    for window in sorted(by_window):
        group = by_window[window]
        n = sum(c.n for c in group)
        mean = sum(c.n * c.mean for c in group) / n
        m2 = sum(c.m2 + c.n * (c.mean - mean) ** 2 for c in group)
        out.append(Cell(group[0].key, None, window, n, mean, m2))
    return out


def _untested_reason(cells: Sequence[Cell]) -> str:
    if len(cells) == 1:
        return f"one window only ({cells[0].window}, n = {cells[0].n}): nothing to compare"
    counts = ", ".join(str(c.n) for c in cells[:12]) + (", ..." if len(cells) > 12 else "")
    return f"no window boundary leaves {MIN_SIDE} samples on each side (n per window: {counts})"


def _counts(cells: Iterable[Cell]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in cells:
        name = c.cpu_model or "unknown CPU model"
        out[name] = out.get(name, 0) + c.n
    return out


def _mix_text(counts: dict[str, int]) -> str:
    return "; ".join(f"{m}: {n}" for m, n in sorted(counts.items()))


def _mix_message(
    before: dict[str, int],
    after: dict[str, int],
    prev_cells: Sequence[Cell],
    cur_cells: Sequence[Cell],
) -> str:
    """'CPU model mix changed (Xeon 8259CL 3 of 5 -> 0 of 5)': the model whose share moved
    most between the segments, counted in the two windows beside the change."""
    nb, na = sum(before.values()), sum(after.values())
    models = sorted(set(before) | set(after))
    # Ties (two models trade places) go to the model whose share fell: "3 of 5 -> 0 of 5"
    # says where the faster or slower machines went.
    moved = max(
        models,
        key=lambda m: (
            round(abs(before.get(m, 0) / nb - after.get(m, 0) / na), 9),
            before.get(m, 0) / nb > after.get(m, 0) / na,
        ),
    )
    prev, cur = _counts(prev_cells), _counts(cur_cells)
    return (
        f"CPU model mix changed ({moved} {prev.get(moved, 0)} of {sum(prev.values())} → "
        f"{cur.get(moved, 0)} of {sum(cur.values())})"
    )


def _shift(before: dict[str, int], after: dict[str, int]) -> float:
    nb, na = sum(before.values()), sum(after.values())
    models = set(before) | set(after)
    return 0.5 * sum(abs(before.get(m, 0) / nb - after.get(m, 0) / na) for m in models)


def detect(
    cells: Iterable[Cell],
    *,
    min_effect: float = MIN_EFFECT,
    fdr: float = FDR,
    window: Window = "week",
    higher_is_better: Callable[[str], bool] = _higher_is_better,
) -> ChangeReport:
    """Change points of every series in `cells` (see the module docstring for the method).

    `cells` may come in any order. `higher_is_better(metric)` decides which direction is
    worse. Deterministic: the same cells give the same report.
    """
    if not 0.0 <= min_effect < 1.0:
        raise ValueError("min_effect must be in [0, 1)")
    by_series: dict[SeriesKey, dict[str | None, list[Cell]]] = {}
    for c in cells:
        by_series.setdefault(c.key, {}).setdefault(c.cpu_model, []).append(c)

    untested: list[Untested] = []
    family: list[float] = []
    # (series, model, stratum, test, index in family); candidates only.
    candidates: list[tuple[SeriesKey, str | None, _Stratum, _Test, int]] = []
    pooled: list[tuple[SeriesKey, dict[str | None, list[Cell]], _Stratum, list[_Test]]] = []
    for key in sorted(by_series):
        models = by_series[key]
        for model in sorted(models, key=lambda m: (m is not None, m or "")):
            series = sorted(models[model], key=lambda c: c.window)
            stratum = _Stratum(series)
            tests, first = stratum.segment(fdr)
            if first is None:
                untested.append(
                    Untested(
                        *key,
                        cpu_model=model,
                        windows=len(series),
                        n=sum(c.n for c in series),
                        reason=_untested_reason(series),
                    )
                )
                continue
            if not tests:
                family.append(first.p_value)
            for t in tests:
                candidates.append((key, model, stratum, t, len(family)))
                family.append(t.p_value)
        if len(models) > 1:
            merged = _Stratum(_pool([c for cs in models.values() for c in cs]))
            if len(merged) > 1:
                tests, _ = merged.segment(fdr)
                if tests:
                    pooled.append((key, models, merged, tests))

    q_values = _bh(family)
    # One refinement, as Otava does: candidates that did not survive the procedure stop
    # being boundaries, and the survivors are tested again between surviving neighbours
    # (longer segments, so their size and interval use every window they can).
    kept: dict[tuple[SeriesKey, str | None], list[tuple[_Stratum, _Test, int]]] = {}
    for key, model, stratum, t, i in candidates:
        if q_values[i] <= fdr:
            kept.setdefault((key, model), []).append((stratum, t, i))
    final: list[tuple[SeriesKey, str | None, _Stratum, _Test, int]] = []
    for (key, model), survivors in kept.items():
        stratum = survivors[0][0]
        taus = sorted(t.tau for _, t, _ in survivors)
        bounds = [0, *taus, len(stratum)]
        index_of = {t.tau: i for _, t, i in survivors}
        for j in range(1, len(bounds) - 1):
            retest = stratum.at(bounds[j - 1], bounds[j], bounds[j + 1])
            if retest is not None:
                family[index_of[bounds[j]]] = retest.p_value
                final.append((key, model, stratum, retest, index_of[bounds[j]]))
    q_values = _bh(family)
    rejected = [p for p, q in zip(family, q_values, strict=True) if q <= fdr]
    cutoff = max(rejected) if rejected else fdr / max(1, len(family))

    changes: list[Change] = []
    for key, model, stratum, t, i in final:
        if q_values[i] > fdr:
            continue
        change = _change(key, model, stratum, t, q_values[i], higher_is_better)
        if abs(change.change) >= min_effect:
            changes.append(change)

    mix_changes: list[MixChange] = []
    at_window = {(c.instance_type, c.benchmark, c.test, c.thread_mode, c.metric, c.window)
                 for c in changes}  # fmt: skip
    for key, models, stratum, tests in pooled:
        for t in tests:
            if t.p_value > cutoff:
                continue
            where = stratum.windows[t.tau]
            if (*key, where) in at_window:
                continue  # a change within a model at this window explains it
            relative = t.diff / t.mean_before if t.mean_before else math.inf
            if abs(relative) < min_effect:
                continue
            before_windows = set(stratum.windows[t.a : t.tau])
            after_windows = set(stratum.windows[t.tau : t.b])
            every = [c for cs in models.values() for c in cs]
            before = _counts(c for c in every if c.window in before_windows)
            after = _counts(c for c in every if c.window in after_windows)
            if _shift(before, after) < MIX_SHIFT:
                # The models' shares held: a change of the type that the per-model tests
                # were too small to see. Reported as a change of every model pooled.
                changes.append(_change(key, None, stratum, t, t.p_value, higher_is_better))
                continue
            previous = stratum.windows[t.tau - 1]
            mix_changes.append(
                MixChange(
                    *key,
                    window=where,
                    previous_window=previous,
                    change=relative,
                    models_before=_mix_text(before),
                    models_after=_mix_text(after),
                    message=_mix_message(
                        before,
                        after,
                        [c for c in every if c.window == previous],
                        [c for c in every if c.window == where],
                    ),
                )
            )
    changes.sort(key=lambda c: (c.instance_type, c.benchmark, c.test, c.thread_mode, c.metric,
                                c.window, c.cpu_model or ""))  # fmt: skip
    return ChangeReport(
        changes=changes,
        mix_changes=mix_changes,
        untested=untested,
        tests=len(family),
        min_effect=min_effect,
        fdr=fdr,
        window=window,
    )


def _bh(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values) of `p_values`: q of the i-th
    smallest of m p-values is min over j >= i of p_(j) * m / j, capped at 1.

    Written here (five lines of numpy) rather than scipy.stats.false_discovery_control
    only to keep scipy.stats' import out of every publication; test_changes checks it
    against scipy's on random and tied p-values."""
    if not p_values:
        return []
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    m = p.size
    scaled = p[order] * m / np.arange(1, m + 1)
    q = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    out = np.empty(m)
    out[order] = q
    return [float(v) for v in out]


def _change(
    key: SeriesKey,
    model: str | None,
    stratum: _Stratum,
    t: _Test,
    q_value: float,
    higher_is_better: Callable[[str], bool],
) -> Change:
    half = _t_ppf(0.5 + CONFIDENCE / 2.0, t.df) * t.se
    base = t.mean_before
    worse = (t.diff < 0) if higher_is_better(key[4]) else (t.diff > 0)
    return Change(
        *key,
        cpu_model=model,
        window=stratum.windows[t.tau],
        previous_window=stratum.windows[t.tau - 1],
        first_window=stratum.windows[t.a],
        last_window=stratum.windows[t.b - 1],
        n_before=t.n_before,
        n_after=t.n_after,
        mean_before=t.mean_before,
        mean_after=t.mean_after,
        change=t.diff / base,
        ci_low=(t.diff - half) / base,
        ci_high=(t.diff + half) / base,
        p_value=t.p_value,
        q_value=q_value,
        worse=worse,
    )


def relative_interval(
    before: Sequence[float], after: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """(change, low, high) of two plain samples, the way `detect` sizes a change: the
    pooled-variance t interval of mean(after) - mean(before), over mean(before)."""
    cells = [
        Cell(("", "", "", "", ""), None, "0", len(before), float(np.mean(before)),
             float(np.sum((np.asarray(before) - np.mean(before)) ** 2))),
        Cell(("", "", "", "", ""), None, "1", len(after), float(np.mean(after)),
             float(np.sum((np.asarray(after) - np.mean(after)) ** 2))),
    ]  # fmt: skip
    stratum = _Stratum(cells)
    t = stratum.at(0, 1, 2)
    if t is None:
        raise ValueError(f"each sample needs {MIN_SIDE} values")
    half = _t_ppf(0.5 + confidence / 2.0, t.df) * t.se
    return t.diff / t.mean_before, (t.diff - half) / t.mean_before, (t.diff + half) / t.mean_before
