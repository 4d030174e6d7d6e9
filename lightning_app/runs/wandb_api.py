"""Read runs of a W&B project through the public API (``wandb://entity/project``).

- Runs are listed with the filters applied on the server (group, sweep, tags, state) and with
  ``lazy=False``, so each page of the listing brings every run's config: no request per run for it.
- Histories come from ``Run.scan_history`` (every logged row), never ``Run.history`` (a sample of
  rows, which would make epochs go missing at random).
- wandb-core (wandb 0.31's service process) retries 429/5xx itself; what it does not retry (its
  reply timing out, a dropped connection it passed back) is retried here with backoff
  (:mod:`lightning_app.runs.retry`), and a history scan resumes after the last ``_step`` it got.
- Ended runs are cached (:mod:`lightning_app.runs.api_cache`): read again, they cost only the
  listing; ``cache_only=True`` reads the cache with no network at all.

W&B's states map onto :data:`~lightning_app.runs.runset.RUN_STATES`: ``killed`` and ``preempted``
become ``crashed`` (the run did not end by itself), ``pending`` and ``preempting`` ``running``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from lightning_app.errors import UserError
from lightning_app.runs.api_cache import RunCache
from lightning_app.runs.epoch_join import EPOCH_KEY, join_epochs
from lightning_app.runs.filters import RunFilter
from lightning_app.runs.flat_config import flatten_config
from lightning_app.runs.read_progress import progress_bar
from lightning_app.runs.retry import RetryPolicy, call_with_retries, http_status
from lightning_app.runs.runset import EVALUATION_JOB_TYPES, Run, RunWarning, SkippedRun

SCHEME = "wandb://"
STATE_MAP = {
    "finished": "finished",
    "failed": "failed",
    "crashed": "crashed",
    "killed": "crashed",
    "preempted": "crashed",
    "running": "running",
    "pending": "running",
    "preempting": "running",
}
LIVE_STATES = frozenset({"running", "pending", "preempting"})
_TEXT_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


@dataclass
class ApiResult:
    runs: list[Run] = field(default_factory=list)
    skipped: list[SkippedRun] = field(default_factory=list)
    warnings: list[RunWarning] = field(default_factory=list)
    listed: int = 0
    api_calls_saved: int = 0


def parse_wandb_url(source: str) -> tuple[str, str]:
    """``wandb://entity/project`` -> ``(entity, project)``."""
    rest = source[len(SCHEME) :].strip("/")
    parts = rest.split("/")
    if len(parts) != 2 or not all(parts):
        raise UserError(f"{source}: expected wandb://ENTITY/PROJECT")
    return parts[0], parts[1]


def server_filters(flt: RunFilter) -> dict[str, Any]:
    """The filter as the MongoDB-style query ``wandb.Api.runs(filters=...)`` takes."""
    clauses: list[dict[str, Any]] = []
    if flt.groups is not None:
        clauses.append({"group": {"$in": sorted(flt.groups)}})
    if flt.sweeps is not None:
        clauses.append({"sweep": {"$in": sorted(flt.sweeps)}})
    if flt.tags is not None:
        clauses.append({"tags": {"$in": sorted(flt.tags)}})
    if flt.states is not None:
        wanted = sorted(s for s, ours in STATE_MAP.items() if ours in flt.states)
        clauses.append({"state": {"$in": wanted}})
    return {"$and": clauses} if clauses else {}


def read_api_runs(
    source: str,
    flt: RunFilter,
    *,
    api: Any = None,
    per_page: int = 100,
    cache: bool = True,
    cache_dir: Path,
    cache_only: bool = False,
    retry: RetryPolicy | None = None,
    progress: bool = True,
    epoch_key: str = EPOCH_KEY,
) -> ApiResult:
    """All matching runs of the project in ``source``; per-run failures are skipped, not fatal."""
    entity, project = parse_wandb_url(source)
    store = RunCache(cache_dir, entity, project) if cache or cache_only else None
    if cache_only:
        assert store is not None
        return _from_cache(store, flt, source)
    retry = retry or RetryPolicy()
    api = api if api is not None else _default_api(source, entity, project)
    try:
        listing = call_with_retries(
            partial(_list_runs, api, f"{entity}/{project}", flt, per_page), retry
        )
    except Exception as exc:
        raise UserError(f"{source}: listing runs failed: {_describe(exc)}") from None
    result = ApiResult()
    total = _length(listing, retry, source)
    with progress_bar(f"W&B {entity}/{project}", total, progress) as advance:
        index = 0
        while True:
            try:
                remote = call_with_retries(partial(operator.getitem, listing, index), retry)
            except IndexError:
                break
            except Exception as exc:
                raise UserError(f"{source}: listing runs failed: {_describe(exc)}") from None
            index += 1
            result.listed += 1
            advance()
            _read_one(remote, flt, store, retry, epoch_key, result)
    return result


