"""A progress bar on stderr for long reads; silent when asked to be or when stderr is not a TTY."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)


def progress_wanted(enabled: bool) -> bool:
    """Bars only for a person watching: never in pipes, logs or CI captures."""
    return enabled and sys.stderr.isatty()


@contextmanager
def progress_bar(
    description: str, total: int | None, enabled: bool
) -> Iterator[Callable[[], None]]:
    """Yield ``advance()``; draws a bar of ``total`` steps when :func:`progress_wanted`."""
    if not progress_wanted(enabled):
        yield lambda: None
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        task = progress.add_task(description, total=total)
        yield lambda: progress.advance(task)
