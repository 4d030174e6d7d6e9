"""The prepared data every analysis shares: aligned noise and signal arrays, parameters, nulls.

:func:`build_context` turns a RunSet and the user's selection into an :class:`AnalysisContext`, or
raises :class:`~lightning_app.errors.UserError` naming what is wrong with the input. Cases it
repairs (runs without the metric, runs with fewer epochs, too few noise runs for a grouping) it
repairs openly: the runs it leaves out are listed, and every repair becomes a note in the report.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from lightning_app.analysis import factorial, stats
from lightning_app.analysis.decision import DecisionRule
from lightning_app.analysis.formatting import format_value, metric_format
from lightning_app.analysis.left_out import not_numbers_note, skipped_note
from lightning_app.analysis.parameters import (
    Parameter,
    balance_notes,
    detect_parameters,
    explicit_parameters,
)
from lightning_app.errors import UserError
from lightning_app.runs.runset import MetricMatrix, RunSet, SkippedRun

MIN_NOISE_RUNS = 3
"""Fewest noise runs with which a variance (2 df) and its check mean anything."""


@dataclass(frozen=True)
class Selection:
    """What the user asked to analyse (the ``analyze`` command's data options)."""

    noise: str
    signal: str
    metric: str = "test/acc"
    epoch: int | Literal["final"] = "final"
    params: Sequence[str] | None = None
    permutations: int = 10_000
    seed: int = 0


@dataclass
class AnalysisContext:
    """Noise and signal runs as aligned arrays, plus what every analysis needs to agree on."""

    metric: str
    noise_group: str
    signal_group: str
    epochs: np.ndarray
    """Epochs every selected run has a finite value for, ascending."""
    epoch: int
    """The analysed epoch (``--epoch``; the last of ``epochs`` by default)."""
    noise_ids: list[str]
    signal_ids: list[str]
    noise: np.ndarray
    """Noise runs x epochs."""
    signal: np.ndarray
    """Signal runs x epochs."""
    params: dict[str, Parameter]
    permutations: int = 10_000
    seed: int = 0
    notes: list[str] = field(default_factory=list)
    excluded: list[SkippedRun] = field(default_factory=list)
    """Runs of the two groups left out, with the reason."""
    rule: DecisionRule = field(default_factory=DecisionRule)
    """The decision rule (alpha, correction, error term, signal ratio) set by signal-effects'
    options; an analysis that plans for or reports on the verdicts reads it here."""
    _nulls: dict[str, stats.NoiseNull] = field(default_factory=dict, repr=False)
    _model: factorial.SignalModel | None = field(default=None, repr=False)

    @property
    def epoch_index(self) -> int:
        return int(np.searchsorted(self.epochs, self.epoch))

    @property
    def noise_at_epoch(self) -> np.ndarray:
        return self.noise[:, self.epoch_index]

    @property
    def signal_at_epoch(self) -> np.ndarray:
        return self.signal[:, self.epoch_index]

    @property
    def metric_format(self) -> str:
        """Display format of the metric's values (percent for accuracies)."""
        return metric_format(self.metric, np.concatenate([self.noise.ravel(), self.signal.ravel()]))

    def fmt(self, value: float) -> str:
        """A metric value (or effect) as findings show it, e.g. ``0.13%``."""
        return format_value(value, self.metric_format)

    def rng(self, purpose: str) -> np.random.Generator:
        """A generator seeded by ``--seed`` and ``purpose``: the same numbers whatever else runs."""
        return np.random.default_rng([self.seed, zlib.crc32(purpose.encode())])

    def noise_null(self, param: str) -> stats.NoiseNull:
        """The noise effect distribution for ``param``'s group sizes, computed once and shared.

        noise-baseline reports it and signal-effects tests against it; caching keeps the two
        reports on the very same random splits.
        """
        if param not in self._nulls:
            sizes = tuple(int(s) for s in self.params[param].sizes)
            self._nulls[param] = stats.noise_null(
                self.noise_at_epoch, sizes, self.permutations, self.rng(f"noise-null:{param}")
            )
        return self._nulls[param]

    @property
    def model(self) -> factorial.SignalModel:
        """The signal runs' additive model over all parameters at the analysed epoch (cached).

        signal-effects tests with it and runs-needed plans for the same test, so both read one fit.
        """
        if self._model is None:
            self._model = factorial.signal_model(
                self.signal_at_epoch,
                {name: p.codes for name, p in self.params.items()},
                self.noise_at_epoch,
            )
        return self._model


def build_context(runs: RunSet, selection: Selection) -> tuple[AnalysisContext, RunSet]:
    """Check and align the selected runs; returns the context and the RunSet of the runs used.

    The steps run in a fixed order (the selection, the runs with values, the common epochs, the
    parameters, the noise), each raising the first mistake it finds or adding notes.
    """
    _check_selection(runs, selection)
    noise_runs = runs.select(group=selection.noise)
    signal_runs = runs.select(group=selection.signal)
    values = _values(runs, noise_runs, signal_runs, selection)
    epoch = _choose_epoch(selection.epoch, values.epochs, values.all_epochs)
    notes = values.notes
    params = _parameters(signal_runs.config.loc[values.signal_ids], selection, notes)
    notes.extend(_noise_notes(params, noise_runs.config.loc[values.noise_ids], values.noise_ids))
    _refuse_constant_noise(values, epoch, selection)
    if len(values.noise_ids) < 10:
        notes.append(
            f"Only {len(values.noise_ids)} noise runs: the noise baseline and the run counts "
            f"derived from it are rough (the study used 210)."
        )
    context = AnalysisContext(
        metric=selection.metric,
        noise_group=selection.noise,
        signal_group=selection.signal,
        epochs=values.epochs,
        epoch=epoch,
        noise_ids=values.noise_ids,
        signal_ids=values.signal_ids,
        noise=values.noise,
        signal=values.signal,
        params={p.name: p for p in params},
        permutations=selection.permutations,
        seed=selection.seed,
        notes=notes,
        excluded=values.excluded,
    )
    return context, runs.subset(values.noise_ids + values.signal_ids)


def _check_selection(runs: RunSet, selection: Selection) -> None:
    """The options name two different groups that exist and a metric some run logged."""
    if selection.permutations < 1:
        raise UserError("--permutations must be at least 1")
    if selection.seed < 0:
        raise UserError(f"--seed must be 0 or more (a numpy seed), not {selection.seed}")
    groups = runs.groups()
    for flag, group in (("--noise", selection.noise), ("--signal", selection.signal)):
        if group not in groups:
            available = ", ".join(repr(g) for g in groups) or "none"
            raise UserError(f"{flag}: no runs in group {group!r}; groups found: {available}")
    if selection.noise == selection.signal:
        raise UserError("--noise and --signal name the same group; they must be different runs")
    if selection.metric not in runs.metrics():
        text = not_numbers_note(runs, selection.metric, list(runs.ids))
        if text:
            raise UserError(f"--metric {selection.metric}: {text}")
        available = ", ".join(repr(m) for m in runs.metrics()) or "none"
        raise UserError(f"--metric: no run logged {selection.metric!r}; metrics found: {available}")


@dataclass(frozen=True)
class _Values:
    """The kept runs' metric on the epochs they all have, and what was left out on the way."""

    noise_ids: list[str]
    signal_ids: list[str]
    epochs: np.ndarray
    """Epochs every kept run has a finite value for."""
    all_epochs: np.ndarray
    """Epochs any selected run logged."""
    noise: np.ndarray
    signal: np.ndarray
    excluded: list[SkippedRun]
    notes: list[str]


def _values(runs: RunSet, noise_runs: RunSet, signal_runs: RunSet, selection: Selection) -> _Values:
    """Leave out runs without a finite value, check enough remain, align on common epochs."""
    metric = selection.metric
    noise_m = noise_runs.metric_matrix(metric)
    signal_m = signal_runs.metric_matrix(metric)
    excluded: list[SkippedRun] = []
    notes: list[str] = []
    # Runs without a single finite value cannot contribute anywhere.
    kept = []
    for matrix, kind in ((noise_m, "noise"), (signal_m, "signal")):
        has_any = np.isfinite(matrix.values).any(axis=1)
        for run_id in matrix.run_ids[~has_any]:
            excluded.append(SkippedRun(str(run_id), f"no finite {metric!r} value ({kind} run)"))
        kept.append(has_any)
    if excluded:
        notes.append(
            f"{len(excluded)} run(s) have no finite {metric!r} value and are left out "
            f"(listed under skipped runs)."
        )
    noise_ids = [str(i) for i in noise_m.run_ids[kept[0]]]
    signal_ids = [str(i) for i in signal_m.run_ids[kept[1]]]
    _check_counts(runs, noise_ids, signal_ids, selection, excluded, noise_m, signal_m)

    # Align both groups on the epochs every kept run has a finite value for.
    all_epochs = np.union1d(noise_m.epochs, signal_m.epochs)
    noise_full = _on_epochs(noise_m, kept[0], all_epochs)
    signal_full = _on_epochs(signal_m, kept[1], all_epochs)
    finite = np.vstack([np.isfinite(noise_full), np.isfinite(signal_full)])
    common = finite.all(axis=0)
    if not common.any():
        text = not_numbers_note(runs, metric, noise_ids + signal_ids)
        if text:
            raise UserError(f"no epoch has a number for {metric!r} in every selected run: {text}")
        raise UserError(
            f"no epoch has a finite {metric!r} value in every selected run; the runs log "
            f"disjoint epochs or NaN (check the runs' histories)"
        )
    if not common.all():
        notes.append(_epoch_note(all_epochs, finite, noise_ids + signal_ids, metric))
    return _Values(
        noise_ids,
        signal_ids,
        all_epochs[common].astype(int),
        all_epochs,
        noise_full[:, common],
        signal_full[:, common],
        excluded,
        notes,
    )


def _check_counts(
    runs: RunSet,
    noise_ids: list[str],
    signal_ids: list[str],
    selection: Selection,
    excluded: Sequence[SkippedRun],
    noise_m: MetricMatrix,
    signal_m: MetricMatrix,
) -> None:
    """Enough noise runs for a variance, and two signal runs to compare; if not, the error names
    the runs of the group that were skipped or left out, and why."""
    metric = selection.metric
    noise_note = skipped_note(runs, selection.noise, excluded, [str(i) for i in noise_m.run_ids])
    signal_note = skipped_note(runs, selection.signal, excluded, [str(i) for i in signal_m.run_ids])
    text = not_numbers_note(runs, metric, [str(i) for i in (*noise_m.run_ids, *signal_m.run_ids)])
    why = f" ({text})" if text else ""
    if not noise_ids:
        raise UserError(
            f"no noise runs: none of the runs in group {selection.noise!r} logged {metric!r}"
            f"{why}{noise_note}"
        )
    if len(noise_ids) < MIN_NOISE_RUNS:
        raise UserError(
            f"only {len(noise_ids)} noise run(s) in group {selection.noise!r} have {metric!r}: "
            f"a noise baseline needs at least {MIN_NOISE_RUNS} runs of the same config with "
            f"different seeds (the study used 210){why}{noise_note}"
        )
    if len(signal_ids) < 2:
        raise UserError(
            f"group {selection.signal!r} has {len(signal_ids)} run(s) with {metric!r}; "
            f"comparing hyperparameter values needs at least two{why}{signal_note}"
        )


def _parameters(
    signal_config: pd.DataFrame, selection: Selection, notes: list[str]
) -> list[Parameter]:
    """The parameters named by ``--params`` or detected, refused when confounded; adds notes."""
    if selection.params:
        params = explicit_parameters(signal_config, selection.params)
    else:
        params, alias_notes = detect_parameters(signal_config)
        notes.extend(alias_notes)
        if not params:
            raise UserError(
                f"no config key varies across the {len(signal_config)} signal runs with at least "
                f"two runs per value; name the parameters with --params "
                f"(e.g. --params model.hidden_size)" + "".join(f". {n}" for n in alias_notes)
            )
    notes.extend(balance_notes(params))
    _refuse_confounded(params)
    return params


def _noise_notes(
    params: Sequence[Parameter], noise_config: pd.DataFrame, noise_ids: list[str]
) -> list[str]:
    """Where the noise runs fall short of a parameter's groups, or vary the parameter."""
    notes = []
    for param in params:
        if int(param.sizes.sum()) > len(noise_ids):
            notes.append(
                f"{param.name}: its groups hold {int(param.sizes.sum())} signal runs but there are "
                f"only {len(noise_ids)} noise runs, so its noise effect draws noise runs with "
                f"replacement."
            )
    for param in params:
        if param.name in noise_config.columns:
            distinct = noise_config[param.name].map(str).nunique()
            if distinct > 1:
                notes.append(
                    f"The noise runs themselves take {distinct} values of {param.name}, so the "
                    f"noise baseline includes part of its effect."
                )
    return notes


def _refuse_constant_noise(values: _Values, epoch: int, selection: Selection) -> None:
    """Noise runs that all end the same measure no noise: the seed did not reach the result."""
    index = int(np.searchsorted(values.epochs, epoch))
    if np.ptp(values.noise[:, index]) == 0:
        raise UserError(
            f"all {len(values.noise_ids)} noise runs have the same {selection.metric!r} at epoch "
            f"{epoch} ({values.noise[0, index]:.6g}): the seed did not change the result, so "
            f"there is no noise to measure (check that the seed really varies across group "
            f"{selection.noise!r})"
        )


def _refuse_confounded(params: Sequence[Parameter]) -> None:
    """A parameter the design cannot separate from others gets no number, only this error."""
    n = len(params[0].codes)
    groups = factorial.confounded(factorial.main_terms({p.name: p.codes for p in params}), n)
    if groups:
        which = "; ".join(" and ".join(g) for g in groups)
        raise UserError(
            f"confounded parameters: {which} - in the signal runs the values of one determine "
            f"(part of) the other's, so their effects cannot be told apart; analyse them "
            f"separately with --params, or run the missing combinations"
        )


def _on_epochs(matrix: MetricMatrix, keep: np.ndarray, epochs: np.ndarray) -> np.ndarray:
    """The kept rows of ``matrix`` on ``epochs`` (a superset of its own), NaN where absent."""
    values = matrix.values[keep]
    out = np.full((values.shape[0], len(epochs)), np.nan)
    out[:, np.searchsorted(epochs, matrix.epochs)] = values
    return out


def _choose_epoch(wanted: int | str, epochs: np.ndarray, all_epochs: np.ndarray) -> int:
    if wanted == "final":
        return int(epochs[-1])
    try:
        epoch = int(wanted)
    except (TypeError, ValueError):
        raise UserError(f"--epoch must be 'final' or an epoch number, not {wanted!r}") from None
    if epoch not in epochs:
        if epoch in all_epochs:
            raise UserError(
                f"--epoch {epoch}: some selected runs have no finite value at that epoch; "
                f"epochs all runs have: {_ranges(epochs)}"
            )
        raise UserError(
            f"--epoch {epoch}: no run logged that epoch; epochs logged: {_ranges(epochs)}"
        )
    return epoch


def _epoch_note(epochs: np.ndarray, finite: np.ndarray, ids: Sequence[str], metric: str) -> str:
    common = finite.all(axis=0)
    short = np.flatnonzero(~finite[:, ~common].all(axis=1))
    examples = []
    for row in short[:3]:
        have = epochs[finite[row]]
        examples.append(f"{ids[row]} has {_ranges(have)}")
    more = f" and {len(short) - 3} more" if len(short) > 3 else ""
    return (
        f"The runs do not all have {metric!r} at the same epochs: using the {int(common.sum())} "
        f"epochs all {len(ids)} runs have ({_ranges(epochs[common])}) and dropping "
        f"{_ranges(epochs[~common])}; {len(short)} run(s) are short or have NaN "
        f"({'; '.join(examples)}{more})."
    )


def _ranges(values: np.ndarray) -> str:
    """``[0,1,2,5,7,8]`` as ``0-2, 5, 7-8``."""
    values = np.asarray(values, dtype=int)
    if values.size == 0:
        return "none"
    parts = []
    start = prev = int(values[0])
    for v in (int(x) for x in values[1:]):
        if v != prev + 1:
            parts.append(f"{start}-{prev}" if prev > start else f"{start}")
            start = v
        prev = v
    parts.append(f"{start}-{prev}" if prev > start else f"{start}")
    return ", ".join(parts)
