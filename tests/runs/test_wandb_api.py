"""``wandb://entity/project`` through the W&B public API.

The W&B cloud cannot be reached from here: these tests run against ``FakeApi``
(``tests/runs/fake_wandb_api.py``), which serves recorded run objects with wandb 0.31's paging,
laziness and errors (built and wrapped as wandb 0.31 builds them, checked against the real
package in ``test_retry.py``), and counts every request. ``test_retry.py`` also reads through
the real ``wandb.Api`` with only the wandb-core process stubbed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lightning_app.errors import UserError
from lightning_app.runs import load_runs
from lightning_app.runs.filters import RunFilter
from lightning_app.runs.retry import RetryPolicy, http_status, is_transient
from lightning_app.runs.wandb_api import server_filters

from .fake_wandb_api import (
    CONNECTION_RESET,
    SERVICE_TIMEOUT,
    FakeApi,
    core_error,
    dropped_connection,
    http_failure,
    normalized,
    recorded_runs,
    service_gone,
    service_timeout,
)

SOURCE = "wandb://ada/signal-noise"
ENDED = ["n0a1b2c3", "n1d4e5f6", "n2g7h8i9", "s0j1k2l3"]
GIVING_UP = "https://api.wandb.ai/graphql giving up after 21 attempt(s)"  # wandb-core's retries


class Sleeps(list):
    """A RetryPolicy sleep that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def read(tmp_path, sleeps):
    def read(api, **kwargs):
        kwargs.setdefault("cache_dir", tmp_path / "cache")
        kwargs.setdefault("retry", RetryPolicy(attempts=4, base_delay_s=1.0, sleep=sleeps))
        return load_runs(SOURCE, api=api, progress=False, **kwargs)

    return read


def test_reads_runs_histories_and_configs(read):
    api = FakeApi()
    runs = read(api)
    assert runs.ids == [*ENDED, "r0m4n5o6"]
    meta = runs.meta
    assert meta.loc["n0a1b2c3", "name"] == "noise-n0-0"
    assert meta.loc["s0j1k2l3", "sweep_id"] == "sw123abc"
    assert meta.loc["s0j1k2l3", "state"] == "crashed"  # W&B "killed"
    assert meta.loc["r0m4n5o6", "state"] == "running"
    assert meta.loc["s0j1k2l3", "tags"] == ("gpu", "signal", "grid")
    assert runs.run("n1d4e5f6").config == {
        "seed_everything": 1,
        "model.hidden_size": 128,
        "model.num_layers": 2,
        "model.learning_rate": 0.001,
        "data.batch_size": 100,
        "trainer.max_epochs": 3,
    }
    hist = runs.run("n0a1b2c3").history
    assert list(hist.index) == [0, 1, 2]
    assert hist.loc[2, "test/acc"] == pytest.approx(0.97 + 0.04)
    assert hist.loc[1, "train/loss"] == pytest.approx(0.5 + 0.097)


def test_evaluation_runs_are_listed_not_read(read):
    recorded = recorded_runs()
    (validate,) = [r for r in recorded["runs"] if r["attrs"]["name"] == "n1d4e5f6"]
    validate["attrs"]["jobType"] = "validate"
    api = FakeApi(recorded)
    runs = read(api)
    assert "n1d4e5f6" not in runs.ids and "n0a1b2c3" in runs.ids
    (skipped,) = [s for s in runs.skipped if s.id == "n1d4e5f6"]
    assert skipped.reason == (
        "a validate run (noise-n1-1): evaluation results, not a training history"
    )
    assert api.calls["scan_history"] == 4  # of 5 runs: the evaluation's history is not fetched


def test_media_and_text_nan_rows(read):
    runs = read(FakeApi())
    hist = runs.history.loc["n2g7h8i9"]
    assert "media/confusion" not in runs.metrics()
    assert math.isnan(hist.loc[2, "val/loss"])  # logged as the text "NaN"
    assert any(
        w.id == "n2g7h8i9" and w.message == "val/loss has 1 NaN/inf values (kept as logged)"
        for w in runs.warnings
    )


def test_configs_come_with_the_listing_pages_not_per_run(read):
    api = FakeApi()
    read(api, per_page=2)
    assert api.calls["runs_page"] == 3  # 5 runs, 2 per page
    assert api.calls["run_load"] == 0  # lazy=False: no request per run for its config
    assert api.calls["scan_history"] == 5


def test_filters_go_to_the_server_and_are_checked_again(read):
    api = FakeApi()
    runs = read(api, group="noise", state=["finished", "crashed"], tags="gpu")
    assert api.filters_seen == [
        {
            "$and": [
                {"group": {"$in": ["noise"]}},
                {"tags": {"$in": ["gpu"]}},
                {"state": {"$in": ["crashed", "finished", "killed", "preempted"]}},
            ]
        }
    ]
    assert runs.ids == ["n0a1b2c3", "n1d4e5f6", "n2g7h8i9"]
    lax = FakeApi(obey_filters=False)  # a server that ignores the filter
    assert read(lax, group="noise", state="finished").ids == runs.ids
    assert read(FakeApi(), sweep="sw123abc").ids == ["s0j1k2l3"]


