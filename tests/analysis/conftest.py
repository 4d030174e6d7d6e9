"""Synthetic sweeps with planted effects shared by the analysis tests."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench.simulation.synthetic import simulate_runset
from lightning_app.runs.runset import RunSet

GRID = {
    "model.hidden_size": [10, 20, 40, 80],
    "data.batch_size": [64, 128, 256],
    "model.num_layers": [2, 3],
}
HIDDEN_EFFECT = {10: -0.012, 20: -0.004, 40: 0.0, 80: 0.003}  # planted range: 1.5 points
BATCH_EFFECT = {64: 0.0015, 128: 0.0, 256: -0.0015}  # planted range: 0.3 points


DEFAULTS = {"model.hidden_size": 40, "data.batch_size": 128, "model.num_layers": 2}


@pytest.fixture(autouse=True)
def no_full_collection_in_multipletests(monkeypatch: pytest.MonkeyPatch) -> None:
    """statsmodels' ``multipletests`` runs a full ``gc.collect()`` on every Holm call
    (``import gc`` inside statsmodels/stats/multitest.py): 0.1-0.3 s each in a test process
    with a large heap, and epoch-dynamics and the cross-checks call it hundreds of times. An
    explicit full collection changes no number (the automatic collector still runs), so these
    tests make it a no-op."""
    monkeypatch.setattr(gc, "collect", lambda generation=2: 0)


@pytest.fixture(scope="session")
def planted() -> RunSet:
    """The study in miniature: hidden size matters, batch size a little, layers not at all.

    Every run converges (tau = 1 over 8 epochs), so the final group-mean effects are the planted
    ceiling shifts plus seed noise (std 0.15 points).
    """
    return simulate_runset(
        GRID,
        effects={"model.hidden_size": HIDDEN_EFFECT, "data.batch_size": BATCH_EFFECT},
        noise_runs=60,
        replicates=2,
        epochs=8,
        tau=1.0,
        seed_std=0.0015,
        defaults=DEFAULTS,
        seed=1,
    )


@pytest.fixture(scope="session")
def slow_start() -> RunSet:
    """Hidden size also sets how fast a run learns: the signal runs spread most early on."""
    return simulate_runset(
        GRID,
        effects={"model.hidden_size": HIDDEN_EFFECT},
        speed_effects={"model.hidden_size": {10: 4.0, 20: 2.0, 40: 1.0, 80: 0.7}},
        noise_runs=48,
        epochs=10,
        tau=1.5,
        start_std=0.005,
        defaults=DEFAULTS,
        seed=2,
    )


WRITE_RUNS = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    import wandb

    out = sys.argv[1]
    rng = np.random.default_rng(0)
    hidden_effect = {16: -0.01, 32: 0.0, 64: 0.004}
    specs = [("noise", 32, 100, seed) for seed in range(10)]
    specs += [("signal", h, b, 42) for h in (16, 32, 64) for b in (50, 100) for _ in range(2)]
    for i, (group, hidden, batch, seed) in enumerate(specs):
        name = f"{group}-{i}"
        config = {
            "seed_everything": seed,
            "model": {"hidden_size": hidden, "num_layers": 2, "learning_rate": 0.001},
            "data": {"batch_size": batch},
            "trainer": {"max_epochs": 4, "default_root_dir": f"runs/{name}"},
        }
        run = wandb.init(mode="offline", dir=out, project="lightning_app", group=group,
                         name=name, config=config, reinit="create_new")
        top = 0.97 + hidden_effect[hidden] + rng.normal(0, 0.0015)
        for epoch in range(4):
            acc = top - 0.3 * np.exp(-2.0 * epoch) + rng.normal(0, 0.0005)
            run.log({"epoch": epoch, "test/acc": acc, "val/acc": acc,
                     "train/loss": -np.log(acc)})
        run.finish()
    """
)


@pytest.fixture(scope="session")
def wandb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """22 offline W&B runs as training writes them: nested config, one group per sweep."""
    root = tmp_path_factory.mktemp("wandb-runs")
    script = root / "write_runs.py"
    script.write_text(WRITE_RUNS)
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    subprocess.run([sys.executable, str(script), str(root)], check=True, env=env, timeout=120)
    return root / "wandb"
