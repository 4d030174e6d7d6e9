"""``python -m lightning_app sweep``: bad input as one line, dry runs, and W&B agent parity.

The agent's command line is built here with wandb's own helpers
(``wandb.sdk.launch.sweeps.utils``) and the agent's substitution rule, then parsed by the
training CLI: the same sweep file must work unchanged under ``wandb agent``.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from wandb.sdk.launch.sweeps import utils as wandb_sweep_utils

from lightning_app.sweeps.commandline import agent_command, check_command
from lightning_app.sweeps.plan import plan_runs
from lightning_app.sweeps.spec import load_sweep
from lightning_app.sweeps.validate import parse
from tests.sweeps.conftest import REPO, InProcess, app_env, config_value, sweep_file

SHIPPED = sorted((REPO / "configs" / "sweeps").rglob("*.yaml"))


def wandb_agent_argv(raw: dict[str, Any], params: dict[str, Any]) -> list[str]:
    """What ``wandb agent`` runs for a suggested run with ``params`` (``Agent._command_run``)."""
    command = {"args": {k: {"value": v} for k, v in params.items()}, "program": raw.get("program")}
    template = wandb_sweep_utils.create_sweep_command(list(raw.get("command") or []))
    macros = wandb_sweep_utils.create_sweep_command_args(command)
    macros.update(interpreter=["python"], program=[command["program"]], env=["/usr/bin/env"])
    argv: list[str] = []
    for item in map(str, template):
        if item.startswith("${") and item.endswith("}"):
            argv += macros.get(item[2:-1]) or []
        else:
            argv.append(item)
    return argv


def after_module(argv: list[str]) -> list[str]:
    at = argv.index("lightning_app")
    assert argv[at - 1] == "-m"
    return argv[at + 1 :]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_shipped_sweep_files_parse_under_wandb_agent(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)  # the files name configs/... relative to the repository
    spec = load_sweep(path)
    raw = yaml.safe_load(path.read_text())
    template = check_command(spec)
    runs = plan_runs(spec)
    for run in (runs[0], runs[-1]):
        argv = wandb_agent_argv(raw, run.params)
        assert argv == agent_command(template, run.params, program=spec.program)
        assert argv[:2] == ["/usr/bin/env", "python"]
        config = parse(after_module(argv))
        fit = config["fit"]
        for name, value in run.params.items():
            assert config_value(fit, name) == value, name
        assert fit["wandb"]["group"] == spec.name


def test_study_sweeps_have_the_studys_design() -> None:
    noise = plan_runs(load_sweep(REPO / "configs/sweeps/noise.yaml"))
    signal = plan_runs(load_sweep(REPO / "configs/sweeps/signal.yaml"))
    assert len(noise) == 210 and len(signal) == 210
    assert {r.params["seed_everything"] for r in noise} == set(range(210))
    assert {r.params["seed_everything"] for r in signal} == {0}
    grid = {
        (r.params["model.num_layers"], r.params["data.batch_size"], r.params["model.hidden_size"])
        for r in signal
    }
    assert len(grid) == 210
    assert {g[0] for g in grid} == {2, 3, 4}
    assert {g[1] for g in grid} == {64, 100, 128, 200, 256, 400, 512}
    assert {g[2] for g in grid} == set(range(10, 101, 10))


def test_wandb_formats_values_with_str_and_so_does_the_runner(tmp_path: Path) -> None:
    path = sweep_file(
        tmp_path,
        {
            "model.learning_rate": {"values": [0.001, 1e-05]},
            "trainer.enable_checkpointing": {"value": False},
            "data.dataset": {"value": "mnist-5k"},
        },
    )
    raw = yaml.safe_load(path.read_text())
    spec = load_sweep(path)
    template = check_command(spec)
    for run in plan_runs(spec):
        argv = wandb_agent_argv(raw, run.params)
        assert argv == agent_command(template, run.params)
        assert "--trainer.enable_checkpointing=False" in argv
        config = parse(after_module(argv))["fit"]
        assert config_value(config, "model.learning_rate") == run.params["model.learning_rate"]
        assert config["trainer"]["enable_checkpointing"] is False


def test_envvar_macros_expand_as_wandb_expands_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWEEP_EPOCHS", "2")
    path = sweep_file(
        tmp_path,
        {"seed_everything": {"values": [1]}},
        extra=["--trainer.max_epochs=${envvar:SWEEP_EPOCHS}"],
    )
    raw = yaml.safe_load(path.read_text())
    spec = load_sweep(path)
    argv = agent_command(check_command(spec), {"seed_everything": 1})
    assert argv == wandb_agent_argv(raw, {"seed_everything": 1})
    assert "--trainer.max_epochs=2" in argv


def one_error_line(result: InProcess) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_unknown_parameter_is_named_before_any_run(
    sweep_cli: Callable[..., InProcess], tmp_path: Path
) -> None:
    path = sweep_file(tmp_path, {"model.hiden_size": {"values": [8, 16]}})
    line = one_error_line(sweep_cli(str(path), "--workers", "2"))
    assert "parameters.model.hiden_size" in line and "did you mean model.hidden_size" in line
    assert not (tmp_path / "sweeps").exists()  # nothing started, no folder made


def test_a_value_the_cli_rejects_is_named(
    sweep_cli: Callable[..., InProcess], tmp_path: Path
) -> None:
    path = sweep_file(tmp_path, {"model.init_seed": {"values": [1, None]}})
    line = one_error_line(sweep_cli(str(path)))
    assert f"{path}: parameter model.init_seed value null" in line
    assert "--model.init_seed=None" in line


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(method="hyperband"), "unknown method 'hyperband'"),
        (lambda d: d["parameters"].update(seed_everything={"values": []}), "values is empty"),
        (lambda d: d["command"].remove("${args}"), "must contain the item ${args}"),
        (
            lambda d: d["command"].__setitem__(-1, "${args_no_hyphens}"),
            "${args_no_hyphens} gives the CLI arguments it cannot parse",
        ),
        (
            lambda d: d["command"].__setitem__(3, "train.py"),
            "must run `${interpreter} -m lightning_app",
        ),
        (lambda d: d["parameters"].update(run_dir={"value": "x"}), "set by the sweep runner"),
    ],
)
def test_bad_input_is_one_line(
    sweep_cli: Callable[..., InProcess], tmp_path: Path, edit: Callable[[dict], None], message: str
) -> None:
    path = sweep_file(tmp_path, {"seed_everything": {"values": [1, 2]}})
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data))
    assert message in one_error_line(sweep_cli(str(path)))


def test_malformed_yaml_names_file_and_line(
    sweep_cli: Callable[..., InProcess], tmp_path: Path
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("method: grid\nparameters:\n  seed_everything: {values: [1, 2}\n")
    line = one_error_line(sweep_cli(str(path)))
    assert f"{path}: malformed YAML at line 3" in line


def test_a_million_runs_need_yes(sweep_cli: Callable[..., InProcess], tmp_path: Path) -> None:
    path = sweep_file(
        tmp_path,
        {
            "seed_everything": {"distribution": "int_uniform", "min": 0, "max": 999},
            "model.init_seed": {"distribution": "int_uniform", "min": 0, "max": 999},
        },
    )
    line = one_error_line(sweep_cli(str(path), "--dry-run"))
    assert "the grid has 1,000,000 runs (1000 x 1000)" in line and "--yes" in line


def test_dry_run_prints_each_command_and_writes_nothing(
    sweep_cli: Callable[..., InProcess], tmp_path: Path
) -> None:
    path = sweep_file(
        tmp_path, {"seed_everything": {"values": [3, 4]}, "model.num_layers": {"values": [1, 2]}}
    )
    result = sweep_cli(str(path), "--dry-run", "--workers", "2", "--threads", "1")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("[pending] ")]
    assert len(lines) == 4
    key, command = lines[1].removeprefix("[pending] ").split(": ", 1)
    assert key == "0001-num_layers=1,seed_everything=4"
    argv = shlex.split(command)
    assert argv[:3] == [sys.executable, "-m", "lightning_app"]
    run_dir = f"sweeps/tiny/{key}"
    assert argv[-5:] == [
        "--model.num_layers=1",
        "--seed_everything=4",
        f"--run_dir={run_dir}",
        f"--wandb.dir={run_dir}",
        "--wandb.group=tiny",
    ]
    assert "4 runs" in result.stdout and "2 worker(s) x 1 thread(s)" in result.stdout
    assert "OMP_NUM_THREADS=1, W&B offline" in result.stdout
    assert not (tmp_path / "sweeps").exists()


def test_help_explains_the_command(sweep_cli: Callable[..., InProcess]) -> None:
    result = sweep_cli("--help")
    assert result.returncode == 0
    for text in ("--workers", "--retry", "--dry-run", "--yes", "wandb agent", "kill -9"):
        assert text in result.stdout, text


def test_help_imports_neither_pandas_nor_scipy() -> None:
    """``sweep --help`` stays quick: the statistics are imported only where a look is made."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "lightning_app", "sweep", "--help"],
        env=app_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "lightning_app.sweeps.adaptive" in imported  # what imported the statistics before
    assert not {name for name in imported if name.split(".")[0] in ("pandas", "scipy")}
