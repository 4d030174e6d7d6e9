"""Real 2-process DDP on CPU (gloo) through the real command, which DDP relaunches."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from tests.conftest import run_in_process
from tests.training.conftest import TINY, read_wandb, wandb_files
from tests.training.idx import write_mnist
from tests.training.test_bad_input import assert_one_line_error

DDP = ["--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu"]


@pytest.mark.process
def test_ddp_logs_one_run_and_evaluates_the_test_set_once(app, tmp_path: Path) -> None:
    """Each of 1,001 test images (not divisible by 2 ranks) is evaluated by exactly one rank.

    A synced accuracy is the same whether the ranks split the set or each evaluates all of it,
    and padding (as DistributedSampler does) would count an image twice; so the model records
    the images each rank saw (tests/training/counting.py).
    """
    write_mnist(tmp_path / "data", n_train=600, n_test=1001)
    counts = tmp_path / "counts"
    counts.mkdir()
    args = [
        TINY[0],
        "--model=tests.training.counting.CountingBDRNN",
        *TINY[1:],
        "--data.dataset=mnist",
        f"--data.data_dir={tmp_path / 'data'}",
        "--data.val_size=100",
        "--data.batch_size=50",
    ]
    result = app("fit", *args, *DDP, "--run_dir=ddp", COUNT_DIR=str(counts))
    assert result.returncode == 0, result.stderr
    (file,) = wandb_files(tmp_path)  # exactly one W&B run: only global rank 0 creates it
    logged = read_wandb(file)
    assert logged.config["data"]["batch_size"] == 50
    assert str(logged.config["trainer"]["devices"]) == "2"  # Lightning types devices as int | str
    epochs = logged.epochs()
    ddp_acc = epochs[max(epochs)]["test/acc"]

    # One device, same checkpoint, all 1,001 test images: the same accuracy (in this process).
    single = run_in_process(
        ["test", *args, "--ckpt_path=ddp/checkpoints/last.ckpt", "--trainer.logger=false",
         "--run_dir=eval"], tmp_path, COUNT_DIR=str(counts),
    )  # fmt: skip
    assert single.returncode == 0, single.stderr
    single_acc = float(re.search(r"test/acc=([0-9.]+)", single.stdout).group(1))
    assert round(ddp_acc, 4) == single_acc
    # The ranks' shares together are the whole test set, each image once, nearly evenly split.
    everything = torch.load(counts / "test-rank0.pt")
    shares = [torch.load(counts / f"fit-rank{rank}.pt") for rank in (0, 1)]
    assert len(everything) == 1001 and sorted(map(len, shares)) == [500, 501]
    assert torch.equal(torch.cat(shares).sort().values, everything.sort().values)
    assert round(ddp_acc * 1001) == pytest.approx(ddp_acc * 1001, abs=1e-3)  # a count of 1,001
    # The evaluation kept its config beside, not over, anything the training run wrote.
    assert (tmp_path / "eval" / "config-test.yaml").is_file()


def test_batch_size_must_divide_across_devices(cli) -> None:
    """Checked in this process, before DDP would start its second process."""
    result = cli("fit", *TINY, *DDP, "--data.batch_size=51")
    assert_one_line_error(result, "data.batch_size=51", "2 devices")
