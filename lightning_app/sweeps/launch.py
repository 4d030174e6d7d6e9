"""How the runner starts a run's process: the seam between the sweep's bookkeeping and processes.

The runner hands a launcher a run's argv, environment and log file; the launcher returns a
:class:`RunProcess` the runner polls, stops and kills. :class:`ProcessLauncher` starts the argv
as a new process (the cold start); ``warm.WarmLauncher`` forks it from a preloaded parent. Every
launcher keeps the runner's promises: one process (group) per run, in its own session so Ctrl-C
reaches only the runner, with its log as stdout and stderr, and on Linux killed by the kernel
when the runner dies (``PR_SET_PDEATHSIG``), so even ``kill -9`` of the runner leaves no orphan.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

PR_SET_PDEATHSIG = 1


class RunProcess(Protocol):
    """A started run as the runner sees it; a ``subprocess.Popen`` is one."""

    @property
    def pid(self) -> int | None:
        """The run's process id, also its process group and session id; None when the process
        is not on this machine (a Ray task's run lives on some node)."""
        ...

    @property
    def returncode(self) -> int | None:
        """Exit status once it ended (negative: the signal that killed it), else None."""
        ...

    def poll(self) -> int | None:
        """The exit status if the run ended, without waiting."""
        ...

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the run to end; ``subprocess.TimeoutExpired`` after ``timeout`` seconds."""
        ...


def lost_reason(proc: RunProcess) -> str | None:
    """Why a run ended with its machine rather than by itself (a ``lost`` attribute that
    launchers on other machines may set; e.g. its Ray node died), else None.

    The runner starts a lost run again, like one interrupted by ``kill -9``, instead of
    counting it failed.
    """
    reason = getattr(proc, "lost", None)
    return str(reason) if reason else None


class Launcher(Protocol):
    """Starts runs; its owner closes it once no run is left (a runner never does)."""

    name: str
    """How runs start, for the sweep's first line (``cold``, ``warm``)."""

    def ready(self) -> bool:
        """Whether :meth:`start` can start a run now without blocking the runner's loop."""
        ...

    def start(self, argv: Sequence[str], env: Mapping[str, str], log: Path) -> RunProcess:
        """Start ``argv`` with exactly ``env``, appending stdout and stderr to ``log``."""
        ...

    def signal(self, proc: RunProcess, signum: int) -> None:
        """Send ``signum`` to everything the run started (SIGTERM to stop, SIGKILL to kill)."""
        ...

    def close(self) -> None:
        """Release what the launcher holds (called after every run has ended)."""
        ...


class ProcessLauncher:
    """The cold start: each run is ``argv`` executed as a new process (never through a shell)."""

    name = "cold"

    def ready(self) -> bool:
        return True

    def start(self, argv: Sequence[str], env: Mapping[str, str], log: Path) -> RunProcess:
        with log.open("ab") as out:  # the child keeps its own copy of the descriptor
            return subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env),
                start_new_session=True,  # Ctrl-C reaches the runner, which stops runs cleanly
                preexec_fn=die_with_parent(os.getpid()),
            )

    def signal(self, proc: RunProcess, signum: int) -> None:
        signal_group(proc, signum)

    def close(self) -> None:
        """Nothing to release."""


def signal_group(proc: RunProcess, signum: int) -> None:
    """Send ``signum`` to the run's whole process group (it may have ended already)."""
    if proc.pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


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
