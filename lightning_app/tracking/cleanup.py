"""A command that fails before its first batch leaves nothing behind; a later failure is kept.

The run's folder and its W&B run are created before Lightning reads a single batch (the W&B run
when the trainer sets up its loggers). If the command then fails before any batch (a model whose
``setup`` raises, an optimizer it cannot build...), those are debris that a later ``analyze`` of
``wandb/`` would have to skip: this module notes, before they are created, which paths this very
command is about to create, and removes only those. A failure after the first batch keeps what
was logged, and its W&B run is marked failed.
"""

from __future__ import annotations

import os
import shutil
import sys
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightning_app.paths import first_missing

# wandb's own links at the top of its folder, repointed at each new run.
WANDB_LINKS = ("latest-run", "debug.log", "debug-internal.log")


@dataclass(frozen=True)
class NewPaths:
    """What this command is about to create: paths that do not exist yet, and the state of the
    ``wandb/`` folder its W&B run will be written under."""

    paths: tuple[Path, ...]
    """The run's own paths (its folder, its files) that do not exist yet: removed whole."""
    parents: tuple[Path, ...]
    """Folders above them (``runs/``, ``wandb/``...) that do not exist yet either: shared with
    other commands started meanwhile, so removed only if empty, deepest first."""
    wandb_root: Path
    links: dict[str, str | None] = field(default_factory=dict)


def note_new_paths(candidates: list[Path], wandb_dir: Path) -> NewPaths:
    """Remember which of ``candidates`` (and of the folders above them and ``wandb_dir/wandb``)
    do not exist yet."""
    wandb_root = wandb_dir / "wandb"
    own = [p for p in candidates if first_missing(p) is not None]
    parents: list[Path] = []
    for path in [*candidates, wandb_root / "x"]:
        outermost = first_missing(path)
        if outermost is None:
            continue
        parent = path.parent
        while parent != outermost.parent and parent not in own:
            parents.append(parent)
            parent = parent.parent
    deepest_first = sorted(dict.fromkeys(parents), key=lambda p: len(p.parts), reverse=True)
    links = {name: _link(wandb_root / name) for name in WANDB_LINKS}
    return NewPaths(tuple(dict.fromkeys(own)), tuple(deepest_first), wandb_root, links)


def _link(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def end_failed_command(new: NewPaths | None, *, any_batch: bool, offline: bool) -> None:
    """Mark the command's W&B run failed; before any batch, also remove what it created.

    Only local files are removed: an online run already on W&B's server stays, marked failed.
    """
    wandb: Any = sys.modules.get("wandb")
    run_folder: Path | None = None
    if wandb is not None and wandb.run is not None:
        with suppress(Exception):
            run_folder = Path(wandb.run.dir).parent
        wandb.finish(exit_code=1)
        if not any_batch and offline:
            wandb.teardown()  # its service must stop writing before the folder goes
    if any_batch or new is None:
        return
    ours = run_folder is not None and run_folder.parent.resolve() == new.wandb_root.resolve()
    if offline and run_folder is not None and ours:
        shutil.rmtree(run_folder, ignore_errors=True)
        for name, target in new.links.items():
            _restore_link(new.wandb_root / name, target)
    for path in new.paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with suppress(OSError):
                path.unlink()
    for folder in new.parents:
        with suppress(OSError):  # not empty: another command's runs are in it
            folder.rmdir()


def _restore_link(path: Path, target: str | None) -> None:
    with suppress(OSError):
        if path.is_symlink():
            path.unlink()
        if target is not None:
            path.symlink_to(target)
