"""What the runner shows: a rich progress bar on a terminal, one line per event everywhere.

The bar is refreshed by the runner's loop (``auto_refresh=False``): rich would otherwise start a
refresh thread, and the runner must stay single-threaded for its children's ``preexec_fn``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def eta_seconds(
    queued: int, started: Sequence[float], durations: Sequence[float], workers: int
) -> float | None:
    """Time left: queued runs at the mean run time, plus what the running ones still need.

    None until a run has finished (nothing to estimate a run's time from).
    """
    if not durations:
        return None
    mean = sum(durations) / len(durations)
    now = time.time()
    left = queued * mean + sum(max(0.0, mean - (now - t)) for t in started)
    return left / max(1, workers)


class SweepProgress:
    """Progress of one sweep: ``done/total``, failed, running and an ETA."""

    def __init__(self, console: Console, title: str) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("failed {task.fields[failed]}  running {task.fields[running]}"),
            TextColumn("ETA {task.fields[eta]}"),
            TimeElapsedColumn(),
            console=console,
            auto_refresh=False,
            disable=not console.is_terminal,
        )
        self.title = title
        self.task = self.progress.add_task(title, total=0, failed=0, running=0, eta="--")

    def start(self, total: int, done: int) -> None:
        self.progress.update(self.task, total=total, completed=done)
        self.progress.start()

    def update(
        self,
        *,
        done: int,
        failed: int,
        running: int,
        queued: int,
        durations: Sequence[float],
        started: Sequence[float],
        workers: int,
    ) -> None:
        eta = eta_seconds(queued, started, durations, workers)
        self.progress.update(
            self.task,
            completed=done,
            failed=failed,
            running=running,
            eta="--" if eta is None else format_duration(eta),
        )
        self.progress.refresh()

    def event(self, text: str) -> None:
        """One line above the bar (or the only output when not on a terminal)."""
        self.progress.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def stop(self) -> None:
        self.progress.refresh()
        self.progress.stop()


def format_duration(seconds: float) -> str:
    """``1h 02m``, ``3m 05s``, ``42 s``: for the ETA and the sweep's total."""
    if not math.isfinite(seconds):
        return "?"
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds} s"
