"""The calibrated test's model code against statsmodels' and scipy's own tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.formula.api import ols
from statsmodels.stats.anova import anova_lm

from bench.simulation.calibration import CalibrationDesign
from lightning_app.analysis import factorial


@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.SingularMatrixWarning")
@pytest.mark.parametrize("layout", ["grid", "unbalanced", "random"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_type2_table_matches_statsmodels_additive_and_two_way(layout: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = CalibrationDesign(10, 4, layout, replicates=3).signal_codes(rng)  # type: ignore[arg-type]
    c = np.arange(len(a)) % 2
    y = 0.3 * a + 0.2 * (b == 1) + 0.4 * a * c + rng.normal(size=len(a))
    frame = pd.DataFrame({"y": y, "a": a, "b": b, "c": c})
    factors = {"a": a, "b": b, "c": c}
    compared = 0
    for formula, terms in (
        ("y ~ C(a) + C(b) + C(c)", factorial.main_terms(factors)),
        ("y ~ (C(a) + C(b) + C(c)) ** 2", factorial.two_way_terms(factors)),
    ):
        fit = ols(formula, frame).fit()
        if np.linalg.matrix_rank(fit.model.exog) < fit.model.exog.shape[1]:
            continue  # an empty cell: statsmodels' type II is not defined for rank-deficient fits
        compared += 1
        expected = anova_lm(fit, typ=2)
        table = factorial.type2_table(terms, y)
        tests = factorial.f_tests(table, np.zeros(1), 0, "signal")
        for i, term in enumerate(table.terms):
            row = expected.loc[":".join(f"C({f})" for f in term.split(":"))]
            assert table.ss[i, 0] == pytest.approx(row["sum_sq"], rel=1e-9, abs=1e-12)
            assert table.df[i] == row["df"]
            assert tests.pvalue[i, 0] == pytest.approx(row["PR(>F)"], rel=1e-8)
        assert table.rss[0] == pytest.approx(fit.ssr)
        assert table.df_resid == fit.df_resid
    assert compared == 2 or (layout == "random" and compared == 1)


def test_many_responses_at_once_equal_one_at_a_time() -> None:
    rng = np.random.default_rng(3)
    a, b = CalibrationDesign(10, 3, "random").signal_codes(rng)
    y = rng.normal(size=(len(a), 5))
    terms = factorial.main_terms({"a": a, "b": b})
    together = factorial.type2_table(terms, y)
    for j in range(5):
        alone = factorial.type2_table(terms, y[:, j])
        np.testing.assert_allclose(together.ss[:, j], alone.ss[:, 0])
        assert together.rss[j] == pytest.approx(alone.rss[0])


def test_one_parameter_is_scipys_one_way_anova() -> None:
    rng = np.random.default_rng(4)
    codes = np.repeat(np.arange(4), [3, 5, 1, 6])  # a single-run group is fine
    y = rng.normal(size=len(codes)) + 0.5 * codes
    table = factorial.type2_table(factorial.main_terms({"x": codes}), y)
    tests = factorial.f_tests(table, np.zeros(1), 0, "signal")
    expected = sps.f_oneway(*(y[codes == j] for j in range(4)))
    assert tests.statistic[0, 0] == pytest.approx(expected.statistic)
    assert tests.pvalue[0, 0] == pytest.approx(expected.pvalue)


def test_error_terms_by_hand() -> None:
    rng = np.random.default_rng(5)
    codes = np.repeat(np.arange(3), 4)
    y = rng.normal(size=12) + 0.4 * codes
    noise = rng.normal(size=7)
    table = factorial.type2_table(factorial.main_terms({"x": codes}), y)
    noise_ss, noise_df = factorial.noise_sum_of_squares(noise)
    assert noise_df == 6 and noise_ss[0] == pytest.approx(6 * noise.var(ddof=1))
    ss_x = table.ss[0, 0]
    for error, mse, df in (
        ("signal", table.rss[0] / 9, 9),
        ("noise", noise.var(ddof=1), 6),
        ("pooled", (table.rss[0] + noise_ss[0]) / 15, 15),
    ):
        tests = factorial.f_tests(table, noise_ss, noise_df, error)  # type: ignore[arg-type]
        f = ss_x / 2 / mse
        assert tests.statistic[0, 0] == pytest.approx(f)
        assert tests.pvalue[0, 0] == pytest.approx(sps.f.sf(f, 2, df))
        assert tests.df_denom == df
        assert tests.partial_omega_squared[0, 0] == pytest.approx(2 * (f - 1) / (2 * (f - 1) + 12))


def test_level_effects_are_least_squares_means_up_to_a_constant() -> None:
    """In an unbalanced design the range of the level coefficients is the range of the LS means
    (each value's prediction averaged over the other parameter's values)."""
    rng = np.random.default_rng(6)
    a, b = CalibrationDesign(10, 3, "unbalanced").signal_codes(rng)
    y = np.array([0.0, 0.2, 0.5])[a] + np.array([0.0, 1.0, 2.0])[b] + 0.01 * rng.normal(size=len(a))
    table = factorial.type2_table(factorial.main_terms({"a": a, "b": b}), y)
    fit = ols("y ~ C(a) + C(b)", pd.DataFrame({"y": y, "a": a, "b": b})).fit()
    grid = pd.DataFrame([(i, j) for i in range(3) for j in range(3)], columns=["a", "b"])
    ls_means = fit.predict(grid).to_numpy().reshape(3, 3).mean(axis=1)
    effects = factorial.level_effects(table, "a")[:, 0]
    np.testing.assert_allclose(effects - effects[0], ls_means - ls_means[0], atol=1e-10)
    # Raw group means mix in b's effect here; the adjusted range recovers the planted 0.5.
    raw = np.ptp([y[a == j].mean() for j in range(3)])
    assert np.ptp(effects) == pytest.approx(0.5, abs=0.1) and abs(raw - 0.5) > abs(
        np.ptp(effects) - 0.5
    )


def test_variance_check_uses_replicates_or_residuals() -> None:
    rng = np.random.default_rng(7)
    codes = np.repeat(np.arange(4), 3)
    y = rng.normal(size=12) * 2.0
    noise = rng.normal(size=20)
    table = factorial.type2_table(factorial.main_terms({"x": codes}), y)
    noise_ss, noise_df = factorial.noise_sum_of_squares(noise)
    with_replicates = factorial.variance_check(y, codes, table, noise_ss, noise_df)
    assert with_replicates is not None and with_replicates.source == "replicates"
    within = sum(((y[codes == j] - y[codes == j].mean()) ** 2).sum() for j in range(4))
    assert with_replicates.variance_ratio == pytest.approx(within / 8 / noise.var(ddof=1))
    one_sided = sps.f.sf(with_replicates.variance_ratio, 8, 19)
    assert with_replicates.pvalue == pytest.approx(2 * min(one_sided, 1 - one_sided))
    # Every run its own configuration: the additive model's residuals stand in.
    unique = np.arange(12)
    residual = factorial.variance_check(y, unique, table, noise_ss, noise_df)
    assert residual is not None and residual.source == "residuals"
    assert residual.variance_ratio == pytest.approx(table.rss[0] / 8 / noise.var(ddof=1))


def test_confounded_parameters_are_found() -> None:
    a = np.repeat(np.arange(4), 3)
    nested = a // 2  # each value of a fixes b's
    crossed = np.tile(np.arange(3), 4)
    assert factorial.confounded(factorial.main_terms({"a": a, "b": crossed}), 12) == []
    assert factorial.confounded(factorial.main_terms({"a": a, "b": nested}), 12) == [("a", "b")]
    # Three parameters that only the set of all three confounds: c = a xor b.
    x = np.tile([0, 0, 1, 1], 3)
    z = np.tile([0, 1, 0, 1], 3)
    terms = factorial.main_terms({"x": x, "z": z, "c": (x + z) % 2, "d": np.arange(12) % 3})
    assert factorial.confounded(terms, 12) == []  # xor is not linear: separable
    w = np.tile([0, 1, 1, 2], 3)  # w = x + z: not a pair, but determined by the two
    found = factorial.confounded(factorial.main_terms({"x": x, "z": z, "w": w}), 12)
    assert (found and set(found[0]) >= {"x", "z", "w"}) or found == [("x", "w"), ("z", "w")]


def test_signal_error_falls_back_to_noise_without_residual_df() -> None:
    codes = np.arange(4)
    model = factorial.signal_model(np.array([0.1, 0.2, 0.3, 0.5]), {"x": codes}, np.arange(5.0))
    error, why = model.error_for("signal")
    assert error == "noise" and why is not None and "no residual" in why
    assert model.error_for("pooled") == ("pooled", None)
    assert model.variance is None and model.interactions is None
