"""RunSet: what every history source returns and every analysis takes.

A RunSet is three pandas frames sharing the run id:

- ``meta``: one row per run (index ``id``), columns ``name, group, sweep_id, tags, state``;
  ``tags`` holds a tuple of strings, ``state`` one of :data:`RUN_STATES`;
- ``config``: one row per run (index ``id``), one column per flat dotted config key
  (``model.hidden_size``), missing keys as NaN/None;
- ``history``: one row per (run, epoch) (MultiIndex ``id, epoch``), one float column per metric,
  NaN where a run did not log that metric at that epoch.

Analyses get arrays through :meth:`RunSet.metric_matrix`, one vectorised pivot, not a loop over runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

RUN_STATES = ("finished", "crashed", "running", "failed")
META_COLUMNS = ("name", "group", "sweep_id", "tags", "state")


@dataclass(frozen=True)
class SkippedRun:
    """A run (or file) that could not be read, with the reason, listed in reports."""

    id: str
    reason: str


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
    ) -> None:
        self.meta = meta
        self.config = config.reindex(meta.index)
        self.history = history
        self.skipped: list[SkippedRun] = list(skipped)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_runs(cls, runs: Iterable[Run], skipped: Sequence[SkippedRun] = ()) -> RunSet:
        """Assemble runs read one by one; later duplicates of an id are skipped and listed."""
        kept: list[Run] = []
        seen: set[str] = set()
        skipped = list(skipped)
        for run in runs:
            if run.id in seen:
                skipped.append(SkippedRun(run.id, "duplicate run id (already read from another file)"))
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
        frames = [r.history for r in kept if len(r.history)]
        keys = [r.id for r in kept if len(r.history)]
        if frames:
            history = pd.concat(frames, keys=keys, names=["id", "epoch"], sort=False)
            history = history.astype(float)
        else:
            history = pd.DataFrame(
                index=pd.MultiIndex.from_arrays([[], []], names=["id", "epoch"]), dtype=float
            )
        return cls(meta, config, history, skipped)

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
        return RunSet(self.meta.loc[index], self.config.loc[index], history, self.skipped)

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


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))
