"""Which queued runs start now, and what each holds while it runs: the runner's schedulers.

The runner keeps the queue and the ``--workers`` cap; a :class:`Scheduler` picks the runs that
start within that room and gives each its :class:`~lightning_app.sweeps.launch.Resources`, which
travel with the run's :class:`~lightning_app.sweeps.launch.RunRequest` to the launcher. Three
implement it: :class:`CpuSlots` (runs on this machine's cores, first come first served),
:class:`GpuSlotScheduler` (each run its GPU slots, ``gpus``) and :class:`RayRequests` (each run
asks Ray for its own CPUs and GPUs; Ray queues what the cluster cannot place yet).
:func:`make_scheduler` chooses one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Protocol

from lightning_app.sweeps.gpus import Allocation, GpuSlots, schedule
from lightning_app.sweeps.launch import Resources
from lightning_app.sweeps.plan import PlannedRun


class Scheduler(Protocol):
    """Places queued runs; the runner tells it when each ends."""

    def take(self, queue: deque[PlannedRun], room: int) -> list[tuple[PlannedRun, Resources]]:
        """The runs to start now (at most ``room``), taken off ``queue``, with their resources."""
        ...

    def release(self, key: str) -> None:
        """Run ``key`` ended (done, failed, killed or stopped): give back what it held."""
        ...


class CpuSlots:
    """Runs on this machine's cores: the first ``room`` queued runs, ``threads`` each."""

    def __init__(self, threads: int) -> None:
        self.threads = threads

    def take(self, queue: deque[PlannedRun], room: int) -> list[tuple[PlannedRun, Resources]]:
        count = min(room, len(queue))
        return [(queue.popleft(), Resources(float(self.threads))) for _ in range(count)]

    def release(self, key: str) -> None:
        """Cores are not counted here: ``--workers`` caps the runs."""


class GpuSlotScheduler:
    """Each run gets GPU slots (``gpus.schedule``: first come, first served with backfill).

    ``needs`` are the GPUs each run needs by key (0: a CPU run); a run not in it needs one.
    """

    def __init__(
        self, devices: Sequence[str], per_gpu: int, needs: Mapping[str, int], threads: int
    ) -> None:
        self.slots = GpuSlots(tuple(devices), per_gpu)
        self.needs = dict(needs)
        self.threads = threads
        self._held: dict[str, Allocation] = {}
        if max(self.needs.values(), default=1) > len(self.slots.devices):
            raise ValueError("a run needs more GPUs than the runner has; it would wait forever")

    def take(self, queue: deque[PlannedRun], room: int) -> list[tuple[PlannedRun, Resources]]:
        if room <= 0 or not queue:
            return []
        needs = [self.needs.get(run.key, 1) for run in queue]
        chosen = dict(schedule(needs, self.slots, room))
        waiting = list(queue)
        queue.clear()
        queue.extend(run for position, run in enumerate(waiting) if position not in chosen)
        starts = []
        for position, allocation in chosen.items():
            run = waiting[position]
            self._held[run.key] = allocation
            devices = tuple(self.slots.devices[i] for i in allocation.gpus)
            resources = Resources(float(self.threads), float(needs[position]), devices)
            starts.append((run, resources))
        return starts

    def release(self, key: str) -> None:
        allocation = self._held.pop(key, None)
        if allocation is not None:
            self.slots.release(allocation)


class RayRequests:
    """Each run asks Ray for its own request (``ray_backend.run_request``), in queue order.

    Ray queues a task the cluster cannot place yet, so the runner only caps the runs submitted.
    """

    def __init__(self, requests: Mapping[str, Resources], default: Resources | None = None):
        self.requests = dict(requests)
        self.default = default or Resources(1.0)

    def take(self, queue: deque[PlannedRun], room: int) -> list[tuple[PlannedRun, Resources]]:
        starts = []
        for _ in range(min(room, len(queue))):
            run = queue.popleft()
            starts.append((run, self.requests.get(run.key, self.default)))
        return starts

    def release(self, key: str) -> None:
        """Ray frees a task's resources when it ends."""


def make_scheduler(
    threads: int,
    *,
    gpus: Sequence[str] = (),
    runs_per_gpu: int = 1,
    needs: Mapping[str, int] | None = None,
    ray_requests: Mapping[str, Resources] | None = None,
) -> Scheduler:
    """The scheduler of a sweep: Ray's requests, GPU slots when GPUs are given, else CPU slots."""
    if ray_requests is not None:
        return RayRequests(ray_requests)
    if gpus:
        return GpuSlotScheduler(gpus, runs_per_gpu, needs or {}, threads)
    return CpuSlots(threads)


__all__ = ["CpuSlots", "GpuSlotScheduler", "RayRequests", "Scheduler", "make_scheduler"]
