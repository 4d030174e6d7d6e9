"""Fixtures for training tests: the real command, real offline W&B files.

The command runs in this process (``cli``: tests/conftest.py's ``in_process``) with a tiny model
and few batches; tests marked ``process`` run it as a user does (``app``: ``python -m
lightning_app`` in a process of its own), one per journey. W&B files are decoded with ``wandb
leet inspect --json``, W&B's own decoder, so these tests do not depend on this project's history
reader.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "configs" / "quickstart.yaml"
# A very small run: tiny model, few batches, the whole (1,000 image) test split every epoch.
TINY = [
    f"--config={QUICKSTART}",
    "--model.hidden_size=16",
    "--trainer.max_epochs=2",
    "--trainer.limit_train_batches=8",
    "--trainer.enable_model_summary=false",
]
# TINY evaluated on 2 batches of each split: for tests that need a trained run, not its numbers.
QUICK = [*TINY, "--trainer.limit_val_batches=2", "--trainer.num_sanity_val_steps=0"]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_app(args: list[str], cwd: Path, timeout: float = 300, **env: str) -> Result:
    """Run ``python -m lightning_app ARGS`` as a user would, offline."""
    full_env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "PYTHONPATH": str(REPO),
        **env,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "lightning_app", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def app(tmp_path: Path) -> Callable[..., Result]:
    """``app(*args)`` runs the command in a fresh working directory."""

    def call(*args: str, **env: str) -> Result:
        return run_app(list(args), tmp_path, **env)

    return call


@pytest.fixture
def cli(in_process):
    """The training CLI in-process (see tests/conftest.py)."""
    return in_process()


@dataclass
class WandbRun:
    """A decoded offline run: its run record, config updates and history rows."""

    path: Path
    run: dict[str, Any]
    config: dict[str, Any]
    history: list[dict[str, Any]]

    def epochs(self) -> dict[int, dict[str, float]]:
        """History rows joined by epoch (Lightning logs val and train metrics in separate rows)."""
        joined: dict[int, dict[str, float]] = {}
        for row in self.history:
            if "epoch" in row:
                joined.setdefault(int(row["epoch"]), {}).update(row)
        return joined


def read_wandb(path: Path) -> WandbRun:
    """``path`` decoded by W&B's own reader (read again only when the file changed)."""
    stat = path.stat()
    return _read_wandb(path.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _read_wandb(path: Path, size: int, mtime_ns: int) -> WandbRun:
    out = subprocess.run(
        ["wandb", "leet", "inspect", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    run: dict[str, Any] = {}
    config: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    for line in out.splitlines():
        record = json.loads(line)
        kind = record.get("type")
        if kind == "run":
            run = record["run"]
        elif kind == "config":
            config.update(record["config"].get("update", {}))
        elif kind == "history":
            history.append(record["history"]["item"])
    return WandbRun(path, run, config, history)


def wandb_files(root: Path) -> list[Path]:
    return sorted(root.glob("wandb/offline-run-*/run-*.wandb"))
