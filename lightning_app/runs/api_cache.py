"""Local cache of runs read through the W&B API, so analysing the same ended runs again is free.

One JSON file per run under ``<cache_dir>/<entity>/<project>/<run id>.json`` holding the run as read
(meta, flat config, per-epoch history) and the listing fields it was read at (state, heartbeat,
history line count). A cached run is used only while the server's listing still shows those same
fields, so a resumed or edited run is fetched again. Live runs are never cached. Files are
written atomically (temp file + rename): a killed process leaves no half-written entry.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import platformdirs

from lightning_app.files import write_json_atomic
from lightning_app.runs.runset import Run

CACHE_VERSION = 1
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def default_cache_dir() -> Path:
    """``$LIGHTNING_APP_CACHE_DIR``, else the platform's user cache folder (``platformdirs``:
    ``$XDG_CACHE_HOME/lightning_app`` or ``~/.cache/lightning_app`` on Linux)."""
    explicit = os.environ.get("LIGHTNING_APP_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    return Path(platformdirs.user_cache_dir("lightning_app", appauthor=False))


class RunCache:
    """Finished runs of one W&B project, keyed by run id and validated by a listing fingerprint."""

    def __init__(self, root: Path, entity: str, project: str) -> None:
        self.dir = root / "wandb-runs" / _safe(entity) / _safe(project)

    def get(self, run_id: str, fingerprint: Mapping[str, Any]) -> Run | None:
        entry = self._load(self._path(run_id))
        if entry is None or entry.get("fingerprint") != dict(fingerprint):
            return None
        return _run_from_json(entry["run"])

    def put(self, run: Run, fingerprint: Mapping[str, Any]) -> None:
        entry = {
            "version": CACHE_VERSION,
            "fingerprint": dict(fingerprint),
            "run": _run_to_json(run),
        }
        path = self._path(run.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, entry, indent=None, default=_json_default)

    def runs(self) -> Iterator[Run]:
        """Every cached run of the project (for reading with no network at all)."""
        if not self.dir.is_dir():
            return
        for path in sorted(self.dir.glob("*.json")):
            entry = self._load(path)
            if entry is not None:
                yield _run_from_json(entry["run"])

    def _path(self, run_id: str) -> Path:
        return self.dir / f"{_safe(run_id)}.json"

    @staticmethod
    def _load(path: Path) -> dict[str, Any] | None:
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            return None  # absent or damaged: fetch again
        if not isinstance(entry, dict) or entry.get("version") != CACHE_VERSION:
            return None
        return entry


def _run_to_json(run: Run) -> dict[str, Any]:
    hist = run.history
    return {
        "id": run.id,
        "name": run.name,
        "group": run.group,
        "sweep_id": run.sweep_id,
        "tags": list(run.tags),
        "state": run.state,
        "config": run.config,
        "epochs": [int(e) for e in hist.index],
        "metrics": {str(c): hist[c].tolist() for c in hist.columns},
    }


def _run_from_json(data: Mapping[str, Any]) -> Run:
    history = pd.DataFrame(
        {m: np.asarray(v, dtype=float) for m, v in data["metrics"].items()},
        index=pd.Index(np.asarray(data["epochs"], dtype=np.int64), name="epoch"),
    )
    return Run(
        id=data["id"],
        name=data["name"],
        group=data["group"],
        sweep_id=data["sweep_id"],
        tags=tuple(data["tags"]),
        state=data["state"],
        config=dict(data["config"]),
        history=history,
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _safe(name: str) -> str:
    return _SAFE.sub("_", name) or "_"
