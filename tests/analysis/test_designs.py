"""Every built-in analysis on the designs users actually run: no crash, numbers that mean something.

Few noise runs (3 upward; 9, 10, 12 and 13 leave 0, 1 or 2 runs over when split into the groups
below, or need draws with replacement), single-run groups, unbalanced grids and random-search
layouts, seeds crossed with the grid. The built-ins are loaded from their entry
points like any plugin and run through the runner, which turns any exception into a failure.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.simulation.synthetic import runset_from_arrays
from lightning_app.analysis import Selection, build_context
from lightning_app.analysis.execution import run_analyses
from lightning_app.analysis.registry import Registry

BUILT_IN = ["noise-baseline", "signal-effects", "runs-needed", "epoch-dynamics"]
OPTIONS = {"runs-needed": {"resamples": 200}}
"""Fewest simulated sweeps runs-needed still reports (its MIN_SIMULATIONS): the whole-rule check
runs on every design at a fifth of the default's cost."""


def _configs(design: str, rng: np.random.Generator) -> list[dict]:
    if design == "two values, 4 runs each":
        return [{"model.num_layers": v} for v in (2, 3) for _ in range(4)]
    if design == "three values of 4":
        return [{"model.hidden_size": v} for v in (16, 32, 64) for _ in range(4)]
    if design == "single-run groups":
        return [{"model.hidden_size": v, "data.batch_size": 50} for v in (8, 16, 24, 32, 48, 64)]
    if design == "unbalanced grid":
        return [
            {"model.hidden_size": h, "data.batch_size": b}
            for h in (16, 32, 64)
            for b in (50, 100)
            for _ in range(int(rng.integers(1, 4)))
        ]
    if design == "random search":
        while True:
            runs = [
                {"model.hidden_size": int(rng.choice([16, 32, 64])), "data.batch_size": int(b)}
                for b in rng.choice([50, 100, 200], size=20)
            ]
            if len({r["model.hidden_size"] for r in runs}) == 3:
                return runs
    if design == "seeds crossed with the grid":
        return [
            {"model.hidden_size": h, "model.num_layers": n, "seed_everything": s}
            for h in (16, 32)
            for n in (2, 3)
            for s in (0, 1, 2)
        ]
    raise AssertionError(design)


DESIGNS = [
    "two values, 4 runs each",
    "three values of 4",
    "single-run groups",
    "unbalanced grid",
    "random search",
    "seeds crossed with the grid",
]


@pytest.mark.parametrize("design", DESIGNS)
@pytest.mark.parametrize("n_noise", [3, 9, 10, 12, 13, 100])
def test_every_builtin_analysis_runs_on_the_design(design: str, n_noise: int) -> None:
    rng = np.random.default_rng(n_noise)
    configs = _configs(design, rng)
    effect = np.array(
        [
            0.01 * (c.get("model.hidden_size", 0) or c.get("model.num_layers", 0)) / 64
            for c in configs
        ]
    )
    signal = 0.9 + effect[:, None] + rng.normal(0, 0.01, (len(configs), 3))
    runs = runset_from_arrays(rng.normal(0.9, 0.01, (n_noise, 3)), signal, configs)
    params = ["model.hidden_size"] if design == "single-run groups" else None
    context, used = build_context(
        runs, Selection("noise", "signal", params=params, permutations=199)
    )
    classes, failures = Registry.discover().load(BUILT_IN)
    assert not failures
    outcomes = run_analyses(
        [(classes[n](**OPTIONS.get(n, {})), "built-in", {}) for n in BUILT_IN], used, context
    )
    for outcome in outcomes:
        assert outcome.ok, f"{outcome.name}: {outcome.error}"
        json.dumps(outcome.summary, allow_nan=False)
    effects = outcomes[1].summary
    assert effects is not None
    for name, res in effects["params"].items():
        assert 0 < res["p_value"] <= 1 and res["p_adjusted"] >= res["p_value"]
        assert res["df_denom"] >= 1 and res["noise_effect"] > 0
        assert res["verdict"] in {"signal", "weak", "noise"}
        assert "seed" not in name
    expected_error = "noise" if design == "single-run groups" else "signal"
    assert effects["error"] == expected_error
