"""The statistics of signal versus noise: small pure functions over arrays, no plotting, no I/O.

Conventions: ``values`` holds one row per run (axis 0) and optionally one column per epoch;
``codes`` gives each run's group (the index of its parameter value, ``0..k-1``). Tests and p-values
come from :mod:`scipy.stats`, power from :mod:`statsmodels.stats.power`; this module only shapes the
arrays for them and names the results.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.power import FTestAnovaPower

# Keep one resampling batch at about this many float64 values (~16 MB) so 10,000 permutations
# of 1,000 runs never hold the whole (permutations x runs) array at once.
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


def range_of_means(*samples: np.ndarray, axis: int = -1, n_groups: int | None = None) -> np.ndarray:
    """Max minus min of the sample means along ``axis``; only the first ``n_groups`` samples count.

    The signature is :func:`scipy.stats.permutation_test`'s vectorised statistic. Samples past
    ``n_groups`` hold the noise runs a split leaves unused (a split into smaller groups than the
    noise group is a random subset), so they are permuted with the others but not averaged.
    """
    used = samples if n_groups is None else samples[:n_groups]
    means = np.stack([np.mean(s, axis=axis) for s in used])
    result: np.ndarray = means.max(axis=0) - means.min(axis=0)
    return result


# -- the noise null -----------------------------------------------------------------------------
@dataclass(frozen=True)
class NoiseNull:
    """The group-mean effect of seed-only runs split at random into groups of given sizes."""

    distribution: np.ndarray
    """One group-mean effect per random split."""
    sizes: tuple[int, ...]
    with_replacement: bool
    """True when the groups need more runs than there are noise runs (drawn with replacement)."""
    exact: bool
    """True when every distinct split was enumerated (small noise groups)."""

    @property
    def median(self) -> float:
        """The noise effect the study quotes: a typical split, not one arbitrary split."""
        return float(np.median(self.distribution))

    def quantile(self, q: float | Sequence[float]) -> np.ndarray:
        return np.quantile(self.distribution, q)

    def p_value(self, observed: float) -> float:
        """Share of splits whose effect is at least ``observed`` (see :func:`upper_tail_pvalue`)."""
        return upper_tail_pvalue(observed, self.distribution)


def noise_null(
    noise: np.ndarray,
    sizes: Sequence[int],
    n_resamples: int,
    rng: np.random.Generator,
) -> NoiseNull:
    """Group-mean effects of the 1-D ``noise`` values split at random into groups of ``sizes``.

    Without replacement (the usual case) this is :func:`scipy.stats.permutation_test`'s null
    distribution of :func:`range_of_means` over the noise runs partitioned into ``sizes`` plus one
    unused remainder; it is exact when there are at most ``n_resamples`` distinct splits. When the
    groups need more runs than there are noise runs, each split draws its runs with replacement
    (a bootstrap null), vectorised over resamples.
    """
    noise = np.asarray(noise, dtype=float)
    sizes = tuple(int(s) for s in sizes)
    if noise.ndim != 1:
        raise ValueError("noise must be one value per run")
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError("a split needs at least two groups of at least one run")
    if len(noise) < 2:
        raise ValueError("a noise null needs at least two noise runs")
    total = sum(sizes)
    if total > len(noise):
        dist = _bootstrap_range_of_means(noise, sizes, n_resamples, rng)
        return NoiseNull(dist, sizes, with_replacement=True, exact=False)
    bounds = np.cumsum((0, *sizes, len(noise) - total))
    samples = [noise[a:b] for a, b in itertools.pairwise(bounds) if b > a]

    def statistic(*s: np.ndarray, axis: int = -1) -> np.ndarray:
        return range_of_means(*s, axis=axis, n_groups=len(sizes))

    res = stats.permutation_test(
        samples,
        statistic,
        permutation_type="independent",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="greater",
        batch=max(1, BATCH_VALUES // len(noise)),
        rng=rng,
    )
    # scipy enumerates every split when there are no more than n_resamples of them.
    cumulative = np.cumsum([0, *(len(s) for s in samples)])
    n_splits = math.prod(math.comb(int(b), int(a)) for a, b in itertools.pairwise(cumulative))
    exact = n_resamples >= n_splits
    return NoiseNull(np.asarray(res.null_distribution, dtype=float), sizes, False, exact)


def _bootstrap_range_of_means(
    noise: np.ndarray, sizes: tuple[int, ...], n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Range of group means for groups drawn with replacement: (resamples x runs) in batches."""
    total = sum(sizes)
    ends = np.cumsum(sizes)
    starts = ends - np.asarray(sizes)
    batch = max(1, BATCH_VALUES // total)
    out = np.empty(n_resamples)
    for lo in range(0, n_resamples, batch):
        hi = min(n_resamples, lo + batch)
        drawn = noise[rng.integers(0, len(noise), size=(hi - lo, total))]
        csum = np.concatenate([np.zeros((hi - lo, 1)), np.cumsum(drawn, axis=1)], axis=1)
        means = (csum[:, ends] - csum[:, starts]) / np.asarray(sizes)
        out[lo:hi] = means.max(axis=1) - means.min(axis=1)
    return out


def upper_tail_pvalue(observed: float, null: np.ndarray) -> float:
    """P(null >= observed) as ``(1 + #{null >= obs}) / (1 + B)``, never 0.

    The signal effect is not one of the noise splits, so it counts as one more draw from the null
    (Phipson & Smyth 2010) for random resamples and exact enumerations alike: with few noise runs
    and only B distinct splits, no p-value can fall below 1 / (B + 1). Ties are counted with
    scipy's relative tolerance, so an effect equal to a null value up to rounding counts as reached.
    """
    null = np.asarray(null, dtype=float)
    gamma = abs(1e-14 * observed)
    hits = int(np.count_nonzero(null >= observed - gamma))
    return (hits + 1) / (len(null) + 1)


# -- classical tests within the signal runs ---------------------------------------------------
@dataclass(frozen=True)
class OneWayResult:
    """One-way ANOVA and Kruskal-Wallis over the groups, with their effect sizes."""

    f_statistic: float
    anova_p: float
    omega_squared: float
    """(SS_between - (k-1) MS_within) / (SS_total + MS_within); near 0 or negative means none."""
    h_statistic: float
    kruskal_p: float
    epsilon_squared: float
    """Kruskal-Wallis H / (n - 1): the share of rank variance between groups."""


def oneway_tests(values: np.ndarray, codes: np.ndarray, k: int) -> OneWayResult:
    """ANOVA (scipy f_oneway) and Kruskal-Wallis (scipy kruskal) of 1-D ``values`` by group.

    Needs at least two runs in every group (otherwise there is no within-group variance to
    compare against); the caller reports the test as not applicable instead.
    """
    values = np.asarray(values, dtype=float)
    groups = [values[codes == j] for j in range(k)]
    if k < 2 or min(len(g) for g in groups) < 2:
        raise ValueError("the classical tests need at least two groups of at least two runs")
    anova = stats.f_oneway(*groups)
    kw = stats.kruskal(*groups)
    n = len(values)
    grand = values.mean()
    ss_between = sum(len(g) * (g.mean() - grand) ** 2 for g in groups)
    ss_total = float(((values - grand) ** 2).sum())
    ms_within = (ss_total - ss_between) / (n - k)
    omega = (ss_between - (k - 1) * ms_within) / (ss_total + ms_within)
    return OneWayResult(
        f_statistic=float(anova.statistic),
        anova_p=float(anova.pvalue),
        omega_squared=float(omega),
        h_statistic=float(kw.statistic),
        kruskal_p=float(kw.pvalue),
        epsilon_squared=float(kw.statistic) / (n - 1),
    )


# -- power ------------------------------------------------------------------------------------
def cohens_f(means: np.ndarray, sigma: float) -> float:
    """Cohen's f of a balanced design with these group means and within-group std ``sigma``."""
    return float(np.std(np.asarray(means, dtype=float), ddof=0) / sigma)


def least_favourable_offsets(effect: float, k: int) -> np.ndarray:
    """Group offsets with range ``effect`` and the smallest spread: two extremes, rest centred.

    A minimum effect says only how far apart the best and worst value are; this layout has the
    smallest Cohen's f of all layouts with that range, f = effect / (sigma * sqrt(2k)), so the run
    count it gives is enough for any layout.
    """
    offsets = np.zeros(k)
    offsets[0], offsets[1] = effect / 2, -effect / 2
    return offsets


def anova_power(f: float, runs_per_group: np.ndarray | int, k: int, alpha: float) -> np.ndarray:
    """Power of the one-way ANOVA F-test with ``runs_per_group`` runs in each of ``k`` groups."""
    n = np.asarray(runs_per_group, dtype=float)
    # statsmodels' nobs is the total over all groups.
    power = FTestAnovaPower().power(effect_size=f, nobs=n * k, alpha=alpha, k_groups=k)
    return np.asarray(power, dtype=float)


def runs_per_group(f: float, k: int, alpha: float, power: float, max_runs: int) -> int | None:
    """Smallest whole number of runs per group whose ANOVA reaches ``power`` (None past the cap).

    Power grows with the run count, so a bisection over whole numbers on statsmodels' power
    finds it exactly; statsmodels' own ``solve_power`` returns a fractional total and fails to
    converge for large effects (a handful of runs), which a balanced design cannot use anyway.
    """
    if not f > 0:
        return None
    lo, hi = 2, int(max_runs)
    if anova_power(f, hi, k, alpha) < power:
        return None
    if anova_power(f, lo, k, alpha) >= power:
        return lo
    while hi - lo > 1:  # invariant: power(lo) < target <= power(hi)
        mid = (lo + hi) // 2
        if anova_power(f, mid, k, alpha) >= power:
            hi = mid
        else:
            lo = mid
    return hi


def simulated_anova_power(
    noise: np.ndarray,
    offsets: np.ndarray,
    runs_per_group: int,
    alpha: float,
    resamples: int,
    rng: np.random.Generator,
) -> float:
    """Share of simulated experiments whose ANOVA rejects at ``alpha``: the analytic check.

    Each experiment draws ``runs_per_group`` noise runs (with replacement) per group, centres
    them on the noise mean and adds that group's offset, so the noise keeps its real shape
    (skew, ties from accuracy counted on 10k images) instead of the normal model's. scipy's
    f_oneway runs over all experiments at once.
    """
    noise = np.asarray(noise, dtype=float)
    residuals = noise - noise.mean()
    k = len(offsets)
    batch = max(1, BATCH_VALUES // (k * runs_per_group))
    rejected = 0
    for lo in range(0, resamples, batch):
        m = min(batch, resamples - lo)
        drawn = residuals[rng.integers(0, len(noise), size=(m, k, runs_per_group))]
        drawn += np.asarray(offsets, dtype=float)[None, :, None]
        pvalues = stats.f_oneway(*(drawn[:, j, :] for j in range(k)), axis=-1).pvalue
        rejected += int(np.count_nonzero(pvalues < alpha))
    return rejected / resamples


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
