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
from typing import TYPE_CHECKING, Any

from lightning_app.errors import UserError

if TYPE_CHECKING:
    from lightning_app.sweeps.ray_task import RayLauncher

INSTALL = 'pip install -e ".[ray]"'
LOOPBACK = "127.0.0.1"
CLUSTER_VAR = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray's switch: 0 keeps a node's services on 127.0.0.1 (what a private instance wants)."""
CONNECT_TIMEOUT_S = 30.0
PROBE_TIMEOUT_S = 60.0


def import_ray() -> ModuleType:
    """Ray, or the one-line install instruction."""
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
    if address is None:
        os.environ.setdefault(CLUSTER_VAR, "0")  # read when ray is first imported
    ray = import_ray()
    if address is None:
        # In this (the main) thread: Ray's node processes die with the thread that started them.
        _init(
            ray, address="local", num_cpus=cpus, include_dashboard=False, _node_ip_address=LOOPBACK
        )
        return Cluster(True, LOOPBACK, alive_nodes(ray))
    resolved = _resolve(address)
    _probe(address, resolved)
    _init(ray, address=resolved, name=f"--address {address}")
    return Cluster(False, resolved, alive_nodes(ray))


def _resolve(address: str) -> str:
    """HOST:PORT of ``address`` (``auto``: the cluster this machine runs, as Ray finds it)."""
    if address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address_or_die

            return str(canonicalize_bootstrap_address_or_die("auto"))
        except (ImportError, ConnectionError, ValueError) as err:
            raise UserError(f"--address auto: no Ray cluster on this machine ({err})") from None
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or "://" in address:
        raise UserError(f"--address {address}: give HOST:PORT (ray start --head prints it) or auto")
    return address


def _probe(address: str, resolved: str) -> None:
    """Fail fast when nothing answers at ``resolved``, or it does not answer as Ray's GCS."""
    host, _, port = resolved.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5.0):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise UserError(
            f"--address {address}: no Ray cluster can be reached there ({reason}); start one "
            "with `ray start --head` or leave out --address for a private instance"
        ) from None
    code = (
        "import sys; from ray._raylet import GcsClient; "
        "GcsClient(address=sys.argv[1]).get_all_node_info(timeout=5)"
    )
    try:
        subprocess.run(
            [sys.executable, "-c", code, resolved],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=CONNECT_TIMEOUT_S,
            check=True,
        )
    except (subprocess.TimeoutExpired, subprocess.CalledProcessError):
        raise UserError(
            f"--address {address}: {resolved} accepts connections but no Ray cluster answered "
            f"there within {CONNECT_TIMEOUT_S:g} s; check the address (ray status on the head "
            "node prints it)"
        ) from None


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
@dataclass(frozen=True)
class Request:
    """Ray resources of one run."""

    cpus: float
    gpus: float = 0.0

    def options(self) -> dict[str, float]:
        return {"num_cpus": self.cpus, "num_gpus": self.gpus}

    def describe(self) -> str:
        gpu = f", GPU={self.gpus:g}" if self.gpus else ""
        return f"CPU={self.cpus:g}{gpu}"


def run_request(threads: int, gpus_needed: int, runs_per_gpu: int, use_gpus: bool) -> Request:
    """A run's request: its threads per process, and 1/K GPU, N whole GPUs or none.

    ``gpus_needed`` is what ``gpus.run_needs`` found (0: a CPU run, N > 1: DDP on N GPUs, whose
    N processes each get ``threads``). Without GPUs in the cluster (``use_gpus`` false) runs ask
    for none and see none, as the local runner does on a machine without CUDA.
    """
    if not use_gpus or gpus_needed == 0:
        return Request(float(threads))
    if gpus_needed == 1:
        return Request(float(threads), 1.0 / runs_per_gpu)
    return Request(float(threads * gpus_needed), float(gpus_needed))


def check_requests(requests: Mapping[str, Request], cluster: Cluster, where: str) -> None:
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


def capacity(requests: Sequence[Request], cluster: Cluster) -> int:
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
    import_ray()


@dataclass
class RaySweep:
    """What ``sweep --backend ray`` runs with: the cluster, each run's request, runs at once."""

    cluster: Cluster | None
    """None in a dry run: Ray is not contacted."""
    requests: dict[str, Request]
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

    def launcher(self) -> RayLauncher:
        from lightning_app.sweeps.ray_task import RayLauncher

        return RayLauncher(self.requests)
