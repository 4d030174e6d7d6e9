"""Checks that a folder the tool will write can be written, before anything starts.

A run that fails an hour in because ``--run_dir`` is a file, or a folder under it cannot be
created, has wasted the hour and left half a run behind; these checks run first and say what is
wrong in one line naming the flag as the user typed it. Standard library only, so that every
command (training, sweeps, analyses, export) can use it without importing torch.
"""

from __future__ import annotations

import os
import secrets
from contextlib import suppress
from pathlib import Path

from lightning_app.errors import UserError


def check_writable_dir(path: str | os.PathLike[str], flag: str) -> None:
    """Raise :class:`UserError` unless ``path`` is, or can be created as, a writable folder.

    Creates nothing that stays: the nearest existing folder is probed by creating and removing
    one empty file (``os.access`` says yes to root even on a read-only file system or ``/proc``).
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise UserError(f"{flag}: {target} is a file, not a folder")
    existing = _nearest_existing(target)
    if not existing.is_dir():
        raise UserError(f"{flag}: {target} is under {existing}, which is a file, not a folder")
    problem = write_problem(existing)
    if problem is not None:
        where = "" if existing == target else f" (its nearest existing folder is {existing})"
        raise UserError(f"{flag}: cannot write in {target}{where}: {problem}")


def check_writable_file(path: str | os.PathLike[str], flag: str) -> None:
    """Raise :class:`UserError` unless a file can be written at ``path`` (its folder exists or
    can be created, and ``path`` is not a folder)."""
    target = Path(path)
    if target.is_dir():
        raise UserError(f"{flag}: {target} is a folder, not a file")
    check_writable_dir(target.parent, flag)


def first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (what ``mkdir -p`` creates)."""
    if path.exists() or path.is_symlink():
        return None
    missing = path
    for parent in path.parents:
        if parent.exists() or str(parent) in ("", "."):
            break
        missing = parent
    return missing


def _nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (file or folder)."""
    candidate = path.absolute() if not path.is_absolute() else path
    relative = not path.is_absolute()
    for each in (candidate, *candidate.parents):
        if each.exists() or each.is_symlink():
            return Path(os.path.relpath(each)) if relative else each
    return Path(candidate.anchor)


def write_problem(folder: Path) -> str | None:
    """Why a file cannot be created in ``folder``, or None: found by creating one."""
    probe = folder / f".lightning_app-write-check-{secrets.token_hex(4)}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as err:
        return err.strerror or type(err).__name__
    with suppress(OSError):  # pragma: no branch - created a moment ago
        probe.unlink()
    return None
