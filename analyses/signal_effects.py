"""signal-effects: each parameter's effect, described against its noise effect and tested with a
calibrated F test.

The description is the study's: a parameter's group-mean effect (max - min of the mean metric of
its values), its noise effect (the same statistic on the noise runs split at random into groups of
the same sizes) and their ratio. The p-value is not read from those splits (that would ignore the
noise runs' own sampling error and is anti-conservative): it comes from the type II F test of an
additive model of the signal runs over every analysed parameter (``factorial``), against the error
term ``error`` names. ``docs/validation.md`` shows the test's false-positive rate by simulation.

The analysis is written as a plugin should be: :func:`compute_signal_effects` turns the context
into a frozen :class:`SignalEffectsResult`; :func:`render_signal_effects` turns that into
findings, tables, figures and the report.json summary.
"""

from __future__ import annotations

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
    stats,
)
from lightning_app.analysis.decision import ERROR_WORDS, DecisionRule, Verdict
from lightning_app.analysis.factorial import ErrorTerm, FTests
from lightning_app.analysis.formatting import format_ratio, p_text
from lightning_app.analysis.parameters import Parameter
from lightning_app.analysis.power import Correction
from lightning_app.runs.runset import RunSet


class SignalEffects(Analysis):
    """Group-mean effect per parameter vs its noise effect; calibrated F tests; verdicts."""

    name = "signal-effects"
    order = 20
    description = (
        "Each parameter's effect vs its noise effect, with a calibrated test (additive model, "
        "type II F) and verdicts."
    )

    def __init__(
        self,
        alpha: float = 0.05,
        signal_ratio: float = 5.0,
        correction: Correction = "holm",
        error: ErrorTerm = "signal",
    ) -> None:
        """
        Args:
            alpha: Significance level, applied to p-values corrected across the parameters.
            signal_ratio: A significant effect at least this many times its noise effect is
                "signal"; a smaller significant one is "weak"; a non-significant one is "noise".
            correction: Multiple-testing correction across parameters (statsmodels multipletests:
                holm controls the family-wise error; fdr_bh the false discovery rate).
            error: Error term of the F tests. signal (default): the signal runs' residuals
                around the additive model, calibrated whatever seed noise is at the noise
                sweep's configuration (falls back to noise when no residual df is left). noise:
                the noise runs' variance (N - 1 df). pooled: both. noise and pooled assume seed
                noise is the same at every configuration; the report checks it.
        """
        self.rule = DecisionRule(alpha, signal_ratio, correction, error)

    def run(self, runs: RunSet, context: AnalysisContext) -> AnalysisResult:
        return render_signal_effects(compute_signal_effects(context, self.rule), context)


# -- the result ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ParameterEffect:
    """One parameter: its effect, its noise effect, its F test and the verdict."""

    name: str
    labels: list[str]
    sizes: np.ndarray
    group_means: np.ndarray
    """Mean metric of the runs with each value (values x epochs)."""
    epoch_index: int
    effect: float
    """max - min of the group means at the analysed epoch."""
    adjusted_effect: float
    """The same range of the additive model's level effects (adjusted for the others)."""
    noise_effect: float
    statistic: float
    """The type II F statistic."""
    pvalue: float
    pvalue_adjusted: float
    df_num: int
    df_denom: int
    partial_omega_squared: float
    verdict: Verdict

    @property
    def ratio(self) -> float | None:
        return self.effect / self.noise_effect if self.noise_effect > 0 else None

    @property
    def adjusted_ratio(self) -> float | None:
        return self.adjusted_effect / self.noise_effect if self.noise_effect > 0 else None

    @property
    def means_at_epoch(self) -> np.ndarray:
        return self.group_means[:, self.epoch_index]

    @property
    def best_value(self) -> str:
        return self.labels[int(np.argmax(self.means_at_epoch))]

    @property
    def worst_value(self) -> str:
        return self.labels[int(np.argmin(self.means_at_epoch))]

    @property
    def adjusted_differs(self) -> bool:
        """Adjusting for the other parameters changed the effect (the design is not orthogonal)."""
        return abs(self.adjusted_effect - self.effect) > 1e-9 * max(1.0, abs(self.effect))


