"""signal-effects: each parameter's group-mean effect, measured against the noise effect."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from lightning_app.analysis import (
    Analysis,
    AnalysisContext,
    AnalysisResult,
    Figure,
    Table,
    plots,
    stats,
)
from lightning_app.analysis.formatting import format_ratio, p_text
from lightning_app.analysis.parameters import Parameter
from lightning_app.runs.runset import RunSet

Verdict = Literal["signal", "weak", "noise"]


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
    """Group-mean effect per parameter vs the noise null, classical tests, corrected verdicts."""

    name = "signal-effects"
    order = 20
    description = (
        "Each parameter's effect (max - min of group means) vs its noise effect: ratio, p-value, "
        "verdict."
    )

    def __init__(
        self,
        alpha: float = 0.05,
        signal_ratio: float = 5.0,
        correction: Literal["holm", "bonferroni", "fdr_bh", "none"] = "holm",
        classical_test: Literal["anova", "kruskal"] = "anova",
    ) -> None:
        """
        Args:
            alpha: Significance level, applied to p-values corrected across the parameters.
            signal_ratio: A significant effect at least this many times its noise effect is
                "signal"; a smaller significant one is "weak"; a non-significant one is "noise".
            correction: Multiple-testing correction across parameters (statsmodels multipletests:
                holm controls the family-wise error; fdr_bh the false discovery rate).
            classical_test: Test within the signal runs reported beside the permutation test:
                one-way ANOVA (effect size omega squared) or Kruskal-Wallis (epsilon squared).
        """
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
        if signal_ratio < 1:
            raise ValueError(f"signal_ratio must be at least 1, got {signal_ratio}")
        self.alpha = alpha
        self.signal_ratio = signal_ratio
        self.correction = correction
        self.classical_test = classical_test

    def run(self, runs: RunSet, context: AnalysisContext) -> AnalysisResult:
        i = context.epoch_index
        fmt = context.metric_format
        results: dict[str, dict[str, Any]] = {}
        for name, param in context.params.items():
            results[name] = self._one(param, context, i)
        names = list(results)
        self._correct(results, names, "p_value", "p_adjusted")
        classical_names = [n for n in names if results[n]["classical"] is not None]
        if classical_names:
            sub = {n: results[n]["classical"] for n in classical_names}
            self._correct(sub, classical_names, "p_value", "p_adjusted")
        for res in results.values():
            res["verdict"] = verdict(res["p_adjusted"], res["ratio"], self.alpha, self.signal_ratio)

        notes = []
        min_p = 1 / (context.permutations + 1)
        if self.correction != "none" and min_p * len(names) >= self.alpha:
            notes.append(
                f"With {context.permutations} permutations the smallest permutation p-value is "
                f"{min_p:.3g}; after correcting for {len(names)} parameters nothing can reach "
                f"alpha={self.alpha}. Use more --permutations."
            )
        summary = {
            "epoch": context.epoch,
            "epochs": [int(e) for e in context.epochs],
            "alpha": self.alpha,
            "signal_ratio": self.signal_ratio,
            "correction": self.correction,
            "classical_test": self.classical_test,
            "params": {
                n: {k: v for k, v in r.items() if not k.startswith("_")} for n, r in results.items()
            },
        }
        findings = [self._finding(n, results[n], context) for n in names]
        table = Table(
            f"Signal effect vs noise effect at epoch {context.epoch}",
            pd.DataFrame(
                [
                    {
                        "parameter": n,
                        "values": context.params[n].k,
                        "effect": r["effect"],
                        "noise effect": r["noise_effect"],
                        "ratio": r["ratio"],
                        "p": r["p_value"],
                        "p adj.": r["p_adjusted"],
                        _classical_column(self.classical_test): (r["classical"] or {}).get(
                            "p_adjusted"
                        ),
                        _effect_size_name(self.classical_test): (r["classical"] or {}).get(
                            "effect_size"
                        ),
                        "verdict": r["verdict"],
                    }
                    for n, r in results.items()
                ]
            ),
            {
                "effect": fmt,
                "noise effect": fmt,
                "ratio": "x",
                "p": "p",
                "p adj.": "p",
                _classical_column(self.classical_test): "p",
                _effect_size_name(self.classical_test): ".3f",
            },
        )
        means_rows = [
            {"parameter": n, "value": label, "runs": int(size), "mean": mean}
            for n, r in results.items()
            for label, size, mean in zip(
                context.params[n].labels, context.params[n].sizes, r["_means"][:, i], strict=True
            )
        ]
        tables = [
            table,
            Table(
                f"Group means at epoch {context.epoch}",
                pd.DataFrame(means_rows),
                {"mean": fmt},
                terminal=False,
            ),
        ]
        return AnalysisResult(summary, findings, tables, self._figures(results, context), notes)

    # -- per parameter --------------------------------------------------------------------
    def _one(self, param: Parameter, context: AnalysisContext, i: int) -> dict[str, Any]:
        means = stats.group_means(context.signal, param.codes, param.k)
        effect_curve = means.max(axis=0) - means.min(axis=0)
        effect = float(effect_curve[i])
        null = context.noise_null(param.name)
        noise_effect = null.median
        ratio = effect / noise_effect if noise_effect > 0 else None
        classical = None
        if param.sizes.min() >= 2:
            tests = stats.oneway_tests(context.signal_at_epoch, param.codes, param.k)
            if self.classical_test == "anova":
                classical = {
                    "test": "anova",
                    "statistic": tests.f_statistic,
                    "p_value": tests.anova_p,
                    "effect_size": tests.omega_squared,
                    "effect_size_name": "omega_squared",
                }
            else:
                classical = {
                    "test": "kruskal",
                    "statistic": tests.h_statistic,
                    "p_value": tests.kruskal_p,
                    "effect_size": tests.epsilon_squared,
                    "effect_size_name": "epsilon_squared",
                }
        labels = param.labels
        at_epoch = means[:, i]
        return {
            "effect": effect,
            "noise_effect": noise_effect,
            "ratio": ratio,
            "p_value": null.p_value(effect),
            "best_value": labels[int(np.argmax(at_epoch))],
            "worst_value": labels[int(np.argmin(at_epoch))],
            "means": dict(zip(labels, at_epoch.tolist(), strict=True)),
            "runs_per_value": dict(zip(labels, param.sizes.tolist(), strict=True)),
            "effect_per_epoch": effect_curve.tolist(),
            "group_means": {lab: means[j].tolist() for j, lab in enumerate(labels)},
            "classical": classical,
            "_means": means,
        }

    def _correct(
        self, results: dict[str, dict[str, Any]], names: list[str], key: str, out: str
    ) -> None:
        pvals = np.array([results[n][key] for n in names], dtype=float)
        if self.correction == "none":
            adjusted = pvals
        else:
            adjusted = multipletests(pvals, alpha=self.alpha, method=self.correction)[1]
        for n, p in zip(names, adjusted, strict=True):
            results[n][out] = float(p)

    def _finding(self, name: str, r: dict[str, Any], context: AnalysisContext) -> str:
        ratio = format_ratio(r["ratio"]) if r["ratio"] is not None else "infinitely many times"
        correction = (
            ""
            if self.correction == "none"
            else f", {self.correction}-adjusted {p_text(r['p_adjusted'])}"
        )
        classical = ""
        if r["classical"] is not None:
            c = r["classical"]
            label = "ANOVA F" if c["test"] == "anova" else "Kruskal-Wallis H"
            symbol = "ω²" if c["test"] == "anova" else "ε²"
            classical = (
                f"; within the signal runs {label} = {c['statistic']:.3g}, "
                f"{p_text(c['p_value'])}, {symbol} = {c['effect_size']:.3f}"
            )
        return (
            f"{name}: {r['verdict']}. At epoch {context.epoch} the group means differ by "
            f"{context.fmt(r['effect'])} (best {r['best_value']}: "
            f"{context.fmt(r['means'][r['best_value']])}, worst {r['worst_value']}: "
            f"{context.fmt(r['means'][r['worst_value']])}), {ratio} the noise effect of "
            f"{context.fmt(r['noise_effect'])} (permutation {p_text(r['p_value'])}"
            f"{correction}){classical}."
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


def _classical_column(test: str) -> str:
    return ("ANOVA" if test == "anova" else "Kruskal") + " p adj."


def _effect_size_name(test: str) -> str:
    return "ω²" if test == "anova" else "ε²"


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
