"""W&B logging of training runs: settings, run identity and the logged config."""

from lightning_app.tracking.run import RunIdentity, resolve_run
from lightning_app.tracking.wandb import (
    LogConfigCallback,
    WandbSettings,
    finish_wandb_run,
    make_logger,
)

__all__ = [
    "LogConfigCallback",
    "RunIdentity",
    "WandbSettings",
    "finish_wandb_run",
    "make_logger",
    "resolve_run",
]
