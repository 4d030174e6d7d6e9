"""``sweep --backend ray``: each run of a sweep is a Ray task on whichever node Ray picks.

Ray is the scale-out engine for clusters that cannot reach W&B's server (``wandb agent`` needs
it on every machine). Nothing else changes: the runner (``runner``) keeps the sweep folder, the
state file, retries and resuming exactly as with local processes; only the launcher differs
(``ray_task``: a task per run that asks Ray for the run's resources, ``CPU`` = its threads and
``GPU`` = 1/runs-per-gpu or its device count, and starts the same argv on its node, in the
runner's working directory, writing the run's ``run.log``). This module is the command's side:
joining or starting Ray, each run's request, and the checks made before any run starts.

So every node must see the sweep folder at the same path (a shared filesystem) and have the
project installed at the same interpreter path; :func:`check_shared_folder` proves the first on
every node before any run starts, and each task checks it again for its own run. A run whose
node dies is *lost*: the runner records it interrupted and starts it again, as after ``kill
-9``. Without ``--address`` the command starts a private single-machine Ray instance on
127.0.0.1 and stops it when it ends; with one it joins an existing cluster (run the command on
one of its nodes, usually the head).
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from lightning_app.errors import UserError
from lightning_app.sweeps.launch import Resources

INSTALL = 'pip install -e ".[ray]"'
LOOPBACK = "127.0.0.1"
CLUSTER_VAR = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray's switch: 0 keeps a node's services on 127.0.0.1 (what a private instance wants)."""
CONNECT_TIMEOUT_S = 30.0
PROBE_TIMEOUT_S = 60.0


def import_ray(*, private: bool = False) -> ModuleType:
    """Ray, or the one-line install instruction.

    ``private``: a private instance will be started, so Ray must keep its node on 127.0.0.1.
    Ray reads :data:`CLUSTER_VAR` once, when it is first imported, so it is set here, before
    the first import, not when the instance starts.
    """
    if private:
        os.environ.setdefault(CLUSTER_VAR, "0")
    try:
        import ray
    except ImportError:
        raise UserError(f"--backend ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


# -- connecting -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Node:
    """An alive node and what it offers."""

    node_id: str
    ip: str
    resources: Mapping[str, float]


@dataclass
class Cluster:
    """The Ray cluster this sweep runs on."""

    embedded: bool
    address: str
    nodes: list[Node] = field(default_factory=list)

    def describe(self) -> str:
        cpus = sum(n.resources.get("CPU", 0) for n in self.nodes)
        gpus = sum(n.resources.get("GPU", 0) for n in self.nodes)
        where = "a private Ray instance on 127.0.0.1" if self.embedded else f"Ray at {self.address}"
        gpu = f", {gpus:g} GPU" if gpus else ""
        return f"{where} ({len(self.nodes)} node(s), {cpus:g} CPU{gpu})"

    @property
    def has_gpus(self) -> bool:
        return any(n.resources.get("GPU", 0) > 0 for n in self.nodes)


def alive_nodes(ray: ModuleType) -> list[Node]:
    return [
        Node(str(n["NodeID"]), str(n["NodeManagerAddress"]), dict(n.get("Resources", {})))
        for n in ray.nodes()
        if n.get("Alive")
    ]


def connect(address: str | None, cpus: int | None = None) -> Cluster:
    """Start a private Ray instance (``address`` None) or join the cluster at ``address``.

    A private instance binds to 127.0.0.1 (nothing reachable from outside) and uses ``cpus``
    CPUs (default: Ray's count). An address is first probed in a child process, so a wrong one
    fails within :data:`CONNECT_TIMEOUT_S` (``ray.init`` itself retries for minutes).

    Raises:
        UserError: Ray is missing, or ``address`` does not answer as a Ray cluster.
    """
    ray = import_ray(private=address is None)
    if address is None:
        # In this (the main) thread: Ray's node processes die with the thread that started them.
        # No ``_node_ip_address``: with CLUSTER_VAR=0 Ray picks 127.0.0.1 itself (and turns a
        # 127.0.0.1 given there into the LAN address when it is not 0).
        _init(ray, address="local", num_cpus=cpus, include_dashboard=False)
        cluster = Cluster(True, LOOPBACK, alive_nodes(ray))
        _check_loopback(cluster)
        return cluster
    if address != "auto":
        _check_host_port(address)
        _check_listening(address)
    resolved = _probe(address)
    _init(ray, address=resolved, name=f"--address {address}")
    return Cluster(False, resolved, alive_nodes(ray))


def _check_loopback(cluster: Cluster) -> None:
    """Stop a private instance that Ray bound to another address than 127.0.0.1.

    That happens when Ray was imported before :data:`CLUSTER_VAR` was set (or it is set to 1):
    the instance would then be reachable from the network, which its description denies.
    """
    outside = sorted({n.ip for n in cluster.nodes if n.ip != LOOPBACK})
    if outside:
        disconnect()
        raise UserError(
            f"the private Ray instance listens on {', '.join(outside)}, not only {LOOPBACK}: "
            f"unset {CLUSTER_VAR} (or set it to 0), or pass --address to join a cluster"
        )


def _check_host_port(address: str) -> None:
    """Refuse what is not HOST:PORT before anything is contacted."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or "://" in address:
        raise UserError(f"--address {address}: give HOST:PORT (ray start --head prints it) or auto")


def _check_listening(address: str) -> None:
    """Fail within seconds when nothing listens at ``address`` (the common mistake)."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5.0):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise UserError(
            f"--address {address}: no Ray cluster can be reached there ({reason}); start one "
            "with `ray start --head` or leave out --address for a private instance"
        ) from None


