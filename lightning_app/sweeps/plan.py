"""Expand a sweep into its runs: every grid point, or ``count`` random draws.

The grid is enumerated as W&B's grid search does (parameters sorted by name, the last one varying
fastest), so run ``i`` here is the ``i``-th run W&B's server would hand out. Random draws come
from a seeded numpy generator and are stored in the sweep folder once drawn, so a restarted sweep
runs the same configurations whatever numpy version it meets.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lightning_app.errors import UserError
from lightning_app.sweeps.spec import GRID_KINDS, SweepParameter, SweepSpec

LARGE_SWEEP = 1000
"""A sweep with more runs than this starts only with ``--yes``."""


@dataclass(frozen=True)
class PlannedRun:
    """One run of the sweep: its position, folder name and parameter values (sorted by name)."""

    index: int
    key: str
    params: dict[str, Any]


def grid_size(parameters: Sequence[SweepParameter]) -> int:
    """Number of grid points, without listing them."""
    return math.prod(p.grid_size() for p in parameters)


def plan_runs(
    spec: SweepSpec, *, count: int | None = None, seed: int = 0, yes: bool = False
) -> list[PlannedRun]:
    """The sweep's runs in the order they start.

    Args:
        spec: the checked sweep file.
        count: run at most this many (random: required unless the file has ``run_cap``).
        seed: seed of the random search's draws (not of the training runs).
        yes: allow more than :data:`LARGE_SWEEP` runs.
    """
    limits = [n for n in (count, spec.run_cap) if n is not None]
    if count is not None and count < 1:
        raise UserError(f"--count must be positive, got {count}")
    if spec.method == "grid":
        for param in spec.parameters:
            if param.distribution not in GRID_KINDS:
                raise UserError(
                    f"{spec.path}: parameters.{param.name}: a grid needs value, values, "
                    f"int_uniform or q_uniform, not {param.distribution} (use method: random "
                    "to draw from a distribution)"
                )
            if param.grid_size() == 0:
                raise UserError(f"{spec.path}: parameters.{param.name} gives no grid values")
        full = grid_size(spec.parameters)
        total = min([full, *limits])
        sizes = " x ".join(str(p.grid_size()) for p in spec.parameters)
        _check_size(total, yes, f"the grid has {full:,} runs ({sizes})", spec)
        combos: Iterator[tuple[Any, ...]] = itertools.islice(
            itertools.product(*(_lazy_values(p) for p in spec.parameters)), total
        )
        points = [dict(zip((p.name for p in spec.parameters), c, strict=True)) for c in combos]
    else:
        if not limits:
            raise UserError(
                f"{spec.path}: a random sweep needs a number of runs: run_cap in the file "
                "or --count N"
            )
        total = min(limits)
        _check_size(total, yes, f"the random sweep has {total:,} runs", spec)
        rng = np.random.default_rng(seed)
        points = [{p.name: sample(p, rng) for p in spec.parameters} for _ in range(total)]
    width = max(4, len(str(len(points) - 1)))
    varying = [p.name for p in spec.parameters if p.distribution != "constant"]
    labels = _short_names(varying)
    return [
        PlannedRun(i, run_key(i, width, {labels[n]: point[n] for n in varying}), point)
        for i, point in enumerate(points)
    ]


def _check_size(total: int, yes: bool, what: str, spec: SweepSpec) -> None:
    if total > LARGE_SWEEP and not yes:
        raise UserError(
            f"{spec.path}: {what}; more than {LARGE_SWEEP:,} runs start only with --yes "
            "(or run fewer with --count N)"
        )


def _lazy_values(param: SweepParameter) -> Iterator[Any]:
    cfg = param.config
    if param.distribution == "int_uniform":
        return iter(range(cfg["min"], cfg["max"] + 1))
    if param.distribution == "q_uniform":
        return (cfg["min"] + i * cfg["q"] for i in range(param.grid_size()))
    return iter(param.grid_values())


def sample(param: SweepParameter, rng: np.random.Generator) -> Any:
    """One draw from ``param``'s distribution, with W&B's meaning of each distribution."""
    cfg = param.config
    kind = param.distribution
    if kind == "constant":
        return cfg["value"]
    if kind == "categorical":
        return cfg["values"][int(rng.integers(len(cfg["values"])))]
    if kind == "categorical_w_probabilities":
        probs = np.asarray(cfg["probabilities"], dtype=float)
        return cfg["values"][int(rng.choice(len(probs), p=probs / probs.sum()))]
    if kind == "int_uniform":
        return int(rng.integers(cfg["min"], cfg["max"] + 1))
    if kind in ("uniform", "q_uniform"):
        value = float(rng.uniform(cfg["min"], cfg["max"]))
    elif kind in ("log_uniform", "q_log_uniform"):  # min, max are exponents of e
        value = math.exp(rng.uniform(cfg["min"], cfg["max"]))
    elif kind in ("log_uniform_values", "q_log_uniform_values"):
        value = math.exp(rng.uniform(math.log(cfg["min"]), math.log(cfg["max"])))
    elif kind == "inv_log_uniform":  # log(1/x) uniform on [min, max]
        value = math.exp(-rng.uniform(cfg["min"], cfg["max"]))
    elif kind == "inv_log_uniform_values":
        value = math.exp(-rng.uniform(-math.log(cfg["max"]), -math.log(cfg["min"])))
    elif kind in ("normal", "q_normal"):
        value = float(rng.normal(cfg["mu"], cfg["sigma"]))
    elif kind in ("log_normal", "q_log_normal"):
        value = math.exp(rng.normal(cfg["mu"], cfg["sigma"]))
    elif kind in ("beta", "q_beta"):
        value = float(rng.beta(cfg["a"], cfg["b"]))
    else:  # parse_parameter admits only known distributions
        raise AssertionError(kind)
    if kind.startswith("q_"):
        q = cfg["q"]
        quantised = round(value / q) * q
        return int(quantised) if isinstance(q, int) else float(quantised)
    return value


def run_key(index: int, width: int, labelled: dict[str, Any]) -> str:
    """Folder name of a run: its index, then its varying parameters (readable, filesystem-safe)."""
    parts = [f"{name}={_short_value(value)}" for name, value in labelled.items()]
    text = re.sub(r"[^A-Za-z0-9._=,+-]", "_", ",".join(parts))[:100]
    return f"{index:0{width}d}-{text}" if text else f"{index:0{width}d}"


def _short_names(names: Sequence[str]) -> dict[str, str]:
    """``model.hidden_size`` -> ``hidden_size`` unless two parameters would share the label."""
    last = [name.rsplit(".", 1)[-1] for name in names]
    return {n: (s if last.count(s) == 1 else n) for n, s in zip(names, last, strict=True)}


def _short_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
