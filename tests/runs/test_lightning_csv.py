"""Lightning CSVLogger folders as a source, written by Lightning's own CSVLogger."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lightning_app.errors import UserError
from lightning_app.runs import load_runs

from .helpers import cli_config, tree_snapshot


def write_csv_run(
    save_dir: Path,
    name: str,
    version: int,
    acc0: float,
    epochs: int = 3,
    skip_epochs: tuple[int, ...] = (),
    with_cli_config: bool = True,
) -> Path:
    """Log like a Trainer with CSVLogger: each metric in its own log call, with epoch and step."""
    from lightning.pytorch.loggers import CSVLogger

    logger = CSVLogger(str(save_dir), name=name, version=version)
    logger.log_hyperparams({"hidden_size": 128, "learning_rate": 0.001})
    for epoch in range(epochs):
        if epoch in skip_epochs:
            continue
        step = (epoch + 1) * 10 - 1
        logger.log_metrics({"train/loss": 1.0 / (epoch + 1), "epoch": epoch}, step=step)
        logger.log_metrics({"val/acc": acc0 + 0.01 * epoch, "epoch": epoch}, step=step)
        logger.log_metrics({"test/acc": acc0 + 0.02 * epoch, "epoch": epoch}, step=step)
    logger.save()
    log_dir = Path(logger.log_dir)
    if with_cli_config:  # LightningCLI's SaveConfigCallback writes the resolved config here
        (log_dir / "config.yaml").write_text(yaml.safe_dump(cli_config(seed=version)))
    return log_dir


@pytest.fixture(scope="module")
def csv_logs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("csv") / "lightning_logs"
    write_csv_run(root, "noise", 0, acc0=0.5)
    write_csv_run(root, "noise", 1, acc0=0.52)
    write_csv_run(root, "signal", 0, acc0=0.4, with_cli_config=False)
    write_csv_run(root, "gappy", 0, acc0=0.3, epochs=5, skip_epochs=(2, 3))
    return root


def test_reads_csvlogger_folders(csv_logs):
    runs = load_runs(str(csv_logs), progress=False)
    assert sorted(runs.ids) == [
        "gappy/version_0",
        "noise/version_0",
        "noise/version_1",
        "signal/version_0",
    ]
    assert runs.groups() == ["gappy", "noise", "signal"]
    noise1 = runs.run("noise/version_1")
    assert list(noise1.history.index) == [0, 1, 2]
    assert noise1.history.loc[2, "test/acc"] == pytest.approx(0.56)
    assert noise1.history.loc[1, "train/loss"] == pytest.approx(0.5)
    assert "step" not in runs.metrics()
    assert noise1.state == "finished"


def test_config_yaml_gives_dotted_cli_keys_else_hparams(csv_logs):
    runs = load_runs(str(csv_logs), progress=False)
    assert runs.run("noise/version_1").config["model.hidden_size"] == 128
    assert runs.run("noise/version_1").config["seed_everything"] == 1
    assert runs.run("signal/version_0").config == {"hidden_size": 128, "learning_rate": 0.001}


def test_missing_epochs_read_as_nan_with_a_warning(csv_logs):
    runs = load_runs(str(csv_logs), group="gappy", progress=False)
    matrix = runs.metric_matrix("val/acc")
    assert list(matrix.epochs) == [0, 1, 4]
    (warning,) = [w.message for w in runs.warnings if w.id == "gappy/version_0"]
    assert warning == "no rows for epoch(s) 2, 3 (logged 0..4); their values are NaN"
    both = load_runs(str(csv_logs), group=["gappy", "noise"], progress=False)
    matrix = both.metric_matrix("val/acc")
    assert list(matrix.epochs) == [0, 1, 2, 4]  # union over runs; nobody logged epoch 3
    gappy = list(matrix.run_ids).index("gappy/version_0")
    assert np.isnan(matrix.values[gappy, 2])
    assert matrix.values[gappy, 3] == pytest.approx(0.34)


def test_extra_columns(tmp_path, csv_logs):
    log_dir = write_csv_run(tmp_path / "logs", "extra", 0, acc0=0.5)
    metrics = log_dir / "metrics.csv"
    lines = metrics.read_text().splitlines()
    lines[0] += ",lr,note"
    lines[1:] = [line + f",0.01,run {i}" for i, line in enumerate(lines[1:])]
    metrics.write_text("\n".join(lines) + "\n")
    runs = load_runs(str(tmp_path / "logs"), progress=False)
    assert "lr" in runs.metrics()  # a numeric extra column is one more metric
    assert "note" not in runs.metrics()
    assert "column 'note' is not numeric; ignored" in [w.message for w in runs.warnings]


def test_damaged_csv_is_skipped_others_read(tmp_path):
    write_csv_run(tmp_path / "logs", "ok", 0, acc0=0.5)
    empty = tmp_path / "logs" / "bad" / "version_0"
    empty.mkdir(parents=True)
    (empty / "metrics.csv").write_text("")
    no_epoch = tmp_path / "logs" / "bad" / "version_1"
    no_epoch.mkdir(parents=True)
    (no_epoch / "metrics.csv").write_text("loss\n1.0\n")
    runs = load_runs(str(tmp_path / "logs"), progress=False)
    assert runs.ids == ["ok/version_0"]
    assert {s.id: s.reason for s in runs.skipped} == {
        "bad/version_0": "metrics.csv: empty metrics.csv (no header, no rows)",
        "bad/version_1": "metrics.csv: metrics.csv has no 'epoch' or 'step' column",
    }


def test_metrics_csv_file_and_version_folder_are_sources(csv_logs):
    one = load_runs(str(csv_logs / "noise" / "version_0"), progress=False)
    assert one.ids == ["version_0"] and one.groups() == ["noise"]
    same = load_runs(str(csv_logs / "noise" / "version_0" / "metrics.csv"), progress=False)
    assert same.ids == ["version_0"]


def test_reading_csv_logs_modifies_nothing(csv_logs):
    before = tree_snapshot(csv_logs)
    load_runs(str(csv_logs), progress=False)
    assert tree_snapshot(csv_logs) == before


def test_no_runs_in_csv_folder_is_a_user_error(tmp_path):
    (tmp_path / "x.yaml").write_text("a: 1")
    with pytest.raises(UserError, match="no runs found"):
        load_runs(str(tmp_path))


def test_an_evaluation_in_a_csv_logged_run_leaves_its_history_alone(
    tmp_path: Path, in_process
) -> None:
    # The real CLI twice (in this process), as a user runs it: fit with CSVLogger, then validate
    # into the same logs.
    from tests.training.conftest import QUICK

    cli = in_process()
    tiny = [*QUICK, "--trainer.max_epochs=1", "--trainer.limit_train_batches=2"]
    csv = ["--trainer.logger=lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir=logs"]
    fit = cli("fit", *tiny, *csv)
    assert fit.returncode == 0, fit.stderr
    before = load_runs(tmp_path / "logs", progress=False)
    logged = tree_snapshot(tmp_path / "logs")
    (run_dir,) = (tmp_path / "runs").iterdir()
    ckpt = f"--ckpt_path={run_dir}/checkpoints/last.ckpt"
    validate = cli("validate", *tiny, *csv, ckpt, f"--run_dir={run_dir}")
    assert validate.returncode == 0, validate.stderr
    assert (tmp_path / "logs/lightning_logs/version_1/metrics.csv").is_file()  # it did log

    after = load_runs(tmp_path / "logs", progress=False)
    assert before.ids == after.ids == ["lightning_logs/version_0"]
    pd.testing.assert_frame_equal(after.history, before.history)
    assert (
        after.run("lightning_logs/version_0").config["model.hidden_size"] == 16
    )  # the fit's config.yaml beside it
    assert [(s.id, s.reason) for s in after.skipped] == [
        (
            "lightning_logs/version_1",
            "metrics.csv: a validate run: evaluation results, not a training history",
        )
    ]
    # What the fit logged is untouched; the validate only added its own folder.
    assert {k: v for k, v in tree_snapshot(tmp_path / "logs").items() if k in logged} == logged
