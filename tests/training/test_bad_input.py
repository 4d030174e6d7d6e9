"""A user's mistake ends in one line naming the key or file, exit status 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.conftest import QUICK, TINY
from tests.training.idx import write_mnist


def assert_one_line_error(result, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ")
    for needle in needles:
        assert needle in last, last


@pytest.mark.parametrize(
    ("override", "needles"),
    [
        ("--model.hidden_size=0", ["model.hidden_size", "positive"]),
        ("--model.num_layers=-1", ["model.num_layers", "positive"]),
        ("--data.dataset=cifar10", ["data.dataset", "cifar10"]),
        (
            "--model.hidden_sise=64",
            ["model.hidden_sise is not an argument of lightning_app.model.BDRNN", "hidden_size?"],
        ),
        ("--data.batch_size=0", ["data.batch_size", "positive"]),
        ("--trainer.max_epochs=-5", ["trainer.max_epochs:", "non-negative integer or -1"]),
        ("--model=torch.nn.Linear", ["model: torch.nn.Linear is not a LightningModule"]),
        ("--data=lightning_app.model.BDRNN", ["data:", "is not a LightningDataModule"]),
        ("--model=nosuch.Net", ["model: cannot import nosuch.Net", "nosuch"]),
        ("--model=lightning_app.model.Nope", ["model: lightning_app.model has no Nope"]),
    ],
)
def test_bad_values_and_unknown_keys(cli, override: str, needles: list[str]) -> None:
    assert_one_line_error(cli("fit", *TINY, override), *needles)
    assert not Path("runs").exists()  # a rejected run leaves no run folder behind


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        (
            ["--trainer.callbacks=ModelCheckpoint", "--trainer.callbacks.mode=bad"],
            ["Callback", "`mode` can be min, max but got bad"],
        ),
        (
            [
                "--trainer.callbacks=lightning_app.progress_bar.SparseRichProgressBar",
                "--trainer.callbacks.every_n_batches=0",
            ],
            ["Callback", "every_n_batches must be at least 1, got 0"],
        ),
    ],
)
def test_a_callback_that_refuses_its_values(cli, overrides: list[str], needles: list[str]) -> None:
    """jsonargparse's many-line union error becomes the callback's own message."""
    assert_one_line_error(cli("fit", *TINY, *overrides), *needles)


def test_malformed_yaml_names_the_file(cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  hidden_size: [16\n")
    assert_one_line_error(cli("fit", *TINY, "--config", str(bad)), "bad.yaml", "malformed YAML")


def test_unknown_key_in_a_config_file(cli, tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text("model:\n  hiden_size: 16\n")
    assert_one_line_error(cli("fit", *TINY, "--config", str(extra)), "hiden_size")


def test_a_checkpoint_that_is_not_one(cli, tmp_path: Path) -> None:
    junk = tmp_path / "last.ckpt"
    junk.write_text("not a checkpoint")
    assert_one_line_error(
        cli("fit", *TINY, f"--ckpt_path={junk}"), "ckpt_path:", "not a checkpoint"
    )
    missing = tmp_path / "none.ckpt"
    assert_one_line_error(cli("validate", *TINY, f"--ckpt_path={missing}"), "does not exist")
    assert_one_line_error(cli("test", *TINY, f"--ckpt_path={tmp_path}"), "is a folder")


def test_missing_config_file(cli) -> None:
    assert_one_line_error(cli("fit", "--config", "nope.yaml"), "nope.yaml", "does not exist")


def test_missing_data_files(cli, tmp_path: Path) -> None:
    result = cli("fit", *TINY, "--data.dataset=mnist", f"--data.data_dir={tmp_path / 'nothing'}")
    assert_one_line_error(result, "nothing/MNIST/raw", "not found")


def test_corrupt_data_file(cli, tmp_path: Path) -> None:
    raw = write_mnist(tmp_path / "data")
    images = raw / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:5000])  # truncated
    result = cli("fit", *TINY, "--data.dataset=mnist", f"--data.data_dir={tmp_path / 'data'}")
    assert_one_line_error(
        result, "MNIST/raw/train-images-idx3-ubyte: truncated: 5000 bytes, expected 470416"
    )
    assert not Path("runs").exists() and not Path("wandb").exists()


def test_existing_run_dir_is_never_overwritten(cli, tmp_path: Path) -> None:
    assert cli("fit", *QUICK, "--trainer.max_epochs=1", "--run_dir=mine").returncode == 0
    before = (tmp_path / "mine" / "config.yaml").read_bytes()
    assert_one_line_error(cli("fit", *TINY, "--run_dir=mine"), "mine", "--ckpt_path last")
    assert (tmp_path / "mine" / "config.yaml").read_bytes() == before
