"""``analyze --wandb``: the report becomes an offline W&B run of job type ``analysis``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from analyses.signal_effects import SignalEffects
from lightning_app.analysis import Selection
from lightning_app.analysis.command import Prepared, analyze
from lightning_app.analysis.report import write_report
from lightning_app.analysis.wandb_publish import log_report, summary_scalars
from lightning_app.runs.runset import RunSet


def _records(path: Path) -> list[Any]:
    """The protobuf records of a .wandb file, read with the project's own log reader."""
    from wandb.proto import wandb_internal_pb2

    from lightning_app.runs.wandb_log import LogProblems, iter_payloads

    records = []
    for payload in iter_payloads(path.read_bytes(), LogProblems()):
        record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]
        record.ParseFromString(payload)
        records.append(record)
    return records


def test_report_is_logged_as_an_offline_analysis_run(
    planted: RunSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_SILENT", "true")
    prepared = Prepared(analyses=[(SignalEffects(), "built-in", {})], order=["signal-effects"])
    report = analyze(planted, Selection("noise", "signal", permutations=99), prepared)
    files = write_report(report, tmp_path / "report")
    run_id = log_report(report, files, project="lightning_app", mode="offline", directory=tmp_path)
    run_files = list((tmp_path / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))
    assert len(run_files) == 1
    # wandb's service may still be flushing the file when finish() returns under load.
    deadline = time.monotonic() + 30
    records = _records(run_files[0])
    while not any(r.WhichOneof("record_type") == "exit" for r in records):
        assert time.monotonic() < deadline, "the run file never got its exit record"
        time.sleep(0.2)
        records = _records(run_files[0])
    runs = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert runs and runs[0].job_type == "analysis" and runs[0].run_group == "analysis"
    logged = {
        item.key or "/".join(item.nested_key): json.loads(item.value_json)
        for r in records
        if r.WhichOneof("record_type") == "summary"
        for item in r.summary.update
        if not (item.key or item.nested_key[0]).startswith("_")  # wandb's own (_runtime, ...)
    }
    # Every number of the report, with the value report.json has (computed independently of
    # the W&B path: straight from the analysis result).
    effects = report.to_json()["analyses"]["signal-effects"]["params"]["model.hidden_size"]
    assert logged["signal-effects/params/model.hidden_size/ratio"] == effects["ratio"]
    assert logged["signal-effects/params/model.hidden_size/verdict"] == effects["verdict"]
    assert logged["signal-effects/params/model.hidden_size/p_value"] == effects["p_value"]
    expected = summary_scalars(report.to_json())
    assert {k: v for k, v in logged.items() if k in expected} == expected
    assert set(expected) <= set(logged)
    media = run_files[0].parent / "files" / "media"
    assert list((media / "images").rglob("*.png"))
    assert list((media / "table").rglob("*.table.json"))


def test_summary_scalars_flatten_dicts_and_skip_lists() -> None:
    data = {
        "noise": {"runs": 3},
        "signal": {"runs": 4},
        "analyses": {"a": {"x": 1.5, "per_epoch": [1, 2], "params": {"p": {"v": "signal"}}}},
    }
    assert summary_scalars(data) == {
        "noise/runs": 3,
        "signal/runs": 4,
        "a/x": 1.5,
        "a/params/p/v": "signal",
    }


def test_online_with_an_unreachable_server_is_one_line(
    planted: RunSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Credentials make ``analyze --wandb`` log online; a server that cannot be reached (a closed
    loopback port, reached by wandb's real client) ends it with one line naming the server."""
    import socket

    import wandb

    from lightning_app.errors import UserError

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        server = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", server)
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "3")
    monkeypatch.setenv("WANDB_SILENT", "true")
    # A wandb set up by an earlier test keeps the settings it read then (init_timeout 90 s):
    # start afresh so that this process reads WANDB_INIT_TIMEOUT as a user's would.
    wandb.teardown()
    prepared = Prepared(analyses=[(SignalEffects(), "built-in", {})], order=["signal-effects"])
    report = analyze(planted, Selection("noise", "signal", permutations=99), prepared)
    files = write_report(report, tmp_path / "report")
    try:
        with pytest.raises(UserError) as raised:
            log_report(report, files, project="lightning_app", directory=tmp_path)
    finally:
        wandb.teardown()
    message = str(raised.value)
    assert message.startswith(
        f"W&B online (W&B credentials in $WANDB_API_KEY), but the server {server} cannot be "
        "reached: "
    )
    assert message.endswith("; log offline with --wandb-mode offline")
    assert "\n" not in message
