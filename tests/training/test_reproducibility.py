"""Same seed, same per-epoch metrics; each seed source (init, data order) can vary alone."""

from __future__ import annotations

import lightning as L
import torch

from lightning_app.data import MNISTDataModule
from lightning_app.model import BDRNN


class EpochMetrics(L.Callback):
    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.rows.append({k: float(v) for k, v in trainer.callback_metrics.items()})


def train(seed: int, *, init_seed: int | None = None, shuffle_seed: int | None = None):
    L.seed_everything(seed, verbose=False)
    model = BDRNN(hidden_size=12, num_layers=1, init_seed=init_seed)
    initial = [p.detach().clone() for p in model.parameters()]
    data = MNISTDataModule(dataset="mnist-5k", batch_size=100, shuffle_seed=shuffle_seed)
    recorder = EpochMetrics()
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=2,
        limit_train_batches=6,
        limit_val_batches=3,  # a few batches of each split: the metrics still depend on both seeds
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[recorder],
    )
    trainer.fit(model, data)
    first_batch = next(iter(data.train_dataloader()))[1]
    return recorder.rows, initial, first_batch


def test_same_seed_gives_identical_metrics() -> None:
    a, _, _ = train(3)
    b, _, _ = train(3)
    assert len(a) == 2
    assert a == b


def test_different_seeds_give_different_metrics() -> None:
    a, init_a, batch_a = train(3)
    b, init_b, batch_b = train(4)
    assert a != b
    assert not torch.equal(init_a[0], init_b[0])
    assert not torch.equal(batch_a, batch_b)


def test_shuffle_seed_alone_changes_the_order_not_the_weights() -> None:
    a, init_a, batch_a = train(3, init_seed=7, shuffle_seed=1)
    b, init_b, batch_b = train(3, init_seed=7, shuffle_seed=2)
    assert all(torch.equal(x, y) for x, y in zip(init_a, init_b, strict=True))
    assert not torch.equal(batch_a, batch_b)
    assert a != b


def test_init_seed_alone_changes_the_weights_not_the_order() -> None:
    a, init_a, batch_a = train(3, init_seed=1, shuffle_seed=7)
    b, init_b, batch_b = train(3, init_seed=2, shuffle_seed=7)
    assert not torch.equal(init_a[0], init_b[0])
    assert torch.equal(batch_a, batch_b)
    assert a != b


def test_global_seed_is_the_default_of_both() -> None:
    _, init_a, batch_a = train(5)
    _, init_b, batch_b = train(0, init_seed=5, shuffle_seed=5)
    assert all(torch.equal(x, y) for x, y in zip(init_a, init_b, strict=True))
    assert torch.equal(batch_a, batch_b)
