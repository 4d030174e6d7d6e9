"""Run a sweep's runs on this machine, N at a time, each the real command in its own process.

Every run is ``python -m lightning_app fit ...`` started from an argument list (never a shell) in
its own session, with its own folder and log; the CPU threads are split between the workers
(``OMP_NUM_THREADS`` and friends, which torch reads at start-up) so N runs never oversubscribe the
cores. A scheduler (``scheduling``) picks the runs that start and what each holds: with GPU slots
each run also gets ``CUDA_VISIBLE_DEVICES`` naming only its own GPUs, which it holds until it ends
however it ends (see ``gpus``). A launcher (``launch``) starts each run's
:class:`~lightning_app.sweeps.launch.RunRequest`: cold from its argv, forked from a preloaded
parent (``warm``), or as a Ray task (``ray_task``). The runner is a single-threaded poll loop,
which keeps ``preexec_fn`` safe: on Linux each run asks the kernel to SIGKILL it when the runner
dies (``PR_SET_PDEATHSIG``), so killing the runner, even with SIGKILL, leaves no orphan training
on; a restarted runner also kills any process still tagged with an interrupted attempt, or its
process group, before it starts that run again (``processes``).

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
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType

from lightning_app.sweeps.gpus import VISIBLE, describe_devices
from lightning_app.sweeps.launch import (
    Launcher,
    ProcessLauncher,
    Resources,
    RunProcess,
    RunRequest,
    lost_reason,
)
from lightning_app.sweeps.layout import SweepFolder
from lightning_app.sweeps.plan import PlannedRun
from lightning_app.sweeps.processes import (
    ATTEMPT_TAG,
    kill_attempt_processes,
    process_start_time,
    stop_processes,
)
from lightning_app.sweeps.progress import SweepProgress
from lightning_app.sweeps.scheduling import CpuSlots, Scheduler
from lightning_app.sweeps.state import Attempt, RunRecord, StateStore, write_json_durable

THREAD_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
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
    """How the runner runs: workers, threads per run, retries, W&B mode (GPUs: its scheduler)."""

    workers: int = 1
    """Most runs live at once (with GPUs: the cap that ``gpus.concurrent_runs`` worked out)."""
    threads: int | None = None
    retry: int = 0
    wandb_mode: str | None = None
    poll_s: float = 0.2
    kill_grace_s: float = 5.0


@dataclass
class _Live:
    run: PlannedRun
    proc: RunProcess
    attempt: Attempt


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
        scheduler: Scheduler | None = None,
        launcher: Launcher | None = None,
    ) -> None:
        """``scheduler`` picks the runs that start and their resources (default: CPU slots).

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
        self.scheduler: Scheduler = scheduler or CpuSlots(self.threads)

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
                room = self.options.workers - len(self._live)
                ready = room > 0 and bool(queue) and self.launcher.ready()
                for run, resources in self.scheduler.take(queue, room) if ready else []:
                    self._start(run, resources)
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

    def _start(self, run: PlannedRun, resources: Resources) -> None:
        record = self.store.get(run.key)
        number = len(record.attempts) + 1
        if record.attempts:
            previous = record.attempts[-1]
            previous.moved_to = (
                self.folder.move_aside(run.key, previous.number, previous.outcome or "interrupted")
                or previous.moved_to  # moved already (by ``--repair``)
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
        if resources.devices is not None:
            visible = ",".join(resources.devices)
            env[VISIBLE] = visible
            prefix = f"{VISIBLE}={shlex.quote(visible)} "
            where = f" on {describe_devices(resources.devices)}" if visible else " on the CPU"
        log = self.folder.log_path(run.key)
        with log.open("ab") as out:
            out.write(f"$ {prefix}{shlex.join(argv)}\n".encode())  # as a POSIX shell reads it
        request = RunRequest(run.key, number, tuple(argv), env, log, resources)
        proc = self.launcher.start(request)
        attempt.pid = proc.pid  # None: not a process on this machine
        attempt.pid_start = process_start_time(proc.pid) if proc.pid is not None else None
        self.store.save()
        self._live[run.key] = _Live(run, proc, attempt)
        self.progress.event(f"start {run.key} (attempt {number}){where}")

    def _reap(self, queue: deque[PlannedRun], summary: Summary) -> None:
        for key, live in list(self._live.items()):
            code = live.proc.poll()
            if code is None:
                continue
            del self._live[key]
            self.scheduler.release(key)
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
            self._record_exit(key, attempt)
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

    def _record_exit(self, key: str, attempt: Attempt) -> None:
        """The exit status beside the run's files, written before ``state.json`` says so: the
        evidence ``sweep --repair`` keeps a finished run by when the state file is damaged."""
        with contextlib.suppress(OSError):  # the state file stays the record; this is a copy
            write_json_durable(
                self.folder.exit_path(key),
                {"exit_code": attempt.exit_code, "attempt": attempt.number, "ended": attempt.ended},
            )

    def _stop_all(self) -> int:
        """Stop every live run (process group: TERM, then KILL) and record it interrupted."""
        procs = [live.proc for live in self._live.values()]
        stop_processes(procs, self.options.kill_grace_s, self.launcher.signal)
        for live in self._live.values():
            kill_attempt_processes(self._tag(live.run.key, live.attempt.number), None, None)
            live.attempt.ended = time.time()
            live.attempt.exit_code = live.proc.returncode
            live.attempt.outcome = "interrupted"
            self.store.get(live.run.key).status = "pending"
            self.scheduler.release(live.run.key)
        count = len(self._live)
        self._live.clear()
        self.store.save()
        return count

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


__all__ = [
    "ATTEMPT_TAG",
    "RunRecord",
    "RunnerOptions",
    "Summary",
    "SweepRunner",
    "available_cores",
    "run_environment",
    "threads_per_run",
]
