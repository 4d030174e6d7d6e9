"""Probes: plausible mistakes with ``sweep``, each answered in one line, with nothing touched.

Each probe runs the command in-process and asserts exit status 2, a stderr of exactly one line
that starts with ``error:`` and names the file, flag or key at fault, no traceback, and the test's
folder (sweep files, sweep folders) byte for byte as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import InProcess
from tests.sweeps.conftest import sweep_file
from tests.sweeps.fakes import SUCCEED, use_children

Edit = Callable[[dict[str, Any]], None]


@pytest.fixture(autouse=True)
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """A probe that is wrongly accepted starts trivial children, not trainings."""
    use_children(monkeypatch, lambda request: SUCCEED)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root``: a file's bytes, None for a folder."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def refused(result: InProcess, before: dict[str, bytes | None], root: Path) -> str:
    """The one error line of a refused command that changed nothing under ``root``."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert snapshot(root) == before
    return lines[0]


def probe_file(
    sweep_cli: Callable[..., InProcess], tmp_path: Path, edit: Edit, *flags: str
) -> tuple[Path, str]:
    """A sweep file edited by ``edit``, run with ``flags``: its path and the error line."""
    path = sweep_file(tmp_path, {"seed_everything": {"values": [1, 2]}})
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    before = snapshot(tmp_path)
    return path, refused(sweep_cli(str(path), *flags), before, tmp_path)


def params(**parameters: Any) -> Edit:
    return lambda data: data["parameters"].update(parameters)


FILE_PROBES: dict[str, tuple[Edit, str]] = {
    "value of the wrong type": (
        params(**{"model.hidden_size": {"values": [8, "abc"]}}),
        "{path}: parameter model.hidden_size value 'abc': expected an integer",
    ),
    "plain values for a list-typed key": (
        params(**{"wandb.tags": {"values": ["café ünï", "with space"]}}),
        "{path}: parameter wandb.tags value 'café ünï': wandb.tags takes a list, and each value "
        "is passed as written (as `wandb agent` does); for one per run write values: "
        '[["café ünï"], ["with space"]]',
    ),
    "a list item with a quote": (
        params(**{"wandb.tags": {"values": [['it\'s "q"']]}}),
        "{path}: parameter wandb.tags value ['it\\'s \"q\"']: W&B passes it as",
    ),
    "a Union-typed key": (
        params(seed_everything={"values": [1, "x"]}),
        "{path}: parameter seed_everything value 'x': expected true or false or an integer",
    ),
    "a float for an optional integer": (
        params(**{"trainer.max_epochs": {"values": [1, 1.5]}}),
        "{path}: parameter trainer.max_epochs value 1.5: expected an integer or null",
    ),
    "null, which W&B passes as the text None": (
        params(**{"model.init_seed": {"values": [1, None]}}),
        "{path}: parameter model.init_seed value null: W&B passes it as --model.init_seed=None",
    ),
    "shell metacharacters in an integer": (
        params(seed_everything={"values": ["1; rm -rf ~", "$(reboot)"]}),
        "{path}: parameter seed_everything value '1; rm -rf ~': expected",
    ),
    "a literal key given another word": (
        params(**{"trainer.precision": {"values": ["fp99"]}}),
        "{path}: parameter trainer.precision value 'fp99'",
    ),
    "unknown method": (lambda d: d.update(method="hyperband"), "unknown method 'hyperband'"),
    "empty values": (params(seed_everything={"values": []}), "values is empty"),
    "a parameter the CLI does not have": (
        params(**{"model.hiden_size": {"values": [8]}}),
        "{path}: parameters.model.hiden_size is not a config key",
    ),
    "distribution bounds reversed": (
        params(**{"model.learning_rate": {"distribution": "uniform", "min": 0.1, "max": 0.01}}),
        "min 0.1 is not less than max 0.01",
    ),
    "log_uniform_values from zero": (
        params(
            **{
                "model.learning_rate": {
                    "distribution": "log_uniform_values",
                    "min": 0,
                    "max": 0.1,
                }
            }
        ),
        "log_uniform_values needs min > 0",
    ),
    "probabilities not summing to one": (
        params(
            seed_everything={
                "distribution": "categorical_w_probabilities",
                "values": [1, 2],
                "probabilities": [0.5, 0.6],
            }
        ),
        "probabilities must be non-negative and sum to 1",
    ),
    "a misspelt parameter setting": (params(seed_everything={"valuez": [1]}), "seed_everything"),
    "a value listed twice": (params(seed_everything={"values": [1, 1]}), "lists 1 twice"),
    "a runner key swept": (params(run_dir={"value": "x"}), "set by the sweep runner"),
    "no ${args}": (lambda d: d["command"].remove("${args}"), "must contain the item ${args}"),
    "an unknown macro": (lambda d: d["command"].insert(0, "${foo}"), "unknown macro ${foo}"),
    "a command that is not ours": (
        lambda d: d["command"].__setitem__(3, "train.py"),
        "must run `${interpreter} -m lightning_app",
    ),
    "an unknown top-level key": (lambda d: d.update(paramters={}), "paramters"),
}


