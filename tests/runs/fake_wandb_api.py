"""Stand-ins for the W&B cloud, at two depths, serving recorded run objects
(``data/wandb_api_runs.json``).

The W&B cloud cannot be reached from the test machines, so ``wandb://`` reading is tested
against:

- ``FakeApi``: a stand-in for ``wandb.Api`` itself. It mirrors the parts of wandb 0.31's public
  API the reader uses, with the same paging and laziness: ``Api.runs(path, filters, per_page,
  lazy)`` returns a paginator that fetches one page per request (``__getitem__``/``__len__`` as
  ``SizedPaginator``), a lazy run fetches its config in one more request, and
  ``Run.scan_history(min_step=...)`` yields every row. Every request is counted.
- ``StubCore``: a stand-in for only the wandb-core service process that wandb 0.31's public API
  talks to. The real ``wandb.Api``, ``Runs``, ``Run`` and ``HistoryScan`` run on top of it
  (``real_api``), so their paging and their errors are wandb's own.

Failures are queued per request kind as the error wandb-core's answer turns into (the builders
below), and both raise them where, and wrapped as, wandb 0.31 raises them:

- ``ServiceConnection.api_request`` (``wandb/sdk/lib/service/service_connection.py``) raises
  ``WandbApiFailedError(message, response)``: ``response`` is the ``ApiErrorResponse`` proto
  wandb-core answered with, or ``None`` when its wait for wandb-core timed out or the service is
  gone. It carries no HTTP headers, only ``http_status`` (0: no HTTP response).
- Listing pages (``Runs._update_response``) and history pages (``HistoryScan._load_next``) raise
  it as it is; ``Run.scan_history`` (``lastHistoryStep`` and the scan's init request) is wrapped
  by ``normalize_exceptions`` (``wandb/apis/normalize.py``), which raises
  ``CommError(message, err) from err``.

``tests/runs/test_retry.py`` checks these builders against errors the real wandb code builds.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from wandb.errors import CommError
from wandb.proto import wandb_api_pb2, wandb_server_pb2
from wandb.sdk.lib.service.service_connection import ServiceConnection, WandbApiFailedError
from wandb.sdk.mailbox.mailbox import MailboxClosedError
from wandb.sdk.mailbox.mailbox_handle import MailboxHandle

# wandb's protobuf modules pick their generated code at import time: mypy sees no attributes.
apb: Any = wandb_api_pb2
spb: Any = wandb_server_pb2
RECORDED = Path(__file__).with_name("data") / "wandb_api_runs.json"
WANDB_INTERNAL_KEYS = {"_wandb", "wandb_version"}

# ServiceConnection.api_request, on TimeoutError / MailboxClosedError from its wait.
SERVICE_TIMEOUT = (
    "Failed to execute API request: the service process is busy and did not respond in time."
)
SERVICE_GONE = "Failed to execute API request: the service process is not running."
# Go's error text for a connection dropped while reading a response, as wandb-core passes it on.
CONNECTION_RESET = (
    'Get "https://storage.googleapis.com/wandb-production/history/0.runhistory.parquet": '
    "read tcp 10.0.0.2:51234->142.250.74.91:443: read: connection reset by peer"
)


def recorded_runs() -> dict[str, Any]:
    return json.loads(RECORDED.read_text())


def service_timeout() -> WandbApiFailedError:
    """Python's wait for wandb-core timed out (``ServiceConnection.api_request``: the
    ``except TimeoutError`` branch, raised ``from None``): no response, no HTTP status."""
    return WandbApiFailedError(SERVICE_TIMEOUT)


def service_gone() -> WandbApiFailedError:
    """The wandb-core process is gone (``ServiceConnection.api_request``: the
    ``except (MailboxClosedError, HandleAbandonedError)`` branch)."""
    return WandbApiFailedError(SERVICE_GONE)


def core_error(message: str, http_status: int = 0) -> WandbApiFailedError:
    """wandb-core answered with an error (``ServiceConnection.api_request``: the
    ``response.HasField("api_error_response")`` branch). ``http_status`` is the upstream status
    or 0 when there was no HTTP response (wandb-core ``core/internal/wbapi/graphqlhandler.go``:
    ``graphqlErrorInfo``; history reads always send 0, ``readrunhistoryhandler.go``)."""
    response = apb.ApiErrorResponse(message=message, http_status=http_status)
    return WandbApiFailedError(response.message, response)


def dropped_connection() -> WandbApiFailedError:
    """A connection reset that wandb-core passed back: no HTTP status, Go's error text."""
    return core_error(CONNECTION_RESET)


