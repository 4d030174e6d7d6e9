"""How the runner starts a run's process: the seam between the sweep's bookkeeping and processes.

The runner hands a launcher a :class:`RunRequest` (the run's identity, argv, environment, log and
the :class:`Resources` its scheduler gave it); the launcher returns a :class:`RunProcess` the
runner polls, stops and kills. :class:`ProcessLauncher` starts the argv as a new process (the cold
start); ``warm.WarmLauncher`` forks it from a preloaded parent; ``ray_task.RayLauncher`` runs it
as a Ray task asking for the request's resources. ``launchers.make_launcher`` builds them. Every
launcher keeps the runner's promises: one process (group) per run, in its own session so Ctrl-C
reaches only the runner, with its log as stdout and stderr, and killed when the runner dies
(``PR_SET_PDEATHSIG`` on Linux), so even ``kill -9`` of the runner leaves no orphan.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lightning_app.sweeps.processes import die_with_parent, send_to_group


@dataclass(frozen=True)
class Resources:
    """What a run holds while it runs, as its scheduler gave it (``scheduling``).

    ``cpus`` are its threads (a Ray run asks Ray for that many CPUs), ``gpus`` the GPUs it needs
    (a fraction with K runs per GPU on Ray), ``devices`` the ids a local GPU slot gives it as
    ``CUDA_VISIBLE_DEVICES`` (empty: a CPU run that sees no GPU; None: the variable is left as
    the runner has it).
    """

    cpus: float
    gpus: float = 0.0
    devices: tuple[str, ...] | None = None

    def ray_options(self) -> dict[str, float]:
        """The request as ``ray.remote(...).options`` takes it."""
        return {"num_cpus": self.cpus, "num_gpus": self.gpus}

    def describe(self) -> str:
        gpu = f", GPU={self.gpus:g}" if self.gpus else ""
        return f"CPU={self.cpus:g}{gpu}"


@dataclass(frozen=True)
class RunRequest:
    """One attempt of one run, everything a launcher needs to start it."""

    key: str
    """The run's key (its folder's name in the sweep folder)."""
    attempt: int
    argv: tuple[str, ...]
    env: Mapping[str, str]
    """The run's exact environment (its threads, W&B mode, attempt tag and GPUs included)."""
    log: Path
    """Where stdout and stderr are appended."""
    resources: Resources


class LaunchError(RuntimeError):
    """A launcher could not get ready (e.g. the warm start's preloaded parent failed)."""


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

    def begin(self) -> None:
        """Start slow preparations in the background (the warm start's imports); may do nothing."""
        ...

    def prepare(self) -> None:
        """Wait until runs can start as this launcher starts them.

        Raises:
            LaunchError: they cannot (``--warm`` turns that into exit 2).
        """
        ...

    def ready(self) -> bool:
        """Whether :meth:`start` can start a run now without blocking the runner's loop."""
        ...

    def start(self, request: RunRequest) -> RunProcess:
        """Start the request's argv with exactly its env, appending its output to its log."""
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

    def begin(self) -> None:
        """Nothing to prepare."""

    def prepare(self) -> None:
        """Always ready."""

    def ready(self) -> bool:
        return True

    def start(self, request: RunRequest) -> RunProcess:
        with request.log.open("ab") as out:  # the child keeps its own copy of the descriptor
            return subprocess.Popen(
                list(request.argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(request.env),
                start_new_session=True,  # Ctrl-C reaches the runner, which stops runs cleanly
                preexec_fn=die_with_parent(os.getpid()),
            )

    def signal(self, proc: RunProcess, signum: int) -> None:
        send_to_group(proc, signum)

    def close(self) -> None:
        """Nothing to release."""
