"""Probes: one plausible mistake each, run in-process as a user would type it.

Each ends in exactly one line on stderr, ``error: ...`` naming the flag or file, exit status 2,
no traceback, and nothing left behind or changed: no run folder, no ``wandb/`` folder, and every
file and folder the test set up exactly as it was (a snapshot of the tree before and after).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.training.conftest import TINY
from tests.training.idx import write_mnist

Setup = Callable[[Path], list[str]]


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every path under ``root``: a file's bytes, a link's target, or ``dir``."""
    tree: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            tree[key] = "-> " + os.readlink(path)
        elif path.is_dir():
            tree[key] = "dir"
        else:
            tree[key] = path.read_bytes()
    return tree


def assert_probe(result, tmp_path: Path, before: dict[str, bytes | str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert snapshot(tmp_path) == before  # no runs/, no wandb/, nothing changed


def a_file(tmp_path: Path, name: str = "afile") -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / name
    path.write_text("mine\n")
    return path


def truncated_mnist(name: str, keep: int) -> Setup:
    def setup(tmp_path: Path) -> list[str]:
        raw = write_mnist(tmp_path / "data", n_train=60, n_test=20)
        path = raw / name
        path.write_bytes(path.read_bytes()[:keep])
        return ["--data.dataset=mnist", f"--data.data_dir={tmp_path / 'data'}"]

    return setup


def config_file(text: str) -> Setup:
    def setup(tmp_path: Path) -> list[str]:
        path = tmp_path / "extra.yaml"
        path.write_text(text)
        return [f"--config={path}"]

    return setup


def flags(*given: str) -> Setup:
    return lambda tmp_path: list(given)


PROBES: dict[str, tuple[Setup, list[str]]] = {
    # paths the command writes
    "run_dir is a file": (
        lambda t: [f"--run_dir={a_file(t)}"],
        ["--run_dir:", "afile is a file, not a folder"],
    ),
    "run_dir under a file": (
        lambda t: [f"--run_dir={a_file(t)}/run"],
        ["--run_dir:", "afile/run is under", "which is a file"],
    ),
    "run_dir under /proc": (flags("--run_dir=/proc/nope/run"), ["--run_dir:", "cannot write"]),
    "checkpoints is a file": (
        lambda t: [f"--run_dir={a_file(t / 'mkdir_first', 'checkpoints').parent}"],
        ["--run_dir:", "checkpoints is a file, not a folder"],
    ),
    "wandb.dir is a file": (
        lambda t: [f"--wandb.dir={a_file(t)}"],
        ["--wandb.dir:", "afile is a file, not a folder"],
    ),
    "wandb.dir under a file": (
        lambda t: [f"--wandb.dir={a_file(t)}/logs"],
        ["--wandb.dir:", "which is a file"],
    ),
    "wandb folder is a file": (
        lambda t: [f"--wandb.dir={a_file(t / 'w', 'wandb').parent}"],
        ["--wandb.dir:", "wandb is a file, not a folder"],
    ),
    "data_dir is a file": (
        lambda t: [f"--data.data_dir={a_file(t)}"],
        ["--data.data_dir:", "afile is a file, not a folder"],
    ),
    "data_dir under a file": (
        lambda t: ["--data.dataset=mnist", f"--data.data_dir={a_file(t)}/data"],
        ["--data.data_dir:", "which is a file"],
    ),
    # data files
    "truncated images": (
        truncated_mnist("train-images-idx3-ubyte", 5000),
        ["MNIST/raw/train-images-idx3-ubyte: truncated: 5000 bytes, expected 47056"],
    ),
    "truncated labels": (
        truncated_mnist("t10k-labels-idx1-ubyte", 10),
        ["MNIST/raw/t10k-labels-idx1-ubyte: truncated: 10 bytes, expected 28"],
    ),
    "header only": (
        truncated_mnist("train-labels-idx1-ubyte", 3),
        ["train-labels-idx1-ubyte: not an IDX file"],
    ),
    "missing data files": (
        lambda t: ["--data.dataset=mnist", f"--data.data_dir={t / 'nothing'}"],
        ["nothing/MNIST/raw", "not found"],
    ),
    "val_size too large": (
        flags("--data.val_size=4000"),
        ["data.val_size must be between 1 and 3999"],
    ),
    # option values
    "seed_everything=abc": (
        flags("--seed_everything=abc"),
        ["--seed_everything: expected an integer or true/false, got 'abc'"],
    ),
    "hidden_size=abc": (
        flags("--model.hidden_size=abc"),
        ["--model.hidden_size: expected an integer, got 'abc'"],
    ),
    "hidden_size=abc in a config": (
        config_file("model:\n  hidden_size: abc\n"),
        ["model.hidden_size: expected an integer, got 'abc'"],
    ),
    "batch_size=1.5 in a config": (
        config_file("data:\n  batch_size: 1.5\n"),
        ["data.batch_size: expected an integer, got '1.5'"],
    ),
    "learning_rate=fast": (
        flags("--model.learning_rate=fast"),
        ["--model.learning_rate: expected a number, got 'fast'"],
    ),
    "max_epochs=x": (
        flags("--trainer.max_epochs=x"),
        ["--trainer.max_epochs: expected an integer or null, got 'x'"],
    ),
    "wandb.mode=bogus": (
        flags("--wandb.mode=bogus"),
        ["--wandb.mode: expected one of online, offline, disabled or null, got 'bogus'"],
    ),
    "precision=abc": (flags("--trainer.precision=abc"), ["--trainer.precision: expected one of"]),
    "unknown dataset": (
        flags("--data.dataset=cifar10"),
        ["--data.dataset: expected one of mnist, mnist-5k, fashion-mnist, got 'cifar10'"],
    ),
    "negative hidden_size": (flags("--model.hidden_size=-4"), ["model.hidden_size", "positive"]),
    "zero batch_size": (flags("--data.batch_size=0"), ["data.batch_size", "positive"]),
    "negative num_workers": (flags("--data.num_workers=-1"), ["data.num_workers", "0 or more"]),
    "wandb.tags=x": (flags("--wandb.tags=x"), ["--wandb.tags: expected a list, got 'x'"]),
    # classes and files
    "mistyped model class": (
        flags("--model=lightning_app.examples.DigitCNN"),
        ["--model:", "has no DigitCNN", "did you mean lightning_app.examples.DigitsCNN?"],
    ),
    "mistyped data class": (
        flags("--data=lightning_app.data.MNISTDataModul"),
        ["--data:", "did you mean lightning_app.data.MNISTDataModule?"],
    ),
    "mistyped model argument": (
        flags("--model.hidden_sise=3"),
        ["model.hidden_sise is not an argument", "did you mean model.hidden_size?"],
    ),
    "missing config file": (flags("--config=nope.yaml"), ["nope.yaml", "does not exist"]),
    "config file is a folder": (
        lambda t: [f"--config={(t / 'conf.yaml').mkdir() or t / 'conf.yaml'}"],
        ["--config:", "conf.yaml is a folder, not a config file"],
    ),
    "malformed config": (config_file("model: [16\n"), ["extra.yaml", "malformed YAML"]),
}


def unreadable_data(tmp_path: Path) -> list[str]:
    raw = write_mnist(tmp_path / "data", n_train=60, n_test=20)
    (raw / "train-images-idx3-ubyte").chmod(0)
    return ["--data.dataset=mnist", f"--data.data_dir={tmp_path / 'data'}"]


def read_only_run_root(tmp_path: Path) -> list[str]:
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o500)
    return [f"--run_dir={tmp_path / 'ro' / 'run'}"]


if os.geteuid() != 0:  # root reads and writes whatever the permissions say
    PROBES["unreadable data file"] = (unreadable_data, ["train-images-idx3-ubyte: cannot read"])
    PROBES["read-only folder"] = (read_only_run_root, ["--run_dir:", "cannot write in"])


@pytest.mark.parametrize("name", list(PROBES))
def test_probe(cli, tmp_path: Path, name: str) -> None:
    setup, needles = PROBES[name]
    args = setup(tmp_path)
    before = snapshot(tmp_path)
    assert_probe(cli("fit", *TINY, *args), tmp_path, before, *needles)


@pytest.mark.process
def test_a_run_dir_that_is_a_file_in_a_real_process(app, tmp_path: Path) -> None:
    """The user's journey as typed: one line, exit 2, nothing written."""
    a_file(tmp_path)
    before = snapshot(tmp_path)
    assert_probe(app("fit", *TINY, "--run_dir=afile"), tmp_path, before, "--run_dir: afile")


@pytest.mark.parametrize("command", ["validate", "test", "predict"])
def test_evaluations_check_paths_and_data_first(cli, tmp_path: Path, command: str) -> None:
    run_dir = a_file(tmp_path)
    before = snapshot(tmp_path)
    assert_probe(cli(command, *TINY, f"--run_dir={run_dir}"), tmp_path, before, "--run_dir:")
    args = truncated_mnist("t10k-images-idx3-ubyte", 100)(tmp_path)
    before = snapshot(tmp_path)
    assert_probe(cli(command, *TINY, *args), tmp_path, before, "truncated: 100 bytes")