def http_failure(status: int, message: str | None = None) -> WandbApiFailedError:
    """An HTTP error status wandb-core gave up on (or never retries, like 401/404)."""
    default = {401: "user is not logged in", 404: "run not found", 429: "rate limit exceeded"}
    return core_error(message or default.get(status, "internal server error"), status)


def normalized(error: WandbApiFailedError) -> CommError:
    """``error`` as ``normalize_exceptions`` re-raises it around ``Run.scan_history``:
    ``CommError(message, err) from err``, ``message`` being the response's message if any."""
    if error.response is not None and error.response.message:
        message = error.response.message
    else:
        message = str(error) or "Whoa, you found a bug."
    wrapped = CommError(message, error)
    wrapped.__cause__ = error
    return wrapped


class FakeApi:
    """``wandb.Api`` over recorded runs; ``calls`` counts requests by kind."""

    def __init__(self, recorded: dict[str, Any] | None = None, *, obey_filters: bool = True):
        self.recorded = copy.deepcopy(recorded or recorded_runs())
        self.obey_filters = obey_filters
        self.calls: Counter[str] = Counter()
        self.failures: dict[str, deque[tuple[WandbApiFailedError, int]]] = defaultdict(deque)
        self.filters_seen: list[dict[str, Any]] = []

    def fail(self, kind: str, error: WandbApiFailedError, after_rows: int = 0) -> None:
        """Make the next ``kind`` request (``runs_page``, ``scan:<id>``, ``config:<id>``) fail
        with ``error`` (from the builders above); for scans, after yielding ``after_rows`` rows,
        i.e. on a later page, where wandb raises it unwrapped."""
        if after_rows:  # history pages: waited for without a timeout, answered with no status
            response = error.response
            assert str(error) == SERVICE_GONE if response is None else not response.http_status
        self.failures[kind].append((error, after_rows))

    def _request(self, kind: str, counter: str) -> tuple[WandbApiFailedError, int] | None:
        self.calls[counter] += 1
        queue = self.failures.get(kind)
        return queue.popleft() if queue else None

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
        failure = self.api._request("runs_page", "runs_page")
        if failure is not None:
            raise failure[0]  # Runs._update_response: not normalized
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
    def job_type(self) -> str | None:  # Attrs.__getattr__: job_type -> attrs["jobType"]
        return self._attrs.get("jobType")

    @property
    def config(self) -> dict[str, Any]:
        if "config" not in self._attrs:  # lazy: one more request, as load_full_data() makes
            failure = self._api._request(f"config:{self.id}", "run_load")
            if failure is not None:
                raise failure[0]  # Run.config -> load_full_data -> _exec: not normalized
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
        # Run.scan_history is normalized and makes its requests (lastHistoryStep, the scan's
        # init) before returning the HistoryScan; later pages fail unwrapped as they are read.
        failure = self._api._request(f"scan:{self.id}", "scan_history")
        if failure is not None and failure[1] == 0:
            raise normalized(failure[0])
        self._api.calls[f"scan_min_step_{min_step}"] += 1
        return self._rows(min_step, failure)

    def _rows(
        self, min_step: int, failure: tuple[WandbApiFailedError, int] | None
    ) -> Iterator[dict[str, Any]]:
        rows = [r for r in self._history if r["_step"] >= min_step]
        for i, row in enumerate(rows):
            if failure is not None and i == failure[1]:
                raise failure[0]  # HistoryScan._load_next: not normalized
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


# ---------------------------------------------------------------------------------------------
# StubCore: only the wandb-core process is replaced; wandb's Python client is the real one.

TIMEOUT = "timeout"  # the wait for wandb-core's answer times out (only where wandb sets one)
GONE = "gone"  # the service process is not running


