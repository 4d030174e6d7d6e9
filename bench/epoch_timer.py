"""A callback that appends each epoch's timings, as one JSON line, to ``$EPOCH_TIMER_OUT``.

Used by ``bench_gpu.py`` through the real CLI: ``--trainer.callbacks+=epoch_timer.EpochTimer``
with this folder on ``PYTHONPATH``. CUDA is synchronised before every reading, so the times are
the GPU's, not the launch queue's.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import lightning as L
import torch


def _now() -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter()


class EpochTimer(L.Callback):
    """Per epoch: seconds of training batches alone and of the whole epoch with evaluation."""

    def __init__(self) -> None:
        self.out = os.environ.get("EPOCH_TIMER_OUT")
        self.epoch_start = self.first_batch = self.last_batch = 0.0
        self.batches = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epoch_start, self.batches = _now(), 0

    def on_train_batch_start(self, *_: Any) -> None:
        if self.batches == 0:
            self.first_batch = _now()

    def on_train_batch_end(self, *_: Any) -> None:
        self.batches += 1
        self.last_batch = _now()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        record = {
            "epoch": trainer.current_epoch,
            "batches": self.batches,
            "batch_size": trainer.datamodule.batch_size,  # type: ignore[attr-defined]
            "train_s": self.last_batch - self.first_batch,  # first batch start to last batch end
            "epoch_s": _now() - self.epoch_start,  # with the val and test evaluation
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        }
        if self.out and trainer.is_global_zero:
            with open(self.out, "a") as handle:
                handle.write(json.dumps(record) + "\n")
