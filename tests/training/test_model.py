"""The model's logged numbers are what they claim to be."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from lightning_app.data import MNISTDataModule
from lightning_app.model import BDRNN


class StepLosses(L.Callback):
    """Each training step's loss and batch size, as Lightning hands them to callbacks."""

    def __init__(self) -> None:
        self.epochs: list[list[tuple[float, int]]] = []
        self.logged: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.epochs:  # callbacks' epoch-end hooks run before the module logs, so read it here
            self.logged.append(float(trainer.callback_metrics["train/loss"]))
        self.epochs.append([])

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:  # fmt: skip
        self.epochs[-1].append((float(outputs["loss"]), len(batch[1])))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.logged.append(float(trainer.callback_metrics["train/loss"]))


def test_train_loss_is_the_sample_weighted_mean_of_each_epoch(tmp_path: Path) -> None:
    # 3,500 training images in batches of 300: 11 full batches and one of 200 per epoch.
    steps = StepLosses()
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=2, limit_val_batches=0, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[steps], default_root_dir=tmp_path,
    )  # fmt: skip
    data = MNISTDataModule(dataset="mnist-5k", data_dir=str(tmp_path), batch_size=300)
    trainer.fit(BDRNN(hidden_size=8, num_layers=1), data)

    assert [size for _, size in steps.epochs[0]] == [300] * 11 + [200]
    for epoch, logged in zip(steps.epochs, steps.logged, strict=True):
        expected = sum(loss * size for loss, size in epoch) / sum(size for _, size in epoch)
        assert logged == pytest.approx(expected, rel=1e-6)
    assert steps.logged[0] != pytest.approx(steps.logged[1])  # each epoch is its own mean


def test_logged_accuracies_cover_every_evaluated_image(tmp_path: Path) -> None:
    """Metrics handed to Lightning once per loader still count every batch of it."""
    data = MNISTDataModule(dataset="mnist-5k", data_dir=str(tmp_path), batch_size=64)
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=2, limit_train_batches=30, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path,
    )  # fmt: skip
    model = BDRNN(hidden_size=16, num_layers=1)
    trainer.fit(model, data)
    logged = {key: float(trainer.callback_metrics[key]) for key in ("val/acc", "test/acc")}
    (tested,) = trainer.test(model, data, verbose=False)

    model.eval()
    by_hand = {}
    with torch.no_grad():
        for split, loader in zip(("val/acc", "test/acc"), data.val_dataloader(), strict=True):
            right = total = 0
            for images, labels in loader:
                right += int((model(images).argmax(-1) == labels).sum())
                total += len(labels)
            by_hand[split] = right / total
    assert total == 1000  # the whole test split, in 16 batches of which the last is partial
    assert min(by_hand.values()) > 0.3  # trained: a wrong count would not hide behind chance
    assert logged == pytest.approx(by_hand, abs=1e-6)
    assert tested["test/acc"] == pytest.approx(by_hand["test/acc"], abs=1e-6)