@dataclass(frozen=True)
class Interaction:
    """A two-way interaction's F test (type II, in the model with all two-way terms)."""

    term: str
    df_num: int
    df_denom: int
    statistic: float
    pvalue: float
    pvalue_adjusted: float
    partial_omega_squared: float


@dataclass(frozen=True)
class SignalEffectsResult:
    """Every parameter's effect and test at the analysed epoch, and the checks around them."""

    rule: DecisionRule
    """The rule as requested (its ``error`` may fall back, see ``error``)."""
    error: ErrorTerm
    """The error term the tests used."""
    fallback: str | None
    """Why ``error`` differs from the requested one."""
    model: factorial.SignalModel
    tests: FTests
    params: dict[str, ParameterEffect]
    interactions: list[Interaction]

    @property
    def error_sd(self) -> float:
        return float(np.sqrt(self.tests.mean_square_error[0]))

    @property
    def orthogonal(self) -> bool:
        """No parameter's effect changes when adjusted for the others."""
        return not any(p.adjusted_differs for p in self.params.values())


# -- compute ------------------------------------------------------------------------------


def compute_signal_effects(context: AnalysisContext, rule: DecisionRule) -> SignalEffectsResult:
    """Test every parameter in the additive model and decide by ``rule``."""
    model = context.model
    error, fallback = model.error_for(rule.error)
    tests = model.tests(error)
    adjusted = power.adjust_columns(tests.pvalue, rule.correction)[:, 0]
    params = {
        name: _parameter_effect(
            context.params[name], context, tests, row, float(adjusted[row]), rule
        )
        for row, name in enumerate(context.params)
    }
    return SignalEffectsResult(
        rule, error, fallback, model, tests, params, _interactions(model, error, rule.correction)
    )


def _parameter_effect(
    param: Parameter,
    context: AnalysisContext,
    tests: FTests,
    row: int,
    pvalue_adjusted: float,
    rule: DecisionRule,
) -> ParameterEffect:
    """``param``'s effect, noise effect and F test (row ``row`` of ``tests``), with its verdict."""
    means = stats.group_means(context.signal, param.codes, param.k)
    i = context.epoch_index
    effect = float((means.max(axis=0) - means.min(axis=0))[i])
    adjusted_effect = float(np.ptp(factorial.level_effects(context.model.additive, param.name)))
    noise_effect = context.noise_null(param.name).median
    adjusted_ratio = adjusted_effect / noise_effect if noise_effect > 0 else None
    return ParameterEffect(
        name=param.name,
        labels=param.labels,
        sizes=param.sizes,
        group_means=means,
        epoch_index=i,
        effect=effect,
        adjusted_effect=adjusted_effect,
        noise_effect=noise_effect,
        statistic=float(tests.statistic[row, 0]),
        pvalue=float(tests.pvalue[row, 0]),
        pvalue_adjusted=pvalue_adjusted,
        df_num=int(tests.df_num[row]),
        df_denom=int(tests.df_denom),
        partial_omega_squared=float(tests.partial_omega_squared[row, 0]),
        verdict=rule.verdict(pvalue_adjusted, adjusted_ratio),
    )


def _interactions(
    model: factorial.SignalModel, error: ErrorTerm, correction: Correction
) -> list[Interaction]:
    """The two-way interactions' tests, corrected among themselves; none without df for them."""
    tests = model.interaction_tests(error)
    if tests is None:
        return []
    rows = [j for j, term in enumerate(tests.terms) if ":" in term and tests.df_num[j] > 0]
    if not rows:
        return []
    adjusted = power.adjust_columns(tests.pvalue[rows, :], correction)[:, 0]
    return [
        Interaction(
            term=tests.terms[j],
            df_num=int(tests.df_num[j]),
            df_denom=int(tests.df_denom),
            statistic=float(tests.statistic[j, 0]),
            pvalue=float(tests.pvalue[j, 0]),
            pvalue_adjusted=float(adj),
            partial_omega_squared=float(tests.partial_omega_squared[j, 0]),
        )
        for j, adj in zip(rows, adjusted, strict=True)
    ]


# -- render -------------------------------------------------------------------------------


