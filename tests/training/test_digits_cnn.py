"""The example CNN (lightning_app/examples): a user's model that meets the tool's contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from lightning_app.data import MNISTDataModule
from lightning_app.errors import UserError
from lightning_app.examples import DigitsCNN
from tests.training.conftest import REPO, read_wandb, wandb_files

CONFIG = REPO / "configs" / "examples" / "digits_cnn.yaml"
METRICS = {"epoch", "train/loss", "val/acc", "test/acc"}


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if v.is_floating_point()}


def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_logits_and_predictions_for_a_batch_of_digits() -> None:
    model = DigitsCNN(channels=4, hidden=8)
    images, labels = torch.randn(5, 28, 28), torch.zeros(5, dtype=torch.long)
    assert model(images).shape == (5, 10)
    predicted = model.predict_step((images, labels), 0)
    assert predicted.shape == (5,) and predicted.dtype == torch.long
    assert model.features[0].out_channels == 4 and model.features[3].out_channels == 8
    assert model.classifier[1].out_features == 8


def test_init_seed_alone_decides_the_initial_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    torch.manual_seed(1)
    first = DigitsCNN(channels=4, hidden=8, init_seed=3)
    torch.manual_seed(2)  # another global state: the same weights
    again = DigitsCNN(channels=4, hidden=8, init_seed=3)
    other = DigitsCNN(channels=4, hidden=8, init_seed=4)
    assert same(first, again)
    assert not same(first, other)
    # Without init_seed, the run's seed (what seed_everything publishes) decides.
    monkeypatch.setenv("PL_GLOBAL_SEED", "3")
    assert same(DigitsCNN(channels=4, hidden=8), first)
    # And building the model leaves the global generator where it was.
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    DigitsCNN(channels=4, hidden=8, init_seed=9)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channels": 0}, "model.channels must be a positive integer, got 0"),
        ({"hidden": -2}, "model.hidden must be a positive integer, got -2"),
        ({"learning_rate": 0.0}, "model.learning_rate must be positive, got 0.0"),
        ({"dropout": 1.0}, "model.dropout must be at least 0 and below 1, got 1.0"),
    ],
)
def test_bad_arguments_name_their_key(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError) as info:
        DigitsCNN(**kwargs)
    assert str(info.value) == message


def test_it_logs_what_the_analyses_read(tmp_path: Path) -> None:
    """train/loss, val/acc and test/acc (the DataModule's second validation loader) every epoch,
    and test/acc from ``test``; nothing else, no ``/dataloader_idx_N`` suffixes."""
    data = MNISTDataModule(dataset="mnist-5k", data_dir=str(tmp_path), batch_size=100)
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=1, limit_train_batches=3, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, default_root_dir=tmp_path,
    )  # fmt: skip
    model = DigitsCNN(channels=4, hidden=8, init_seed=0)
    trainer.fit(model, data)
    assert set(trainer.callback_metrics) == {"train/loss", "val/acc", "test/acc"}
    per_epoch = float(trainer.callback_metrics["test/acc"])
    assert per_epoch != pytest.approx(float(trainer.callback_metrics["val/acc"]))
    tested = trainer.test(model, data, verbose=False)
    assert [set(result) for result in tested] == [{"test/acc"}]
    # The accuracy logged per epoch on loader 1 is the test set's accuracy, all 1,000 images.
    assert tested[0]["test/acc"] == pytest.approx(per_epoch)


def test_the_shipped_config_trains_and_logs_its_arguments(cli, tmp_path: Path) -> None:
    result = cli(
        "fit", f"--config={CONFIG}", "--model.channels=8", "--trainer.max_epochs=2",
        "--trainer.limit_train_batches=15", "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "warning:" not in result.stderr

    (file,) = wandb_files(tmp_path)
    logged = read_wandb(file)
    assert logged.run["run_group"] == "cnn"
    assert logged.config["model"] == {
        "class_path": "lightning_app.examples.DigitsCNN",
        "channels": 8,
        "hidden": 64,
        "learning_rate": 0.003,
        "dropout": 0.1,
        "init_seed": None,
    }
    assert logged.config["data"]["dataset"] == "mnist-5k"
    epochs = logged.epochs()
    assert sorted(epochs) == [0, 1]
    for row in epochs.values():
        assert set(row) >= METRICS
    assert epochs[1]["test/acc"] > 0.5  # 1,500 images seen: far above chance (0.1)


@pytest.mark.slow
def test_the_shipped_config_learns(app, tmp_path: Path) -> None:
    """The whole config (10 epochs, about a minute): what docs/own-model.md promises."""
    result = app("fit", f"--config={CONFIG}", "--trainer.enable_progress_bar=false")
    assert result.returncode == 0, result.stderr
    (file,) = wandb_files(tmp_path)
    final = read_wandb(file).epochs()
    assert sorted(final) == list(range(10))
    assert final[9]["test/acc"] > 0.95
