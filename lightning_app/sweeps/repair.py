"""``sweep FILE --repair``: rebuild a damaged ``state.json`` from the run folders and the plan.

The state file is written atomically, so it is damaged only by something outside the runner (a
full disk, an editor, a copy cut short). Everything it held can be told again from the folder:
``plan.json`` lists the runs, each run's folder holds ``exit.json`` once the runner saw it end
(written before the state file says so), and ``attempts/<key>/<n>-<outcome>/`` holds the earlier
attempts. A run whose ``exit.json`` says 0 is kept ``done``; one that says otherwise is
``failed`` (tried again, as any failed run is); a folder without it (half-written, or from before
``exit.json`` existed) is moved aside as an interrupted attempt, exactly as the runner moves one,
and its run is pending. Nothing is deleted: the damaged file stays beside the new one as
``state.json.damaged-<timestamp>``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lightning_app.errors import UserError
from lightning_app.sweeps.layout import ATTEMPTS, SweepFolder
from lightning_app.sweeps.state import STATE_FILE, Attempt, RunRecord, StateStore

ATTEMPT_NAME = re.compile(r"^(\d+)-([a-z]+)(?:-\d+)?$")


@dataclass(frozen=True)
class Repaired:
    """What ``--repair`` found: the runs kept done or failed, moved aside, and the damaged copy."""

    done: tuple[str, ...]
    failed: tuple[str, ...]
    moved: tuple[str, ...]
    """Runs whose half-written folder went under ``attempts/``; they start again."""
    damaged_copy: Path | None
    """Where the damaged state file was kept (None: there was none)."""

    def describe(self) -> str:
        kept = f"; the damaged file is kept as {self.damaged_copy}" if self.damaged_copy else ""
        return (
            f"repaired {STATE_FILE}: {len(self.done)} run(s) done, {len(self.failed)} failed, "
            f"{len(self.moved)} half-written run(s) moved to {ATTEMPTS}/ to start again{kept}"
        )


def state_needs_repair(folder: SweepFolder) -> bool:
    """Whether the folder's state file is missing (deleted) or cannot be read."""
    if not (folder.root / STATE_FILE).is_file():
        return True
    try:
        StateStore(folder.root)
    except UserError:
        return True
    return False


def repair_state(folder: SweepFolder, keys: Sequence[str], now: float | None = None) -> Repaired:
    """Keep the damaged state file aside and write a new one from the run folders.

    ``keys`` are the plan's runs; the caller holds the folder's lock.
    """
    now = time.time() if now is None else now
    damaged = _keep_damaged(folder.root / STATE_FILE, now)
    store = StateStore(folder.root)
    done: list[str] = []
    failed: list[str] = []
    moved: list[str] = []
    for key in keys:
        record = RunRecord(key, attempts=_earlier_attempts(folder, key))
        number = max((a.number for a in record.attempts), default=0) + 1
        code = _exit_code(folder, key)
        if code is not None:
            ended = folder.exit_path(key).stat().st_mtime
            outcome = "done" if code == 0 else "failed"
            record.attempts.append(
                Attempt(number, started=ended, ended=ended, exit_code=code, outcome=outcome)
            )
            record.status = "done" if code == 0 else "failed"
            (done if code == 0 else failed).append(key)
        elif folder.run_dir(key).exists():
            where = folder.move_aside(key, number, "interrupted")
            record.attempts.append(
                Attempt(number, started=now, ended=now, outcome="interrupted", moved_to=where)
            )
            moved.append(key)
        if record.attempts:
            store.runs[key] = record
    store.save()
    return Repaired(tuple(done), tuple(failed), tuple(moved), damaged)


def _keep_damaged(path: Path, now: float) -> Path | None:
    if not path.exists():
        return None
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    suffix = 1
    while target.exists():
        suffix += 1
        target = path.with_name(f"{path.name}.damaged-{stamp}-{suffix}")
    os.replace(path, target)
    return target


def _exit_code(folder: SweepFolder, key: str) -> int | None:
    """The exit status the runner recorded in the run's folder, if it is there and whole."""
    try:
        code = json.loads(folder.exit_path(key).read_text())["exit_code"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def _earlier_attempts(folder: SweepFolder, key: str) -> list[Attempt]:
    """The attempts kept under ``attempts/<key>/``, as the runner recorded them."""
    root = folder.root / ATTEMPTS / key
    if not root.is_dir():
        return []
    attempts = []
    for path in sorted(root.iterdir()):
        match = ATTEMPT_NAME.match(path.name)
        if match is None or not path.is_dir():
            continue
        mtime = path.stat().st_mtime
        attempts.append(
            Attempt(
                int(match.group(1)),
                started=mtime,
                ended=mtime,
                outcome=match.group(2),
                moved_to=folder.rel(path),
            )
        )
    return sorted(attempts, key=lambda a: a.number)
