"""The built-in analyses on sweeps with planted effects: right size, right sign, right rate."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import FTestAnovaPower

from analyses.epoch_dynamics import EpochDynamics
from analyses.noise_baseline import NoiseBaseline
from analyses.runs_needed import RunsNeeded
from analyses.signal_effects import SignalEffects, verdict
from lightning_app.analysis import AnalysisContext, Selection, build_context, stats
from lightning_app.analysis.runner import check_result
from lightning_app.analysis.synthetic import runset_from_arrays
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
    context, _ = prepared
    summary, _ = _summary(SignalEffects(classical_test="anova"), prepared)
    y = context.signal[:, -1]
    names = list(summary["params"])
    raw = []
    for name in names:
        res = summary["params"][name]
        param = context.params[name]
        groups = [y[param.codes == j] for j in range(param.k)]
        means = np.array([g.mean() for g in groups])
        assert res["effect"] == pytest.approx(np.ptp(means))
        null = context.noise_null(name).distribution
        assert res["noise_effect"] == pytest.approx(np.median(null))
        assert res["ratio"] == pytest.approx(np.ptp(means) / np.median(null))
        expected_p = (1 + np.sum(null >= np.ptp(means))) / (1 + len(null))
        assert res["p_value"] == pytest.approx(expected_p)
        anova = sps.f_oneway(*groups)
        assert res["classical"]["statistic"] == pytest.approx(anova.statistic)
        assert res["classical"]["p_value"] == pytest.approx(anova.pvalue)
        raw.append(res["p_value"])
    holm = multipletests(raw, method="holm")[1]
    for name, p in zip(names, holm, strict=True):
        assert summary["params"][name]["p_adjusted"] == pytest.approx(p)


def test_kruskal_option(prepared: tuple[AnalysisContext, RunSet]) -> None:
    context, _ = prepared
    summary, _ = _summary(SignalEffects(classical_test="kruskal", correction="none"), prepared)
    param = context.params["data.batch_size"]
    y = context.signal[:, -1]
    kw = sps.kruskal(*(y[param.codes == j] for j in range(param.k)))
    res = summary["params"]["data.batch_size"]
    assert res["classical"]["test"] == "kruskal"
    assert res["classical"]["p_value"] == pytest.approx(kw.pvalue)
    assert res["classical"]["effect_size"] == pytest.approx(kw.statistic / (len(y) - 1))
    assert res["p_adjusted"] == res["p_value"]


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
    assert verdict(p, ratio, alpha=0.05, signal_ratio=5.0) == expected


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="alpha"):
        SignalEffects(alpha=1.5)
    with pytest.raises(ValueError, match="signal_ratio"):
        SignalEffects(signal_ratio=0.5)
    with pytest.raises(ValueError, match="power"):
        RunsNeeded(power=1.0)
    with pytest.raises(ValueError, match="min_effect"):
        RunsNeeded(min_effect=-0.01)


def test_false_positive_rate_under_the_null_is_near_alpha() -> None:
    """300 simulated studies without any effect: the permutation test rejects ~5% of them."""
    rng = np.random.default_rng(11)
    n_sims, alpha = 300, 0.05
    noise = rng.normal(0.97, 0.002, size=(n_sims, 30))
    signal = rng.normal(0.97, 0.002, size=(n_sims, 24))
    codes = np.repeat(np.arange(3), 8)
    effects = stats.group_mean_effect(signal.T, codes, 3)  # all studies at once
    pvalues = np.array(
        [
            stats.noise_null(noise[i], (8, 8, 8), 199, np.random.default_rng(i)).p_value(effects[i])
            for i in range(n_sims)
        ]
    )
    rate = float(np.mean(pvalues < alpha))
    # Binomial(300, 0.05): 3 standard deviations are 0.038.
    assert abs(rate - alpha) < 0.038, rate
    # and the p-values are uniform, not just right at 5%.
    assert sps.kstest(pvalues, "uniform").pvalue > 0.001


def test_a_planted_null_stays_insignificant_across_the_whole_pipeline() -> None:
    rng = np.random.default_rng(5)
    configs = [
        {"model.num_layers": v, "data.batch_size": b}
        for v in (2, 3, 4)
        for b in (64, 128)
        for _ in range(4)
    ]
    runs = runset_from_arrays(
        rng.normal(0.97, 0.002, (40, 3)), rng.normal(0.97, 0.002, (len(configs), 3)), configs
    )
    context, used = build_context(runs, Selection("noise", "signal", permutations=999))
    result = SignalEffects().run(used, context)
    for res in result.summary["params"].values():
        assert res["verdict"] == "noise", res


def test_runs_needed_matches_statsmodels(prepared: tuple[AnalysisContext, RunSet]) -> None:
    context, _ = prepared
    summary, result = _summary(RunsNeeded(min_effect=0.002, resamples=600), prepared)
    sigma = context.noise[:, -1].std(ddof=1)
    assert summary["noise_std"] == pytest.approx(sigma)
    power = FTestAnovaPower()
    for name, plan in summary["params"].items():
        param = context.params[name]
        means = stats.group_means(context.signal[:, -1], param.codes, param.k)
        f = np.std(means) / sigma
        assert plan["cohens_f"] == pytest.approx(f)
        n = plan["runs_per_group"]
        assert set(plan) >= {"effect", "runs_per_group", "alpha", "power"}
        if n is None:
            assert power.power(f, 100_000 * param.k, 0.05, k_groups=param.k) < 0.8
            continue
        assert power.power(f, n * param.k, 0.05, k_groups=param.k) >= 0.8
        if n > 2:
            assert power.power(f, (n - 1) * param.k, 0.05, k_groups=param.k) < 0.8
        if plan["simulated_power"] is not None:
            assert plan["simulated_power"] == pytest.approx(plan["achieved_power"], abs=0.08)
    # The big effect needs few runs, the null parameter very many.
    assert summary["params"]["model.hidden_size"]["runs_per_group"] <= 3
    planned = summary["min_effect"]["params"]["model.hidden_size"]
    f_min = 0.002 / (sigma * math.sqrt(2 * 4))
    assert planned["cohens_f"] == pytest.approx(f_min)
    total = power.solve_power(effect_size=f_min, alpha=0.05, power=0.8, k_groups=4)
    assert planned["runs_per_group"] == math.ceil(total / 4)
    assert [f.name for f in result.figures] == ["power"]


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
