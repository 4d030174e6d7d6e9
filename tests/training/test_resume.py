"""A run resumed with --ckpt_path last ends like an uninterrupted one.

The reference and the resumed commands run in this process; the run that is killed by SIGKILL
runs in a process of its own (the one test marked ``process``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from lightning_app.runs import load_runs
from tests.training.conftest import REPO, TINY, read_wandb, wandb_files

ARGS = [*TINY, "--trainer.max_epochs=4", "--trainer.limit_train_batches=30"]
# In this process: 3 short epochs evaluated on a few batches of each split.
SHORT = [*TINY, "--trainer.max_epochs=3", "--trainer.limit_val_batches=3"]


def parts_of(root: Path, run_id: str) -> list[Path]:
    """The offline files named after ``run_id`` (a resumed run writes a second folder)."""
    return [file for file in wandb_files(root) if file.stem == f"run-{run_id}"]


def test_resume_of_a_stopped_run_continues_its_id_and_history(cli, tmp_path: Path) -> None:
    """A run stopped after 1 of 3 epochs (its own ``max_epochs``), resumed: one run, the same
    id, every epoch equal to an uninterrupted run's."""
    assert cli("fit", *SHORT, "--run_dir=ref").returncode == 0
    stopped = cli("fit", *SHORT, "--run_dir=cut", "--trainer.max_epochs=1")
    assert stopped.returncode == 0, stopped.stderr
    cut_id = (tmp_path / "cut" / "wandb_id").read_text().strip()
    resumed = cli("fit", *SHORT, "--run_dir=cut", "--ckpt_path=last")
    assert resumed.returncode == 0, resumed.stderr

    assert (tmp_path / "cut" / "wandb_id").read_text().strip() == cut_id
    parts = parts_of(tmp_path, cut_id)
    assert len(parts) == 2 and all(read_wandb(p).run["run_id"] == cut_id for p in parts)
    ref_id = (tmp_path / "ref" / "wandb_id").read_text().strip()
    runs = load_runs(tmp_path, progress=False)
    assert sorted(runs.ids) == sorted([ref_id, cut_id]) and not runs.skipped
    cut, ref = runs.run(cut_id), runs.run(ref_id)
    assert cut.state == "finished"
    assert list(cut.history.index) == list(ref.history.index) == [0, 1, 2]
    columns = ["test/acc", "val/acc", "train/loss"]
    pd.testing.assert_frame_equal(cut.history[columns], ref.history[columns])
    assert sorted(p.name for p in (tmp_path / "cut").glob("config*.yaml")) == [
        "config-2.yaml",
        "config.yaml",
    ]


@pytest.mark.process
def test_resume_after_sigkill_matches_uninterrupted(cli, tmp_path: Path) -> None:
    """Same W&B id before and after the kill, and every epoch equal to an uninterrupted run's."""
    assert cli("fit", *ARGS, "--run_dir=ref").returncode == 0

    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lightning_app", "fit", *ARGS, "--run_dir=cut"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    last = tmp_path / "cut" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    cut_id = (tmp_path / "cut" / "wandb_id").read_text().strip()  # the id the killed run had
    (killed_part,) = parts_of(tmp_path, cut_id)

    resumed = cli("fit", *ARGS, "--run_dir=cut", "--ckpt_path=last")
    assert resumed.returncode == 0, resumed.stderr

    assert (tmp_path / "cut" / "wandb_id").read_text().strip() == cut_id
    parts = parts_of(tmp_path, cut_id)
    assert len(parts) == 2 and killed_part in parts
    # The resumed part carries the id; the killed one too, if wandb wrote its run record
    # before the kill (wandb-core buffers its writes for seconds).
    assert read_wandb(parts[1]).run["run_id"] == cut_id
    assert read_wandb(parts[0]).run.get("run_id", cut_id) == cut_id
    # The project's reader merges the two parts into one run equal to the uninterrupted one.
    ref_id = (tmp_path / "ref" / "wandb_id").read_text().strip()
    runs = load_runs(tmp_path, progress=False)
    assert sorted(runs.ids) == sorted([ref_id, cut_id]) and not runs.skipped
    cut, ref = runs.run(cut_id), runs.run(ref_id)
    assert cut.state == "finished"
    assert list(ref.history.index) == [0, 1, 2, 3]
    # Every epoch after the checkpoint comes from the resumed part; the epoch the checkpoint
    # holds is in the history only if wandb-core wrote it before the kill (it buffers its file
    # writes for seconds, and a SIGKILL right after the checkpoint often loses them).
    epochs = list(cut.history.index)
    assert epochs in ([0, 1, 2, 3], [1, 2, 3]), epochs
    columns = ["test/acc", "val/acc", "train/loss"]
    pd.testing.assert_frame_equal(cut.history[columns], ref.history.loc[epochs, columns])
    # The killed run's config is kept; the resumed command's config sits beside it.
    assert sorted(p.name for p in (tmp_path / "cut").glob("config*.yaml")) == [
        "config-2.yaml",
        "config.yaml",
    ]
