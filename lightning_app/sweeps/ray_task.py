"""What runs on Ray's side of ``sweep --backend ray``: the task that starts a run on a node, and
the launcher and process objects through which the runner sees that task.

The task (:func:`run_on_node`) does on its node what ``launch.ProcessLauncher`` does locally:
the run's argv as a new process in its own session, output appended to the run's log, killed
with its parent (``PR_SET_PDEATHSIG``). The runner's side (:class:`RayLauncher`,
:class:`RayProcess`) maps Ray's outcomes to the runner's: an exit status, a cancel (stop), or a
*lost* run whose node or worker died. Importing this module does not import Ray; nodes import it
to run the task, so it stays free of training code.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning_app.sweeps.launch import RunRequest
from lightning_app.sweeps.processes import die_with_parent, stop_processes
from lightning_app.sweeps.ray_backend import disconnect, import_ray

STOP_GRACE_S = 4.0
"""SIGTERM to SIGKILL inside a cancelled task; below the runner's own grace (5 s)."""
PASSED_PREFIXES = ("WANDB_", "LIGHTNING_APP_")
"""Runner variables every run gets wherever it lands (mode, project, credentials, identity)."""
NODE_LINE = "# ray:"


FOLDER_MISSING = "folder-missing"


def run_on_node(
    argv: list[str],
    overrides: dict[str, str],
    removed: list[str],
    cwd: str,
    log: str,
) -> dict[str, Any]:
    """The Ray task: start ``argv`` on this node as the local runner would, wait, return its code.

    The run's environment is the node's, minus ``removed``, plus ``overrides`` (what the runner
    set for the run), with ``CUDA_VISIBLE_DEVICES`` naming exactly the GPUs Ray gave the task.
    A cancel (the runner stopping) arrives as KeyboardInterrupt: the run's process group gets
    SIGTERM, then SIGKILL. If this worker dies, the run dies with it (``PR_SET_PDEATHSIG``).
    """
    import ray

    node = f"{socket.gethostname()} ({ray.get_runtime_context().get_node_id()})"
    if not Path(log).is_file() or not Path(cwd).is_dir():
        return {"error": FOLDER_MISSING, "node": node}
    env = {k: v for k, v in os.environ.items() if k not in removed}
    env.update(overrides)
    gpu_ids = ray.get_runtime_context().get_accelerator_ids().get("GPU", [])
    env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in gpu_ids)
    with open(log, "ab") as out:
        out.write(f"{NODE_LINE} node {node}, GPUs [{','.join(gpu_ids)}]\n".encode())
        out.flush()
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=die_with_parent(os.getpid()),
        )
    try:
        while True:
            try:
                return {"code": proc.wait(timeout=0.5), "node": node}
            except subprocess.TimeoutExpired:
                continue
    except BaseException:  # cancelled: stop the run before the task ends
        stop_processes([proc], STOP_GRACE_S, after_kill_s=STOP_GRACE_S)
        raise


# -- the runner's side ----------------------------------------------------------------------------
class RayProcess:
    """A run submitted as a Ray task, as the runner sees it.

    ``pid`` is None: the process lives on some node, not in this machine's process table (the
    task's log line names the node and pid). ``lost`` says why Ray lost the task with its node
    or worker; the runner then starts the run again instead of counting it failed.
    """

    pid: int | None = None

    def __init__(self, ref: Any, log: Path, key: str) -> None:
        self.ref = ref
        self.log = log
        self.key = key
        self.returncode: int | None = None
        self.lost: str | None = None
        self.node: str | None = None
        self.signalled: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            import ray

            ready, _ = ray.wait([self.ref], timeout=0)
            if ready:
                self._collect()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            import ray

            ready, _ = ray.wait([self.ref], timeout=timeout)
            if not ready:
                raise subprocess.TimeoutExpired(f"ray task of {self.key}", timeout or 0)
            self._collect()
        assert self.returncode is not None
        return self.returncode

    def _collect(self) -> None:
        import ray
        from ray import exceptions as rx

        lost_errors = (
            rx.NodeDiedError,
            rx.WorkerCrashedError,
            rx.LocalRayletDiedError,
            rx.ObjectLostError,
        )
        try:
            result = ray.get(self.ref)
        except rx.TaskCancelledError:
            self.returncode = -(self.signalled or signal.SIGTERM)
            return
        except lost_errors as err:
            if self.signalled is not None:  # a forced cancel kills the worker: that is ours
                self.returncode = -self.signalled
                return
            self.lost = f"{type(err).__name__}: {str(err).strip().splitlines()[0]}"
            self.returncode = -signal.SIGKILL
            self._note(f"{NODE_LINE} lost: {self.lost}")
            return
        except rx.RayError as err:
            self.returncode = 1
            self._note(f"{NODE_LINE} the task failed: {err}")
            return
        self.node = result.get("node")
        if result.get("error") == FOLDER_MISSING:
            self.returncode = 2
            self._note(
                f"error: Ray node {self.node} does not see this run's folder ({self.log.parent}) "
                "or the runner's working directory: every node needs the sweep folder on a "
                "shared filesystem at the same path"
            )
            return
        self.returncode = int(result["code"])

    def _note(self, line: str) -> None:
        with contextlib.suppress(OSError), self.log.open("a") as out:
            out.write(line + "\n")


class RayLauncher:
    """Starts each run as a Ray task asking for the resources of its request (see the module
    docstring); ``scheduling.RayRequests`` gave each run its own."""

    name = "ray"

    def __init__(self, cwd: Path | None = None) -> None:
        ray = import_ray()
        self.cwd = str((cwd or Path.cwd()).resolve())
        self._task = ray.remote(max_retries=0)(run_on_node)

    def begin(self) -> None:
        """Nothing to prepare: the command joined the cluster before any run."""

    def prepare(self) -> None:
        """Always ready."""

    def ready(self) -> bool:
        return True  # Ray queues a task the cluster cannot place yet; submitting never blocks

    def start(self, request: RunRequest) -> RayProcess:
        overrides, removed = environment_delta(request.env, os.environ)
        ref = self._task.options(**request.resources.ray_options()).remote(
            list(request.argv), overrides, removed, self.cwd, str(request.log.resolve())
        )
        return RayProcess(ref, request.log, request.key)

    def signal(self, proc: Any, signum: int) -> None:
        """SIGTERM: cancel (the task stops its run's group); SIGKILL: kill the task's worker."""
        import ray

        proc.signalled = signum
        with contextlib.suppress(Exception):  # it may have ended already
            ray.cancel(proc.ref, force=signum == signal.SIGKILL)

    def close(self) -> None:
        disconnect()


def environment_delta(
    env: Mapping[str, str], base: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """What the runner changed in ``base`` to make ``env``, plus its W&B and app variables.

    A node applies this to its own environment: its PATH, CUDA libraries and home stay its own.
    """
    overrides = {k: v for k, v in env.items() if base.get(k) != v or k.startswith(PASSED_PREFIXES)}
    removed = [k for k in base if k not in env]
    return overrides, removed
