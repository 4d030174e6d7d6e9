"""A run killed by SIGKILL and resumed with --ckpt_path last ends like an uninterrupted one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.training.conftest import REPO, TINY, read_wandb, wandb_files

ARGS = [*TINY, "--trainer.max_epochs=4", "--trainer.limit_train_batches=30"]


def final_row(tmp_path: Path, run_id: str) -> dict[str, float]:
    """The last epoch logged under ``run_id`` (a resumed run writes a second offline folder)."""
    rows: dict[int, dict[str, float]] = {}
    for file in wandb_files(tmp_path):
        if file.stem == f"run-{run_id}":
            for epoch, row in read_wandb(file).epochs().items():
                rows.setdefault(epoch, {}).update(row)
    return rows[max(rows)]


def test_resume_after_sigkill_matches_uninterrupted(app, tmp_path: Path) -> None:
    assert app("fit", *ARGS, "--run_dir=ref").returncode == 0

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

    resumed = app("fit", *ARGS, "--run_dir=cut", "--ckpt_path=last")
    assert resumed.returncode == 0, resumed.stderr

    ref_id = (tmp_path / "ref" / "wandb_id").read_text().strip()
    cut_id = (tmp_path / "cut" / "wandb_id").read_text().strip()
    expected, got = final_row(tmp_path, ref_id), final_row(tmp_path, cut_id)
    assert got["epoch"] == expected["epoch"] == 3
    for key in ("test/acc", "val/acc", "train/loss"):
        assert got[key] == expected[key], key
    # The killed run's config is kept; the resumed command's config sits beside it.
    assert sorted(p.name for p in (tmp_path / "cut").glob("config*.yaml")) == [
        "config-2.yaml",
        "config.yaml",
    ]
