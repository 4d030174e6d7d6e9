"""The sweep folder's on-disk record: what the sweep is, and where each run stands.

``plan.json`` (written once) holds the sweep file's content and every run's parameters;
``state.json`` holds each started run's status (``running``, ``done``, ``failed``), its attempts
with exit codes, process ids and log paths. Both are replaced atomically (write a temporary file in
the same folder, fsync, ``os.replace``, fsync the folder), so a runner killed at any instant leaves
either the old or the new record, never half of one. A run is recorded ``running`` *before* its
process starts and ``done`` only after the runner saw it exit 0, which is what lets a restarted
runner finish the sweep with no run lost and none counted twice.

An exclusive ``flock`` on ``.lock`` keeps a second runner out of a live sweep folder; the kernel
drops it when the runner dies, even by SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from lightning_app import files
from lightning_app.errors import UserError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

Status = Literal["pending", "running", "done", "failed"]
STATE_FILE = "state.json"
PLAN_FILE = "plan.json"
LOCK_FILE = ".lock"
FORMAT = 1


def write_json_durable(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON, durably: readers see the old or the new file,
    whole, and a power cut after the call loses nothing."""
    files.write_json_atomic(path, data, durable=True)


@dataclass
class Attempt:
    """One start of a run's process."""

    number: int
    started: float
    pid: int | None = None
    pid_start: str | None = None
    """The process's start time as the kernel reports it (tells a live pid from a reused one)."""
    ended: float | None = None
    exit_code: int | None = None
    outcome: str | None = None
    """``done``, ``failed``, ``interrupted`` (runner stopped or killed) or None while running."""
    log: str | None = None
    moved_to: str | None = None
    """Where this attempt's folder went when a later attempt took its place."""


@dataclass
class RunRecord:
    """A started run: its status and every attempt, the last one in the run's own folder."""

    key: str
    status: Status = "pending"
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def duration(self) -> float | None:
        last = self.attempts[-1] if self.attempts else None
        if last is None or last.ended is None:
            return None
        return last.ended - last.started


class StateStore:
    """Read and atomically rewrite ``state.json``; one instance per runner."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / STATE_FILE
        self.runs: dict[str, RunRecord] = {}
        for stale in folder.glob(f".{STATE_FILE}.*.tmp"):  # left by a writer killed mid-write
            with contextlib.suppress(OSError):
                stale.unlink()
        if self.path.exists():
            self.runs = _load_runs(self.path)

    def get(self, key: str) -> RunRecord:
        return self.runs.setdefault(key, RunRecord(key))

    def status(self, key: str) -> Status:
        record = self.runs.get(key)
        return record.status if record is not None else "pending"

    def save(self) -> None:
        data = {
            "format": FORMAT,
            "updated": time.time(),
            "runs": {key: asdict(record) for key, record in self.runs.items()},
        }
        write_json_durable(self.path, data)


def _load_runs(path: Path) -> dict[str, RunRecord]:
    try:
        data = json.loads(path.read_text())
        return {
            key: RunRecord(
                key=key,
                status=raw["status"],
                attempts=[Attempt(**attempt) for attempt in raw["attempts"]],
            )
            for key, raw in data["runs"].items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise UserError(
            f"{path}: unreadable sweep state ({_one_line(err)}); rerun with --repair to rebuild "
            "it from the run folders"
        ) from err


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split()) or type(err).__name__


@contextlib.contextmanager
def sweep_lock(folder: Path) -> Iterator[None]:
    """Hold the sweep folder for this runner, or fail naming the runner that holds it."""
    if fcntl is None:  # pragma: no cover - Windows: no advisory locks, trust the user
        yield
        return
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text().strip() or "another process"
            raise UserError(
                f"{folder} is in use by another sweep runner (pid {holder}); wait for it or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)
