"""Joining Lightning's per-metric rows into epochs, and flattening configs to dotted keys."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lightning_app.runs.epoch_join import join_epochs, join_epochs_frame
from lightning_app.runs.flat_config import flatten_config


def test_rows_of_one_epoch_become_one_row():
    rows = [
        {"train/loss": 0.9, "epoch": 0, "trainer/global_step": 10, "_step": 0},
        {"val/acc": 0.5, "epoch": 0, "trainer/global_step": 10, "_step": 1},
        {"test/acc": 0.4, "epoch": 0, "trainer/global_step": 10, "_step": 2},
        {"train/loss": 0.7, "epoch": 1, "trainer/global_step": 20, "_step": 3},
        {"val/acc": 0.6, "epoch": 1, "trainer/global_step": 20, "_step": 4},
    ]
    joined = join_epochs(rows)
    expected = pd.DataFrame(
        {"train/loss": [0.9, 0.7], "val/acc": [0.5, 0.6], "test/acc": [0.4, np.nan]},
        index=pd.Index([0, 1], name="epoch"),
    )
    pd.testing.assert_frame_equal(joined.frame, expected)
    assert (joined.unplaced_rows, joined.bad_epoch_rows) == (0, 0)


def test_last_value_in_an_epoch_wins():
    rows = [
        {"train/loss": 2.0, "epoch": 0, "trainer/global_step": 3},  # a step-level log
        {"train/loss": 1.0, "epoch": 0, "trainer/global_step": 10},  # the epoch-end value
    ]
    assert join_epochs(rows).frame.loc[0, "train/loss"] == 1.0


def test_rows_with_only_a_global_step_are_placed_by_step():
    rows = [
        {"train/loss": 0.9, "epoch": 0, "trainer/global_step": 10},
        {"train/loss": 0.8, "epoch": 1, "trainer/global_step": 20},
        {"extra/exact": 1.0, "trainer/global_step": 20},  # same step as epoch 1's row
        {"extra/mid": 2.0, "trainer/global_step": 15},  # inside epoch 1 (ends at step 20)
        {"extra/early": 3.0, "trainer/global_step": 2},  # inside epoch 0
        {"extra/late": 4.0, "trainer/global_step": 25},  # after the last epoch row
        {"extra/lost": 5.0, "_step": 9},  # nothing to place it by
    ]
    joined = join_epochs(rows)
    frame = joined.frame
    assert frame.loc[1, "extra/exact"] == 1.0
    assert frame.loc[1, "extra/mid"] == 2.0
    assert frame.loc[0, "extra/early"] == 3.0
    assert frame.loc[1, "extra/late"] == 4.0
    assert "extra/lost" not in frame.columns
    assert joined.unplaced_rows == 1


def test_non_integer_epochs_are_counted_not_guessed():
    joined = join_epochs(
        [{"a": 1.0, "epoch": 0.5}, {"a": 2.0, "epoch": math.nan}, {"a": 3.0, "epoch": 1}]
    )
    assert list(joined.frame.index) == [1]
    assert joined.bad_epoch_rows == 2


def test_custom_epoch_key_and_no_rows():
    joined = join_epochs([{"acc": 0.1, "ep": 3}], epoch_key="ep")
    assert joined.frame.loc[3, "acc"] == 0.1
    empty = join_epochs([])
    assert empty.frame.empty and empty.frame.index.name == "epoch"


def test_frame_join_matches_row_join():
    frame = pd.DataFrame(
        {
            "epoch": [0, np.nan, 1, 1],
            "step": [9, 9, 19, 19],
            "a": [1.0, np.nan, 2.0, np.nan],
            "b": [np.nan, 5.0, np.nan, 6.0],
        }
    )
    joined = join_epochs_frame(frame)
    assert joined.frame.to_dict() == {"a": {0: 1.0, 1: 2.0}, "b": {0: 5.0, 1: 6.0}}


def test_flatten_nested_wrapped_and_internal_keys():
    raw = {
        "_wandb": {"value": {"cli_version": "0.31.0"}},
        "wandb_version": 1,
        "model": {
            "value": {"hidden_size": 128, "optimizer": {"lr": 0.1, "betas": [0.9, 0.99]}},
            "desc": None,
        },
        "seed_everything": {"value": 0},
        "data": {"batch_size": 100, "value": 3},  # a real key named "value" below the top level
        "trainer": {"callbacks": {}},
    }
    assert flatten_config(raw) == {
        "model.hidden_size": 128,
        "model.optimizer.lr": 0.1,
        "model.optimizer.betas": [0.9, 0.99],
        "seed_everything": 0,
        "data.batch_size": 100,
        "data.value": 3,
    }


def test_flatten_lightningcli_subclass_arguments():
    raw = {
        "model": {
            "class_path": "lightning_app.model.BDRNN",
            "init_args": {"hidden_size": 64, "num_layers": 2},
        },
        "trainer": {"logger": {"class_path": "WandbLogger", "init_args": {"project": "p"}}},
        "__path__": "config.yaml",
    }
    assert flatten_config(raw) == {
        "model.class_path": "lightning_app.model.BDRNN",
        "model.hidden_size": 64,
        "model.num_layers": 2,
        "trainer.logger.class_path": "WandbLogger",
        "trainer.logger.project": "p",
    }


@pytest.mark.parametrize("value", [{"value": 1, "other": 2}, {"values": 1}])
def test_only_exact_wandb_wrapping_is_unwrapped(value):
    assert flatten_config({"k": value}) == {f"k.{key}": v for key, v in value.items()}
