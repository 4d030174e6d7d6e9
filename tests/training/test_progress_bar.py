"""The default progress bar advances every N batches and always shows each loader's last batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pytest

from lightning_app.data import MNISTDataModule
from lightning_app.errors import UserError
from lightning_app.model import BDRNN
from lightning_app.progress_bar import SparseRichProgressBar


class RecordingBar(SparseRichProgressBar):
    """The real bar, also recording which batch counts it showed, per task description."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shown: dict[str, list[int]] = {}

    def _update(self, progress_bar_id: Any, current: int, visible: bool = True, hard: bool = False):  # type: ignore[no-untyped-def]
        super()._update(progress_bar_id, current, visible, hard)
        if self.progress is not None and progress_bar_id is not None and visible:
            task = self.progress.tasks[progress_bar_id]
            assert task.completed == current  # the rich task really moved
            self.shown.setdefault(str(task.description).split()[0], []).append(current)


def test_bar_updates_every_n_batches_and_on_the_last(tmp_path: Path) -> None:
    bar = RecordingBar(every_n_batches=10)
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=1, limit_train_batches=23, limit_val_batches=12,
        limit_test_batches=7, num_sanity_val_steps=0, logger=False, enable_checkpointing=False,
        enable_model_summary=False, callbacks=[bar], default_root_dir=tmp_path,
    )  # fmt: skip
    data = MNISTDataModule(dataset="mnist-5k", data_dir=str(tmp_path), batch_size=50)
    model = BDRNN(hidden_size=4, num_layers=1)
    trainer.fit(model, data)
    trainer.test(model, data)

    assert [n for n in bar.shown["Epoch"] if n > 0] == [10, 20, 23]
    # Two validation loaders: the val split has 10 batches of 50, the test split 12 (the limit).
    assert [n for n in bar.shown["Validation"] if n > 0] == [10, 10, 12]
    assert [n for n in bar.shown["Testing"] if n > 0] == [7]


def test_a_disabled_bar_stays_out_of_the_way(tmp_path: Path) -> None:
    """As on DDP ranks > 0, where Lightning disables the bar before evaluation starts."""
    bar = RecordingBar(every_n_batches=10)
    bar.disable()
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=1, limit_train_batches=3, limit_val_batches=2,
        logger=False, enable_checkpointing=False, enable_model_summary=False, callbacks=[bar],
        default_root_dir=tmp_path,
    )  # fmt: skip
    data = MNISTDataModule(dataset="mnist-5k", data_dir=str(tmp_path), batch_size=50)
    trainer.fit(BDRNN(hidden_size=4, num_layers=1), data)  # sanity check and validation included
    assert bar.shown == {}


def test_every_n_batches_must_be_positive() -> None:
    with pytest.raises(UserError, match="every_n_batches must be at least 1, got 0"):
        SparseRichProgressBar(every_n_batches=0)
