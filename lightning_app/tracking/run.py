"""Each training run gets its own id and directory, so many runs from one folder never collide.

The id is W&B's run id. Lightning's DDP launcher re-runs ``python -m lightning_app`` for the other
ranks with our environment, so the launcher publishes the id and directory in environment
variables that those children read back instead of drawing their own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lightning_app.errors import UserError

RUN_ID_ENV = "LIGHTNING_APP_RUN_ID"
RUN_DIR_ENV = "LIGHTNING_APP_RUN_DIR"
ID_FILE = "wandb_id"
DEFAULT_ROOT = Path("runs")


@dataclass(frozen=True)
class RunIdentity:
    """Where a run keeps its config.yaml and checkpoints, and its W&B id."""

    id: str
    dir: Path
    resumed: bool

    @property
    def checkpoint_dir(self) -> Path:
        return self.dir / "checkpoints"


def resolve_run(run_dir: str | None, *, resuming: bool) -> RunIdentity:
    """The identity of this run: new, resumed from ``run_dir``, or inherited as a DDP child."""
    if os.environ.get("LOCAL_RANK") not in (None, "0") and RUN_ID_ENV in os.environ:
        return RunIdentity(os.environ[RUN_ID_ENV], Path(os.environ[RUN_DIR_ENV]), resuming)
    if run_dir is not None and (Path(run_dir) / ID_FILE).is_file():
        if not resuming:
            raise UserError(
                f"run_dir {run_dir} already holds a run; resume it with --ckpt_path last "
                "or choose another --run_dir"
            )
        identity = RunIdentity((Path(run_dir) / ID_FILE).read_text().strip(), Path(run_dir), True)
    else:
        from wandb.sdk.lib.runid import generate_id

        # Under `wandb agent`, W&B names the run itself (WANDB_RUN_ID) and ignores any id we pass.
        agent_id = os.environ.get("WANDB_RUN_ID") if os.environ.get("WANDB_SWEEP_ID") else None
        run_id = agent_id or generate_id()
        identity = RunIdentity(run_id, Path(run_dir) if run_dir else DEFAULT_ROOT / run_id, False)
    os.environ[RUN_ID_ENV] = identity.id
    os.environ[RUN_DIR_ENV] = str(identity.dir)
    return identity


def record_run(identity: RunIdentity) -> None:
    """Create the run directory and remember the W&B id in it (global rank 0 only)."""
    identity.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    (identity.dir / ID_FILE).write_text(identity.id + "\n")
