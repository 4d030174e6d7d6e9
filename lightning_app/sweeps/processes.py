"""Process groups: how a run's processes are started, found, stopped and killed (stdlib only).

Every run lives in its own session, so its process group holds everything it started (its W&B
service, DDP ranks, DataLoader workers). Stopping is always the same: ask (SIGTERM to the group),
give it ``grace_s`` to end, then SIGKILL the group. A pid read back from ``state.json`` may have
been reused by the time a restarted runner looks at it, so it is only signalled when its kernel
start time still matches (:func:`is_same_process`); processes are otherwise found by the attempt
tag every process of an attempt inherits (:func:`tagged_processes`). Ray's task on a node, the
warm start's parent and the runner all stop their processes through :func:`stop_processes`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

PR_SET_PDEATHSIG = 1
ATTEMPT_TAG = "LIGHTNING_APP_SWEEP_ATTEMPT"
"""Environment variable naming a run's attempt; every process of that attempt inherits it."""


class Waitable(Protocol):
    """A started process: a ``subprocess.Popen``, a ``launch.RunProcess`` or a :class:`Group`."""

    @property
    def pid(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for it to end; ``subprocess.TimeoutExpired`` after ``timeout`` seconds."""
        ...


P = TypeVar("P", bound=Waitable)


def signal_group(pid: int | None, signum: int) -> None:
    """Send ``signum`` to the process group ``pid`` leads (it may have ended already)."""
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def send_to_group(proc: Waitable, signum: int) -> None:
    """:func:`signal_group` of a started process: how cold and warm runs are signalled."""
    signal_group(proc.pid, signum)


def stop_processes(
    procs: Sequence[P],
    grace_s: float,
    send: Callable[[P, int], None] = send_to_group,
    after_kill_s: float | None = None,
) -> None:
    """Stop ``procs`` together: SIGTERM each, wait up to ``grace_s`` for all, SIGKILL the rest.

    ``send`` delivers a signal (default: to the process's group; Ray cancels its task instead).
    After SIGKILL each is waited for ``after_kill_s`` seconds (None: until it ends).
    """
    for proc in procs:
        send(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            send(proc, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=after_kill_s)


class Group:
    """A process group that is not this process's child (a pid from ``state.json``): waiting for
    it means polling until no process of the group is left."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def wait(self, timeout: float | None = None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                os.killpg(self.pid, 0)
            except (ProcessLookupError, PermissionError):
                return None
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"process group {self.pid}", timeout or 0.0)
            time.sleep(0.05)


def kill_process_group(pid: int, grace_s: float = 5.0) -> None:
    """SIGTERM the run's process group (the run, its W&B service, DDP ranks), then SIGKILL."""
    stop_processes([Group(pid)], grace_s, after_kill_s=grace_s)


def kill_attempt_processes(tag: str, pid: int | None, pid_start: str | None) -> int:
    """Kill what is left of an interrupted attempt: processes carrying its tag, or its group."""
    killed = 0
    for other in tagged_processes(tag):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(other, signal.SIGKILL)
            killed += 1
    if pid is not None and is_same_process(pid, pid_start):  # platforms without /proc
        kill_process_group(pid)
        killed += 1
    return killed


def tagged_processes(tag: str) -> list[int]:
    """Pids whose environment has ``ATTEMPT_TAG=tag`` (Linux ``/proc``; empty elsewhere)."""
    needle = f"{ATTEMPT_TAG}={tag}".encode()
    found: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():  # pragma: no cover
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux ``/proc``), None where unknown or gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command name


def is_same_process(pid: int | None, start: str | None) -> bool:
    """Whether the process recorded as ``(pid, start)`` still runs (not a reused pid)."""
    if pid is None:
        return False
    if sys.platform.startswith("linux"):
        return start is not None and process_start_time(pid) == start
    try:  # pragma: no cover - elsewhere only liveness can be checked
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def die_with_parent(parent: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGKILL the child when ``parent`` dies (None elsewhere).

    Also called directly in a forked child, where it has the same effect.
    """
    if not sys.platform.startswith("linux"):
        return None  # pragma: no cover
    try:
        prctl: Any = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover
        return None

    def set_death_signal() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return set_death_signal


__all__ = [
    "ATTEMPT_TAG",
    "Group",
    "die_with_parent",
    "is_same_process",
    "kill_attempt_processes",
    "kill_process_group",
    "process_start_time",
    "send_to_group",
    "signal_group",
    "stop_processes",
    "tagged_processes",
]
