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
    assert config["model"]["hidden_size"] == 64  # the override wins
    assert config["data"]["dataset"] == "mnist-5k"  # from the first file
    assert config["trainer"]["strategy"] == "ddp"  # from the stacked preset
    assert config["wandb"]["group"] == "signal"
    assert config["seed_everything"] == 0


def test_study_config_is_the_study(cli) -> None:
    result = cli("fit", "--config", str(REPO / "configs/bdrnn_mnist.yaml"), "--print_config")
    config = yaml.safe_load(result.stdout)
    assert (config["model"]["hidden_size"], config["model"]["num_layers"]) == (128, 2)
    assert config["model"]["learning_rate"] == 0.003
    assert (config["data"]["batch_size"], config["data"]["dataset"]) == (100, "mnist")
    assert config["trainer"]["max_epochs"] == 10


def test_help_explains_our_additions(cli) -> None:
    result = cli("fit", "--help")
    assert result.returncode == 0
    for text in ("--wandb.group", "--wandb.mode", "--run_dir", "--data.shuffle_seed"):
        assert text in result.stdout
