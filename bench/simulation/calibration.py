"""Planted studies: how often each test calls a parameter significant, by simulation.

A statistical method here is right when simulation says so. This module simulates whole studies
(noise runs and signal runs with a known effect per parameter) over many designs and returns each
method's p-values for the target parameter, so the false-positive rate (effect 0) and power
(effect > 0) can be measured. ``bench/validate_stats.py`` runs the full grid of designs into
``docs/validation.md``; the tests run a few designs with enough studies to catch a method at 8 %
instead of 5 %.

Methods: ``signal``, ``noise``, ``pooled`` are signal-effects' F tests with that error term (the
very code the report runs); ``splits`` is the method this tool used before, kept only to show why
it was replaced: the range of the target's group means against random splits of the noise runs,
as a permutation p-value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from lightning_app.analysis import factorial

Layout = Literal["single", "grid", "unbalanced", "random"]
METHODS = ("signal", "noise", "pooled", "splits")


@dataclass(frozen=True)
class CalibrationDesign:
    """A simulated study: noise runs, and signal runs over a target and one other parameter."""

    noise_runs: int
    levels: int
    """Values of the target parameter."""
    layout: Layout = "grid"
    """single: every target value meets every other value once (one run per configuration, the
    study's fixed-seed grid); grid: ``replicates`` times; unbalanced: the same grid with
    1..2x``replicates`` runs per cell (neither balanced nor orthogonal); random: random search,
    each run draws both values uniformly."""
    noise_ratio: float = 1.0
    """Seed noise sd in the signal runs over that in the noise runs (1: the same noise)."""
    replicates: int = 2
    other_levels: int = 3
    other_effect: float = 2.0
    """Range of the other parameter's real effect, in noise sd (it must not leak)."""

    @property
    def label(self) -> str:
        noise = "equal" if self.noise_ratio == 1 else f"signal sd x{self.noise_ratio:g}"
        return f"{self.noise_runs} noise, {self.levels} values, {self.layout}, {noise}"

    def signal_codes(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Target and other parameter's value per signal run (every value present)."""
        k, o, r = self.levels, self.other_levels, self.replicates
        cells = np.array([(t, j) for t in range(k) for j in range(o)])
        if self.layout == "single":
            rows = cells
        elif self.layout == "grid":
            rows = np.repeat(cells, r, axis=0)
        elif self.layout == "unbalanced":
            rows = np.repeat(cells, rng.integers(1, 2 * r + 1, size=len(cells)), axis=0)
        else:
            while True:
                n = k * o * r
                rows = np.column_stack([rng.integers(0, k, n), rng.integers(0, o, n)])
                if len(np.unique(rows[:, 0])) == k and len(np.unique(rows[:, 1])) == o:
                    break
        return rows[:, 0], rows[:, 1]


def simulate_calibration(
    design: CalibrationDesign,
    effect: float,
    studies: int,
    rng: np.random.Generator,
    splits: int = 400,
    chunk: int = 100,
) -> dict[str, np.ndarray]:
    """P-values of the target parameter in ``studies`` simulated studies, per method.

    ``effect`` is the range of the target's planted effect in noise sd (0: no effect), spread
    evenly over its values. Noise is normal with sd 1 in the noise runs and ``noise_ratio`` in the
    signal runs. A new design is drawn every ``chunk`` studies (unbalanced and random layouts).
    """
    out: dict[str, list[np.ndarray]] = {m: [] for m in METHODS}
    target_offsets = np.linspace(-effect / 2, effect / 2, design.levels)
    other_offsets = np.linspace(
        -design.other_effect / 2, design.other_effect / 2, design.other_levels
    )
    done = 0
    while done < studies:
        m = min(chunk, studies - done)
        target, other = design.signal_codes(rng)
        n = len(target)
        truth = target_offsets[target] + other_offsets[other]
        signal = truth[:, None] + design.noise_ratio * rng.standard_normal((n, m))
        noise = rng.standard_normal((design.noise_runs, m))
        table = factorial.type2_table(
            factorial.main_terms({"target": target, "other": other}), signal
        )
        noise_ss, noise_df = factorial.noise_sum_of_squares(noise)
        for error in factorial.ERROR_TERMS:
            tests = factorial.f_tests(table, noise_ss, noise_df, error)
            out[error].append(tests.pvalue[0])
        out["splits"].append(_split_pvalues(signal, target, design.levels, noise, splits, rng))
        done += m
    return {method: np.concatenate(p) for method, p in out.items()}


def _split_pvalues(
    signal: np.ndarray,
    codes: np.ndarray,
    k: int,
    noise: np.ndarray,
    splits: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """The replaced method: raw range of group means against random splits of the noise runs."""
    sizes = np.bincount(codes, minlength=k)
    onehot = (codes[None, :] == np.arange(k)[:, None]) / sizes[:, None]
    observed = np.ptp(onehot @ signal, axis=0)
    n_noise, total = noise.shape[0], int(sizes.sum())
    if total > n_noise:
        rows = rng.integers(0, n_noise, size=(splits, total))
    else:
        rows = rng.permuted(np.broadcast_to(np.arange(n_noise), (splits, n_noise)), axis=1)
        rows = rows[:, :total]
    split_codes = np.repeat(np.arange(k), sizes)
    split_onehot = (split_codes[None, :] == np.arange(k)[:, None]) / sizes[:, None]
    drawn = noise[rows]  # splits x total x studies
    means = np.einsum("kt,stm->skm", split_onehot, drawn)
    null = np.ptp(means, axis=1)  # splits x studies
    return (1 + (null >= observed[None, :]).sum(axis=0)) / (splits + 1)


def rejection_rate(pvalues: np.ndarray, alpha: float = 0.05) -> float:
    return float(np.mean(np.asarray(pvalues) < alpha))


def binomial_halfwidth(rate: float, studies: int, z: float = 3.0) -> float:
    """``z`` standard errors of a rejection rate measured over ``studies`` studies."""
    return float(z * np.sqrt(rate * (1 - rate) / studies))
