"""How many runs the rule signal-effects applies needs: power of its F test, Holm, ratio rule.

The rule (``analyses/signal_effects.py``): a parameter is *significant* when its type II F test in
the additive model, against the chosen error term, is below alpha after correction over the m
analysed parameters; it is *called signal* when, in addition, its effect is at least
``signal_ratio`` times its noise effect. Planned for a balanced design in which the parameter's k
values get r runs each (the other parameters crossed with it), so the F test's noncentrality is
``lambda = r k f^2`` (Cohen's f of the parameter's level effects over the error sd) and its
denominator df follow from the error term. Holm's first step tests at ``alpha / m``; planning at
that level is a lower bound on the power of Holm (and of Bonferroni and Benjamini-Hochberg).

Significance has an analytic power (scipy's noncentral F, the distribution statsmodels' power
classes use); the ratio rule has none, so the count to be called signal comes from simulating
the group means and the error term from their exact distributions. :func:`simulate_rule` checks
both by running the whole rule, the real model code included, on simulated sweeps.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps

from lightning_app.analysis import factorial, stats
from lightning_app.analysis.factorial import ErrorTerm

Correction = Literal["holm", "bonferroni", "fdr_bh", "none"]
"""statsmodels ``multipletests`` method names the analyses accept."""


@dataclass(frozen=True)
class Rule:
    """The decision rule signal-effects applies, as far as power depends on it."""

    alpha: float
    n_tests: int
    """Parameters tested together (the family the correction runs over)."""
    correction: Correction
    error: ErrorTerm
    model_df: int
    """Degrees of freedom of all main terms of the additive model (sum of values - 1)."""
    noise_df: int
    """Noise runs - 1."""
    signal_ratio: float

    @property
    def alpha_per_test(self) -> float:
        """Holm's (and Bonferroni's) first-step level; the plain alpha without a correction."""
        return self.alpha if self.correction == "none" else self.alpha / self.n_tests

    def df_denom(self, n_signal: int | np.ndarray) -> np.ndarray:
        """Denominator df of the F test with ``n_signal`` signal runs (<= 0: no test possible)."""
        resid = np.asarray(n_signal) - 1 - self.model_df
        if self.error == "signal":
            return resid
        # Fewer signal runs than the model has coefficients cannot be fitted at all.
        extra = 0 if self.error == "noise" else resid
        return np.where(resid >= 0, extra + self.noise_df, 0)


def f_test_power(
    f2: float | np.ndarray, k: int, runs_per_value: np.ndarray | int, rule: Rule
) -> np.ndarray:
    """Power of the parameter's F test with ``runs_per_value`` runs for each of its k values.

    ``f2`` may be an array (one power per effect) when ``runs_per_value`` is a single count.

    Raises ValueError when scipy returns a non-finite power (its noncentral F loses accuracy for
    huge noncentralities) rather than letting a NaN pass for "not enough runs".
    """
    r = np.asarray(runs_per_value, dtype=float)
    df2 = rule.df_denom((r * k).astype(int)).astype(float)
    ok = df2 >= 1
    df2 = np.where(ok, df2, 1.0)
    crit = sps.f.isf(rule.alpha_per_test, k - 1, df2)
    power = np.where(ok, sps.ncf.sf(crit, k - 1, df2, r * k * f2), 0.0)
    if not np.all(np.isfinite(power)):
        raise ValueError(f"non-finite power for f^2={f2:g}, k={k} at runs {r[~np.isfinite(power)]}")
    return np.asarray(power, dtype=float)


def smallest_runs(
    power_at: Callable[[int], float], target: float, max_runs: int, start: int = 2
) -> int | None:
    """Smallest whole number of runs in [start, max_runs] whose power reaches ``target``.

    Doubling, then bisection; power must grow with the run count. A non-finite power is an
    error, never "too few".
    """

    def reaches(n: int) -> bool:
        value = power_at(n)
        if not math.isfinite(value):
            raise ValueError(f"non-finite power {value} at {n} runs")
        return value >= target

    if reaches(start):
        return start
    lo, hi = start, start
    while not reaches(hi):
        if hi >= max_runs:
            return None
        lo, hi = hi, min(max_runs, hi * 2)
    while hi - lo > 1:  # invariant: power(lo) < target <= power(hi)
        mid = (lo + hi) // 2
        if reaches(mid):
            hi = mid
        else:
            lo = mid
    return hi


def corrected_f2(statistic: float, df_num: int, df_denom: int, n: int) -> float:
    """Bias-corrected Cohen's f^2 of an observed F: the unbiased noncentrality, per run.

    E[F] = df2 / (df2 - 2) * (1 + lambda / df1) for a noncentral F, so
    ``lambda_hat = df1 * (F * (df2 - 2) / df2 - 1)`` is unbiased (truncated at 0), and
    ``f^2 = lambda_hat / n``. The observed effect is the largest minus the smallest of noisy
    group means and overstates the true one; planning on it gives too few runs.
    With df2 <= 2 (no finite mean) the partial omega squared form ``df1 (F - 1) / n`` is used.
    """
    if not math.isfinite(statistic):
        return 0.0
    scale = (df_denom - 2) / df_denom if df_denom > 2 else 1.0
    return max(0.0, df_num * (statistic * scale - 1.0) / n)


@functools.cache
def median_noise_range(k: int) -> float:
    """Median range of k standard normal values (the studentized range with infinite df).

    Cached: scipy's quantile takes milliseconds and the run-count searches ask for it often.
    """
    return float(sps.studentized_range.ppf(0.5, k, np.inf))


def planned_noise_effect(noise_sd: float, n_noise: int, k: int, r: int) -> float:
    """The noise effect the report will give k groups of r runs: s x median range / sqrt(r).

    The report takes the median range over random splits of the N noise runs; a search over r
    cannot afford those splits at every r. The approximation is exact in the second moment: two
    group means of r runs drawn without replacement differ with variance 2 s^2 / r (s with
    ddof=1), and when k r > N the report draws with replacement, whose means vary by
    sqrt((N - 1) / N) less. Only the runs' shape is left out: within a few percent from 30 noise
    runs on, but with 5-10 runs split without replacement the report's is 5-25% larger
    (docs/statistics.md). :func:`simulate_rule` uses the real splits, so its check shows it.
    """
    effect = noise_sd * median_noise_range(k) / math.sqrt(r)
    if n_noise >= 2 and k * r > n_noise:
        effect *= math.sqrt((n_noise - 1) / n_noise)
    return effect


def least_favourable_offsets(effect: float, k: int) -> np.ndarray:
    """Level offsets with range ``effect`` and the smallest spread: two extremes, rest centred.

    A minimum effect says only how far apart the best and worst value are; this layout has the
    smallest Cohen's f of all layouts with that range, so the count it gives is enough for any.
    """
    offsets = np.zeros(k)
    offsets[0], offsets[1] = effect / 2, -effect / 2
    return offsets


@dataclass(frozen=True)
class RuleDraws:
    """Common random numbers for :func:`rule_power`, so power is smooth in the run count."""

    z: np.ndarray
    """Standard normal draws, simulations x values."""
    u: np.ndarray
    """Uniform draws for the error term's chi-square, one per simulation."""

    @classmethod
    def make(cls, k: int, simulations: int, rng: np.random.Generator) -> RuleDraws:
        return cls(rng.standard_normal((simulations, k)), rng.random(simulations))


