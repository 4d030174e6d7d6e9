"""Real 2-process DDP on CPU (gloo) through the real command, which DDP relaunches."""

from __future__ import annotations

import re
from pathlib import Path

from tests.training.conftest import TINY, read_wandb, wandb_files
from tests.training.test_bad_input import assert_one_line_error

DDP = ["--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu"]


def test_ddp_logs_one_run_and_evaluates_the_test_set_once(app, tmp_path: Path) -> None:
    result = app("fit", *TINY, *DDP, "--data.batch_size=50", "--run_dir=ddp")
    assert result.returncode == 0, result.stderr
    (file,) = wandb_files(tmp_path)  # exactly one W&B run: only global rank 0 creates it
    logged = read_wandb(file)
    assert logged.config["data"]["batch_size"] == 50
    assert str(logged.config["trainer"]["devices"]) == "2"  # Lightning types devices as int | str
    epochs = logged.epochs()
    ddp_acc = epochs[max(epochs)]["test/acc"]

    # One device, same checkpoint, all 1,000 test images: the same accuracy.
    single = app(
        "test", *TINY, "--ckpt_path=ddp/checkpoints/last.ckpt", "--trainer.logger=false",
        "--run_dir=eval",
    )  # fmt: skip
    assert single.returncode == 0, single.stderr
    single_acc = float(re.search(r"test/acc=([0-9.]+)", single.stdout).group(1))
    assert round(ddp_acc, 4) == single_acc
    # The evaluation kept its config beside, not over, anything the training run wrote.
    assert (tmp_path / "eval" / "config-test.yaml").is_file()


def test_batch_size_must_divide_across_devices(app) -> None:
    result = app("fit", *TINY, *DDP, "--data.batch_size=51")
    assert_one_line_error(result, "data.batch_size=51", "2 devices")
