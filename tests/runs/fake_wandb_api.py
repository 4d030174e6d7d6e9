"""A stand-in for ``wandb.Api`` serving recorded run objects (``data/wandb_api_runs.json``).

The W&B cloud cannot be reached from the test machines, so ``wandb://`` reading is tested against
this fake. It mirrors the parts of wandb 0.31's public API the reader uses, with the same paging
and laziness: ``Api.runs(path, filters, per_page, lazy)`` returns a paginator that fetches one page
per request (``__getitem__``/``__len__`` as ``SizedPaginator``), a lazy run fetches its config in
one more request, ``Run.scan_history(min_step=...)`` yields every row, and errors are raised the
way wandb raises them (``CommError`` wrapping a ``requests.HTTPError``). Every request is counted,
and failures can be queued per request kind to test retries.
"""

from __future__ import annotations

import copy
import json
from collections import Counter, defaultdict, deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
from wandb.errors import CommError

RECORDED = Path(__file__).with_name("data") / "wandb_api_runs.json"
WANDB_INTERNAL_KEYS = {"_wandb", "wandb_version"}


def recorded_runs() -> dict[str, Any]:
    return json.loads(RECORDED.read_text())


def http_error(status: int, retry_after: float | None = None) -> CommError:
    """An error as wandb's ``normalize_exceptions`` raises it for an HTTP failure."""
    response = requests.Response()
    response.status_code = status
    response.reason = {429: "Too Many Requests", 404: "Not Found", 401: "Unauthorized"}.get(
        status, "Server Error"
    )
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    error = requests.HTTPError(f"{status} {response.reason}", response=response)
    return CommError(f"HTTP {status} ({response.reason})", error)


class FakeApi:
    """``wandb.Api`` over recorded runs; ``calls`` counts requests by kind."""

    def __init__(self, recorded: dict[str, Any] | None = None, *, obey_filters: bool = True):
        self.recorded = copy.deepcopy(recorded or recorded_runs())
        self.obey_filters = obey_filters
        self.calls: Counter[str] = Counter()
        self.failures: dict[str, deque[tuple[Exception, int]]] = defaultdict(deque)
        self.filters_seen: list[dict[str, Any]] = []

    def fail(self, kind: str, error: Exception, after_rows: int = 0) -> None:
        """Make the next ``kind`` request (``runs_page``, ``scan:<id>``, ``config:<id>``) fail;
        for scans, after yielding ``after_rows`` rows."""
        self.failures[kind].append((error, after_rows))

    def _request(self, kind: str, counter: str) -> int | None:
        self.calls[counter] += 1
        queue = self.failures.get(kind)
        if queue:
            error, after_rows = queue.popleft()
            if after_rows == 0:
                raise error
            return after_rows
        return None

    def runs(
        self,
        path: str,
        filters: dict[str, Any] | None = None,
        order: str = "+created_at",
        per_page: int = 50,
        include_sweeps: bool = False,
        lazy: bool = True,
    ) -> FakeRuns:
        entity, project = path.split("/")
        assert (entity, project) == (self.recorded["entity"], self.recorded["project"]), path
        self.filters_seen.append(filters or {})
        matching = [
            r
            for r in self.recorded["runs"]
            if not self.obey_filters or _matches(r["attrs"], filters or {})
        ]
        return FakeRuns(self, matching, per_page, lazy)


class FakeRuns:
    """Paging like ``wandb.apis.public.Runs``: a page request when an index is not loaded yet."""

    def __init__(self, api: FakeApi, records: list[dict[str, Any]], per_page: int, lazy: bool):
        self.api, self.records, self.per_page, self.lazy = api, records, per_page, lazy
        self.objects: list[FakeRun] = []
        self.loaded_pages = 0

    def _load_page(self) -> bool:
        start = self.loaded_pages * self.per_page
        if start >= len(self.records) and self.loaded_pages:
            return False
        self.api._request("runs_page", "runs_page")
        page = self.records[start : start + self.per_page]
        self.objects.extend(FakeRun(self.api, rec, self.lazy) for rec in page)
        self.loaded_pages += 1
        return bool(page) and start + len(page) < len(self.records)

    def __len__(self) -> int:
        if not self.loaded_pages:
            self._load_page()
        return len(self.records)

    def __getitem__(self, index: int) -> FakeRun:
        more = True
        while more and index > len(self.objects) - 1:
            more = self._load_page()
        return self.objects[index]

    def __iter__(self) -> Iterator[FakeRun]:
        raise AssertionError("the reader must index the paginator (safe to retry), not iterate")


class FakeRun:
    """The attributes of ``wandb.apis.public.Run`` the reader uses."""

    def __init__(self, api: FakeApi, record: dict[str, Any], lazy: bool):
        self._api = api
        self._history = record["history"]
        self._attrs = dict(record["attrs"])
        self._lazy = lazy
        if lazy:  # the lightweight fragment has no config
            self._attrs.pop("config", None)
            self._full = dict(record["attrs"])

    @property
    def id(self) -> str:
        return self._attrs["name"]

    @property
    def name(self) -> str | None:
        return self._attrs.get("displayName")

    @property
    def state(self) -> str:
        return self._attrs["state"]

    @property
    def group(self) -> str | None:
        return self._attrs.get("group")

    @property
    def tags(self) -> list[str]:
        return self._attrs.get("tags") or []

    @property
    def sweep_name(self) -> str | None:
        return self._attrs.get("sweepName")

    @property
    def config(self) -> dict[str, Any]:
        if "config" not in self._attrs:  # lazy: one more request, as load_full_data() makes
            self._api._request(f"config:{self.id}", "run_load")
            self._attrs["config"] = self._full["config"]
        raw = self._attrs["config"]
        raw = json.loads(raw) if isinstance(raw, str) else raw
        # wandb 0.31's Run._load_from_attrs: unwrap {"value": ...}, move internal keys aside
        return {
            k: (v["value"] if isinstance(v, dict) and "value" in v else v)
            for k, v in raw.items()
            if k not in WANDB_INTERNAL_KEYS
        }

    def scan_history(
        self,
        keys: list[str] | None = None,
        page_size: int = 1000,
        min_step: int = 0,
        max_step: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        fail_after = self._api._request(f"scan:{self.id}", "scan_history")
        self._api.calls[f"scan_min_step_{min_step}"] += 1
        rows = [r for r in self._history if r["_step"] >= min_step]
        for i, row in enumerate(rows):
            if fail_after is not None and i == fail_after:
                raise http_error(502)
            yield dict(row)

    def history(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("Run.history() samples rows; the reader must use scan_history()")


def _matches(attrs: dict[str, Any], filters: dict[str, Any]) -> bool:
    clauses = filters.get("$and", [filters] if filters else [])
    for clause in clauses:
        for field, cond in clause.items():
            value = attrs.get("sweepName" if field == "sweep" else field)
            wanted = cond["$in"] if isinstance(cond, dict) else [cond]
            values = value if isinstance(value, list) else [value]
            if not set(values) & set(wanted):
                return False
    return True
