"""Handwritten-digit data as in-memory tensors, batched by indexing."""

from lightning_app.data.mnist import MNISTDataModule

__all__ = ["MNISTDataModule"]
