"""LightningCLI for ``python -m lightning_app fit|validate|test|predict``.

``fit`` and friends are LightningCLI's, unchanged for users (``--config`` stacking,
``--print_config``, ``--model.hidden_size=64``), with these additions every run gets:
a ``wandb`` config section (project, group, tags, mode...), its own ``run_dir`` with
``config.yaml`` and checkpoints, the full resolved config as the W&B run config, and (unless
configured otherwise) a rich progress bar that is fed every 10 batches.
``python -m lightning_app`` reaches this module through ``commands.main``.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_app.cli_errors import (
    TYPED_ARGS,
    UNION_MISMATCH,
    OneLineErrorParser,
    check_config_files,
    checkpoint_problem,
    refused_class_message,
    trainer_problem,
)
from lightning_app.data import MNISTDataModule
from lightning_app.errors import UserError, fail
from lightning_app.model import BDRNN
from lightning_app.paths import check_writable_dir
from lightning_app.progress_bar import SparseRichProgressBar
from lightning_app.tracking import (
    LogConfigCallback,
    WandbSettings,
    finish_wandb_run,
    make_logger,
    resolve_run,
)
from lightning_app.tracking.cleanup import end_failed_command, note_new_paths
from lightning_app.tracking.run import DEFAULT_ROOT, ID_FILE, RunIdentity, record_run
from lightning_app.wandb_mode import resolve_mode

# Lightning 2.6 on torch 2.14 warns about its own use of a deprecated torch API on every run.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


def skip_per_step_nvml_probe() -> None:
    """On a machine without CUDA devices, stop torch probing NVML at every optimizer step.

    Importing Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` (a fork-safe CUDA check); with
    it, Adam's per-step capture check dlopens NVML each time, ~0.35 ms per step on a CPU with
    a CUDA build of torch (see BENCHMARKS.md). With no device there is nothing to poison.
    """
    import torch

    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1" and torch.cuda.device_count() == 0:
        del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]


DEFAULT_METRIC = "test/acc"
"""The metric the analyses read by default (``analyze --metric``)."""
DEFAULT_MODEL = f"{BDRNN.__module__}.{BDRNN.__qualname__}"
DEFAULT_DATA = f"{MNISTDataModule.__module__}.{MNISTDataModule.__qualname__}"


class AppCLI(LightningCLI):
    """LightningCLI with per-run directories and W&B config logging, for any model.

    Subclass mode, LightningCLI's own convention for "bring your own model": ``model`` and
    ``data`` take any LightningModule / LightningDataModule (``--model=pkg.Net``, or
    ``class_path:`` in a config), defaulting to the study's BDRNN and MNIST DataModule, so
    ``--model.hidden_size=32`` and configs without a ``class_path`` work as they always did.
    """

    run: RunIdentity

    def __init__(
        self,
        args: list[str] | None = None,
        run: bool = True,
        parser_kwargs: dict[str, Any] | None = None,
    ) -> None:
        skip_per_step_nvml_probe()
        super().__init__(
            L.LightningModule,
            L.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            parser_class=OneLineErrorParser,
            save_config_callback=LogConfigCallback,
            parser_kwargs=parser_kwargs,
            args=args,
            run=run,
            auto_configure_optimizers=False,
        )
        if run:  # the command ran: its W&B run is over (with run=False the caller trains)
            finish_wandb_run()

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        given = sys.argv[1:] if args is None else list(args)
        check_config_files(given)
        TYPED_ARGS.set(tuple(given))
        # A flag outranks $WANDB_MODE, a config file's value does not (see wandb_mode); an
        # evaluation joins its trained run's group unless a flag names another.
        self.flags = {a.split("=", 1)[0] for a in given if a.startswith("--wandb.")}
        # The default class's argument values must not carry over to the class a user selects
        # (jsonargparse keeps init_args the new class also accepts): start from its defaults.
        for key, base in (("model", L.LightningModule), ("data", L.LightningDataModule)):
            chosen = selected_class(given, key)
            if chosen is not None and _is_subclass(chosen, base):  # else the parser says why
                for each in getattr(self, "class_parsers", []):
                    each.set_defaults({key: {"class_path": chosen}})
        super().parse_arguments(parser, args)
        config = self.config[self.config.subcommand] if "subcommand" in self.config else None
        problem = checkpoint_problem(config.get("ckpt_path")) if config is not None else None
        if problem:
            fail(problem)
        check_output_paths(config if config is not None else self.config)

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except ValueError as err:
            # jsonargparse reports a class that refused its config values (the model's, a
            # callback's...) as a union mismatch, with the class's own error as its cause.
            if not str(err).startswith(UNION_MISMATCH):
                raise
            fail(refused_class_message(err))

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.set_defaults(
            {"model": {"class_path": DEFAULT_MODEL}, "data": {"class_path": DEFAULT_DATA}}
        )
        self.class_parsers = [*getattr(self, "class_parsers", []), parser]
        parser.add_class_arguments(WandbSettings, "wandb")
        parser.add_argument(
            "--run_dir",
            type=str | None,
            default=None,
            help="Folder for this run's config.yaml and checkpoints (default: runs/<W&B run id>). "
            "Pass the same folder with --ckpt_path last to resume a run.",
        )

    def instantiate_trainer(self, **kwargs: Any) -> Any:
        # With run=False (Python use) there is no subcommand level in the config.
        config = self.config_init[self.subcommand] if self.subcommand else self.config_init
        command = str(self.subcommand or "fit")
        check_data = getattr(self.datamodule, "check_data", None)
        if callable(check_data):  # bad data files stop the command before anything is created
            check_data()
        self.run = resolve_run(
            config["run_dir"],
            resuming=config.get("ckpt_path") is not None,
            command=command,
            ckpt_path=config.get("ckpt_path"),
        )
        settings: WandbSettings = config["wandb"]
        flags: set[str] = getattr(self, "flags", set())
        mode = resolve_mode(
            flag=settings.mode if "--wandb.mode" in flags else None, config=settings.mode
        )
        self.offline = mode.mode != "online"
        filename = config_filename(self.run.dir, command)
        run_files = [self.run.checkpoint_dir, self.run.dir / ID_FILE, self.run.dir / filename]
        self.new_paths = note_new_paths([self.run.dir, *run_files], Path(settings.dir))
        if self.run.trained_run is not None and "--wandb.group" not in flags:
            settings.group = trained_group(self.run.dir) or settings.group
        if config["trainer"].get("logger") in (None, True):
            kwargs["logger"] = make_logger(settings, self.run, command, mode)
        given = config["trainer"].get("callbacks")  # None, one callback, or a list of them
        callbacks = [] if given is None else list(given) if isinstance(given, list) else [given]
        if command == "fit" and not any(isinstance(c, ModelCheckpoint) for c in callbacks):
            callbacks.append(ModelCheckpoint(dirpath=self.run.checkpoint_dir, save_last=True))
        if config["trainer"].get("enable_progress_bar") is not False and not any(
            isinstance(c, ProgressBar) for c in callbacks
        ):
            # Lightning's default bar redraws and recomputes its metrics every batch: 7 % and 2 %
            # of a small model's step here (BENCHMARKS.md); this one does both every 10 batches.
            callbacks.append(SparseRichProgressBar(every_n_batches=10, refresh_rate=10))
        kwargs["callbacks"] = callbacks
        run_dir = str(self.run.dir.resolve())
        kwargs["default_root_dir"] = run_dir
        # The saved and logged config say where the run lives, as absolute paths.
        raw = self.config[self.subcommand] if self.subcommand else self.config
        raw["run_dir"] = run_dir
        raw["trainer"]["default_root_dir"] = run_dir
        self.save_config_kwargs["config_filename"] = filename
        self.save_config_kwargs["mode"] = mode
        try:
            trainer = super().instantiate_trainer(**kwargs)
        except MisconfigurationException as err:  # Lightning's own argument checks
            fail(trainer_problem(err))
        batch_size = getattr(self.datamodule, "batch_size", None)
        # fail before DDP launches any process
        if isinstance(batch_size, int) and batch_size % trainer.world_size:
            raise UserError(
                f"data.batch_size={batch_size} is the global batch size and must divide evenly "
                f"across {trainer.world_size} devices"
            )
        if trainer.global_rank == 0:  # only once the run is sure to start: no folder is left
            record_run(self.run)  # behind by a rejected argument
        return trainer

    def _run_subcommand(self, subcommand: str) -> None:
        try:
            super()._run_subcommand(subcommand)
        except BaseException:
            if self.trainer.global_rank == 0:
                end_failed_command(
                    getattr(self, "new_paths", None),
                    any_batch=any_batch_started(self.trainer),
                    offline=getattr(self, "offline", True),
                )
            raise

    def after_fit(self) -> None:
        self._print_summary(f"{self.trainer.current_epoch} epochs")
        self._check_metric()

    @rank_zero_only
    def _check_metric(self) -> None:
        """Say so when a model does not log what the analyses read by default (``test/acc``)."""
        logged = set(self.trainer.callback_metrics) | set(self.trainer.logged_metrics)
        if DEFAULT_METRIC not in logged:
            names = ", ".join(sorted(logged)) or "no metrics"
            print(
                f"warning: this run logged no {DEFAULT_METRIC} per epoch (it logged {names}); "
                f"`analyze` reads {DEFAULT_METRIC} unless --metric names another "
                "(docs/own-model.md: what the tool reads from a model)",
                file=sys.stderr,
            )

    def after_test(self) -> None:
        self._print_summary("test")

    @rank_zero_only
    def _print_summary(self, what: str) -> None:
        metrics = self.trainer.callback_metrics
        shown = ", ".join(
            f"{key}={float(metrics[key]):.4f}"
            for key in ("test/acc", "val/acc", "train/loss")
            if key in metrics
        )
        print(f"\nrun {self.run.id} ({what}): {shown}")
        print(f"run dir: {self.run.dir}")
        logger = self.trainer.logger
        if isinstance(logger, WandbLogger):  # its run was started when the config was logged
            print(f"W&B run: {Path(logger.experiment.dir).parent}")


def any_batch_started(trainer: L.Trainer) -> bool:
    """Whether any loop of ``trainer`` (training, validation, test, predict) began a batch."""
    loops = [
        trainer.fit_loop.epoch_loop,
        trainer.fit_loop.epoch_loop.val_loop,
        trainer.validate_loop,
        trainer.test_loop,
        trainer.predict_loop,
    ]
    return any(getattr(loop, "batch_progress").total.started for loop in loops)  # noqa: B009


def check_output_paths(config: Any) -> None:
    """Every folder the command will write, checked before anything starts (one line naming
    the flag): the run folder and its checkpoints, W&B's folder, the data folder."""
    run_dir = config.get("run_dir")
    root = Path(run_dir) if run_dir else DEFAULT_ROOT
    check_writable_dir(root, "--run_dir")
    check_writable_dir(root / "checkpoints", "--run_dir")
    wandb = config.get("wandb")
    if wandb is not None and getattr(wandb, "dir", None):
        check_writable_dir(wandb.dir, "--wandb.dir")
        check_writable_dir(Path(wandb.dir) / "wandb", "--wandb.dir")
    data = config.get("data")
    data_dir = data.get("init_args", {}).get("data_dir") if hasattr(data, "get") else None
    if isinstance(data_dir, str | os.PathLike):
        check_writable_dir(data_dir, "--data.data_dir")


def selected_class(args: list[str], key: str) -> str | None:
    """The class path the arguments give ``key`` (``model``/``data``), the last one winning:
    ``--model=pkg.Net``, ``--model.class_path pkg.Net``, or ``class_path`` in a ``--config``.

    None when a config file before the selection configures the default class (a ``model:``
    section without ``class_path``): jsonargparse's own rule then applies, the selected class
    keeping the values it accepts (``learning_rate``) and dropping the others (``hidden_size``).
    """
    chosen: str | None = None
    after_default = False  # whether a config for the default class came before ``chosen``
    default_seen = False
    for i, arg in enumerate(args):
        name, has_value, value = arg.partition("=")
        if not has_value:
            value = args[i + 1] if i + 1 < len(args) else ""
        is_config = name in ("--config", "-c")
        if is_config or name in (f"--{key}", f"--{key}.class_path"):
            node = _section(value, key, nested=is_config)
            found = _class_of(node)
            if found:
                chosen, after_default = found, default_seen
            # a config's arguments for ``key`` without a class: the default class's
            default_seen |= is_config and isinstance(node, dict) and bool(node) and not found
    return None if after_default else chosen


def _is_subclass(class_path: str, base: type) -> bool:
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name) if module else None
    except Exception:
        return False
    return isinstance(cls, type) and issubclass(cls, base)


def _load(value: str) -> Any:
    """A flag's YAML value: the file it names, or the text itself; None when unreadable."""
    try:
        text = Path(value).read_text() if Path(value).is_file() else value
        return yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError):
        return None  # the parser reports it


def _section(value: str, key: str, *, nested: bool) -> Any:
    """What a flag's value gives ``key``, read once: a class path, or a YAML mapping (from a
    file, or the text itself, under ``key`` when ``nested``)."""
    if not nested and not value.endswith((".yaml", ".yml", ".json")) and "{" not in value:
        return value or None
    loaded = _load(value)
    return loaded.get(key) if nested and isinstance(loaded, dict) else loaded


def _class_of(node: Any) -> str | None:
    """The class path a section names, if any."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and isinstance(node.get("class_path"), str):
        return str(node["class_path"])
    return None


def trained_group(run_dir: Path) -> str | None:
    """The W&B group in a trained run's ``config.yaml``, if it can be read."""
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        group = config["wandb"]["group"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None
    return str(group) if group else None


def config_filename(run_dir: Path, subcommand: str) -> str:
    """``config.yaml`` for a new fit; later commands on the same run never overwrite a config."""
    stem = "config" if subcommand == "fit" else f"config-{subcommand}"
    name, n = f"{stem}.yaml", 1
    while (run_dir / name).exists():
        n += 1
        name = f"{stem}-{n}.yaml"
    return name
