"""Run a sweep's runs on this machine, N at a time, each the real command in its own process.

Every run is ``python -m lightning_app fit ...`` started from an argument list (never a shell) in
its own session, with its own folder and log; the CPU threads are split between the workers
(``OMP_NUM_THREADS`` and friends, which torch reads at start-up) so N runs never oversubscribe the
cores. With GPU slots (``RunnerOptions.gpus``) each run also gets ``CUDA_VISIBLE_DEVICES`` naming
only its own GPUs, which it holds until it ends however it ends (see ``gpus``). A launcher
(``launch``) starts each process: cold from its argv, or forked from a preloaded parent
(``warm``). The runner is a single-threaded poll loop, which keeps ``preexec_fn`` safe: on Linux
each run asks the kernel to SIGKILL it when the runner dies (``PR_SET_PDEATHSIG``), so killing the
runner, even with SIGKILL, leaves no orphan training on; a restarted runner also kills any process
still tagged with an interrupted attempt, or its process group, before it starts that run again.

Interrupted runs start again from scratch rather than from their ``last.ckpt``: a checkpoint
being written when the kill came may be truncated, a resumed run's history is split over two W&B
files that every reader must stitch, and the run's command would differ from the one ``wandb
agent`` runs. A rerun costs at most one run per worker per interruption and gives the same numbers
(runs are seeded and deterministic); the dead attempt is moved aside whole (see ``layout``).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from lightning_app.sweeps.gpus import VISIBLE, Allocation, GpuSlots, describe, schedule
from lightning_app.sweeps.launch import Launcher, ProcessLauncher, RunProcess, lost_reason
from lightning_app.sweeps.layout import SweepFolder
from lightning_app.sweeps.plan import PlannedRun
from lightning_app.sweeps.progress import SweepProgress
from lightning_app.sweeps.state import (
    Attempt,
    RunRecord,
    StateStore,
    is_same_process,
    kill_process_group,
    process_start_time,
)

THREAD_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
ATTEMPT_TAG = "LIGHTNING_APP_SWEEP_ATTEMPT"
"""Environment variable naming a run's attempt; every process of that attempt inherits it."""
# A runner started from inside a run must not pass that run's identity on; and a wandb service
# shared through WANDB_SERVICE (set by any wandb.init in the parent) would tie every run to it.
INHERITED_RUN_VARS = (
    "LIGHTNING_APP_RUN_ID",
    "LIGHTNING_APP_RUN_DIR",
    "WANDB_RUN_ID",
    "WANDB_SERVICE",
)


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a container's cpuset)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover - macOS, Windows


