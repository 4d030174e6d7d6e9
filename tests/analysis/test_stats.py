"""The descriptive statistics (group means, noise effect, spread) against direct computations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from lightning_app.analysis import stats


def test_group_means_and_effect_match_pandas_groupby() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(30, 5))
    codes = rng.integers(0, 4, size=30)
    codes[:4] = np.arange(4)  # every group present
    expected = pd.DataFrame(values).groupby(codes).mean().to_numpy()
    np.testing.assert_allclose(stats.group_means(values, codes, 4), expected)
    np.testing.assert_allclose(
        stats.group_mean_effect(values, codes, 4), expected.max(0) - expected.min(0)
    )
    assert stats.group_mean_effect(values[:, 2], codes, 4) == pytest.approx(np.ptp(expected[:, 2]))


def test_group_means_needs_every_group() -> None:
    with pytest.raises(ValueError, match="at least one run"):
        stats.group_means(np.ones(3), np.array([0, 0, 2]), 3)


def test_noise_null_splits_are_random_partitions_of_the_noise_runs() -> None:
    """7 noise runs into groups of 2 and 3 (2 left over): every split is one of the 210 there
    are, and they come up about equally often."""
    noise = np.array([0.1, 0.4, 0.35, 0.8, 0.55, 0.2, 0.9])
    null = stats.noise_null(noise, (2, 3), 20_000, np.random.default_rng(0))
    assert not null.with_replacement and null.sizes == (2, 3)
    by_hand = []
    for first in itertools.combinations(range(7), 2):
        rest = [i for i in range(7) if i not in first]
        for second in itertools.combinations(rest, 3):
            by_hand.append(abs(noise[list(first)].mean() - noise[list(second)].mean()))
    assert len(by_hand) == math.comb(7, 2) * math.comb(5, 3)
    possible = np.round(np.array(by_hand), 12)
    assert np.isin(np.round(null.distribution, 12), possible).all()
    # The median of random splits estimates the median over all splits.
    assert null.median == pytest.approx(np.median(by_hand), abs=0.02)
    assert np.mean(null.distribution >= 0.3) == pytest.approx(
        np.mean(np.array(by_hand) >= 0.3), abs=0.02
    )


@pytest.mark.parametrize(
    ("n_noise", "sizes"),
    [(9, (4, 4)), (13, (4, 4, 4)), (12, (1, 1, 1, 1, 1)), (3, (1, 1, 1)), (4, (1, 2))],
)
def test_noise_null_takes_leftovers_and_groups_of_one(n_noise: int, sizes: tuple[int, ...]) -> None:
    """scipy's permutation_test refused these (a leftover of one run, or single-run groups)."""
    noise = np.random.default_rng(n_noise).normal(size=n_noise)
    null = stats.noise_null(noise, sizes, 2000, np.random.default_rng(1))
    assert null.distribution.shape == (2000,) and np.isfinite(null.distribution).all()
    if set(sizes) == {1}:  # single runs: the range of a random subset of the noise runs
        ranges = [
            np.ptp(np.random.default_rng(i).permutation(noise)[: len(sizes)]) for i in range(4000)
        ]
        assert null.median == pytest.approx(np.median(ranges), rel=0.1)


def test_random_splits_match_a_plain_loop() -> None:
    rng = np.random.default_rng(1)
    noise = rng.normal(0.97, 0.002, size=50)
    null = stats.noise_null(noise, (10, 10, 10), 4000, np.random.default_rng(7))
    loop_rng = np.random.default_rng(8)
    loop = []
    for _ in range(4000):
        rows = loop_rng.permutation(50)[:30]
        means = noise[rows].reshape(3, 10).mean(axis=1)
        loop.append(np.ptp(means))
    assert null.median == pytest.approx(np.median(loop), rel=0.05)
    assert null.quantile(0.95) == pytest.approx(np.quantile(loop, 0.95), rel=0.07)


def test_bootstrap_null_when_groups_need_more_runs_than_there_are() -> None:
    """Drawn with replacement, each group mean has variance sigma^2 / n (sigma: population sd)."""
    rng = np.random.default_rng(2)
    noise = rng.normal(0.0, 1.0, size=12)
    sizes = (20, 20)
    null = stats.noise_null(noise, sizes, 20_000, np.random.default_rng(3))
    assert null.with_replacement
    sigma = noise.std(ddof=0)
    # |mean1 - mean2| ~ |N(0, 2 sigma^2 / 20)|: a half-normal with median 0.6745 * sd.
    expected_median = sps.halfnorm.median(scale=sigma * math.sqrt(2 / 20))
    assert null.median == pytest.approx(expected_median, rel=0.05)


def test_noise_null_rejects_impossible_splits() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        stats.noise_null(np.ones(5), (5,), 10, rng)
    with pytest.raises(ValueError):
        stats.noise_null(np.ones(1), (1, 1), 10, rng)


def test_spread_and_levene_by_epoch_match_per_column_calls() -> None:
    rng = np.random.default_rng(8)
    signal = rng.normal(0, [3.0, 1.0, 1.0], size=(25, 3))
    noise = rng.normal(0, 1.0, size=(40, 3))
    band = stats.spread(signal)
    np.testing.assert_allclose(band.range, signal.max(0) - signal.min(0))
    np.testing.assert_allclose(band.std, signal.std(0, ddof=1))
    stat, p = stats.levene_by_epoch(signal, noise, "median")
    for j in range(3):
        direct = sps.levene(signal[:, j], noise[:, j], center="median")
        assert stat[j] == pytest.approx(direct.statistic)
        assert p[j] == pytest.approx(direct.pvalue)
    assert p[0] < 0.001 < p[1]
