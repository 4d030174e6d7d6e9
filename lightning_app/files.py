"""Writing files so that a reader sees the old file or the new one, whole, never a torn write.

One helper for every file the tool rewrites (a sweep's state and plan, the W&B API cache, tidy
tables): write into a unique temporary file beside the target, then ``os.replace`` it, which is
atomic on POSIX and Windows within one folder. ``durable=True`` also flushes the file and the
folder to disk first, for state that must survive a power cut (a sweep's state file).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any


@contextmanager
def replacing(path: Path, *, durable: bool = False) -> Iterator[Path]:
    """A temporary path to write; it replaces ``path`` when the block ends without an error,
    and is removed whatever happens."""
    tmp = _new_file(path)
    try:
        yield tmp
        if durable:
            _fsync(tmp, os.O_RDONLY)
        os.replace(tmp, path)
        if durable:
            _fsync(path.parent, os.O_RDONLY)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(
    path: Path,
    data: Any,
    *,
    durable: bool = False,
    indent: int | None = 1,
    default: Callable[[Any], Any] = str,
) -> None:
    """Replace ``path`` with ``data`` as JSON; ``default`` turns what JSON lacks into values."""
    with replacing(path, durable=durable) as tmp:
        tmp.write_text(json.dumps(data, indent=indent, default=default) + "\n")


def _new_file(path: Path) -> Path:
    """An empty file with a unique name beside ``path``, with the permissions a plain ``open``
    would give it (0666 less the umask; ``tempfile.mkstemp`` would make it 0600)."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
        return tmp


def _fsync(path: Path, flags: int) -> None:
    try:
        fd = os.open(path, flags)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        with suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
