"""Report figures, drawn from numbers the analyses already computed (nothing is computed here).

Figures are built with :class:`matplotlib.figure.Figure` directly, not pyplot: no global state, no
GUI backend, nothing left open. They are small (about 700 x 320 px) so report.md renders quickly
on GitHub, and the metric's axis shows percent when the metric is an accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

WIDTH, HEIGHT, DPI = 7.0, 3.2, 100
NOISE_COLOR, SIGNAL_COLOR = "#7f7f7f", "#1f77b4"


def _figure(height: float = HEIGHT, width: float = WIDTH) -> Figure:
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _metric_axis(ax: Axes, percent: bool, axis: str = "y") -> None:
    target = ax.yaxis if axis == "y" else ax.xaxis
    if percent:
        target.set_major_formatter(PercentFormatter(xmax=1, decimals=None))


def noise_band(
    epochs: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    *,
    metric: str,
    percent: bool,
    n_runs: int,
) -> Figure:
    """Noise runs per epoch: mean, mean +- std and the min-max band (the study's band)."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.fill_between(epochs, lo, hi, color=NOISE_COLOR, alpha=0.2, label="min-max")
    ax.fill_between(
        epochs, mean - std, mean + std, color=NOISE_COLOR, alpha=0.35, label="mean ± std"
    )
    ax.plot(epochs, mean, color="black", lw=1.5, label="mean")
    ax.set(xlabel="epoch", ylabel=metric, title=f"Noise: {n_runs} runs, seed varies")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _metric_axis(ax, percent)
    ax.legend(loc="lower right", fontsize="small")
    return fig


def null_histograms(
    nulls: Mapping[str, np.ndarray],
    medians: Mapping[str, float],
    *,
    observed: Mapping[str, float] | None = None,
    metric: str,
    percent: bool,
) -> Figure:
    """One histogram per parameter of the noise effect over random splits."""
    names = list(nulls)
    fig = _figure(height=2.4, width=min(WIDTH, 2.4 * len(names) + 0.6))
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names, strict=True):
        ax.hist(nulls[name], bins=40, color=NOISE_COLOR, alpha=0.8)
        ax.axvline(medians[name], color="black", lw=1, label="median (noise effect)")
        if observed and name in observed:
            ax.axvline(observed[name], color=SIGNAL_COLOR, lw=2, label="signal effect")
        ax.set_title(name, fontsize="small")
        ax.set_xlabel(f"group-mean effect ({metric})", fontsize="small")
        ax.tick_params(labelsize="x-small")
        ax.set_yticks([])
        _metric_axis(ax, percent, axis="x")
    axes[0].legend(fontsize="x-small", loc="upper right")
    return fig


def group_curves(
    name: str,
    labels: Sequence[str],
    epochs: np.ndarray,
    signal: tuple[np.ndarray, np.ndarray, np.ndarray],
    noise: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    metric: str,
    percent: bool,
) -> Figure:
    """Group-mean curves with min-max bands: signal groups beside a random split of noise runs.

    ``signal`` and ``noise`` are ``(means, lows, highs)``, each groups x epochs.
    """
    fig = _figure()
    axes = fig.subplots(1, 2, sharey=True)
    colors = _colors(len(labels))
    titles = (f"Signal: by {name}", "Noise: same group sizes, random split")
    for ax, (means, lows, highs), title in zip(axes, (signal, noise), titles, strict=True):
        for j, label in enumerate(labels):
            ax.fill_between(epochs, lows[j], highs[j], color=colors[j], alpha=0.12, lw=0)
            ax.plot(epochs, means[j], color=colors[j], lw=1.3, label=label)
        ax.set_title(title, fontsize="small")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylabel(metric)
    _metric_axis(axes[0], percent)
    handles, texts = axes[0].get_legend_handles_labels()
    fig.legend(
        handles,
        texts,
        title=name,
        fontsize="x-small",
        title_fontsize="x-small",
        loc="outside right center",
    )
    return fig


