"""Every statistic cross-checked against scipy / statsmodels / pandas called directly."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats as sps
from statsmodels.formula.api import ols
from statsmodels.stats.oneway import effectsize_oneway
from statsmodels.stats.power import FTestAnovaPower

from lightning_app.analysis import stats


def test_group_means_and_effect_match_pandas_groupby() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(30, 5))
    codes = rng.integers(0, 4, size=30)
    codes[:4] = np.arange(4)  # every group present
    expected = pd.DataFrame(values).groupby(codes).mean().to_numpy()
    np.testing.assert_allclose(stats.group_means(values, codes, 4), expected)
    np.testing.assert_allclose(
        stats.group_mean_effect(values, codes, 4), expected.max(0) - expected.min(0)
    )
    assert stats.group_mean_effect(values[:, 2], codes, 4) == pytest.approx(np.ptp(expected[:, 2]))


def test_group_means_needs_every_group() -> None:
    with pytest.raises(ValueError, match="at least one run"):
        stats.group_means(np.ones(3), np.array([0, 0, 2]), 3)


def test_exact_noise_null_enumerates_every_split() -> None:
    """7 noise runs into groups of 2 and 3 (2 left out): all 210 splits, p-values by hand."""
    noise = np.array([0.1, 0.4, 0.35, 0.8, 0.55, 0.2, 0.9])
    null = stats.noise_null(noise, (2, 3), n_resamples=10_000, rng=np.random.default_rng(0))
    assert null.exact and not null.with_replacement
    by_hand = []
    for first in itertools.combinations(range(7), 2):
        rest = [i for i in range(7) if i not in first]
        for second in itertools.combinations(rest, 3):
            by_hand.append(abs(noise[list(first)].mean() - noise[list(second)].mean()))
    assert len(by_hand) == math.comb(7, 2) * math.comb(5, 3)
    np.testing.assert_allclose(np.sort(null.distribution), np.sort(by_hand))
    observed = 0.5
    hits = np.count_nonzero(np.array(by_hand) >= observed)
    assert null.p_value(observed) == pytest.approx((hits + 1) / (len(by_hand) + 1))
    # An effect beyond every split is not "p = 0": B splits cannot show p < 1 / (B + 1).
    assert null.p_value(10.0) == pytest.approx(1 / (len(by_hand) + 1))
    assert null.median == pytest.approx(np.median(by_hand))


def test_random_noise_null_is_scipys_permutation_null() -> None:
    rng = np.random.default_rng(1)
    noise = rng.normal(0.97, 0.002, size=50)
    sizes = (10, 10, 10)
    null = stats.noise_null(noise, sizes, 999, np.random.default_rng(7))

    def range_of_first_three(a, b, c, rest, axis=-1):
        m = np.stack([a.mean(axis), b.mean(axis), c.mean(axis)])
        return m.max(0) - m.min(0)

    direct = sps.permutation_test(
        (noise[:10], noise[10:20], noise[20:30], noise[30:]),
        range_of_first_three,
        vectorized=True,
        n_resamples=999,
        alternative="greater",
        rng=np.random.default_rng(7),
    )
    np.testing.assert_allclose(null.distribution, direct.null_distribution)
    # scipy's own p-value of the statistic it observed uses the same counting rule.
    assert null.p_value(float(direct.statistic)) == pytest.approx(direct.pvalue)
    assert not null.exact


def test_pvalue_counts_ties_and_never_returns_zero() -> None:
    null = np.array([0.1, 0.2, 0.3])
    assert stats.upper_tail_pvalue(0.2, null) == pytest.approx(3 / 4)
    assert stats.upper_tail_pvalue(0.2 * (1 + 1e-15), null) == pytest.approx(3 / 4)
    assert stats.upper_tail_pvalue(5.0, null) == pytest.approx(1 / 4)


def test_bootstrap_null_when_groups_need_more_runs_than_there_are() -> None:
    """Drawn with replacement, each group mean has variance sigma^2 / n (sigma: population sd)."""
    rng = np.random.default_rng(2)
    noise = rng.normal(0.0, 1.0, size=12)
    sizes = (20, 20)
    null = stats.noise_null(noise, sizes, 20_000, np.random.default_rng(3))
    assert null.with_replacement and not null.exact
    sigma = noise.std(ddof=0)
    # |mean1 - mean2| ~ |N(0, 2 sigma^2 / 20)|: a half-normal with median 0.6745 * sd.
    expected_median = sps.halfnorm.median(scale=sigma * math.sqrt(2 / 20))
    assert null.median == pytest.approx(expected_median, rel=0.05)
    # The same draws by a plain loop give the same distribution.
    loop_rng = np.random.default_rng(4)
    loop = []
    for _ in range(4000):
        draw = noise[loop_rng.integers(0, 12, size=40)]
        loop.append(abs(draw[:20].mean() - draw[20:].mean()))
    assert np.median(loop) == pytest.approx(null.median, rel=0.06)


def test_noise_null_rejects_impossible_splits() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        stats.noise_null(np.ones(5), (5,), 10, rng)
    with pytest.raises(ValueError):
        stats.noise_null(np.ones(1), (1, 1), 10, rng)


def test_oneway_tests_match_scipy_and_statsmodels_anova_table() -> None:
    rng = np.random.default_rng(3)
    codes = np.repeat(np.arange(3), [8, 10, 12])
    values = rng.normal(size=30) + np.array([0.0, 0.5, 1.0])[codes]
    res = stats.oneway_tests(values, codes, 3)
    groups = [values[codes == j] for j in range(3)]
    anova = sps.f_oneway(*groups)
    kw = sps.kruskal(*groups)
    assert res.f_statistic == pytest.approx(anova.statistic)
    assert res.anova_p == pytest.approx(anova.pvalue)
    assert res.h_statistic == pytest.approx(kw.statistic)
    assert res.kruskal_p == pytest.approx(kw.pvalue)
    assert res.epsilon_squared == pytest.approx(kw.statistic / 29)
    table = sm.stats.anova_lm(ols("y ~ C(g)", data=pd.DataFrame({"y": values, "g": codes})).fit())
    ss_b, ss_w = table["sum_sq"].iloc[0], table["sum_sq"].iloc[1]
    ms_w = table["mean_sq"].iloc[1]
    assert res.omega_squared == pytest.approx((ss_b - 2 * ms_w) / (ss_b + ss_w + ms_w))
    assert table["F"].iloc[0] == pytest.approx(res.f_statistic)


def test_oneway_tests_refuse_groups_of_one() -> None:
    with pytest.raises(ValueError, match="two runs"):
        stats.oneway_tests(np.arange(5.0), np.array([0, 0, 1, 1, 2]), 3)


def test_cohens_f_matches_statsmodels_effectsize_oneway() -> None:
    means = np.array([0.95, 0.96, 0.962, 0.97])
    sigma = 0.004
    f2 = effectsize_oneway(means, np.full(4, sigma**2), np.full(4, 10), use_var="equal")
    assert stats.cohens_f(means, sigma) == pytest.approx(math.sqrt(f2))
    offsets = stats.least_favourable_offsets(0.01, 5)
    assert np.ptp(offsets) == pytest.approx(0.01)
    assert stats.cohens_f(offsets, sigma) == pytest.approx(0.01 / (sigma * math.sqrt(10)))


@pytest.mark.parametrize(("f", "k"), [(0.25, 4), (0.1, 3), (0.4, 2), (1.5, 10)])
def test_runs_per_group_is_the_smallest_n_reaching_power(f: float, k: int) -> None:
    power = FTestAnovaPower()
    n = stats.runs_per_group(f, k, 0.05, 0.8, 100_000)
    assert n is not None
    assert power.power(f, n * k, 0.05, k_groups=k) >= 0.8
    if n > 2:
        assert power.power(f, (n - 1) * k, 0.05, k_groups=k) < 0.8
    if f < 1:  # statsmodels' solver converges here; it gives the same count after rounding up
        total = power.solve_power(effect_size=f, nobs=None, alpha=0.05, power=0.8, k_groups=k)
        assert n == math.ceil(total / k)
    np.testing.assert_allclose(
        stats.anova_power(f, np.array([n, 2 * n]), k, 0.05),
        [power.power(f, n * k, 0.05, k_groups=k), power.power(f, 2 * n * k, 0.05, k_groups=k)],
    )


def test_runs_per_group_none_for_no_effect_or_past_the_cap() -> None:
    assert stats.runs_per_group(0.0, 3, 0.05, 0.8, 1000) is None
    assert stats.runs_per_group(0.001, 3, 0.05, 0.8, 1000) is None


def test_simulated_power_agrees_with_the_analytic_power_for_normal_noise() -> None:
    rng = np.random.default_rng(5)
    noise = rng.normal(0.0, 1.0, size=4000)
    offsets = np.array([-0.5, 0.0, 0.5])
    f = stats.cohens_f(offsets, noise.std(ddof=0))
    n = stats.runs_per_group(f, 3, 0.05, 0.8, 10_000)
    assert n is not None
    simulated = stats.simulated_anova_power(noise, offsets, n, 0.05, 3000, np.random.default_rng(6))
    analytic = float(stats.anova_power(f, n, 3, 0.05))
    assert simulated == pytest.approx(analytic, abs=0.03)
    # Without an effect the check rejects at about alpha.
    null_rate = stats.simulated_anova_power(
        noise, np.zeros(3), n, 0.05, 3000, np.random.default_rng(7)
    )
    assert null_rate == pytest.approx(0.05, abs=0.015)


def test_spread_and_levene_by_epoch_match_per_column_calls() -> None:
    rng = np.random.default_rng(8)
    signal = rng.normal(0, [3.0, 1.0, 1.0], size=(25, 3))
    noise = rng.normal(0, 1.0, size=(40, 3))
    band = stats.spread(signal)
    np.testing.assert_allclose(band.range, signal.max(0) - signal.min(0))
    np.testing.assert_allclose(band.std, signal.std(0, ddof=1))
    stat, p = stats.levene_by_epoch(signal, noise, "median")
    for j in range(3):
        direct = sps.levene(signal[:, j], noise[:, j], center="median")
        assert stat[j] == pytest.approx(direct.statistic)
        assert p[j] == pytest.approx(direct.pvalue)
    assert p[0] < 0.001 < p[1]
