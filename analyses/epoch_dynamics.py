"""epoch-dynamics: how much more the signal runs spread than the noise runs, epoch by epoch."""

from __future__ import annotations

from typing import Literal

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


class EpochDynamics(Analysis):
    """Per-epoch spread (range and std over runs) of signal vs noise, with Levene's test."""

    name = "epoch-dynamics"
    order = 40
    description = "Signal vs noise spread of individual runs per epoch, their ratio, Levene's test."

    def __init__(
        self,
        alpha: float = 0.05,
        center: Literal["median", "mean", "trimmed"] = "median",
        correction: Literal["holm", "bonferroni", "fdr_bh", "none"] = "holm",
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
        sig = stats.spread(context.signal)
        noi = stats.spread(context.noise)
        with np.errstate(divide="ignore", invalid="ignore"):
            range_ratio = np.where(noi.range > 0, sig.range / noi.range, np.nan)
            std_ratio = np.where(noi.std > 0, sig.std / noi.std, np.nan)
        statistic, pvalue = stats.levene_by_epoch(context.signal, context.noise, self.center)
        tested = np.isfinite(pvalue)
        adjusted = np.full_like(pvalue, np.nan)
        if tested.any():
            adjusted[tested] = (
                pvalue[tested]
                if self.correction == "none"
                else multipletests(pvalue[tested], alpha=self.alpha, method=self.correction)[1]
            )
        significant = np.where(tested, adjusted < self.alpha, False)
        epochs = context.epochs
        frame = pd.DataFrame(
            {
                "epoch": epochs,
                "signal range": sig.range,
                "noise range": noi.range,
                "range ratio": range_ratio,
                "signal std": sig.std,
                "noise std": noi.std,
                "std ratio": std_ratio,
                "Levene W": statistic,
                "p": pvalue,
                "p adj.": adjusted,
            }
        )
        summary = {
            "alpha": self.alpha,
            "center": self.center,
            "correction": self.correction,
            "signal_runs": len(context.signal_ids),
            "noise_runs": len(context.noise_ids),
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
                for row in frame.to_dict("records")
            ],
            "significant_epochs": [int(e) for e in epochs[significant]],
        }
        fmt = context.metric_format
        findings = []
        for label, j in (("first", 0), ("last", len(epochs) - 1)):
            if label == "last" and j == 0:
                break
            findings.append(
                f"At the {label} epoch ({int(epochs[j])}) the signal runs span "
                f"{context.fmt(sig.range[j])} against {context.fmt(noi.range[j])} for the noise "
                f"runs ({format_ratio(range_ratio[j])}); their std is {format_ratio(std_ratio[j])} "
                f"the noise std (Levene {p_text(pvalue[j])}, "
                f"{'variances differ' if significant[j] else 'not significant'} after correction)."
            )
        n_sig = int(significant.sum())
        findings.append(
            f"The variances differ (Levene, {self.correction}-corrected, alpha {self.alpha}) at "
            f"{n_sig} of {len(epochs)} epochs."
        )
        notes = []
        ratio = len(context.signal_ids) / len(context.noise_ids)
        if not 0.5 <= ratio <= 2:
            notes.append(
                f"The range (max - min) grows with the number of runs and the groups differ in "
                f"size ({len(context.signal_ids)} signal vs {len(context.noise_ids)} noise runs); "
                f"compare the std ratio, which does not."
            )
        show = (
            frame
            if len(frame) <= 12
            else frame.iloc[np.unique(np.linspace(0, len(frame) - 1, 12).round().astype(int))]
        )
        formats = {c: fmt for c in ("signal range", "noise range", "signal std", "noise std")}
        formats.update(
            {"range ratio": "x", "std ratio": "x", "Levene W": ".3g", "p": "p", "p adj.": "p"}
        )
        tables = [
            Table("Spread of individual runs per epoch", show.reset_index(drop=True), formats),
        ]
        if len(show) < len(frame):
            tables.append(
                Table("Spread of individual runs, every epoch", frame, formats, terminal=False)
            )
        figure = Figure(
            "spread",
            "Spread of individual runs per epoch (left, log scale) and signal/noise ratio (right).",
            plots.spread_ratio(
                epochs,
                sig.range,
                noi.range,
                range_ratio,
                significant,
                metric=context.metric,
                percent=fmt.endswith("%"),
            ),
        )
        return AnalysisResult(summary, findings, tables, [figure], notes)
