"""runs-needed: how many runs per value the rule signal-effects applies needs to decide.

Planned for the rule itself (``lightning_app.analysis.power``): the same type II F test against the
same error term, at Holm's first-step level over the analysed parameters, and separately with the
ratio rule that makes a significant effect "signal". Planned on a bias-corrected effect, because the
observed effect of noisy group means overstates the true one; checked by running the whole rule,
model code included, on simulated sweeps.

The rule is the context's :class:`~lightning_app.analysis.decision.DecisionRule` (set by
signal-effects' options), with any of runs-needed's own rule options in its place. As every
built-in, :func:`compute_runs_needed` returns a frozen :class:`RunsNeededResult` and
:func:`render_runs_needed` words it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

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
from lightning_app.analysis.decision import RULE_OPTIONS, DecisionRule
from lightning_app.analysis.factorial import ErrorTerm
from lightning_app.analysis.power import Correction
from lightning_app.runs.runset import RunSet

SIMULATION_BUDGET = 4_000_000
"""Most run values one whole-rule check may simulate (simulated sweeps x runs each)."""
MIN_SIMULATIONS = 200
"""Fewest simulated sweeps worth reporting; larger plans are left unchecked."""
RULE_DRAWS = 4000
"""Simulations behind each point of the called-signal search (exact distributions, cheap)."""


@dataclass(frozen=True)
class Planning:
    """runs-needed's own options: what to plan for and how hard to check it."""

    power: float = 0.8
    min_effect: float | None = None
    resamples: int = 1000
    max_runs: int = 100_000


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
        given = {
            "alpha": alpha,
            "correction": correction,
            "error": error,
            "signal_ratio": signal_ratio,
        }
        self.explicit: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        DecisionRule(**self.explicit)  # the same checks and messages as signal-effects'
        self.planning = Planning(power, min_effect, resamples, max_runs)

    def planned_rule(self, decides: DecisionRule) -> tuple[DecisionRule, list[str]]:
        """The rule that decides with runs-needed's explicit options in its place, and the
        options taken from it.

        A count planned for another rule than the one that decides is wrong without a warning,
        so an option not given to runs-needed follows the deciding rule.
        """
        followed = [k for k in RULE_OPTIONS if k not in self.explicit]
        return dataclasses.replace(decides, **self.explicit), followed

    def run(self, runs: RunSet, context: AnalysisContext) -> AnalysisResult:
        planned_for, followed = self.planned_rule(context.rule)
        differs = [k for k, v in self.explicit.items() if v != getattr(context.rule, k)]
        result = compute_runs_needed(context, planned_for, self.planning, followed, differs)
        return render_runs_needed(result, context)


# -- the result ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Runs per value for one effect: by the F test's power, by the whole rule, and checked."""

    effect: float
    """The effect planned from, before bias correction (max - min of the level offsets)."""
    effect_corrected: float
    cohens_f: float
    cohens_f_corrected: float
    k_groups: int
    runs_per_group: int | None
    """Fewest runs per value for the test to reach the power (None: more than ``max_runs``)."""
    runs_per_group_signal: int | None
    """The same for the effect to be called signal (significant and the ratio rule)."""
    alpha: float
    alpha_per_test: float
    power: float
    achieved_power: float | None
    simulated_power: float | None
    simulated_power_signal: float | None
    simulations: int

    @property
    def total_runs(self) -> int | None:
        return None if self.runs_per_group is None else self.runs_per_group * self.k_groups


@dataclass(frozen=True)
class RunsNeededResult:
    """Plans for each parameter's corrected effect (and the minimum effect, when asked)."""

    rule: power.Rule
    """The rule planned for, as the power calculations read it."""
    planning: Planning
    followed: list[str]
    """Rule options taken from the deciding rule."""
    differs: list[str]
    """runs-needed's own rule options that differ from the deciding rule's."""
    fallback: str | None
    """Why the error term differs from the requested one."""
    error_sd: float
    noise_std: float
    noise_runs: int
    params: dict[str, Plan]
    min_effect: dict[str, Plan]

    @property
    def rule_text(self) -> str:
        rule = self.rule
        return f"type II F test in the additive model against {rule.error} error, " + (
            "no correction"
            if rule.correction == "none"
            else f"{rule.correction} over {rule.n_tests} parameter(s) (planned at alpha / "
            f"{rule.n_tests} = {rule.alpha_per_test:.3g})"
        )


# -- compute ------------------------------------------------------------------------------


