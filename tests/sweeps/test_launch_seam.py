"""The launcher seam on its own: schedulers, requests, process groups, the launcher factory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

from lightning_app.sweeps.launch import ProcessLauncher, Resources, RunRequest
from lightning_app.sweeps.launchers import make_launcher
from lightning_app.sweeps.plan import PlannedRun
from lightning_app.sweeps.processes import (
    ATTEMPT_TAG,
    kill_attempt_processes,
    process_start_time,
    stop_processes,
    tagged_processes,
)
from lightning_app.sweeps.scheduling import CpuSlots, GpuSlotScheduler, RayRequests, make_scheduler
from lightning_app.sweeps.warm import WarmLauncher

STUBBORN = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(300)\n"
)


def queue_of(*keys: str) -> deque[PlannedRun]:
    return deque(PlannedRun(i, key, {}) for i, key in enumerate(keys))


def test_cpu_slots_take_runs_in_order_within_the_room() -> None:
    queue = queue_of("a", "b", "c")
    starts = CpuSlots(threads=3).take(queue, 2)
    assert [(run.key, res) for run, res in starts] == [("a", Resources(3.0)), ("b", Resources(3.0))]
    assert [run.key for run in queue] == ["c"]
    assert CpuSlots(1).take(queue, 0) == [] and len(queue) == 1


def test_gpu_slots_give_devices_and_get_them_back() -> None:
    scheduler = GpuSlotScheduler(("4", "5"), 1, {"ddp": 2, "cpu": 0}, threads=2)
    queue = queue_of("one", "ddp", "cpu")
    starts = {run.key: res for run, res in scheduler.take(queue, 3)}
    # ddp waits for two idle GPUs; the CPU run backfills and sees no GPU
    assert starts == {"one": Resources(2.0, 1.0, ("4",)), "cpu": Resources(2.0, 0.0, ())}
    assert [run.key for run in queue] == ["ddp"]
    scheduler.release("one")
    [(run, resources)] = scheduler.take(queue, 3)
    assert run.key == "ddp" and resources.devices == ("4", "5")


def test_ray_requests_come_from_the_runs_key_not_its_log_folder() -> None:
    big = Resources(4.0, 0.5)
    scheduler = make_scheduler(1, ray_requests={"b": big})
    assert isinstance(scheduler, RayRequests)
    starts = scheduler.take(queue_of("a", "b"), 5)
    assert [(run.key, res) for run, res in starts] == [("a", Resources(1.0)), ("b", big)]
    assert big.ray_options() == {"num_cpus": 4.0, "num_gpus": 0.5}
    assert big.describe() == "CPU=4, GPU=0.5"


def test_the_factory_builds_each_launcher() -> None:
    assert isinstance(make_launcher("cold", {}), ProcessLauncher)
    warm = make_launcher("warm", {"A": "1"})
    assert isinstance(warm, WarmLauncher) and warm.env == {"A": "1"}
    warm.close()  # never begun: nothing to stop


def test_a_process_group_that_ignores_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    tag = f"{tmp_path}/run#1"
    request = RunRequest(
        "run", 1, (sys.executable, "-c", STUBBORN), {**os.environ, ATTEMPT_TAG: tag}, log,
        Resources(1.0),
    )  # fmt: skip
    launcher = ProcessLauncher()
    proc = launcher.start(request)
    deadline = time.monotonic() + 30
    while "ready" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert tagged_processes(tag) == [proc.pid]
    begun = time.monotonic()
    stop_processes([proc], 0.3, launcher.signal)
    assert proc.returncode == -signal.SIGKILL and time.monotonic() - begun >= 0.3
    assert not tagged_processes(tag)


def test_a_recorded_pid_is_killed_only_while_it_is_the_same_process() -> None:
    """As a restarted runner sees it: the pid of a run that is not its child, from state.json."""
    spawn = (
        "import subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'],"
        " start_new_session=True, stdout=subprocess.DEVNULL)\n"
        "print(p.pid)\n"
    )
    pid = int(subprocess.check_output([sys.executable, "-c", spawn], text=True))
    start = process_start_time(pid)
    assert start is not None
    try:
        # another start time: the pid was reused by some other process, which is left alone
        assert kill_attempt_processes("no-such-tag", pid, start + "0") == 0
        assert process_start_time(pid) == start
        assert kill_attempt_processes("no-such-tag", pid, start) == 1
        deadline = time.monotonic() + 10
        while process_start_time(pid) == start and time.monotonic() < deadline:
            time.sleep(0.05)  # reaped by whoever adopted it
        assert process_start_time(pid) != start
    finally:
        if process_start_time(pid) == start:
            os.killpg(pid, signal.SIGKILL)


def test_stopping_waits_for_no_process_that_already_ended() -> None:
    done = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    done.wait()
    begun = time.monotonic()
    stop_processes([done], 5.0)
    assert time.monotonic() - begun < 1.0