class StubCore:
    """Answers wandb 0.31's requests to wandb-core from recorded runs.

    Kinds for :meth:`fail`: ``runs_page``, ``viewer`` (``Api.default_entity``), ``run_load:<id>``
    (a lazy run's config), ``history_keys:<id>`` (``Run.lastHistoryStep``), ``scan_init:<id>``,
    ``scan_page:<id>``. A failure is :data:`TIMEOUT`, :data:`GONE` or an
    ``ApiErrorResponse`` wandb-core answers with (``core_error(...).response``); ``after_step``
    delays a ``scan_page`` failure to the first page starting after that step.
    """

    def __init__(self, recorded: dict[str, Any] | None = None):
        self.recorded = copy.deepcopy(recorded or recorded_runs())
        self.calls: Counter[str] = Counter()
        self.failures: dict[str, deque[tuple[Any, int]]] = defaultdict(deque)
        self.scan_pages: list[tuple[str, int, int]] = []  # (run id, min_step, max_step)
        self._scans: dict[int, str] = {}

    def fail(self, kind: str, failure: Any, after_step: int = -1) -> None:
        self.failures[kind].append((failure, after_step))

    def answer(self, request: Any, timeout: float | None) -> Any:
        """wandb-core's response to ``request``, or raise what the mailbox wait raises."""
        which = request.WhichOneof("server_request_type")
        if which == "api_init_request":
            init = apb.ServerApiInitResponse(api_id="stub-api")
            return spb.ServerResponse(api_init_response=init)
        assert which == "api_request", which
        api = request.api_request
        kind, response = self._api_response(api)
        queue = self.failures.get(kind)
        if queue and self._due(queue[0][1], api):
            failure, _ = queue.popleft()
            if failure == TIMEOUT:
                assert timeout is not None, f"{kind}: wandb waits for this one without a timeout"
                raise TimeoutError
            if failure == GONE:
                raise MailboxClosedError
            response = apb.ApiResponse(api_error_response=failure)
        return spb.ServerResponse(api_response=response)

    @staticmethod
    def _due(after_step: int, api: Any) -> bool:
        if after_step < 0:
            return True
        return api.read_run_history_request.scan_run_history.min_step > after_step

    def _api_response(self, api: Any) -> tuple[str, Any]:
        which = api.WhichOneof("request")
        if which == "auth_request":
            self.calls["auth"] += 1
            return "auth", apb.ApiResponse(auth_response=apb.AuthResponse())
        if which == "graphql_request":
            query = api.graphql_request.query
            variables = json.loads(api.graphql_request.variables_json or "{}")
            if "query GetDefaultEntity" in query:  # Api.default_entity
                self.calls["viewer"] += 1
                entity = self.recorded["entity"]
                return "viewer", _graphql({"viewer": {"id": "VXNlcjox", "entity": entity}})
            if "query RunHistoryKeys(" in query:  # Run.lastHistoryStep
                run = self._run(variables["name"])
                last = max((row["_step"] for row in run["history"]), default=-1)
                self.calls["history_keys"] += 1
                data = {"project": {"run": {"historyKeys": {"lastStep": last}}}}
                return f"history_keys:{variables['name']}", _graphql(data)
            if "query Run(" in query:  # Run.load_full_data (a lazy run's config)
                self.calls["run_load"] += 1
                attrs = {"projectId": 1, **self._run(variables["name"])["attrs"]}
                return f"run_load:{variables['name']}", _graphql({"project": {"run": attrs}})
            assert "query Runs(" in query, query  # Runs._update_response
            self.calls["runs_page"] += 1
            lazy = "...LightweightRunFragment" in query  # no config, summary or system metrics
            return "runs_page", _graphql(self._runs_page(variables, lazy))
        assert which == "read_run_history_request", which
        read = api.read_run_history_request
        part = read.WhichOneof("request")
        if part == "scan_run_history_init":
            run_id = read.scan_run_history_init.run_id
            self.calls["scan_init"] += 1
            request_id = len(self._scans) + 1
            self._scans[request_id] = run_id
            init = apb.ScanRunHistoryInitResponse(request_id=request_id)
            reply = apb.ReadRunHistoryResponse(scan_run_history_init=init)
            return f"scan_init:{run_id}", apb.ApiResponse(read_run_history_response=reply)
        if part == "scan_run_history":
            scan = read.scan_run_history
            run_id = self._scans[scan.request_id]
            self.calls["scan_page"] += 1
            self.scan_pages.append((run_id, scan.min_step, scan.max_step))
            rows = [
                apb.HistoryRow(
                    history_items=[
                        apb.ParquetHistoryItem(key=k, value_json=json.dumps(v))
                        for k, v in row.items()
                    ]
                )
                for row in self._run(run_id)["history"]
                if scan.min_step <= row["_step"] < scan.max_step
            ]
            history = apb.RunHistoryResponse(history_rows=rows)
            reply = apb.ReadRunHistoryResponse(run_history=history)
            return f"scan_page:{run_id}", apb.ApiResponse(read_run_history_response=reply)
        assert part == "scan_run_history_cleanup", part
        cleanup = apb.ReadRunHistoryResponse(
            scan_run_history_cleanup=apb.ScanRunHistoryCleanupResponse()
        )
        return "scan_cleanup", apb.ApiResponse(read_run_history_response=cleanup)

    def _run(self, run_id: str) -> dict[str, Any]:
        (run,) = (r for r in self.recorded["runs"] if r["attrs"]["name"] == run_id)
        return run

    def _runs_page(self, variables: dict[str, Any], lazy: bool) -> dict[str, Any]:
        assert (variables["entity"], variables["project"]) == (
            self.recorded["entity"],
            self.recorded["project"],
        )
        filters = json.loads(variables.get("filters") or "{}")
        matching = [r["attrs"] for r in self.recorded["runs"] if _matches(r["attrs"], filters)]
        start = int(variables.get("cursor") or 0)
        page = matching[start : start + int(variables.get("perPage") or 50)]
        if lazy:
            heavy = ("config", "summaryMetrics", "systemMetrics")
            page = [{k: v for k, v in attrs.items() if k not in heavy} for attrs in page]
        return {
            "project": {
                "internalId": "UHJvamVjdDox",
                "runCount": len(matching),
                "readOnly": False,
                "runs": {
                    "edges": [
                        {"node": {"projectId": 1, **attrs}, "cursor": str(start + i + 1)}
                        for i, attrs in enumerate(page)
                    ],
                    "pageInfo": {
                        "endCursor": str(start + len(page)),
                        "hasNextPage": start + len(page) < len(matching),
                    },
                },
            }
        }


