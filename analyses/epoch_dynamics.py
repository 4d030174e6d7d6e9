"""epoch-dynamics: how much more the signal runs spread than the noise runs, epoch by epoch.

As every built-in: :func:`compute_epoch_dynamics` returns a frozen
:class:`EpochDynamicsResult`, :func:`render_epoch_dynamics` words it.
"""

from __future__ import annotations

from dataclasses import dataclass
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
from lightning_app.runs.runset import RunSet

Center = Literal["median", "mean", "trimmed"]
EpochCorrection = Literal["holm", "bonferroni", "fdr_bh", "none"]


class EpochDynamics(Analysis):
    """Per-epoch spread (range and std over runs) of signal vs noise, with Levene's test."""

    name = "epoch-dynamics"
    order = 40
    description = "Signal vs noise spread of individual runs per epoch, their ratio, Levene's test."

    def __init__(
        self,
        alpha: float = 0.05,
        center: Center = "median",
        correction: EpochCorrection = "holm",
    ) -> None:
        """
        Args:
            alpha: Significance level of the equal-variance test, after correction over epochs.
            center: Levene's centre; median (Brown-Forsythe) is robust to skewed accuracies.
            correction: Multiple-testing correction across epochs (statsmodels multipletests).
        """
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
        self.alpha = alpha
        self.center = center
        self.correction = correction

    def run(self, runs: RunSet, context: AnalysisContext) -> AnalysisResult:
        result = compute_epoch_dynamics(context, self.alpha, self.center, self.correction)
        return render_epoch_dynamics(result, context)


@dataclass(frozen=True)
class EpochDynamicsResult:
    """Per epoch: the spread of signal and noise runs, their ratios and Levene's test."""

    alpha: float
    center: Center
    correction: EpochCorrection
    epochs: np.ndarray
    signal: stats.Spread
    noise: stats.Spread
    range_ratio: np.ndarray
    """Signal range / noise range (NaN where the noise range is 0)."""
    std_ratio: np.ndarray
    statistic: np.ndarray
    """Levene's W per epoch."""
    pvalue: np.ndarray
    pvalue_adjusted: np.ndarray
    """Corrected over the epochs that could be tested (NaN elsewhere)."""
    signal_runs: int
    noise_runs: int

    @property
    def significant(self) -> np.ndarray:
        return np.where(np.isfinite(self.pvalue), self.pvalue_adjusted < self.alpha, False)


def compute_epoch_dynamics(
    context: AnalysisContext, alpha: float, center: Center, correction: EpochCorrection
) -> EpochDynamicsResult:
    """Spread of both groups per epoch and Levene's test of equal variances, corrected."""
    sig = stats.spread(context.signal)
    noi = stats.spread(context.noise)
    with np.errstate(divide="ignore", invalid="ignore"):
        range_ratio = np.where(noi.range > 0, sig.range / noi.range, np.nan)
        std_ratio = np.where(noi.std > 0, sig.std / noi.std, np.nan)
    statistic, pvalue = stats.levene_by_epoch(context.signal, context.noise, center)
    return EpochDynamicsResult(
        alpha=alpha,
        center=center,
        correction=correction,
        epochs=context.epochs,
        signal=sig,
        noise=noi,
        range_ratio=range_ratio,
        std_ratio=std_ratio,
        statistic=statistic,
        pvalue=pvalue,
        pvalue_adjusted=_adjust(pvalue, alpha, correction),
        signal_runs=len(context.signal_ids),
        noise_runs=len(context.noise_ids),
    )


def _adjust(pvalue: np.ndarray, alpha: float, correction: EpochCorrection) -> np.ndarray:
    """``pvalue`` corrected over its finite entries; NaN stays NaN."""
    tested = np.isfinite(pvalue)
    adjusted = np.full_like(pvalue, np.nan)
    if tested.any():
        adjusted[tested] = (
            pvalue[tested]
            if correction == "none"
            else multipletests(pvalue[tested], alpha=alpha, method=correction)[1]
        )
    return adjusted


def render_epoch_dynamics(result: EpochDynamicsResult, context: AnalysisContext) -> AnalysisResult:
    """The result as findings, tables, the spread figure and report.json's summary."""
    return AnalysisResult(
        _to_summary(result),
        _findings(result, context),
        _tables(result, context),
        [_figure(result, context)],
        _notes(result),
    )


