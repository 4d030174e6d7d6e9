"""Fixtures for the run-history tests: real offline W&B runs, written once per session.

The runs are written by the real ``wandb`` client (``tests/runs/wandb_writer.py``, in a subprocess),
logging like Lightning's WandbLogger: the nested LightningCLI config as the run config, ``group`` =
sweep name, and ``epoch``, ``train/loss``, ``val/acc``, ``test/acc`` in separate rows per epoch.
Tests that damage files work on copies (``wandb_copy``), never on the session's originals.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import RUN_SPECS, WandbRuns

WRITER = Path(__file__).with_name("wandb_writer.py")


@pytest.fixture(scope="session")
def wandb_runs(tmp_path_factory: pytest.TempPathFactory) -> WandbRuns:
    out = tmp_path_factory.mktemp("wandb-runs")
    specs_file = out / "specs.json"
    names = list(RUN_SPECS)
    specs_file.write_text(json.dumps([RUN_SPECS[n] for n in names]))
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    proc = subprocess.run(
        [sys.executable, str(WRITER), str(out), str(specs_file)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ids = json.loads(proc.stdout.strip().splitlines()[-1])
    specs_file.unlink()
    return WandbRuns(out / "wandb", dict(zip(names, ids, strict=True)))


@pytest.fixture
def wandb_copy(wandb_runs: WandbRuns, tmp_path: Path):
    """Copy some of the session's run folders into a fresh ``wandb/`` to damage or rearrange."""

    def copy(*names: str, dest: Path | None = None) -> Path:
        target = dest or tmp_path / "wandb"
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            src = wandb_runs.run_dir(name)
            shutil.copytree(src, target / src.name, symlinks=True, dirs_exist_ok=True)
        return target

    return copy
