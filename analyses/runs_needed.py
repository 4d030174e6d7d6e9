"""runs-needed: how many seeds per value make an effect of this size significant."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lightning_app.analysis import (
    Analysis,
    AnalysisContext,
    AnalysisResult,
    Figure,
    Table,
    plots,
    stats,
)
from lightning_app.runs.runset import RunSet

SIMULATION_BUDGET = 10_000_000
"""Most run values one resampling check may draw (simulated experiments x runs each)."""
MIN_RESAMPLES = 200
"""Fewest simulated experiments worth reporting; larger plans are left unchecked."""


class RunsNeeded(Analysis):
    """Runs per group for a one-way ANOVA to detect each effect, from the noise runs' std."""

    name = "runs-needed"
    order = 30
    description = (
        "Seeds per value needed to detect each effect (statsmodels power, resampling check)."
    )

    def __init__(
        self,
        alpha: float = 0.05,
        power: float = 0.8,
        min_effect: float | None = None,
        resamples: int = 2000,
        max_runs: int = 100_000,
    ) -> None:
        """
        Args:
            alpha: Significance level of the planned test.
            power: Wanted probability of detecting the effect.
            min_effect: Smallest effect (max - min of group means, in the metric's units, e.g.
                0.002 for 0.2 percentage points of accuracy) to plan for, per parameter, in the
                least favourable layout of the group means.
            resamples: Simulated experiments per check that resample the noise runs.
            max_runs: Largest run count per group considered; beyond it the answer is "more".
        """
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
        if not 0 < power < 1:
            raise ValueError(f"power must be between 0 and 1, got {power}")
        if min_effect is not None and not min_effect > 0:
            raise ValueError(f"min_effect must be positive, got {min_effect}")
        if resamples < 0 or max_runs < 2:
            raise ValueError("resamples must be >= 0 and max_runs >= 2")
        self.alpha = alpha
        self.power = power
        self.min_effect = min_effect
        self.resamples = resamples
        self.max_runs = max_runs

    def run(self, runs: RunSet, context: AnalysisContext) -> AnalysisResult:
        noise = context.noise_at_epoch
        sigma = float(np.std(noise, ddof=1))
        fmt = context.metric_format
        params: dict[str, dict[str, Any]] = {}
        planned: dict[str, dict[str, Any]] = {}
        curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        needed: dict[str, int | None] = {}
        checks: dict[str, tuple[int, float]] = {}
        for name, param in context.params.items():
            means = stats.group_means(context.signal_at_epoch, param.codes, param.k)
            offsets = means - means.mean()
            params[name] = self._plan(
                name, float(means.max() - means.min()), offsets, noise, sigma, context
            )
            if self.min_effect is not None:
                planned[name] = self._plan(
                    f"min:{name}",
                    self.min_effect,
                    stats.least_favourable_offsets(self.min_effect, param.k),
                    noise,
                    sigma,
                    context,
                )
        for label, plans in (("", params), (" (min effect)", planned)):
            for name, plan in plans.items():
                key = name + label
                needed[key] = plan["runs_per_group"]
                if plan["cohens_f"] > 0:
                    curves[key] = _curve(
                        plan["cohens_f"],
                        plan["k_groups"],
                        self.alpha,
                        plan["runs_per_group"],
                        self.max_runs,
                    )
                if plan["simulated_power"] is not None:
                    checks[key] = (plan["runs_per_group"], plan["simulated_power"])
        summary: dict[str, Any] = {
            "epoch": context.epoch,
            "alpha": self.alpha,
            "power": self.power,
            "noise_std": sigma,
            "noise_runs": len(noise),
            "test": "one-way ANOVA F-test, balanced groups",
            "params": params,
            "min_effect": (
                {"effect": self.min_effect, "params": planned} if self.min_effect else None
            ),
        }
        rows = [_row(name, plan, "observed") for name, plan in params.items()] + [
            _row(name, plan, "min effect") for name, plan in planned.items()
        ]
        findings = [self._finding(n, p, context, "its observed effect") for n, p in params.items()]
        findings += [self._finding(n, p, context, "the minimum effect") for n, p in planned.items()]
        notes = [
            "Observed effects are maxima over the values of each parameter and so are biased "
            "upward; plan with --runs-needed.min_effect for a conservative count."
        ]
        if len(noise) < 30:
            notes.append(
                f"The noise std comes from {len(noise)} runs; with so few the run counts are "
                f"uncertain by tens of percent."
            )
        figures = []
        if curves:
            figures.append(
                Figure(
                    "power",
                    f"Power to detect each effect against runs per group (alpha={self.alpha}); "
                    f"dashed: target power {self.power}; dots: resampling check.",
                    plots.power_curves(curves, needed, power=self.power, simulated=checks),
                )
            )
        table = Table(
            f"Runs per group for power {self.power} at alpha {self.alpha} "
            f"(noise std {context.fmt(sigma)})",
            pd.DataFrame(rows),
            {"effect": fmt, "Cohen's f": ".3f", "power": ".3f", "simulated power": ".3f"},
        )
        unchecked = [
            n
            for n, p in {**params, **planned}.items()
            if p["runs_per_group"] is not None and p["simulated_power"] is None
        ]
        if unchecked and self.resamples > 0:
            notes.append(
                f"Not checked by resampling (the plan needs too many runs to simulate "
                f"{MIN_RESAMPLES}+ experiments): {', '.join(unchecked)}."
            )
        return AnalysisResult(summary, findings, [table], figures, notes)

    def _plan(
        self,
        key: str,
        effect: float,
        offsets: np.ndarray,
        noise: np.ndarray,
        sigma: float,
        context: AnalysisContext,
    ) -> dict[str, Any]:
        k = len(offsets)
        f = stats.cohens_f(offsets, sigma)
        n = stats.runs_per_group(f, k, self.alpha, self.power, self.max_runs)
        simulated = None
        # The check resamples n * k runs per simulated experiment; keep it to a few seconds.
        resamples = 0 if n is None else min(self.resamples, SIMULATION_BUDGET // (n * k))
        if n is not None and resamples >= min(self.resamples, MIN_RESAMPLES) > 0:
            simulated = stats.simulated_anova_power(
                noise, offsets, n, self.alpha, resamples, context.rng(f"power:{key}")
            )
        return {
            "effect": effect,
            "cohens_f": f,
            "k_groups": k,
            "runs_per_group": n,
            "total_runs": None if n is None else n * k,
            "alpha": self.alpha,
            "power": self.power,
            "achieved_power": None if n is None else float(stats.anova_power(f, n, k, self.alpha)),
            "simulated_power": simulated,
            "resamples": resamples if simulated is not None else 0,
        }

    def _finding(self, name: str, plan: dict[str, Any], context: AnalysisContext, what: str) -> str:
        n = plan["runs_per_group"]
        if n is None:
            return (
                f"{name}: {what} of {context.fmt(plan['effect'])} cannot be detected with up to "
                f"{self.max_runs} runs per value at power {self.power}: it is lost in the noise."
            )
        check = ""
        if plan["simulated_power"] is not None:
            check = (
                f"; resampling the noise runs gives power {plan['simulated_power']:.2f} "
                f"over {plan['resamples']} simulated experiments"
            )
        return (
            f"{name}: detecting {what} of {context.fmt(plan['effect'])} across "
            f"{plan['k_groups']} values (Cohen's f = {plan['cohens_f']:.2f}) at alpha "
            f"{self.alpha} with power {self.power} takes {n} runs per value, {n * plan['k_groups']}"
            f" in all{check}."
        )


def _row(name: str, plan: dict[str, Any], kind: str) -> dict[str, Any]:
    return {
        "parameter": name,
        "for": kind,
        "effect": plan["effect"],
        "values": plan["k_groups"],
        "Cohen's f": plan["cohens_f"],
        "runs per value": plan["runs_per_group"],
        "power": plan["achieved_power"],
        "simulated power": plan["simulated_power"],
    }


def _curve(
    f: float, k: int, alpha: float, needed: int | None, max_runs: int
) -> tuple[np.ndarray, np.ndarray]:
    top = min(max_runs, max(20, 4 * needed)) if needed is not None else max_runs
    n = np.unique(np.geomspace(2, top, 60).round().astype(int))
    return n, stats.anova_power(f, n, k, alpha)
