"""The sweep folder: one sub-folder per run, the plan and state files, and set-aside attempts.

```
sweeps/<name>/
  sweep.yaml            the sweep file as it was when the sweep started
  plan.json             the file's content and every run's parameters (written once)
  state.json            each started run's status and attempts (rewritten atomically)
  <key>/                a run's folder: its --run_dir and --wandb.dir
    run.log             the run's stdout and stderr
    exit.json           the run's exit status, written by the runner when it saw the run end
    config.yaml, wandb_id, checkpoints/, wandb/offline-run-*/run-<id>.wandb
  attempts/<key>/<n>-<outcome>/   earlier attempts of a retried or interrupted run, kept whole
```

An attempt that did not finish (killed with the runner, or failed and retried) is moved under
``attempts/`` before its run starts again, and its W&B file is renamed ``run-<id>.wandb.<outcome>``:
nothing is deleted, ``wandb sync`` can still upload it after renaming it back, but history readers
(``analyze --source sweeps/``, which look for ``run-*.wandb``) see each run of the sweep once.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_app.errors import UserError
from lightning_app.sweeps.plan import PlannedRun
from lightning_app.sweeps.spec import SweepSpec
from lightning_app.sweeps.state import FORMAT, LOCK_FILE, PLAN_FILE, STATE_FILE, write_json_durable

SWEEP_COPY = "sweep.yaml"
ATTEMPTS = "attempts"
LOG_NAME = "run.log"
EXIT_FILE = "exit.json"
"""The runner's record, in the run's own folder, of how the run ended (what ``--repair`` reads)."""


@dataclass(frozen=True)
class SweepFolder:
    """Paths inside one sweep's folder."""

    root: Path

    def run_dir(self, key: str) -> Path:
        return self.root / key

    def log_path(self, key: str) -> Path:
        return self.root / key / LOG_NAME

    def exit_path(self, key: str) -> Path:
        return self.root / key / EXIT_FILE

    def rel(self, path: Path) -> str:
        return os.path.relpath(path, self.root)

    def exists(self) -> bool:
        return (self.root / PLAN_FILE).is_file()

    def load_plan(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((self.root / PLAN_FILE).read_text())
        except (OSError, ValueError) as err:
            raise UserError(f"{self.root / PLAN_FILE}: unreadable sweep plan ({err})") from None
        return data

    def check_compatible(self, spec: SweepSpec, options: Mapping[str, Any]) -> dict[str, Any]:
        """The stored plan, after refusing a different sweep file or different plan options."""
        plan = self.load_plan()
        if plan.get("digest") != spec.digest:
            stored = plan.get("spec", {})
            keys = sorted(
                {*stored, *spec.raw}
                - {k for k in {*stored, *spec.raw} if _same(stored, spec.raw, k)}
            )
            raise UserError(
                f"{self.root} holds the sweep from {plan.get('file')!r}, and {spec.path} differs "
                f"from it ({', '.join(keys) or 'content'}); refusing to mix two sweeps in one "
                "folder: pass --dir for a new folder, or restore the file"
            )
        for name, value in options.items():
            if value is not None and plan.get(name) != value:
                raise UserError(
                    f"{self.root} was started with --{name} {plan.get(name)}, not {value}; "
                    "rerun with the same options or pass --dir for a new folder"
                )
        return plan

    def create(self, spec: SweepSpec, runs: list[PlannedRun], options: Mapping[str, Any]) -> None:
        """Start a new sweep folder; refuse a folder that holds anything else."""
        if self.root.exists() and any(p.name != LOCK_FILE for p in self.root.iterdir()):
            raise UserError(
                f"{self.root} exists and is not a sweep folder (no {PLAN_FILE}); choose another "
                "--dir"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(spec.path, self.root / SWEEP_COPY)
        write_json_durable(
            self.root / PLAN_FILE,
            {
                "format": FORMAT,
                "name": spec.name,
                "file": str(spec.path),
                "digest": spec.digest,
                "spec": spec.raw,
                **options,
                "runs": [{"key": r.key, "params": r.params} for r in runs],
            },
        )

    def move_aside(self, key: str, number: int, outcome: str) -> str | None:
        """Move the run's folder under ``attempts/`` and hide its W&B files from readers."""
        source = self.run_dir(key)
        if not source.exists():
            return None
        target = self.root / ATTEMPTS / key / f"{number}-{outcome}"
        suffix = 1
        while target.exists():  # an attempt moved before but recorded as not moved
            suffix += 1
            target = target.with_name(f"{number}-{outcome}-{suffix}")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        for wandb_file in target.rglob("run-*.wandb"):
            wandb_file.rename(wandb_file.with_name(f"{wandb_file.name}.{outcome}"))
        return self.rel(target)

    @staticmethod
    def reserved() -> set[str]:
        return {SWEEP_COPY, PLAN_FILE, STATE_FILE, LOCK_FILE, ATTEMPTS}


def _same(a: Mapping[str, Any], b: Mapping[str, Any], key: str) -> bool:
    return json.dumps(a.get(key), sort_keys=True, default=str) == json.dumps(
        b.get(key), sort_keys=True, default=str
    )