def test_timeouts_and_dropped_connections_are_retried_with_backoff(read, sleeps):
    api = FakeApi()
    api.fail("runs_page", service_timeout())  # wandb-core did not answer in time
    api.fail("runs_page", dropped_connection())
    api.fail("scan:n1d4e5f6", service_timeout())  # before any row: CommError-wrapped
    api.fail("scan:n2g7h8i9", dropped_connection(), after_rows=4)  # mid-scan: unwrapped
    runs = read(api)
    clean = read(FakeApi(), cache=False)
    assert runs.ids == clean.ids and not runs.skipped
    np.testing.assert_array_equal(
        runs.metric_matrix("test/acc").values, clean.metric_matrix("test/acc").values
    )
    assert len(sleeps) == 4
    assert 0 <= sleeps[0] <= 1.0 and 0 <= sleeps[1] <= 2.0  # jittered exponential backoff
    assert api.calls["runs_page"] == 3  # the first page, tried three times
    assert api.calls["scan_min_step_4"] == 1  # the interrupted scan resumed after its last row


def test_http_statuses_are_left_to_wandb_cores_own_retries(read, sleeps):
    """An error with an HTTP status comes after wandb-core retried it (429, 5xx) or knows
    retrying cannot help (404): retrying again would multiply wandb-core's attempts."""
    api = FakeApi()
    api.fail("scan:n1d4e5f6", http_failure(503))
    api.fail("scan:n2g7h8i9", http_failure(429))
    runs = read(api)
    assert sorted(s.id for s in runs.skipped) == ["n1d4e5f6", "n2g7h8i9"]
    reasons = {s.id: s.reason for s in runs.skipped}
    assert reasons["n1d4e5f6"] == "W&B API error: HTTP 503: internal server error"
    assert reasons["n2g7h8i9"] == "W&B API error: HTTP 429: rate limit exceeded"
    assert sleeps == []
    assert api.calls["scan_history"] == 5  # once per run

    limited = FakeApi()
    limited.fail("runs_page", http_failure(429))
    with pytest.raises(UserError, match=r"listing runs failed: HTTP 429: rate limit exceeded"):
        read(limited)
    assert limited.calls["runs_page"] == 1 and sleeps == []


def test_errors_that_retrying_cannot_fix(read, sleeps):
    api = FakeApi()
    api.fail("scan:n1d4e5f6", http_failure(404))
    api.fail("scan:n2g7h8i9", core_error("permission denied"))  # a GraphQL error: no status
    api.fail("scan:s0j1k2l3", core_error(f"POST {GIVING_UP}: {CONNECTION_RESET}"))
    runs = read(api)
    assert runs.ids == ["n0a1b2c3", "r0m4n5o6"]
    reasons = {s.id: s.reason for s in runs.skipped}
    assert reasons == {
        "n1d4e5f6": "W&B API error: HTTP 404: run not found",
        "n2g7h8i9": "W&B API error: permission denied",
        "s0j1k2l3": f"W&B API error: POST {GIVING_UP}: {CONNECTION_RESET}",
    }
    assert sleeps == []

    denied = FakeApi()
    denied.fail("runs_page", http_failure(401))
    with pytest.raises(UserError, match=r"wandb://ada/signal-noise: listing runs failed: HTTP 401"):
        read(denied)
    gone = FakeApi()
    gone.fail("runs_page", service_gone())
    with pytest.raises(UserError, match=r"listing runs failed: .*service process is not running"):
        read(gone)
    assert gone.calls["runs_page"] == 1 and sleeps == []


def test_gives_up_after_the_last_attempt(read, sleeps):
    api = FakeApi()
    for _ in range(4):
        api.fail("scan:s0j1k2l3", service_timeout())
    runs = read(api)
    assert [s.id for s in runs.skipped] == ["s0j1k2l3"]
    assert runs.skipped[0].reason == f"W&B API error: {SERVICE_TIMEOUT}"
    assert len(sleeps) == 3  # 4 attempts, 3 waits


def test_second_read_of_ended_runs_makes_no_history_or_config_calls(read):
    first = FakeApi()
    runs = read(first)
    assert first.calls["scan_history"] == 5
    again = FakeApi()
    cached = read(again)
    assert again.calls["scan_history"] == 1  # only the running run is fetched again
    assert again.calls["run_load"] == 0
    assert again.calls["runs_page"] == 1  # the listing, to see new or changed runs
    assert cached.ids == runs.ids
    np.testing.assert_array_equal(
        cached.metric_matrix("val/acc").values, runs.metric_matrix("val/acc").values
    )
    assert cached.run("n1d4e5f6").config == runs.run("n1d4e5f6").config


