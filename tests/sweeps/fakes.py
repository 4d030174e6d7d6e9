"""A stand-in launcher for the sweep command's runs: the real runner, trivial child processes.

:class:`ChildLauncher` is a real :class:`~lightning_app.sweeps.launch.ProcessLauncher` that starts,
instead of a run's ``python -m lightning_app fit ...``, a ``python -c`` child chosen per request
(milliseconds instead of seconds): the runner, its state file, retries, moved-aside attempts,
process groups and signals are the real ones, only the training is not. :func:`use_children`
installs it as what ``launchers.make_launcher`` builds, so the whole ``sweep`` command runs
in-process (see ``tests/conftest.py``'s ``in_process``).
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from dataclasses import replace

import pytest

from lightning_app.sweeps.launch import ProcessLauncher, RunProcess, RunRequest

Script = Callable[[RunRequest], str]
"""The Python source a run's child executes (its argv is the run's real argv, after ``-c``)."""

SUCCEED = "pass"
SLEEP = "import time; time.sleep(300)"


def failing(message: str, code: int) -> str:
    """A child that prints ``message`` (into the run's log) and exits ``code``."""
    return textwrap.dedent(
        f"""
        import sys
        print({message!r}, flush=True)
        sys.exit({code})
        """
    )


class ChildLauncher(ProcessLauncher):
    """Starts each request's ``script`` as ``python -c SCRIPT <the run's argv>``."""

    name = "cold"

    def __init__(self, script: Script, on_start: Callable[[RunRequest], None] | None = None):
        self.script = script
        self.on_start = on_start
        self.requests: list[RunRequest] = []
        self.closed = 0

    def start(self, request: RunRequest) -> RunProcess:
        self.requests.append(request)
        argv = (sys.executable, "-c", self.script(request), *request.argv)
        proc = super().start(replace(request, argv=argv))
        if self.on_start is not None:
            self.on_start(request)
        return proc

    def close(self) -> None:
        self.closed += 1


def use_children(
    monkeypatch: pytest.MonkeyPatch,
    script: Script,
    on_start: Callable[[RunRequest], None] | None = None,
) -> ChildLauncher:
    """Make the sweep command start ``script`` children (one launcher for the whole command)."""
    launcher = ChildLauncher(script, on_start)
    monkeypatch.setattr(
        "lightning_app.sweeps.command.make_launcher", lambda *args, **kwargs: launcher
    )
    return launcher
