"""Batching by indexing: global batch semantics across ranks, every eval sample exactly once."""

from __future__ import annotations

import pytest
import torch

from lightning_app.data.batches import TensorBatches
from lightning_app.data.datasets import (
    DEBIAN_FASHION_MNIST,
    NORMALISATION,
    load_fashion_mnist,
    load_mnist_5k,
)
from lightning_app.data.mnist import MNISTDataModule, _normalise
from tests.training.idx import write_mnist


def labels_seen(loader: TensorBatches) -> list[torch.Tensor]:
    return [labels for _, labels in loader]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def make(n: int, world: int, rank: int, *, shuffle: bool, batch: int = 10, **kw) -> TensorBatches:
    images = torch.arange(n, dtype=torch.float32).reshape(n, 1, 1)
    return TensorBatches(
        images, torch.arange(n), batch_size=batch, shuffle=shuffle, seed=3, rank=rank,
        world_size=world, **kw,
    )  # fmt: skip


@pytest.mark.parametrize("n", [100, 97])
def test_ranks_split_each_global_batch(n: int) -> None:
    single = labels_seen(make(n, 1, 0, shuffle=True))
    ranks = [labels_seen(make(n, 2, r, shuffle=True)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(make(n, 2, 0, shuffle=True))
    for step, global_batch in enumerate(single):
        assert torch.equal(torch.cat([ranks[0][step], ranks[1][step]]), global_batch)


def test_eval_sees_every_sample_exactly_once_across_ranks() -> None:
    seen = torch.cat(
        [torch.cat(labels_seen(make(1001, 3, r, shuffle=False, batch=9))) for r in range(3)]
    )
    assert torch.equal(seen.sort().values, torch.arange(1001))
    assert [len(make(1001, 3, r, shuffle=False, batch=9)) for r in range(3)] == [
        len(labels_seen(make(1001, 3, r, shuffle=False, batch=9))) for r in range(3)
    ]


def test_order_is_a_function_of_seed_and_epoch() -> None:
    loader = make(50, 1, 0, shuffle=True)
    loader.sampler.set_epoch(1)
    epoch1 = labels_seen(loader)
    loader.sampler.set_epoch(2)
    assert not same(labels_seen(loader), epoch1)
    fresh = make(50, 1, 0, shuffle=True)  # e.g. after resuming from a checkpoint
    fresh.sampler.set_epoch(1)
    assert same(labels_seen(fresh), epoch1)


def test_workers_yield_the_same_batches_in_order() -> None:
    plain = labels_seen(make(95, 1, 0, shuffle=True))
    parallel = labels_seen(make(95, 1, 0, shuffle=True, num_workers=2))
    assert same(plain, parallel)


def test_mnist_5k_split_is_the_one_the_readme_describes() -> None:
    """3,500 / 500 / 1,000; the test split stratified, the validation split a fixed random draw
    (the README says both; every published number was measured on exactly this split)."""
    train_x, _, test_x, test_y = load_mnist_5k("unused")
    assert train_x.shape == (4000, 28, 28) and test_x.shape == (1000, 28, 28)
    assert torch.bincount(test_y).tolist() == [100] * 10
    assert torch.equal(load_mnist_5k("unused")[3], test_y)
    splits = []
    for _ in range(2):  # fixed: another DataModule (another run) gets the same split
        data = MNISTDataModule(dataset="mnist-5k")
        data.setup("fit")
        splits.append(data.splits)
    (train, _), (val, val_y) = splits[0]["train"], splits[0]["val"]
    assert len(train) == 3500 and len(val) == 500
    counts = torch.bincount(val_y, minlength=10)
    assert counts.min() == 43 and counts.max() == 56  # a random draw, as documented
    for name in ("train", "val"):
        assert torch.equal(splits[0][name][0], splits[1][name][0])
        assert torch.equal(splits[0][name][1], splits[1][name][1])
    # Disjoint, and together the 4,000 training images (each image's pixel sum as its identity).
    together = torch.cat([train, val]).flatten(1).sum(1).sort().values
    whole = _normalise(train_x, *NORMALISATION["mnist-5k"]).flatten(1).sum(1).sort().values
    assert torch.allclose(together, whole)


def test_mnist_from_idx_files_offline(tmp_path) -> None:
    write_mnist(tmp_path, n_train=300, n_test=120)
    data = MNISTDataModule(dataset="mnist", data_dir=str(tmp_path), val_size=50, batch_size=32)
    data.setup("fit")
    images, _ = data.splits["train"]
    assert images.shape == (250, 28, 28) and images.dtype == torch.float32
    assert len(data.splits["val"][1]) == 50 and len(data.splits["test"][1]) == 120
    assert abs(float(images.mean())) < 2.0  # normalised, not 0..255


def test_val_size_must_leave_training_data(tmp_path) -> None:
    from lightning_app.errors import UserError

    write_mnist(tmp_path, n_train=100, n_test=20)
    data = MNISTDataModule(dataset="mnist", data_dir=str(tmp_path), val_size=100)
    with pytest.raises(UserError, match=r"data\.val_size"):
        data.setup("fit")


@pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist is not installed"
)
def test_fashion_mnist_full_size_offline_from_debian(tmp_path) -> None:
    train_x, train_y, test_x, _ = load_fashion_mnist(tmp_path)
    assert train_x.shape == (60000, 28, 28) and test_x.shape == (10000, 28, 28)
    assert torch.bincount(train_y).tolist() == [6000] * 10
    assert (tmp_path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file()
    assert not list((tmp_path / "FashionMNIST" / "raw").glob(".*.tmp")), "no temporary file left"