def _graphql(data: dict[str, Any]) -> Any:
    return apb.ApiResponse(graphql_response=apb.GraphQLResponse(data_json=json.dumps(data)))


class _Answered(MailboxHandle[Any]):
    """A mailbox handle whose response is already there (or whose wait fails at once)."""

    def __init__(self, asyncer: Any, core: StubCore, request: Any):
        super().__init__(asyncer)
        self._core, self._request = core, request

    def cancel(self) -> None:
        pass

    def wait_or(self, *, timeout: float | None) -> Any:
        return self._core.answer(self._request, timeout)

    async def wait_async(self, *, timeout: float | None) -> Any:
        return self._core.answer(self._request, timeout)


class _Asyncer:
    """``AsyncioManager.run``: run an async function to completion (here, in a new loop)."""

    def run(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        async def call() -> Any:
            return await fn()

        return asyncio.run(call())


class _CoreClient:
    """The socket client to wandb-core (``ServiceClient``), answered by a :class:`StubCore`."""

    def __init__(self, core: StubCore, asyncer: _Asyncer):
        self._core, self._asyncer = core, asyncer

    async def deliver(self, request: Any) -> MailboxHandle[Any]:
        return _Answered(self._asyncer, self._core, request)

    async def publish(self, request: Any) -> None:
        pass

    async def close(self) -> None:
        pass


def stub_connection(core: StubCore) -> Any:
    """A real ``ServiceConnection`` whose socket to wandb-core is answered by ``core``."""
    asyncer = _Asyncer()
    return ServiceConnection(
        asyncer=asyncer,  # type: ignore[arg-type]
        client=_CoreClient(core, asyncer),  # type: ignore[arg-type]
        proc=None,
    )


def use_stub_core(core: StubCore, monkeypatch: Any) -> None:
    """Every ``wandb.Api`` made from now on talks to ``core`` instead of a wandb-core process:
    ``wandb_setup``'s ``ensure_service`` returns the stub connection."""
    from wandb.sdk import wandb_setup

    connection = stub_connection(core)
    monkeypatch.setattr(wandb_setup.singleton(), "ensure_service", lambda: connection)


def real_api(core: StubCore, monkeypatch: Any, *, with_entity: bool = True) -> Any:
    """The real ``wandb.Api`` (as the reader builds it, or without the entity as a user might),
    talking to ``core``."""
    import wandb

    use_stub_core(core, monkeypatch)
    entity, project = core.recorded["entity"], core.recorded["project"]
    overrides = {"entity": entity, "project": project} if with_entity else {}
    return wandb.Api(overrides=overrides, timeout=60, api_key="k" * 40)