def _frame(result: EpochDynamicsResult) -> pd.DataFrame:
    """One row per epoch, the columns the tables show."""
    return pd.DataFrame(
        {
            "epoch": result.epochs,
            "signal range": result.signal.range,
            "noise range": result.noise.range,
            "range ratio": result.range_ratio,
            "signal std": result.signal.std,
            "noise std": result.noise.std,
            "std ratio": result.std_ratio,
            "Levene W": result.statistic,
            "p": result.pvalue,
            "p adj.": result.pvalue_adjusted,
        }
    )


def _to_summary(result: EpochDynamicsResult) -> dict[str, Any]:
    """report.json's ``analyses["epoch-dynamics"]``."""
    return {
        "alpha": result.alpha,
        "center": result.center,
        "correction": result.correction,
        "signal_runs": result.signal_runs,
        "noise_runs": result.noise_runs,
        "per_epoch": [
            {
                "epoch": int(row["epoch"]),
                "signal_range": row["signal range"],
                "noise_range": row["noise range"],
                "range_ratio": row["range ratio"],
                "signal_std": row["signal std"],
                "noise_std": row["noise std"],
                "std_ratio": row["std ratio"],
                "levene_statistic": row["Levene W"],
                "p_value": row["p"],
                "p_adjusted": row["p adj."],
            }
            for row in _frame(result).to_dict("records")
        ],
        "significant_epochs": [int(e) for e in result.epochs[result.significant]],
    }


def _findings(result: EpochDynamicsResult, context: AnalysisContext) -> list[str]:
    """The first and last epoch in words, then how many epochs differ."""
    epochs, significant = result.epochs, result.significant
    out = []
    for label, j in (("first", 0), ("last", len(epochs) - 1)):
        if label == "last" and j == 0:
            break
        out.append(
            f"At the {label} epoch ({int(epochs[j])}) the signal runs span "
            f"{context.fmt(result.signal.range[j])} against {context.fmt(result.noise.range[j])} "
            f"for the noise runs ({format_ratio(result.range_ratio[j])}); their std is "
            f"{format_ratio(result.std_ratio[j])} the noise std (Levene "
            f"{p_text(result.pvalue[j])}, "
            f"{'variances differ' if significant[j] else 'not significant'} after correction)."
        )
    out.append(
        f"The variances differ (Levene, {result.correction}-corrected, alpha {result.alpha}) at "
        f"{int(significant.sum())} of {len(epochs)} epochs."
    )
    return out


def _notes(result: EpochDynamicsResult) -> list[str]:
    """The range's caveat when the groups differ much in size."""
    if 0.5 <= result.signal_runs / result.noise_runs <= 2:
        return []
    return [
        f"The range (max - min) grows with the number of runs and the groups differ in "
        f"size ({result.signal_runs} signal vs {result.noise_runs} noise runs); "
        f"compare the std ratio, which does not."
    ]


def _tables(result: EpochDynamicsResult, context: AnalysisContext) -> list[Table]:
    """At most 12 epochs on the terminal; every epoch in the report when there are more."""
    fmt = context.metric_format
    full = _frame(result)
    show = (
        full
        if len(full) <= 12
        else full.iloc[np.unique(np.linspace(0, len(full) - 1, 12).round().astype(int))]
    )
    formats = {c: fmt for c in ("signal range", "noise range", "signal std", "noise std")}
    formats.update(
        {"range ratio": "x", "std ratio": "x", "Levene W": ".3g", "p": "p", "p adj.": "p"}
    )
    out = [Table("Spread of individual runs per epoch", show.reset_index(drop=True), formats)]
    if len(show) < len(full):
        out.append(Table("Spread of individual runs, every epoch", full, formats, terminal=False))
    return out


def _figure(result: EpochDynamicsResult, context: AnalysisContext) -> Figure:
    """Spread per epoch (log scale) beside the signal/noise ratio, significant epochs marked."""
    return Figure(
        "spread",
        "Spread of individual runs per epoch (left, log scale) and signal/noise ratio (right).",
        plots.spread_ratio(
            result.epochs,
            result.signal.range,
            result.noise.range,
            result.range_ratio,
            result.significant,
            metric=context.metric,
            percent=context.metric_format.endswith("%"),
        ),
    )
