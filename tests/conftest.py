"""Fixtures shared by every test area."""

from __future__ import annotations

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
    without the ~8 s interpreter start-up, for whatever ends before training starts (input
    checks, --help, --print_config, dry runs)."""

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
        captured = self.capsys.readouterr()
        self.stdout, self.stderr = captured.out, captured.err
        return self


@pytest.fixture
def in_process(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path):
    """A factory of :class:`InProcess` commands run offline in a fresh working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setattr("sys.argv", ["lightning_app"])  # as if run with no pytest arguments
    return lambda *prefix: InProcess(capsys, *prefix)
