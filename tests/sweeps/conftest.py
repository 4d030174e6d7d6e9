"""Fixtures for sweep tests: sweep files around a tiny training run, the real command.

Runs are real ``python -m lightning_app fit`` processes (offline W&B) on the mnist-5k quickstart
config cut down to seconds; the runner is started as a user would, in a subprocess, wherever its
process matters (kill -9, retries), and in-process for input checks (no start-up cost).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import InProcess

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "configs" / "quickstart.yaml"
TINY_ARGS = [
    "--model.hidden_size=8",
    "--trainer.max_epochs=1",
    "--trainer.limit_train_batches=3",
    "--trainer.limit_val_batches=2",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]


def sweep_file(
    folder: Path,
    parameters: dict[str, Any],
    *,
    name: str = "tiny",
    method: str = "grid",
    extra: list[str] | None = None,
    **top: Any,
) -> Path:
    """Write a sweep file running the tiny training command; ``top`` adds top-level keys."""
    data = {
        "name": name,
        "method": method,
        "parameters": parameters,
        "command": [
            "${env}",
            "${interpreter}",
            "-m",
            "lightning_app",
            "fit",
            "--config",
            str(QUICKSTART),
            f"--wandb.group={name}",
            *TINY_ARGS,
            *(extra or []),
            "${args}",
        ],
        **top,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def app_env() -> dict[str, str]:
    return {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONPATH": str(REPO)}


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_sweep(args: list[str], cwd: Path, timeout: float = 240) -> Result:
    """``python -m lightning_app sweep ARGS`` in a subprocess, as a user runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "lightning_app", "sweep", *args],
        cwd=cwd,
        env=app_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def start_sweep(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lightning_app", "sweep", *args],
        cwd=cwd,
        env=app_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def sweep_cli(in_process: Callable[..., InProcess], monkeypatch: pytest.MonkeyPatch) -> InProcess:
    """``python -m lightning_app sweep ...`` in-process (see tests/conftest.py); the runs it
    starts import this checkout's code, as those of :func:`run_sweep` do."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("WANDB_SILENT", "true")
    return in_process("sweep")


def config_value(config: Any, name: str) -> Any:
    """A sweep key's value (``model.hidden_size``) in a parsed or printed config, where the
    model's and DataModule's arguments sit under ``init_args`` (LightningCLI's subclass mode)."""
    node = config
    for part in name.split("."):
        if part not in node and "init_args" in node:
            node = node["init_args"]
        node = node[part]
    return node
