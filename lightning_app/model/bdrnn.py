"""The study's bidirectional LSTM that reads a 28x28 image as 28 rows of 28 pixels."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from lightning_app.errors import UserError
from lightning_app.seeding import seeded

Batch = tuple[torch.Tensor, torch.Tensor]  # images (N, 28, 28), labels (N,)
EVAL_SPLITS = ("val", "test")  # order of the loaders returned by the datamodule's val_dataloader


class BDRNN(L.LightningModule):
    """Bidirectional LSTM over image rows, a linear head on the last time step, Adam.

    Args:
        hidden_size: LSTM units per direction (the study swept 10..100 and used 128 for noise).
        num_layers: stacked LSTM layers (the study swept 2, 3, 4).
        learning_rate: Adam's step size (the study used 0.003).
        init_seed: seed of weight initialisation only; default: the run's ``seed_everything``.
            Separate from the data-order seed so a noise study can vary one source at a time.
    """

    def __init__(
        self,
        hidden_size: int = 128,
        num_layers: int = 2,
        learning_rate: float = 0.003,
        init_seed: int | None = None,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        for key, value in (
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
            ("num_classes", num_classes),
        ):
            if not isinstance(value, int) or value <= 0:
                raise UserError(f"model.{key} must be a positive integer, got {value!r}")
        if not learning_rate > 0:
            raise UserError(f"model.learning_rate must be positive, got {learning_rate!r}")
        # The full CLI config is logged once by the CLI; don't add flat duplicates to the logger.
        self.save_hyperparameters(logger=False)
        self.learning_rate = learning_rate
        with seeded(init_seed):  # weights depend on init_seed alone
            self.lstm = nn.LSTM(
                input_size=28,
                hidden_size=hidden_size,
                num_layers=num_layers,
                batch_first=True,
                bidirectional=True,
            )
            self.head = nn.Linear(2 * hidden_size, num_classes)
        self.loss = nn.CrossEntropyLoss()
        self.accuracy = nn.ModuleDict(
            {split: MulticlassAccuracy(num_classes, average="micro") for split in EVAL_SPLITS}
        )
        self.final_accuracy = MulticlassAccuracy(num_classes, average="micro")
        self.train_loss = MeanMetric()
        self._step_losses: list[torch.Tensor] = []  # this epoch's, reduced once at its end
        self._step_sizes: list[int] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits for images of shape (batch, 28, 28), read row by row."""
        outputs, _ = self.lstm(images)
        return self.head(outputs[:, -1, :])

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        images, labels = batch
        loss = self.loss(self(images), labels)
        # Kept as is and reduced once per epoch: a per-step self.log costs 0.2-0.5 ms of
        # Lightning bookkeeping and a per-step torchmetrics update 0.2-0.35 ms inside the loop,
        # each 3-10 % of a small model's step; two list appends cost 0.02 ms (BENCHMARKS.md).
        self._step_losses.append(loss.detach())
        self._step_sizes.append(len(labels))
        return loss

    def on_train_epoch_start(self) -> None:
        self._step_losses, self._step_sizes = [], []

    def on_train_epoch_end(self) -> None:
        # The sample-weighted mean over the epoch, summed across DDP ranks by torchmetrics.
        if self._step_losses:
            losses = torch.stack(self._step_losses)
            self.train_loss.update(losses, weight=torch.tensor(self._step_sizes).to(losses))
        self.log("train/loss", self.train_loss.compute(), prog_bar=True)
        self.train_loss.reset()

    def validation_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        split = EVAL_SPLITS[dataloader_idx]
        images, labels = batch
        metric: MulticlassAccuracy = self.accuracy[split]  # type: ignore[assignment]
        metric.update(self(images), labels)
        if batch_idx == 0:  # see test_step
            self.log(f"{split}/acc", metric, prog_bar=True, add_dataloader_idx=False)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        images, labels = batch
        self.final_accuracy.update(self(images), labels)
        # A logged Metric object is computed over all its updates and reset at the epoch's end,
        # so it is handed to Lightning once per loader; logging it every batch cost ~1 ms of
        # Lightning bookkeeping per batch, a quarter of a small model's evaluation time.
        if batch_idx == 0:
            self.log("test/acc", self.final_accuracy)

    def predict_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self(batch[0]).argmax(dim=-1)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.learning_rate)
