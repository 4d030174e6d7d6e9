"""Checks of the paths ``analyze --out`` and ``export --to`` write, made before reading any run.

A path that cannot be written (a read-only or virtual file system such as ``/proc``, a file where
a folder is needed or under one, a folder where a file is needed) is one line naming the flag and
the path, and nothing is created: writability is tried as ``lightning_app.paths`` tries it (the
training CLI's check), with a temporary entry removed at once.
"""

from __future__ import annotations

from pathlib import Path

from lightning_app.errors import UserError
from lightning_app.paths import write_problem


def check_output_folder(path: Path, flag: str) -> None:
    """``path`` is a folder that can be written, or one that can be created (not created here)."""
    named = f"{flag} {path}"
    if path.is_dir():
        _try_writing_in(path, named)
        return
    if path.is_symlink() and not path.exists():
        raise UserError(f"{named}: a broken link is there; the report needs a folder")
    if path.exists():
        raise UserError(f"{named}: a file is there; the report needs a folder")
    ancestor = _existing_ancestor(path, named)
    _try_writing_in(ancestor, named)


def check_output_file(path: Path, flag: str) -> None:
    """``path`` is a file that can be written in an existing folder (not created here)."""
    named = f"{flag} {path}" if flag else str(path)
    if path.is_dir():
        raise UserError(f"{named}: a folder is there; expected a file name such as runs.parquet")
    parent = path.parent
    if not parent.is_dir():
        ancestor = _existing_ancestor(path, named)
        raise UserError(f"{named}: folder {parent} does not exist (the nearest is {ancestor})")
    _try_writing_in(parent, named)


def _existing_ancestor(path: Path, named: str) -> Path:
    """The nearest existing folder above ``path``; a file on the way is the user's mistake."""
    for parent in path.absolute().parents:
        if parent.is_dir():
            return parent
        if parent.exists():
            raise UserError(f"{named}: {parent} is a file, not a folder")
    return Path(path.absolute().anchor)  # pragma: no cover - the root always exists


def _try_writing_in(folder: Path, named: str) -> None:
    problem = write_problem(folder)
    if problem is not None:
        raise UserError(f"{named}: cannot write in {folder} ({problem})")
