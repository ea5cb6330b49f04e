"""stats.py: t quantiles against published tables, interval coverage on synthetic data."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from instbench.analysis import stats


@pytest.mark.parametrize(
    ("df", "expected"),
    [(1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (30, 2.0423), (1000, 1.9623)],
)
def test_t_quantile_matches_the_table(df: int, expected: float) -> None:
    assert stats.t_quantile(0.975, df) == pytest.approx(expected, abs=1e-4)


def test_t_cdf_is_symmetric_and_inverts_the_quantile() -> None:
    for df in (1, 3, 17):
        for p in (0.01, 0.3, 0.5, 0.9, 0.999):
            assert stats.t_cdf(stats.t_quantile(p, df), df) == pytest.approx(p, abs=1e-9)
        assert stats.t_cdf(-1.5, df) == pytest.approx(1 - stats.t_cdf(1.5, df))


def test_mean_ci_needs_two_samples() -> None:
    assert stats.mean_ci(1, 10.0, None) is None
    low, high = stats.mean_ci(4, 10.0, 2.0) or (0, 0)
    assert (low, high) == pytest.approx((10 - 3.1824, 10 + 3.1824), abs=1e-3)


@pytest.mark.parametrize("n", [3, 5, 10])
def test_t_interval_covers_the_true_mean_95_percent_of_the_time(n: int) -> None:
    """Coverage on synthetic normal data (fixed seed): 4000 replicates, within 1.5 points."""
    rng = random.Random(20250301 + n)
    true_mean, sd, reps, hits = 40.0, 3.0, 4000, 0
    for _ in range(reps):
        xs = [rng.gauss(true_mean, sd) for _ in range(n)]
        ci = stats.mean_ci(n, statistics.fmean(xs), statistics.stdev(xs))
        assert ci is not None
        hits += ci[0] <= true_mean <= ci[1]
    assert abs(hits / reps - 0.95) < 0.015


def test_median_interval_is_distribution_free_and_covers_at_least_95_percent() -> None:
    assert stats.median_ci_ranks(5) is None  # [min, max] covers only 93.75 %
    assert stats.median_ci_ranks(6) == (1, 6)
    assert stats.median_ci_ranks(20) == (6, 15)
    lo, hi = stats.median_ci_ranks(25_000) or (0, 0)  # large n: no overflow, ~n/2 ± 1.96·√n/2
    assert abs(lo - (12_500 - 1.96 * 79.06)) < 2 and lo + hi == 25_001
    rng = random.Random(7)
    hits = 0
    for _ in range(3000):
        xs = [rng.expovariate(1.0) for _ in range(15)]  # skewed: median ln 2
        ci = stats.median_ci(xs)
        assert ci is not None
        hits += ci[0] <= math.log(2) <= ci[1]
    assert hits / 3000 >= 0.94


@pytest.mark.parametrize("p", [0.975, 0.995, 0.9, 0.6])
def test_t_quantile_agrees_with_scipy_at_every_scale_of_df(p: float) -> None:
    """Against scipy.stats.t.ppf from 1 to 10^6 degrees of freedom (a group of a million
    results): within 1e-9 relative, so every published digit (6 significant) is scipy's."""
    from scipy.stats import t as student_t

    for df in [1, 2, 3, 7, 29, 30, 69, 120, 999, 5049, 10_000, 123_457, 1_000_000]:
        ours = stats.t_quantile(p, df)
        ref = float(student_t.ppf(p, df))
        assert ours == pytest.approx(ref, rel=1e-9), df
        assert f"{ours:.6g}" == f"{ref:.6g}", df


def test_median_ranks_agree_with_scipy_binomial() -> None:
    """The order-statistic ranks are the binomial(n, 1/2) quantiles scipy computes."""
    from scipy.stats import binom

    for n in [6, 7, 10, 71, 500, 5049, 20_000]:
        lo, hi = stats.median_ci_ranks(n)
        # the largest k with P(B <= k - 1) <= 2.5 %
        assert binom.cdf(lo - 1, n, 0.5) <= 0.025 < binom.cdf(lo, n, 0.5), n
        assert hi == n - lo + 1
    assert stats.median_ci_ranks(5) is None
