"""The runner: kill -9 and restart with real training processes; retries, Ctrl-C and refusing to
mix through the whole command in this process, with trivial children for runs (``fakes``)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lightning_app.runs.sources import load_runs
from lightning_app.sweeps.layout import SweepFolder
from lightning_app.sweeps.plan import plan_runs
from lightning_app.sweeps.processes import ATTEMPT_TAG, tagged_processes
from lightning_app.sweeps.spec import load_sweep
from tests.sweeps.conftest import InProcess, start_sweep, sweep_file
from tests.sweeps.fakes import SLEEP, SUCCEED, failing, use_children


def state(folder: Path) -> dict:
    path = folder / "state.json"
    return json.loads(path.read_text())["runs"] if path.exists() else {}


def wandb_files(folder: Path, pattern: str = "run-*.wandb") -> list[Path]:
    return sorted(folder.rglob(pattern))


@pytest.mark.process
def test_kill_9_mid_sweep_then_restart_runs_every_run_exactly_once(
    tmp_path: Path, sweep_cli: Callable[..., InProcess]
) -> None:
    """The runner that is killed is a real process; the restart and the reference sweep run the
    same command in this process (their runs are real trainings either way)."""
    seeds = [11, 12, 13, 14, 15]
    path = sweep_file(
        tmp_path,
        {"seed_everything": {"values": seeds}},
        name="killed",
        extra=["--trainer.max_epochs=2", "--trainer.limit_train_batches=25"],
    )
    folder = tmp_path / "sweeps" / "killed"
    options = ["--workers", "2", "--threads", "1"]  # threads fixed: the reference run matches
    runner = start_sweep([str(path), *options], tmp_path)
    # Kill once a run is done and another is mid-flight with its W&B file already written.
    deadline = time.monotonic() + 180
    victim = None
    while time.monotonic() < deadline and runner.poll() is None:
        runs = state(folder)
        done = [k for k, r in runs.items() if r["status"] == "done"]
        flying = [
            k
            for k, r in runs.items()
            if r["status"] == "running" and wandb_files(folder / k) and r["attempts"][-1]["pid"]
        ]
        if done and flying:
            victim = flying[0]
            break
        time.sleep(0.05)
    assert victim is not None, "no run was mid-flight while another was done"
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    before = state(folder)
    done_before = {k: r for k, r in before.items() if r["status"] == "done"}
    files_before = {k: wandb_files(folder / k) for k in done_before}
    mtimes_before = {k: [f.stat().st_mtime_ns for f in v] for k, v in files_before.items()}

    # The runner's children die with it: nothing of the interrupted attempts keeps running.
    running = [k for k, r in before.items() if r["status"] == "running"]
    tags = [f"{folder.resolve()}/{k}#{before[k]['attempts'][-1]['number']}" for k in running]
    deadline = time.monotonic() + 15
    while any(tagged_processes(tag) for tag in tags) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(tagged_processes(tag) for tag in tags), f"orphans of {running} survived"

    result = sweep_cli(str(path), *options)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(running)} interrupted run(s) start again from scratch" in result.stdout

    after = state(folder)
    assert sorted(after) == sorted(before.keys() | after.keys())
    assert len(after) == len(seeds) and all(r["status"] == "done" for r in after.values())
    for key in done_before:  # finished runs were not run again
        assert len(after[key]["attempts"]) == 1
        assert [f.stat().st_mtime_ns for f in wandb_files(folder / key)] == mtimes_before[key]
    victim_attempts = after[victim]["attempts"]
    assert [a["outcome"] for a in victim_attempts] == ["interrupted", "done"]
    moved = folder / victim_attempts[0]["moved_to"]
    assert moved == folder / "attempts" / victim / "1-interrupted"
    assert wandb_files(moved, "run-*.wandb.interrupted"), "the dead attempt's W&B file is kept"
    assert (moved / "run.log").is_file()

    # What the analysis reads: each run once, finished, in the sweep's group, one per seed.
    runset = load_runs(folder, progress=False)
    assert len(runset.meta) == len(seeds)
    assert set(runset.meta["state"]) == {"finished"} and set(runset.meta["group"]) == {"killed"}
    assert sorted(runset.config["seed_everything"]) == seeds
    assert not runset.skipped
    assert len(wandb_files(folder)) == len(seeds)

    # The run cut short, rerun, has every epoch's numbers of an uninterrupted run of its seed.
    plan = json.loads((folder / "plan.json").read_text())
    (seed,) = [r["params"]["seed_everything"] for r in plan["runs"] if r["key"] == victim]
    reference = sweep_file(
        tmp_path,
        {"seed_everything": {"values": [seed]}},
        name="reference",
        extra=["--trainer.max_epochs=2", "--trainer.limit_train_batches=25"],
    )
    assert sweep_cli(str(reference), "--threads", "1").returncode == 0
    expected = load_runs(tmp_path / "sweeps" / "reference", progress=False)
    rerun = runset.config.index[runset.config["seed_everything"] == seed]
    columns = ["test/acc", "val/acc", "train/loss"]
    got = runset.history.xs(rerun[0], level="id")[columns]
    assert list(got.index) == [0, 1]
    pd.testing.assert_frame_equal(got, expected.history.xs(expected.ids[0], level="id")[columns])


def test_other_count_or_seed_in_a_sweep_folder_is_refused(
    tmp_path: Path, sweep_cli: Callable[..., InProcess]
) -> None:
    """A random sweep's draws depend on --count and --seed: other values are another sweep."""
    path = sweep_file(tmp_path, {"model.hidden_size": {"values": [8, 16, 32]}}, method="random")
    spec = load_sweep(path)
    folder = SweepFolder(tmp_path / "sweeps" / "tiny")
    folder.create(spec, plan_runs(spec, count=3, seed=5), {"count": 3, "seed": 5})
    plan = (folder.root / "plan.json").read_bytes()
    for flags, message in (
        (["--count", "4"], "was started with --count 3, not 4; rerun with the same options"),
        (["--seed", "6"], "was started with --seed 5, not 6; rerun with the same options"),
    ):
        refused = sweep_cli(str(path), "--dir", str(folder.root), *flags)
        assert refused.returncode == 2, flags
        (line,) = refused.stderr.strip().splitlines()
        assert line.startswith("error: ") and message in line
    assert (folder.root / "plan.json").read_bytes() == plan
    assert sorted(p.name for p in folder.root.iterdir() if p.name != ".lock") == [
        "plan.json",
        "sweep.yaml",
    ]


