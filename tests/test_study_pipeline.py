"""The whole study in miniature, as the README runs it: sweep -> train -> offline W&B -> analyze.

Slow (a few minutes): run with ``pytest -m slow``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TRAIN = [
    "${env}", "${interpreter}", "-m", "lightning_app", "fit",
    "--config", str(REPO / "configs/quickstart.yaml"),
    "--trainer.max_epochs=2", "--trainer.limit_train_batches=30",
    "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
]  # fmt: skip


def write_sweep(path: Path, name: str, parameters: dict) -> Path:
    spec = {
        "name": name,
        "method": "grid",
        "parameters": parameters,
        "command": [*TRAIN, f"--wandb.group={name}", "${args}"],
    }
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def app(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "lightning_app", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip


@pytest.mark.slow
def test_noise_and_signal_sweeps_to_report(tmp_path: Path) -> None:
    noise = write_sweep(
        tmp_path / "noise.yaml", "noise", {"seed_everything": {"values": [0, 1, 2, 3]}}
    )
    signal = write_sweep(
        tmp_path / "signal.yaml",
        "signal",
        {
            "model.hidden_size": {"values": [4, 32]},
            "model.num_layers": {"values": [1, 2]},
            "seed_everything": {"values": [0, 1]},  # replicates: never a parameter
        },
    )
    for sweep in (noise, signal):
        result = app("sweep", str(sweep), "--workers", "2", cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr

    out = tmp_path / "report"
    result = app(
        "analyze", "--source", "sweeps/", "--noise", "noise", "--signal", "signal",
        "--out", str(out), "--permutations", "2000", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr

    report = json.loads((out / "report.json").read_text())
    assert report["metric"] == "test/acc"
    assert report["noise"] == {"group": "noise", "runs": 4}
    assert report["signal"] == {"group": "signal", "runs": 8}
    assert report["skipped_runs"] == []
    baseline = report["analyses"]["noise-baseline"]
    assert baseline["final_epoch"] == 1
    assert {"epoch", "mean", "std", "min", "max"} <= set(baseline["per_epoch"][0])
    assert 0 < baseline["final_mean"] < 1 and baseline["final_range"] >= 0
    effects = report["analyses"]["signal-effects"]["params"]
    assert set(effects) == {"model.hidden_size", "model.num_layers"}
    for entry in effects.values():
        assert {"effect", "noise_effect", "ratio", "p_value", "verdict"} <= set(entry)
        assert 0 < entry["p_value"] <= 1
    needed = report["analyses"]["runs-needed"]["params"]
    assert {"effect", "runs_per_group", "alpha", "power"} <= set(needed["model.hidden_size"])
    # hidden 4 vs 32 after 60 steps is a large effect, far above seed noise: the F test on
    # (1, 5) df finds it after Holm, and the replicates feed the seed-noise check.
    signal_effects = report["analyses"]["signal-effects"]
    assert signal_effects["error"] == "signal" and signal_effects["error_df"] == 5
    assert effects["model.hidden_size"]["p_adjusted"] < 0.05
    assert effects["model.hidden_size"]["verdict"] in {"signal", "weak"}
    assert signal_effects["variance_check"]["source"] == "replicates"
    assert (out / "report.md").read_text().count(".png") >= 3
