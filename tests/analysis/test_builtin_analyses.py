"""The built-in analyses on sweeps with planted effects: right size, right sign, right rate."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.formula.api import ols
from statsmodels.stats.anova import anova_lm
from statsmodels.stats.multitest import multipletests

from analyses.epoch_dynamics import EpochDynamics
from analyses.noise_baseline import NoiseBaseline
from analyses.runs_needed import RunsNeeded
from analyses.signal_effects import SignalEffects
from bench.simulation.synthetic import runset_from_arrays
from lightning_app.analysis import AnalysisContext, Selection, build_context
from lightning_app.analysis.decision import DecisionRule
from lightning_app.analysis.execution import check_result
from lightning_app.analysis.factorial import ErrorTerm
from lightning_app.errors import UserError
from lightning_app.runs.runset import RunSet

PERMUTATIONS = 1999


@pytest.fixture(scope="module")
def prepared(planted: RunSet) -> tuple[AnalysisContext, RunSet]:
    return build_context(planted, Selection("noise", "signal", permutations=PERMUTATIONS))


def _summary(analysis, prepared):
    context, runs = prepared
    result = analysis.run(runs, context)
    summary = check_result(result)
    json.dumps(summary, allow_nan=False)  # report.json can hold it
    return summary, result


def test_noise_baseline_numbers_are_the_noise_runs(
    prepared: tuple[AnalysisContext, RunSet],
) -> None:
    context, _ = prepared
    summary, result = _summary(NoiseBaseline(), prepared)
    final = context.noise[:, -1]
    assert summary["final_epoch"] == 7
    assert summary["final_mean"] == pytest.approx(final.mean())
    assert summary["final_std"] == pytest.approx(final.std(ddof=1))
    assert summary["final_range"] == pytest.approx(np.ptp(final))
    first = summary["per_epoch"][0]
    assert set(first) == {"epoch", "mean", "std", "min", "max"}
    assert first["min"] == pytest.approx(context.noise[:, 0].min())
    layers = summary["params"]["model.num_layers"]
    null = context.noise_null("model.num_layers")
    assert layers["noise_effect"] == pytest.approx(np.median(null.distribution))
    assert layers["group_sizes"] == [24, 24]
    assert layers["permutations"] == PERMUTATIONS and not layers["with_replacement"]
    # Two groups of 24 of runs with std s: |difference of means| is half-normal, median 0.674 sd.
    expected = sps.halfnorm.median(scale=final.std(ddof=0) * math.sqrt(2 / 24))
    assert layers["noise_effect"] == pytest.approx(expected, rel=0.1)
    assert {f.name for f in result.figures} == {"band", "null"}


def test_signal_effects_find_planted_effects_with_size_and_sign(
    prepared: tuple[AnalysisContext, RunSet],
) -> None:
    summary, _ = _summary(SignalEffects(), prepared)
    params = summary["params"]
    hidden, batch, layers = (
        params[k] for k in ("model.hidden_size", "data.batch_size", "model.num_layers")
    )
    # Planted ranges 1.5 and 0.3 points; each group mean has std 0.15 / sqrt(12 or 16) points.
    assert hidden["effect"] == pytest.approx(0.015, abs=0.0015)
    assert batch["effect"] == pytest.approx(0.003, abs=0.0012)
    assert (hidden["best_value"], hidden["worst_value"]) == ("80", "10")
    assert (batch["best_value"], batch["worst_value"]) == ("64", "256")
    assert list(hidden["means"]) == ["10", "20", "40", "80"]
    assert np.all(np.diff(list(hidden["means"].values())) > 0)
    assert hidden["verdict"] == "signal" and hidden["ratio"] > 10
    assert batch["verdict"] in {"signal", "weak"} and batch["p_adjusted"] < 0.05
    assert layers["verdict"] == "noise" and layers["p_adjusted"] >= 0.05
    assert summary["epoch"] == 7 and len(hidden["effect_per_epoch"]) == 8


def test_signal_effect_numbers_cross_checked(prepared: tuple[AnalysisContext, RunSet]) -> None:
    """Description from the group means and noise splits; the test from statsmodels' type II
    table of the additive model over all three parameters; Holm from multipletests."""
    context, _ = prepared
    summary, _ = _summary(SignalEffects(), prepared)
    y = context.signal[:, -1]
    frame = pd.DataFrame(
        {"y": y, **{f"p{i}": p.codes for i, p in enumerate(context.params.values())}}
    )
    table = anova_lm(ols("y ~ C(p0) + C(p1) + C(p2)", frame).fit(), typ=2)
    names = list(summary["params"])
    assert names == list(context.params)
    for i, name in enumerate(names):
        res = summary["params"][name]
        param = context.params[name]
        groups = [y[param.codes == j] for j in range(param.k)]
        means = np.array([g.mean() for g in groups])
        assert res["effect"] == pytest.approx(np.ptp(means))
        # A full balanced grid: adjusting for the other parameters changes nothing.
        assert res["adjusted_effect"] == pytest.approx(np.ptp(means))
        null = context.noise_null(name).distribution
        assert res["noise_effect"] == pytest.approx(np.median(null))
        assert res["ratio"] == pytest.approx(np.ptp(means) / np.median(null))
        row = table.loc[f"C(p{i})"]
        assert res["f_statistic"] == pytest.approx(row["F"])
        assert res["p_value"] == pytest.approx(row["PR(>F)"])
        assert (res["df_num"], res["df_denom"]) == (row["df"], table.loc["Residual", "df"])
        f, df1 = row["F"], row["df"]
        assert res["partial_omega_squared"] == pytest.approx(
            df1 * (f - 1) / (df1 * (f - 1) + len(y))
        )
    holm = multipletests([summary["params"][n]["p_value"] for n in names], method="holm")[1]
    for name, p in zip(names, holm, strict=True):
        assert summary["params"][name]["p_adjusted"] == pytest.approx(p)
    assert summary["error"] == "signal" and summary["error_df"] == table.loc["Residual", "df"]


@pytest.mark.parametrize("error", ["noise", "pooled"])
def test_error_terms_divide_by_the_noise_runs(
    prepared: tuple[AnalysisContext, RunSet], error: ErrorTerm
) -> None:
    context, _ = prepared
    summary, _ = _summary(SignalEffects(error=error, correction="none"), prepared)
    y, noise = context.signal[:, -1], context.noise[:, -1]
    frame = pd.DataFrame(
        {"y": y, **{f"p{i}": p.codes for i, p in enumerate(context.params.values())}}
    )
    fit = ols("y ~ C(p0) + C(p1) + C(p2)", frame).fit()
    table = anova_lm(fit, typ=2)
    noise_ss = float(((noise - noise.mean()) ** 2).sum())
    if error == "noise":
        mse, df2 = noise_ss / (len(noise) - 1), len(noise) - 1
    else:
        mse = (fit.ssr + noise_ss) / (fit.df_resid + len(noise) - 1)
        df2 = fit.df_resid + len(noise) - 1
    for i, res in enumerate(summary["params"].values()):
        row = table.loc[f"C(p{i})"]
        f = row["sum_sq"] / row["df"] / mse
        assert res["f_statistic"] == pytest.approx(f)
        assert res["p_value"] == pytest.approx(sps.f.sf(f, row["df"], df2))
        assert res["p_adjusted"] == res["p_value"]
    assert summary["error_df"] == df2


def test_interactions_are_tested_when_replicates_allow(
    prepared: tuple[AnalysisContext, RunSet],
) -> None:
    context, _ = prepared
    summary, result = _summary(SignalEffects(), prepared)
    y = context.signal[:, -1]
    frame = pd.DataFrame(
        {"y": y, **{f"p{i}": p.codes for i, p in enumerate(context.params.values())}}
    )
    table = anova_lm(ols("y ~ (C(p0) + C(p1) + C(p2)) ** 2", frame).fit(), typ=2)
    rows = {r["term"]: r for r in summary["interactions"]}
    names = list(context.params)
    assert set(rows) == {f"{a}:{b}" for i, a in enumerate(names) for b in names[i + 1 :]}
    for (i, a), (j, b) in itertools.combinations(enumerate(names), 2):
        expected = table.loc[f"C(p{i}):C(p{j})"]
        assert rows[f"{a}:{b}"]["f_statistic"] == pytest.approx(expected["F"])
        assert rows[f"{a}:{b}"]["p_value"] == pytest.approx(expected["PR(>F)"])
    # Nothing interacts in the planted data.
    assert all(r["p_adjusted"] >= 0.05 for r in rows.values())
    assert any(t.title.startswith("Two-way interactions") for t in result.tables)


def test_variance_check_compares_replicates_with_noise_runs(
    prepared: tuple[AnalysisContext, RunSet],
) -> None:
    context, _ = prepared
    summary, result = _summary(SignalEffects(), prepared)
    check = summary["variance_check"]
    y, noise = context.signal[:, -1], context.noise[:, -1]
    cells = pd.Series(y).groupby([p.codes for p in context.params.values()])
    within = float(cells.transform(lambda g: g - g.mean()).pow(2).sum())
    df = len(y) - cells.ngroups
    assert check["source"] == "replicates" and check["signal_df"] == df
    ratio = (within / df) / noise.var(ddof=1)
    assert check["variance_ratio"] == pytest.approx(ratio)
    one_sided = sps.f.sf(ratio, df, len(noise) - 1)
    assert check["p_value"] == pytest.approx(2 * min(one_sided, 1 - one_sided))
    assert any(
        f.startswith("Seed noise check: the signal runs vary as much") for f in result.findings
    )


def test_a_noisier_signal_sweep_is_flagged_and_the_default_stays_calibrated() -> None:
    """Seed noise twice as large away from the noise sweep's configuration: the check says so,
    tells a user of the noise error term that its tests are too liberal."""
    rng = np.random.default_rng(4)
    configs = [
        {"model.hidden_size": h, "data.batch_size": b}
        for h in (16, 32, 64)
        for b in (50, 100)
        for _ in range(4)
    ]
    runs = runset_from_arrays(
        rng.normal(0.9, 0.01, (24, 2)), rng.normal(0.9, 0.025, (len(configs), 2)), configs
    )
    context, used = build_context(runs, Selection("noise", "signal", permutations=199))
    noise_error = SignalEffects(error="noise").run(used, context)
    check = noise_error.summary["variance_check"]
    assert check["variance_ratio"] > 2 and check["p_value"] < 0.05
    assert any(
        "too liberal" in f and "--signal-effects.error signal" in f for f in noise_error.findings
    )
    default = SignalEffects().run(used, context)
    assert any("already hold it" in f for f in default.findings)


@pytest.mark.parametrize(
    ("p", "ratio", "expected"),
    [
        (0.2, 50.0, "noise"),
        (0.01, 6.0, "signal"),
        (0.01, 4.9, "weak"),
        (0.01, None, "signal"),
        (0.05, 10.0, "noise"),
    ],
)
def test_verdict_thresholds(p: float, ratio: float | None, expected: str) -> None:
    assert DecisionRule(alpha=0.05, signal_ratio=5.0).verdict(p, ratio) == expected


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="alpha"):
        SignalEffects(alpha=1.5)
    with pytest.raises(ValueError, match="signal_ratio"):
        SignalEffects(signal_ratio=0.5)
    with pytest.raises(ValueError, match="error must be one of"):
        SignalEffects(error="residual")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="power"):
        RunsNeeded(power=1.0)
    with pytest.raises(ValueError, match="min_effect"):
        RunsNeeded(min_effect=-0.01)


def test_runs_needed_plans_the_rule_signal_effects_applies(
    prepared: tuple[AnalysisContext, RunSet],
) -> None:
    """The count is the smallest whose F power at Holm's alpha / m, with the signal residuals'
    df at that count, reaches the target; planned on the bias-corrected effect; the whole rule
    simulated there finds the effect about as often as planned."""
    context, _ = prepared
    summary, result = _summary(RunsNeeded(min_effect=0.002, resamples=600), prepared)
    signal_summary, _ = _summary(SignalEffects(), prepared)
    m = len(context.params)
    model_df = sum(p.k - 1 for p in context.params.values())
    n = len(context.signal_ids)
    assert summary["error"] == "signal" and summary["alpha_per_test"] == pytest.approx(0.05 / m)
    assert summary["error_sd"] == pytest.approx(signal_summary["error_sd"])
    sigma = summary["error_sd"]
    for name, plan in summary["params"].items():
        k = context.params[name].k
        res = signal_summary["params"][name]
        assert set(plan) >= {"effect", "runs_per_group", "alpha", "power"}
        assert plan["effect"] == pytest.approx(res["adjusted_effect"])
        # Bias correction by hand: the unbiased noncentrality of the observed F, per run.
        f, df2 = res["f_statistic"], res["df_denom"]
        f2 = max(0.0, (k - 1) * (f * (df2 - 2) / df2 - 1) / n)
        assert plan["cohens_f_corrected"] == pytest.approx(math.sqrt(f2))
        assert plan["effect_corrected"] <= plan["effect"]
        r = plan["runs_per_group"]
        if r is None:
            assert f2 == 0 or _power(f2, k, 100_000, model_df, m) < 0.8
            continue
        assert _power(f2, k, r, model_df, m) >= 0.8 > _power(f2, k, r - 1, model_df, m)
        assert plan["achieved_power"] == pytest.approx(_power(f2, k, r, model_df, m))
        if plan["simulated_power"] is not None:
            # Holm is at least as powerful as its first step, so the simulation is not lower.
            assert plan["simulated_power"] >= plan["achieved_power"] - 0.06
        assert plan["runs_per_group_signal"] >= r
    assert summary["params"]["model.hidden_size"]["runs_per_group"] <= 3
    assert summary["params"]["model.num_layers"]["runs_per_group"] is None  # no effect planted
    planned = summary["min_effect"]["params"]["model.hidden_size"]
    assert planned["cohens_f_corrected"] == pytest.approx(0.002 / (sigma * math.sqrt(2 * 4)))
    assert [f.name for f in result.figures] == ["power"]


def test_runs_needed_follows_signal_effects_options(
    prepared: tuple[AnalysisContext, RunSet],
) -> None:
    """An option not given to runs-needed is the context's decision rule's (signal-effects'):
    its error pooled alone plans for the pooled error term, exactly as runs-needed's own error
    pooled does; an explicit runs-needed option still wins, with a note that the counts are for
    another rule."""
    context, runs = prepared
    pooled = (dataclasses.replace(context, rule=DecisionRule(error="pooled", alpha=0.01)), runs)
    followed, _ = _summary(RunsNeeded(resamples=0), pooled)
    explicit, _ = _summary(RunsNeeded(resamples=0, error="pooled", alpha=0.01), prepared)
    default, _ = _summary(RunsNeeded(resamples=0), prepared)
    assert followed["error"] == explicit["error"] == "pooled" and default["error"] == "signal"
    assert followed["alpha"] == 0.01 and followed["as_signal_effects"] == [
        "alpha",
        "correction",
        "error",
        "signal_ratio",
    ]
    assert followed["error_sd"] == explicit["error_sd"] != default["error_sd"]
    assert followed["params"] == explicit["params"] != default["params"]
    own, result = _summary(RunsNeeded(resamples=0, error="signal"), pooled)
    assert own["error"] == "signal" and own["alpha"] == 0.01
    assert own["params"] != default["params"]  # alpha still followed
    assert any("error differ from signal-effects'" in note for note in result.notes)
    with pytest.raises(UserError, match="--signal-effects: alpha"):
        DecisionRule.from_options({"alpha": 2.0, "unrelated": 1})


def _power(f2: float, k: int, r: int, model_df: int, m: int) -> float:
    """Noncentral F power by scipy directly: df (k - 1, r k - 1 - model_df), alpha / m."""
    df2 = r * k - 1 - model_df
    if df2 < 1:
        return 0.0
    crit = sps.f.isf(0.05 / m, k - 1, df2)
    return float(sps.ncf.sf(crit, k - 1, df2, r * k * f2))


def test_epoch_dynamics_sees_the_early_spread(slow_start: RunSet) -> None:
    context, runs = build_context(slow_start, Selection("noise", "signal", permutations=99))
    summary, _ = _summary(EpochDynamics(), (context, runs))
    rows = summary["per_epoch"]
    assert [r["epoch"] for r in rows] == list(range(10))
    for j, row in enumerate(rows):
        sig, noi = context.signal[:, j], context.noise[:, j]
        assert row["range_ratio"] == pytest.approx(np.ptp(sig) / np.ptp(noi))
        assert row["std_ratio"] == pytest.approx(sig.std(ddof=1) / noi.std(ddof=1))
        assert row["p_value"] == pytest.approx(sps.levene(sig, noi, center="median").pvalue)
    # All runs start alike; hidden size changes the learning speed, so the signal runs fan out
    # in the first epochs and partly close up as the slow ones catch up.
    ratios = [r["range_ratio"] for r in rows]
    assert ratios[0] < 2 and 0 not in summary["significant_epochs"]
    assert ratios[1] > 5 and 1 in summary["significant_epochs"]
    assert ratios[-1] < max(ratios) / 1.5
    adjusted = multipletests([r["p_value"] for r in rows], method="holm")[1]
    np.testing.assert_allclose([r["p_adjusted"] for r in rows], adjusted)
