"""Write small IDX files (the MNIST file format) so tests can use torchvision's real reader."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from lightning_app.data.datasets import IDX_FILES


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX: magic (0, 0, type 0x08 = uint8, ndim), big-endian int32 dims, then the bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, folder: str = "MNIST", n_train: int = 600, n_test: int = 200) -> Path:
    """Digits drawn as class-dependent blobs, so a model can learn them; returns the raw dir."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = []
    for n in (n_train, n_test):
        labels = rng.integers(0, 10, size=n)
        images = rng.integers(0, 60, size=(n, 28, 28))
        for i, label in enumerate(labels):
            images[i, 2 * label : 2 * label + 6, 4:24] = 255  # a bright bar whose row is the label
        arrays += [images, labels]
    for name, array in zip(IDX_FILES, arrays, strict=True):
        write_idx(raw / name, array)
    return raw
