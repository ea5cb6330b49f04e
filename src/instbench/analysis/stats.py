"""Small-sample statistics without SciPy: Student t quantiles and intervals.

Why here and not in SQL: DuckDB computes the moments (n, mean, variance, median) over
millions of rows; what is left per group (a t quantile, an interval, a p-value) is a
handful of floats per instance type and needs the t distribution, which DuckDB lacks.
These were written before SciPy became a dependency (for change detection); the t CDF
is computed from the regularised incomplete beta function (continued fraction, as in
Numerical Recipes §6.4) and inverted by bisection: exact to ~1e-10, fast enough for
thousands of groups.

The method choices (t interval of the mean; order-statistic interval of the median) and
why are in docs/statistics.md. Change detection, which needs more of the t distribution
and Benjamini-Hochberg, uses SciPy (changes.py).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

CONFIDENCE = 0.95
"""Confidence level of every published interval."""


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(ln_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom."""
    if df <= 0:
        raise ValueError("degrees of freedom must be positive")
    x = df / (df + t * t)
    tail = 0.5 * betainc(df / 2.0, 0.5, x)
    return 1.0 - tail if t > 0 else tail


@functools.lru_cache(maxsize=4096)
def t_quantile(p: float, df: float) -> float:
    """The `p` quantile of Student's t with `df` degrees of freedom (bisection on t_cdf)."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return (lo + hi) / 2.0


def mean_ci(
    n: int, mean: float, sd: float | None, confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """Student t interval of the mean, or None when it does not exist (n < 2)."""
    if n < 2 or sd is None or not math.isfinite(sd):
        return None
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * sd / math.sqrt(n)
    return mean - half, mean + half


@functools.lru_cache(maxsize=4096)
def median_ci_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int] | None:
    """1-based ranks (lo, hi) of the distribution-free interval of the median.

    [x_(lo), x_(hi)] covers the population median with probability >= `confidence` for any
    continuous distribution (binomial(n, 1/2) argument). None when n is too small for the
    level (n < 6 at 95 %): then even [min, max] covers with less than 95 %.
    """
    alpha = 1.0 - confidence
    # Largest k with P(B <= k - 1) <= alpha / 2, B ~ Binomial(n, 1/2).
    cumulative, k = 0.0, 0
    log_norm = math.lgamma(n + 1) - n * math.log(2.0)
    for i in range(n + 1):
        # Binomial(n, 1/2) pmf in log space: 2**n overflows a float beyond n = 1023.
        cumulative += math.exp(log_norm - math.lgamma(i + 1) - math.lgamma(n - i + 1))
        if cumulative > alpha / 2.0:
            k = i
            break
    if k < 1:
        return None
    return k, n - k + 1


def median_ci(
    values: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """Order-statistic interval of the median of `values` (see `median_ci_ranks`)."""
    ranks = median_ci_ranks(len(values), confidence)
    if ranks is None:
        return None
    ordered = sorted(values)
    return ordered[ranks[0] - 1], ordered[ranks[1] - 1]
