"""Run histories: every history source read into one :class:`RunSet`.

``load_runs(source, ...)`` reads W&B run files, the W&B API (``wandb://entity/project``), Lightning
CSVLogger folders and tidy CSV/Parquet tables; ``RunSet.to_tidy()`` and ``write_tidy`` go back to a
table. ``load_runs`` is imported on first use so that code needing only the RunSet does not load
wandb's protobufs or pyarrow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightning_app.runs.runset import (
    META_COLUMNS,
    RUN_STATES,
    MetricMatrix,
    Run,
    RunSet,
    RunWarning,
    SkippedRun,
)

if TYPE_CHECKING:
    from lightning_app.runs.sources import load_runs
    from lightning_app.runs.tidy import write_tidy

__all__ = [
    "META_COLUMNS",
    "RUN_STATES",
    "MetricMatrix",
    "Run",
    "RunSet",
    "RunWarning",
    "SkippedRun",
    "load_runs",
    "write_tidy",
]


def __getattr__(name: str) -> Any:
    if name == "load_runs":
        from lightning_app.runs.sources import load_runs

        return load_runs
    if name == "write_tidy":
        from lightning_app.runs.tidy import write_tidy

        return write_tidy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
