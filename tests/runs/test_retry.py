"""Retries against wandb 0.31's real client: its errors, its paging, its history scans.

Only the wandb-core service process is replaced (``StubCore`` in ``fake_wandb_api.py``: the
socket client to it answers from recorded runs); ``wandb.Api``, ``Runs``, ``Run``,
``HistoryScan``, ``ServiceApi``, ``ServiceConnection.api_request`` and ``normalize_exceptions``
are wandb's own, so the errors below are built by wandb's code exactly as in production. The
first test checks that ``FakeApi`` (used by ``test_wandb_api.py``) raises the same errors.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from wandb.proto import wandb_api_pb2

from lightning_app.errors import UserError
from lightning_app.runs import load_runs
from lightning_app.runs.retry import RetryPolicy, http_status, is_transient

from .fake_wandb_api import (
    CONNECTION_RESET,
    GONE,
    SERVICE_TIMEOUT,
    TIMEOUT,
    FakeApi,
    StubCore,
    dropped_connection,
    http_failure,
    real_api,
    recorded_runs,
    service_gone,
    service_timeout,
    use_stub_core,
)

apb: Any = wandb_api_pb2  # generated at import time: mypy sees no attributes
SOURCE = "wandb://ada/signal-noise"
PATH = "ada/signal-noise"


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def raised(action: Callable[[], Any]) -> BaseException:
    with pytest.raises(Exception) as info:
        action()
    return info.value


def signature(exc: BaseException | None) -> Any:
    """What a caller can see of an error: class, args, message, response, what it wraps."""
    if exc is None:
        return None
    response = getattr(exc, "response", None)
    wrapped = getattr(exc, "exc", None)
    return (
        type(exc),
        exc.args,
        str(exc),
        getattr(exc, "message", None),
        None if response is None else (type(response), response.SerializeToString()),
        signature(wrapped) if isinstance(wrapped, BaseException) else wrapped,
        signature(exc.__cause__),
    )


# The request that fails, made through the real or the fake API; rows read go into ``rows``.
def _list(api: Any, rows: list[Any]) -> Any:
    return api.runs(PATH, filters={}, per_page=2, lazy=False)[0]


def _lazy_config(api: Any, rows: list[Any]) -> Any:
    return api.runs(PATH, filters={}, per_page=2, lazy=True)[1].config


def _scan_start(api: Any, rows: list[Any]) -> Any:
    run = api.runs(PATH, filters={}, per_page=2, lazy=False)[1]  # n1d4e5f6
    return run.scan_history(page_size=1000, min_step=0)


def _scan_later_page(api: Any, rows: list[Any]) -> None:
    run = api.runs(PATH, filters={}, per_page=2, lazy=False)[1]
    for row in run.scan_history(page_size=2, min_step=0):  # pages of two steps
        rows.append(row)


# name -> (StubCore kind, what wandb-core does, FakeApi kind, the fake's error, after_rows, action)
CASES: dict[str, tuple[str, Any, str, Callable[[], Any], int, Callable[..., Any]]] = {
    # Runs._update_response -> execute_graphql (the Api's timeout) -> api_request: TimeoutError
    "listing, wait for wandb-core timed out": (
        "runs_page",
        TIMEOUT,
        "runs_page",
        service_timeout,
        0,
        _list,
    ),
    "listing, wandb-core gone": ("runs_page", GONE, "runs_page", service_gone, 0, _list),
    # graphqlhandler.go: the upstream status, after wandb-core's own retries
    "listing, HTTP 503 after wandb-core's retries": (
        "runs_page",
        apb.ApiErrorResponse(message="internal server error", http_status=503),
        "runs_page",
        lambda: http_failure(503),
        0,
        _list,
    ),
    # Run.config -> load_full_data -> _exec: not normalized
    "lazy run's config, wait for wandb-core timed out": (
        "run_load:n1d4e5f6",
        TIMEOUT,
        "config:n1d4e5f6",
        service_timeout,
        0,
        _lazy_config,
    ),
    # Run.scan_history (normalize_exceptions) -> lastHistoryStep -> execute_graphql: TimeoutError
    "scan start, wait for wandb-core timed out": (
        "history_keys:n1d4e5f6",
        TIMEOUT,
        "scan:n1d4e5f6",
        service_timeout,
        0,
        _scan_start,
    ),
    # Run.scan_history -> HistoryScan.__init__: readrunhistoryhandler.go, a message only
    "scan start, dropped connection": (
        "scan_init:n1d4e5f6",
        apb.ApiErrorResponse(message=CONNECTION_RESET),
        "scan:n1d4e5f6",
        dropped_connection,
        0,
        _scan_start,
    ),
    "scan start, HTTP 404": (
        "history_keys:n1d4e5f6",
        apb.ApiErrorResponse(message="run not found", http_status=404),
        "scan:n1d4e5f6",
        lambda: http_failure(404),
        0,
        _scan_start,
    ),
    # HistoryScan.__next__ -> _load_next: not normalized
    "later history page, dropped connection": (
        "scan_page:n1d4e5f6",
        apb.ApiErrorResponse(message=CONNECTION_RESET),
        "scan:n1d4e5f6",
        dropped_connection,
        2,
        _scan_later_page,
    ),
}
TRANSIENT = {
    "listing, wait for wandb-core timed out": True,
    "listing, wandb-core gone": False,
    "listing, HTTP 503 after wandb-core's retries": False,
    "lazy run's config, wait for wandb-core timed out": True,
    "scan start, wait for wandb-core timed out": True,
    "scan start, dropped connection": True,
    "scan start, HTTP 404": False,
    "later history page, dropped connection": True,
}


def real_error(case: str, monkeypatch: pytest.MonkeyPatch) -> tuple[BaseException, list[Any]]:
    core_kind, failure, _, _, after_rows, action = CASES[case]
    core = StubCore()
    core.fail(core_kind, failure, after_step=after_rows - 1)
    rows: list[Any] = []
    return raised(lambda: action(real_api(core, monkeypatch), rows)), rows


@pytest.mark.parametrize("case", list(CASES))
def test_fake_errors_are_the_errors_real_wandb_builds(case, monkeypatch):
    real, real_rows = real_error(case, monkeypatch)
    _, _, fake_kind, build, after_rows, action = CASES[case]
    fake = FakeApi()
    fake.fail(fake_kind, build(), after_rows=after_rows)
    fake_rows: list[Any] = []
    error = raised(lambda: action(fake, fake_rows))
    assert signature(error) == signature(real)
    assert fake_rows == real_rows and len(real_rows) == after_rows


@pytest.mark.parametrize("case", list(CASES))
def test_what_is_retried_as_real_wandb_raises_it(case, monkeypatch):
    """Only a timed-out wait for wandb-core and a status-less dropped connection are retried."""
    real, _ = real_error(case, monkeypatch)
    assert is_transient(real) is TRANSIENT[case]
    status = {"listing, HTTP 503 after wandb-core's retries": 503, "scan start, HTTP 404": 404}
    assert http_status(real) == status.get(case)


def _spread_steps(recorded: dict[str, Any], run_id: str, every: int) -> dict[str, Any]:
    """``run_id``'s history logged at steps 0, every, 2*every, ...: several 1000-step pages."""
    recorded = copy.deepcopy(recorded)
    (run,) = (r for r in recorded["runs"] if r["attrs"]["name"] == run_id)
    for i, row in enumerate(run["history"]):
        row["_step"] = i * every
    return recorded


