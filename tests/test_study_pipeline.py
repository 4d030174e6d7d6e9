"""The whole study in miniature, as the README runs it: sweep -> train -> offline W&B -> analyze.

Slow (a few minutes): run with ``pytest -m slow``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from statsmodels.formula.api import ols
from statsmodels.stats.anova import anova_lm
from statsmodels.stats.multitest import multipletests

from lightning_app.runs import load_runs

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
@pytest.mark.process
def test_noise_and_signal_sweeps_to_report(tmp_path: Path) -> None:
    noise = write_sweep(
        tmp_path / "noise.yaml", "noise", {"seed_everything": {"values": list(range(6))}}
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
    assert report["noise"] == {"group": "noise", "runs": 6}
    assert report["signal"] == {"group": "signal", "runs": 8}
    assert report["skipped_runs"] == []
    assert (out / "report.md").read_text().count(".png") >= 3

    # Every number checked here is recomputed from the logged runs with pandas/statsmodels.
    runs = load_runs(tmp_path / "sweeps", progress=False)
    final = runs.history.xs(1, level="epoch")["test/acc"]
    groups = runs.meta.loc[final.index, "group"]
    noise_acc, signal_ids = final[groups == "noise"], final.index[groups == "signal"]
    baseline = report["analyses"]["noise-baseline"]
    assert baseline["final_epoch"] == 1 and len(baseline["per_epoch"]) == 2
    assert baseline["final_mean"] == pytest.approx(noise_acc.mean(), rel=1e-9)
    assert baseline["final_std"] == pytest.approx(noise_acc.std(ddof=1), rel=1e-9)
    assert baseline["final_range"] == pytest.approx(noise_acc.max() - noise_acc.min(), rel=1e-9)

    frame = pd.DataFrame(
        {
            "acc": final[signal_ids].to_numpy(),
            "hidden": runs.config.loc[signal_ids, "model.hidden_size"].to_numpy(),
            "layers": runs.config.loc[signal_ids, "model.num_layers"].to_numpy(),
        }
    )
    table = anova_lm(ols("acc ~ C(hidden) + C(layers)", data=frame).fit(), typ=2)
    p_values = [table.loc["C(hidden)", "PR(>F)"], table.loc["C(layers)", "PR(>F)"]]
    adjusted = multipletests(p_values, method="holm")[1]
    signal_effects = report["analyses"]["signal-effects"]
    assert signal_effects["error"] == "signal" and signal_effects["error_df"] == 5
    effects = signal_effects["params"]
    assert set(effects) == {"model.hidden_size", "model.num_layers"}
    for name, column, p_value, p_adjusted in zip(
        effects, ["hidden", "layers"], p_values, adjusted, strict=True
    ):
        means = frame.groupby(column)["acc"].mean()
        assert effects[name]["effect"] == pytest.approx(means.max() - means.min(), rel=1e-9)
        assert effects[name]["p_value"] == pytest.approx(p_value, rel=1e-6)
        assert effects[name]["p_adjusted"] == pytest.approx(p_adjusted, rel=1e-6)
    # hidden 4 vs 32 after 60 steps is a large effect, far above seed noise: significant after
    # Holm on (1, 5) df and more than 5x its noise effect, so the verdict is "signal".
    hidden = effects["model.hidden_size"]
    assert hidden["p_adjusted"] < 0.05 and hidden["ratio"] >= 5
    assert hidden["verdict"] == "signal"
    assert signal_effects["variance_check"]["source"] == "replicates"
    needed = report["analyses"]["runs-needed"]["params"]
    assert {"effect", "runs_per_group", "alpha", "power"} <= set(needed["model.hidden_size"])
