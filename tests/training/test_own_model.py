"""Bring your own model: docs/own-model.md's example, copied out of the page and run for real.

The files and commands are read from the document itself (each copyable block has a
``<!-- file: NAME -->`` or ``<!-- commands -->`` marker), so the page cannot go stale: the model
must train through the real CLI, log what the analyses read, and its sweep files must pass the
sweep's checks against the class the config selects.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.training.conftest import REPO, read_wandb, run_app, wandb_files

DOC = REPO / "docs" / "own-model.md"
FILE_BLOCK = re.compile(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", re.S)
COMMANDS_BLOCK = re.compile(r"<!-- commands -->\n```bash\n(.*?)```", re.S)
SHORT = [
    "--trainer.max_epochs=2",
    "--trainer.limit_train_batches=8",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]
WARNING = "warning: this run logged no test/acc per epoch"
# Written by the tests beside the document's files: a model that leaves out test/acc, and a
# class that is not a LightningModule.
VARIANTS = '''
from mynet import MyNet


class ValOnly(MyNet):
    """MyNet without the test set's accuracy."""

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        if dataloader_idx == 0:
            self.log("val/acc", self.accuracy(batch), add_dataloader_idx=False)


class NotAModule:
    def __init__(self, hidden: int = 1) -> None:
        self.hidden = hidden
