"""Validation and test batches come in one fixed shuffled order: a partial evaluation
(``limit_val_batches=1``) is a fair sample of digits, and full-split metrics are unchanged."""

from __future__ import annotations

from pathlib import Path

import torch
from torchmetrics.classification import MulticlassAccuracy

from lightning_app.data.datasets import NORMALISATION, load_mnist_5k
from lightning_app.data.mnist import MNISTDataModule, _normalise, evaluation_order
from tests.training.idx import write_mnist


def mnist_5k() -> MNISTDataModule:
    data = MNISTDataModule(dataset="mnist-5k", batch_size=50)
    data.setup("fit")
    return data


def test_the_first_batch_of_val_and_test_holds_many_digits() -> None:
    data = mnist_5k()
    for loader in data.val_dataloader():
        _, labels = next(iter(loader))
        assert len(labels) == 50 and len(labels.unique()) >= 8, labels.tolist()
    _, labels = next(iter(data.test_dataloader()))
    assert len(labels.unique()) >= 8


def test_the_order_is_fixed_and_independent_of_the_run_seed() -> None:
    torch.manual_seed(1)
    first = mnist_5k()
    torch.manual_seed(2)  # seed_everything sets torch's global generator: it must not matter
    second = mnist_5k()
    for split in ("val", "test"):
        assert torch.equal(first.splits[split][1], second.splits[split][1])
        assert torch.equal(first.splits[split][0], second.splits[split][0])
    assert torch.equal(evaluation_order(10), evaluation_order(10))


def test_the_test_split_holds_the_same_images_reordered() -> None:
    _, _, test_x, test_y = load_mnist_5k("unused")
    data = mnist_5k()
    order = evaluation_order(len(test_y))
    images, labels = data.splits["test"]
    assert torch.equal(labels, test_y[order])
    assert torch.equal(images, _normalise(test_x, *NORMALISATION["mnist-5k"])[order])
    assert sorted(order.tolist()) == list(range(len(test_y)))  # a permutation: nothing lost


def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    metric = MulticlassAccuracy(num_classes=10, average="micro")
    with torch.no_grad():
        for x, y in zip(images.split(50), labels.split(50), strict=True):
            metric.update(model(x).argmax(-1), y)
    return float(metric.compute())


def test_full_split_accuracy_of_a_trained_model_is_unchanged() -> None:
    """The same trained model scores exactly the same on the stored (label-sorted) order and the
    shuffled one, while its first batch alone would have been a biased sample before."""
    torch.manual_seed(0)
    data = mnist_5k()
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))  # fast to fit
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    train_x, train_y = data.splits["train"]
    mixed = torch.randperm(len(train_y))  # the stored training split is sorted by label too
    for x, y in zip(train_x[mixed].split(50), train_y[mixed].split(50), strict=True):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    model.eval()
    for split in ("val", "test"):
        images, labels = data.splits[split]
        stored = evaluation_order(len(labels)).argsort()  # undo the permutation
        before = accuracy(model, images[stored], labels[stored])
        assert accuracy(model, images, labels) == before
        assert before > 0.7  # trained: the comparison means something
        assert len(labels[stored][:50].unique()) <= 2  # the stored order was sorted by label


def test_idx_datasets_get_the_same_fixed_order(tmp_path: Path) -> None:
    write_mnist(tmp_path, n_train=300, n_test=120)
    data = MNISTDataModule(dataset="mnist", data_dir=str(tmp_path), val_size=50, batch_size=32)
    data.setup("fit")
    reread = MNISTDataModule(dataset="mnist", data_dir=str(tmp_path), val_size=50, batch_size=32)
    _, _, _, test_y = reread.check_data()
    assert torch.equal(data.splits["test"][1], test_y[evaluation_order(120)])
