"""The sequential rule of adaptive replicates: looks, alpha spending, decisions per look.

An adaptive sweep runs every configuration with a few seeds, looks at the data, and adds seeds in
rounds while some parameter is undecided. Testing at alpha after every round would call a
no-effect parameter significant far more often than alpha (the chance of crossing at *some* look
grows with the looks; docs/validation.md measures it). The rule here is a group-sequential design
with a fixed maximum number of looks K, planned before the first run:

- **alpha spending** (Lan & DeMets 1983): a spending function ``a(t)`` rises from 0 to alpha over
  the information fraction ``t`` (seeds run so far / seeds the budget allows). O'Brien-Fleming's
  form, ``2 (1 - Phi(z_{alpha/2} / sqrt(t)))``, spends almost nothing early and keeps most of
  alpha for the last look; Pocock's, ``alpha log(1 + (e - 1) t)``, spends evenly.
- **nominal level of look k** = ``a(t_k) - a(t_{k-1})``, the alpha spent between two looks. By
  the union bound the chance of any false rejection over all looks is at most the sum, alpha,
  whatever the correlation between looks (which, for an F test with several numerator df, has no
  simple form). It is conservative; exact boundaries for correlated looks would spend less
  caution but are only approximate for an F test.
- **the test at a look** is signal-effects' own: the type II F test of each parameter in the
  additive model of the signal runs over all parameters, against the signal residuals
  (``factorial``), Holm-adjusted over the parameters (``power.adjust_columns``). A parameter is
  *significant* at look k when its adjusted p-value is below look k's nominal level; Holm at
  level a_k controls the family-wise error over parameters at a_k, and the union bound over looks
  adds those up to alpha. A decision, once made, is never revisited.
- **futility** (non-binding, so it cannot raise the false-positive rate): a parameter is futile at
  a look when, planned on its bias-corrected effect (``power.corrected_f2``), the F test with
  every run the budget allows, at the last look's level (Holm's first step), would find it with
  less than the wanted power (runs-needed's count exceeds the budget).

The sweep stops when every parameter is significant or futile, or the budget is spent. Seeds are
replicates, never parameters. Everything is vectorised over simulated studies (columns), so the
validation (``bench/simulation/planted_adaptive.py``) runs the very decision code the sweep runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps

from lightning_app.analysis import factorial, power
from lightning_app.analysis.power import Correction

Spending = Literal["obrien-fleming", "pocock"]
SPENDINGS: tuple[Spending, ...] = ("obrien-fleming", "pocock")


def spending(t: np.ndarray | float, alpha: float, kind: Spending = "obrien-fleming") -> np.ndarray:
    """Alpha spent by information fraction ``t`` (0 at t = 0, alpha at t = 1; increasing)."""
    t = np.clip(np.asarray(t, dtype=float), 0.0, 1.0)
    if kind == "obrien-fleming":
        z = sps.norm.isf(alpha / 2)
        with np.errstate(divide="ignore"):
            spent = 2 * sps.norm.sf(z / np.sqrt(t))
        return np.where(t > 0, spent, 0.0)
    if kind == "pocock":
        return alpha * np.log1p((math.e - 1) * t)
    raise ValueError(f"spending must be one of {', '.join(SPENDINGS)}, not {kind!r}")


def look_levels(
    fractions: Sequence[float], alpha: float, kind: Spending = "obrien-fleming"
) -> np.ndarray:
    """Nominal level of each look: the alpha spent since the previous look.

    ``fractions`` are the cumulative information fractions of the looks, increasing, the last
    1 (every planned look is made or its alpha is simply not spent). The levels sum to alpha.
    """
    t = np.asarray(fractions, dtype=float)
    if t.size == 0 or np.any(np.diff(t) <= 0) or t[0] <= 0 or not math.isclose(t[-1], 1.0):
        raise ValueError(f"look fractions must increase from above 0 to 1, got {list(t)}")
    spent = spending(t, alpha, kind)
    spent[-1] = alpha  # exactly, whatever rounding the spending function does at t = 1
    return np.diff(np.concatenate([[0.0], spent]))


@dataclass(frozen=True)
class Design:
    """The planned sequential design: looks, their levels, the decision rule's settings."""

    alpha: float
    spending: Spending
    fractions: tuple[float, ...]
    """Cumulative information fraction (seeds so far / seeds the budget allows) of each look."""
    power: float = 0.8
    """Wanted power; a parameter below it with every run of the budget is futile."""
    correction: Correction = "holm"
    futility_confidence: float = 0.9
    """Futility plans on the upper bound of a one-sided confidence interval of this level for
    the effect (0.5: the bias-corrected estimate itself)."""

    @property
    def looks(self) -> int:
        return len(self.fractions)

    @property
    def levels(self) -> np.ndarray:
        return look_levels(self.fractions, self.alpha, self.spending)


def equal_rounds(seeds: int, per_round: int) -> tuple[float, ...]:
    """Information fractions of rounds of ``per_round`` seeds out of ``seeds`` (the last round
    may be short)."""
    cumulative = [*range(per_round, seeds, per_round), seeds]
    return tuple(c / seeds for c in cumulative)


