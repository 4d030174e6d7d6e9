"""Bad analysis input through the real command: one line naming the problem, exit status 2.

Each case is a small tidy CSV (a source as ``export`` writes it) with one thing wrong. The cases
run through ``python -m lightning_app``'s own dispatcher in-process (``in_process``: the same
code, the same exit status and stderr, without an interpreter start-up each); one runs as a real
subprocess to show the path from a data problem found deep in the analysis to the exit status.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]


def write_source(
    path: Path, *, noise_runs: int = 4, identical: bool = False, confounded: bool = False
) -> Path:
    """Noise runs (seeds vary) and a 2 x 2 signal grid with 2 seeds per cell, 2 epochs each."""
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []

    def add(run_id: str, group: str, hidden: int, batch: int, seed: int) -> None:
        final = 0.9 if identical and group == "noise" else 0.9 + rng.normal(0, 0.01)
        for epoch, acc in enumerate((final - 0.2, final)):
            rows.append(
                {
                    "id": run_id, "group": group, "epoch": epoch, "test/acc": acc,
                    "config.model.hidden_size": hidden, "config.data.batch_size": batch,
                    "config.model.num_layers": 2, "config.seed_everything": seed,
                }
            )  # fmt: skip

    for seed in range(noise_runs):
        add(f"n{seed}", "noise", 32, 50, seed)
    for hidden in (16, 32):
        for batch in (50, 100):
            for seed in (0, 1):
                if confounded and batch != (50 if hidden == 16 else 100):
                    continue  # batch size follows hidden size: the two cannot be told apart
                add(f"s{hidden}-{batch}-{seed}", "signal", hidden, batch, seed)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


CASES: dict[str, tuple[dict[str, Any], list[str], str]] = {
    "unknown group": ({}, ["--signal", "sweep"], "--signal: no runs in group 'sweep'"),
    "two noise runs": ({"noise_runs": 2}, [], "only 2 noise run(s) in group 'noise'"),
    "identical noise": ({"identical": True}, [], "all 4 noise runs have the same 'test/acc'"),
    "unknown metric": ({}, ["--metric", "val/loss"], "--metric: no run logged 'val/loss'"),
    "unknown parameter": ({}, ["--params", "model.hiden_size"], "no signal run has config key"),
    "single value": ({}, ["--params", "model.num_layers"], "has the single value 2 across all"),
    "seed as parameter": ({}, ["--params", "seed_everything"], "'seed_everything' is a seed"),
    "confounded": (
        {"confounded": True},
        ["--params", "model.hidden_size,data.batch_size"],
        "confounded parameters: model.hidden_size and data.batch_size",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_exit_2(case: str, in_process, tmp_path: Path) -> None:
    data, argv, message = CASES[case]
    source = write_source(tmp_path / "runs.csv", **data)
    result = in_process("analyze")(
        "--source", str(source), "--noise", "noise", "--signal", "signal",
        "--out", str(tmp_path / "report"), *argv,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "report").exists()  # no half report beside the error


@pytest.mark.process
def test_a_data_problem_ends_the_real_command_with_exit_2(tmp_path: Path) -> None:
    source = write_source(tmp_path / "runs.csv", confounded=True)
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [
            sys.executable, "-m", "lightning_app", "analyze", "--source", str(source),
            "--noise", "noise", "--signal", "signal", "--out", str(tmp_path / "report"),
            "--params", "model.hidden_size,data.batch_size",
        ],
        capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: confounded parameters: model.hidden_size and data.batch_size")
    assert not (tmp_path / "report").exists()
