"""RunSet: what every history source returns and every analysis takes.

A RunSet is three pandas frames sharing the run id:

- ``meta``: one row per run (index ``id``), columns ``name, group, sweep_id, tags, state``;
  ``tags`` holds a tuple of strings, ``state`` one of :data:`RUN_STATES`;
- ``config``: one row per run (index ``id``), one column per flat dotted config key
  (``model.hidden_size``), missing keys as NaN/None;
- ``history``: one row per (run, epoch) (MultiIndex ``id, epoch``), one float column per metric,
  NaN where a run did not log that metric at that epoch.

Analyses get arrays through :meth:`RunSet.metric_matrix`, one vectorised pivot, not a loop over
runs. Runs a source could not read are in ``skipped`` (with the reason); things a reader noticed in
runs it kept (a truncated file, NaN values, rows with no epoch) are in ``warnings``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lightning_app.errors import UserError

RUN_STATES = ("finished", "crashed", "running", "failed")
META_COLUMNS = ("name", "group", "sweep_id", "tags", "state")
# The tidy form's leading columns and config prefix (files: lightning_app.runs.tidy).
CONFIG_PREFIX = "config."
ID, EPOCH = "id", "epoch"
TIDY_LEADING = (ID, *META_COLUMNS, EPOCH)


EVALUATION_JOB_TYPES = frozenset({"validate", "test", "predict"})
"""W&B job types of Lightning's evaluation commands: their runs are never training histories."""


@dataclass(frozen=True)
class SkippedRun:
    """A run (or file) that could not be read, with the reason, listed in reports."""

    id: str
    reason: str
    group: str | None = None
    """The run's group when the source still said it (``None``: unknown), so that a "too few
    runs" error can name the runs of that group that were skipped."""


@dataclass(frozen=True)
class RunWarning:
    """Something a source noticed in a run it kept (``id`` empty: about the source as a whole)."""

    id: str
    message: str
    not_numbers: str | None = None
    """The metric whose values (some or all) were not numbers, when that is the warning."""