@pytest.fixture
def read_real(tmp_path, monkeypatch):
    """``load_runs`` through the real ``wandb.Api`` over a ``StubCore``."""

    def read(core: StubCore, sleeps: Sleeps, **kwargs: Any) -> Any:
        kwargs.setdefault("cache_dir", tmp_path / "cache")
        kwargs.setdefault("retry", RetryPolicy(attempts=3, base_delay_s=1.0, sleep=sleeps))
        if "api" not in kwargs:
            kwargs["api"] = real_api(core, monkeypatch)
        return load_runs(SOURCE, progress=False, **kwargs)

    return read


def test_real_client_timeouts_and_dropped_connections_are_retried_and_scans_resume(read_real):
    recorded = _spread_steps(recorded_runs(), "n2g7h8i9", every=300)  # steps 0..3000
    core = StubCore(recorded)
    core.fail("runs_page", TIMEOUT)
    core.fail("history_keys:n1d4e5f6", TIMEOUT)  # CommError-wrapped by normalize_exceptions
    core.fail("scan_init:n0a1b2c3", apb.ApiErrorResponse(message=CONNECTION_RESET))
    core.fail("scan_page:n2g7h8i9", apb.ApiErrorResponse(message=CONNECTION_RESET), after_step=0)
    sleeps = Sleeps()
    runs = read_real(core, sleeps, per_page=2, cache=False)
    clean = read_real(StubCore(recorded), Sleeps(), per_page=2, cache=False)
    assert runs.ids == clean.ids == ["n0a1b2c3", "n1d4e5f6", "n2g7h8i9", "s0j1k2l3", "r0m4n5o6"]
    assert not runs.skipped
    for metric in ("test/acc", "val/acc", "train/loss"):
        np.testing.assert_array_equal(
            runs.metric_matrix(metric).values, clean.metric_matrix(metric).values
        )
    assert len(sleeps) == 4
    n2 = [(lo, hi) for run, lo, hi in core.scan_pages if run == "n2g7h8i9"]
    # pages of 1000 steps; the second failed after rows 0..900 were read: resumed at 901
    assert n2 == [(0, 1000), (1000, 2000), (901, 1901), (1901, 2901), (2901, 3001)]


