"""The real command end to end: a trained, logged run, as a user gets it.

The command runs in this process (``cli``); one test runs it as a user does, in a process of its
own (``python -m lightning_app fit --config ...``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.training.conftest import QUICK, TINY, Result, read_wandb, wandb_files

METRICS = {"epoch", "train/loss", "val/acc", "test/acc"}


def test_fit_logs_every_epoch_and_the_nested_config(cli, tmp_path: Path) -> None:
    result = cli("fit", *TINY, "--wandb.group=noise", "--wandb.tags=[a,b]")
    check_logged_run(result, tmp_path)


@pytest.mark.process
def test_fit_as_a_user_runs_it(app, tmp_path: Path) -> None:
    """``python -m lightning_app fit --config ...`` in a process of its own."""
    result = app("fit", *TINY, "--wandb.group=noise", "--wandb.tags=[a,b]")
    check_logged_run(result, tmp_path)


def check_logged_run(result: Result, tmp_path: Path) -> None:
    """A TINY run with group ``noise`` and tags a, b, trained in ``tmp_path``."""
    assert result.returncode == 0, result.stderr
    assert "test/acc=" in result.stdout  # the final accuracy is printed

    (file,) = wandb_files(tmp_path)
    logged = read_wandb(file)
    assert logged.run["run_group"] == "noise"
    assert logged.run["tags"] == ["a", "b"]
    assert logged.run["job_type"] == "train"
    # Full resolved CLI config, nested; none of save_hyperparameters' flat duplicates.
    assert logged.config["model"]["hidden_size"] == 16
    assert logged.config["data"]["dataset"] == "mnist-5k"
    assert logged.config["trainer"]["max_epochs"] == 2
    assert logged.config["seed_everything"] == 0
    assert "hidden_size" not in logged.config
    epochs = logged.epochs()
    assert sorted(epochs) == [0, 1]
    for row in epochs.values():
        assert set(row) >= METRICS
        # Accuracies over the 1,000 test and 500 validation images: whole counts of images.
        assert row["test/acc"] * 1000 == pytest.approx(round(row["test/acc"] * 1000), abs=1e-3)
        assert row["val/acc"] * 500 == pytest.approx(round(row["val/acc"] * 500), abs=1e-3)
        assert row["train/loss"] > 0
    printed = float(result.stdout.split("test/acc=")[1].split(",")[0])
    assert printed == round(epochs[1]["test/acc"], 4)

    # Its own run directory: config.yaml, checkpoints, the W&B id; the logged run_dir points there.
    run_dir = tmp_path / logged.config["run_dir"]
    assert (run_dir / "wandb_id").read_text().strip() == logged.run["run_id"]
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())  # LightningCLI's own format
    assert saved["model"]["init_args"]["hidden_size"] == 16
    assert logged.config["model"]["class_path"] == saved["model"]["class_path"]
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


def test_two_runs_from_one_directory_do_not_collide(cli, tmp_path: Path) -> None:
    """Two commands (here in one process: the first one's W&B run must have ended)."""
    for _ in range(2):
        result = cli("fit", *QUICK, "--trainer.max_epochs=1")
        assert result.returncode == 0, result.stderr
    run_dirs = sorted((tmp_path / "runs").iterdir())
    assert len(run_dirs) == 2
    assert all((d / "config.yaml").is_file() for d in run_dirs)
    assert len(wandb_files(tmp_path)) == 2


@pytest.mark.slow
def test_quickstart_learns(app, tmp_path: Path) -> None:
    """The README's quickstart numbers: far above chance on real digits (the whole config, about
    a minute of training: slow, like the CNN's ``test_the_shipped_config_learns``)."""
    result = app("fit", "--config", str(Path(__file__).parents[2] / "configs/quickstart.yaml"))
    assert result.returncode == 0, result.stderr
    (file,) = wandb_files(tmp_path)
    final = read_wandb(file).epochs()
    assert final[max(final)]["test/acc"] > 0.85


def test_a_command_ends_its_wandb_run(in_process) -> None:
    """In one process (a notebook, these tests) the next command must get a W&B run of its own:
    ``wandb.init`` would silently return a run still open."""
    import wandb

    from lightning_app.commands import main

    in_process()  # an offline, fresh working directory
    main(["fit", *QUICK, "--trainer.max_epochs=1"])
    assert wandb.run is None