def render_signal_effects(result: SignalEffectsResult, context: AnalysisContext) -> AnalysisResult:
    """The result as findings, tables, figures and report.json's summary."""
    return AnalysisResult(
        _to_summary(result, context),
        _findings(result, context),
        _tables(result, context),
        _figures(result, context),
        [] if result.fallback is None else [result.fallback],
    )


def _to_summary(result: SignalEffectsResult, context: AnalysisContext) -> dict[str, Any]:
    """report.json's ``analyses["signal-effects"]``."""
    rule, model, tests = result.rule, result.model, result.tests
    return {
        "epoch": context.epoch,
        "epochs": [int(e) for e in context.epochs],
        "alpha": rule.alpha,
        "signal_ratio": rule.signal_ratio,
        "correction": rule.correction,
        "test": "type II F test of each parameter in an additive model of the signal runs",
        "error": result.error,
        "error_requested": rule.error,
        "error_df": tests.df_denom,
        "error_sd": result.error_sd,
        "signal_runs": model.additive.n,
        "configurations": model.configurations,
        "variance_check": _variance_summary(model.variance),
        "anova": _anova_rows(model, tests),
        "interactions": [_interaction_summary(r) for r in result.interactions],
        "params": {n: _parameter_summary(p) for n, p in result.params.items()},
    }


def _parameter_summary(p: ParameterEffect) -> dict[str, Any]:
    curve = p.group_means.max(axis=0) - p.group_means.min(axis=0)
    return {
        "effect": p.effect,
        "adjusted_effect": p.adjusted_effect,
        "noise_effect": p.noise_effect,
        "ratio": p.ratio,
        "adjusted_ratio": p.adjusted_ratio,
        "p_value": p.pvalue,
        "f_statistic": p.statistic,
        "df_num": p.df_num,
        "df_denom": p.df_denom,
        "partial_omega_squared": p.partial_omega_squared,
        "best_value": p.best_value,
        "worst_value": p.worst_value,
        "means": dict(zip(p.labels, p.means_at_epoch.tolist(), strict=True)),
        "runs_per_value": dict(zip(p.labels, p.sizes.tolist(), strict=True)),
        "effect_per_epoch": curve.tolist(),
        "group_means": {lab: p.group_means[j].tolist() for j, lab in enumerate(p.labels)},
        "p_adjusted": p.pvalue_adjusted,
        "verdict": p.verdict,
    }


def _interaction_summary(r: Interaction) -> dict[str, Any]:
    return {
        "term": r.term,
        "df_num": r.df_num,
        "df_denom": r.df_denom,
        "f_statistic": r.statistic,
        "p_value": r.pvalue,
        "p_adjusted": r.pvalue_adjusted,
        "partial_omega_squared": r.partial_omega_squared,
    }


