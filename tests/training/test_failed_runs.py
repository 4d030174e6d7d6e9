"""A command that fails before its first batch leaves no run folder and no W&B run behind; one
that fails later keeps what it logged, and its W&B run is marked failed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lightning_app.data import MNISTDataModule
from lightning_app.errors import UserError
from lightning_app.model import BDRNN
from tests.training.conftest import QUICK, wandb_files
from tests.training.test_probes import assert_probe, snapshot


def exit_code(path: Path) -> int | None:
    """The exit code W&B recorded for the run in ``path`` (its own decoder)."""
    out = subprocess.run(
        ["wandb", "leet", "inspect", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    records = [json.loads(line) for line in out.splitlines()]
    exits = [record["exit"] for record in records if record.get("type") == "exit"]
    return int(exits[-1]["exit_code"]) if exits else None


def refuse_setup(self, stage: str) -> None:
    raise UserError("data: refused in setup")


@pytest.mark.parametrize("command", ["fit", "validate"])
def test_a_failure_after_wandb_starts_but_before_any_batch_leaves_nothing(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """The W&B run already exists when the DataModule's ``setup`` runs: it is removed, as are
    the run folder and ``wandb/`` this command created; an earlier run's files stay as they were."""
    assert cli("fit", *QUICK, "--trainer.max_epochs=1").returncode == 0
    before = snapshot(tmp_path)
    monkeypatch.setattr(MNISTDataModule, "setup", refuse_setup)
    result = cli(command, *QUICK, "--trainer.max_epochs=1")
    assert_probe(result, tmp_path, before, "data: refused in setup")


def test_a_failure_before_any_batch_in_a_fresh_folder_leaves_no_folder(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MNISTDataModule, "setup", refuse_setup)
    assert_probe(cli("fit", *QUICK, "--run_dir=a/b"), tmp_path, {}, "refused in setup")


def test_a_failure_after_the_first_step_keeps_the_run_marked_failed(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    step = BDRNN.training_step

    def fail_at_step_2(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        if batch_idx == 2:
            raise UserError("model: refused at step 2")
        return step(self, batch, batch_idx)

    monkeypatch.setattr(BDRNN, "training_step", fail_at_step_2)
    result = cli("fit", *QUICK, "--trainer.max_epochs=1", "--run_dir=kept")
    assert result.returncode == 2 and "refused at step 2" in result.stderr
    assert (tmp_path / "kept" / "wandb_id").is_file()
    assert (tmp_path / "kept" / "config.yaml").is_file()
    (run,) = wandb_files(tmp_path)
    assert exit_code(run) == 1


def test_a_shared_folder_created_meanwhile_by_another_command_is_kept(tmp_path: Path) -> None:
    """Two commands start in a fresh folder: the one that fails before its first batch removes
    its own run folder, and `runs/` and `wandb/` only if nothing else is in them."""
    from lightning_app.tracking.cleanup import end_failed_command, note_new_paths

    ours = tmp_path / "runs" / "ours"
    new = note_new_paths([ours, ours / "checkpoints", ours / "config.yaml"], tmp_path)
    (ours / "checkpoints").mkdir(parents=True)
    (ours / "config.yaml").write_text("x")
    other = tmp_path / "runs" / "other"  # started by another command meanwhile
    other.mkdir()
    (tmp_path / "wandb" / "offline-run-other").mkdir(parents=True)
    end_failed_command(new, any_batch=False, offline=True)
    assert not ours.exists()
    assert other.is_dir() and (tmp_path / "wandb" / "offline-run-other").is_dir()

    alone = tmp_path / "alone"
    alone.mkdir()
    run = alone / "runs" / "ours"
    new = note_new_paths([run, run / "checkpoints"], alone)
    (run / "checkpoints").mkdir(parents=True)
    (alone / "wandb").mkdir()
    end_failed_command(new, any_batch=False, offline=True)
    assert sorted(p.name for p in alone.iterdir()) == []  # its own empty runs/ and wandb/ went
