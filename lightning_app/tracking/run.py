"""Each training run gets its own id and directory, so many runs from one folder never collide.

The id is W&B's run id. Lightning's DDP launcher re-runs ``python -m lightning_app`` for the other
ranks with our environment, so the launcher publishes the id and directory in environment
variables that those children read back instead of drawing their own.
"""

from __future__ import annotations

import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from lightning_app.errors import UserError

RUN_ID_ENV = "LIGHTNING_APP_RUN_ID"
RUN_DIR_ENV = "LIGHTNING_APP_RUN_DIR"
ID_FILE = "wandb_id"
DEFAULT_ROOT = Path("runs")
_ID_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class RunIdentity:
    """Where a run keeps its config.yaml and checkpoints, and its W&B id.

    ``validate``, ``test`` and ``predict`` are evaluations: each gets a W&B run of its own (never
    the trained run's id, whose history it would rewrite) and ``trained_run`` names the run it
    evaluates when the checkpoint or ``--run_dir`` belongs to one; its config lands in
    ``--run_dir``, else that run's folder, as ``config-<command>.yaml``.
    """

    id: str
    dir: Path
    resumed: bool
    command: str = "fit"
    trained_run: str | None = None

    @property
    def checkpoint_dir(self) -> Path:
        return self.dir / "checkpoints"


def new_run_id() -> str:
    """A fresh W&B-style run id: 8 characters of lowercase letters and digits."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


def resolve_run(
    run_dir: str | None, *, resuming: bool, command: str = "fit", ckpt_path: str | None = None
) -> RunIdentity:
    """The identity of this run: new, resumed from ``run_dir``, an evaluation of a trained run,
    or inherited as a DDP child."""
    if os.environ.get("LOCAL_RANK") not in (None, "0") and RUN_ID_ENV in os.environ:
        return RunIdentity(os.environ[RUN_ID_ENV], Path(os.environ[RUN_DIR_ENV]), resuming)
    # Under `wandb agent`, W&B names the run itself (WANDB_RUN_ID) and ignores any id we pass.
    agent_id = os.environ.get("WANDB_RUN_ID") if os.environ.get("WANDB_SWEEP_ID") else None
    if command != "fit":
        trained = trained_run_dir(run_dir, ckpt_path)
        run_id = agent_id or new_run_id()
        folder = Path(run_dir) if run_dir else trained or DEFAULT_ROOT / run_id
        identity = RunIdentity(
            run_id, folder, False, command, _read_id(trained) if trained else None
        )
    elif run_dir is not None and (Path(run_dir) / ID_FILE).is_file():
        if not resuming:
            raise UserError(
                f"run_dir {run_dir} already holds a run; resume it with --ckpt_path last "
                "or choose another --run_dir"
            )
        identity = RunIdentity(_read_id(Path(run_dir)), Path(run_dir), True)
    else:
        run_id = agent_id or new_run_id()
        identity = RunIdentity(run_id, Path(run_dir) if run_dir else DEFAULT_ROOT / run_id, False)
    os.environ[RUN_ID_ENV] = identity.id
    os.environ[RUN_DIR_ENV] = str(identity.dir)
    return identity


def trained_run_dir(run_dir: str | None, ckpt_path: str | None) -> Path | None:
    """The folder of the trained run an evaluation reads: ``run_dir`` when it holds a run, else
    the run folder of a checkpoint under ``<run>/checkpoints/``."""
    candidates = [Path(run_dir)] if run_dir else []
    if ckpt_path and Path(ckpt_path).parent.name == "checkpoints":
        candidates.append(Path(ckpt_path).parent.parent)
    return next((c for c in candidates if (c / ID_FILE).is_file()), None)


def record_run(identity: RunIdentity) -> None:
    """Create the run directory and remember the W&B id in it (global rank 0 only).

    An evaluation only makes sure its folder exists: the folder's id stays the trained run's.
    """
    if identity.command != "fit":
        identity.dir.mkdir(parents=True, exist_ok=True)
        return
    identity.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    (identity.dir / ID_FILE).write_text(identity.id + "\n")


def _read_id(run_dir: Path) -> str:
    return (run_dir / ID_FILE).read_text().strip()
