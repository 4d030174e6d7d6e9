"""GPU slots: which devices a sweep may use, how many each run needs, and which ones it gets.

Each GPU has ``runs_per_gpu`` (K) slots. A run that trains on one device takes one slot of the
least busy GPU (ties: the lowest number), so runs spread over the GPUs first and then pack K to a
GPU. A run configured for several devices (DDP, ``trainer.devices: 2``) takes that many *whole*
GPUs (all K slots of each) and waits until they are idle; a run on the CPU
(``trainer.accelerator: cpu``) takes no slot at all. A run starts with ``CUDA_VISIBLE_DEVICES``
listing its GPUs as the runner sees them (with ``CUDA_VISIBLE_DEVICES=4,5`` in the runner, GPU 0's
runs get ``4``), or empty for a CPU run, so no run ever touches another's device and Lightning's
``devices: auto`` sees exactly the run's own GPUs.

Scheduling (:func:`schedule`) is first come, first served with backfill: the waiting runs are
taken in order, each starts if its slots are free, and the first one that cannot start holds the
GPUs it will use (the least busy ones) so later runs may not take them; later runs still start on
the other GPUs. A multi-device run therefore waits only until its GPUs drain, never forever.

Devices are counted with ``torch.cuda.device_count()``, which in torch 2.x asks NVML first and does
not initialise CUDA (no context, no fork poisoning); torch is already imported by the sweep
command to parse the runs' configs, so counting costs well under a millisecond more.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lightning_app.errors import UserError
from lightning_app.sweeps.commandline import CommandTemplate, cli_arguments
from lightning_app.sweeps.plan import PlannedRun

VISIBLE = "CUDA_VISIBLE_DEVICES"
DEVICE_KEYS = ("config", "trainer", "trainer.accelerator", "trainer.devices")
"""Parameters that can change how many GPUs a run needs; runs are parsed once per combination."""
CPU_ACCELERATORS = ("cpu", "mps", "tpu", "xla", "hpu")


# -- which devices -------------------------------------------------------------------------------
def cuda_device_count() -> int:
    """CUDA devices this process sees (after ``CUDA_VISIBLE_DEVICES``), without initialising CUDA.

    torch asks NVML (``_device_count_nvml``) and falls back to the driver's count only when NVML
    is missing; neither creates a CUDA context. 0 on a machine without CUDA or a CPU-only torch.
    """
    import torch

    return int(torch.cuda.device_count())


def visible_devices(environ: Mapping[str, str], count: int) -> list[str]:
    """The runner's devices by ordinal, each as the id a run's ``CUDA_VISIBLE_DEVICES`` needs.

    ``count`` is what CUDA sees (:func:`cuda_device_count`, which already applies the runner's
    own ``CUDA_VISIBLE_DEVICES``); with ``CUDA_VISIBLE_DEVICES=4,5`` ordinal 0 is device ``4``.
    """
    value = environ.get(VISIBLE)
    if value is None:
        return [str(i) for i in range(count)]
    return [entry.strip() for entry in value.split(",")][:count]


def environment_devices() -> list[str]:
    """The devices this process may use: ``CUDA_VISIBLE_DEVICES`` applied to CUDA's count."""
    return visible_devices(os.environ, cuda_device_count())