def threads_per_run(workers: int, threads: int | None = None) -> int:
    """Threads each run gets: the cores split evenly between the workers, at least one."""
    return threads if threads is not None else max(1, available_cores() // workers)


def run_environment(
    threads: int, wandb_mode: str | None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment every run starts with (before its attempt tag)."""
    env = dict(os.environ if base is None else base)
    for name in INHERITED_RUN_VARS:
        env.pop(name, None)
    for name in THREAD_VARS:
        env[name] = str(threads)
    if wandb_mode is not None:  # else each run applies the W&B mode rule (wandb_mode.py)
        env["WANDB_MODE"] = wandb_mode
    env["PYTHONUNBUFFERED"] = "1"  # the log shows progress as it happens
    return env


@dataclass
class RunnerOptions:
    """How the runner runs: workers, threads per run, retries, W&B mode, GPU slots."""

    workers: int = 1
    """Most runs live at once (with GPUs: the cap that ``gpus.concurrent_runs`` worked out)."""
    threads: int | None = None
    retry: int = 0
    wandb_mode: str | None = None
    poll_s: float = 0.2
    kill_grace_s: float = 5.0
    gpus: tuple[str, ...] | None = None
    """Device ids for the runs' ``CUDA_VISIBLE_DEVICES``; None: runs see what the runner sees."""
    runs_per_gpu: int = 1


@dataclass
class _Live:
    run: PlannedRun
    proc: RunProcess
    attempt: Attempt
    allocation: Allocation | None = None


@dataclass
class Summary:
    """How the sweep stands when the runner returns."""

    done: int = 0
    failed: list[str] = field(default_factory=list)
    interrupted: int = 0
    ran: int = 0
    """Attempts started by this runner."""
    durations: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    lost: list[str] = field(default_factory=list)
    """Runs whose machine was lost mid-run (a launcher's ``lost``), each started again."""
    stopped: bool = False


class SweepRunner:
    """Runs the pending runs of one sweep folder; see the module docstring for the guarantees."""

    def __init__(
        self,
        folder: SweepFolder,
        runs: Sequence[PlannedRun],
        command: Callable[[PlannedRun], list[str]],
        options: RunnerOptions,
        progress: SweepProgress,
        gpu_needs: Mapping[str, int] | None = None,
        launcher: Launcher | None = None,
    ) -> None:
        """``gpu_needs``: GPUs each run needs by key (0: a CPU run); a run not in it needs one.

        ``launcher`` starts each run's process (default: a cold :class:`ProcessLauncher`); it
        belongs to the caller, who closes it (one launcher may serve several runners in turn).
        """
        self.launcher: Launcher = launcher or ProcessLauncher()
        self.folder = folder
        self.runs = list(runs)
        self.command = command
        self.options = options
        self.progress = progress
        self.store = StateStore(folder.root)
        self.threads = threads_per_run(options.workers, options.threads)
        self.env = run_environment(self.threads, options.wandb_mode)
        self._live: dict[str, _Live] = {}
        self._stop_signal: int | None = None
        self._failures: dict[str, int] = {}
        self.gpu_needs = dict(gpu_needs or {})
        self.slots = (
            GpuSlots(options.gpus, options.runs_per_gpu) if options.gpus is not None else None
        )
        most = max(self.gpu_needs.values(), default=1)
        if self.slots is not None and most > len(self.slots.devices):
            raise ValueError("a run needs more GPUs than the runner has; it would wait forever")

    # -- recovery ---------------------------------------------------------------------------
    def recover(self) -> list[str]:
        """Runs left ``running`` by a runner that died: kill leftovers, mark them interrupted."""
        recovered = []
        for key, record in self.store.runs.items():
            if record.status != "running":
                continue
            attempt = record.attempts[-1]
            kill_attempt_processes(self._tag(key, attempt.number), attempt.pid, attempt.pid_start)
            attempt.outcome = attempt.outcome or "interrupted"
            attempt.ended = attempt.ended or time.time()
            record.status = "pending"
            recovered.append(key)
        if recovered:
            self.store.save()
        return recovered

    # -- main loop --------------------------------------------------------------------------
    def run(self) -> Summary:
        """Run every run not yet done; failed runs of earlier invocations are tried again."""
        summary = Summary()
        start = time.monotonic()
        queue = deque(run for run in self.runs if self.store.status(run.key) != "done")
        summary.done = len(self.runs) - len(queue)
        self.progress.start(total=len(self.runs), done=summary.done)
        with self._signals_stop_the_loop():
            while (queue or self._live) and self._stop_signal is None:
                starts = self._next_starts(queue) if self.launcher.ready() else []
                for run, allocation in starts:
                    self._start(run, allocation)
                    summary.ran += 1
                self._reap(queue, summary)
                self.progress.update(
                    done=summary.done,
                    failed=len(summary.failed),
                    running=len(self._live),
                    queued=len(queue),
                    durations=summary.durations,
                    started=[live.attempt.started for live in self._live.values()],
                    workers=self.options.workers,
                )
                time.sleep(self.options.poll_s)
            if self._stop_signal is not None:
                summary.stopped = True
                summary.interrupted = self._stop_all()
        self.progress.stop()
        summary.elapsed_s = time.monotonic() - start
        return summary

    def _next_starts(self, queue: deque[PlannedRun]) -> list[tuple[PlannedRun, Allocation | None]]:
        """The queued runs to start now (taken off the queue), with their GPUs if any."""
        room = self.options.workers - len(self._live)
        if self.slots is None:
            return [(queue.popleft(), None) for _ in range(min(room, len(queue)))]
        if room <= 0 or not queue:
            return []
        needs = [self.gpu_needs.get(run.key, 1) for run in queue]
        starts = schedule(needs, self.slots, room)
        chosen = {position: allocation for position, allocation in starts}
        waiting = list(queue)
        queue.clear()
        queue.extend(run for position, run in enumerate(waiting) if position not in chosen)
        return [(waiting[position], allocation) for position, allocation in chosen.items()]

    def _start(self, run: PlannedRun, allocation: Allocation | None = None) -> None:
        record = self.store.get(run.key)
        number = len(record.attempts) + 1
        if record.attempts:
            previous = record.attempts[-1]
            previous.moved_to = self.folder.move_aside(
                run.key, previous.number, previous.outcome or "interrupted"
            )
        else:
            self.folder.move_aside(run.key, 0, "unrecorded")  # a folder no attempt owns
        attempt = Attempt(number=number, started=time.time())
        attempt.log = self.folder.rel(self.folder.log_path(run.key))
        record.attempts.append(attempt)
        record.status = "running"
        self.store.save()  # recorded before the process exists: a crash now is an interruption

        self.folder.run_dir(run.key).mkdir(parents=True, exist_ok=True)
        argv = self.command(run)
        env = {**self.env, ATTEMPT_TAG: self._tag(run.key, number)}
        prefix = where = ""
        if allocation is not None and self.options.gpus is not None:
            visible = allocation.visible(self.options.gpus)
            env[VISIBLE] = visible
            prefix = f"{VISIBLE}={shlex.quote(visible)} "
            where = f" on {describe(visible.split(','))}" if visible else " on the CPU"
        log = self.folder.log_path(run.key)
        with log.open("ab") as out:
            out.write(f"$ {prefix}{shlex.join(argv)}\n".encode())  # as a POSIX shell reads it
        proc = self.launcher.start(argv, env, log)
        attempt.pid = proc.pid  # None: not a process on this machine
        attempt.pid_start = process_start_time(proc.pid) if proc.pid is not None else None
        self.store.save()
        self._live[run.key] = _Live(run, proc, attempt, allocation)
        self.progress.event(f"start {run.key} (attempt {number}){where}")

    def _reap(self, queue: deque[PlannedRun], summary: Summary) -> None:
        for key, live in list(self._live.items()):
            code = live.proc.poll()
            if code is None:
                continue
            del self._live[key]
            self._release(live)
            record = self.store.get(key)
            attempt = live.attempt
            attempt.ended = time.time()
            attempt.exit_code = code
            seconds = attempt.ended - attempt.started
            lost = lost_reason(live.proc)
            if lost is not None:  # its machine died: like kill -9, start it again
                attempt.outcome = "interrupted"
                record.status = "pending"
                summary.lost.append(key)
                queue.appendleft(live.run)
                self.progress.event(f"LOST  {key} after {seconds:.1f} s ({lost}); starts again")
                self.store.save()
                continue
            summary.durations.append(seconds)
            if code == 0:
                attempt.outcome = record.status = "done"
                summary.done += 1
                self.progress.event(f"done  {key} in {seconds:.1f} s")
            else:
                attempt.outcome = "failed"
                self._failures[key] = self._failures.get(key, 0) + 1
                log = self.folder.rel(self.folder.log_path(key))
                if self._failures[key] <= self.options.retry:
                    record.status = "pending"
                    queue.append(live.run)  # retried after the runs already queued
                    self.progress.event(
                        f"FAIL  {key} (exit {code}) after {seconds:.1f} s, retry "
                        f"{self._failures[key]}/{self.options.retry}; log kept: "
                        f"{self.folder.root / 'attempts' / key / f'{attempt.number}-failed'}"
                    )
                else:
                    record.status = "failed"
                    summary.failed.append(key)
                    self.progress.event(
                        f"FAIL  {key} (exit {code}) after {seconds:.1f} s; log: "
                        f"{self.folder.root / log}"
                    )
            self.store.save()

    def _stop_all(self) -> int:
        """Stop every live run (process group: TERM, then KILL) and record it interrupted."""
        for live in self._live.values():
            self.launcher.signal(live.proc, signal.SIGTERM)
        deadline = time.monotonic() + self.options.kill_grace_s
        for live in self._live.values():
            try:
                live.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.launcher.signal(live.proc, signal.SIGKILL)
                live.proc.wait()
            kill_attempt_processes(self._tag(live.run.key, live.attempt.number), None, None)
            live.attempt.ended = time.time()
            live.attempt.exit_code = live.proc.returncode
            live.attempt.outcome = "interrupted"
            self.store.get(live.run.key).status = "pending"
            self._release(live)
        count = len(self._live)
        self._live.clear()
        self.store.save()
        return count

    def _release(self, live: _Live) -> None:
        """Give the run's GPU slots back (it ended: finished, failed, killed or stopped)."""
        if live.allocation is not None and self.slots is not None:
            self.slots.release(live.allocation)
            live.allocation = None

    def _tag(self, key: str, number: int) -> str:
        return f"{self.folder.root.resolve()}/{key}#{number}"

    @contextlib.contextmanager
    def _signals_stop_the_loop(self) -> Iterator[None]:
        def stop(signum: int, frame: FrameType | None) -> None:
            self._stop_signal = signum

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def kill_attempt_processes(tag: str, pid: int | None, pid_start: str | None) -> int:
    """Kill what is left of an interrupted attempt: processes carrying its tag, or its group."""
    killed = 0
    for other in tagged_processes(tag):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(other, signal.SIGKILL)
            killed += 1
    if pid is not None and is_same_process(pid, pid_start):  # platforms without /proc
        kill_process_group(pid)
        killed += 1
    return killed


def tagged_processes(tag: str) -> list[int]:
    """Pids whose environment has ``ATTEMPT_TAG=tag`` (Linux ``/proc``; empty elsewhere)."""
    needle = f"{ATTEMPT_TAG}={tag}".encode()
    found: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():  # pragma: no cover
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


__all__ = [
    "RunRecord",
    "RunnerOptions",
    "Summary",
    "SweepRunner",
    "available_cores",
    "run_environment",
    "threads_per_run",
]
