"""Sweep files: W&B's parameter kinds, grid and random expansion, and what is refused."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from lightning_app.errors import UserError
from lightning_app.sweeps.commandline import agent_command, check_command, local_command
from lightning_app.sweeps.plan import LARGE_SWEEP, plan_runs, sample
from lightning_app.sweeps.spec import load_sweep, parse_parameter, parse_sweep
from tests.sweeps.conftest import REPO

COMMAND = ["${env}", "${interpreter}", "-m", "lightning_app", "fit", "${args}"]


def spec_of(tmp_path: Path, **content: Any):
    content.setdefault("command", COMMAND)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(content))
    return load_sweep(path)


def test_grid_enumerates_like_wandb_sorted_names_last_fastest(tmp_path: Path) -> None:
    spec = spec_of(
        tmp_path,
        method="grid",
        parameters={
            "model.num_layers": {"values": [2, 3]},
            "data.batch_size": {"values": [64, 128, 512]},
            "seed_everything": {"value": 0},
        },
    )
    runs = plan_runs(spec)
    assert [list(r.params) for r in runs] == [
        ["data.batch_size", "model.num_layers", "seed_everything"]
    ] * 6
    assert [(r.params["data.batch_size"], r.params["model.num_layers"]) for r in runs] == [
        (64, 2), (64, 3), (128, 2), (128, 3), (512, 2), (512, 3)
    ]  # fmt: skip
    assert [r.key for r in runs[:2]] == [
        "0000-batch_size=64,num_layers=2",
        "0001-batch_size=64,num_layers=3",
    ]
    assert len({r.key for r in runs}) == 6


def test_grid_int_uniform_takes_every_integer_and_q_uniform_excludes_max(tmp_path: Path) -> None:
    spec = spec_of(
        tmp_path,
        method="grid",
        parameters={
            "seed_everything": {"distribution": "int_uniform", "min": 3, "max": 7},
            "model.learning_rate": {"distribution": "q_uniform", "min": 0.1, "max": 0.4, "q": 0.1},
        },
    )
    runs = plan_runs(spec)
    seeds = sorted({r.params["seed_everything"] for r in runs})
    rates = sorted({r.params["model.learning_rate"] for r in runs})
    assert seeds == [3, 4, 5, 6, 7]
    # W&B's grid uses numpy.arange(min, max, q), floating-point warts included (0.4 is in here)
    assert rates == np.arange(0.1, 0.4, 0.1).tolist()
    assert len(runs) == 5 * len(rates)
    ints = spec_of(
        tmp_path,
        method="grid",
        parameters={"x": {"distribution": "q_uniform", "min": 0, "max": 10, "q": 3}},
    )
    assert [r.params["x"] for r in plan_runs(ints)] == [0, 3, 6, 9]


def test_run_cap_and_count_limit_a_grid(tmp_path: Path) -> None:
    spec = spec_of(
        tmp_path,
        method="grid",
        run_cap=4,
        parameters={"seed_everything": {"values": list(range(9))}},
    )
    assert [r.params["seed_everything"] for r in plan_runs(spec)] == [0, 1, 2, 3]
    assert len(plan_runs(spec, count=2)) == 2


def test_random_is_seeded_and_draws_within_each_distribution(tmp_path: Path) -> None:
    spec = spec_of(
        tmp_path,
        method="random",
        run_cap=400,
        parameters={
            "model.hidden_size": {"min": 10, "max": 100},
            "model.learning_rate": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
            "data.batch_size": {
                "distribution": "q_log_uniform_values",
                "min": 32,
                "max": 512,
                "q": 8,
            },
            "model.num_layers": {"values": [2, 3, 4], "probabilities": [0.8, 0.1, 0.1]},
            "seed_everything": {"value": 5},
        },
    )
    runs = plan_runs(spec, seed=1)
    assert len(runs) == 400
    assert [r.params for r in plan_runs(spec, seed=1)] == [r.params for r in runs]
    assert [r.params for r in plan_runs(spec, seed=2)] != [r.params for r in runs]
    hidden = np.array([r.params["model.hidden_size"] for r in runs])
    lr = np.array([r.params["model.learning_rate"] for r in runs])
    batch = np.array([r.params["data.batch_size"] for r in runs])
    layers = np.array([r.params["model.num_layers"] for r in runs])
    assert all(isinstance(r.params["model.hidden_size"], int) for r in runs)  # int_uniform inferred
    assert hidden.min() >= 10 and hidden.max() <= 100 and len(set(hidden)) > 50
    assert lr.min() >= 1e-4 and lr.max() <= 1e-1
    # log-uniform: each decade holds about a third of the draws
    decades = np.histogram(np.log10(lr), bins=[-4, -3, -2, -1])[0] / len(lr)
    assert np.all(np.abs(decades - 1 / 3) < 0.1), decades
    assert np.all(batch % 8 == 0) and batch.min() >= 32 and batch.max() <= 512
    assert all(isinstance(r.params["data.batch_size"], int) for r in runs)  # integer q
    assert abs(np.mean(layers == 2) - 0.8) < 0.07
    assert {r.params["seed_everything"] for r in runs} == {5}


@pytest.mark.parametrize(
    ("settings", "low", "high"),
    [
        ({"distribution": "uniform", "min": -1.0, "max": 2.0}, -1.0, 2.0),
        ({"distribution": "log_uniform", "min": -3.0, "max": 0.0}, math.exp(-3), 1.0),
        ({"distribution": "inv_log_uniform_values", "min": 0.01, "max": 10.0}, 0.01, 10.0),
        ({"distribution": "inv_log_uniform", "min": 0.0, "max": 2.0}, math.exp(-2), 1.0),
        ({"distribution": "q_uniform", "min": 0.0, "max": 10.0, "q": 2}, 0, 10),
        ({"distribution": "beta", "a": 2.0, "b": 5.0}, 0.0, 1.0),
    ],
)
def test_each_bounded_distribution_stays_in_its_range(
    settings: dict, low: float, high: float
) -> None:
    param = parse_parameter("x", settings, Path("s.yaml"))
    rng = np.random.default_rng(0)
    draws = np.array([sample(param, rng) for _ in range(300)])
    assert draws.min() >= low - 1e-12 and draws.max() <= high + 1e-12
    assert draws.std() > 0


def test_normal_distributions_have_their_mean(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    normal = parse_parameter("x", {"distribution": "normal", "mu": 3.0, "sigma": 0.5}, Path("s"))
    draws = np.array([sample(normal, rng) for _ in range(2000)])
    assert abs(draws.mean() - 3.0) < 0.05 and abs(draws.std() - 0.5) < 0.05
    q = parse_parameter("x", {"distribution": "q_log_normal", "q": 1}, Path("s"))
    assert all(isinstance(sample(q, rng), int) for _ in range(20))


BAD_FILES = [
    ({"method": "grd", "parameters": {"a": {"value": 1}}}, "unknown method 'grd'"),
    ({"method": "bayes", "parameters": {"a": {"value": 1}}}, "needs W&B's sweep server"),
    ({"parameters": {"a": {"value": 1}}}, "no method"),
    ({"method": "grid"}, "no parameters"),
    ({"method": "grid", "parameters": {"seed_everything": {"values": []}}}, "values is empty"),
    ({"method": "grid", "parameters": {"s": {"values": [1, 2, 1.0]}}}, "lists 1.0 twice"),
    ({"method": "grid", "parameters": {"s": {"min": 5, "max": 5}}}, "min 5 is not less than max 5"),
    ({"method": "grid", "parameters": {"s": {"distribution": "gauss"}}}, "unknown distribution"),
    ({"method": "grid", "parameters": {"s": {"values": [1], "q": 2}}}, "'q' is not a setting"),
    ({"method": "grid", "parameters": {"model": {"parameters": {"x": {"value": 1}}}}}, "dots"),
    ({"method": "grid", "paramters": {"s": {"value": 1}}}, "did you mean 'parameters'"),
    ({"method": "grid", "parameters": {"s": {"value": 1}}, "run_cap": 0}, "run_cap"),
]


@pytest.mark.parametrize(("content", "message"), BAD_FILES)
def test_bad_sweep_files_are_refused_with_one_line(
    tmp_path: Path, content: dict, message: str
) -> None:
    with pytest.raises(UserError) as err:
        spec_of(tmp_path, **content)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_grid_over_a_distribution_is_refused(tmp_path: Path) -> None:
    spec = spec_of(
        tmp_path,
        method="grid",
        parameters={
            "model.learning_rate": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1}
        },
    )
    with pytest.raises(UserError, match=r"model\.learning_rate: a grid needs value, values"):
        plan_runs(spec)


def test_random_needs_a_run_count(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, method="random", parameters={"s": {"min": 0, "max": 9}})
    with pytest.raises(UserError, match="run_cap in the file or --count"):
        plan_runs(spec)
    assert len(plan_runs(spec, count=3)) == 3


def test_a_million_run_grid_needs_yes_and_is_not_listed_to_say_so(tmp_path: Path) -> None:
    spec = spec_of(
        tmp_path,
        method="grid",
        parameters={
            "a": {"distribution": "int_uniform", "min": 1, "max": 1000},
            "b": {"distribution": "int_uniform", "min": 1, "max": 1000},
        },
    )
    with pytest.raises(UserError, match=r"the grid has 1,000,000 runs \(1000 x 1000\).*--yes"):
        plan_runs(spec)
    assert len(plan_runs(spec, count=LARGE_SWEEP)) == LARGE_SWEEP  # within the limit


SHIPPED = sorted((REPO / "configs" / "sweeps").rglob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_sweep_file_names_its_program(path: Path) -> None:
    """``wandb agent`` reads ``program`` for every run even when ``command`` is given (wandb's
    ``Agent._command_run``: ``command["program"]``; wandb issue 4187). The commands run
    ``-m lightning_app``, whose file is ``lightning_app/__main__.py``."""
    spec = load_sweep(path)
    assert spec.program == "lightning_app/__main__.py"
    assert (REPO / spec.program).is_file()
    module = spec.command[spec.command.index("-m") + 1]
    assert Path(spec.program) == Path(*module.split("."), "__main__.py")
    assert "${program}" not in spec.command


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_program_changes_no_run_nor_the_sweep_folders_identity(path: Path) -> None:
    spec = load_sweep(path)
    raw = yaml.safe_load(path.read_text())
    without = parse_sweep({k: v for k, v in raw.items() if k != "program"}, path)
    assert without.program is None
    template, run = check_command(spec), plan_runs(spec)[0]
    assert local_command(template, run.params, spec.program, ["--x"]) == local_command(
        check_command(without), run.params, without.program, ["--x"]
    )
    assert agent_command(template, run.params, program=spec.program) == agent_command(
        check_command(without), run.params, program=without.program
    )
    # a sweep folder started before the file named its program still resumes with it
    assert spec.digest == without.digest


def test_a_program_the_command_runs_is_part_of_the_sweeps_identity(tmp_path: Path) -> None:
    command = ["${env}", "${interpreter}", "${program}", "-m", "lightning_app", "fit", "${args}"]
    one = {"method": "grid", "parameters": {"s": {"value": 1}}}
    used_a = spec_of(tmp_path, **one, command=command, program="a.py")
    used_b = spec_of(tmp_path, **one, command=command, program="b.py")
    assert used_a.digest != used_b.digest
    unused_a = spec_of(tmp_path, **one, program="a.py")
    unused_b = spec_of(tmp_path, **one, program="b.py")
    assert unused_a.digest == unused_b.digest
