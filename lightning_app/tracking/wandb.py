"""W&B settings as a config section, the logger built from them, and the config it logs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightning as L
import yaml
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger

from lightning_app.tracking.run import RunIdentity

WandbMode = Literal["offline", "online", "disabled"]


@dataclass
class WandbSettings:
    """Where and how a run is logged to Weights & Biases.

    Args:
        project: W&B project.
        entity: W&B entity (user or team); default: the account's default.
        group: run group; sweeps set it to the sweep's name (``noise``, ``signal``).
        job_type: W&B job type; default: ``train`` for ``fit``, else the command's name.
        tags: W&B tags.
        name: display name; default: W&B's choice.
        mode: ``offline``, ``online`` or ``disabled``; default: ``$WANDB_MODE``, else ``online``
            when ``$WANDB_API_KEY`` is set, else ``offline`` (no account needed).
        dir: folder that receives W&B's ``wandb/`` run folders.
    """

    project: str = "lightning_app"
    entity: str | None = None
    group: str | None = None
    job_type: str | None = None
    tags: list[str] = field(default_factory=list)
    name: str | None = None
    mode: WandbMode | None = None
    dir: str = "."

    def resolved_mode(self) -> str:
        if self.mode is not None:
            return self.mode
        if os.environ.get("WANDB_MODE"):
            return os.environ["WANDB_MODE"]
        return "online" if os.environ.get("WANDB_API_KEY") else "offline"


def make_logger(settings: WandbSettings, run: RunIdentity, subcommand: str) -> WandbLogger:
    """A WandbLogger for this run; only global rank 0 ever creates the W&B run."""
    mode = settings.resolved_mode()
    Path(settings.dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(
        project=settings.project,
        entity=settings.entity,
        group=settings.group,
        job_type=settings.job_type or ("train" if subcommand == "fit" else subcommand),
        tags=list(settings.tags),
        name=settings.name,
        save_dir=settings.dir,
        id=run.id,
        resume="allow" if run.resumed else None,
        offline=mode == "offline",
        mode=mode,
    )


class LogConfigCallback(SaveConfigCallback):
    """Write the resolved config to the run directory and log it, nested, as the W&B run config.

    Lightning's own callback writes to ``trainer.log_dir``, which every WandbLogger run shares,
    and logs nothing to W&B; here each run writes ``<run_dir>/config.yaml`` (rewritten on resume).
    """

    def __init__(self, parser: Any, config: Any, **kwargs: Any) -> None:
        super().__init__(parser, config, **{**kwargs, "save_to_log_dir": False})

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        text = self.parser.dump(self.config, skip_unset=False)
        (Path(trainer.default_root_dir) / self.config_filename).write_text(text)
        if isinstance(trainer.logger, WandbLogger):
            trainer.logger.log_hyperparams(yaml.safe_load(text))
