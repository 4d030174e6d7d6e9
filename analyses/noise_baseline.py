"""noise-baseline: how much the metric moves when only the seed changes."""

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


class NoiseBaseline(Analysis):
    """Spread of seed-only runs per epoch, and the group-mean effect of random splits of them."""

    name = "noise-baseline"
    order = 10
    description = "Per-epoch spread of the noise runs and each parameter's noise effect."

    def run(self, runs: RunSet, context: AnalysisContext) -> AnalysisResult:
        band = stats.spread(context.noise)
        epochs = context.epochs
        per_epoch = pd.DataFrame(
            {
                "epoch": epochs,
                "mean": band.mean,
                "std": band.std,
                "min": band.minimum,
                "max": band.maximum,
                "range": band.range,
            }
        )
        last = -1
        params: dict[str, dict[str, Any]] = {}
        rows = []
        for name, param in context.params.items():
            null = context.noise_null(name)
            q05, q95 = null.quantile([0.05, 0.95])
            params[name] = {
                "epoch": context.epoch,
                "group_sizes": list(null.sizes),
                "noise_effect": null.median,
                "q05": float(q05),
                "q95": float(q95),
                "permutations": len(null.distribution),
                "with_replacement": null.with_replacement,
            }
            rows.append(
                {
                    "parameter": name,
                    "groups": param.k,
                    "runs per group": _sizes_text(null.sizes),
                    "noise effect": null.median,
                    "5%": float(q05),
                    "95%": float(q95),
                    "splits": _splits_text(null),
                }
            )
        fmt = context.metric_format
        percent = fmt.endswith("%")
        summary = {
            "runs": len(context.noise_ids),
            "final_epoch": int(epochs[last]),
            "final_mean": float(band.mean[last]),
            "final_std": float(band.std[last]),
            "final_range": float(band.range[last]),
            "epoch": context.epoch,
            "per_epoch": [
                {"epoch": int(e), "mean": m, "std": s, "min": lo, "max": hi}
                for e, m, s, lo, hi in zip(
                    epochs, band.mean, band.std, band.minimum, band.maximum, strict=True
                )
            ],
            "params": params,
        }
        first = 0
        findings = [
            f"The {len(context.noise_ids)} noise runs end (epoch {int(epochs[last])}) at "
            f"{context.fmt(band.mean[last])} ± {context.fmt(band.std[last])} (mean ± std), "
            f"spanning {context.fmt(band.range[last])} from worst to best run; at epoch "
            f"{int(epochs[first])} they span {context.fmt(band.range[first])}."
        ]
        for name, info in params.items():
            how = "drawn with replacement" if info["with_replacement"] else "without replacement"
            findings.append(
                f"Splitting the noise runs at random into {context.params[name].k} groups of "
                f"{_sizes_text(info['group_sizes'])} ({how}), as {name} splits the signal runs, "
                f"moves the group means by {context.fmt(info['noise_effect'])} (median; 5-95%: "
                f"{context.fmt(info['q05'])}-{context.fmt(info['q95'])}) at epoch {context.epoch}: "
                f"the noise effect of {name}."
            )
        tables = [
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
        figures = [
            Figure(
                "band",
                "Noise runs per epoch: mean, ±1 std and min-max band.",
                plots.noise_band(
                    epochs,
                    band.mean,
                    band.std,
                    band.minimum,
                    band.maximum,
                    metric=context.metric,
                    percent=percent,
                    n_runs=len(context.noise_ids),
                ),
            )
        ]
        if params:
            figures.append(
                Figure(
                    "null",
                    f"Noise effect at epoch {context.epoch} over random splits, per parameter.",
                    plots.null_histograms(
                        {n: context.noise_null(n).distribution for n in params},
                        {n: p["noise_effect"] for n, p in params.items()},
                        metric=context.metric,
                        percent=percent,
                    ),
                )
            )
        return AnalysisResult(summary, findings, tables, figures)


def _sizes_text(sizes: list[int] | tuple[int, ...] | np.ndarray) -> str:
    values = [int(s) for s in sizes]
    return str(values[0]) if len(set(values)) == 1 else "/".join(map(str, values))


def _splits_text(null: stats.NoiseNull) -> str:
    kind = "bootstrap" if null.with_replacement else "random"
    return f"{len(null.distribution)} {kind}"
