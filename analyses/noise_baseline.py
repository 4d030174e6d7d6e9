"""noise-baseline: how much the metric moves when only the seed changes.

The smallest built-in, and the one to copy: :func:`compute_noise_baseline` turns the context
into a frozen :class:`NoiseBaselineResult` (pure numbers), :func:`render_noise_baseline` turns
that into findings, tables, figures and the report.json summary.
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
    plots,
    stats,
)
from lightning_app.runs.runset import RunSet


class NoiseBaseline(Analysis):
    """Spread of seed-only runs per epoch, and the group-mean effect of random splits of them."""

    name = "noise-baseline"
    order = 10
    description = "Per-epoch spread of the noise runs and each parameter's noise effect."

    def run(self, runs: RunSet, context: AnalysisContext) -> AnalysisResult:
        return render_noise_baseline(compute_noise_baseline(context), context)


@dataclass(frozen=True)
class NoiseBaselineResult:
    """The noise runs' spread per epoch and, per parameter, the noise effect of random splits."""

    epochs: np.ndarray
    band: stats.Spread
    """Spread of the noise runs per epoch."""
    nulls: dict[str, stats.NoiseNull]
    """Per parameter: the group-mean effect of the noise runs split into its group sizes."""
    runs: int


def compute_noise_baseline(context: AnalysisContext) -> NoiseBaselineResult:
    """The spread of the noise runs and every parameter's noise null (shared via the context)."""
    return NoiseBaselineResult(
        epochs=context.epochs,
        band=stats.spread(context.noise),
        nulls={name: context.noise_null(name) for name in context.params},
        runs=len(context.noise_ids),
    )


def render_noise_baseline(result: NoiseBaselineResult, context: AnalysisContext) -> AnalysisResult:
    """The result as findings, tables, figures and report.json's summary."""
    return AnalysisResult(
        _to_summary(result, context),
        _findings(result, context),
        _tables(result, context),
        _figures(result, context),
    )


def _to_summary(result: NoiseBaselineResult, context: AnalysisContext) -> dict[str, Any]:
    """report.json's ``analyses["noise-baseline"]``."""
    band, epochs = result.band, result.epochs
    return {
        "runs": result.runs,
        "final_epoch": int(epochs[-1]),
        "final_mean": float(band.mean[-1]),
        "final_std": float(band.std[-1]),
        "final_range": float(band.range[-1]),
        "epoch": context.epoch,
        "per_epoch": [
            {"epoch": int(e), "mean": m, "std": s, "min": lo, "max": hi}
            for e, m, s, lo, hi in zip(
                epochs, band.mean, band.std, band.minimum, band.maximum, strict=True
            )
        ],
        "params": {name: _null_summary(null, context.epoch) for name, null in result.nulls.items()},
    }


def _null_summary(null: stats.NoiseNull, epoch: int) -> dict[str, Any]:
    q05, q95 = null.quantile([0.05, 0.95])
    return {
        "epoch": epoch,
        "group_sizes": list(null.sizes),
        "noise_effect": null.median,
        "q05": float(q05),
        "q95": float(q95),
        "permutations": len(null.distribution),
        "with_replacement": null.with_replacement,
    }


def _findings(result: NoiseBaselineResult, context: AnalysisContext) -> list[str]:
    """The noise runs' final spread, then each parameter's noise effect."""
    band, epochs = result.band, result.epochs
    out = [
        f"The {result.runs} noise runs end (epoch {int(epochs[-1])}) at "
        f"{context.fmt(band.mean[-1])} ± {context.fmt(band.std[-1])} (mean ± std), "
        f"spanning {context.fmt(band.range[-1])} from worst to best run; at epoch "
        f"{int(epochs[0])} they span {context.fmt(band.range[0])}."
    ]
    for name, null in result.nulls.items():
        q05, q95 = (float(q) for q in null.quantile([0.05, 0.95]))
        how = "drawn with replacement" if null.with_replacement else "without replacement"
        out.append(
            f"Splitting the noise runs at random into {context.params[name].k} groups of "
            f"{_sizes_text(list(null.sizes))} ({how}), as {name} splits the signal runs, "
            f"moves the group means by {context.fmt(null.median)} (median; 5-95%: "
            f"{context.fmt(q05)}-{context.fmt(q95)}) at epoch {context.epoch}: "
            f"the noise effect of {name}."
        )
    return out


def _tables(result: NoiseBaselineResult, context: AnalysisContext) -> list[Table]:
    """Noise effect per parameter (terminal and report), the per-epoch spread (report only)."""
    fmt = context.metric_format
    rows = []
    for name, null in result.nulls.items():
        q05, q95 = null.quantile([0.05, 0.95])
        rows.append(
            {
                "parameter": name,
                "groups": context.params[name].k,
                "runs per group": _sizes_text(null.sizes),
                "noise effect": null.median,
                "5%": float(q05),
                "95%": float(q95),
                "splits": _splits_text(null),
            }
        )
    band = result.band
    per_epoch = pd.DataFrame(
        {
            "epoch": result.epochs,
            "mean": band.mean,
            "std": band.std,
            "min": band.minimum,
            "max": band.maximum,
            "range": band.range,
        }
    )
    return [
        Table(
            "Noise effect per parameter (random splits of the noise runs)",
            pd.DataFrame(rows),
            {"noise effect": fmt, "5%": fmt, "95%": fmt},
        ),
        Table(
            "Noise runs per epoch",
            per_epoch,
            {"mean": fmt, "std": fmt, "min": fmt, "max": fmt, "range": fmt},
            terminal=False,
        ),
    ]


def _figures(result: NoiseBaselineResult, context: AnalysisContext) -> list[Figure]:
    """The noise band; the noise nulls' histograms when there are parameters."""
    percent = context.metric_format.endswith("%")
    band = result.band
    out = [
        Figure(
            "band",
            "Noise runs per epoch: mean, ±1 std and min-max band.",
            plots.noise_band(
                result.epochs,
                band.mean,
                band.std,
                band.minimum,
                band.maximum,
                metric=context.metric,
                percent=percent,
                n_runs=result.runs,
            ),
        )
    ]
    if result.nulls:
        out.append(
            Figure(
                "null",
                f"Noise effect at epoch {context.epoch} over random splits, per parameter.",
                plots.null_histograms(
                    {n: null.distribution for n, null in result.nulls.items()},
                    {n: null.median for n, null in result.nulls.items()},
                    metric=context.metric,
                    percent=percent,
                ),
            )
        )
    return out


def _sizes_text(sizes: list[int] | tuple[int, ...] | np.ndarray) -> str:
    values = [int(s) for s in sizes]
    return str(values[0]) if len(set(values)) == 1 else "/".join(map(str, values))


def _splits_text(null: stats.NoiseNull) -> str:
    kind = "bootstrap" if null.with_replacement else "random"
    return f"{len(null.distribution)} {kind}"
