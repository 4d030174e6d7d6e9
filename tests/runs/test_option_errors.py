"""What an option accepts, read from its type, and jsonargparse's messages as one line."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from lightning_app.runs.command import build_parser
from lightning_app.runs.option_errors import accepted_values, option_error_line


@pytest.mark.parametrize(
    ("hint", "said"),
    [
        (int, "an integer"),
        (float, "a number"),
        (bool, "true or false"),
        (Literal["signal", "noise", "pooled"], "one of signal, noise, pooled"),
        (Literal["online", "offline"] | None, "one of online, offline"),
        (int | Literal["final"], "an integer or 'final'"),
        (float | None, "a number"),
        (str | list[str] | None, "text or a list"),
        (Path, "Path"),
    ],
)
def test_what_a_type_accepts_is_said_plainly(hint, said: str) -> None:
    assert accepted_values(hint) == said


@pytest.mark.parametrize(
    ("message", "argv", "line"),
    [
        (
            "Parser key \"progress\":\n  Expected a <class 'bool'>. Got value: maybe",
            ["--progress", "maybe"],
            "--progress: expected true or false; got 'maybe'",
        ),
        (
            "argument --state/--state+: expected one argument",
            ["--state"],
            "--state: expected a value after it",
        ),
        ("the following arguments are required: source, to", [], "--source, --to are required"),
        ("unrecognized arguments: --sorce x", ["--sorce", "x"], "--sorce: unknown option; did"),
        (
            "argument --mode: invalid choice: 'x' (choose from 'a', 'b')",
            ["--mode", "x"],
            "argument --mode: invalid choice: 'x' (choose from 'a', 'b')",
        ),
        ("first line\n  second line", [], "first line second line"),
    ],
)
def test_parser_messages_become_one_line(message: str, argv: list[str], line: str) -> None:
    said = option_error_line(build_parser(), message, argv)
    assert said.startswith(line) and "\n" not in said
