"""The calibrated test: a linear model of the signal runs over all analysed parameters.

Each parameter's effect is tested by its type II sum of squares in an additive model of the signal
runs (every analysed parameter a categorical factor; Fox, *Applied Regression Analysis*, 3rd ed.,
ch. 8; Langsrud 2003), with an F test against one of three error terms:

- ``signal``: the model's residual mean square (n - p df). Exact under the model whatever the seed
  noise is at the noise sweep's configuration; interactions left out of the model inflate it, which
  makes the test conservative, never anti-conservative.
- ``noise``: the noise runs' variance (N - 1 df). Exact only when seed noise is the same at every
  configuration as at the noise sweep's; the variance check below tests that.
- ``pooled``: both sums of squares over both degrees of freedom; the same assumption, more df.

Other parameters' effects are in the model, so they neither leak into a parameter's sum of
squares (random search, unbalanced grids) nor sit in its error term (factorial grids).
``docs/validation.md`` measures the false-positive rate and power of all three by simulation.

statsmodels' ``anova_lm(ols(...), typ=2)`` computes the same table for one response; this module
computes it for many responses at once (epochs, or thousands of simulated studies in the validation
and in runs-needed) from one QR factorisation per model, and the tests check it against statsmodels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import linalg
from scipy import stats as sps

ErrorTerm = Literal["signal", "noise", "pooled"]
ERROR_TERMS: tuple[ErrorTerm, ...] = ("signal", "noise", "pooled")


def check_error_term(error: str) -> None:
    """Raise ``ValueError`` (an analysis option's mistake) unless ``error`` names an error term."""
    if error not in ERROR_TERMS:
        raise ValueError(f"error must be one of {', '.join(ERROR_TERMS)}, not {error}")


@dataclass(frozen=True)
class Term:
    """A model term: one parameter (a main effect) or a pair of them (a two-way interaction)."""

    factors: tuple[str, ...]
    columns: np.ndarray
    """Treatment-coded columns of the design matrix (runs x columns)."""

    @property
    def name(self) -> str:
        return ":".join(self.factors)

    def contains(self, other: Term) -> bool:
        """True when ``other`` is marginal to this term (its factors are a proper subset)."""
        return set(other.factors) < set(self.factors)


def main_terms(factors: dict[str, np.ndarray]) -> list[Term]:
    """One treatment-coded term per parameter; ``factors`` maps a name to each run's level code."""
    return [Term((name,), _dummies(codes)) for name, codes in factors.items()]


def two_way_terms(factors: dict[str, np.ndarray]) -> list[Term]:
    """Main terms plus every pairwise interaction (products of the two parameters' dummies)."""
    mains = main_terms(factors)
    pairs = []
    for i, a in enumerate(mains):
        for b in mains[i + 1 :]:
            cols = (a.columns[:, :, None] * b.columns[:, None, :]).reshape(len(a.columns), -1)
            pairs.append(Term(a.factors + b.factors, cols))
    return mains + pairs


def _dummies(codes: np.ndarray) -> np.ndarray:
    codes = np.asarray(codes)
    levels = np.unique(codes)
    return (codes[:, None] == levels[None, 1:]).astype(float)


@dataclass(frozen=True)
class _Fit:
    rank: int
    rss: np.ndarray
    coef: np.ndarray | None = None


def _fit(columns: Sequence[np.ndarray], y: np.ndarray, n: int, coef: bool = False) -> _Fit:
    """Residual sums of squares of ``y`` (runs x responses) on an intercept plus ``columns``.

    A rank-revealing (pivoted) QR keeps rank-deficient designs exact: their rank, not their
    column count, sets the degrees of freedom.
    """
    x = np.column_stack([np.ones(n), *columns]) if columns else np.ones((n, 1))
    q, r, perm = linalg.qr(x, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int(np.count_nonzero(diag > diag[0] * max(x.shape) * np.finfo(float).eps * 10))
    q = q[:, :rank]
    resid = y - q @ (q.T @ y)
    beta = None
    if coef:
        solved = linalg.solve_triangular(r[:rank, :rank], q.T @ y)
        beta = np.zeros((x.shape[1], y.shape[1]))
        beta[perm[:rank]] = solved
    return _Fit(rank, np.einsum("ij,ij->j", resid, resid), beta)


@dataclass(frozen=True)
class ModelTable:
    """Type II sums of squares of every term, for one or many responses (columns)."""

    terms: list[str]
    ss: np.ndarray
    """Terms x responses."""
    df: np.ndarray
    """Per term: the rank it adds to the model of every term not containing it."""
    rss: np.ndarray
    """Residual sum of squares of the full model, per response."""
    df_resid: int
    n: int
    coef: np.ndarray
    """Coefficients of the full model (intercept first, then each term's columns), per response."""
    columns: dict[str, slice]
    """Where each term's coefficients sit in ``coef``."""


def type2_table(terms: Sequence[Term], y: np.ndarray) -> ModelTable:
    """Type II ANOVA table of ``y`` (runs, or runs x responses) on ``terms`` with an intercept.

    The type II sum of squares of a term is the drop in residual sum of squares when it is added to
    the model of every term that does not contain it (for a main effect in an additive model: all
    other main effects), as in statsmodels' ``anova_lm(typ=2)`` and R's ``car::Anova``.
    """
    y = np.asarray(y, dtype=float)
    y2 = y.reshape(len(y), -1)
    y2 = y2 - y2.mean(axis=0)  # the intercept is in every model; centring keeps precision
    n = len(y2)
    full = _fit([t.columns for t in terms], y2, n, coef=True)
    ss = np.empty((len(terms), y2.shape[1]))
    df = np.empty(len(terms), dtype=int)
    for i, term in enumerate(terms):
        base = [t.columns for t in terms if t is not term and not t.contains(term)]
        without = _fit(base, y2, n)
        with_term = full if len(base) == len(terms) - 1 else _fit([*base, term.columns], y2, n)
        ss[i] = np.maximum(without.rss - with_term.rss, 0.0)
        df[i] = with_term.rank - without.rank
    columns, start = {}, 1
    for term in terms:
        columns[term.name] = slice(start, start + term.columns.shape[1])
        start += term.columns.shape[1]
    assert full.coef is not None
    return ModelTable(
        terms=[t.name for t in terms],
        ss=ss,
        df=df,
        rss=full.rss,
        df_resid=n - full.rank,
        n=n,
        coef=full.coef,
        columns=columns,
    )


@dataclass(frozen=True)
class FTests:
    """F tests of every term against one error term (arrays: terms x responses)."""

    terms: list[str]
    error: ErrorTerm
    statistic: np.ndarray
    pvalue: np.ndarray
    df_num: np.ndarray
    df_denom: int
    mean_square_error: np.ndarray
    """Per response: the error variance the tests divide by."""
    partial_omega_squared: np.ndarray
    """df (F - 1) / (df (F - 1) + n) (Olejnik & Algina 2003); at or below 0 means no effect."""


def error_variance(
    table: ModelTable, noise_ss: np.ndarray, noise_df: int, error: ErrorTerm
) -> tuple[np.ndarray, int]:
    """The error mean square and its df: signal residuals, noise runs, or both pooled."""
    if error == "signal":
        ss, df = table.rss, table.df_resid
    elif error == "noise":
        ss, df = np.asarray(noise_ss, dtype=float), noise_df
    else:
        ss, df = table.rss + noise_ss, table.df_resid + noise_df
    if df < 1:
        raise ValueError(f"the {error} error term has no degrees of freedom")
    return ss / df, df


def f_tests(
    table: ModelTable, noise_ss: np.ndarray, noise_df: int, error: ErrorTerm = "signal"
) -> FTests:
    """F = (SS_term / df_term) / MS_error for every term, p from scipy's F distribution."""
    mse, df_denom = error_variance(table, noise_ss, noise_df, error)
    df_num = np.maximum(table.df, 1)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (table.ss / df_num) / mse[None, :]
    f = np.where(table.df[:, None] > 0, f, np.nan)
    p = sps.f.sf(f, df_num, df_denom)
    omega = df_num * (f - 1) / (df_num * (f - 1) + table.n)
    return FTests(table.terms, error, f, p, table.df, df_denom, mse, omega)


def noise_sum_of_squares(noise: np.ndarray) -> tuple[np.ndarray, int]:
    """Sum of squared deviations of the noise runs from their mean (runs, or runs x responses)."""
    noise = np.asarray(noise, dtype=float)
    noise2 = noise.reshape(len(noise), -1)
    return ((noise2 - noise2.mean(axis=0)) ** 2).sum(axis=0), len(noise) - 1


def level_effects(table: ModelTable, term: str) -> np.ndarray:
    """Each level's coefficient (the first level's is 0) of a main term: levels x responses.

    In an additive model these differ from the least-squares means of the levels by a constant,
    so their range is the parameter's effect *adjusted for the other parameters*: equal to the
    range of the raw group means in a balanced grid, free of the others' leakage otherwise.
    """
    coef = table.coef[table.columns[term]]
    return np.vstack([np.zeros((1, coef.shape[1])), coef])


@dataclass(frozen=True)
class VarianceCheck:
    """Signal runs' error variance against the noise runs' (two-sided F test of the ratio)."""

    source: Literal["replicates", "residuals"]
    """``replicates``: spread of runs of one configuration; ``residuals``: of the additive model."""
    signal_sd: float
    signal_df: int
    noise_sd: float
    noise_df: int
    variance_ratio: float
    """signal variance / noise variance."""
    pvalue: float


def variance_check(
    signal: np.ndarray,
    configs: np.ndarray,
    additive: ModelTable,
    noise_ss: np.ndarray,
    noise_df: int,
) -> VarianceCheck | None:
    """Is seed noise in the signal runs the size of the noise runs'? None when untestable.

    With replicates (several runs of one configuration: ``configs`` gives each run's
    configuration index) their spread is seed noise measured at every configuration; otherwise
    the residuals of the additive model stand in for it (they also hold any interactions).
    ``noise_ss`` and ``noise_df`` are the noise runs' (:func:`noise_sum_of_squares`).
    """
    signal = np.asarray(signal, dtype=float)
    counts = np.bincount(configs)
    within_df = len(signal) - len(counts)
    source: Literal["replicates", "residuals"]
    if within_df >= 2:
        means = np.bincount(configs, weights=signal) / counts
        ss, df, source = float(((signal - means[configs]) ** 2).sum()), within_df, "replicates"
    elif additive.df_resid >= 2:
        ss, df, source = float(additive.rss[0]), additive.df_resid, "residuals"
    else:
        return None
    if noise_df < 2 or noise_ss[0] <= 0:
        return None
    var_s, var_n = ss / df, float(noise_ss[0]) / noise_df
    ratio = var_s / var_n
    one_sided = float(sps.f.sf(ratio, df, noise_df))
    p = min(1.0, 2 * min(one_sided, 1 - one_sided))
    return VarianceCheck(
        source, float(np.sqrt(var_s)), df, float(np.sqrt(var_n)), noise_df, ratio, p
    )


def confounded(terms: Sequence[Term], n: int) -> list[tuple[str, ...]]:
    """Groups of main terms that the design cannot separate (each found by its smallest set).

    Pairs first (every value of one determines the other's, or a subset of it), then the whole
    set; a parameter that is fully determined by the others has no type II degrees of freedom.
    """
    found: list[tuple[str, ...]] = []
    zeros = np.zeros((n, 1))
    for i, a in enumerate(terms):
        for b in terms[i + 1 :]:
            rank = _fit([a.columns, b.columns], zeros, n).rank
            if rank < 1 + a.columns.shape[1] + b.columns.shape[1]:
                found.append((a.name, b.name))
    if not found and terms:
        rank = _fit([t.columns for t in terms], zeros, n).rank
        if rank < 1 + sum(t.columns.shape[1] for t in terms):
            found.append(tuple(t.name for t in terms))
    return found


@dataclass(frozen=True)
class SignalModel:
    """The signal runs' models at one epoch, the noise runs' sum of squares, and their check."""

    additive: ModelTable
    interactions: ModelTable | None
    """Main effects and every two-way interaction, when the design leaves >= 2 residual df."""
    noise_ss: np.ndarray
    noise_df: int
    variance: VarianceCheck | None
    configurations: int
    """Distinct configurations of the analysed parameters among the signal runs."""

    def error_for(self, wanted: ErrorTerm) -> tuple[ErrorTerm, str | None]:
        """The error term to use and, when it differs from ``wanted``, why."""
        if wanted == "signal" and self.additive.df_resid < 1:
            return "noise", (
                f"The additive model uses every signal run's degree of freedom (n = "
                f"{self.additive.n}, no residual), so the F tests use the noise runs' variance "
                f"instead of the signal residuals; they assume seed noise is the same at every "
                f"configuration (add seeds per configuration to check it)."
            )
        return wanted, None

    def tests(self, error: ErrorTerm) -> FTests:
        return f_tests(self.additive, self.noise_ss, self.noise_df, error)

    def interaction_tests(self, error: ErrorTerm) -> FTests | None:
        if self.interactions is None:
            return None
        return f_tests(self.interactions, self.noise_ss, self.noise_df, error)


def signal_model(
    signal: np.ndarray, factors: dict[str, np.ndarray], noise: np.ndarray
) -> SignalModel:
    """Fit the additive (and, where estimable, two-way) model of 1-D ``signal`` on ``factors``."""
    signal = np.asarray(signal, dtype=float)
    n = len(signal)
    additive = type2_table(main_terms(factors), signal)
    interactions = None
    if len(factors) >= 2:
        table = type2_table(two_way_terms(factors), signal)
        if table.df_resid >= 2 and np.any(table.df[len(factors) :] > 0):
            interactions = table
    stacked = np.column_stack(list(factors.values())) if factors else np.zeros((n, 1), int)
    _, configs = np.unique(stacked, axis=0, return_inverse=True)
    configs = configs.ravel()
    noise_ss, noise_df = noise_sum_of_squares(noise)
    return SignalModel(
        additive,
        interactions,
        noise_ss,
        noise_df,
        variance_check(signal, configs, additive, noise_ss, noise_df),
        int(configs.max()) + 1,
    )
