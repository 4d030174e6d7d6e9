"""RunSet assembly and selection (the contract analyses code against)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lightning_app.runs import Run, RunSet, RunWarning, SkippedRun


def run(run_id: str, epochs: list[int], **metrics: list[float]) -> Run:
    return Run(
        run_id,
        group="g" if run_id != "c" else "h",
        config={"k": len(run_id)},
        history=pd.DataFrame(metrics, index=pd.Index(epochs, name="epoch"), dtype=float),
    )


def test_history_stacks_like_concat_with_keys():
    runs = [
        run("a", [0, 1], x=[1.0, 2.0]),
        run("b", [0, 1, 2], y=[3.0, 4.0, 5.0], x=[6.0, np.nan, 7.0]),
        run("c", [], z=[]),
        run("d", [5], z=[8.0]),
    ]
    got = RunSet.from_runs(runs).history
    want = pd.concat(
        [r.history for r in runs if len(r.history)],
        keys=[r.id for r in runs if len(r.history)],
        names=["id", "epoch"],
        sort=False,
    ).astype(float)
    pd.testing.assert_frame_equal(got, want, check_index_type=False, check_column_type=False)


def test_duplicates_are_skipped_and_warnings_follow_subsets():
    runs = RunSet.from_runs(
        [run("a", [0], x=[1.0]), run("a", [0], x=[2.0]), run("c", [0], x=[3.0])],
        skipped=[SkippedRun("z", "bad file")],
        warnings=[RunWarning("a", "note a"), RunWarning("c", "note c"), RunWarning("", "source")],
    )
    assert runs.ids == ["a", "c"]
    assert runs.history.loc[("a", 0), "x"] == 1.0
    assert [s.id for s in runs.skipped] == ["z", "a"]
    sub = runs.select(group="h")
    assert sub.ids == ["c"]
    assert [w.message for w in sub.warnings] == ["note c", "source"]
    assert len(sub.skipped) == 2


def test_empty_runset():
    empty = RunSet.empty()
    assert len(empty) == 0 and empty.metrics() == []
    assert empty.metric_matrix("x").values.shape == (0, 0)
