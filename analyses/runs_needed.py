"""runs-needed: how many runs per value the rule signal-effects applies needs to decide.

Planned for the rule itself (``lightning_app.analysis.power``): the same type II F test against the
same error term, at Holm's first-step level over the analysed parameters, and separately with the
ratio rule that makes a significant effect "signal". Planned on a bias-corrected effect, because the
observed effect of noisy group means overstates the true one; checked by running the whole rule,
model code included, on simulated sweeps.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from analyses.signal_effects import SignalEffects
from lightning_app.analysis import (
    Analysis,
    AnalysisContext,
    AnalysisResult,
    Figure,
    Table,
    factorial,
    plots,
    power,
)
from lightning_app.analysis.factorial import ErrorTerm
from lightning_app.analysis.power import Correction
from lightning_app.errors import UserError
from lightning_app.runs.runset import RunSet

SIMULATION_BUDGET = 4_000_000
"""Most run values one whole-rule check may simulate (simulated sweeps x runs each)."""
MIN_SIMULATIONS = 200
"""Fewest simulated sweeps worth reporting; larger plans are left unchecked."""
RULE_DRAWS = 4000
"""Simulations behind each point of the called-signal search (exact distributions, cheap)."""
RULE_OPTIONS = ("alpha", "correction", "error", "signal_ratio")
"""Options of signal-effects' rule that runs-needed follows unless given its own."""