def rule_power(
    offsets: np.ndarray,
    sigma: float,
    noise_sd: float,
    runs_per_value: int,
    rule: Rule,
    draws: RuleDraws,
) -> tuple[float, float]:
    """P(significant) and P(called signal) for a balanced design, from exact distributions.

    The k group means are ``offsets + sigma / sqrt(r) * z`` and the error mean square is
    ``sigma^2 chi2(df) / df``, which is what the F test sees in a balanced design; the noise effect
    the ratio rule compares against is :func:`planned_noise_effect`.
    """
    r = int(runs_per_value)
    k = len(offsets)
    df2 = int(rule.df_denom(r * k))
    if df2 < 1:
        return 0.0, 0.0
    means = np.asarray(offsets)[None, :] + sigma / math.sqrt(r) * draws.z
    ss = r * ((means - means.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    mse = sigma**2 * sps.chi2.ppf(draws.u, df2) / df2
    p = sps.f.sf(ss / (k - 1) / mse, k - 1, df2)
    significant = p < rule.alpha_per_test
    noise_effect = planned_noise_effect(noise_sd, rule.noise_df + 1, k, r)
    called = significant & (np.ptp(means, axis=1) >= rule.signal_ratio * noise_effect)
    return float(significant.mean()), float(called.mean())


@dataclass(frozen=True)
class SimulatedRule:
    """Shares of simulated sweeps in which the rule found the parameter significant / signal."""

    significant: float
    called_signal: float
    simulations: int


def simulate_rule(
    levels: Mapping[str, np.ndarray],
    target: str,
    runs_per_value: int,
    sigma: float,
    noise: np.ndarray,
    rule: Rule,
    simulations: int,
    rng: np.random.Generator,
    splits: int = 1000,
) -> SimulatedRule:
    """Run the whole rule on simulated sweeps: model, error term, correction and ratio rule.

    ``levels[name]`` holds each parameter's true level offsets. The target gets
    ``runs_per_value`` runs per value; the other parameters are crossed with it. Signal errors
    are the noise runs' own centred values rescaled to ``sigma`` (real seed noise keeps its
    shape); each simulated sweep also draws fresh noise runs from them, so error terms that use
    the noise runs vary as they would. The ratio rule compares against the report's noise effect,
    the median range of ``splits`` random splits of ``noise`` into the planned groups.
    """
    noise = np.asarray(noise, dtype=float)
    shape = (noise - noise.mean()) / noise.std(ddof=1)
    k = len(levels[target])
    n = runs_per_value * k
    codes = {target: np.repeat(np.arange(k), runs_per_value)}
    others = [name for name in levels if name != target]
    # Every value of the target gets the same mix of the others' values (their grid, in order,
    # as far as r runs reach): the target is orthogonal to them, as the plan assumes.
    if others:
        grid = np.indices([len(levels[name]) for name in others]).reshape(len(others), -1).T
        within = np.tile(np.arange(runs_per_value), k) % len(grid)
        for i, name in enumerate(others):
            codes[name] = grid[within, i]
    terms = factorial.main_terms(codes)
    truth = np.zeros(n)
    for name, c in codes.items():
        truth += np.asarray(levels[name])[c]
    y = truth[:, None] + sigma * shape[rng.integers(0, len(noise), (n, simulations))]
    fresh = noise.std(ddof=1) * shape[rng.integers(0, len(noise), (len(noise), simulations))]
    noise_ss, noise_df = factorial.noise_sum_of_squares(fresh)
    table = factorial.type2_table(terms, y)
    tests = factorial.f_tests(table, noise_ss, noise_df, rule.error)
    adjusted = adjust_columns(tests.pvalue, rule.correction)
    row = table.terms.index(target)
    significant = adjusted[row] < rule.alpha
    effect = np.ptp(factorial.level_effects(table, target), axis=0)
    # The report's own noise effect: the median range over random splits of these noise runs.
    sizes = (runs_per_value,) * k
    noise_effect = stats.noise_null(noise, sizes, splits, rng).median
    called = significant & (effect >= rule.signal_ratio * noise_effect)
    return SimulatedRule(float(significant.mean()), float(called.mean()), simulations)


def adjust_columns(pvalues: np.ndarray, correction: Correction) -> np.ndarray:
    """Adjusted p-values of the tests (rows) of every column (one family per column).

    The same numbers as statsmodels' ``multipletests`` (the tests check it), which adjusts one
    family per call; simulated sweeps need thousands of families at once. Holm: step-down
    ``max_{j<=i} min(1, (m - j + 1) p_(j))``; fdr_bh: scipy's ``false_discovery_control``.
    NaN (an untestable term) stays NaN and does not count in the family.
    """
    p = np.asarray(pvalues, dtype=float)
    if correction == "none":
        return p
    ok = np.isfinite(p)
    m = ok.sum(axis=0)
    if correction == "bonferroni":
        return np.where(ok, np.minimum(1.0, p * m), np.nan)
    if correction == "fdr_bh":
        if not ok.all():
            raise ValueError("fdr_bh needs every test to have a p-value")
        return np.asarray(sps.false_discovery_control(p, axis=0, method="bh"), dtype=float)
    if correction != "holm":
        raise ValueError(f"unknown correction {correction!r}")
    filled = np.where(ok, p, np.inf)
    order = np.argsort(filled, axis=0)
    ranked = np.take_along_axis(filled, order, axis=0)
    factor = m[None, :] - np.arange(p.shape[0])[:, None]
    stepped = np.minimum(1.0, np.maximum.accumulate(ranked * np.maximum(factor, 1), axis=0))
    out = np.empty_like(p)
    np.put_along_axis(out, order, stepped, axis=0)
    return np.where(ok, out, np.nan)