def parallel_coordinates(
    names: Sequence[str],
    labels: Sequence[Sequence[str]],
    codes: Sequence[np.ndarray],
    values: np.ndarray,
    *,
    metric: str,
    percent: bool,
) -> Figure:
    """Signal runs as lines across the parameters' values, coloured by the metric (as the study)."""
    fig = _figure(height=3.6)
    ax = fig.add_subplot()
    n_axes = len(names) + 1
    # Each parameter's values sit evenly on [0, 1]; the metric axis is min-max scaled.
    cols = [c / max(1, len(lab) - 1) for c, lab in zip(codes, labels, strict=True)]
    span = float(np.ptp(values)) or 1.0
    cols.append((values - values.min()) / span)
    ys = np.column_stack(cols)
    xs = np.broadcast_to(np.arange(n_axes, dtype=float), ys.shape)
    jitter = (np.random.default_rng(0).random(ys.shape) - 0.5) * 0.02
    segments = np.stack([xs, ys + jitter * (np.arange(n_axes) < n_axes - 1)], axis=-1)
    order = np.argsort(values)  # best runs drawn last, on top
    lines = LineCollection(
        list(segments[order]), array=values[order], cmap="plasma", linewidths=0.8, alpha=0.7
    )
    ax.add_collection(lines)
    for i, lab in enumerate(labels):
        for j, text in enumerate(lab):
            ax.annotate(
                text,
                (i, j / max(1, len(lab) - 1)),
                fontsize="x-small",
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
            )
    for i in range(n_axes):
        ax.axvline(i, color="black", lw=0.6)
    ax.set_xlim(-0.1, n_axes - 0.6)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xticks(range(n_axes), [*names, metric], fontsize="small")
    ax.set_yticks([])
    bar = fig.colorbar(lines, ax=ax, label=metric)
    if percent:
        bar.formatter = PercentFormatter(xmax=1)
        bar.update_ticks()
    ax.set_title("Signal runs by parameter value, coloured by the metric", fontsize="small")
    return fig


def effect_bars(
    names: Sequence[str],
    effects: np.ndarray,
    noise_medians: np.ndarray,
    noise_lo: np.ndarray,
    noise_hi: np.ndarray,
    *,
    metric: str,
    percent: bool,
) -> Figure:
    """Signal effect beside noise effect per parameter; whiskers span the noise 5-95%."""
    fig = _figure(height=max(2.0, 0.55 * len(names) + 1.0))
    ax = fig.add_subplot()
    y = np.arange(len(names))
    ax.barh(y + 0.2, effects, height=0.38, color=SIGNAL_COLOR, label="signal effect")
    err = np.vstack([noise_medians - noise_lo, noise_hi - noise_medians])
    ax.barh(
        y - 0.2,
        noise_medians,
        height=0.38,
        color=NOISE_COLOR,
        xerr=err,
        capsize=3,
        label="noise effect (median, 5-95%)",
    )
    ax.set_yticks(y, names, fontsize="small")
    ax.invert_yaxis()
    ax.set_xlabel(f"group-mean effect: max - min of group means ({metric})")
    _metric_axis(ax, percent, axis="x")
    ax.legend(fontsize="x-small", loc="lower right")
    return fig


def power_curves(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    needed: Mapping[str, int | None],
    *,
    power: float,
    simulated: Mapping[str, tuple[int, float]] | None = None,
) -> Figure:
    """Analytic power against runs per group, the target line and resampling checks as dots."""
    fig = _figure()
    ax = fig.add_subplot()
    colors = _colors(len(curves))
    for color, (label, (n, p)) in zip(colors, curves.items(), strict=True):
        ax.plot(n, p, color=color, lw=1.5, label=label)
        n_needed = needed.get(label)
        if n_needed is not None:
            ax.axvline(n_needed, color=color, lw=0.8, ls=":")
        if simulated and label in simulated:
            ax.plot(*simulated[label], "o", color=color, ms=5, mec="black")
    ax.axhline(power, color="black", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set(xlabel="runs (seeds) per value", ylabel="power", ylim=(0, 1.02))
    ax.set_title(
        "Power of the F test at the corrected alpha; dots: the whole rule simulated",
        fontsize="small",
    )
    ax.legend(fontsize="x-small", loc="lower right")
    return fig


def spread_ratio(
    epochs: np.ndarray,
    signal_range: np.ndarray,
    noise_range: np.ndarray,
    ratio: np.ndarray,
    significant: np.ndarray,
    *,
    metric: str,
    percent: bool,
) -> Figure:
    """Spread (max - min over runs) per epoch for signal and noise, and their ratio."""
    fig = _figure()
    left, right = fig.subplots(1, 2)
    left.plot(epochs, signal_range, color=SIGNAL_COLOR, label="signal")
    left.plot(epochs, noise_range, color=NOISE_COLOR, label="noise")
    left.set(xlabel="epoch", ylabel=f"range of {metric}", title="Spread of individual runs")
    left.set_yscale("log")
    _metric_axis(left, percent)
    left.legend(fontsize="small")
    right.plot(epochs, ratio, color="black")
    right.plot(
        epochs[significant],
        ratio[significant],
        "o",
        color=SIGNAL_COLOR,
        ms=4,
        label="variances differ (Levene)",
    )
    right.axhline(1, color=NOISE_COLOR, lw=0.8, ls="--")
    right.set(xlabel="epoch", ylabel="signal / noise range", title="Ratio")
    right.legend(fontsize="x-small")
    for ax in (left, right):
        ax.title.set_fontsize("small")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def _colors(n: int) -> list[tuple[float, float, float, float]]:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(x) for x in np.linspace(0.0, 0.9, max(n, 1))]
