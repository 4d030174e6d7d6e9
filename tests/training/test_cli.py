"""LightningCLI conventions hold: --print_config, stacked --config files, dotted overrides."""

from __future__ import annotations

import yaml

from tests.training.conftest import QUICKSTART, REPO

DDP_PRESET = REPO / "configs" / "trainer" / "ddp.yaml"


def test_print_config_stacks_files_and_overrides(cli, capsys) -> None:
    result = cli(
        "fit", "--config", str(QUICKSTART), "--config", str(DDP_PRESET),
        "--model.hidden_size=64", "--wandb.group=signal", "--print_config",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    # subclass mode: the study's classes by default, their arguments under init_args
    assert config["model"]["class_path"] == "lightning_app.model.BDRNN"
    assert config["data"]["class_path"] == "lightning_app.data.MNISTDataModule"
    assert config["model"]["init_args"]["hidden_size"] == 64  # the override wins
    assert config["data"]["init_args"]["dataset"] == "mnist-5k"  # from the first file
    assert config["trainer"]["strategy"] == "ddp"  # from the stacked preset
    assert config["wandb"]["group"] == "signal"
    assert config["seed_everything"] == 0


def test_study_config_is_the_study(cli) -> None:
    result = cli("fit", "--config", str(REPO / "configs/bdrnn_mnist.yaml"), "--print_config")
    config = yaml.safe_load(result.stdout)
    model, data = config["model"]["init_args"], config["data"]["init_args"]
    assert (model["hidden_size"], model["num_layers"]) == (128, 2)
    assert model["learning_rate"] == 0.003
    assert (data["batch_size"], data["dataset"]) == (100, "mnist")
    assert config["trainer"]["max_epochs"] == 10


def test_help_explains_our_additions(cli) -> None:
    result = cli("fit", "--help")
    assert result.returncode == 0
    for text in ("--wandb.group", "--wandb.mode", "--wandb.fallback", "--run_dir", "--model.help"):
        assert text in result.stdout
    assert "'class_path': 'lightning_app.model.BDRNN'" in " ".join(result.stdout.split())
    # each class's own arguments, as LightningCLI shows them in subclass mode
    assert "--data.shuffle_seed" in cli("fit", "--data.help", "MNISTDataModule").stdout
    assert "--model.hidden_size" in cli("fit", "--model.help", "BDRNN").stdout


def test_trainer_gets_our_defaults_unless_the_user_configures_them(in_process) -> None:
    """A user's single callback (not a list) is kept, and replaces our default progress bar."""
    from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar

    from lightning_app.cli import AppCLI
    from lightning_app.progress_bar import SparseRichProgressBar

    in_process()  # offline, fresh working directory
    ours = AppCLI(args=["--config", str(QUICKSTART)], run=False).trainer
    assert isinstance(ours.progress_bar_callback, SparseRichProgressBar)
    assert ours.progress_bar_callback.refresh_rate == 10
    assert ours.progress_bar_callback.every_n_batches == 10
    assert any(isinstance(c, ModelCheckpoint) for c in ours.callbacks)

    theirs = AppCLI(
        args=[
            "--config", str(QUICKSTART),
            "--trainer.callbacks=lightning.pytorch.callbacks.TQDMProgressBar",
        ],
        run=False,
    ).trainer  # fmt: skip
    assert isinstance(theirs.progress_bar_callback, TQDMProgressBar)
