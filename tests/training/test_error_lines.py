"""jsonargparse's many-line complaints said in one line: the key, what it accepts, the value.

Sweeps check every value with the training parser built with ``exit_on_error=False``
(``lightning_app.sweeps.validate``) and report its error through ``one_line``: the same words
must come out whether a value was a flag, a config file's or a sweep's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from jsonargparse import ArgumentError

from lightning_app.cli_errors import one_line, parse_error_line
from lightning_app.errors import UserError
from lightning_app.paths import check_writable_dir, check_writable_file, first_missing
from lightning_app.sweeps.validate import training_parser
from tests.training.conftest import QUICKSTART

MODEL_UNION = """Parser key "model":
  Does not validate against any of the Union subtypes
  Subtypes: [<class 'lightning.pytorch.core.module.LightningModule'>, <class 'NoneType'>]
  Errors:
    - Problem with given class_path 'lightning_app.model.BDRNN':
        Parser key "hidden_size":
          Expected a <class 'int'>. Got value: abc
    - Expected a <class 'NoneType'>
  Given value type: <class 'dict'>
  Given value: {'hidden_size': 'abc'}"""

SEED_UNION = """Parser key "seed_everything":
  Does not validate against any of the Union subtypes
  Subtypes: [<class 'bool'>, <class 'int'>]
  Errors:
    - Expected a <class 'bool'>
    - Expected a <class 'int'>
  Given value type: <class 'str'>
  Given value: abc"""


def test_an_inner_argument_of_the_model_is_named() -> None:
    assert parse_error_line(MODEL_UNION) == "model.hidden_size: expected an integer, got 'abc'"
    typed = ["fit", "--model.hidden_size=abc"]
    assert parse_error_line(MODEL_UNION, typed).startswith("--model.hidden_size: ")


def test_a_union_of_simple_types_says_what_it_accepts() -> None:
    assert one_line(SEED_UNION) == "seed_everything: expected an integer or true/false, got 'abc'"
    assert parse_error_line(SEED_UNION, ["--seed_everything=abc"]).startswith("--seed_everything")


def test_other_messages_keep_their_first_lines() -> None:
    assert one_line("something\n  else\n  and\n  more") == "something else and"
    assert parse_error_line("not a parser message") is None


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--model.hidden_size=abc"], "model.hidden_size: expected an integer, got 'abc'"),
        (["--seed_everything=abc"], "seed_everything: expected an integer or true/false"),
        (["--wandb.tags=x"], "wandb.tags: expected a list, got 'x'"),
        (["--data.batch_size=x"], "data.batch_size: expected an integer, got 'x'"),
        (["--wandb.mode=x"], "wandb.mode: expected one of online, offline, disabled or null"),
        (["--model=lightning_app.model.BDRN"], "did you mean lightning_app.model.BDRNN?"),
    ],
)
def test_the_sweeps_parser_gives_the_same_line(args: list[str], line: str) -> None:
    """jsonargparse's real messages (its wording could change with a new release)."""
    with pytest.raises(ArgumentError) as raised:
        training_parser().parse_args(["fit", f"--config={QUICKSTART}", *args])
    assert line in one_line(str(raised.value))


def test_writable_dir_checks(tmp_path: Path) -> None:
    file = tmp_path / "f"
    file.write_text("x")
    check_writable_dir(tmp_path / "new" / "deeper", "--x")  # creatable: fine
    assert not (tmp_path / "new").exists()  # and nothing was created
    assert list(tmp_path.iterdir()) == [file]  # the write probe was removed
    with pytest.raises(UserError, match=r"^--x: .*/f is a file, not a folder$"):
        check_writable_dir(file, "--x")
    with pytest.raises(UserError, match=r"^--x: .*/f/sub is under .*/f, which is a file"):
        check_writable_dir(file / "sub", "--x")
    with pytest.raises(UserError, match=r"^--out: .* is a folder, not a file$"):
        check_writable_file(tmp_path, "--out")
    with pytest.raises(UserError, match=r"^--out: cannot write in /proc"):
        check_writable_file("/proc/out.csv", "--out")
    assert first_missing(tmp_path / "a" / "b") == tmp_path / "a"
    assert first_missing(file) is None