def select_gpus(flag: str | None, visible: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """The devices ``--gpus`` picks: every visible one by default, ``none`` for none.

    ``flag`` lists ordinals as the runner sees its devices (``0,1``, like ``cuda:0``, ``cuda:1``).

    Raises:
        UserError: a malformed list, a device named twice or one that does not exist, or GPUs
            asked for where CUDA sees none.
    """
    if flag is None:
        return list(visible)
    text = flag.strip()
    if text.lower() == "none":
        return []
    try:
        ordinals = [int(part) for part in text.split(",")]
    except ValueError:
        raise UserError(
            f"--gpus {flag}: give device numbers separated by commas (--gpus 0,1,2,3) or none"
        ) from None
    where = f" (CUDA_VISIBLE_DEVICES={environ[VISIBLE]})" if VISIBLE in environ else ""
    if not visible:
        raise UserError(
            f"--gpus {flag}: this machine has no CUDA device that torch can see{where}; "
            "leave out --gpus (and --runs-per-gpu) to run on the CPU"
        )
    for ordinal in ordinals:
        if ordinals.count(ordinal) > 1:
            raise UserError(f"--gpus {flag} names device {ordinal} twice")
        if not 0 <= ordinal < len(visible):
            numbers = "0" if len(visible) == 1 else f"0-{len(visible) - 1}"
            raise UserError(
                f"--gpus {flag}: there is no device {ordinal}; {len(visible)} CUDA device(s) "
                f"are visible, numbered {numbers}{where}"
            )
    return [visible[ordinal] for ordinal in ordinals]


def concurrent_runs(
    workers: int | None, gpus: int, runs_per_gpu: int, needs: Mapping[str, int]
) -> int:
    """The most runs live at once: ``--workers`` caps it; GPU runs never outnumber the slots.

    Without GPUs it is ``--workers`` (default 1), as before GPU slots existed. With GPUs the
    default is GPUs x K; CPU runs hold no slot, so only ``--workers`` limits them.
    """
    if gpus == 0:
        return workers if workers is not None else 1
    slots = gpus * runs_per_gpu
    cap = workers if workers is not None else slots
    if any(need == 0 for need in needs.values()):
        return cap
    return min(cap, slots)


# -- how many each run needs ---------------------------------------------------------------------
def gpus_needed(trainer: Any, where: str) -> int:
    """GPUs a run needs from its parsed ``trainer`` config: 0 on the CPU, else its device count.

    ``trainer`` is a jsonargparse Namespace or a dict. ``devices: auto`` and ``-1`` (Lightning:
    every visible device) mean one GPU here: the run sees only its own slot's device. A list of
    device numbers must be ``[0, ..., n-1]``: the runner chooses which GPUs a run gets, so a run
    cannot name them.
    """
    accelerator = trainer.get("accelerator", "auto")
    if not isinstance(accelerator, str):  # an Accelerator instance or {class_path: ...}
        accelerator = str(_get(accelerator, "class_path") or type(accelerator).__name__)
    name = accelerator.lower().rsplit(".", 1)[-1].removesuffix("accelerator")
    if name in CPU_ACCELERATORS:
        return 0
    devices = trainer.get("devices", "auto")
    if isinstance(devices, str):
        text = devices.strip()
        if text in ("auto", "-1"):
            return 1
        try:
            devices = int(text) if "," not in text else [int(p) for p in text.split(",") if p]
        except ValueError:
            raise UserError(f"{where}: trainer.devices={devices!r} is not a device count") from None
    if isinstance(devices, int):
        if devices == -1:
            return 1
        if devices < 1:
            raise UserError(f"{where}: trainer.devices={devices} trains on no GPU")
        return devices
    devices = list(devices)
    if not devices or devices != list(range(len(devices))):
        raise UserError(
            f"{where}: trainer.devices={devices} picks device numbers, but with GPU slots the "
            f"runner picks each run's GPUs; give a count (trainer.devices={len(devices)}) or run "
            "with --gpus none"
        )
    return len(devices)


def run_needs(
    template: CommandTemplate,
    runs: Sequence[PlannedRun],
    runner_args: Sequence[str],
    where: str,
) -> dict[str, int]:
    """GPUs each run needs, from its config as the training CLI parses it.

    Only the parameters in :data:`DEVICE_KEYS` can change the answer, so each distinct
    combination of their values is parsed once (a sweep that varies none costs one parse).
    """
    from lightning_app.sweeps.validate import ParseError, parse

    needs: dict[str, int] = {}
    known: dict[str, int] = {}
    for run in runs:
        params = {name: value for name, value in run.params.items() if name in DEVICE_KEYS}
        signature = json.dumps(params, sort_keys=True, default=str)
        if signature not in known:
            argv = cli_arguments(template, params, runner_args)
            try:
                config = parse(argv)
            except ParseError as err:
                raise UserError(f"{where}: run {run.key} does not parse: {err}") from None
            trainer = config[argv[0]]["trainer"]
            known[signature] = gpus_needed(trainer, f"{where}: run {run.key}")
        needs[run.key] = known[signature]
    return needs


def check_needs(needs: Mapping[str, int], gpus: Sequence[str], where: str) -> None:
    """Refuse, before anything runs, a run that needs more GPUs than the sweep has."""
    for key, need in needs.items():
        if need > len(gpus):
            raise UserError(
                f"{where}: run {key} trains on {need} devices (trainer.devices) but --gpus gives "
                f"{len(gpus)} ({','.join(gpus)}); give it more GPUs or fewer devices"
            )


# -- slots ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Allocation:
    """The GPUs one run holds: their positions in the sweep's GPU list, and slots on each."""

    gpus: tuple[int, ...]
    slots_each: int

    def visible(self, devices: Sequence[str]) -> str:
        """The run's ``CUDA_VISIBLE_DEVICES`` (empty for a CPU run: it sees no GPU)."""
        return ",".join(devices[i] for i in self.gpus)


CPU_RUN = Allocation((), 0)


@dataclass
class GpuSlots:
    """How many of each GPU's K slots are taken."""

    devices: tuple[str, ...]
    per_gpu: int
    used: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.per_gpu < 1:
            raise ValueError(f"runs per GPU must be at least 1, got {self.per_gpu}")
        self.used = self.used or [0] * len(self.devices)

    def find(self, need: int, avoid: frozenset[int] = frozenset()) -> Allocation | None:
        """Where a run needing ``need`` GPUs could start now (None: not yet)."""
        if need == 0:
            return CPU_RUN
        free = [i for i in range(len(self.devices)) if i not in avoid]
        if need == 1:
            open_ = [i for i in free if self.used[i] < self.per_gpu]
            if not open_:
                return None
            return Allocation((min(open_, key=lambda i: (self.used[i], i)),), 1)
        idle = [i for i in free if self.used[i] == 0]
        return Allocation(tuple(idle[:need]), self.per_gpu) if len(idle) >= need else None

    def least_busy(self, need: int) -> frozenset[int]:
        """The ``need`` GPUs that will be free soonest, as far as slot counts tell."""
        order = sorted(range(len(self.devices)), key=lambda i: (self.used[i], i))
        return frozenset(order[:need])

    def take(self, allocation: Allocation) -> None:
        for i in allocation.gpus:
            if self.used[i] + allocation.slots_each > self.per_gpu:
                raise ValueError(f"GPU {self.devices[i]} has no {allocation.slots_each} free slots")
            self.used[i] += allocation.slots_each

    def release(self, allocation: Allocation) -> None:
        for i in allocation.gpus:
            self.used[i] -= allocation.slots_each
            if self.used[i] < 0:
                raise ValueError(f"GPU {self.devices[i]} released more slots than it had")


def schedule(needs: Sequence[int], slots: GpuSlots, room: int) -> list[tuple[int, Allocation]]:
    """Which waiting runs start now, in order, and where; their slots are taken in ``slots``.

    ``needs`` are the waiting runs' GPU counts in queue order; ``room`` how many more runs may
    be live (``--workers``). The first run that cannot start holds the GPUs it waits for (see the
    module docstring); later runs start elsewhere if they fit.
    """
    starts: list[tuple[int, Allocation]] = []
    held: frozenset[int] = frozenset()
    waiting = False
    for position, need in enumerate(needs):
        if len(starts) >= room:
            break
        allocation = slots.find(need, held)
        if allocation is not None:
            slots.take(allocation)
            starts.append((position, allocation))
        elif not waiting:
            waiting, held = True, slots.least_busy(need)
    return starts


def dry_run_allocations(
    needs: Sequence[int], devices: Sequence[str], per_gpu: int, max_running: int
) -> list[Allocation]:
    """Each run's GPUs if every run took the same time (what ``--dry-run`` shows)."""
    slots = GpuSlots(tuple(devices), per_gpu)
    waiting = list(range(len(needs)))
    live: deque[Allocation] = deque()
    placed: dict[int, Allocation] = {}
    while waiting:
        starts = schedule([needs[i] for i in waiting], slots, max_running - len(live))
        for position, allocation in starts:
            placed[waiting[position]] = allocation
            live.append(allocation)
        started = {position for position, _ in starts}
        waiting = [run for position, run in enumerate(waiting) if position not in started]
        if waiting and not starts:
            if not live:
                raise ValueError("a run needs more GPUs than there are")
            slots.release(live.popleft())  # the oldest run ends first
    return [placed[i] for i in range(len(needs))]


def describe_devices(devices: Sequence[str]) -> str:
    """``GPU 4`` / ``GPUs 4,5``."""
    return f"GPU{'s' if len(devices) > 1 else ''} {','.join(devices)}"


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


__all__ = [
    "CPU_RUN",
    "VISIBLE",
    "Allocation",
    "GpuSlots",
    "check_needs",
    "concurrent_runs",
    "cuda_device_count",
    "describe_devices",
    "dry_run_allocations",
    "environment_devices",
    "gpus_needed",
    "run_needs",
    "schedule",
    "select_gpus",
    "visible_devices",
]
