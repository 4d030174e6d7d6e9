"""User-facing errors: one line naming the file or key and what is wrong, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn


class UserError(Exception):
    """A mistake in the user's input (config, file, argument). Printed as one line, exit code 2."""


def yaml_error(path: object, err: Exception) -> str:
    """One line for a ``yaml.YAMLError``: the file, where in it, and PyYAML's complaint."""
    mark = getattr(err, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"{path}: malformed YAML{where}: {problem}"


def fail(message: str) -> NoReturn:
    """Print ``error: message`` to stderr and exit with status 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn :class:`UserError` raised inside the block into a one-line message and exit 2."""
    try:
        yield
    except UserError as err:
        fail(str(err))


def run_with_user_errors(func: Callable[[], object]) -> None:
    """Call ``func`` and report a :class:`UserError` as one line instead of a traceback."""
    with user_errors():
        func()
