"""Which config keys are the signal sweep's parameters, and how they split the signal runs.

By default a parameter is a config key that every signal run has, that takes at least two values,
and whose every value is shared by at least two runs. Keys that differ for every run (paths, run
names, ids) fail the last rule; keys that split the runs exactly like another key (a directory
named after the hidden size) are reported as aliases of it instead of counted twice. A key whose
values repeat except for some lone runs is named in the notes, not dropped without a word. Seed
keys (``seed_everything``, ``model.init_seed``, ``data.shuffle_seed``, any key whose last part
names a seed) are never parameters: runs that differ only in their seed are replicates of one
configuration, and their spread is seed noise measured there.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lightning_app.errors import UserError


@dataclass(frozen=True)
class Parameter:
    """A config key of the signal runs with the group (value index) of every signal run."""

    name: str
    values: tuple[Any, ...]
    """Distinct values, sorted (numbers numerically)."""
    codes: np.ndarray
    """Per signal run, the index of its value in ``values``."""

    @property
    def k(self) -> int:
        return len(self.values)

    @property
    def sizes(self) -> np.ndarray:
        return np.bincount(self.codes, minlength=self.k)

    @property
    def labels(self) -> list[str]:
        return [value_label(v) for v in self.values]


def value_label(value: Any) -> str:
    """A config value as text; whole floats lose ``.0`` (64.0 comes back from NaN-able columns)."""
    if (
        isinstance(value, float | np.floating)
        and math.isfinite(value)
        and float(value).is_integer()
    ):
        return str(int(value))
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


def is_seed_key(key: str) -> bool:
    """True for a key that sets a random seed: its last dotted part contains ``seed``."""
    return "seed" in key.rsplit(".", 1)[-1].lower()


def detect_parameters(config: pd.DataFrame) -> tuple[list[Parameter], list[str]]:
    """Parameters of the signal runs' ``config`` frame, and notes on keys set aside."""
    candidates: list[Parameter] = []
    seeds: list[str] = []
    single: list[str] = []
    for key in config.columns:
        column = config[key]
        if column.map(_is_missing).any():
            continue
        if is_seed_key(str(key)):
            if column.map(_hashable).nunique() > 1:
                seeds.append(str(key))
            continue
        param = _as_parameter(str(key), column)
        if param.k >= 2 and param.sizes.min() >= 2:
            candidates.append(param)
        elif param.k >= 2 and param.sizes.max() >= 2:
            single.append(single_run_note(param))
    params, notes = _drop_aliases(candidates)
    notes.extend(single)
    if seeds:
        notes.append(
            f"{', '.join(seeds)} vary across the signal runs: seeds are replicates, not "
            f"parameters, so runs that differ only in them are repeats of one configuration."
        )
    return params, notes


def single_run_note(param: Parameter) -> str:
    """Why a key whose values repeat, but not all of them, is not analysed by default.

    Such a key looks like a parameter with a lone run somewhere (a crashed or extra run); dropping
    it without a word would hide an effect the user swept for.
    """
    lone = [label for label, size in zip(param.labels, param.sizes, strict=True) if size == 1]
    which = (
        f"value {lone[0]} has 1 run"
        if len(lone) == 1
        else f"values {', '.join(lone)} have 1 run each"
    )
    return (
        f"{param.name}: not analysed, {which}; name it with --params to analyse it "
        f"(a value needs 2 runs to be detected as a parameter)."
    )


def explicit_parameters(config: pd.DataFrame, names: Sequence[str]) -> list[Parameter]:
    """The named parameters, or a :class:`UserError` saying why one cannot be analysed."""
    params = []
    for name in names:
        if is_seed_key(name):
            raise UserError(
                f"--params: {name!r} is a seed; seeds are replicates, not parameters (the noise "
                f"runs measure what changing the seed does)"
            )
        if name not in config.columns:
            close = difflib.get_close_matches(name, [str(c) for c in config.columns], n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UserError(f"--params: no signal run has config key {name!r}{hint}")
        column = config[name]
        missing = int(column.map(_is_missing).sum())
        if missing:
            raise UserError(
                f"--params: {missing} of {len(column)} signal runs have no value for {name!r}"
            )
        param = _as_parameter(name, column)
        if param.k < 2:
            raise UserError(
                f"--params: {name!r} has the single value {param.labels[0]} across all "
                f"{len(column)} signal runs, so there is nothing to compare"
            )
        params.append(param)
    return params


def balance_notes(params: Sequence[Parameter]) -> list[str]:
    """Notes for parameter pairs that are not crossed as in a full grid.

    In a full grid every value of one parameter meets every value of another equally often, so
    the other's effect cancels out of the group means; otherwise it leaks into them.
    """
    notes = []
    for i, a in enumerate(params):
        for b in params[i + 1 :]:
            counts = np.zeros((a.k, b.k))
            np.add.at(counts, (a.codes, b.codes), 1)
            expected = np.outer(counts.sum(1), counts.sum(0)) / counts.sum()
            if not np.allclose(counts, expected):
                notes.append(
                    f"The signal runs are not a balanced grid over {a.name} and {b.name}: the "
                    f"raw group means of one mix in part of the effect of the other (the F tests "
                    f"and adjusted_effect are adjusted for it)."
                )
    return notes


def _as_parameter(name: str, column: pd.Series) -> Parameter:
    keys = column.map(_hashable)
    distinct = list(dict.fromkeys(keys))
    distinct.sort(key=_sort_key)
    index = {v: i for i, v in enumerate(distinct)}
    codes = np.fromiter((index[v] for v in keys), dtype=np.intp, count=len(keys))
    return Parameter(name, tuple(_plain(v) for v in distinct), codes)


def _drop_aliases(candidates: list[Parameter]) -> tuple[list[Parameter], list[str]]:
    by_partition: dict[bytes, list[Parameter]] = {}
    for param in candidates:
        # Renumber codes by first appearance so equal partitions compare equal.
        _, first = np.unique(param.codes, return_index=True)
        order = np.argsort(np.argsort(first))
        by_partition.setdefault(order[param.codes].tobytes(), []).append(param)
    kept, notes = [], []
    for group in by_partition.values():
        group.sort(key=lambda p: (not _numeric(p.values), p.name.count("."), p.name))
        kept.append(group[0])
        if len(group) > 1:
            others = ", ".join(p.name for p in group[1:])
            notes.append(
                f"{others} split the signal runs exactly like {group[0].name}; kept only it."
            )
    kept.sort(key=lambda p: p.name)
    return kept, notes


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _hashable(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list | tuple | dict):
        return "json:" + json.dumps(value, sort_keys=True, default=str)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("json:"):
        return json.loads(value[5:])
    return value


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (0, value)
    return (2, str(value))
