"""Lightning's rich progress bar, doing its per-batch bookkeeping every few batches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar

from lightning_app.errors import UserError


class SparseRichProgressBar(RichProgressBar):
    """``RichProgressBar`` that advances every ``every_n_batches`` batches and on the last one.

    Lightning's rich bar updates its task and rebuilds the progress-bar metrics after every
    batch: about 2 % of a hidden-10 training step on a CPU (BENCHMARKS.md names the machine).
    Drawing is already limited to ``refresh_rate`` redraws per second by rich's own thread, so
    a bar fed every 10 batches looks the same; the last batch of each loader is always shown.

    Args:
        every_n_batches: update the bar after every this many batches (1: Lightning's behaviour).
        refresh_rate: redraws per second, as for ``RichProgressBar``.
        leave: keep finished bars on screen, as for ``RichProgressBar``.
    """

    def __init__(self, every_n_batches: int = 10, refresh_rate: int = 10, leave: bool = False):
        super().__init__(refresh_rate=refresh_rate, leave=leave)
        if every_n_batches < 1:
            raise UserError(
                f"SparseRichProgressBar: every_n_batches must be at least 1, got {every_n_batches}"
            )
        self.every_n_batches = every_n_batches

    def _due(self, batch_idx: int, total: Callable[[], float]) -> bool:
        """Every n-th batch and a loader's last. The total is read only on an enabled bar: a
        disabled one (DDP ranks > 0) never learns which eval loader runs, so has no total."""
        done = batch_idx + 1
        return self.is_enabled and (done % self.every_n_batches == 0 or done >= total())

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
        batch_idx: int,
    ) -> None:  # fmt: skip
        if self._due(batch_idx, lambda: self.total_train_batches):
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_validation_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
        batch_idx: int, dataloader_idx: int = 0,
    ) -> None:  # fmt: skip
        if self._due(batch_idx, lambda: self.total_val_batches_current_dataloader):
            super().on_validation_batch_end(
                trainer, pl_module, outputs, batch, batch_idx, dataloader_idx
            )

    def on_test_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
        batch_idx: int, dataloader_idx: int = 0,
    ) -> None:  # fmt: skip
        if self._due(batch_idx, lambda: self.total_test_batches_current_dataloader):
            super().on_test_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)

    def on_predict_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
        batch_idx: int, dataloader_idx: int = 0,
    ) -> None:  # fmt: skip
        if self._due(batch_idx, lambda: self.total_predict_batches_current_dataloader):
            super().on_predict_batch_end(
                trainer, pl_module, outputs, batch, batch_idx, dataloader_idx
            )