def test_a_failing_run_is_retried_and_its_logs_kept_while_others_go_on(
    tmp_path: Path, sweep_cli: Callable[..., InProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    # hidden_size -1 parses (an int); its run fails when it starts, as the model would: exit 2.
    refusal = "model.hidden_size must be a positive integer"
    launcher = use_children(
        monkeypatch,
        lambda request: (
            failing(refusal, 2) if "--model.hidden_size=-1" in request.argv else SUCCEED
        ),
    )
    path = sweep_file(tmp_path, {"model.hidden_size": {"values": [8, -1]}}, name="flaky")
    folder = tmp_path / "sweeps" / "flaky"
    result = sweep_cli(str(path), "--workers", "2", "--retry", "2")
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(launcher.requests) == 4 and launcher.closed
    runs = state(folder)
    good, bad = "0000-hidden_size=8", "0001-hidden_size=-1"
    assert runs[good]["status"] == "done" and len(runs[good]["attempts"]) == 1
    assert runs[bad]["status"] == "failed"
    assert [a["exit_code"] for a in runs[bad]["attempts"]] == [2, 2, 2]
    for number in (1, 2):
        log = folder / "attempts" / bad / f"{number}-failed" / "run.log"
        assert "model.hidden_size must be a positive integer" in log.read_text()
    assert "model.hidden_size must be a positive integer" in (folder / bad / "run.log").read_text()
    assert "retry 1/2" in result.stdout and f"failed: {bad}" in result.stdout

    # Running the sweep again tries the failed run again and leaves the finished one alone.
    again = sweep_cli(str(path), "--workers", "2")
    assert again.returncode == 1
    runs = state(folder)
    assert len(runs[bad]["attempts"]) == 4 and len(runs[good]["attempts"]) == 1

    # A different sweep file is refused in this folder, naming what differs.
    data = yaml.safe_load(path.read_text())
    data["parameters"]["model.hidden_size"]["values"] = [8, 16]
    path.write_text(yaml.safe_dump(data))
    refused = sweep_cli(str(path), "--dir", str(folder))
    assert refused.returncode == 2
    assert "refusing to mix two sweeps in one folder" in refused.stderr
    assert "(parameters)" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1


def test_each_run_gets_its_share_of_threads_and_an_attempt_tag(tmp_path: Path) -> None:
    from lightning_app.sweeps.runner import THREAD_VARS, run_environment, threads_per_run

    assert threads_per_run(2) == max(1, len(os.sched_getaffinity(0)) // 2)
    assert threads_per_run(64) == 1 and threads_per_run(2, threads=3) == 3
    env = run_environment(1, None, base={"WANDB_RUN_ID": "x", "PATH": "/bin"})
    assert all(env[name] == "1" for name in THREAD_VARS)
    # no --wandb-mode: nothing forced, each run applies the mode rule itself
    assert "WANDB_MODE" not in env and "WANDB_RUN_ID" not in env
    assert run_environment(1, None, base={"WANDB_MODE": "online"})["WANDB_MODE"] == "online"
    assert run_environment(1, "disabled", base={"WANDB_MODE": "online"})["WANDB_MODE"] == "disabled"
    assert ATTEMPT_TAG not in env  # added per attempt


def test_ctrl_c_stops_the_runs_and_records_them_interrupted(
    tmp_path: Path, sweep_cli: Callable[..., InProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[str] = []

    def ctrl_c_once_both_run(request: object) -> None:
        started.append(str(request))
        if len(started) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends the runner

    use_children(monkeypatch, lambda request: SLEEP, ctrl_c_once_both_run)
    path = sweep_file(tmp_path, {"seed_everything": {"values": [1, 2]}}, name="stopped")
    folder = tmp_path / "sweeps" / "stopped"
    result = sweep_cli(str(path), "--workers", "2")
    assert result.returncode == 130, result.stdout + result.stderr
    assert "run the same command again to finish the sweep" in result.stdout
    runs = state(folder)
    assert len(runs) == 2 and all(r["status"] == "pending" for r in runs.values())
    assert all(r["attempts"][-1]["pid"] for r in runs.values())
    assert all(r["attempts"][-1]["outcome"] == "interrupted" for r in runs.values())
    tags = [f"{folder.resolve()}/{key}#1" for key in runs]
    assert not any(tagged_processes(tag) for tag in tags)
