"""The study's network."""

from lightning_app.model.bdrnn import BDRNN

__all__ = ["BDRNN"]