PROBE_MARK = "ray-probe:"
_PROBE_CODE = f"""
import sys
import ray
try:
    ray.init(address=sys.argv[1], log_to_driver=False, logging_level="ERROR")
    print({PROBE_MARK!r}, "gcs", ray.get_runtime_context().gcs_address, flush=True)
except Exception as err:
    lines = str(err).strip().splitlines() or [type(err).__name__]
    print({PROBE_MARK!r}, "error", lines[0], flush=True)
    sys.exit(3)
"""
"""Joins in a child with public Ray API only: ``ray.init`` resolves ``auto`` and proves a GCS
answers; the runtime context names the GCS it joined. A child, because ``ray.init`` keeps
retrying a silent address for minutes and cannot be interrupted from this process."""


def _probe(address: str) -> str:
    """The GCS address (HOST:PORT) of the cluster at ``address``, within the timeout or not at all.

    Raises:
        UserError: no cluster answered within :data:`CONNECT_TIMEOUT_S`, or Ray refused to join.
    """
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE_CODE, address],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            timeout=CONNECT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise UserError(_silent(address)) from None
    kind, _, detail = _probe_answer(done.stdout)
    if done.returncode == 0 and kind == "gcs" and detail:
        return detail
    if address == "auto":
        raise UserError(f"--address auto: no Ray cluster on this machine ({detail or 'no answer'})")
    if kind == "error":
        raise UserError(f"--address {address}: cannot start or join Ray: {detail}")
    raise UserError(_silent(address))


def _probe_answer(stdout: str) -> tuple[str, str, str]:
    """(kind, " ", detail) of the probe's last marked line; empty strings when there is none."""
    lines = [ln for ln in stdout.splitlines() if ln.startswith(PROBE_MARK)]
    if not lines:
        return "", "", ""
    return lines[-1][len(PROBE_MARK) :].strip().partition(" ")


def _silent(address: str) -> str:
    """The line for an address where something listens but no Ray answers in time."""
    if address == "auto":
        return (
            f"--address auto: the Ray cluster this machine records did not answer within "
            f"{CONNECT_TIMEOUT_S:g} s; is it still running (ray status)?"
        )
    return (
        f"--address {address}: {address} accepts connections but no Ray cluster answered "
        f"there within {CONNECT_TIMEOUT_S:g} s; check the address (ray status on the head "
        "node prints it)"
    )