'''


def doc_files() -> dict[str, str]:
    return dict(FILE_BLOCK.findall(DOC.read_text()))


def doc_commands() -> list[list[str]]:
    """The page's bash block, one argument list per line, ``VAR=value`` prefixes included."""
    (block,) = COMMANDS_BLOCK.findall(DOC.read_text())
    return [shlex.split(line) for line in block.splitlines() if line.strip()]


def app_args(command: list[str]) -> tuple[dict[str, str], list[str]]:
    """A documented command line as (environment, arguments after ``python -m lightning_app``)."""
    env = dict(word.split("=", 1) for word in command if re.match(r"^[A-Z_]+=", word))
    start = command.index("lightning_app") + 1
    assert command[start - 3 : start] == ["python", "-m", "lightning_app"], command
    return env, command[start:]


@pytest.fixture
def own(tmp_path: Path) -> Iterator[Path]:
    """A folder holding the page's files (and the variants), importable in this process too."""
    for name, text in doc_files().items():
        (tmp_path / name).write_text(text)
    (tmp_path / "variants.py").write_text(VARIANTS)
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for module in ("mynet", "variants"):  # the next test's copy must be imported afresh
        sys.modules.pop(module, None)


def run_documented(command: list[str], cwd: Path, *extra: str):
    """Run a command of the page as written (its ``PYTHONPATH=.`` relative to ``cwd``)."""
    env, args = app_args(command)
    path = os.pathsep.join([env.pop("PYTHONPATH", ""), str(REPO)]).lstrip(os.pathsep)
    return run_app([*args, *extra], cwd, PYTHONPATH=path, **env)


def test_the_page_has_the_example_and_its_commands_use_it() -> None:
    files = doc_files()
    assert set(files) == {"mynet.py", "mynet.yaml", "mynet-noise.yaml", "mynet-signal.yaml"}
    assert yaml.safe_load(files["mynet.yaml"])["model"]["class_path"] == "mynet.MyNet"
    sweeps = {
        yaml.safe_load(files[f])["name"]: f for f in ("mynet-noise.yaml", "mynet-signal.yaml")
    }
    commands = [app_args(c)[1] for c in doc_commands()]
    assert ["fit", "--config", "mynet.yaml"] in commands
    assert sorted(c[1] for c in commands if c[0] == "sweep") == sorted(sweeps.values())
    (analyze,) = [c for c in commands if c[0] == "analyze"]
    assert {analyze[analyze.index("--noise") + 1], analyze[analyze.index("--signal") + 1]} == set(
        sweeps
    )
    for command in doc_commands():  # everything that imports mynet puts it on the path
        if app_args(command)[1][0] in ("fit", "sweep"):
            assert app_args(command)[0].get("PYTHONPATH") == ".", command


@pytest.mark.process
def test_the_example_trains_and_logs_what_the_analyses_read(own: Path) -> None:
    """The page's ``fit`` with a ``--model.hidden`` override, run as written (shortened), in a
    process of its own: ``PYTHONPATH=.`` is what makes ``mynet`` importable."""
    (command,) = [c for c in doc_commands() if "--model.hidden=32" in c]
    result = run_documented(command, own, *SHORT)
    assert result.returncode == 0, result.stderr
    assert WARNING not in result.stderr

    (file,) = wandb_files(own)
    logged = read_wandb(file)
    assert logged.run["run_group"] == "mynet"
    model = logged.config["model"]
    # The class and its arguments sit right under `model`, as sweeps and analyses name them.
    assert model["class_path"] == "mynet.MyNet"
    assert model["hidden"] == 32  # the command line's override
    assert model["learning_rate"] == 0.001  # mynet.yaml
    assert model["init_seed"] is None  # the class's default
    assert "init_args" not in model
    assert logged.config["data"]["dataset"] == "mnist-5k"
    epochs = logged.epochs()
    assert sorted(epochs) == [0, 1]
    for row in epochs.values():
        assert {"epoch", "train/loss", "val/acc", "test/acc"} <= set(row)
        assert 0.1 < row["test/acc"] <= 1.0  # above chance on the 1,000 test digits
    # The run folder's config.yaml keeps LightningCLI's form, so it can be run again.
    saved = yaml.safe_load((own / logged.config["run_dir"] / "config.yaml").read_text())
    assert saved["model"] == {
        "class_path": "mynet.MyNet",
        "init_args": {"hidden": 32, "learning_rate": 0.001, "init_seed": None},
    }


def test_a_model_that_logs_no_test_acc_is_told_after_fit(own: Path, in_process) -> None:
    """The page's ``fit`` with a variant of its model, in this process (``own`` is on the path)."""
    (command,) = [c for c in doc_commands() if c[-3:] == ["fit", "--config", "mynet.yaml"]]
    _, args = app_args(command)
    quick = ["--trainer.limit_val_batches=2", "--trainer.num_sanity_val_steps=0"]
    result = in_process()(
        *args, "--model=variants.ValOnly", *SHORT, "--trainer.max_epochs=1", *quick
    )
    assert result.returncode == 0, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("warning: ")]
    assert line.startswith(WARNING), line
    assert "(it logged train/loss, val/acc)" in line and "--metric" in line


MISTAKES = {
    "not-a-module": (
        "--model=variants.NotAModule",
        "--model: variants.NotAModule is not a LightningModule",
    ),
    "no-module": (
        "--model=nosuch.Net",
        "--model: cannot import nosuch.Net: No module named 'nosuch'",
    ),
    "no-class": ("--model=mynet.Nope", "--model: mynet has no Nope"),
    "unknown-arg": ("--model.not_an_arg=1", "model.not_an_arg is not an argument of mynet.MyNet"),
    "misspelt-arg": (
        "--model.hiden=32",
        "model.hiden is not an argument of mynet.MyNet (did you mean model.hidden?)",
    ),
    "refused-value": ("--model.hidden=0", "model.hidden must be a positive integer, got 0"),
}


@pytest.mark.parametrize(("override", "message"), list(MISTAKES.values()), ids=list(MISTAKES))
def test_mistakes_with_a_users_class_are_one_line(
    own: Path, in_process, override: str, message: str
) -> None:
    """The CLI's own code in-process (no start-up cost); ``mynet`` is importable from ``own``."""
    result = in_process()("fit", "--config", "mynet.yaml", override, *SHORT)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"error: {message}"


def test_the_pages_sweeps_are_checked_against_mynet(own: Path, in_process) -> None:
    sweep = in_process("sweep")
    for name in ("mynet-noise.yaml", "mynet-signal.yaml"):
        result = sweep(name, "--dry-run")
        assert result.returncode == 0, result.stderr
        assert "--config mynet.yaml" in result.stdout
    assert "--model.hidden=256" in result.stdout

    text = (own / "mynet-signal.yaml").read_text()
    assert "  model.hidden:" in text
    (own / "typo.yaml").write_text(text.replace("  model.hidden:", "  model.hiden:"))
    result = sweep("typo.yaml", "--dry-run")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: typo.yaml: parameters.model.hiden is not a config key of "
        "`python -m lightning_app fit` (did you mean model.hidden?)"
    )
    assert not (own / "sweeps").exists()  # checked before anything is written


@pytest.mark.parametrize("how", ["flag", "config"])
def test_a_users_class_starts_from_its_own_defaults(own: Path, in_process, how: str) -> None:
    (own / "bare.yaml").write_text("model:\n  class_path: mynet.MyNet\n")
    select = ["--model=mynet.MyNet"] if how == "flag" else ["--config", "bare.yaml"]
    result = in_process()("fit", *select, "--print_config")
    assert result.returncode == 0, result.stderr
    model = yaml.safe_load(result.stdout)["model"]
    assert model["init_args"] == {"hidden": 128, "learning_rate": 0.001, "init_seed": None}


def readme_commands() -> list[list[str]]:
    """The README's "Your own model" commands that need no files of the page's example."""
    section = (REPO / "README.md").read_text().split("### Your own model", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README: no command block under 'Your own model'"
    lines = [shlex.split(line.split("  #", 1)[0]) for line in block[1].splitlines()]
    return [line for line in lines if line and not re.match(r"^[A-Z_]+=", line[0])]


def test_the_readmes_own_model_commands_select_the_cnn(in_process) -> None:
    commands = readme_commands()
    assert len(commands) == 2, commands
    for command in commands:
        _, args = app_args(command)
        args = [str(REPO / a) if a.startswith("configs/") else a for a in args]
        result = in_process()(*args, "--print_config")
        assert result.returncode == 0, (command, result.stderr)
        model = yaml.safe_load(result.stdout)["model"]
        assert model["class_path"] == "lightning_app.examples.DigitsCNN", command


def test_a_class_chosen_after_a_config_keeps_the_values_it_accepts(in_process) -> None:
    """jsonargparse's rule for a changed class_path: the quickstart's learning rate carries
    over to the CNN, the BDRNN's hidden_size/num_layers are dropped, the flags apply."""
    config = str(REPO / "configs" / "quickstart.yaml")
    select = ["--model=lightning_app.examples.DigitsCNN", "--model.learning_rate=0.01"]
    result = in_process()("fit", "--config", config, *select, "--print_config")
    assert result.returncode == 0, result.stderr
    args = yaml.safe_load(result.stdout)["model"]["init_args"]
    assert args == {
        "channels": 16,
        "hidden": 64,
        "learning_rate": 0.01,
        "dropout": 0.1,
        "init_seed": None,
    }
    result = in_process()("fit", "--config", config, select[0], "--model.hidden_size=8")
    assert result.returncode == 2
    assert "model.hidden_size is not an argument of lightning_app.examples.DigitsCNN" in (
        result.stderr
    )


def test_a_config_after_the_class_flag_sets_that_class(own: Path, in_process) -> None:
    """A config file after ``--model=...`` configures the chosen class, which keeps its own
    defaults for the rest (MyNet's learning rate, not the BDRNN's)."""
    (own / "extra.yaml").write_text("model:\n  hidden: 64\n")
    result = in_process()("fit", "--model=mynet.MyNet", "--config", "extra.yaml", "--print_config")
    assert result.returncode == 0, result.stderr
    model = yaml.safe_load(result.stdout)["model"]
    assert model["init_args"] == {"hidden": 64, "learning_rate": 0.001, "init_seed": None}