def test_cache_only_makes_no_api_calls_at_all(read):
    read(FakeApi())

    class NoNetwork:
        def __getattr__(self, name):
            raise AssertionError(f"cache_only must not touch the API ({name})")

    offline = read(NoNetwork(), cache_only=True, group="noise")
    assert offline.ids == ["n0a1b2c3", "n1d4e5f6", "n2g7h8i9"]  # live runs are never cached


def test_cache_only_with_nothing_cached_is_a_user_error(read):
    with pytest.raises(UserError, match="nothing cached for this project"):
        read(None, cache_only=True)


def test_a_changed_run_is_fetched_again(read):
    read(FakeApi())
    changed = FakeApi()
    changed.recorded["runs"][0]["attrs"]["heartbeatAt"] = "2026-02-01T00:00:00Z"  # resumed
    changed.recorded["runs"][0]["history"][0]["train/loss"] = 9.0
    runs = read(changed)
    assert changed.calls["scan_history"] == 2  # the changed run and the running one
    assert runs.run("n0a1b2c3").history.loc[0, "train/loss"] == 9.0


def test_damaged_cache_entries_are_refetched(read, tmp_path):
    read(FakeApi())
    for entry in (tmp_path / "cache").rglob("*.json"):
        entry.write_text("{not json")
    api = FakeApi()
    assert len(read(api)) == 5
    assert api.calls["scan_history"] == 5


def test_bad_wandb_urls(read):
    for bad in ("wandb://ada", "wandb://ada/p/extra", "wandb:///p"):
        with pytest.raises(UserError, match="expected wandb://ENTITY/PROJECT"):
            load_runs(bad, api=FakeApi(), progress=False)


def test_transient_error_classification():
    for transient in (service_timeout(), dropped_connection()):
        assert is_transient(transient) and is_transient(normalized(transient))
        assert http_status(transient) is None
    for permanent in (
        http_failure(429),  # wandb-core already retried it
        http_failure(503),
        http_failure(404),
        service_gone(),
        core_error("permission denied"),
        core_error(f"POST {GIVING_UP}: {CONNECTION_RESET}"),
        ValueError("bad filter"),
        ConnectionResetError(),  # not how wandb 0.31's API reports a dropped connection
    ):
        assert not is_transient(permanent), permanent
    assert http_status(http_failure(503)) == 503 == http_status(normalized(http_failure(503)))


def test_default_policy_is_sized_for_wandb_cores_own_retries():
    policy = RetryPolicy()
    assert policy.attempts == 3  # see the module docstring of lightning_app.runs.retry
    assert all(0 <= policy.delay(a) <= min(30.0, 2.0 * 2**a) for a in range(8) for _ in range(50))


def test_server_filter_shape():
    assert server_filters(RunFilter.build()) == {}
    assert server_filters(RunFilter.build(sweep="abc")) == {"$and": [{"sweep": {"$in": ["abc"]}}]}


def test_the_cache_lives_where_the_readme_says(tmp_path, monkeypatch, sleeps):
    """``$LIGHTNING_APP_CACHE_DIR``, else ``$XDG_CACHE_HOME/lightning_app``, else
    ``~/.cache/lightning_app``: ended runs land under ``wandb-runs/`` there."""
    retry = RetryPolicy(attempts=4, base_delay_s=1.0, sleep=sleeps)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    places = {
        "LIGHTNING_APP_CACHE_DIR": tmp_path / "moved",
        "XDG_CACHE_HOME": tmp_path / "xdg" / "lightning_app",
        "": tmp_path / "home" / ".cache" / "lightning_app",
    }
    for variable, place in places.items():
        monkeypatch.delenv("LIGHTNING_APP_CACHE_DIR", raising=False)
        if variable:
            monkeypatch.setenv(variable, str(place if "CACHE_DIR" in variable else place.parent))
        load_runs(SOURCE, api=FakeApi(), progress=False, retry=retry)
        cached = [p for p in (place / "wandb-runs").rglob("*") if p.is_file()]
        assert cached, f"nothing cached under {place}"
        again = FakeApi()
        assert load_runs(SOURCE, api=again, progress=False, retry=retry).ids == [
            *ENDED,
            "r0m4n5o6",
        ]
        assert again.calls["scan_history"] == 1  # only the running run: ended ones were cached
        if variable:
            monkeypatch.delenv(variable)
    assert not (tmp_path / "home" / ".cache" / "wandb-runs").exists()


def test_without_a_wandb_login_the_message_says_how(tmp_path, monkeypatch):
    """The real ``wandb.Api`` with no key anywhere: one line saying what to do, nothing written."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for variable in ("WANDB_API_KEY", "WANDB_BASE_URL", "NETRC"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(UserError) as raised:
        load_runs("wandb://someone/project", progress=False)
    message = str(raised.value)
    assert message.startswith("wandb://someone/project: cannot use the W&B API (")
    assert message.endswith("run `wandb login` or set WANDB_API_KEY, or read local files instead")
    assert "\n" not in message
    assert not list(tmp_path.iterdir())
