"""A small convolutional network on the study's digits, written as a user's own model would be.

Nothing here is special to this tool: it is a plain LightningModule with typed ``__init__``
arguments, selected with ``model: {class_path: lightning_app.examples.DigitsCNN}`` (or
``--model=lightning_app.examples.DigitsCNN``) and trained on the default ``MNISTDataModule``.
What the tool needs from it (docs/own-model.md):

- per epoch ``train/loss``, ``val/acc`` and ``test/acc``: the DataModule's ``val_dataloader``
  returns ``[val loader, test loader]``, so ``validation_step`` logs ``val/acc`` for loader 0 and
  ``test/acc`` for loader 1 (``add_dataloader_idx=False`` keeps the names as they are);
- optionally an ``init_seed`` built through :func:`lightning_app.seeding.seeded`, so a noise study
  can vary the weights' initialisation alone.
"""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from lightning_app.errors import UserError
from lightning_app.seeding import seeded

Batch = tuple[torch.Tensor, torch.Tensor]  # images (N, 28, 28), labels (N,)
SPLITS = ("val", "test")  # the order of the DataModule's validation loaders
NUM_CLASSES = 10


class DigitsCNN(L.LightningModule):
    """Two 3x3 convolutions with max pooling, then a hidden layer with dropout, Adam.

    Args:
        channels: filters of the first convolution (the second has twice as many).
        hidden: units of the fully connected layer before the classifier.
        learning_rate: Adam's step size.
        dropout: dropout probability before each fully connected layer (0 turns it off).
        init_seed: seed of weight initialisation only; default: the run's ``seed_everything``.
    """

    def __init__(
        self,
        channels: int = 16,
        hidden: int = 64,
        learning_rate: float = 0.003,
        dropout: float = 0.1,
        init_seed: int | None = None,
    ) -> None:
        super().__init__()
        for key, value in (("channels", channels), ("hidden", hidden)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise UserError(f"model.{key} must be a positive integer, got {value!r}")
        if not learning_rate > 0:
            raise UserError(f"model.learning_rate must be positive, got {learning_rate!r}")
        if not 0 <= dropout < 1:
            raise UserError(f"model.dropout must be at least 0 and below 1, got {dropout!r}")
        # The CLI logs its whole config to W&B once; don't log flat duplicates of these.
        self.save_hyperparameters(logger=False)
        self.learning_rate = learning_rate
        with seeded(init_seed):  # the initial weights depend on init_seed alone
            self.features = nn.Sequential(
                nn.Conv2d(1, channels, kernel_size=3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),  # 28x28 -> 14x14
                nn.Conv2d(channels, 2 * channels, kernel_size=3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),  # 14x14 -> 7x7
                nn.Flatten(),
            )
            self.classifier = nn.Sequential(
                nn.Dropout(dropout),
                nn.Linear(2 * channels * 7 * 7, hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, NUM_CLASSES),
            )
        self.loss = nn.CrossEntropyLoss()
        self.train_loss = MeanMetric()
        self.accuracy = nn.ModuleDict(
            {split: MulticlassAccuracy(NUM_CLASSES, average="micro") for split in SPLITS}
        )
        self.test_accuracy = MulticlassAccuracy(NUM_CLASSES, average="micro")
        self._losses: list[torch.Tensor] = []  # this epoch's step losses and batch sizes
        self._sizes: list[int] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of shape (batch, 10) for images of shape (batch, 28, 28)."""
        return self.classifier(self.features(images.unsqueeze(1)))

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        images, labels = batch
        loss = self.loss(self(images), labels)
        # Kept and averaged once per epoch: logging every step costs more than a list append.
        self._losses.append(loss.detach())
        self._sizes.append(len(labels))
        return loss

    def on_train_epoch_start(self) -> None:
        self._losses, self._sizes = [], []

    def on_train_epoch_end(self) -> None:
        if self._losses:  # the epoch's sample-weighted mean loss (summed across DDP ranks)
            losses = torch.stack(self._losses)
            self.train_loss.update(losses, weight=torch.tensor(self._sizes).to(losses))
        self.log("train/loss", self.train_loss.compute(), prog_bar=True)
        self.train_loss.reset()

    def validation_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        split = SPLITS[dataloader_idx]  # loader 0: validation split, loader 1: test set
        images, labels = batch
        metric: MulticlassAccuracy = self.accuracy[split]  # type: ignore[assignment]
        metric.update(self(images), labels)
        # A logged Metric is computed over all its updates at the epoch's end and reset, so it
        # is handed to Lightning once per loader rather than at every batch.
        if batch_idx == 0:
            self.log(f"{split}/acc", metric, prog_bar=True, add_dataloader_idx=False)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        images, labels = batch
        self.test_accuracy.update(self(images), labels)
        if batch_idx == 0:
            self.log("test/acc", self.test_accuracy)

    def predict_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self(batch[0]).argmax(dim=-1)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.learning_rate)