@dataclass(frozen=True)
class Look:
    """The tests and decisions of one look (arrays: parameters x studies)."""

    params: list[str]
    level: float
    statistic: np.ndarray
    """The type II F statistics."""
    df_num: np.ndarray
    df_denom: int
    pvalue: np.ndarray
    pvalue_adjusted: np.ndarray
    significant: np.ndarray
    """Adjusted p-value below this look's nominal level."""
    corrected_f2: np.ndarray
    """Bias-corrected Cohen's f^2 (runs-needed's planning effect)."""
    power_at_budget: np.ndarray
    """Power of the F test with every run the budget allows, at the last look's level."""
    futile: np.ndarray
    """Not significant and ``power_at_budget`` below the design's power."""


def look(
    codes: Mapping[str, np.ndarray],
    y: np.ndarray,
    level: float,
    design: Design,
    budget_runs: int,
) -> Look:
    """Test every parameter at one look and decide: significant, futile, or neither.

    ``codes[name]`` gives each run's value index of a parameter (the runs of every round so
    far), ``y`` the metric per run (runs, or runs x studies). ``budget_runs`` is the number of
    runs the design allows in all (every configuration at its largest seed count).
    """
    y2 = np.asarray(y, dtype=float).reshape(len(y), -1)
    names = list(codes)
    table = factorial.type2_table(factorial.main_terms(dict(codes)), y2)
    studies = y2.shape[1]
    if table.df_resid < 1:  # no residual df: no test at this look, its alpha goes unspent
        nan = np.full((len(names), studies), np.nan)
        false = np.zeros((len(names), studies), dtype=bool)
        return Look(names, level, nan, table.df, 0, nan, nan, false, nan, nan, false)
    tests = factorial.f_tests(table, np.zeros(studies), 0, "signal")
    adjusted = power.adjust_columns(tests.pvalue, design.correction)
    significant = adjusted < level
    n = table.n
    corrected = np.vectorize(power.corrected_f2, otypes=[float])(
        tests.statistic, tests.df_num[:, None], tests.df_denom, n
    )
    upper = (
        noncentrality_upper(
            tests.statistic, tests.df_num[:, None], tests.df_denom, design.futility_confidence
        )
        / n
    )
    planned = upper if design.futility_confidence != 0.5 else corrected
    at_budget = _power_at_budget(planned, table.df, design, budget_runs)
    futile = ~significant & (at_budget < design.power)
    return Look(
        names,
        level,
        tests.statistic,
        table.df,
        tests.df_denom,
        tests.pvalue,
        adjusted,
        significant,
        corrected,
        at_budget,
        futile,
    )


def _power_at_budget(
    f2: np.ndarray, df: np.ndarray, design: Design, budget_runs: int
) -> np.ndarray:
    """Per parameter (rows of ``f2``): the F test's power with every run the budget allows, at
    the last look's level (Holm's first step), for the effect sizes ``f2``."""
    names = len(df)
    last = float(design.levels[-1])
    rule = power.Rule(last, names, design.correction, "signal", int(df.sum()), 0, math.inf)
    at_budget = np.empty_like(f2)
    for row in range(names):
        k = int(df[row]) + 1
        per_value = budget_runs // k
        positive = f2[row] > 0  # scipy's noncentral F is wrong at noncentrality 0 (sf < 0)
        at_budget[row] = np.where(
            positive,
            power.f_test_power(np.clip(f2[row], 1e-12, 100.0), k, per_value, rule),
            0.0,
        )
    return at_budget


def noncentrality_upper(
    statistic: np.ndarray, df_num: np.ndarray | int, df_denom: int, confidence: float
) -> np.ndarray:
    """Upper bound of a one-sided ``confidence`` interval for the noncentrality of an observed F.

    The largest lambda with ``P(F <= observed; lambda) >= 1 - confidence`` (inverting scipy's
    noncentral F by bisection on log lambda, vectorised); 0 where even lambda = 0 is that
    unlikely to give an F this small. NaN F (no test) gives 0.
    """
    f = np.nan_to_num(np.asarray(statistic, dtype=float), nan=0.0)
    df1 = np.broadcast_to(np.asarray(df_num, dtype=float), f.shape)
    gamma = 1.0 - confidence
    zero = sps.f.cdf(f, np.maximum(df1, 1), df_denom) <= gamma
    lo = np.full(f.shape, -12.0)  # log lambda
    hi = np.full(f.shape, np.log(1e5))
    for _ in range(50):
        mid = (lo + hi) / 2
        cdf = sps.ncf.cdf(f, np.maximum(df1, 1), df_denom, np.exp(mid))
        above = cdf > gamma  # lambda too small: the observed F is still likely
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    return np.where(zero | (df1 < 1), 0.0, np.exp(lo))


def runs_needed(
    f2: float, k: int, design: Design, n_params: int, model_df: int, limit: int = 100_000
) -> int | None:
    """Runs per value for the design's power at the last look's level (None: over ``limit``)."""
    if not f2 > 0:
        return None
    rule = power.Rule(
        float(design.levels[-1]), n_params, design.correction, "signal", model_df, 0, math.inf
    )
    return power.smallest_runs(
        lambda r: float(power.f_test_power(f2, k, r, rule)[()]), design.power, limit
    )


__all__ = [
    "SPENDINGS",
    "Design",
    "Look",
    "equal_rounds",
    "look",
    "look_levels",
    "noncentrality_upper",
    "runs_needed",
    "spending",
]