def _init(ray: ModuleType, *, name: str = "Ray", **kwargs: Any) -> None:
    """``ray.init`` without Ray's banner and worker output in the sweep's console."""
    try:
        ray.init(log_to_driver=False, logging_level="ERROR", **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as err:
        text = str(err).strip()
        first = text.splitlines()[0] if text else type(err).__name__
        raise UserError(f"{name}: cannot start or join Ray: {first}") from None


def disconnect() -> None:
    """Leave the cluster; a private instance is stopped with it."""
    with contextlib.suppress(ImportError):
        import ray

        ray.shutdown()


# -- what each run asks for -----------------------------------------------------------------------
def run_request(threads: int, gpus_needed: int, runs_per_gpu: int, use_gpus: bool) -> Resources:
    """A run's request: its threads per process, and 1/K GPU, N whole GPUs or none.

    ``gpus_needed`` is what ``gpus.run_needs`` found (0: a CPU run, N > 1: DDP on N GPUs, whose
    N processes each get ``threads``). Without GPUs in the cluster (``use_gpus`` false) runs ask
    for none and see none, as the local runner does on a machine without CUDA.
    """
    if not use_gpus or gpus_needed == 0:
        return Resources(float(threads))
    if gpus_needed == 1:
        return Resources(float(threads), 1.0 / runs_per_gpu)
    return Resources(float(threads * gpus_needed), float(gpus_needed))


def check_requests(requests: Mapping[str, Resources], cluster: Cluster, where: str) -> None:
    """Refuse, before any run starts, a run that no node of the cluster can hold."""
    for key, request in requests.items():
        for name, amount, flag in (
            ("CPU", request.cpus, "--threads"),
            ("GPU", request.gpus, "trainer.devices"),
        ):
            largest = max((n.resources.get(name, 0.0) for n in cluster.nodes), default=0.0)
            if amount > largest:
                raise UserError(
                    f"{where}: run {key} asks Ray for {name}={amount:g} ({flag}) but no node of "
                    f"{cluster.describe()} has more than {largest:g} {name}; use smaller runs "
                    "or add nodes that have it"
                )


def capacity(requests: Sequence[Resources], cluster: Cluster) -> int:
    """How many runs the cluster holds at once (sized by the largest request), at least 1."""
    cpus = max((r.cpus for r in requests), default=1.0)
    gpus = max((r.gpus for r in requests), default=0.0)
    total = 0
    for node in cluster.nodes:
        fits = math.floor(node.resources.get("CPU", 0.0) / cpus + 1e-9) if cpus else 10**6
        if gpus:
            fits = min(fits, math.floor(node.resources.get("GPU", 0.0) / gpus + 1e-9))
        total += fits
    return max(1, total)


# -- the shared filesystem ------------------------------------------------------------------------
def _read_probe(path: str) -> str | None:
    """Runs on a node: the probe file's content (None: not visible there)."""
    try:
        return Path(path).read_text()
    except OSError:
        return None


def check_shared_folder(folder: Path, cluster: Cluster) -> None:
    """Prove that every node sees ``folder`` (or its nearest existing parent) as the runner does.

    The runner writes a probe file there, a zero-CPU task pinned to each node reads it back.

    Raises:
        UserError: a node cannot read it (no shared filesystem at that path) or does not answer.
    """
    ray = import_ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    where = next(p for p in (folder, *folder.parents) if p.is_dir()).resolve()
    token = uuid.uuid4().hex
    probe = where / f".ray-probe-{token}"
    probe.write_text(token)
    try:
        remote = ray.remote(num_cpus=0, max_retries=0)(_read_probe)
        refs = {
            remote.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False)
            ).remote(str(probe)): node
            for node in cluster.nodes
        }
        ready, missing = ray.wait(list(refs), num_returns=len(refs), timeout=PROBE_TIMEOUT_S)
        if missing:
            node = refs[missing[0]]
            raise UserError(
                f"Ray node {node.ip} did not answer within {PROBE_TIMEOUT_S:g} s while checking "
                f"that it sees {where}"
            )
        for ref in ready:
            if ray.get(ref) != token:
                raise UserError(
                    f"Ray node {refs[ref].ip} does not see {where} as this machine does: runs "
                    "write their folders there, so every node needs it on a shared filesystem "
                    "at the same path (NFS, Lustre, ...); pass --dir on one"
                )
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


# -- the sweep command's side ---------------------------------------------------------------------
def check_flags(address: str | None, gpus: str | None, warm: bool, backend: str) -> None:
    """Refuse flags that mean nothing with (or without) ``--backend ray``; check Ray is there."""
    if backend != "ray":
        if address is not None:
            raise UserError(f"--address {address} needs --backend ray")
        return
    if gpus is not None:
        raise UserError(
            f"--gpus {gpus} picks this machine's devices; with --backend ray, Ray gives each run "
            "its GPUs (--runs-per-gpu K shares one GPU between K runs)"
        )
    if warm:
        raise UserError("--warm is for local runs; with --backend ray each run is a new process")
    import_ray(private=address is None)


@dataclass
class RaySweep:
    """What ``sweep --backend ray`` runs with: the cluster, each run's request, runs at once."""

    cluster: Cluster | None
    """None in a dry run: Ray is not contacted."""
    requests: dict[str, Resources]
    workers: int
    threads: int

    @classmethod
    def open(
        cls,
        *,
        address: str | None,
        needs: Mapping[str, int],
        threads: int | None,
        runs_per_gpu: int | None,
        workers: int | None,
        folder: Path,
        where: str,
        dry_run: bool,
    ) -> RaySweep:
        """Join or start Ray and check that it can run every run, before any run starts.

        ``needs`` are the runs' GPU counts (``gpus.run_needs``); ``threads`` default to 1 (a run
        asks for one CPU, Ray's own default), ``workers`` to as many runs as the cluster holds.
        """
        per_run = threads or 1
        if dry_run:
            k, use = runs_per_gpu or 1, runs_per_gpu is not None
            requests = {key: run_request(per_run, n, k, use) for key, n in needs.items()}
            return cls(None, requests, workers or 1, per_run)
        cluster = connect(address)
        try:
            if runs_per_gpu is not None and not cluster.has_gpus:
                raise UserError(
                    f"--runs-per-gpu {runs_per_gpu}: {cluster.describe()} has no GPU resource"
                )
            requests = {
                key: run_request(per_run, need, runs_per_gpu or 1, cluster.has_gpus)
                for key, need in needs.items()
            }
            check_requests(requests, cluster, where)
            check_shared_folder(folder, cluster)
        except BaseException:
            disconnect()
            raise
        held = capacity(list(requests.values()), cluster)
        return cls(cluster, requests, workers or held, per_run)

    def describe(self) -> str:
        if self.cluster is None:
            return "on Ray (not contacted in a dry run)"
        asks = sorted({r.describe() for r in self.requests.values()})
        return f"on {self.cluster.describe()}, each run asking {' or '.join(asks)}"