def compute_runs_needed(
    context: AnalysisContext,
    planned_for: DecisionRule,
    planning: Planning,
    followed: list[str] | None = None,
    differs: list[str] | None = None,
) -> RunsNeededResult:
    """Plan every parameter's corrected effect (and ``planning.min_effect``) for the rule."""
    model = context.model
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
    observed, corrected = _level_offsets(model, tests, list(context.params))
    params = {
        name: _plan(
            name, observed[name], corrected[name], corrected, sigma, rule, planning, context
        )
        for name in context.params
    }
    planned: dict[str, Plan] = {}
    if planning.min_effect is not None:
        for name, param in context.params.items():
            least = power.least_favourable_offsets(planning.min_effect, param.k)
            levels = {**corrected, name: least}
            planned[name] = _plan(
                name, least, least, levels, sigma, rule, planning, context, key=f"min:{name}"
            )
    return RunsNeededResult(
        rule=rule,
        planning=planning,
        followed=list(followed or []),
        differs=list(differs or []),
        fallback=fallback,
        error_sd=sigma,
        noise_std=float(np.std(noise, ddof=1)),
        noise_runs=len(noise),
        params=params,
        min_effect=planned,
    )


def _level_offsets(
    model: factorial.SignalModel, tests: factorial.FTests, names: list[str]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Each parameter's level offsets as observed, and shrunk to its bias-corrected Cohen's f."""
    n = model.additive.n
    observed: dict[str, np.ndarray] = {}
    corrected: dict[str, np.ndarray] = {}
    for row, name in enumerate(names):
        coef = factorial.level_effects(model.additive, name)[:, 0]
        offsets = coef - coef.mean()
        f2_seen = tests.df_num[row] * float(tests.statistic[row, 0]) / n
        f2 = power.corrected_f2(
            float(tests.statistic[row, 0]), int(tests.df_num[row]), tests.df_denom, n
        )
        observed[name] = offsets
        corrected[name] = offsets * math.sqrt(f2 / f2_seen) if f2_seen > 0 else 0 * offsets
    return observed, corrected


def _plan(
    name: str,
    observed: np.ndarray,
    offsets: np.ndarray,
    levels: dict[str, np.ndarray],
    sigma: float,
    rule: power.Rule,
    planning: Planning,
    context: AnalysisContext,
    *,
    key: str | None = None,
) -> Plan:
    """Runs per value for ``name``'s level ``offsets``, checked by simulating the whole rule
    with every parameter at ``levels``; ``key`` names its random streams (default: ``name``)."""
    key = name if key is None else key
    k = len(offsets)
    f2 = float(np.mean(offsets**2)) / sigma**2
    noise = context.noise_at_epoch
    n = n_signal = None
    if f2 > 0:
        n, n_signal = _smallest_runs(offsets, f2, sigma, noise, rule, planning, context, key)
    simulated = simulated_signal = None
    sims = 0
    for runs, slot in ((n, "significant"), (n_signal, "called_signal")):
        checked = _simulate(name, runs, k, levels, sigma, rule, planning, context, f"{key}:{slot}")
        if checked is None:
            continue
        budget, rates = checked
        sims = max(sims, budget)
        if slot == "significant":
            simulated = rates.significant
        else:
            simulated_signal = rates.called_signal
    return Plan(
        effect=float(np.ptp(observed)),
        effect_corrected=float(np.ptp(offsets)),
        cohens_f=float(np.sqrt(np.mean(observed**2))) / sigma,
        cohens_f_corrected=math.sqrt(f2),
        k_groups=k,
        runs_per_group=n,
        runs_per_group_signal=n_signal,
        alpha=rule.alpha,
        alpha_per_test=rule.alpha_per_test,
        power=planning.power,
        achieved_power=None if n is None else float(power.f_test_power(f2, k, n, rule)),
        simulated_power=simulated,
        simulated_power_signal=simulated_signal,
        simulations=sims,
    )


def _simulate(
    name: str,
    runs: int | None,
    k: int,
    levels: dict[str, np.ndarray],
    sigma: float,
    rule: power.Rule,
    planning: Planning,
    context: AnalysisContext,
    stream: str,
) -> tuple[int, power.SimulatedRule] | None:
    """The whole rule run on simulated sweeps of ``runs`` per value, with the number of sweeps;
    None when there is nothing to check or too many runs to simulate enough sweeps."""
    if runs is None or planning.resamples == 0:
        return None
    budget = min(planning.resamples, SIMULATION_BUDGET // (runs * k))
    if budget < min(planning.resamples, MIN_SIMULATIONS):
        return None
    result = power.simulate_rule(
        levels,
        name,
        runs,
        sigma,
        context.noise_at_epoch,
        rule,
        budget,
        context.rng(f"sim:{stream}"),
        splits=max(MIN_SIMULATIONS, min(context.permutations, budget)),
    )
    return budget, result


def _smallest_runs(
    offsets: np.ndarray,
    f2: float,
    sigma: float,
    noise: np.ndarray,
    rule: power.Rule,
    planning: Planning,
    context: AnalysisContext,
    key: str,
) -> tuple[int | None, int | None]:
    """Fewest runs per value for the F test, and for the effect to be called signal."""
    k = len(offsets)
    noise_sd = float(np.std(noise, ddof=1))
    n = power.smallest_runs(
        lambda r: float(power.f_test_power(f2, k, r, rule)), planning.power, planning.max_runs
    )
    draws = power.RuleDraws.make(k, RULE_DRAWS, context.rng(f"rule:{key}"))
    n_signal = power.smallest_runs(
        lambda r: power.rule_power(offsets, sigma, noise_sd, r, rule, draws)[1],
        planning.power,
        planning.max_runs,
    )
    return n, n_signal


# -- render -------------------------------------------------------------------------------


def render_runs_needed(result: RunsNeededResult, context: AnalysisContext) -> AnalysisResult:
    """The plans as findings, the runs table, the power figure and report.json's summary."""
    return AnalysisResult(
        _to_summary(result, context),
        _findings(result, context),
        [_table(result, context)],
        _figures(result),
        _notes(result),
    )


def _to_summary(result: RunsNeededResult, context: AnalysisContext) -> dict[str, Any]:
    """report.json's ``analyses["runs-needed"]``."""
    rule, planning = result.rule, result.planning
    return {
        "epoch": context.epoch,
        "alpha": rule.alpha,
        "power": planning.power,
        "rule": result.rule_text,
        "error": rule.error,
        "error_sd": result.error_sd,
        "correction": rule.correction,
        "n_tests": rule.n_tests,
        "alpha_per_test": rule.alpha_per_test,
        "signal_ratio": rule.signal_ratio,
        "as_signal_effects": result.followed,
        "noise_std": result.noise_std,
        "noise_runs": result.noise_runs,
        "effect_correction": "unbiased noncentrality of the observed F (truncated at 0)",
        "params": {n: _plan_summary(p) for n, p in result.params.items()},
        "min_effect": (
            {
                "effect": planning.min_effect,
                "params": {n: _plan_summary(p) for n, p in result.min_effect.items()},
            }
            if planning.min_effect
            else None
        ),
    }


def _plan_summary(p: Plan) -> dict[str, Any]:
    """One plan as report.json holds it."""
    return {
        "effect": p.effect,
        "effect_corrected": p.effect_corrected,
        "cohens_f": p.cohens_f,
        "cohens_f_corrected": p.cohens_f_corrected,
        "k_groups": p.k_groups,
        "runs_per_group": p.runs_per_group,
        "total_runs": p.total_runs,
        "runs_per_group_signal": p.runs_per_group_signal,
        "alpha": p.alpha,
        "alpha_per_test": p.alpha_per_test,
        "power": p.power,
        "achieved_power": p.achieved_power,
        "simulated_power": p.simulated_power,
        "simulated_power_signal": p.simulated_power_signal,
        "simulations": p.simulations,
    }


def _findings(result: RunsNeededResult, context: AnalysisContext) -> list[str]:
    """A sentence per plan: observed effects first, then the minimum effect's."""
    return [_finding(n, p, context, result, "its effect") for n, p in result.params.items()] + [
        _finding(n, p, context, result, "the minimum effect") for n, p in result.min_effect.items()
    ]


def _finding(
    name: str, plan: Plan, context: AnalysisContext, result: RunsNeededResult, what: str
) -> str:
    n, n_signal = plan.runs_per_group, plan.runs_per_group_signal
    max_runs, target = result.planning.max_runs, result.planning.power
    size = (
        f"{what} of {context.fmt(plan.effect)} ({context.fmt(plan.effect_corrected)} "
        f"after bias correction, Cohen's f = {plan.cohens_f_corrected:.2f})"
    )
    if n is None:
        if plan.cohens_f_corrected == 0:
            return (
                f"{name}: {size} is no larger than noise alone would make it; no run count "
                f"can be planned for it."
            )
        return (
            f"{name}: {size} cannot be detected with up to {max_runs} runs per value "
            f"at power {target}: it is lost in the noise."
        )
    check = ""
    if plan.simulated_power is not None:
        check = f" (the simulated rule finds it in {plan.simulated_power:.0%} of sweeps)"
    signal = (
        f"; to be called signal (>= {result.rule.signal_ratio:g}x its noise effect) it takes "
        f"{n_signal} per value"
        if n_signal is not None
        else f"; it is never called signal within {max_runs} runs per value"
    )
    return (
        f"{name}: for signal-effects' test to find {size} across {plan.k_groups} values "
        f"with power {target} takes {n} runs per value, {n * plan.k_groups} in all"
        f"{check}{signal}."
    )


def _notes(result: RunsNeededResult) -> list[str]:
    """What the counts are planned for, and what makes them uncertain or unchecked."""
    rule = result.rule
    out = [] if result.fallback is None else [result.fallback]
    out.append(
        "Counts are planned on bias-corrected effects (the observed effect is the range of "
        "noisy group means and overstates the true one) for the rule signal-effects applies: "
        f"{result.rule_text}; 'to be called signal' adds its ratio rule (effect >= "
        f"{rule.signal_ratio:g} x noise effect)."
        + (f" Taken from signal-effects: {', '.join(result.followed)}." if result.followed else "")
    )
    if result.differs:
        out.append(
            f"runs-needed's {', '.join(result.differs)} differ from signal-effects': these counts "
            f"are for another rule than the one that decides the verdicts."
        )
    if result.noise_runs < 30 and rule.error != "signal":
        out.append(
            f"The error sd comes partly from {result.noise_runs} noise runs; with so few the run "
            f"counts are uncertain by tens of percent."
        )
    unchecked = [
        n
        for n, p in {**result.params, **result.min_effect}.items()
        if p.runs_per_group is not None and p.simulated_power is None
    ]
    if unchecked and result.planning.resamples > 0:
        out.append(
            f"Not checked by simulation (the plan needs too many runs to simulate "
            f"{MIN_SIMULATIONS}+ sweeps): {', '.join(unchecked)}."
        )
    return out


def _table(result: RunsNeededResult, context: AnalysisContext) -> Table:
    """Observed and minimum-effect plans in one table."""
    rows = [_row(name, p, "observed") for name, p in result.params.items()] + [
        _row(name, p, "min effect") for name, p in result.min_effect.items()
    ]
    fmt = context.metric_format
    return Table(
        f"Runs per value for power {result.planning.power} at alpha {result.rule.alpha:g} "
        f"({result.rule.error} error sd {context.fmt(result.error_sd)}; f: corrected Cohen's f; "
        f"sim.: the rule simulated there)",
        pd.DataFrame(rows),
        {"effect": fmt, "corrected": fmt, "f": ".2f", "sim.": ".2f", "sim. (signal)": ".2f"},
    )


def _row(name: str, plan: Plan, kind: str) -> dict[str, Any]:
    return {
        "parameter": name,
        "for": kind,
        "effect": plan.effect,
        "corrected": plan.effect_corrected,
        "f": plan.cohens_f_corrected,
        "runs/value": plan.runs_per_group,
        "sim.": plan.simulated_power,
        "to call signal": plan.runs_per_group_signal,
        "sim. (signal)": plan.simulated_power_signal,
    }


def _figures(result: RunsNeededResult) -> list[Figure]:
    """Power against runs per value for every plannable effect, with the simulated checks."""
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    needed: dict[str, int | None] = {}
    checks: dict[str, tuple[int, float]] = {}
    for label, plans in (("", result.params), (" (min effect)", result.min_effect)):
        for name, p in plans.items():
            key = name + label
            needed[key] = p.runs_per_group
            if p.cohens_f_corrected > 0:
                curves[key] = _curve(p, result.rule, result.planning.max_runs)
            if p.simulated_power is not None and p.runs_per_group is not None:
                checks[key] = (p.runs_per_group, p.simulated_power)
    if not curves:
        return []
    target = result.planning.power
    return [
        Figure(
            "power",
            f"Power of signal-effects' test against runs per value ({result.rule_text}); dashed: "
            f"target power {target}; dots: the whole rule simulated.",
            plots.power_curves(curves, needed, power=target, simulated=checks),
        )
    ]


def _curve(plan: Plan, rule: power.Rule, max_runs: int) -> tuple[np.ndarray, np.ndarray]:
    needed = plan.runs_per_group
    top = min(max_runs, max(20, 4 * needed)) if needed is not None else max_runs
    n = np.unique(np.geomspace(2, top, 60).round().astype(int))
    f2 = plan.cohens_f_corrected**2
    return n, power.f_test_power(f2, plan.k_groups, n, rule)
