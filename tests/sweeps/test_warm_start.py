"""Warm run start: runs forked from a preloaded parent behave and score exactly like cold runs.

Real processes throughout: a real preloaded parent (``python -m lightning_app.sweeps.warm``),
real tiny training runs with offline W&B, read back with the project's own reader. Every other
sweep test runs warm too (it is the default on Linux), which covers kill -9 of the runner,
resume, retries and failed runs through the real command.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lightning_app.runs.sources import load_runs
from lightning_app.sweeps.launch import Launcher, Resources, RunProcess, RunRequest
from lightning_app.sweeps.runner import run_environment
from lightning_app.sweeps.warm import WarmLauncher, WarmProcess, WarmStartError
from tests.conftest import InProcess
from tests.sweeps.conftest import QUICKSTART, REPO, TINY_ARGS, sweep_file

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="warm start: Linux")


def fit_argv(run_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "lightning_app",
        "fit",
        "--config",
        str(QUICKSTART),
        *TINY_ARGS,
        f"--run_dir={run_dir}",
        f"--wandb.dir={run_dir}",
        *extra,
    ]


def environment() -> dict[str, str]:
    env = run_environment(1, "offline")
    env.update(WANDB_SILENT="true", PYTHONPATH=str(REPO))
    return env


def start(launcher: Launcher, run_dir: Path, *extra: str) -> RunProcess:
    run_dir.mkdir(parents=True)
    argv = tuple(fit_argv(run_dir, *extra))
    request = RunRequest(run_dir.name, 1, argv, environment(), run_dir / "run.log", Resources(1.0))
    return launcher.start(request)


def parent_pid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.process
def test_a_warm_run_is_a_fork_with_a_cold_runs_numbers_and_a_killed_run_dies_alone(
    tmp_path: Path,
) -> None:
    """One preloaded parent: a fork that scores like a cold run, a killed fork that takes no
    other run with it, a dead parent that takes its runs with it, then cold starts."""
    notes: list[str] = []
    warm = WarmLauncher(environment(), note=notes.append)
    same = ("--trainer.max_epochs=2", "--seed_everything=7")
    long_run = ("--trainer.max_epochs=1000", "--trainer.limit_train_batches=1000")
    try:
        warm.begin()
        assert not warm.ready()  # importing: the runner's loop goes on (Ctrl-C, progress)
        forked = start(warm, tmp_path / "warm", *same)
        assert isinstance(forked, WarmProcess)
        zygote = warm._parent
        assert zygote is not None
        assert parent_pid(forked.pid) == zygote.pid  # forked by the preloaded parent ...
        assert os.getpgid(forked.pid) == forked.pid  # ... in its own session and group
        assert forked.wait(timeout=300) == 0

        first = start(warm, tmp_path / "first", *long_run)
        second = start(warm, tmp_path / "second", *long_run)
        assert second.pid is not None
        warm.signal(first, signal.SIGKILL)  # as an OOM kill would
        assert first.wait(timeout=60) == -signal.SIGKILL
        time.sleep(1.0)
        assert second.poll() is None and alive(second.pid)  # the other run goes on

        os.kill(zygote.pid, signal.SIGKILL)  # the preloaded parent dies: its runs die with it
        assert second.wait(timeout=60) == -signal.SIGKILL
        deadline = time.monotonic() + 30
        while alive(second.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(second.pid)
        assert len(notes) == 1 and "warm start off" in notes[0]

        cold = start(warm, tmp_path / "cold", *same)
        assert not isinstance(cold, WarmProcess)  # started cold from now on
        assert cold.wait(timeout=300) == 0
    finally:
        warm.close()

    histories = {}
    for side in ("warm", "cold"):
        runs = list(load_runs(tmp_path / side, progress=False))
        assert len(runs) == 1, side
        histories[side] = runs[0].history
        assert (tmp_path / side / "config.yaml").is_file()
        log = (tmp_path / side / "run.log").read_text()
        assert "`Trainer.fit` stopped: `max_epochs=2` reached." in log
    assert set(histories["warm"]) == set(histories["cold"]) >= {"train/loss", "val/acc"}
    for metric, values in histories["cold"].items():
        assert len(values) == 2
        np.testing.assert_array_equal(histories["warm"][metric], values, err_msg=metric)


def test_a_parent_that_cannot_preload_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    # torch is the first module the parent preloads: the failure comes at once
    (broken / "torch.py").write_text("raise ImportError('this torch is broken on purpose')\n")
    env = {**environment(), "PYTHONPATH": os.pathsep.join([str(broken), str(REPO)])}
    warm = WarmLauncher(env)
    with pytest.raises(WarmStartError, match="this torch is broken on purpose") as raised:
        warm.prepare()
    warm.close()
    assert warm.log is not None and str(warm.log) in str(raised.value)
    assert "ImportError" in warm.log.read_text()  # the parent's traceback is kept for the user
    warm.log.unlink()


def test_start_options_are_checked_before_any_run(
    sweep_cli: InProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = sweep_file(tmp_path, {"seed_everything": {"values": [1]}})
    result = sweep_cli(str(path), "--cold", "--warm", "--dry-run")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --cold and --warm contradict each other; give one of them"
    ]
    monkeypatch.setenv("LIGHTNING_APP_START", "lukewarm")
    result = sweep_cli(str(path), "--dry-run")
    assert result.returncode == 2
    assert "$LIGHTNING_APP_START='lukewarm': expected cold or warm" in result.stderr
    assert not (tmp_path / "sweeps").exists()