class RunsNeeded(Analysis):
    """Runs per value for signal-effects' rule to find each effect, planned on corrected effects."""

    name = "runs-needed"
    order = 30
    description = (
        "Runs per value for signal-effects' test (Holm, error term, ratio rule) to detect each "
        "bias-corrected effect; checked by simulating the rule."
    )

    def __init__(
        self,
        alpha: float | None = None,
        power: float = 0.8,
        min_effect: float | None = None,
        resamples: int = 1000,
        max_runs: int = 100_000,
        correction: Correction | None = None,
        error: ErrorTerm | None = None,
        signal_ratio: float | None = None,
    ) -> None:
        """
        Args:
            alpha: Significance level of the rule (default: signal-effects' alpha).
            power: Wanted probability that the rule finds the effect.
            min_effect: Smallest effect (max - min of group means, in the metric's units, e.g.
                0.002 for 0.2 percentage points of accuracy) to plan for, per parameter, in the
                least favourable layout of the group means.
            resamples: Simulated sweeps per whole-rule check (0: no check).
            max_runs: Largest run count per value considered; beyond it the answer is "more".
            correction: Multiple-testing correction; plans at Holm's first step, alpha / m
                (default: signal-effects' correction).
            error: Error term, signal, noise or pooled (default: signal-effects' error).
            signal_ratio: Ratio for the count to be called signal (default: signal-effects'
                signal_ratio).
        """
        if not 0 < power < 1:
            raise ValueError(f"power must be between 0 and 1, got {power}")
        if min_effect is not None and not min_effect > 0:
            raise ValueError(f"min_effect must be positive, got {min_effect}")
        if resamples < 0 or max_runs < 2:
            raise ValueError("resamples must be >= 0 and max_runs >= 2")
        self.explicit: dict[str, Any] = {
            key: value
            for key, value in (
                ("alpha", alpha),
                ("correction", correction),
                ("error", error),
                ("signal_ratio", signal_ratio),
            )
            if value is not None
        }
        SignalEffects(**self.explicit)  # the same checks and messages as signal-effects'
        self.power = power
        self.min_effect = min_effect
        self.resamples = resamples
        self.max_runs = max_runs

    def _signal_effects(self, context: AnalysisContext) -> SignalEffects:
        """signal-effects with the options the user gave it (its defaults otherwise)."""
        given = context.options.get(SignalEffects.name, {})
        try:
            return SignalEffects(
                **{k: v for k, v in given.items() if k in RULE_OPTIONS and v is not None}
            )
        except ValueError as err:
            raise UserError(f"--{SignalEffects.name}: {err}") from None

    def rule_options(self, context: AnalysisContext) -> tuple[SignalEffects, list[str]]:
        """signal-effects as the user set it, with runs-needed's explicit options in its place,
        and the options taken from signal-effects.

        A count planned for another rule than the one that decides is wrong without a warning,
        so an option not given to runs-needed follows signal-effects' (its default otherwise).
        """
        decides = self._signal_effects(context)
        followed = {k: getattr(decides, k) for k in RULE_OPTIONS}
        return SignalEffects(**{**followed, **self.explicit}), [
            k for k in RULE_OPTIONS if k not in self.explicit
        ]

    def run(self, runs: RunSet, context: AnalysisContext) -> AnalysisResult:
        model = context.model
        planned_for, followed = self.rule_options(context)
        error, fallback = model.error_for(planned_for.error)
        tests = model.tests(error)
        sigma = float(np.sqrt(tests.mean_square_error[0]))
        noise = context.noise_at_epoch
        rule = power.Rule(
            alpha=planned_for.alpha,
            n_tests=len(context.params),
            correction=planned_for.correction,
            error=error,
            model_df=int(model.additive.df.sum()),
            noise_df=len(noise) - 1,
            signal_ratio=planned_for.signal_ratio,
        )
        n = model.additive.n
        corrected: dict[str, np.ndarray] = {}
        observed: dict[str, np.ndarray] = {}
        for row, name in enumerate(context.params):
            coef = factorial.level_effects(model.additive, name)[:, 0]
            offsets = coef - coef.mean()
            f2_seen = tests.df_num[row] * float(tests.statistic[row, 0]) / n
            f2 = power.corrected_f2(
                float(tests.statistic[row, 0]), int(tests.df_num[row]), tests.df_denom, n
            )
            observed[name] = offsets
            corrected[name] = offsets * math.sqrt(f2 / f2_seen) if f2_seen > 0 else 0 * offsets
        params = {
            name: self._plan(
                name, name, observed[name], corrected[name], corrected, sigma, rule, context
            )
            for name in context.params
        }
        planned: dict[str, dict[str, Any]] = {}
        if self.min_effect is not None:
            for name, param in context.params.items():
                least = power.least_favourable_offsets(self.min_effect, param.k)
                levels = {**corrected, name: least}
                planned[name] = self._plan(
                    name, f"min:{name}", least, least, levels, sigma, rule, context
                )
        curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        needed: dict[str, int | None] = {}
        checks: dict[str, tuple[int, float]] = {}
        for label, plans in (("", params), (" (min effect)", planned)):
            for name, plan in plans.items():
                key = name + label
                needed[key] = plan["runs_per_group"]
                if plan["cohens_f_corrected"] > 0:
                    curves[key] = _curve(plan, rule, self.max_runs)
                if plan["simulated_power"] is not None:
                    checks[key] = (plan["runs_per_group"], plan["simulated_power"])
        rule_text = f"type II F test in the additive model against {error} error, " + (
            "no correction"
            if rule.correction == "none"
            else f"{rule.correction} over {rule.n_tests} parameter(s) (planned at alpha / "
            f"{rule.n_tests} = {rule.alpha_per_test:.3g})"
        )
        summary: dict[str, Any] = {
            "epoch": context.epoch,
            "alpha": rule.alpha,
            "power": self.power,
            "rule": rule_text,
            "error": error,
            "error_sd": sigma,
            "correction": rule.correction,
            "n_tests": rule.n_tests,
            "alpha_per_test": rule.alpha_per_test,
            "signal_ratio": rule.signal_ratio,
            "as_signal_effects": followed,
            "noise_std": float(np.std(noise, ddof=1)),
            "noise_runs": len(noise),
            "effect_correction": "unbiased noncentrality of the observed F (truncated at 0)",
            "params": params,
            "min_effect": (
                {"effect": self.min_effect, "params": planned} if self.min_effect else None
            ),
        }
        rows = [_row(name, plan, "observed") for name, plan in params.items()] + [
            _row(name, plan, "min effect") for name, plan in planned.items()
        ]
        findings = [self._finding(n, p, context, rule, "its effect") for n, p in params.items()]
        findings += [
            self._finding(n, p, context, rule, "the minimum effect") for n, p in planned.items()
        ]
        notes = [] if fallback is None else [fallback]
        notes.append(
            "Counts are planned on bias-corrected effects (the observed effect is the range of "
            "noisy group means and overstates the true one) for the rule signal-effects applies: "
            f"{rule_text}; 'to be called signal' adds its ratio rule (effect >= "
            f"{rule.signal_ratio:g} x noise effect)."
            + (f" Taken from signal-effects: {', '.join(followed)}." if followed else "")
        )
        decides = self._signal_effects(context)
        differs = [k for k, v in self.explicit.items() if v != getattr(decides, k)]
        if differs:
            notes.append(
                f"runs-needed's {', '.join(differs)} differ from signal-effects': these counts are "
                f"for another rule than the one that decides the verdicts."
            )
        if len(noise) < 30 and error != "signal":
            notes.append(
                f"The error sd comes partly from {len(noise)} noise runs; with so few the run "
                f"counts are uncertain by tens of percent."
            )
        figures = []
        if curves:
            figures.append(
                Figure(
                    "power",
                    f"Power of signal-effects' test against runs per value ({rule_text}); dashed: "
                    f"target power {self.power}; dots: the whole rule simulated.",
                    plots.power_curves(curves, needed, power=self.power, simulated=checks),
                )
            )
        fmt = context.metric_format
        table = Table(
            f"Runs per value for power {self.power} at alpha {rule.alpha:g} ({error} error sd "
            f"{context.fmt(sigma)}; f: corrected Cohen's f; sim.: the rule simulated there)",
            pd.DataFrame(rows),
            {"effect": fmt, "corrected": fmt, "f": ".2f", "sim.": ".2f", "sim. (signal)": ".2f"},
        )
        unchecked = [
            n
            for n, p in {**params, **planned}.items()
            if p["runs_per_group"] is not None and p["simulated_power"] is None
        ]
        if unchecked and self.resamples > 0:
            notes.append(
                f"Not checked by simulation (the plan needs too many runs to simulate "
                f"{MIN_SIMULATIONS}+ sweeps): {', '.join(unchecked)}."
            )
        return AnalysisResult(summary, findings, [table], figures, notes)

    def _plan(
        self,
        name: str,
        key: str,
        observed: np.ndarray,
        offsets: np.ndarray,
        levels: dict[str, np.ndarray],
        sigma: float,
        rule: power.Rule,
        context: AnalysisContext,
    ) -> dict[str, Any]:
        k = len(offsets)
        f2 = float(np.mean(offsets**2)) / sigma**2
        noise = context.noise_at_epoch
        noise_sd = float(np.std(noise, ddof=1))
        n = n_signal = None
        if f2 > 0:
            n = power.smallest_runs(
                lambda r: float(power.f_test_power(f2, k, r, rule)), self.power, self.max_runs
            )
            draws = power.RuleDraws.make(k, RULE_DRAWS, context.rng(f"rule:{key}"))
            n_signal = power.smallest_runs(
                lambda r: power.rule_power(offsets, sigma, noise_sd, r, rule, draws)[1],
                self.power,
                self.max_runs,
            )
        simulated = simulated_signal = None
        sims = 0
        for runs, slot in ((n, "significant"), (n_signal, "called_signal")):
            if runs is None or self.resamples == 0:
                continue
            budget = min(self.resamples, SIMULATION_BUDGET // (runs * k))
            if budget < min(self.resamples, MIN_SIMULATIONS):
                continue
            result = power.simulate_rule(
                levels,
                name,
                runs,
                sigma,
                noise,
                rule,
                budget,
                context.rng(f"sim:{key}:{slot}"),
                splits=max(MIN_SIMULATIONS, min(context.permutations, budget)),
            )
            sims = max(sims, budget)
            if slot == "significant":
                simulated = result.significant
            else:
                simulated_signal = result.called_signal
        return {
            "effect": float(np.ptp(observed)),
            "effect_corrected": float(np.ptp(offsets)),
            "cohens_f": float(np.sqrt(np.mean(observed**2))) / sigma,
            "cohens_f_corrected": math.sqrt(f2),
            "k_groups": k,
            "runs_per_group": n,
            "total_runs": None if n is None else n * k,
            "runs_per_group_signal": n_signal,
            "alpha": rule.alpha,
            "alpha_per_test": rule.alpha_per_test,
            "power": self.power,
            "achieved_power": None if n is None else float(power.f_test_power(f2, k, n, rule)),
            "simulated_power": simulated,
            "simulated_power_signal": simulated_signal,
            "simulations": sims,
        }

    def _finding(
        self,
        name: str,
        plan: dict[str, Any],
        context: AnalysisContext,
        rule: power.Rule,
        what: str,
    ) -> str:
        n, n_signal = plan["runs_per_group"], plan["runs_per_group_signal"]
        size = (
            f"{what} of {context.fmt(plan['effect'])} ({context.fmt(plan['effect_corrected'])} "
            f"after bias correction, Cohen's f = {plan['cohens_f_corrected']:.2f})"
        )
        if n is None:
            if plan["cohens_f_corrected"] == 0:
                return (
                    f"{name}: {size} is no larger than noise alone would make it; no run count "
                    f"can be planned for it."
                )
            return (
                f"{name}: {size} cannot be detected with up to {self.max_runs} runs per value "
                f"at power {self.power}: it is lost in the noise."
            )
        check = ""
        if plan["simulated_power"] is not None:
            check = f" (the simulated rule finds it in {plan['simulated_power']:.0%} of sweeps)"
        signal = (
            f"; to be called signal (>= {rule.signal_ratio:g}x its noise effect) it takes "
            f"{n_signal} per value"
            if n_signal is not None
            else f"; it is never called signal within {self.max_runs} runs per value"
        )
        return (
            f"{name}: for signal-effects' test to find {size} across {plan['k_groups']} values "
            f"with power {self.power} takes {n} runs per value, {n * plan['k_groups']} in all"
            f"{check}{signal}."
        )


def _row(name: str, plan: dict[str, Any], kind: str) -> dict[str, Any]:
    return {
        "parameter": name,
        "for": kind,
        "effect": plan["effect"],
        "corrected": plan["effect_corrected"],
        "f": plan["cohens_f_corrected"],
        "runs/value": plan["runs_per_group"],
        "sim.": plan["simulated_power"],
        "to call signal": plan["runs_per_group_signal"],
        "sim. (signal)": plan["simulated_power_signal"],
    }


def _curve(plan: dict[str, Any], rule: power.Rule, max_runs: int) -> tuple[np.ndarray, np.ndarray]:
    needed = plan["runs_per_group"]
    top = min(max_runs, max(20, 4 * needed)) if needed is not None else max_runs
    n = np.unique(np.geomspace(2, top, 60).round().astype(int))
    f2 = plan["cohens_f_corrected"] ** 2
    return n, power.f_test_power(f2, plan["k_groups"], n, rule)
