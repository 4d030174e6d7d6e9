"""Simulated noise and signal sweeps with planted effects, for tests, benchmarks and demos.

A run's metric follows ``ceiling - (ceiling - start) * exp(-epoch / tau)`` plus seed noise: a
per-run offset that persists over epochs (a seed gives a better or worse model) and a smaller
per-epoch jitter. A parameter's planted effect shifts the ceiling of the runs with each value by
a known amount, so the true group-mean effect is known exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from lightning_app.runs.runset import Run, RunSet


def simulate_runset(
    grid: Mapping[str, Sequence[Any]],
    *,
    effects: Mapping[str, Mapping[Any, float]] | None = None,
    noise_runs: int = 30,
    replicates: int = 1,
    epochs: int = 10,
    ceiling: float = 0.97,
    start: float = 0.6,
    tau: float = 2.0,
    speed_effects: Mapping[str, Mapping[Any, float]] | None = None,
    seed_std: float = 0.002,
    jitter_std: float = 0.0005,
    start_std: float = 0.01,
    metric: str = "test/acc",
    defaults: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> RunSet:
    """Noise runs (group ``noise``, defaults fixed, seed varies) and a full grid (group ``signal``).

    ``effects[param][value]`` adds to the ceiling of runs with that value; ``speed_effects``
    multiplies ``tau`` (a slower start, so the early epochs spread more). Every run also gets
    config keys that differ per run (``trainer.default_root_dir``, ``wandb.name``), which must
    never be taken for parameters. ``replicates`` repeats each grid point with new seeds.
    """
    rng = np.random.default_rng(seed)
    effects = effects or {}
    speed_effects = speed_effects or {}
    names = list(grid)
    base = dict(defaults or {name: values[0] for name, values in grid.items()})
    points = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]
    configs: list[tuple[str, dict[str, Any]]] = [("noise", dict(base)) for _ in range(noise_runs)]
    configs += [("signal", p) for p in points for _ in range(replicates)]
    n = len(configs)
    shift = np.array(
        [sum(effects.get(k, {}).get(v, 0.0) for k, v in c.items()) for _, c in configs]
    )
    speed = np.array(
        [np.prod([speed_effects.get(k, {}).get(v, 1.0) for k, v in c.items()]) for _, c in configs]
    )
    e = np.arange(epochs, dtype=float)
    top = ceiling + shift + rng.normal(0.0, seed_std, n)
    low = start + rng.normal(0.0, start_std, n)
    curve = top[:, None] - (top - low)[:, None] * np.exp(-e[None, :] / (tau * speed[:, None]))
    values = np.clip(curve + rng.normal(0.0, jitter_std, (n, epochs)), 0.0, 1.0)
    loss = -np.log(np.clip(values, 1e-6, 1.0))
    runs = []
    for i, (group, config) in enumerate(configs):
        run_id = f"{group}-{i:05d}"
        history = pd.DataFrame(
            {metric: values[i], "val/acc": values[i], "train/loss": loss[i]},
            index=pd.Index(np.arange(epochs), name="epoch"),
        )
        full = {
            **config,
            "seed_everything": int(i) if group == "noise" else 42,
            "trainer.max_epochs": epochs,
            "trainer.default_root_dir": f"runs/{run_id}",
            "wandb.name": run_id,
        }
        runs.append(Run(id=run_id, name=run_id, group=group, config=full, history=history))
    return RunSet.from_runs(runs)


def runset_from_arrays(
    noise: np.ndarray,
    signal: np.ndarray,
    signal_configs: Sequence[Mapping[str, Any]],
    *,
    metric: str = "test/acc",
    epochs: Sequence[int] | None = None,
) -> RunSet:
    """Noise and signal runs whose ``metric`` is exactly the given (runs x epochs) arrays."""
    noise = np.atleast_2d(np.asarray(noise, dtype=float))
    signal = np.atleast_2d(np.asarray(signal, dtype=float))
    epochs = list(range(noise.shape[1])) if epochs is None else list(epochs)
    runs = []
    for i, row in enumerate(noise):
        runs.append(
            _run(
                f"n{i}",
                "noise",
                {
                    "model.hidden_size": 128,
                    "seed_everything": i,
                    "trainer.default_root_dir": f"runs/n{i}",
                },
                row,
                epochs,
                metric,
            )
        )
    for i, (row, config) in enumerate(zip(signal, signal_configs, strict=True)):
        full = {"seed_everything": 42, "trainer.default_root_dir": f"runs/s{i}", **config}
        runs.append(_run(f"s{i}", "signal", full, row, epochs, metric))
    return RunSet.from_runs(runs)


def _run(
    run_id: str, group: str, config: dict[str, Any], row: np.ndarray, epochs: list[int], metric: str
) -> Run:
    history = pd.DataFrame({metric: row}, index=pd.Index(epochs, name="epoch"))
    return Run(id=run_id, name=run_id, group=group, config=config, history=history)
