"""Power and run counts for the rule signal-effects applies, against statsmodels and simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import FTestAnovaPower

from lightning_app.analysis import power


def _one_way_rule(noise_df: int = 9) -> power.Rule:
    """One parameter, no correction, signal error: the one-way ANOVA statsmodels plans for."""
    return power.Rule(0.05, 1, "none", "signal", 0, noise_df, 5.0)


@pytest.mark.parametrize(("f", "k"), [(0.25, 4), (0.1, 3), (0.4, 2), (1.5, 10)])
def test_f_test_power_is_statsmodels_anova_power_where_they_coincide(f: float, k: int) -> None:
    rule = power.Rule(0.05, 1, "none", "signal", k - 1, 9, 5.0)
    runs = np.array([3, 10, 40])
    ours = power.f_test_power(f**2, k, runs, rule)
    theirs = [FTestAnovaPower().power(f, r * k, 0.05, k_groups=k) for r in runs]
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    n = power.smallest_runs(lambda r: float(power.f_test_power(f**2, k, r, rule)), 0.8, 100_000)
    assert n is not None
    if f < 1:  # statsmodels' solver converges here; the same count after rounding up
        total = FTestAnovaPower().solve_power(effect_size=f, alpha=0.05, power=0.8, k_groups=k)
        assert n == max(2, math.ceil(float(np.asarray(total).item()) / k))


def test_the_layer_count_of_the_issue_is_34_runs_per_value() -> None:
    """Cohen's f = 0.346 with 2 values: statsmodels says 67.5 runs in all, so 34 per value (the
    old bisection walked past a NaN from statsmodels and said 6326)."""
    rule = power.Rule(0.05, 1, "none", "signal", 1, 23, 5.0)
    n = power.smallest_runs(lambda r: float(power.f_test_power(0.346**2, 2, r, rule)), 0.8, 100_000)
    assert n == 34


def test_a_non_finite_power_is_an_error_not_too_few_runs() -> None:
    values = {2: 0.1, 4: 0.3, 8: float("nan"), 16: 0.9}
    with pytest.raises(ValueError, match="non-finite"):
        power.smallest_runs(lambda r: values.get(r, 0.5), 0.8, 100)


def test_smallest_runs_is_the_smallest() -> None:
    curve = lambda r: 1 - 0.9**r  # noqa: E731
    n = power.smallest_runs(curve, 0.8, 1000)
    assert n is not None and curve(n) >= 0.8 > curve(n - 1)
    assert power.smallest_runs(curve, 0.8, 10) is None
    assert power.smallest_runs(lambda r: 1.0, 0.8, 10) == 2


def test_error_terms_set_the_denominator_df() -> None:
    for error, expected in (("signal", [-3, 5, 45]), ("noise", [0, 9, 9]), ("pooled", [0, 14, 54])):
        rule = power.Rule(0.05, 3, "holm", error, 6, 9, 5.0)  # type: ignore[arg-type]
        np.testing.assert_array_equal(rule.df_denom(np.array([4, 12, 52])), expected)
    assert power.Rule(0.05, 3, "holm", "signal", 6, 9, 5.0).alpha_per_test == pytest.approx(
        0.05 / 3
    )
    assert power.Rule(0.05, 3, "none", "signal", 6, 9, 5.0).alpha_per_test == 0.05


def test_corrected_f2_is_unbiased_for_the_noncentrality() -> None:
    """Mean of the corrected f^2 over noncentral F draws is the true f^2; the observed one is
    biased upward."""
    rng = np.random.default_rng(0)
    df1, df2, n, f2 = 3, 20, 24, 0.2
    draws = sps.ncf.rvs(df1, df2, n * f2, size=200_000, random_state=rng)
    unbiased = df1 * (draws * (df2 - 2) / df2 - 1) / n  # before truncation
    assert np.mean(unbiased) == pytest.approx(f2, rel=0.02)
    assert np.mean(df1 * draws / n) > 1.3 * f2
    assert power.corrected_f2(0.5, 3, 20, 24) == 0.0
    assert power.corrected_f2(float(draws[0]), df1, df2, n) == pytest.approx(max(0, unbiased[0]))


def test_rule_power_significance_is_the_f_test_power() -> None:
    offsets = np.array([-0.4, 0.0, 0.1, 0.3])
    rule = power.Rule(0.05, 3, "holm", "signal", 6, 23, 5.0)
    draws = power.RuleDraws.make(4, 40_000, np.random.default_rng(1))
    f2 = float(np.mean((offsets - offsets.mean()) ** 2))
    for r in (4, 10):
        significant, called = power.rule_power(offsets, 1.0, 1.0, r, rule, draws)
        assert significant == pytest.approx(float(power.f_test_power(f2, 4, r, rule)), abs=0.01)
        assert called <= significant


def test_median_noise_range_matches_simulation() -> None:
    z = np.random.default_rng(2).standard_normal((200_000, 5))
    assert power.median_noise_range(5) == pytest.approx(np.median(np.ptp(z, axis=1)), rel=0.01)


def test_the_whole_rule_simulated_reaches_the_planned_power() -> None:
    rng = np.random.default_rng(3)
    noise = rng.standard_normal(24)
    levels = {"t": np.array([-0.5, 0.0, 0.5]), "b": np.array([-1.0, 0.0, 1.0]), "c": np.zeros(2)}
    rule = power.Rule(0.05, 3, "holm", "signal", 2 + 2 + 1, 23, 5.0)
    f2 = float(np.mean(levels["t"] ** 2))
    n = power.smallest_runs(lambda r: float(power.f_test_power(f2, 3, r, rule)), 0.8, 1000)
    assert n is not None
    sim = power.simulate_rule(levels, "t", n, 1.0, noise, rule, 2000, rng)
    # Holm is never less powerful than its first step; the noise runs' shape is not normal.
    assert sim.significant >= 0.8 - 0.03
    below = power.simulate_rule(levels, "t", max(2, n // 2), 1.0, noise, rule, 2000, rng)
    assert below.significant < 0.7


def test_adjust_columns_is_multipletests_per_column() -> None:
    p = np.random.default_rng(4).random((5, 12)) ** 3
    for method in ("holm", "bonferroni", "fdr_bh"):
        expected = np.column_stack([multipletests(p[:, j], method=method)[1] for j in range(12)])
        np.testing.assert_allclose(power.adjust_columns(p, method), expected, rtol=1e-12)
    p[1, 3] = np.nan
    adjusted = power.adjust_columns(p, "holm")
    assert np.isnan(adjusted[1, 3])
    np.testing.assert_allclose(
        adjusted[[0, 2, 3, 4], 3], multipletests(p[[0, 2, 3, 4], 3], method="holm")[1]
    )
    np.testing.assert_array_equal(power.adjust_columns(p, "none"), p)
