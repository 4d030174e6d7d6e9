"""Fixtures shared by every test area."""

from __future__ import annotations

import io
import os
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from lightning_app.commands import main


@pytest.fixture(autouse=True)
def independent_offline_wandb(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test logs offline and its subprocesses start their own wandb service.

    Tests never reach W&B's server: ``WANDB_MODE=offline`` outranks a developer's ``wandb login``
    (tests of the mode rule itself unset it). A ``wandb.init`` in this process (the analysis tests
    log reports in-process) exports ``WANDB_SERVICE`` so that child processes attach to its
    service; training subprocesses started later would then share it (files land under its
    directory, a resumed id reads as "in use").
    """
    monkeypatch.setenv("WANDB_MODE", "offline")
    # setenv first so that undoing it also removes a WANDB_SERVICE the test itself exported
    # (a plain delenv of an unset variable records nothing to undo): a later test must never
    # inherit a service that this one may have stopped (wandb.teardown).
    monkeypatch.setenv("WANDB_SERVICE", "")
    monkeypatch.delenv("WANDB_SERVICE")


class InProcess:
    """``python -m lightning_app PREFIX ARGS`` run in this process: the real command's code
    without the ~8 s interpreter start-up (torch and Lightning are imported once per session).

    For input checks, --help, --print_config and dry runs, and for short training runs
    (``fit`` with a tiny model and few batches): what a process would leave behind (a W&B run
    still open after a failure, the global seed, the random generators, variables that
    Lightning sets) is undone by the ``in_process`` fixture after the test.
    """

    def __init__(self, capsys: pytest.CaptureFixture[str], *prefix: str) -> None:
        self.capsys = capsys
        self.prefix = prefix
        self.returncode = 0
        self.stdout = ""
        self.stderr = ""

    def __call__(self, *args: str) -> InProcess:
        try:
            main([*self.prefix, *args])
            self.returncode = 0
        except SystemExit as exit_info:
            self.returncode = int(exit_info.code or 0)
        finally:
            end_wandb_as_an_exit_would()
        captured = self.capsys.readouterr()
        self.stdout, self.stderr = captured.out, captured.err
        return self


@dataclass(frozen=True)
class Finished:
    """What a command run by :func:`run_in_process` returned and printed."""

    returncode: int
    stdout: str
    stderr: str


def run_in_process(args: list[str], cwd: Path, **env: str) -> Finished:
    """``python -m lightning_app ARGS`` in this process, in ``cwd``, offline, as a process would
    run it: for fixtures wider than one test, which cannot use ``in_process``."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate_command(monkeypatch, cwd, env)
        with random_state_restored(), redirect_stdout(out), redirect_stderr(err):
            try:
                main(args)
                code = 0
            except SystemExit as exit_info:
                code = int(exit_info.code or 0)
            finally:
                end_wandb_as_an_exit_would()
    return Finished(code, out.getvalue(), err.getvalue())


def isolate_command(monkeypatch: pytest.MonkeyPatch, cwd: Path, env: dict[str, str]) -> None:
    """The working folder, environment and ``sys.argv`` of a command run in this process."""
    monkeypatch.chdir(cwd)
    for name, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true", **env}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("sys.argv", ["lightning_app"])  # as if run with no pytest arguments
    for name in PROCESS_VARIABLES:  # record each one's value (or absence) to restore it after
        value = os.environ.get(name)
        monkeypatch.setenv(name, value or "")
        if value is None:
            monkeypatch.delenv(name)


# Set by Lightning (seed_everything, its import) or by the CLI (the run's identity, for DDP's
# other processes: lightning_app.tracking.run); undone after each command run in this process.
PROCESS_VARIABLES = (
    "PL_GLOBAL_SEED",
    "PL_SEED_WORKERS",
    "PYTORCH_NVML_BASED_CUDA_CHECK",
    "LIGHTNING_APP_RUN_ID",
    "LIGHTNING_APP_RUN_DIR",
)


@pytest.fixture
def in_process(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path
) -> Iterator:
    """A factory of :class:`InProcess` commands run offline in a fresh working directory."""
    isolate_command(monkeypatch, tmp_path, {})
    with random_state_restored():
        yield lambda *prefix: InProcess(capsys, *prefix)


@contextmanager
def random_state_restored() -> Iterator[None]:
    """Python's, numpy's and torch's global generators as they were (``seed_everything`` sets
    all three), so that an in-process run changes no other test's random numbers."""
    python, legacy = random.getstate(), np.random.get_state()
    torch = sys.modules.get("torch")
    before = torch.random.get_rng_state() if torch is not None else None
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(legacy)
        if torch is not None and before is not None:
            torch.random.set_rng_state(before)


def end_wandb_as_an_exit_would() -> None:
    """What a process's exit does to W&B, done after each command run in this process.

    A command that failed after ``wandb.init`` leaves its run open: end it, or the next
    ``wandb.init`` in this process would silently return it. Then stop wandb's service: it may
    still be writing a finished run's file (it buffers its writes), and a test reads the file
    next; the next command starts a service of its own, as a process would.
    """
    wandb = sys.modules.get("wandb")
    if wandb is None:
        return
    if wandb.run is not None:
        wandb.finish(exit_code=1)
    wandb.teardown()
