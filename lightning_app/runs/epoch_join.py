"""Join logged rows into one row per epoch.

Lightning logs the metrics of one epoch in several rows (``train/loss`` when training ends,
``val/acc`` after validation, ...), each with ``epoch`` and ``trainer/global_step``. Analyses want
one row per epoch, so rows are grouped by ``epoch`` and, within an epoch, the last value logged for
a metric wins (an epoch-end value is logged after the step values of that epoch).

A row with no ``epoch`` but a global step (a metric logged with an explicit ``step``) is placed in
the epoch of the row logged at that same step, else of the next row that carries an epoch (an
epoch's rows end at its last step), else of the last one before it. Rows that cannot be placed are
counted, not guessed.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

EPOCH_KEY = "epoch"
STEP_KEYS = ("trainer/global_step", "step")


@dataclass(frozen=True)
class JoinedHistory:
    """Per-epoch history of one run, and how many logged rows could not be used."""

    frame: pd.DataFrame
    """Index ``epoch`` (int, ascending), one float column per metric."""
    unplaced_rows: int = 0
    """Rows with metrics but neither a usable epoch nor a step that maps to one."""
    bad_epoch_rows: int = 0
    """Rows whose epoch is not a whole number (NaN, 2.5, ...)."""


def is_bookkeeping(key: str, epoch_key: str = EPOCH_KEY) -> bool:
    """Keys that place rows or are W&B's own (``_step``, ``_runtime``) rather than metrics."""
    return key == epoch_key or key in STEP_KEYS or key.startswith("_")


def join_epochs(
    rows: Iterable[Mapping[str, float]],
    *,
    epoch_key: str = EPOCH_KEY,
    step_keys: tuple[str, ...] = STEP_KEYS,
) -> JoinedHistory:
    """One row per epoch from logged rows (dicts of float values), in logging order."""
    placed: list[tuple[int | None, float | None, Mapping[str, float]]] = []
    step_to_epoch: dict[float, int] = {}
    bad_epoch = 0
    for row in rows:
        step = _first_present(row, step_keys)
        raw_epoch = row.get(epoch_key)
        epoch: int | None = None
        if raw_epoch is not None:
            if math.isfinite(raw_epoch) and float(raw_epoch).is_integer():
                epoch = int(raw_epoch)
                if step is not None:
                    step_to_epoch[step] = epoch
            else:
                bad_epoch += 1
                continue
        placed.append((epoch, step, row))

    known_steps = sorted(step_to_epoch)
    table: dict[int, dict[str, float]] = {}
    unplaced = 0
    for epoch, step, row in placed:
        if epoch is None:
            epoch = _epoch_for_step(step, step_to_epoch, known_steps)
        metrics = {
            k: v for k, v in row.items() if k != epoch_key and k not in step_keys and k[:1] != "_"
        }
        if epoch is None:
            unplaced += bool(metrics)
            continue
        table.setdefault(epoch, {}).update(metrics)

    epochs = sorted(table)
    names: dict[str, None] = {}
    for epoch in epochs:
        names.update(dict.fromkeys(table[epoch]))
    columns = {m: [table[e].get(m, math.nan) for e in epochs] for m in names}
    frame = pd.DataFrame(
        {m: np.asarray(v, dtype=float) for m, v in columns.items()},
        index=pd.Index(np.asarray(epochs, dtype=np.int64), name="epoch"),
    )
    return JoinedHistory(frame, unplaced, bad_epoch)


def join_epochs_frame(
    frame: pd.DataFrame,
    *,
    epoch_key: str = EPOCH_KEY,
    step_keys: tuple[str, ...] = STEP_KEYS,
) -> JoinedHistory:
    """:func:`join_epochs` for a wide table of rows (NaN cells mean "not logged in this row")."""
    metric_cols = [c for c in frame.columns if not is_bookkeeping(str(c), epoch_key)]
    keep = [c for c in (epoch_key, *step_keys) if c in frame.columns] + metric_cols
    sub = frame[keep]
    rows = (
        {k: float(v) for k, v in rec.items() if not _is_nan(v)} for rec in sub.to_dict("records")
    )
    return join_epochs(rows, epoch_key=epoch_key, step_keys=step_keys)


def _first_present(row: Mapping[str, float], keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = row.get(key)
        if value is not None and math.isfinite(value):
            return value
    return None


def _epoch_for_step(
    step: float | None, step_to_epoch: dict[float, int], known_steps: list[float]
) -> int | None:
    if step is None or not known_steps:
        return None
    exact = step_to_epoch.get(step)
    if exact is not None:
        return exact
    i = bisect.bisect_left(known_steps, step)
    if i < len(known_steps):
        return step_to_epoch[known_steps[i]]
    return step_to_epoch[known_steps[-1]]


def _is_nan(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
