"""The adaptive procedure simulated on planted sweeps (``bench/validate_stats.py``, tests).

Runs the very decision code ``sweep --adaptive`` runs (``lightning_app.analysis.sequential.look``)
on simulated sweeps with a planted effect, so its false-positive rate and its saving against fixed
designs can be measured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from lightning_app.analysis import factorial, power
from lightning_app.analysis.sequential import Design, equal_rounds, look


@dataclass(frozen=True)
class Planted:
    """A simulated adaptive sweep: a full grid over ``levels``, seeds added in rounds."""

    levels: Mapping[str, int]
    """Values of each parameter; the first is the *target* whose effect is planted."""
    seeds: int
    """Most seeds per configuration (the budget)."""
    per_round: int
    other_effect: float = 2.0
    """Range of every other parameter's real effect, in noise sd."""

    @property
    def configurations(self) -> int:
        return math.prod(self.levels.values())

    @property
    def label(self) -> str:
        grid = " x ".join(str(k) for k in self.levels.values())
        looks = len(equal_rounds(self.seeds, self.per_round))
        return f"{grid} grid, {self.per_round} seed(s)/round, {looks} looks"

    def codes(self, seeds: int) -> dict[str, np.ndarray]:
        """Value codes of the runs of ``seeds`` seeds (seed-major: a round appends rows)."""
        grid = np.indices(list(self.levels.values())).reshape(len(self.levels), -1)
        return {name: np.tile(grid[i], seeds) for i, name in enumerate(self.levels)}


@dataclass(frozen=True)
class Simulated:
    """Per study: the look at which each parameter became significant (0: never), and cost."""

    params: list[str]
    first_significant: np.ndarray
    """Parameters x studies."""
    naive_first: np.ndarray
    """The same for testing at alpha at every look with no correction for looking (invalid)."""
    stop_look: np.ndarray
    runs: np.ndarray
    fixed_power: np.ndarray
    """Parameters x seeds (1..max): power of the fixed design with that many seeds, at alpha."""


def simulate_adaptive(
    planted: Planted,
    effect: float,
    design: Design,
    studies: int,
    rng: np.random.Generator,
) -> Simulated:
    """Run the adaptive rule (the code the sweep runs) on ``studies`` simulated sweeps.

    Noise is normal with sd 1; the target's planted effect has range ``effect`` (noise sd),
    spread evenly over its values; every other parameter has range ``planted.other_effect``.
    The fixed designs of 1..max seeds are tested on the same draws (common random numbers).
    """
    names = list(planted.levels)
    offsets = {
        name: np.linspace(-1, 1, k) * (effect if i == 0 else planted.other_effect) / 2
        for i, (name, k) in enumerate(planted.levels.items())
    }
    c = planted.configurations
    full = planted.codes(planted.seeds)
    truth = sum(offsets[name][full[name]] for name in names)
    y = np.asarray(truth)[:, None] + rng.standard_normal((c * planted.seeds, studies))
    cumulative = [round(f * planted.seeds) for f in design.fractions]
    budget = c * planted.seeds
    first = np.zeros((len(names), studies), dtype=int)
    naive = np.zeros((len(names), studies), dtype=int)
    active = np.ones(studies, dtype=bool)
    stop = np.zeros(studies, dtype=int)
    for k, (seeds, level) in enumerate(zip(cumulative, design.levels, strict=True), start=1):
        rows = c * seeds
        codes = {name: v[:rows] for name, v in full.items()}
        result = look(codes, y[:rows], float(level), design, budget)
        newly = result.significant & (first == 0) & active[None, :]
        first[newly] = k
        naive_hit = (result.pvalue_adjusted < design.alpha) & (naive == 0) & active[None, :]
        naive[naive_hit] = k
        decided = (first > 0) | result.futile
        ends = active & (decided.all(axis=0) | (k == len(cumulative)))
        stop[ends] = k
        active &= ~ends
    runs = np.asarray([c * cumulative[k - 1] for k in stop])
    fixed = np.empty((len(names), planted.seeds))
    for s in range(1, planted.seeds + 1):
        rows = c * s
        table = factorial.type2_table(
            factorial.main_terms({n: v[:rows] for n, v in full.items()}), y[:rows]
        )
        if table.df_resid < 1:
            fixed[:, s - 1] = np.nan
            continue
        tests = factorial.f_tests(table, np.zeros(studies), 0, "signal")
        adjusted = power.adjust_columns(tests.pvalue, design.correction)
        fixed[:, s - 1] = (adjusted < design.alpha).mean(axis=1)
    return Simulated(names, first, naive, stop, runs, fixed)


def fixed_runs_at_power(fixed_power: np.ndarray, target: float, configurations: int) -> float:
    """Runs a fixed design needs for ``target`` power: seeds interpolated between whole counts.

    ``fixed_power[s - 1]`` is the power with s seeds per configuration; NaN (untestable) counts
    as 0. Returns NaN when even the largest design falls short.
    """
    p = np.nan_to_num(np.asarray(fixed_power, dtype=float), nan=0.0)
    p = np.maximum.accumulate(p)
    if target <= 0:
        return 0.0
    above = np.flatnonzero(p >= target)
    if above.size == 0:
        return math.nan
    s = int(above[0]) + 1
    if s == 1:
        return float(configurations)
    lo, hi = p[s - 2], p[s - 1]
    frac = (target - lo) / (hi - lo) if hi > lo else 1.0
    return float(configurations * (s - 1 + frac))