@dataclass
class Run:
    """One logged run as a source reads it; :meth:`RunSet.from_runs` assembles many."""

    id: str
    name: str = ""
    group: str | None = None
    sweep_id: str | None = None
    tags: tuple[str, ...] = ()
    state: str = "finished"
    config: dict[str, Any] = field(default_factory=dict)
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Index ``epoch`` (int), one float column per metric."""


@dataclass(frozen=True)
class MetricMatrix:
    """A metric as a runs x epochs array (NaN where missing), with its row and column labels."""

    run_ids: np.ndarray
    epochs: np.ndarray
    values: np.ndarray


class RunSet:
    """Runs with their flat config and per-epoch history; see the module docstring."""

    def __init__(
        self,
        meta: pd.DataFrame,
        config: pd.DataFrame,
        history: pd.DataFrame,
        skipped: Sequence[SkippedRun] = (),
        warnings: Sequence[RunWarning] = (),
    ) -> None:
        self.meta = meta
        self.config = config.reindex(meta.index)
        self.history = history
        self.skipped: list[SkippedRun] = list(skipped)
        self.warnings: list[RunWarning] = list(warnings)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_runs(
        cls,
        runs: Iterable[Run],
        skipped: Sequence[SkippedRun] = (),
        warnings: Sequence[RunWarning] = (),
    ) -> RunSet:
        """Assemble runs read one by one; later duplicates of an id are skipped and listed."""
        kept: list[Run] = []
        seen: set[str] = set()
        skipped = list(skipped)
        for run in runs:
            if run.id in seen:
                skipped.append(
                    SkippedRun(run.id, "duplicate run id (already read from another file)")
                )
                continue
            seen.add(run.id)
            kept.append(run)
        ids = pd.Index([r.id for r in kept], name="id", dtype=object)
        meta = pd.DataFrame(
            {
                "name": [r.name for r in kept],
                "group": [r.group for r in kept],
                "sweep_id": [r.sweep_id for r in kept],
                "tags": [tuple(r.tags) for r in kept],
                "state": [r.state for r in kept],
            },
            index=ids,
            columns=list(META_COLUMNS),
        )
        config = pd.DataFrame.from_records([r.config for r in kept], index=ids)
        return cls(meta, config, _stack_histories(kept), skipped, warnings)

    @classmethod
    def empty(cls) -> RunSet:
        """A RunSet with no runs."""
        return cls.from_runs([])

    # -- basic access -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.meta)

    def __iter__(self) -> Iterator[Run]:
        for run_id in self.meta.index:
            yield self.run(run_id)

    def __repr__(self) -> str:
        return f"RunSet({len(self)} runs, groups={self.groups()}, metrics={self.metrics()})"

    @property
    def ids(self) -> list[str]:
        return list(self.meta.index)

    def run(self, run_id: str) -> Run:
        """One run as a :class:`Run` (copies that run's rows; use for inspection, not in loops)."""
        row = self.meta.loc[run_id]
        config = {k: v for k, v in self.config.loc[run_id].items() if not _is_missing(v)}
        if run_id in self.history.index.get_level_values("id"):
            hist = self.history.xs(run_id, level="id").dropna(axis=1, how="all")
        else:
            hist = pd.DataFrame()
        return Run(
            id=run_id,
            name=row["name"],
            group=row["group"],
            sweep_id=row["sweep_id"],
            tags=tuple(row["tags"]),
            state=row["state"],
            config=config,
            history=hist,
        )

    def groups(self) -> list[str]:
        return sorted(g for g in self.meta["group"].dropna().unique())

    def metrics(self) -> list[str]:
        return list(self.history.columns)

    # -- selection ----------------------------------------------------------------------------
    def select(
        self,
        *,
        group: str | Sequence[str] | None = None,
        sweep: str | Sequence[str] | None = None,
        tag: str | None = None,
        state: str | Sequence[str] | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> RunSet:
        """Runs matching every given criterion (a sequence means any of its values)."""
        mask = pd.Series(True, index=self.meta.index)
        for column, wanted in (("group", group), ("sweep_id", sweep), ("state", state)):
            if wanted is not None:
                values = [wanted] if isinstance(wanted, str) else list(wanted)
                mask &= self.meta[column].isin(values)
        if tag is not None:
            mask &= self.meta["tags"].map(lambda tags: tag in tags)
        for key, value in (config or {}).items():
            if key not in self.config.columns:
                mask &= False
            else:
                mask &= self.config[key] == value
        return self.subset(self.meta.index[mask.to_numpy()])

    def subset(self, ids: Iterable[str]) -> RunSet:
        """The runs with these ids, in this order; skipped runs are kept."""
        index = pd.Index(list(ids), name="id", dtype=object)
        history = self.history[self.history.index.get_level_values("id").isin(index)]
        kept = set(index)
        warnings = [w for w in self.warnings if not w.id or w.id in kept]
        return RunSet(self.meta.loc[index], self.config.loc[index], history, self.skipped, warnings)

    # -- tidy form ------------------------------------------------------------------------------
    def to_tidy(self) -> pd.DataFrame:
        """One row per run x epoch: ``id``, the meta columns, ``epoch``, the metrics, then the
        config as ``config.<dotted key>`` columns (prefixed so they cannot clash with metrics).

        Runs without history have no rows. See :mod:`lightning_app.runs.tidy` for files.
        """
        return tidy_frame(self)

    # -- arrays for analyses --------------------------------------------------------------------
    def metric_matrix(self, metric: str) -> MetricMatrix:
        """``metric`` as a runs x epochs array in run order; NaN where a run has no value."""
        epochs = np.sort(self.history.index.get_level_values("epoch").unique().to_numpy())
        if metric not in self.history.columns:
            values = np.full((len(self), len(epochs)), np.nan)
        else:
            wide = self.history[metric].unstack("epoch")
            values = wide.reindex(index=self.meta.index, columns=epochs).to_numpy(dtype=float)
        return MetricMatrix(np.asarray(self.meta.index, dtype=object), epochs, values)

    def config_values(self, key: str) -> pd.Series:
        """The values of one dotted config key, one per run (NaN/None where absent)."""
        if key not in self.config.columns:
            return pd.Series([None] * len(self), index=self.meta.index, name=key, dtype=object)
        return self.config[key]


def _stack_histories(runs: Sequence[Run]) -> pd.DataFrame:
    """The runs' histories as one (id, epoch) x metric float frame, filled in one array.

    Equivalent to ``pd.concat`` with keys, without its per-frame alignment cost (1,000 runs).
    """
    with_rows = [r for r in runs if len(r.history)]
    columns: dict[str, int] = {}
    for run in with_rows:
        for name in run.history.columns:
            columns.setdefault(name, len(columns))
    lengths = np.array([len(r.history) for r in with_rows], dtype=np.int64)
    values = np.full((int(lengths.sum()), len(columns)), np.nan)
    start = 0
    for run, n in zip(with_rows, lengths, strict=True):
        cols = [columns[c] for c in run.history.columns]
        values[start : start + n, cols] = run.history.to_numpy(dtype=float)
        start += n
    ids = np.repeat(np.array([r.id for r in with_rows], dtype=object), lengths)
    epochs = (
        np.concatenate([r.history.index.to_numpy(dtype=np.int64) for r in with_rows])
        if with_rows
        else np.array([], dtype=np.int64)
    )
    index = pd.MultiIndex.from_arrays([ids, epochs], names=["id", "epoch"])
    return pd.DataFrame(values, index=index, columns=pd.Index(list(columns), dtype=object))


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


# -- the tidy form (files: lightning_app.runs.tidy) ----------------------------------------------
def tidy_frame(runset: RunSet) -> pd.DataFrame:
    """The tidy form of :meth:`RunSet.to_tidy` (columns: :mod:`lightning_app.runs.tidy`); config
    columns hold the values as read (Python objects)."""
    metrics = [str(m) for m in runset.history.columns]
    clashes = [m for m in metrics if m in TIDY_LEADING or m.startswith(CONFIG_PREFIX)]
    if clashes:
        raise UserError(
            f"metric name {clashes[0]!r} clashes with a tidy-table column; rename it to export"
        )
    history = runset.history
    ids = history.index.get_level_values(ID)
    pos = runset.meta.index.get_indexer(ids)
    columns: dict[str, Any] = {ID: np.asarray(ids, dtype=object)}
    for name in META_COLUMNS:
        values = runset.meta[name].to_numpy(dtype=object)[pos]
        columns[name] = _objects([None if _is_missing(v) else v for v in values])
    columns[EPOCH] = history.index.get_level_values(EPOCH).to_numpy(dtype=np.int64)
    for metric in metrics:
        columns[metric] = history[metric].to_numpy(dtype=float)
    for key in runset.config.columns:
        values = runset.config[key].to_numpy(dtype=object)[pos]
        cells = [None if _is_missing(v) else v for v in values]
        columns[CONFIG_PREFIX + str(key)] = _objects(cells)
    columns["tags"] = _objects([list(t) for t in columns["tags"]])
    return pd.DataFrame(columns)


def _objects(values: list[Any]) -> pd.Series:
    """An object column: keeps ``None``, ints beside ``None`` and lists as they are (pandas would
    otherwise turn them into NaN, floats and a string dtype)."""
    series = pd.Series(np.empty(len(values), dtype=object))
    series[:] = values if values else []
    return series
