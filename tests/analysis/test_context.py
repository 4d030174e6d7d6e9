"""Which runs and keys are analysed, and a clear message for every bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.simulation.synthetic import runset_from_arrays
from lightning_app.analysis import Selection, build_context
from lightning_app.analysis.parameters import detect_parameters, explicit_parameters
from lightning_app.errors import UserError
from lightning_app.runs.runset import Run, RunSet, SkippedRun


def _grid_configs(values: list[int], per_value: int, key: str = "model.hidden_size") -> list[dict]:
    return [{key: v} for v in values for _ in range(per_value)]


def _simple(
    n_noise: int = 12,
    values: tuple[int, ...] = (10, 20, 30),
    per_value: int = 3,
    epochs: int = 4,
    seed: int = 0,
) -> RunSet:
    rng = np.random.default_rng(seed)
    noise = 0.9 + rng.normal(0, 0.01, (n_noise, epochs))
    configs = _grid_configs(list(values), per_value)
    signal = 0.9 + rng.normal(0, 0.01, (len(configs), epochs))
    return runset_from_arrays(noise, signal, configs)


def test_parameters_are_detected_and_per_run_keys_are_not(planted: RunSet) -> None:
    context, used = build_context(planted, Selection("noise", "signal", permutations=99))
    assert list(context.params) == ["data.batch_size", "model.hidden_size", "model.num_layers"]
    hidden = context.params["model.hidden_size"]
    assert hidden.values == (10, 20, 40, 80)
    assert hidden.sizes.tolist() == [12, 12, 12, 12]
    assert len(context.noise_ids) == 60 and len(context.signal_ids) == 48
    assert context.epoch == 7 and context.epochs.tolist() == list(range(8))
    assert len(used) == 108
    assert context.notes == []


def test_keys_that_split_runs_like_a_parameter_are_reported_as_aliases() -> None:
    config = pd.DataFrame(
        {
            "model.hidden_size": [10, 10, 20, 20],
            "trainer.default_root_dir": ["h10", "h10", "h20", "h20"],
            "wandb.name": ["a", "b", "c", "d"],
            "data.batch_size": [64, 64, 64, 64],
        }
    )
    params, notes = detect_parameters(config)
    assert [p.name for p in params] == ["model.hidden_size"]
    assert "trainer.default_root_dir" in notes[0] and "model.hidden_size" in notes[0]


def test_explicit_parameters_fail_clearly() -> None:
    config = pd.DataFrame({"model.hidden_size": [10, 10, 10], "model.lr": [0.1, None, 0.2]})
    with pytest.raises(UserError, match=r"did you mean model\.hidden_size"):
        explicit_parameters(config, ["model.hiden_size"])
    with pytest.raises(UserError, match="single value 10 across all 3 signal runs"):
        explicit_parameters(config, ["model.hidden_size"])
    with pytest.raises(UserError, match="1 of 3 signal runs have no value"):
        explicit_parameters(config, ["model.lr"])


def test_unbalanced_design_is_noted() -> None:
    rng = np.random.default_rng(0)
    configs = [{"a": a, "b": b} for a, b in [(1, 1), (1, 1), (1, 2), (2, 2), (2, 2), (2, 2)]]
    runs = runset_from_arrays(
        rng.normal(0.9, 0.01, (10, 3)), rng.normal(0.9, 0.01, (6, 3)), configs
    )
    context, _ = build_context(runs, Selection("noise", "signal", permutations=99))
    assert any("not a balanced grid over a and b" in n for n in context.notes)


def test_no_parameter_varies() -> None:
    runs = _simple(values=(10,), per_value=6)
    with pytest.raises(UserError, match=r"no config key varies .* --params"):
        build_context(runs, Selection("noise", "signal"))


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        (
            Selection("noize", "signal"),
            "--noise: no runs in group 'noize'; groups found: 'noise', 'signal'",
        ),
        (Selection("noise", "sig"), "--signal: no runs in group 'sig'"),
        (Selection("noise", "noise"), "same group"),
        (
            Selection("noise", "signal", metric="val/loss"),
            "--metric: no run logged 'val/loss'; metrics found: 'test/acc'",
        ),
        (
            Selection("noise", "signal", epoch=17),
            "--epoch 17: no run logged that epoch; epochs logged: 0-3",
        ),
        (
            Selection("noise", "signal", params=["model.depth"]),
            "no signal run has config key 'model.depth'",
        ),
        (Selection("noise", "signal", permutations=0), "--permutations"),
    ],
)
def test_bad_selection(selection: Selection, message: str) -> None:
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_context(_simple(), selection)


@pytest.mark.parametrize("n_noise", [1, 2])
def test_fewer_than_three_noise_runs(n_noise: int) -> None:
    with pytest.raises(UserError, match=rf"only {n_noise} noise run\(s\) .* at least 3 runs"):
        build_context(_simple(n_noise=n_noise), Selection("noise", "signal"))


def test_no_noise_runs_with_the_metric() -> None:
    runs = _simple()
    noise_ids = runs.select(group="noise").ids
    history = runs.history.copy()
    history.loc[history.index.get_level_values("id").isin(noise_ids), "test/acc"] = np.nan
    broken = RunSet(runs.meta, runs.config, history)
    with pytest.raises(UserError, match="no noise runs: none of the runs in group 'noise'"):
        build_context(broken, Selection("noise", "signal"))


def test_metric_missing_in_some_runs_excludes_and_lists_them() -> None:
    runs = _simple()
    history = runs.history.copy()
    history.loc[("n3", slice(None)), "test/acc"] = np.nan
    history.loc[("s1", slice(None)), "test/acc"] = np.nan
    context, used = build_context(
        RunSet(runs.meta, runs.config, history, [SkippedRun("x", "bad file")]),
        Selection("noise", "signal", permutations=99),
    )
    assert {s.id for s in context.excluded} == {"n3", "s1"}
    assert "n3" not in context.noise_ids and "s1" not in context.signal_ids
    assert "n3" not in used.ids
    assert any("2 run(s) have no finite 'test/acc'" in n for n in context.notes)


def test_different_epoch_counts_use_the_common_epochs_and_say_so() -> None:
    runs = _simple(epochs=6)
    history = runs.history.copy()
    history = history.drop(index=[("n0", 4), ("n0", 5)])
    history.loc[("s2", 3), "test/acc"] = np.nan  # a NaN in the middle drops that epoch too
    context, _ = build_context(
        RunSet(runs.meta, runs.config, history), Selection("noise", "signal", permutations=99)
    )
    assert context.epochs.tolist() == [0, 1, 2]
    assert context.epoch == 2
    note = next(n for n in context.notes if "same epochs" in n)
    assert "using the 3 epochs all 21 runs have (0-2) and dropping 3-5" in note
    assert "n0 has 0-3" in note and "s2 has 0-2, 4-5" in note
    with pytest.raises(UserError, match="--epoch 4: some selected runs have no finite value"):
        build_context(
            RunSet(runs.meta, runs.config, history), Selection("noise", "signal", epoch=4)
        )


def test_infinite_and_nan_values_never_reach_the_statistics() -> None:
    runs = _simple()
    history = runs.history.copy()
    history.loc[("n1", 3), "test/acc"] = np.inf
    context, _ = build_context(
        RunSet(runs.meta, runs.config, history), Selection("noise", "signal", permutations=99)
    )
    assert np.isfinite(context.noise).all() and np.isfinite(context.signal).all()
    assert context.epochs.tolist() == [0, 1, 2]


def test_identical_noise_runs_are_refused() -> None:
    configs = _grid_configs([1, 2], 2)
    runs = runset_from_arrays(np.full((5, 2), 0.9), np.full((4, 2), 0.9), configs)
    with pytest.raises(UserError, match="all 5 noise runs have the same 'test/acc' at epoch 1"):
        build_context(runs, Selection("noise", "signal"))


def test_fewer_noise_runs_than_a_grouping_needs_resamples_and_says_so() -> None:
    runs = _simple(n_noise=5, per_value=4)
    context, _ = build_context(runs, Selection("noise", "signal", permutations=199))
    assert any("draws noise runs with replacement" in n for n in context.notes)
    assert any("Only 5 noise runs" in n for n in context.notes)
    assert context.noise_null("model.hidden_size").with_replacement


def test_groups_of_one_are_allowed_when_named_and_noted() -> None:
    runs = _simple(values=(10, 20, 30, 40, 50), per_value=1)
    with pytest.raises(UserError, match="no config key varies"):
        build_context(runs, Selection("noise", "signal"))
    context, _ = build_context(
        runs, Selection("noise", "signal", params=["model.hidden_size"], permutations=99)
    )
    assert context.params["model.hidden_size"].sizes.tolist() == [1] * 5


def test_noise_runs_that_vary_a_parameter_are_noted() -> None:
    rng = np.random.default_rng(0)
    runs = list(_simple())
    runs[0] = Run(
        id=runs[0].id,
        group="noise",
        config={**runs[0].config, "model.hidden_size": 64},
        history=runs[0].history,
    )
    context, _ = build_context(RunSet.from_runs(runs), Selection("noise", "signal", permutations=9))
    assert any(
        "noise runs themselves take 2 values of model.hidden_size" in n for n in context.notes
    )
    del rng


def test_noise_null_is_cached_and_reproducible(planted: RunSet) -> None:
    a, _ = build_context(planted, Selection("noise", "signal", permutations=199, seed=3))
    b, _ = build_context(planted, Selection("noise", "signal", permutations=199, seed=3))
    assert a.noise_null("model.num_layers") is a.noise_null("model.num_layers")
    np.testing.assert_array_equal(
        a.noise_null("model.num_layers").distribution, b.noise_null("model.num_layers").distribution
    )
    c, _ = build_context(planted, Selection("noise", "signal", permutations=199, seed=4))
    assert not np.array_equal(
        a.noise_null("model.num_layers").distribution, c.noise_null("model.num_layers").distribution
    )


def test_seeds_are_replicates_never_parameters() -> None:
    """Seeds crossed with a grid: the seed keys are never parameters (named or detected), and
    the runs of one configuration are replicates whose spread the variance check uses."""
    rng = np.random.default_rng(0)
    configs = [
        {"model.hidden_size": h, "seed_everything": s, "model.init_seed": s, "data.shuffle_seed": s}
        for h in (16, 32)
        for s in (0, 1, 2)
    ]
    runs = runset_from_arrays(rng.normal(0.9, 0.01, (6, 2)), rng.normal(0.9, 0.01, (6, 2)), configs)
    context, _ = build_context(runs, Selection("noise", "signal", permutations=9))
    assert list(context.params) == ["model.hidden_size"]
    assert any("seed_everything" in n and "replicates, not parameters" in n for n in context.notes)
    assert context.model.variance is not None and context.model.variance.source == "replicates"
    assert context.model.configurations == 2
    for key in ("seed_everything", "data.shuffle_seed", "model.init_seed"):
        with pytest.raises(UserError, match=rf"--params: '{key}' is a seed"):
            build_context(runs, Selection("noise", "signal", params=[key]))


def test_confounded_parameters_are_refused_by_name() -> None:
    """Each hidden size fixes the layer count: no number can separate their effects."""
    configs = [
        {"model.hidden_size": h, "model.num_layers": 2 if h < 30 else 3}
        for h in (16, 24, 32, 48)
        for _ in range(3)
    ]
    rng = np.random.default_rng(1)
    runs = runset_from_arrays(
        rng.normal(0.9, 0.01, (6, 2)), rng.normal(0.9, 0.01, (12, 2)), configs
    )
    with pytest.raises(
        UserError, match=r"confounded parameters: model\.hidden_size and model\.num_layers"
    ):
        build_context(runs, Selection("noise", "signal"))
    context, _ = build_context(runs, Selection("noise", "signal", params=["model.num_layers"]))
    assert list(context.params) == ["model.num_layers"]


def test_a_key_with_a_lone_run_is_a_listed_skip() -> None:
    """A key whose values repeat but one has a single run is not analysed by default, and the
    notes say which key and why; named with --params it is analysed; ids stay unmentioned."""
    configs = [
        {"model.hidden_size": h, "data.batch_size": b, "run_dir": f"runs/{i}"}
        for i, (h, b) in enumerate(
            [(16, 100), (16, 100), (32, 100), (32, 100), (16, 200), (32, 100)]
        )
    ]
    rng = np.random.default_rng(2)
    runs = runset_from_arrays(rng.normal(0.9, 0.01, (6, 2)), rng.normal(0.9, 0.01, (6, 2)), configs)
    context, _ = build_context(runs, Selection("noise", "signal", permutations=9))
    assert list(context.params) == ["model.hidden_size"]
    assert (
        "data.batch_size: not analysed, value 200 has 1 run; name it with --params to analyse it "
        "(a value needs 2 runs to be detected as a parameter)." in context.notes
    )
    assert not any("run_dir" in n for n in context.notes)
    named = Selection("noise", "signal", params=["model.hidden_size", "data.batch_size"])
    context, _ = build_context(runs, named)
    assert list(context.params) == ["model.hidden_size", "data.batch_size"]


def test_no_parameter_left_names_the_keys_set_aside() -> None:
    configs = [{"data.batch_size": b} for b in (100, 100, 200, 300)]
    rng = np.random.default_rng(3)
    runs = runset_from_arrays(rng.normal(0.9, 0.01, (6, 2)), rng.normal(0.9, 0.01, (4, 2)), configs)
    with pytest.raises(UserError, match=r"values 200, 300 have 1 run each; name it with --params"):
        build_context(runs, Selection("noise", "signal", permutations=9))
