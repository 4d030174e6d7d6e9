"""The statistics of signal versus noise: small pure functions over arrays, no plotting, no I/O.

Conventions: ``values`` holds one row per run (axis 0) and optionally one column per epoch;
``codes`` gives each run's group (the index of its parameter value, ``0..k-1``). This module holds
the study's descriptive statistics (group means, noise effect, spread); the calibrated test is in
:mod:`~lightning_app.analysis.factorial` and power in :mod:`~lightning_app.analysis.power`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

# Keep one resampling batch at about this many values (~16 MB) so 10,000 random splits of 1,000
# runs never hold the whole (splits x runs) array at once.
BATCH_VALUES = 2_000_000


# -- group means and the group-mean effect ------------------------------------------------------
def group_means(values: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """Mean of ``values`` over the runs of each group: shape ``(k, *values.shape[1:])``."""
    values = np.asarray(values, dtype=float)
    onehot = np.zeros((k, values.shape[0]))
    onehot[codes, np.arange(values.shape[0])] = 1.0
    sizes = onehot.sum(axis=1)
    if np.any(sizes == 0):
        raise ValueError("every group needs at least one run")
    flat = values.reshape(values.shape[0], -1)
    means = (onehot @ flat) / sizes[:, None]
    return means.reshape((k, *values.shape[1:]))


def group_mean_effect(values: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """The study's effect: max minus min over the groups of the group mean (per epoch if 2-D)."""
    means = group_means(values, codes, k)
    return means.max(axis=0) - means.min(axis=0)


# -- the noise effect (description) ---------------------------------------------------------------
@dataclass(frozen=True)
class NoiseNull:
    """The group-mean effect of seed-only runs split at random into groups of given sizes.

    This is the study's *noise effect*, a description of how far group means move by chance. It is
    not the test: it treats the finite set of noise runs as the whole truth (their own sampling
    error is ignored), so a p-value read from it is anti-conservative (docs/validation.md). The
    p-values come from :mod:`lightning_app.analysis.factorial`.
    """

    distribution: np.ndarray
    """One group-mean effect per random split."""
    sizes: tuple[int, ...]
    with_replacement: bool
    """True when the groups need more runs than there are noise runs (drawn with replacement)."""

    @property
    def median(self) -> float:
        """The noise effect the study quotes: a typical split, not one arbitrary split."""
        return float(np.median(self.distribution))

    def quantile(self, q: float | Sequence[float]) -> np.ndarray:
        return np.quantile(self.distribution, q)


def noise_null(
    noise: np.ndarray,
    sizes: Sequence[int],
    n_resamples: int,
    rng: np.random.Generator,
) -> NoiseNull:
    """Range of group means of the 1-D ``noise`` values split at random into groups of ``sizes``.

    Each split is a random permutation of the noise runs cut into ``sizes`` (runs left over are
    unused); when the groups need more runs than there are, each split draws its runs with
    replacement instead. Groups of one run and any leftover are fine. Vectorised over splits in
    batches of about ``BATCH_VALUES`` values.
    """
    noise = np.asarray(noise, dtype=float)
    sizes = tuple(int(s) for s in sizes)
    if noise.ndim != 1:
        raise ValueError("noise must be one value per run")
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError("a split needs at least two groups of at least one run")
    if len(noise) < 2:
        raise ValueError("a noise null needs at least two noise runs")
    n, total = len(noise), sum(sizes)
    with_replacement = total > n
    ends = np.cumsum(sizes)
    starts = ends - np.asarray(sizes)
    batch = max(1, BATCH_VALUES // max(n, total))
    out = np.empty(n_resamples)
    for lo in range(0, n_resamples, batch):
        m = min(batch, n_resamples - lo)
        if with_replacement:
            rows = rng.integers(0, n, size=(m, total))
        else:
            rows = rng.permuted(np.broadcast_to(np.arange(n), (m, n)), axis=1)[:, :total]
        csum = np.concatenate([np.zeros((m, 1)), np.cumsum(noise[rows], axis=1)], axis=1)
        means = (csum[:, ends] - csum[:, starts]) / np.asarray(sizes)
        out[lo : lo + m] = means.max(axis=1) - means.min(axis=1)
    return NoiseNull(out, sizes, with_replacement)


# -- spread over runs ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Spread:
    """Per-epoch spread of individual runs: the study's band height (range) and std."""

    minimum: np.ndarray
    maximum: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    @property
    def range(self) -> np.ndarray:
        return self.maximum - self.minimum


def spread(values: np.ndarray) -> Spread:
    """Min, max, mean and std (ddof=1) over runs (axis 0), per epoch."""
    values = np.asarray(values, dtype=float)
    return Spread(
        values.min(axis=0), values.max(axis=0), values.mean(axis=0), values.std(axis=0, ddof=1)
    )


def levene_by_epoch(
    signal: np.ndarray, noise: np.ndarray, center: str = "median"
) -> tuple[np.ndarray, np.ndarray]:
    """scipy's Levene test of equal variances of signal and noise runs, for every epoch at once.

    ``center="median"`` is the Brown-Forsythe variant, robust to the skew of accuracies near 1.
    Returns (statistic, p-value) arrays with one entry per epoch.
    """
    res = stats.levene(signal, noise, center=center, axis=0)
    return np.asarray(res.statistic, dtype=float), np.asarray(res.pvalue, dtype=float)
