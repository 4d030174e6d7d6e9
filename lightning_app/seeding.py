"""Seeds for one source of randomness at a time: weight initialisation, or the batch order.

``seed_everything`` (LightningCLI's top-level key) seeds every generator at once, so two runs
differ in both their initial weights and their batch order. A noise study can vary one at a
time when a model takes an ``init_seed`` and a DataModule a ``shuffle_seed`` (``None``: the run's
``seed_everything``), and uses them through these helpers; any LightningModule or
LightningDataModule can (see docs/own-model.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def run_seed() -> int:
    """The run's ``seed_everything`` as Lightning published it (``PL_GLOBAL_SEED``), else 0."""
    return int(os.environ.get("PL_GLOBAL_SEED", 0))


@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Build layers inside this block to make their initial weights depend on ``seed`` alone
    (default: the run's seed); torch's global generator is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(run_seed() if seed is None else seed)
        yield


def generator(seed: int | None) -> torch.Generator:
    """A generator for a DataLoader's shuffling (``DataLoader(..., generator=...)``) that
    depends on ``seed`` alone (default: the run's seed)."""
    return torch.Generator().manual_seed(run_seed() if seed is None else seed)
