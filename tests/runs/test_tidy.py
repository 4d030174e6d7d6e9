"""The tidy table: RunSet.to_tidy, writing CSV/Parquet, and reading tables back as a source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lightning_app.errors import UserError
from lightning_app.runs import Run, RunSet, load_runs
from lightning_app.runs.tidy import decode_cell, encode_cell, write_tidy


def history(epochs, **metrics) -> pd.DataFrame:
    return pd.DataFrame(metrics, index=pd.Index(epochs, name="epoch"), dtype=float)


@pytest.fixture
def runset() -> RunSet:
    return RunSet.from_runs(
        [
            Run(
                "a1",
                name="first",
                group="noise",
                tags=("cpu", "x,y"),
                state="finished",
                config={
                    "model.hidden_size": 128,
                    "opt": "adam",
                    "lr": 0.001,
                    "flag": True,
                    "betas": [0.9, 0.99],
                    "mixed": 1,
                    "text_number": "1",
                    "empty": "",
                },
                history=history(
                    [0, 1, 2], **{"test/acc": [0.5, 0.6, np.nan], "train/loss": [1, 2, 3]}
                ),
            ),
            Run(
                "b2",
                name="second",
                group="signal",
                sweep_id="sw1",
                state="crashed",
                config={
                    "model.hidden_size": 64,
                    "opt": "sgd",
                    "lr": 0.1,
                    "flag": False,
                    "betas": [0.8, 0.9],
                    "mixed": "auto",
                },
                history=history([0, 1], **{"test/acc": [0.4, np.inf], "grad_norm": [3.0, 4.0]}),
            ),
        ]
    )


def assert_same_runs(got: RunSet, want: RunSet) -> None:
    pd.testing.assert_frame_equal(got.meta, want.meta, check_dtype=False, check_index_type=False)
    assert sorted(got.metrics()) == sorted(want.metrics())
    pd.testing.assert_frame_equal(
        got.history[want.metrics()].sort_index(),
        want.history.sort_index(),
        check_dtype=False,
        check_index_type=False,
    )
    for run_id in want.ids:
        assert got.run(run_id).config == want.run(run_id).config, run_id


def test_to_tidy_columns(runset):
    tidy = runset.to_tidy()
    assert list(tidy.columns[:7]) == ["id", "name", "group", "sweep_id", "tags", "state", "epoch"]
    assert {"test/acc", "train/loss", "grad_norm"} <= set(tidy.columns)
    assert "config.model.hidden_size" in tidy.columns
    assert len(tidy) == 5  # one row per run x epoch
    row = tidy[(tidy["id"] == "b2") & (tidy["epoch"] == 1)].iloc[0]
    assert row["config.opt"] == "sgd" and row["test/acc"] == np.inf and row["tags"] == []


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_round_trip_keeps_values_and_types(runset, tmp_path, suffix):
    path = tmp_path / f"runs{suffix}"
    write_tidy(runset, path)
    back = load_runs(str(path), progress=False)
    assert_same_runs(back, runset)
    config = back.run("a1").config
    assert config["text_number"] == "1" and config["mixed"] == 1 and config["betas"] == [0.9, 0.99]
    assert config["empty"] == ""
    assert isinstance(config["flag"], (bool, np.bool_)) and config["flag"]
    assert back.run("a1").tags == ("cpu", "x,y")
    assert not back.skipped and not back.warnings


def test_tidy_round_trip_of_real_wandb_runs(wandb_runs, tmp_path):
    runs = load_runs(str(wandb_runs.root), progress=False)
    for suffix in (".parquet", ".csv"):
        write_tidy(runs, tmp_path / f"runs{suffix}")
        assert_same_runs(load_runs(str(tmp_path / f"runs{suffix}"), progress=False), runs)


@pytest.mark.parametrize(
    "value",
    [None, "adam", "", "1", "true", "[1]", "null", 1, 2.5, True, [1, "a"], {"k": 1}, float("inf")],
)
def test_csv_cells_decode_to_what_was_encoded(value):
    assert decode_cell(encode_cell(value)) == value


def test_hand_written_csv_from_another_logger(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text(
        "id,epoch,acc,config.model.hidden_size,config.optimizer,note\n"
        "r1,0,0.5,128,adam,first\n"
        "r1,1,0.6,128,adam,\n"
        "r1,3,0.7,128,adam,gap\n"  # epoch 2 missing
        "r2,0,0.4,64,sgd,\n"
        "r2,1,,64,sgd,\n"
    )
    runs = load_runs(str(path), progress=False)
    assert runs.ids == ["r1", "r2"]
    assert runs.meta.loc["r1", "state"] == "finished" and runs.meta.loc["r1", "name"] == "r1"
    assert runs.run("r2").config == {"model.hidden_size": 64, "optimizer": "sgd"}
    assert runs.metrics() == ["acc"]  # the text column 'note' is not a metric
    messages = [w.message for w in runs.warnings]
    assert "mine.csv: column 'note' is not numeric; ignored" in messages
    assert "no rows for epoch(s) 2 (logged 0..3); their values are NaN" in messages
    assert np.isnan(runs.metric_matrix("acc").values[1, 1])


def test_duplicate_epochs_inconsistent_config_and_bad_rows(tmp_path):
    path = tmp_path / "messy.csv"
    path.write_text(
        "id,epoch,state,acc,config.lr\n"
        "r1,0,finished,0.5,0.1\n"
        "r1,0,finished,0.55,0.1\n"
        "r1,1,finished,0.6,0.2\n"
        "r1,x,finished,0.9,0.1\n"
        "r2,0,exploded,0.4,0.1\n"
        "r3,0,finished,oops,0.1\n"
        "r4,0,finished,bad,0.1\n"
        "r4,1,finished,0.7,0.1\n"
    )
    runs = load_runs(str(path), progress=False)
    assert runs.run("r1").history.loc[0, "acc"] == 0.55  # the later row of the epoch wins
    assert runs.run("r1").config == {"lr": 0.1}
    messages = {(w.id, w.message) for w in runs.warnings}
    assert ("r1", "2 rows share an epoch with another row; last values kept") in messages
    assert ("r1", "config.lr differ between rows; the first row's is used") in messages
    assert ("r1", "1 rows without a whole-number epoch; ignored") in messages
    assert ("r4", "acc has 1 non-numeric values, read as missing") in messages
    assert not [m for i, m in messages if i == "r3"]  # skipped: its reason says it all
    skipped = {s.id: s.reason for s in runs.skipped}
    assert skipped["r2"].startswith("messy.csv: unknown state 'exploded'")
    assert skipped["r3"] == "messy.csv: no history: its metric values are not numbers (acc: 'oops')"


def test_table_without_id_or_epoch_is_a_user_error(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("epoch,acc\n0,1\n")
    with pytest.raises(UserError, match=r"plain.csv: not a tidy run table \(no 'id' column\)"):
        load_runs(str(path))
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    with pytest.raises(UserError, match=r"empty\.parquet: cannot read table"):
        load_runs(str(empty))


def test_metric_names_that_clash_with_tidy_columns_are_refused(tmp_path):
    runs = RunSet.from_runs([Run("a", history=history([0], state=[1.0]))])
    with pytest.raises(UserError, match="metric name 'state' clashes"):
        write_tidy(runs, tmp_path / "x.parquet")


def test_write_checks_suffix_and_leaves_no_temporary(runset, tmp_path):
    with pytest.raises(UserError, match=r"unknown table type '\.xlsx'"):
        write_tidy(runset, tmp_path / "runs.xlsx")
    write_tidy(runset, tmp_path / "runs.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.parquet"]  # no temp file left


def test_filters_apply_to_tables(runset, tmp_path):
    write_tidy(runset, tmp_path / "runs.parquet")
    assert load_runs(str(tmp_path / "runs.parquet"), state="crashed", progress=False).ids == ["b2"]
    assert load_runs(str(tmp_path / "runs.parquet"), tags="cpu", progress=False).ids == ["a1"]
    assert load_runs(str(tmp_path / "runs.parquet"), sweep="sw1", progress=False).ids == ["b2"]


def test_unknown_file_type_is_a_user_error(tmp_path: Path):
    (tmp_path / "runs.json").write_text("{}")
    with pytest.raises(UserError, match="not a run source"):
        load_runs(str(tmp_path / "runs.json"))


def test_a_failed_write_leaves_the_old_table(runset, tmp_path, monkeypatch):
    """Killed or failing mid-write, the previous table stays whole and no temporary is left."""
    path = tmp_path / "runs.csv"
    write_tidy(runset, path)
    before = path.read_bytes()

    def torn(frame, target, **kwargs):
        Path(target).write_text("id,epoch\na1,")  # half a table, then the failure
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", torn)
    with pytest.raises(OSError, match="disk full"):
        write_tidy(runset, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["runs.csv"]