def _read_one(
    remote: Any,
    flt: RunFilter,
    store: RunCache | None,
    retry: RetryPolicy,
    epoch_key: str,
    result: ApiResult,
) -> None:
    run_id = str(remote.id)
    raw_state = str(getattr(remote, "state", "finished"))
    state = STATE_MAP.get(raw_state, "crashed")
    tags = tuple(getattr(remote, "tags", None) or ())
    group = getattr(remote, "group", None) or None
    sweep_id = _sweep_id(remote)
    if not (flt.header_ok(group, sweep_id, tags) and flt.state_ok(state)):
        return  # a server that ignored part of the filter
    job_type = getattr(remote, "job_type", None) or ""
    if job_type in EVALUATION_JOB_TYPES:  # validate/test/predict runs (see wandb_offline)
        name = getattr(remote, "name", None) or run_id
        result.skipped.append(
            SkippedRun(
                run_id,
                f"a {job_type} run ({name}): evaluation results, not a training history",
                group=group,
            )
        )
        return
    fingerprint = _fingerprint(remote, raw_state)
    if store is not None and raw_state not in LIVE_STATES:
        cached = store.get(run_id, fingerprint)
        if cached is not None:
            result.runs.append(cached)
            result.api_calls_saved += 1
            return
    try:
        config = dict(remote.config or {})
        rows = _scan_rows(remote, retry)
    except Exception as exc:
        result.skipped.append(SkippedRun(run_id, f"W&B API error: {_describe(exc)}", group=group))
        return
    float_rows, nonfinite = _float_rows(rows)
    joined = join_epochs(float_rows, epoch_key=epoch_key)
    if joined.frame.empty or joined.frame.shape[1] == 0:
        result.skipped.append(
            SkippedRun(
                run_id,
                f"no history: {len(rows)} logged rows, none with metrics and an {epoch_key!r} "
                f"(state {raw_state})",
                group=group,
            )
        )
        return
    for metric, count in nonfinite.items():
        result.warnings.append(
            RunWarning(run_id, f"{metric} has {count} NaN/inf values (kept as logged)")
        )
    if joined.unplaced_rows:
        result.warnings.append(
            RunWarning(run_id, f"{joined.unplaced_rows} rows without an epoch or step; ignored")
        )
    run = Run(
        id=run_id,
        name=str(getattr(remote, "name", None) or run_id),
        group=group,
        sweep_id=sweep_id,
        tags=tags,
        state=state,
        config=flatten_config(config),
        history=joined.frame,
    )
    result.runs.append(run)
    if store is not None and raw_state not in LIVE_STATES:
        store.put(run, fingerprint)


def _scan_rows(remote: Any, retry: RetryPolicy) -> list[Mapping[str, Any]]:
    """Every history row; after a transient failure the scan resumes past the last ``_step``."""
    rows: list[Mapping[str, Any]] = []

    def scan() -> None:
        last = rows[-1].get("_step") if rows else None
        if isinstance(last, (int, float)) and not isinstance(last, bool):
            start = int(last) + 1
        else:
            start = 0
            rows.clear()
        for row in remote.scan_history(page_size=1000, min_step=start):
            rows.append(row)

    call_with_retries(scan, retry)
    return rows


def _float_rows(
    rows: Iterable[Mapping[str, Any]],
) -> tuple[list[dict[str, float]], dict[str, int]]:
    out: list[dict[str, float]] = []
    nonfinite: dict[str, int] = {}
    for row in rows:
        converted: dict[str, float] = {}
        for key, value in row.items():
            if isinstance(value, (bool, int, float)):
                number = float(value)
            elif isinstance(value, str) and value in _TEXT_FLOATS:
                number = _TEXT_FLOATS[value]
            else:
                continue  # None, text, media, tables
            converted[key] = number
            if not math.isfinite(number) and not key.startswith("_"):
                nonfinite[key] = nonfinite.get(key, 0) + 1
        out.append(converted)
    return out, nonfinite


def _from_cache(store: RunCache, flt: RunFilter, source: str) -> ApiResult:
    runs = [r for r in store.runs() if flt.run_ok(r)]
    if not runs and not any(True for _ in store.runs()):
        raise UserError(
            f"{source}: nothing cached for this project in {store.dir}; read it once with the "
            "network first (cache_only reads only the cache)"
        )
    return ApiResult(runs=runs, listed=len(runs), api_calls_saved=len(runs))


def _list_runs(api: Any, path: str, flt: RunFilter, per_page: int) -> Any:
    filters = server_filters(flt)
    try:
        return api.runs(path, filters=filters, per_page=per_page, lazy=False)
    except TypeError:  # wandb before `lazy` existed: full runs are its only mode
        return api.runs(path, filters=filters, per_page=per_page)


def _length(listing: Any, retry: RetryPolicy, source: str) -> int | None:
    """The number of matching runs (this loads the first page, as iterating would)."""
    try:
        return int(call_with_retries(lambda: len(listing), retry))
    except TypeError:
        return None  # a listing without a length: the progress bar has no total
    except Exception as exc:
        raise UserError(f"{source}: listing runs failed: {_describe(exc)}") from None


def _default_api(source: str, entity: str, project: str) -> Any:
    # The entity given, wandb.Api.runs() does not ask the server for the default one first.
    # timeout: how long each request waits for wandb-core (which retries meanwhile), see retry.py.
    try:
        import wandb

        return wandb.Api(overrides={"entity": entity, "project": project}, timeout=60)
    except Exception as exc:
        raise UserError(
            f"{source}: cannot use the W&B API ({_describe(exc)}); run `wandb login` or set "
            "WANDB_API_KEY, or read local files instead"
        ) from None


def _fingerprint(remote: Any, raw_state: str) -> dict[str, Any]:
    attrs = getattr(remote, "_attrs", None) or {}
    return {
        "state": raw_state,
        "heartbeatAt": attrs.get("heartbeatAt", getattr(remote, "heartbeat_at", None)),
        "historyLineCount": attrs.get("historyLineCount"),
    }


def _sweep_id(remote: Any) -> str | None:
    name = getattr(remote, "sweep_name", None)
    if name:
        return str(name)
    attrs = getattr(remote, "_attrs", None) or {}
    if attrs.get("sweepName"):
        return str(attrs["sweepName"])
    sweep = attrs.get("sweep")
    return str(sweep["name"]) if isinstance(sweep, dict) and sweep.get("name") else None


def _describe(exc: BaseException) -> str:
    status = http_status(exc)
    text = " ".join(str(exc).split()) or type(exc).__name__
    if status is not None and str(status) not in text:
        text = f"HTTP {status}: {text}"
    return text