@pytest.mark.parametrize("name", list(FILE_PROBES))
def test_a_bad_sweep_file_is_one_line(
    sweep_cli: Callable[..., InProcess], tmp_path: Path, name: str
) -> None:
    edit, expected = FILE_PROBES[name]
    path, line = probe_file(sweep_cli, tmp_path, edit)
    assert expected.replace("{path}", str(path)) in line, line
    assert str(path) in line


FLAG_PROBES: dict[str, tuple[list[str], str]] = {
    "--workers 0": (["--workers", "0"], "--workers must be at least 1"),
    "--retry -1": (["--retry", "-1"], "--retry must be 0 or more"),
    "--seed on a grid": (["--seed", "3"], "--seed only applies to random sweeps"),
    "--repair with --dry-run": (["--repair", "--dry-run"], "--repair"),
    "--repair with no sweep": (["--repair"], "--repair: sweeps/tiny holds no sweep"),
    "--cold and --warm": (["--cold", "--warm"], "--cold and --warm"),
    "--workers abc": (["--workers", "abc"], "--workers 'abc': expected an integer"),
    "--wandb-mode bogus": (
        ["--wandb-mode", "bogus"],
        "--wandb-mode 'bogus': expected one of online, offline, disabled",
    ),
    "an unknown flag": (["--bogus"], "--bogus"),
    "a misspelt flag": (
        ["--wokers", "2"],
        "unrecognized arguments: --wokers 2 (did you mean --workers?)",
    ),
    "--count 0": (["--count", "0"], "--count must be positive, got 0"),
    "--threads 0": (["--threads", "0"], "--threads must be at least 1"),
    "--config that does not exist": (
        ["--config", "/nonexistent/flags.yaml"],
        "--config: File does not exist: '/nonexistent/flags.yaml'",
    ),
    "--backend bogus": (["--backend", "bogus"], "--backend 'bogus': expected one of local, ray"),
    "--dir not writable": (
        ["--dir", "/proc/sweep"],
        "--dir: cannot write in /proc/sweep (its nearest existing folder is /proc)",
    ),
}


@pytest.mark.parametrize("name", list(FLAG_PROBES))
def test_a_bad_flag_is_one_line(
    sweep_cli: Callable[..., InProcess], tmp_path: Path, name: str
) -> None:
    flags, expected = FLAG_PROBES[name]
    _, line = probe_file(sweep_cli, tmp_path, lambda data: None, *flags)
    assert expected in line, line


def test_dir_that_is_a_file_or_under_one_is_one_line(
    sweep_cli: Callable[..., InProcess], tmp_path: Path
) -> None:
    path = sweep_file(tmp_path, {"seed_everything": {"values": [1, 2]}})
    a_file = tmp_path / "taken"
    a_file.write_text("mine")
    before = snapshot(tmp_path)
    line = refused(sweep_cli(str(path), "--dir", str(a_file)), before, tmp_path)
    assert f"--dir: {a_file} is a file, not a folder" in line
    line = refused(sweep_cli(str(path), "--dir", str(a_file / "sub" / "x")), before, tmp_path)
    assert f"--dir: {a_file / 'sub' / 'x'} is under {a_file}, which is a file" in line


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p.mkdir(), "{path}"),
        (lambda p: p.write_text("method: grid\nparameters: {a: {values: [1, 2}\n"), "line 2"),
        (lambda p: p.write_text("- a list\n"), "{path}"),
        (lambda p: p.write_bytes(b"\xff\xfe not text"), "{path}"),
        (lambda p: None, "{path}"),
    ],
    ids=["a folder", "bad YAML", "not a mapping", "not UTF-8", "missing"],
)
def test_a_sweep_file_that_is_not_one_is_one_line(
    sweep_cli: Callable[..., InProcess],
    tmp_path: Path,
    make: Callable[[Path], None],
    expected: str,
) -> None:
    path = tmp_path / "sweep.yaml"
    make(path)
    before = snapshot(tmp_path)
    line = refused(sweep_cli(str(path)), before, tmp_path)
    assert expected.replace("{path}", str(path)) in line, line


def test_a_damaged_state_is_one_line_naming_repair(
    sweep_cli: Callable[..., InProcess], tmp_path: Path
) -> None:
    path = sweep_file(tmp_path, {"seed_everything": {"values": [1]}})
    assert sweep_cli(str(path)).returncode == 0
    state = tmp_path / "sweeps" / "tiny" / "state.json"
    state.write_text('{"runs": ')
    before = snapshot(tmp_path)
    line = refused(sweep_cli(str(path)), before, tmp_path)
    assert line.endswith("rerun with --repair to rebuild it from the run folders")
    assert "sweeps/tiny/state.json: unreadable sweep state" in line
