"""Warm run start: fork each run from a parent that has already imported the heavy modules.

Importing torch, Lightning (with the torchmetrics and torchvision it pulls in) and wandb costs
about 10 s on a small CPU, more than a tiny run's training. :class:`WarmLauncher` starts one
*preloaded parent* per sweep (``python -m lightning_app.sweeps.warm``, the runner's environment
and thread counts) that imports them once and then only forks: each run is a fresh child that
becomes exactly what ``python -m lightning_app <args>`` would be (``runpy`` runs the package's
``__main__`` with the run's argv, so Lightning's DDP relaunch sees the same ``__main__``), after
taking the run's own environment, working directory, log file, session (process group) and
death signal. One process per run still holds: a crash or an OOM kill ends only that child, the
runner stops and kills it through its process group, and a dead runner takes the parent and so
every child with it (``PR_SET_PDEATHSIG`` at both steps).

What makes the fork safe: the parent never touches CUDA (checked: ``torch.cuda.is_initialized()``
is false after preloading, else runs start cold), runs no torch operation (so no OpenMP pool
exists to be copied half-alive) and starts no Python thread; the few idle native threads that
torch and jemalloc create at import are not copied, the same situation as a DataLoader worker. A
run's numbers are those of a cold start: it is seeded by its config, Python's ``random``
reseeds itself after fork, numpy's global generator is reseeded from the OS as at a cold start,
and torch's generator is still at its import-time default because the parent draws nothing.

Only argv of the form ``<this python> -m lightning_app ...`` is forked; anything else starts
cold. If the parent cannot be started, or dies, the remaining runs start cold and the sweep says
so once. ``--cold`` (or ``LIGHTNING_APP_START=cold``) switches warm start off.
"""

from __future__ import annotations

import json
import os
import runpy
import select
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from lightning_app.sweeps.launch import LaunchError, ProcessLauncher, RunProcess, RunRequest
from lightning_app.sweeps.processes import die_with_parent, send_to_group, stop_processes

PACKAGE = "lightning_app"
PRELOAD = ("torch", "lightning.pytorch", "lightning_app.cli", "wandb", "wandb.sdk.launch")
"""Modules the parent imports once: every run of the training CLI imports them. ``wandb.init``
imports ``wandb.sdk.launch`` (and through it the public API's pydantic models) in every run to
look for launch job inputs: 3-7 s here, more than the import of wandb itself."""
READY_TIMEOUT_S = 300.0
REPLY_TIMEOUT_S = 30.0
CLOSE_GRACE_S = 10.0
"""How long the parent may take to end after EOF on its input before it is killed."""


class WarmStartError(LaunchError):
    """The preloaded parent could not be started or stopped answering."""


