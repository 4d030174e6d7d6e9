"""``load_runs``: one way in from every history source to a :class:`RunSet`.

The source string picks the reader: ``wandb://entity/project`` (W&B API), a ``.csv``/``.parquet``
tidy table, a folder (or a single file) of W&B run files, or Lightning CSVLogger folders.
Problems with single runs never stop a read: the run is listed in ``RunSet.skipped`` with a
one-line reason. A source that yields nothing usable raises :class:`UserError` naming it.
Reading never writes to the source (the W&B API cache lives elsewhere).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lightning_app.errors import UserError
from lightning_app.runs import lightning_csv, tidy, wandb_offline
from lightning_app.runs.api_cache import default_cache_dir
from lightning_app.runs.epoch_join import EPOCH_KEY
from lightning_app.runs.filters import RunFilter, Wanted
from lightning_app.runs.read_progress import progress_bar
from lightning_app.runs.retry import RetryPolicy
from lightning_app.runs.runset import Run, RunSet, RunWarning, SkippedRun
from lightning_app.runs.wandb_api import SCHEME, read_api_runs

COMMON_OPTIONS = {"metrics", "epoch_key"}
SOURCE_OPTIONS = {
    "wandb-files": {"running_grace_s"},
    "wandb-api": {"api", "per_page", "cache", "cache_dir", "cache_only", "retry"},
    "lightning-csv": set(),
    "tidy": set(),
}
ALL_OPTIONS = COMMON_OPTIONS.union(*SOURCE_OPTIONS.values())


@dataclass
class _Collected:
    """What a reader found, before the common post-processing."""

    kind: str
    runs: list[Run] = field(default_factory=list)
    skipped: list[SkippedRun] = field(default_factory=list)
    warnings: list[RunWarning] = field(default_factory=list)
    found: int = 0
    """Runs (or run files) the source holds, before filters."""
    groups_seen: set[str] = field(default_factory=set)


def load_runs(
    source: str | os.PathLike[str],
    *,
    group: Wanted = None,
    sweep: Wanted = None,
    tags: Wanted = None,
    state: Wanted = None,
    progress: bool = True,
    **options: Any,
) -> RunSet:
    """Read the runs in ``source`` that match every given filter into a :class:`RunSet`.

    Args:
        source: a folder of W&B runs (``wandb/``, a sweep's output folder: searched recursively),
            one ``run-<id>.wandb`` file, ``wandb://entity/project``, a Lightning CSVLogger folder
            (``metrics.csv`` + ``config.yaml``/``hparams.yaml``), or a tidy ``.csv``/``.parquet``.
        group, sweep, tags, state: keep runs whose group / sweep id / any tag / state is one of
            the given value(s).
        progress: show a progress bar (only ever on an interactive stderr).
        **options: ``metrics`` (list: keep only these metrics; runs logging none of them are
            skipped), ``epoch_key`` (default ``"epoch"``); W&B files: ``running_grace_s``
            (a file without an exit record modified this recently is ``running``, else
            ``crashed``; default 300); W&B API: ``api`` (a ``wandb.Api``), ``per_page`` (runs per
            listing request, default 100), ``cache`` (default True), ``cache_dir``,
            ``cache_only`` (no network: read only what was cached), ``retry`` (a
            :class:`~lightning_app.runs.retry.RetryPolicy`).

    Raises:
        UserError: the source is missing, empty, holds no runs, or no run matches the filters.
    """
    unknown = set(options) - ALL_OPTIONS
    if unknown:
        raise TypeError(
            f"load_runs() got unknown option(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(ALL_OPTIONS))}"
        )
    flt = RunFilter.build(group=group, sweep=sweep, tags=tags, state=state)
    epoch_key = str(options.get("epoch_key", EPOCH_KEY))
    metrics = options.get("metrics")
    if isinstance(metrics, str):
        metrics = [metrics]
    text = os.fspath(source)

    if text.startswith(SCHEME):
        collected = _read_api(text, flt, progress, epoch_key, options)
    else:
        collected = _read_path(text, flt, progress, epoch_key, options)

    runs = [r for r in collected.runs if flt.run_ok(r)]
    if metrics is not None:
        runs = _keep_metrics(runs, list(metrics), collected)
    for run in runs:
        gap = _missing_epochs(run.history.index.to_numpy())
        if gap:
            collected.warnings.append(RunWarning(run.id, gap))
    kept = {r.id for r in runs}
    warnings = [w for w in collected.warnings if not w.id or w.id in kept]
    runset = RunSet.from_runs(runs, collected.skipped, warnings)
    if len(runset) == 0:
        raise UserError(_nothing_read(text, flt, collected, metrics))
    return runset


# -- dispatch ----------------------------------------------------------------------------------
def _read_path(
    text: str, flt: RunFilter, progress: bool, epoch_key: str, options: dict[str, Any]
) -> _Collected:
    path = Path(text).expanduser()
    if not path.exists():
        kind = "broken link" if path.is_symlink() else "no such file or folder"
        raise UserError(f"{text}: {kind}")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".wandb":
            return _read_wandb_files(path, [path], flt, progress, epoch_key, options)
        if suffix == ".csv" and path.name == lightning_csv.METRICS_FILE and not _has_id(path):
            return _read_lightning_csv(path, [path], flt, progress, epoch_key)
        if suffix in tidy.TIDY_SUFFIXES:
            return _read_tidy(path)
        raise UserError(
            f"{text}: not a run source (expected a folder, a .wandb file, a .csv or a .parquet)"
        )
    if not path.is_dir():
        raise UserError(f"{text}: not a file or folder")
    try:
        empty = next(os.scandir(path), None) is None
    except OSError as err:
        raise UserError(f"{text}: cannot list folder: {err.strerror or err}") from None
    if empty:
        raise UserError(f"{text}: empty folder, no runs to read")
    run_files = wandb_offline.find_run_files(path)
    csv_files = lightning_csv.find_metrics_files(path)
    if run_files:
        collected = _read_wandb_files(path, run_files, flt, progress, epoch_key, options)
        if csv_files:
            collected.warnings.append(
                RunWarning(
                    "",
                    f"{text}: read the W&B runs; {len(csv_files)} Lightning CSV logs there were "
                    "not read (pass their folder to read them instead)",
                )
            )
        return collected
    if csv_files:
        return _read_lightning_csv(path, csv_files, flt, progress, epoch_key)
    raise UserError(
        f"{text}: no runs found (no W&B run files offline-run-*/run-*.wandb and no Lightning "
        "CSV logs metrics.csv below it)"
    )


def _read_wandb_files(
    root: Path,
    files: Sequence[Path],
    flt: RunFilter,
    progress: bool,
    epoch_key: str,
    options: dict[str, Any],
) -> _Collected:
    collected = _Collected("wandb-files", found=len(files))
    grace = float(options.get("running_grace_s", wandb_offline.RUNNING_GRACE_S))
    display_root = root if root.is_dir() else root.parent

    def keep(header: wandb_offline.RunHeader) -> bool:
        if header.group:
            collected.groups_seen.add(header.group)
        return flt.header_ok(header.group, header.sweep_id, header.tags)

    now = time.time()
    results = []
    with progress_bar("W&B run files", len(files), progress) as advance:
        for path in files:
            results.append(
                wandb_offline.read_run_file(
                    path, keep=keep, epoch_key=epoch_key, running_grace_s=grace, now=now
                )
            )
            advance()
    for res in wandb_offline.combine_same_run(results, display_root):
        if res.run is not None:
            collected.runs.append(res.run)
            collected.warnings.extend(wandb_offline.to_warnings(res, display_root))
        elif res.skipped is not None:
            collected.skipped.append(wandb_offline.to_skipped(res, display_root))
    return collected


def _read_lightning_csv(
    root: Path, files: Sequence[Path], flt: RunFilter, progress: bool, epoch_key: str
) -> _Collected:
    collected = _Collected("lightning-csv", found=len(files))
    with progress_bar("CSV logs", len(files), progress) as advance:
        for path in files:
            run_id = lightning_csv.run_id_for(path.parent, root)
            try:
                run, warnings = lightning_csv.read_csv_run(path, root, epoch_key=epoch_key)
            except lightning_csv.CsvRunError as err:
                collected.skipped.append(SkippedRun(run_id, f"{path.name}: {err}"))
            else:
                if run.group:
                    collected.groups_seen.add(run.group)
                collected.runs.append(run)
                collected.warnings.extend(RunWarning(run.id, w) for w in warnings)
            advance()
    return collected


def _read_tidy(path: Path) -> _Collected:
    runs, skipped, warnings = tidy.read_tidy_runs(path)
    collected = _Collected("tidy", runs=runs, found=len(runs) + len(skipped))
    collected.skipped = [replace(s, reason=f"{path.name}: {s.reason}") for s in skipped]
    collected.warnings = warnings
    collected.groups_seen = {r.group for r in runs if r.group}
    return collected


def _read_api(
    text: str, flt: RunFilter, progress: bool, epoch_key: str, options: dict[str, Any]
) -> _Collected:
    cache_dir = options.get("cache_dir")
    result = read_api_runs(
        text,
        flt,
        api=options.get("api"),
        per_page=int(options.get("per_page", 100)),
        cache=bool(options.get("cache", True)),
        cache_dir=Path(cache_dir).expanduser() if cache_dir else default_cache_dir(),
        cache_only=bool(options.get("cache_only", False)),
        retry=options.get("retry") or RetryPolicy(),
        progress=progress,
        epoch_key=epoch_key,
    )
    collected = _Collected("wandb-api", result.runs, result.skipped, result.warnings)
    collected.found = result.listed
    return collected


# -- common post-processing ----------------------------------------------------------------------
def _keep_metrics(runs: Iterable[Run], metrics: list[str], collected: _Collected) -> list[Run]:
    kept = []
    for run in runs:
        present = [m for m in metrics if m in run.history.columns]
        if not present:
            logged = ", ".join(map(str, run.history.columns)) or "nothing"
            collected.skipped.append(
                SkippedRun(
                    run.id,
                    f"does not log {' or '.join(metrics)} (it logs: {logged})",
                    group=run.group,
                )
            )
            continue
        missing = [m for m in metrics if m not in present]
        if missing:
            collected.warnings.append(RunWarning(run.id, f"does not log {', '.join(missing)}"))
        run.history = run.history[present]
        kept.append(run)
    return kept


def _missing_epochs(epochs: np.ndarray) -> str | None:
    """A warning if a run's epochs have holes (``0, 1, 4``): rows lost or never logged."""
    if len(epochs) < 2:
        return None
    full = np.arange(int(epochs.min()), int(epochs.max()) + 1)
    holes = np.setdiff1d(full, epochs)
    if not len(holes):
        return None
    shown = ", ".join(str(int(e)) for e in holes[:5]) + (" ..." if len(holes) > 5 else "")
    return (
        f"no rows for epoch(s) {shown} (logged {int(epochs.min())}..{int(epochs.max())}); "
        "their values are NaN"
    )


def _nothing_read(text: str, flt: RunFilter, collected: _Collected, metrics: Any) -> str:
    lacking = [s for s in collected.skipped if s.reason.startswith("does not log")]
    if metrics is not None and lacking:
        return f"{text}: no run logs {' or '.join(metrics)} ({len(lacking)} runs checked)"
    if flt.active and collected.found > len(collected.skipped):
        groups = ", ".join(sorted(collected.groups_seen)) or "none"
        return (
            f"{text}: no runs match {flt.describe()} ({collected.found} runs there; "
            f"groups: {groups})"
        )
    if collected.skipped:
        first = collected.skipped[0]
        return (
            f"{text}: no readable runs ({len(collected.skipped)} skipped; first: {first.id}: "
            f"{first.reason})"
        )
    return f"{text}: no runs found"


def _has_id(path: Path) -> bool:
    """Whether a CSV's header names an ``id`` column (a tidy table, not a Lightning log)."""
    try:
        header = pd.read_csv(path, nrows=0).columns
    except (OSError, ValueError, pd.errors.ParserError):
        return False
    return tidy.ID in header