def test_real_client_errors_with_a_status_are_not_retried_again(read_real):
    """wandb-core retried 429/5xx itself before answering with the status: once is enough."""
    core = StubCore()
    core.fail("history_keys:n1d4e5f6", apb.ApiErrorResponse(message="bad gateway", http_status=502))
    core.fail("scan_init:n2g7h8i9", apb.ApiErrorResponse(message="permission denied"))
    sleeps = Sleeps()
    runs = read_real(core, sleeps, cache=False)
    assert {s.id: s.reason for s in runs.skipped} == {
        "n1d4e5f6": "W&B API error: HTTP 502: bad gateway",
        "n2g7h8i9": "W&B API error: permission denied",
    }
    assert sleeps == [] and core.calls["history_keys"] == 5 and core.calls["scan_init"] == 4

    limited = StubCore()
    limited.fail("runs_page", apb.ApiErrorResponse(message="rate limit exceeded", http_status=429))
    with pytest.raises(UserError, match=r"listing runs failed: HTTP 429: rate limit exceeded"):
        read_real(limited, sleeps, cache=False)
    assert limited.calls["runs_page"] == 1 and sleeps == []


def test_real_client_gives_up_after_the_last_attempt(read_real):
    core = StubCore()
    for _ in range(3):
        core.fail("history_keys:s0j1k2l3", TIMEOUT)
    sleeps = Sleeps()
    runs = read_real(core, sleeps, cache=False)
    assert [(s.id, s.reason) for s in runs.skipped] == [
        ("s0j1k2l3", f"W&B API error: {SERVICE_TIMEOUT}")
    ]
    assert len(sleeps) == 2 and core.calls["history_keys"] == 5 + 2

    listing = StubCore()
    for _ in range(3):
        listing.fail("runs_page", TIMEOUT)
    with pytest.raises(UserError, match=r"listing runs failed: .*did not respond in time"):
        read_real(listing, Sleeps(), cache=False)
    assert listing.calls["runs_page"] == 3


def test_the_readers_own_api_asks_for_no_default_entity(read_real, monkeypatch):
    """The ``wandb.Api`` the reader builds itself (``api=None``; entity given) makes no viewer
    request before listing: every request it makes is one the reader retries."""
    core = StubCore()
    use_stub_core(core, monkeypatch)
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    core.fail("runs_page", TIMEOUT)  # also: the reader's Api waits with a timeout
    runs = read_real(core, Sleeps(), cache=False, api=None)
    assert len(runs) == 5
    assert set(core.calls) == {"auth", "runs_page", "history_keys", "scan_init", "scan_page"}


def test_a_users_api_without_entity_is_retried_from_its_first_request(read_real, monkeypatch):
    """``wandb.Api().runs("entity/project")`` asks for the default entity first (a request
    inside ``Api.runs``): the reader retries it like the listing."""
    core = StubCore()
    core.fail("viewer", TIMEOUT)
    sleeps = Sleeps()
    runs = read_real(core, sleeps, cache=False, api=real_api(core, monkeypatch, with_entity=False))
    assert len(runs) == 5 and len(sleeps) == 1 and core.calls["viewer"] == 2