def _variance_summary(check: factorial.VarianceCheck | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {
        "source": check.source,
        "signal_sd": check.signal_sd,
        "signal_df": check.signal_df,
        "noise_sd": check.noise_sd,
        "noise_df": check.noise_df,
        "variance_ratio": check.variance_ratio,
        "p_value": check.pvalue,
    }


def _findings(result: SignalEffectsResult, context: AnalysisContext) -> list[str]:
    """One sentence per parameter, the seed-noise check, and the significant interactions."""
    out = [_finding(p, result.rule.correction, context) for p in result.params.values()]
    check = result.model.variance
    if check is not None:
        out.append(_variance_finding(check, result.error, context, result.rule.alpha))
    significant = [r for r in result.interactions if r.pvalue_adjusted < result.rule.alpha]
    if significant:
        out.append(
            "Interactions: "
            + "; ".join(
                f"{r.term} F({r.df_num}, {r.df_denom}) = {r.statistic:.3g}, "
                f"adjusted {p_text(r.pvalue_adjusted)}"
                for r in significant
            )
            + ". The effect of one of these parameters depends on the other's value; the "
            "main effects above average over it."
        )
    return out


def _finding(p: ParameterEffect, correction: Correction, context: AnalysisContext) -> str:
    ratio = p.adjusted_ratio
    times = format_ratio(ratio) if ratio is not None else "infinitely many times"
    corrected = (
        "" if correction == "none" else f", {correction}-adjusted {p_text(p.pvalue_adjusted)}"
    )
    adjusted = ""
    if p.adjusted_differs:
        adjusted = f"; {context.fmt(p.adjusted_effect)} adjusted for the other parameters"
    means = dict(zip(p.labels, p.means_at_epoch.tolist(), strict=True))
    return (
        f"{p.name}: {p.verdict}. At epoch {context.epoch} the group means differ by "
        f"{context.fmt(p.effect)} (best {p.best_value}: "
        f"{context.fmt(means[p.best_value])}, worst {p.worst_value}: "
        f"{context.fmt(means[p.worst_value])}{adjusted}), {times} the noise effect "
        f"of {context.fmt(p.noise_effect)}; F({p.df_num}, {p.df_denom}) = "
        f"{p.statistic:.3g}, {p_text(p.pvalue)}{corrected}, partial ω² = "
        f"{p.partial_omega_squared:.2f}."
    )


def _tables(result: SignalEffectsResult, context: AnalysisContext) -> list[Table]:
    """The effects table, the interactions (when tested) and the group means (report only)."""
    out = [_effects_table(result, context)]
    if result.interactions:
        out.append(
            Table(
                f"Two-way interactions at epoch {context.epoch} (type II, main effects and all "
                f"two-way terms in the model)",
                pd.DataFrame(
                    [
                        {
                            "interaction": r.term,
                            "df": r.df_num,
                            "F": r.statistic,
                            "p": r.pvalue,
                            "p adj.": r.pvalue_adjusted,
                            "ω²p": r.partial_omega_squared,
                        }
                        for r in result.interactions
                    ]
                ),
                {"F": ".3g", "p": "p", "p adj.": "p", "ω²p": ".3f"},
            )
        )
    means_rows = [
        {"parameter": n, "value": label, "runs": int(size), "mean": mean}
        for n, p in result.params.items()
        for label, size, mean in zip(p.labels, p.sizes, p.means_at_epoch, strict=True)
    ]
    out.append(
        Table(
            f"Group means at epoch {context.epoch}",
            pd.DataFrame(means_rows),
            {"mean": context.metric_format},
            terminal=False,
        )
    )
    return out


def _effects_table(result: SignalEffectsResult, context: AnalysisContext) -> Table:
    fmt = context.metric_format
    orthogonal = result.orthogonal
    effect_columns = ["effect", "adj. effect"] if not orthogonal else ["effect"]
    rows = [
        {
            "parameter": n,
            "values": context.params[n].k,
            "effect": p.effect,
            **({"adj. effect": p.adjusted_effect} if not orthogonal else {}),
            "noise effect": p.noise_effect,
            "ratio": p.adjusted_ratio,
            "F": p.statistic,
            "df": p.df_num,
            "p": p.pvalue,
            "p adj.": p.pvalue_adjusted,
            "ω²p": p.partial_omega_squared,
            "verdict": p.verdict,
        }
        for n, p in result.params.items()
    ]
    return Table(
        f"Signal effect vs noise effect at epoch {context.epoch}; F tests against "
        f"{ERROR_WORDS[result.error]} ({result.tests.df_denom} df)",
        pd.DataFrame(rows),
        {
            **dict.fromkeys(effect_columns, fmt),
            "noise effect": fmt,
            "ratio": "x",
            "F": ".3g",
            "p": "p",
            "p adj.": "p",
            "ω²p": ".3f",
        },
    )


def _figures(result: SignalEffectsResult, context: AnalysisContext) -> list[Figure]:
    """Per parameter: group curves beside a random noise split; then parallel coordinates and
    the effect bars."""
    percent = context.metric_format.endswith("%")
    out = [_curves_figure(p, context) for p in result.params.values()]
    params = list(context.params.values())
    out.append(
        Figure(
            "parallel",
            f"Signal runs across the parameters' values, coloured by {context.metric} at "
            f"epoch {context.epoch}.",
            plots.parallel_coordinates(
                [p.name for p in params],
                [p.labels for p in params],
                [p.codes for p in params],
                context.signal_at_epoch,
                metric=context.metric,
                percent=percent,
            ),
        )
    )
    names = list(result.params)
    nulls = [context.noise_null(n) for n in names]
    q = np.array([n.quantile([0.05, 0.95]) for n in nulls])
    out.append(
        Figure(
            "effects",
            f"Signal effect and noise effect per parameter at epoch {context.epoch}.",
            plots.effect_bars(
                names,
                np.array([result.params[n].effect for n in names]),
                np.array([n.median for n in nulls]),
                q[:, 0],
                q[:, 1],
                metric=context.metric,
                percent=percent,
            ),
        )
    )
    return out


def _curves_figure(p: ParameterEffect, context: AnalysisContext) -> Figure:
    """``p``'s group means per epoch beside the noise runs split at random the same way."""
    param = context.params[p.name]
    signal = (p.group_means, *_group_extremes(context.signal, param.codes, param.k))
    return Figure(
        "curves-" + _slug(p.name),
        f"{p.name}: group means with min-max bands per value (left) beside the noise "
        f"runs split at random into groups of the same sizes (right).",
        plots.group_curves(
            p.name,
            param.labels,
            context.epochs,
            signal,
            _random_split(context, param),
            metric=context.metric,
            percent=context.metric_format.endswith("%"),
        ),
    )


def _group_extremes(values: np.ndarray, codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    lows = np.stack([values[codes == j].min(axis=0) for j in range(k)])
    highs = np.stack([values[codes == j].max(axis=0) for j in range(k)])
    return lows, highs


def _random_split(
    context: AnalysisContext, param: Parameter
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The noise runs split once at random into the parameter's group sizes (an illustration)."""
    rng = context.rng(f"noise-split:{param.name}")
    n_noise, total = len(context.noise_ids), int(param.sizes.sum())
    if total <= n_noise:
        rows = rng.permutation(n_noise)[:total]
    else:
        rows = rng.integers(0, n_noise, size=total)
    codes = np.repeat(np.arange(param.k), param.sizes)
    values = context.noise[rows]
    return (stats.group_means(values, codes, param.k), *_group_extremes(values, codes, param.k))


def _anova_rows(model: factorial.SignalModel, tests: FTests) -> list[dict[str, Any]]:
    """The additive model's type II table, residual and noise rows included (report.json)."""
    table = model.additive
    rows: list[dict[str, Any]] = [
        {
            "term": term,
            "sum_sq": float(table.ss[j, 0]),
            "df": int(table.df[j]),
            "f_statistic": float(tests.statistic[j, 0]),
            "p_value": float(tests.pvalue[j, 0]),
            "partial_omega_squared": float(tests.partial_omega_squared[j, 0]),
        }
        for j, term in enumerate(table.terms)
    ]
    rows.append(
        {"term": "residual (signal runs)", "sum_sq": float(table.rss[0]), "df": table.df_resid}
    )
    rows.append({"term": "noise runs", "sum_sq": float(model.noise_ss[0]), "df": model.noise_df})
    return rows


def _variance_finding(
    check: factorial.VarianceCheck, error: ErrorTerm, context: AnalysisContext, alpha: float
) -> str:
    """The assumption check in words: is seed noise in the signal runs the noise runs' size?"""
    where = (
        "between runs of the same configuration"
        if check.source == "replicates"
        else "around the additive model"
    )
    numbers = (
        f"sd {context.fmt(check.signal_sd)} {where} against {context.fmt(check.noise_sd)} in the "
        f"noise runs (variance ratio {check.variance_ratio:.2f}, F({check.signal_df}, "
        f"{check.noise_df}), two-sided {p_text(check.pvalue)})"
    )
    if check.pvalue >= alpha:
        return f"Seed noise check: the signal runs vary as much as the noise runs: {numbers}."
    if check.variance_ratio > 1:
        cause = (
            "seed noise is larger at other configurations than at the noise sweep's"
            if check.source == "replicates"
            else "seed noise is larger at other configurations than at the noise sweep's, or the "
            "parameters interact"
        )
        use = (
            "The F tests use the signal residuals, which already hold it."
            if error == "signal"
            else f"The F tests use {ERROR_WORDS[error]} and are too liberal here; use "
            f"--signal-effects.error signal."
        )
        return (
            f"Seed noise check: the signal runs vary more than the noise runs: {numbers}. The "
            f"noise runs understate the noise: {cause}. {use}"
        )
    return (
        f"Seed noise check: the signal runs vary less than the noise runs: {numbers}; tests "
        f"against the noise runs' variance are conservative here."
    )


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
