"""``python -m lightning_app``: LightningCLI's fit/validate/test/predict plus our own commands.

``fit`` and friends are LightningCLI's, unchanged for users (``--config`` stacking,
``--print_config``, ``--model.hidden_size=64``), with three additions every run gets:
a ``wandb`` config section (project, group, tags, mode...), its own ``run_dir`` with
``config.yaml`` and checkpoints, and the full resolved config as the W&B run config.
``sweep``, ``analyze`` and ``export`` are dispatched to their modules (see ``commands.py``).
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_only

from lightning_app.commands import EXTRA_COMMANDS, load_command
from lightning_app.data import MNISTDataModule
from lightning_app.errors import fail, user_errors
from lightning_app.model import BDRNN
from lightning_app.tracking import LogConfigCallback, WandbSettings, make_logger, resolve_run
from lightning_app.tracking.run import RunIdentity, record_run


class OneLineErrorParser(LightningArgumentParser):
    """A user's config mistake is one line naming the key or file, not usage plus a traceback."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        lines = [line.strip() for line in str(message).splitlines() if line.strip()]
        fail(f"{' '.join(lines[:3])} (see --help)")


class AppCLI(LightningCLI):
    """LightningCLI for the BDRNN with per-run directories and W&B config logging."""

    run: RunIdentity

    def __init__(self, args: list[str] | None = None) -> None:
        super().__init__(
            BDRNN,
            MNISTDataModule,
            parser_class=OneLineErrorParser,
            save_config_callback=LogConfigCallback,
            save_config_kwargs={"overwrite": True},
            args=args,
            auto_configure_optimizers=False,
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_class_arguments(WandbSettings, "wandb")
        parser.add_argument(
            "--run_dir",
            type=str | None,
            default=None,
            help="Folder for this run's config.yaml and checkpoints (default: runs/<W&B run id>). "
            "Pass the same folder with --ckpt_path last to resume a run.",
        )

    def instantiate_trainer(self, **kwargs: Any) -> Any:
        config = self.config_init[self.subcommand]
        self.run = resolve_run(config["run_dir"], resuming=config.get("ckpt_path") is not None)
        if config["trainer"].get("logger") in (None, True):
            kwargs["logger"] = make_logger(config["wandb"], self.run)
        callbacks = list(config["trainer"].get("callbacks") or [])
        if self.subcommand == "fit" and not any(isinstance(c, ModelCheckpoint) for c in callbacks):
            kwargs["callbacks"] = [
                *callbacks,
                ModelCheckpoint(dirpath=self.run.checkpoint_dir, save_last=True),
            ]
        kwargs["default_root_dir"] = str(self.run.dir)
        self.config[self.subcommand]["run_dir"] = str(self.run.dir)  # logged config says where
        if rank_zero_only.rank == 0:
            record_run(self.run)
        return super().instantiate_trainer(**kwargs)

    def after_fit(self) -> None:
        self._print_summary()

    def after_test(self) -> None:
        self._print_summary()

    @rank_zero_only
    def _print_summary(self) -> None:
        metrics = self.trainer.callback_metrics
        epoch = self.trainer.current_epoch
        shown = ", ".join(
            f"{key}={float(metrics[key]):.4f}"
            for key in ("test/acc", "val/acc", "train/loss")
            if key in metrics
        )
        print(f"\nrun {self.run.id} ({epoch} epochs): {shown}")
        print(f"run dir: {self.run.dir}")
        logger = self.trainer.logger
        if logger is not None and getattr(logger, "_experiment", None) is not None:
            print(f"W&B run: {logger.experiment.dir}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m lightning_app``."""
    args = sys.argv[1:] if argv is None else argv
    with user_errors():
        if args and args[0] in EXTRA_COMMANDS:
            load_command(args[0])(args[1:])
            return
        AppCLI(args=argv)  # None: LightningCLI reads sys.argv itself, as DDP's relaunch expects
