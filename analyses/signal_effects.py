"""signal-effects: each parameter's effect, described against its noise effect and tested with a
calibrated F test.

The description is the study's: a parameter's group-mean effect (max - min of the mean metric of
its values), its noise effect (the same statistic on the noise runs split at random into groups of
the same sizes) and their ratio. The p-value is not read from those splits (that would ignore the
noise runs' own sampling error and is anti-conservative): it comes from the type II F test of an
additive model of the signal runs over every analysed parameter (``factorial``), against the error
term ``error`` names. ``docs/validation.md`` shows the test's false-positive rate by simulation.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

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
from lightning_app.analysis.factorial import ErrorTerm, FTests
from lightning_app.analysis.formatting import format_ratio, p_text
from lightning_app.analysis.parameters import Parameter
from lightning_app.analysis.power import Correction
from lightning_app.runs.runset import RunSet

Verdict = Literal["signal", "weak", "noise"]

ERROR_WORDS = {
    "signal": "the signal runs' residuals around the additive model",
    "noise": "the noise runs' variance",
    "pooled": "the signal residuals and the noise runs pooled",
}


def verdict(p_adjusted: float, ratio: float | None, alpha: float, signal_ratio: float) -> Verdict:
    """``noise`` unless significant after correction; then ``signal`` if the effect is at least
    ``signal_ratio`` times the noise effect, else ``weak``.

    Significance alone is not enough: with many runs a tiny effect becomes significant, and the
    study's point is the size of an effect relative to what reseeding gives. A ratio of None
    (the noise effect is exactly 0) counts as infinitely large.
    """
    if not p_adjusted < alpha:
        return "noise"
    if ratio is None or ratio >= signal_ratio:
        return "signal"
    return "weak"


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
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
        if signal_ratio < 1:
            raise ValueError(f"signal_ratio must be at least 1, got {signal_ratio}")
        factorial.check_error_term(error)
        self.alpha = alpha
        self.signal_ratio = signal_ratio
        self.correction = correction
        self.error = error

    def run(self, runs: RunSet, context: AnalysisContext) -> AnalysisResult:
        i = context.epoch_index
        fmt = context.metric_format
        model = context.model
        error, fallback = model.error_for(self.error)
        tests = model.tests(error)
        names = list(context.params)
        adjusted = power.adjust_columns(tests.pvalue, self.correction)[:, 0]
        results: dict[str, dict[str, Any]] = {}
        for row, name in enumerate(names):
            results[name] = self._one(context.params[name], context, i, tests, row)
            results[name]["p_adjusted"] = float(adjusted[row])
        for res in results.values():
            res["verdict"] = verdict(
                res["p_adjusted"], res["adjusted_ratio"], self.alpha, self.signal_ratio
            )

        notes = [] if fallback is None else [fallback]
        findings = [self._finding(n, results[n], context) for n in names]
        check = model.variance
        check_summary = None
        if check is not None:
            check_summary = dataclasses.asdict(check)
            findings.append(_variance_finding(check, error, context, self.alpha))
        interactions = self._interactions(model, error)
        significant = [r for r in interactions if r["p_adjusted"] < self.alpha]
        if significant:
            findings.append(
                "Interactions: "
                + "; ".join(
                    f"{r['term']} F({r['df_num']}, {r['df_denom']}) = {r['f_statistic']:.3g}, "
                    f"adjusted {p_text(r['p_adjusted'])}"
                    for r in significant
                )
                + ". The effect of one of these parameters depends on the other's value; the "
                "main effects above average over it."
            )
        summary = {
            "epoch": context.epoch,
            "epochs": [int(e) for e in context.epochs],
            "alpha": self.alpha,
            "signal_ratio": self.signal_ratio,
            "correction": self.correction,
            "test": "type II F test of each parameter in an additive model of the signal runs",
            "error": error,
            "error_requested": self.error,
            "error_df": tests.df_denom,
            "error_sd": float(np.sqrt(tests.mean_square_error[0])),
            "signal_runs": model.additive.n,
            "configurations": model.configurations,
            "variance_check": check_summary,
            "anova": _anova_rows(model, tests),
            "interactions": interactions,
            "params": {
                n: {k: v for k, v in r.items() if not k.startswith("_")} for n, r in results.items()
            },
        }
        orthogonal = not any(_adjusted_differs(r) for r in results.values())
        effect_columns = ["effect", "adj. effect"] if not orthogonal else ["effect"]
        table = Table(
            f"Signal effect vs noise effect at epoch {context.epoch}; F tests against "
            f"{ERROR_WORDS[error]} ({tests.df_denom} df)",
            pd.DataFrame(
                [
                    {
                        "parameter": n,
                        "values": context.params[n].k,
                        "effect": r["effect"],
                        **({"adj. effect": r["adjusted_effect"]} if not orthogonal else {}),
                        "noise effect": r["noise_effect"],
                        "ratio": r["adjusted_ratio"],
                        "F": r["f_statistic"],
                        "df": r["df_num"],
                        "p": r["p_value"],
                        "p adj.": r["p_adjusted"],
                        "ω²p": r["partial_omega_squared"],
                        "verdict": r["verdict"],
                    }
                    for n, r in results.items()
                ]
            ),
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
        means_rows = [
            {"parameter": n, "value": label, "runs": int(size), "mean": mean}
            for n, r in results.items()
            for label, size, mean in zip(
                context.params[n].labels, context.params[n].sizes, r["_means"][:, i], strict=True
            )
        ]
        tables = [table]
        if interactions:
            tables.append(
                Table(
                    f"Two-way interactions at epoch {context.epoch} (type II, main effects and all "
                    f"two-way terms in the model)",
                    pd.DataFrame(
                        [
                            {
                                "interaction": r["term"],
                                "df": r["df_num"],
                                "F": r["f_statistic"],
                                "p": r["p_value"],
                                "p adj.": r["p_adjusted"],
                                "ω²p": r["partial_omega_squared"],
                            }
                            for r in interactions
                        ]
                    ),
                    {"F": ".3g", "p": "p", "p adj.": "p", "ω²p": ".3f"},
                )
            )
        tables.append(
            Table(
                f"Group means at epoch {context.epoch}",
                pd.DataFrame(means_rows),
                {"mean": fmt},
                terminal=False,
            )
        )
        return AnalysisResult(summary, findings, tables, self._figures(results, context), notes)

    # -- per parameter --------------------------------------------------------------------
    def _one(
        self, param: Parameter, context: AnalysisContext, i: int, tests: FTests, row: int
    ) -> dict[str, Any]:
        means = stats.group_means(context.signal, param.codes, param.k)
        effect_curve = means.max(axis=0) - means.min(axis=0)
        effect = float(effect_curve[i])
        adjusted_effect = float(np.ptp(factorial.level_effects(context.model.additive, param.name)))
        null = context.noise_null(param.name)
        noise_effect = null.median
        labels = param.labels
        at_epoch = means[:, i]
        return {
            "effect": effect,
            "adjusted_effect": adjusted_effect,
            "noise_effect": noise_effect,
            "ratio": effect / noise_effect if noise_effect > 0 else None,
            "adjusted_ratio": adjusted_effect / noise_effect if noise_effect > 0 else None,
            "p_value": float(tests.pvalue[row, 0]),
            "f_statistic": float(tests.statistic[row, 0]),
            "df_num": int(tests.df_num[row]),
            "df_denom": int(tests.df_denom),
            "partial_omega_squared": float(tests.partial_omega_squared[row, 0]),
            "best_value": labels[int(np.argmax(at_epoch))],
            "worst_value": labels[int(np.argmin(at_epoch))],
            "means": dict(zip(labels, at_epoch.tolist(), strict=True)),
            "runs_per_value": dict(zip(labels, param.sizes.tolist(), strict=True)),
            "effect_per_epoch": effect_curve.tolist(),
            "group_means": {lab: means[j].tolist() for j, lab in enumerate(labels)},
            "_means": means,
        }

    def _interactions(self, model: factorial.SignalModel, error: ErrorTerm) -> list[dict[str, Any]]:
        tests = model.interaction_tests(error)
        if tests is None:
            return []
        rows = [j for j, term in enumerate(tests.terms) if ":" in term and tests.df_num[j] > 0]
        if not rows:
            return []
        p = tests.pvalue[rows, :]
        adjusted = power.adjust_columns(p, self.correction)[:, 0]
        return [
            {
                "term": tests.terms[j],
                "df_num": int(tests.df_num[j]),
                "df_denom": int(tests.df_denom),
                "f_statistic": float(tests.statistic[j, 0]),
                "p_value": float(tests.pvalue[j, 0]),
                "p_adjusted": float(adj),
                "partial_omega_squared": float(tests.partial_omega_squared[j, 0]),
            }
            for j, adj in zip(rows, adjusted, strict=True)
        ]

    def _finding(self, name: str, r: dict[str, Any], context: AnalysisContext) -> str:
        ratio = r["adjusted_ratio"]
        times = format_ratio(ratio) if ratio is not None else "infinitely many times"
        correction = (
            ""
            if self.correction == "none"
            else f", {self.correction}-adjusted {p_text(r['p_adjusted'])}"
        )
        adjusted = ""
        if _adjusted_differs(r):
            adjusted = f"; {context.fmt(r['adjusted_effect'])} adjusted for the other parameters"
        return (
            f"{name}: {r['verdict']}. At epoch {context.epoch} the group means differ by "
            f"{context.fmt(r['effect'])} (best {r['best_value']}: "
            f"{context.fmt(r['means'][r['best_value']])}, worst {r['worst_value']}: "
            f"{context.fmt(r['means'][r['worst_value']])}{adjusted}), {times} the noise effect "
            f"of {context.fmt(r['noise_effect'])}; F({r['df_num']}, {r['df_denom']}) = "
            f"{r['f_statistic']:.3g}, {p_text(r['p_value'])}{correction}, partial ω² = "
            f"{r['partial_omega_squared']:.2f}."
        )

    # -- figures --------------------------------------------------------------------------
    def _figures(
        self, results: dict[str, dict[str, Any]], context: AnalysisContext
    ) -> list[Figure]:
        percent = context.metric_format.endswith("%")
        figures = []
        for name, r in results.items():
            param = context.params[name]
            signal = (r["_means"], *_group_extremes(context.signal, param.codes, param.k))
            noise = _random_split(context, param)
            figures.append(
                Figure(
                    "curves-" + _slug(name),
                    f"{name}: group means with min-max bands per value (left) beside the noise "
                    f"runs split at random into groups of the same sizes (right).",
                    plots.group_curves(
                        name,
                        param.labels,
                        context.epochs,
                        signal,
                        noise,
                        metric=context.metric,
                        percent=percent,
                    ),
                )
            )
        params = list(context.params.values())
        figures.append(
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
        names = list(results)
        nulls = [context.noise_null(n) for n in names]
        q = np.array([n.quantile([0.05, 0.95]) for n in nulls])
        figures.append(
            Figure(
                "effects",
                f"Signal effect and noise effect per parameter at epoch {context.epoch}.",
                plots.effect_bars(
                    names,
                    np.array([results[n]["effect"] for n in names]),
                    np.array([n.median for n in nulls]),
                    q[:, 0],
                    q[:, 1],
                    metric=context.metric,
                    percent=percent,
                ),
            )
        )
        return figures


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


def _adjusted_differs(r: dict[str, Any]) -> bool:
    """Adjusting for the other parameters changed the effect (the design is not orthogonal)."""
    return abs(r["adjusted_effect"] - r["effect"]) > 1e-9 * max(1.0, abs(r["effect"]))


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
        f"{check.noise_df}), two-sided {p_text(check.p_value)})"
    )
    if check.p_value >= alpha:
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
