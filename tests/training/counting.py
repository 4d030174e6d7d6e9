"""A BDRNN that records which test images each process evaluated, for the DDP test.

Selected with ``--model=tests.training.counting.CountingBDRNN``; with ``$COUNT_DIR`` set, every
process writes ``<COUNT_DIR>/<stage>-rank<r>.pt``: one fingerprint (pixel sum) per test image it
evaluated, in the last evaluation of the test set (the validation loop's second loader in
``fit``, the test loop in ``test``). A synced accuracy cannot tell a set split over the ranks
from every rank evaluating all of it; these files can.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from lightning_app.model import BDRNN
from lightning_app.model.bdrnn import Batch

TEST_LOADER = 1  # the test set's index among the validation loaders


class CountingBDRNN(BDRNN):
    """The BDRNN, plus a record of the test images this process saw."""

    def on_validation_epoch_start(self) -> None:
        self._seen: list[torch.Tensor] = []

    def validation_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        super().validation_step(batch, batch_idx, dataloader_idx)
        if dataloader_idx == TEST_LOADER:
            self._seen.append(batch[0].flatten(1).sum(1).double())

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self._write("fit")

    def on_test_epoch_start(self) -> None:
        self._seen = []

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        super().test_step(batch, batch_idx)
        self._seen.append(batch[0].flatten(1).sum(1).double())

    def on_test_epoch_end(self) -> None:
        self._write("test")

    def _write(self, stage: str) -> None:
        folder = os.environ.get("COUNT_DIR")
        if folder:
            path = Path(folder) / f"{stage}-rank{self.global_rank}.pt"
            torch.save(torch.cat(self._seen) if self._seen else torch.empty(0), path)