# -- the runner's side ------------------------------------------------------------------------
class WarmProcess:
    """A run forked by the preloaded parent; its exit status arrives through the parent."""

    def __init__(self, launcher: WarmLauncher, pid: int) -> None:
        self._launcher = launcher
        self._pid = pid

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def returncode(self) -> int | None:
        return self._launcher.exit_codes.get(self._pid)

    def poll(self) -> int | None:
        self._launcher.pump(0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(f"run {self._pid}", timeout or 0.0)
            self._launcher.pump(0.05 if left is None else min(0.05, left))
        return code


class WarmLauncher:
    """Starts runs as forks of one preloaded parent; falls back to cold starts when it cannot.

    ``env`` is the parent's environment: the runs' common one, so the thread counts torch reads
    at import are the runs' own. The parent's own output (import errors) goes to an unnamed
    temporary file, copied to a named one only when something went wrong (named in the error).
    ``note`` is told, once, when runs start cold after all. :meth:`begin` starts the parent early
    (the sweep command does so before it checks the runs, so both imports overlap).
    """

    name = "warm"

    def __init__(
        self,
        env: Mapping[str, str],
        note: Callable[[str], None] | None = None,
        python: str = sys.executable,
    ) -> None:
        self.env = dict(env)
        self.log: Path | None = None
        """Where the parent's output was kept, once something went wrong (see :meth:`keep_log`)."""
        self._output: IO[bytes] | None = None
        self.note = note or (lambda message: None)
        self.python = python
        self.exit_codes: dict[int, int] = {}
        self._cold = ProcessLauncher()
        self._parent: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._messages: list[dict[str, Any]] = []
        self._broken: str | None = None
        self._live: set[int] = set()
        self._next_id = 0
        self._ready = False
        self._noted = False
        self._spawned = 0.0

    # -- public -------------------------------------------------------------------------------
    def begin(self) -> None:
        """Start the preloaded parent without waiting for it (it imports in the background)."""
        if self._parent is None and self._broken is None:
            self._spawn()

    def prepare(self) -> None:
        """Start the preloaded parent if needed and wait until it is ready.

        Raises:
            WarmStartError: it could not start, failed to import, or did not answer in time.
        """
        if self._broken is not None:
            raise WarmStartError(self._broken)
        self.begin()
        while not self._await_ready(0.5):
            pass

    def ready(self) -> bool:
        """True once a run can start without waiting: the parent is ready, or runs start cold.

        The runner asks before it starts runs, so its loop (Ctrl-C, progress) goes on while the
        parent imports.
        """
        if self._ready or self._broken is not None:
            return True
        try:
            self.begin()
            return self._await_ready(0.0)
        except WarmStartError as err:
            self._give_up(str(err))
            return True

    def start(self, request: RunRequest) -> RunProcess:
        args = self.forkable(request.argv)
        if args is None or self._broken is not None:
            return self._cold.start(request)
        try:
            self.prepare()
            return self._fork(args, request.env, request.log)
        except WarmStartError as err:
            self._give_up(str(err))
            return self._cold.start(request)

    def signal(self, proc: RunProcess, signum: int) -> None:
        send_to_group(proc, signum)  # a fork is the leader of its own session, like a cold run

    def close(self) -> None:
        """Let the parent go (EOF on its input) and reap it."""
        parent, self._parent = self._parent, None
        if parent is None:
            return
        was_ready, self._ready = self._ready, False  # a later start spawns and waits anew
        unneeded = not was_ready and self._broken is None  # still importing: stop it now
        stop_processes([parent], 0.0 if unneeded else CLOSE_GRACE_S, _end_parent)
        if parent.stdout is not None:
            parent.stdout.close()
        if not unneeded and parent.returncode != 0:
            self.keep_log()
        if self._output is not None:
            self._output.close()  # an unnamed file: nothing is left behind
            self._output = None

    def forkable(self, argv: Sequence[str]) -> list[str] | None:
        """The CLI arguments if ``argv`` is ``<this python> -m lightning_app ...``, else None."""
        if len(argv) >= 3 and argv[0] == self.python and list(argv[1:3]) == ["-m", PACKAGE]:
            return list(argv[3:])
        return None

    # -- the parent ---------------------------------------------------------------------------
    def _spawn(self) -> None:
        if not hasattr(os, "fork"):  # pragma: no cover - Windows
            raise WarmStartError("this platform cannot fork")
        self._spawned = time.monotonic()
        # Closed in close(): it must outlive this call, as the parent's stderr.
        self._output = tempfile.TemporaryFile(prefix="lightning_app-warm-")  # noqa: SIM115
        self._parent = subprocess.Popen(
            [self.python, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._output,
            env=self.env,
            start_new_session=True,
            preexec_fn=die_with_parent(os.getpid()),
        )
        assert self._parent.stdout is not None
        os.set_blocking(self._parent.stdout.fileno(), False)

    def _fork(self, args: list[str], env: Mapping[str, str], log: Path) -> WarmProcess:
        assert self._parent is not None and self._parent.stdin is not None
        self._next_id += 1
        request = {
            "id": self._next_id,
            "args": args,
            "env": dict(env),
            "cwd": os.getcwd(),
            "log": str(log.resolve()),
        }
        try:
            self._parent.stdin.write(json.dumps(request).encode() + b"\n")
            self._parent.stdin.flush()
        except OSError as err:
            raise WarmStartError(f"the preloaded parent stopped reading: {err}") from err
        reply = self._reply(lambda m: m.get("id") == request["id"], REPLY_TIMEOUT_S)
        if "error" in reply:
            raise WarmStartError(str(reply["error"]))
        pid = int(reply["pid"])
        self._live.add(pid)
        return WarmProcess(self, pid)

    def _await_ready(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for the parent's first word: True when it is ready.

        Raises:
            WarmStartError: it failed, ended, or was not ready ``READY_TIMEOUT_S`` after its
                start; runs then start cold.
        """
        if self._ready:
            return True
        try:
            first = self._take(lambda m: "ready" in m or "error" in m)
            if first is None and not self.pump(timeout):
                raise WarmStartError(f"the preloaded parent ended{self.keep_log()}")
            first = first or self._take(lambda m: "ready" in m or "error" in m)
            if first is None:
                if time.monotonic() - self._spawned > READY_TIMEOUT_S:
                    raise WarmStartError(
                        f"the preloaded parent was not ready in {READY_TIMEOUT_S:.0f} s"
                    )
                return False
            if "error" in first:
                raise WarmStartError(f"{first['error']}{self.keep_log()}")
        except WarmStartError as err:
            self._broken = self._broken or str(err)
            raise
        self._ready = True
        return True

    def _take(self, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        for position, message in enumerate(self._messages):
            if wanted(message):
                return self._messages.pop(position)
        return None

    def _reply(self, wanted: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (message := self._take(wanted)) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WarmStartError(f"the preloaded parent did not answer in {timeout:.0f} s")
            if not self.pump(min(left, 0.5)):
                raise WarmStartError(f"the preloaded parent ended{self.keep_log()}")
        return message

    def pump(self, timeout: float) -> bool:
        """Read the parent's messages (waiting up to ``timeout``); False once it has ended."""
        parent = self._parent
        if parent is None or parent.stdout is None:
            return False
        readable, _, _ = select.select([parent.stdout], [], [], timeout)
        if not readable:
            return True
        chunk = parent.stdout.read()
        if chunk is None:  # nothing after all (non-blocking)
            return True
        if chunk == b"":
            self._parent_ended()
            return False
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            message = json.loads(line)
            if "exited" in message:
                self.exit_codes[int(message["exited"])] = int(message["code"])
                self._live.discard(int(message["exited"]))
            else:
                self._messages.append(message)
        return True

    def _parent_ended(self) -> None:
        """The parent died: its runs died with it (death signal); report them killed."""
        for pid in self._live:
            self.exit_codes.setdefault(pid, -signal.SIGKILL)
        self._live.clear()
        if self._parent is not None:  # close(), through _give_up, reaps it and its files
            code = self._parent.wait()
            self._give_up(f"the preloaded parent exited with status {code}{self.keep_log()}")

    def keep_log(self) -> str:
        """Copy the parent's output (kept in an unnamed file) to a named one: ``"; see PATH"``."""
        if self.log is None and self._output is not None:
            self._output.seek(0)
            text = self._output.read()
            if text:
                fd, name = tempfile.mkstemp(prefix="lightning_app-warm-", suffix=".log")
                with os.fdopen(fd, "wb") as kept:
                    kept.write(text)
                self.log = Path(name)
        return f"; see {self.log}" if self.log is not None else ""

    def _give_up(self, reason: str) -> None:
        self._broken = self._broken or reason
        if not self._noted:
            self._noted = True
            self.note(f"warm start off: {reason}; runs start cold")
        self.close()


def _end_parent(parent: subprocess.Popen[bytes], signum: int) -> None:
    """How the parent is asked to end: EOF on its input instead of SIGTERM; SIGKILL as is."""
    if signum != signal.SIGTERM:
        parent.kill()
    elif parent.stdin is not None and not parent.stdin.closed:
        parent.stdin.close()


# -- the preloaded parent ---------------------------------------------------------------------
def _send(out: IO[bytes], message: dict[str, Any]) -> None:
    out.write(json.dumps(message).encode() + b"\n")
    out.flush()


def preload() -> str | None:
    """Import what every run imports; the reason it is unsafe to fork afterwards, or None."""
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    import torch

    if torch.cuda.is_initialized():
        return "CUDA was initialised while importing; a fork would share its context"
    import threading

    if threading.active_count() > 1:
        return f"{threading.active_count() - 1} Python thread(s) started while importing"
    return None


def serve(stdin: int, out: IO[bytes]) -> dict[str, Any] | None:
    """Fork a child per request line; return the request in the child, None at end of input."""
    buffer = b""
    while True:
        readable, _, _ = select.select([stdin], [], [], 0.05)
        _report_exits(out)
        if not readable:
            continue
        chunk = os.read(stdin, 1 << 16)
        if not chunk:
            return None
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            request = json.loads(line)
            for stream in (out, sys.stdout, sys.stderr):
                stream.flush()  # nothing buffered may be written twice
            settled, told = os.pipe()
            try:
                pid = os.fork()
            except OSError as err:
                os.close(settled)
                os.close(told)
                _send(out, {"id": request["id"], "error": f"fork failed: {err}"})
                continue
            if pid == 0:
                os.close(settled)
                return {**request, "settled": told}
            os.close(told)
            os.read(settled, 1)  # the child has its own session: the runner may signal its group
            os.close(settled)
            _send(out, {"id": request["id"], "pid": pid})


def _report_exits(out: IO[bytes]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(out, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def become_run(request: Mapping[str, Any], parent: int) -> None:
    """In the fresh child: take the run's session, files, environment and argv, then run it."""
    os.setsid()
    set_death_signal = die_with_parent(parent)
    if set_death_signal is not None:
        set_death_signal()
    os.close(request["settled"])  # tells the parent it may report this child's pid
    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    import numpy as np
    import torch

    np.random.seed()  # a cold start seeds numpy's global generator from the OS
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads and threads.isdigit():
        torch.set_num_threads(int(threads))
    sys.argv = [sys.argv[0], *request["args"]]
    runpy.run_module(PACKAGE, run_name="__main__", alter_sys=True)


def main() -> int:
    """``python -m lightning_app.sweeps.warm``: preload, then fork runs for the runner.

    Messages go to the runner on a private copy of stdout; stdout itself then points at the
    parent's log, so a library that prints while importing cannot garble them.
    """
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        problem = preload()
    except Exception as err:  # an import error: report it, the runner starts runs cold
        traceback.print_exc()  # into the parent's log, named in the runner's message
        problem = f"preloading failed: {type(err).__name__}: {err}"
    if problem is not None:
        _send(out, {"error": problem})
        return 1
    _send(out, {"ready": True})
    parent = os.getpid()
    request = serve(sys.stdin.fileno(), out)
    if request is None:
        return 0
    out.close()  # the child must not hold the runner's pipe open: its EOF means the parent died
    become_run(request, parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
