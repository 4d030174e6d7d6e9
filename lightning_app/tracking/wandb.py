"""W&B settings as a config section, the logger built from them, and the config it logs."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightning as L
import yaml
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from lightning_app.errors import UserError
from lightning_app.tracking.run import RunIdentity
from lightning_app.wandb_mode import ModeChoice, WandbMode, unreachable


@dataclass
class WandbSettings:
    """Where and how a run is logged to Weights & Biases.

    Args:
        project: W&B project.
        entity: W&B entity (user or team); default: the account's default.
        group: run group; sweeps set it to the sweep's name (``noise``, ``signal``).
        job_type: W&B job type; default: ``train`` for ``fit``, else the command's name.
        tags: W&B tags.
        name: display name; default: W&B's choice (``<command>-of-<run id>`` for an evaluation).
        mode: ``online``, ``offline`` or ``disabled``. Precedence: ``--wandb.mode`` >
            ``$WANDB_MODE`` > this key in a config file > automatic: online when wandb has
            credentials (``wandb login``, ``$WANDB_API_KEY``) or under ``wandb agent``, else
            offline.
        fallback: ``offline`` to log offline when online was chosen but the W&B server cannot
            be reached; default: stop with an error naming the server.
        dir: folder that receives W&B's ``wandb/`` run folders.
    """

    project: str = "lightning_app"
    entity: str | None = None
    group: str | None = None
    job_type: str | None = None
    tags: list[str] = field(default_factory=list)
    name: str | None = None
    mode: WandbMode | None = None
    fallback: Literal["offline"] | None = None
    dir: str = "."


def make_logger(
    settings: WandbSettings, run: RunIdentity, subcommand: str, mode: ModeChoice
) -> WandbLogger:
    """A WandbLogger for this run; only global rank 0 ever creates the W&B run.

    An online run is started here, before training, so that an unreachable server stops the
    command at once with one line (or falls back to offline when ``fallback`` says so).
    """
    Path(settings.dir).mkdir(parents=True, exist_ok=True)
    extra: dict[str, Any] = {}
    if run.trained_run is not None:
        extra["config"] = {"trained_run": run.trained_run}
    logger = WandbLogger(
        project=settings.project,
        entity=settings.entity,
        group=settings.group,
        job_type=settings.job_type or ("train" if subcommand == "fit" else subcommand),
        tags=list(settings.tags),
        name=settings.name
        or (f"{subcommand}-of-{run.trained_run}" if run.trained_run is not None else None),
        # absolute: wandb's service may run in another folder (one started by an earlier command
        # of the same process), and it resolves a relative folder against its own
        save_dir=str(Path(settings.dir).resolve()),
        id=run.id,
        resume="allow" if run.resumed else None,
        offline=mode.mode == "offline",
        mode=mode.mode,
        **extra,
    )
    if mode.mode == "online" and getattr(rank_zero_only, "rank", 0) == 0:
        import wandb
        from wandb.errors import Error as WandbError

        try:
            logger.experiment  # noqa: B018 - starts the W&B run
        except WandbError as err:
            message = unreachable(mode, err)
            if settings.fallback != "offline":
                raise UserError(
                    f"{message}; log offline with --wandb.mode=offline, or add "
                    "--wandb.fallback=offline to fall back when it is down"
                ) from None
            print(
                f"warning: {message}; logging offline as --wandb.fallback=offline asks "
                "(`wandb sync` uploads the run later)",
                file=sys.stderr,
            )
            wandb.teardown()  # the service still holds the failed run's id
            offline = ModeChoice("offline", "fallback: server unreachable")
            return make_logger(settings, run, subcommand, offline)
    return logger


def finish_wandb_run() -> None:
    """End the command's W&B run now, as the interpreter's exit would (exit code 0).

    Without it, a second command in the same process (tests, a notebook) would get this run back
    from ``wandb.init`` instead of a run of its own. A command that fails leaves the run to
    wandb's exit hooks, which record the failure.
    """
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


class LogConfigCallback(SaveConfigCallback):
    """Write the resolved config to the run directory and log it, nested, as the W&B run config.

    Lightning's own callback writes to ``trainer.log_dir``, which every WandbLogger run shares,
    and logs nothing to W&B; here each run writes ``<run_dir>/config.yaml`` (rewritten on resume).
    A CSVLogger's folder gets a copy too, under the same name (``config-validate.yaml`` for a
    ``validate``...), so that reading CSV logs knows the run's config and which are evaluations.
    ``config.yaml`` stays a config you can run again; the W&B config also shows what the tool
    chose for the keys left at their defaults: the W&B mode, the logger and every callback; and
    the model's and DataModule's arguments sit right under ``model``/``data`` beside their
    ``class_path`` (``model.hidden_size``, the name sweeps and analyses use).
    """

    def __init__(
        self, parser: Any, config: Any, mode: ModeChoice | None = None, **kwargs: Any
    ) -> None:
        super().__init__(parser, config, **{**kwargs, "save_to_log_dir": False})
        self.mode = mode

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        text = self.parser.dump(self.config, skip_unset=False)
        (Path(trainer.default_root_dir) / self.config_filename).write_text(text)
        for logger in trainer.loggers:
            if isinstance(logger, CSVLogger):
                _write_new(Path(logger.log_dir) / self.config_filename, text)
        if isinstance(trainer.logger, WandbLogger):
            trainer.logger.log_hyperparams(self.as_used(yaml.safe_load(text), trainer))

    def as_used(self, config: dict[str, Any], trainer: L.Trainer) -> dict[str, Any]:
        """``config`` with the W&B mode, logger and callbacks the run really has."""
        logger = trainer.logger
        trainer_config = config.setdefault("trainer", {})
        if isinstance(logger, WandbLogger) and trainer_config.get("logger") in (None, True):
            run = logger.experiment
            trainer_config["logger"] = {
                "class_path": _class_path(logger),
                "init_args": {
                    "project": run.project,
                    "id": run.id,
                    "group": run.group or None,
                    "job_type": run.job_type or None,
                    "save_dir": config.get("wandb", {}).get("dir", logger.save_dir),
                    "mode": self.mode.mode if self.mode else None,
                },
            }
        if self.mode is not None:
            config.setdefault("wandb", {})["mode"] = self.mode.mode
        for key in ("model", "data"):  # W&B keys model.hidden_size, as sweeps and analyses say
            node = config.get(key)
            if isinstance(node, dict) and isinstance(node.get("init_args"), dict):
                config[key] = {"class_path": node.get("class_path"), **node["init_args"]}
        given = trainer_config.get("callbacks")
        listed = [] if given is None else list(given) if isinstance(given, list) else [given]
        named = [c.get("class_path") for c in listed if isinstance(c, dict)]
        for callback in trainer.callbacks:  # type: ignore[attr-defined]
            path = _class_path(callback)
            if path in named:
                named.remove(path)  # the user's entry, with its init_args, says it already
            else:
                listed.append({"class_path": path})
        trainer_config["callbacks"] = listed
        return config


def _write_new(path: Path, text: str) -> None:
    """Write ``path`` unless it exists: a file in a logger's folder may be the user's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("x") as file:
            file.write(text)
    except FileExistsError:
        pass


def _class_path(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"
