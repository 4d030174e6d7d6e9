"""The sequential rule of adaptive replicates: spending, per-look decisions, validity."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.formula.api import ols
from statsmodels.stats.anova import anova_lm
from statsmodels.stats.multitest import multipletests

from bench.simulation import planted_adaptive
from bench.simulation.calibration import binomial_halfwidth
from lightning_app import adaptive_record
from lightning_app.analysis import sequential
from lightning_app.analysis.command import Prepared, analyze
from lightning_app.analysis.context import Selection
from lightning_app.analysis.report import render_markdown
from lightning_app.runs.runset import RunSet


@pytest.mark.parametrize("kind", sequential.SPENDINGS)
@pytest.mark.parametrize(
    "fractions", [(1.0,), (0.5, 1.0), (1 / 3, 2 / 3, 1.0), (0.2, 0.3, 0.7, 1.0), (0.1, 1.0)]
)
def test_spending_rises_to_alpha_and_the_look_levels_sum_to_it(kind, fractions) -> None:
    t = np.linspace(0, 1, 101)
    spent = sequential.spending(t, 0.05, kind)
    assert spent[0] == 0 and math.isclose(spent[-1], 0.05, rel_tol=1e-9)
    assert np.all(np.diff(spent) >= 0)
    levels = sequential.look_levels(fractions, 0.05, kind)
    assert len(levels) == len(fractions) and np.all(levels > 0)
    assert math.isclose(levels.sum(), 0.05, rel_tol=1e-12)


def test_obrien_fleming_keeps_alpha_for_the_last_look_and_pocock_spends_early() -> None:
    obf = sequential.look_levels((1 / 3, 2 / 3, 1), 0.05, "obrien-fleming")
    pocock = sequential.look_levels((1 / 3, 2 / 3, 1), 0.05, "pocock")
    assert obf[0] < 0.001 < pocock[0] and obf[-1] > pocock[-1]
    # Lan-DeMets' O'Brien-Fleming form, by hand: 2 (1 - Phi(z_{alpha/2} / sqrt(t))).
    assert math.isclose(
        obf[0], 2 * sps.norm.sf(sps.norm.isf(0.025) / math.sqrt(1 / 3)), rel_tol=1e-12
    )


@pytest.mark.parametrize("fractions", [(), (0.5, 0.5, 1.0), (0.5, 0.9), (0.0, 1.0)])
def test_look_fractions_must_increase_to_one(fractions) -> None:
    with pytest.raises(ValueError, match="fractions"):
        sequential.look_levels(fractions, 0.05)


def test_equal_rounds_end_at_the_budget() -> None:
    assert sequential.equal_rounds(6, 2) == (1 / 3, 2 / 3, 1.0)
    assert sequential.equal_rounds(5, 2) == (0.4, 0.8, 1.0)
    assert sequential.equal_rounds(3, 3) == (1.0,)


def test_a_look_is_signal_effects_test_holm_adjusted_and_decided_at_its_level() -> None:
    rng = np.random.default_rng(3)
    planted = planted_adaptive.Planted({"a": 3, "b": 2, "c": 4}, seeds=3, per_round=1)
    codes = planted.codes(2)
    y = 0.4 * codes["a"] + 0.1 * codes["c"] + rng.standard_normal(len(codes["a"]))
    design = sequential.Design(0.05, "obrien-fleming", (0.5, 1.0))
    look = sequential.look(codes, y, 0.01, design, budget_runs=planted.configurations * 3)
    frame = pd.DataFrame({"y": y, **codes})
    table = anova_lm(ols("y ~ C(a) + C(b) + C(c)", frame).fit(), typ=2)
    p = table["PR(>F)"].to_numpy()[:3]
    np.testing.assert_allclose(look.pvalue[:, 0], p, rtol=1e-9)
    holm = multipletests(p, method="holm")[1]
    np.testing.assert_allclose(look.pvalue_adjusted[:, 0], holm, rtol=1e-9)
    np.testing.assert_array_equal(look.significant[:, 0], holm < 0.01)
    assert not np.any(look.significant & look.futile)


def test_the_futility_bound_is_an_upper_confidence_limit_of_the_noncentrality() -> None:
    f = np.array([0.1, 1.0, 2.5, 8.0])
    assert sps.f.cdf(0.1, 3, 20) < 0.1
    upper = sequential.noncentrality_upper(f, 3, 20, 0.9)
    assert upper[0] == 0.0  # F this small is unlikely (< 10 %) even with no effect
    cdf = sps.ncf.cdf(f[1:], 3, 20, upper[1:])
    np.testing.assert_allclose(cdf, 0.1, atol=1e-6)


def test_looking_every_round_at_alpha_inflates_false_positives_and_the_rule_does_not() -> None:
    planted = planted_adaptive.Planted({"target": 3, "other": 3}, seeds=6, per_round=1)
    design = sequential.Design(0.05, "obrien-fleming", sequential.equal_rounds(6, 1))
    studies = 2000
    result = planted_adaptive.simulate_adaptive(
        planted, 0.0, design, studies, np.random.default_rng(0)
    )
    fpr = float(np.mean(result.first_significant[0] > 0))
    naive = float(np.mean(result.naive_first[0] > 0))
    assert fpr <= 0.05 + binomial_halfwidth(0.05, studies)
    assert naive > 0.08  # six looks at 0.05 each
    assert set(np.unique(result.stop_look)) <= set(range(1, 7))
    np.testing.assert_array_equal(result.runs, 9 * result.stop_look)


def test_fixed_runs_at_power_interpolates_between_seed_counts() -> None:
    power = np.array([np.nan, 0.4, 0.6, 0.9])
    assert planted_adaptive.fixed_runs_at_power(power, 0.5, 10) == pytest.approx(25.0)
    assert planted_adaptive.fixed_runs_at_power(power, 0.9, 10) == pytest.approx(40.0)
    assert math.isnan(planted_adaptive.fixed_runs_at_power(power, 0.95, 10))


def record() -> dict:
    return {
        "format": 1,
        "name": "adaptive-signal",
        "design": {
            "alpha": 0.05,
            "spending": "obrien-fleming",
            "looks": 3,
            "seeds_per_round": 2,
            "seed_key": "seed_everything",
            "max_runs": 36,
        },
        "looks": [
            {
                "look": 1,
                "runs": 12,
                "level": 0.000687,
                "continue": True,
                "params": {"model.hidden_size": {"p_adjusted": 0.02, "significant": False}},
            },
            {
                "look": 2,
                "runs": 24,
                "level": 0.0157,
                "continue": False,
                "params": {"model.hidden_size": {"p_adjusted": 0.001, "significant": True}},
            },
        ],
        "decisions": {
            "model.hidden_size": {
                "status": "significant",
                "look": 2,
                "text": "significant at look 2",
            }
        },
        "stopped": {
            "look": 2,
            "runs": 24,
            "code": "decided",
            "reason": "every parameter is decided",
        },
    }


def test_analyze_finds_the_adaptive_record_of_the_signal_sweep(tmp_path: Path) -> None:
    folder = tmp_path / "sweeps" / "adaptive-signal"
    folder.mkdir(parents=True)
    (folder / adaptive_record.FILE_NAME).write_text(json.dumps(record()))
    for source in (tmp_path / "sweeps", folder):
        found = adaptive_record.find(str(source), "adaptive-signal")
        assert found is not None and found[1]["stopped"]["look"] == 2
    assert adaptive_record.find(str(tmp_path / "sweeps"), "signal") is None
    assert adaptive_record.find(str(tmp_path / "runs.csv"), "adaptive-signal") is None


def test_the_report_says_how_the_adaptive_sweep_stopped(planted: RunSet) -> None:
    plain = analyze(planted, Selection("noise", "signal", permutations=10), Prepared())
    report = dataclasses.replace(plain, adaptive=record())
    text = render_markdown(report)
    assert "## Adaptive replicates: how the signal sweep stopped" in text
    assert "Stopped after look 2 with 24 runs: every parameter is decided." in text
    assert "| 2 | 24 | 0.0157 | 0.001 (significant) | stop |" in text
    data = report.to_json()
    assert data["adaptive"]["stopped"]["code"] == "decided"
    assert "adaptive" not in plain.to_json()
    assert "Adaptive replicates" not in render_markdown(plain)
