"""GPU slots: the allocator as pure functions, the real runner with real processes, the command.

No GPU is needed. The runner is handed device ids (a ``GpuSlotScheduler``) exactly as the sweep
command hands it the ids it found, and its runs are a tiny Python script that records the
``CUDA_VISIBLE_DEVICES`` and ``OMP_NUM_THREADS`` it was started with and when it ran, so the
tests see what each real child process got. Only where the sweep command itself must believe in
GPUs is torch's device count replaced (``gpus.cuda_device_count``, the one call that asks NVML);
parsing ``CUDA_VISIBLE_DEVICES``, ``--gpus``, each run's ``trainer`` config and the scheduling
are the real code.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import signal
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import pytest
from rich.console import Console

from lightning_app.errors import UserError
from lightning_app.sweeps import gpus as gpus_module
from lightning_app.sweeps.gpus import (
    CPU_RUN,
    Allocation,
    GpuSlots,
    concurrent_runs,
    dry_run_allocations,
    gpus_needed,
    schedule,
    select_gpus,
    visible_devices,
)
from lightning_app.sweeps.layout import SweepFolder
from lightning_app.sweeps.plan import PlannedRun
from lightning_app.sweeps.progress import SweepProgress
from lightning_app.sweeps.runner import RunnerOptions, Summary, SweepRunner, threads_per_run
from lightning_app.sweeps.scheduling import GpuSlotScheduler, make_scheduler
from tests.sweeps.conftest import InProcess, sweep_file
from tests.sweeps.test_sweep_command import one_error_line

GPU_ARGS = ["--trainer.accelerator=auto"]  # the quickstart config trains on the CPU


# -- the allocator, pure ----------------------------------------------------------------------
def test_one_device_runs_spread_over_the_gpus_then_pack_k_on_each() -> None:
    slots = GpuSlots(("0", "1", "2", "3"), per_gpu=2)
    starts = schedule([1] * 9, slots, room=100)
    assert [position for position, _ in starts] == list(range(8))  # the 9th waits
    assert [a.gpus for _, a in starts] == [(0,), (1,), (2,), (3,)] * 2
    assert slots.used == [2, 2, 2, 2]
    assert schedule([1], slots, room=100) == []
    slots.release(starts[6][1])  # the run on GPU 2 ends: its slot is free again
    assert schedule([1, 1], slots, room=100) == [(0, Allocation((2,), 1))]
    assert slots.used == [2, 2, 2, 2]


def test_room_caps_the_starts_and_cpu_runs_take_no_slot() -> None:
    slots = GpuSlots(("0", "1"), per_gpu=1)
    assert [a for _, a in schedule([1, 1, 1], slots, room=1)] == [Allocation((0,), 1)]
    starts = schedule([1, 0, 1, 0], slots, room=3)  # GPU 1 left; CPU runs need none
    assert starts == [(0, Allocation((1,), 1)), (1, CPU_RUN), (3, CPU_RUN)]
    assert CPU_RUN.visible(["0", "1"]) == "" and slots.used == [1, 1]


def test_a_multi_device_run_takes_whole_gpus_and_frees_them_all() -> None:
    slots = GpuSlots(("4", "5", "6", "7"), per_gpu=2)
    starts = schedule([1, 2, 1, 1], slots, room=100)
    assert [a for _, a in starts] == [
        Allocation((0,), 1),
        Allocation((1, 2), 2),  # two idle GPUs, all their slots
        Allocation((3,), 1),
        Allocation((0,), 1),  # GPUs 1 and 2 are full; 0 and 3 have one run each
    ]
    assert starts[1][1].visible(slots.devices) == "5,6"
    assert slots.used == [2, 2, 2, 1]
    assert schedule([2], slots, room=100) == []  # no two idle GPUs
    slots.release(starts[1][1])
    assert slots.used == [2, 0, 0, 1]
    assert schedule([2], slots, room=100) == [(0, Allocation((1, 2), 2))]
    with pytest.raises(ValueError):
        slots.take(Allocation((1,), 1))  # a whole GPU is taken: no slot left on it


def test_a_waiting_multi_device_run_holds_its_gpus_but_others_backfill() -> None:
    slots = GpuSlots(("0", "1", "2"), per_gpu=2)
    for gpu, runs in enumerate((1, 2, 0)):  # runs already live: 1 on GPU 0, 2 on GPU 1
        slots.used[gpu] = runs
    # The 2-device run waits for GPUs 2 and 0 (least busy); the 1-device runs behind it may not
    # take them, only GPU 1's... which is full. A CPU run behind it starts.
    assert schedule([2, 1, 1, 0], slots, room=100) == [(3, CPU_RUN)]
    slots.used[1] = 1  # a run on GPU 1 ends: the next 1-device run backfills there
    assert schedule([2, 1, 1], slots, room=100) == [(1, Allocation((1,), 1))]
    slots.used[0] = 0  # GPU 0's run ends: the 2-device run starts ahead of the 1-device one
    assert schedule([2, 1], slots, room=100)[0] == (0, Allocation((0, 2), 2))


def test_dry_run_assignment_assumes_runs_end_in_start_order() -> None:
    placed = dry_run_allocations([1, 1, 1, 2, 0, 1], ["4", "5"], per_gpu=1, max_running=2)
    assert [a.visible(["4", "5"]) for a in placed] == ["4", "5", "4", "4,5", "", "4"]
    with pytest.raises(ValueError):
        dry_run_allocations([3], ["0", "1"], per_gpu=1, max_running=2)


def test_visible_devices_are_numbered_as_the_runner_sees_them() -> None:
    assert visible_devices({}, 3) == ["0", "1", "2"]
    parent = {"CUDA_VISIBLE_DEVICES": "4, 5"}
    assert visible_devices(parent, 2) == ["4", "5"]
    assert select_gpus(None, ["4", "5"], parent) == ["4", "5"]
    assert select_gpus("1", ["4", "5"], parent) == ["5"]
    assert select_gpus("none", ["4", "5"], parent) == []
    assert visible_devices({"CUDA_VISIBLE_DEVICES": ""}, 0) == []
    uuids = {"CUDA_VISIBLE_DEVICES": "GPU-aa,GPU-bb"}
    assert visible_devices(uuids, 2) == ["GPU-aa", "GPU-bb"]
    for flag, message in [
        ("2", "there is no device 2; 2 CUDA device(s) are visible, numbered 0-1"),
        ("0,0", "names device 0 twice"),
        ("a", "give device numbers separated by commas"),
    ]:
        with pytest.raises(UserError, match=re.escape(message)):
            select_gpus(flag, ["4", "5"], parent)
    with pytest.raises(UserError, match=r"\(CUDA_VISIBLE_DEVICES=4, 5\)"):
        select_gpus("3", ["4", "5"], parent)
    with pytest.raises(UserError, match="no CUDA device"):
        select_gpus("0", [], {})


@pytest.mark.parametrize(
    ("trainer", "need"),
    [
        ({"accelerator": "auto", "devices": "auto"}, 1),  # Lightning: all GPUs; here its slot
        ({"accelerator": "gpu", "devices": -1}, 1),
        ({"accelerator": "cuda", "devices": 2}, 2),
        ({"accelerator": "auto", "devices": "3"}, 3),  # from --trainer.devices=3
        ({"accelerator": "gpu", "devices": [0, 1]}, 2),
        ({"accelerator": "gpu", "devices": "0,1"}, 2),
        ({"accelerator": "cpu", "devices": 2}, 0),  # DDP on the CPU: no GPU
        ({"accelerator": {"class_path": "lightning.pytorch.accelerators.CPUAccelerator"}}, 0),
        ({"accelerator": "lightning.pytorch.accelerators.CUDAAccelerator"}, 1),
    ],
)
def test_gpus_a_run_needs(trainer: dict, need: int) -> None:
    assert gpus_needed(trainer, "f.yaml") == need


def test_device_numbers_chosen_by_a_run_are_refused() -> None:
    with pytest.raises(UserError, match=r"trainer.devices=\[1, 3\] picks device numbers"):
        gpus_needed({"accelerator": "gpu", "devices": [1, 3]}, "f.yaml")


def test_workers_cap_the_runs_and_gpu_runs_never_outnumber_the_slots() -> None:
    assert concurrent_runs(None, 0, 1, {}) == 1  # no GPUs: as before
    assert concurrent_runs(3, 0, 1, {}) == 3
    assert concurrent_runs(None, 8, 2, {"a": 1}) == 16
    assert concurrent_runs(4, 8, 2, {"a": 1}) == 4
    assert concurrent_runs(32, 8, 2, {"a": 1}) == 16
    assert concurrent_runs(32, 8, 2, {"a": 1, "b": 0}) == 32  # CPU runs: only --workers


# -- the real runner, real processes ------------------------------------------------------------
RECORDER = textwrap.dedent(
    """
    import json, os, sys, time
    start = time.time()
    time.sleep(float(sys.argv[2]))
    with open(sys.argv[1], "w") as out:
        json.dump({"visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
                   "omp": os.environ.get("OMP_NUM_THREADS"),
                   "start": start, "end": time.time()}, out)
    sys.exit(int(sys.argv[3]))
    """
)


@pytest.fixture
def deadline() -> Iterator[None]:
    """Stop a runner that hangs (e.g. waiting on a slot never freed) after 180 s, as Ctrl-C would
    (generous: on a busy 2-core machine each run's interpreter start-up alone can take seconds)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # the runner's own handler ends its loop

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(180)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_recorder(
    tmp_path: Path,
    needs: list[int],
    options: RunnerOptions,
    seconds: float = 1.0,
    exit_codes: dict[int, int] | None = None,
    gpus: tuple[str, ...] = (),
    runs_per_gpu: int = 1,
) -> tuple[list[dict], Summary]:
    script = tmp_path / "record.py"
    script.write_text(RECORDER)
    folder = SweepFolder(tmp_path / "sweep")
    folder.root.mkdir()
    runs = [PlannedRun(i, f"{i:04d}-need={need}", {}) for i, need in enumerate(needs)]
    codes = exit_codes or {}

    def command(run: PlannedRun) -> list[str]:
        out = folder.run_dir(run.key) / "record.json"
        return [sys.executable, str(script), str(out), str(seconds), str(codes.get(run.index, 0))]

    progress = SweepProgress(Console(file=io.StringIO()), "gpu")
    runner = SweepRunner(
        folder,
        runs,
        command,
        options,
        progress,
        make_scheduler(
            threads_per_run(options.workers, options.threads),
            gpus=gpus,
            runs_per_gpu=runs_per_gpu,
            needs={r.key: n for r, n in zip(runs, needs, strict=True)},
        ),
    )
    summary = runner.run()
    assert not summary.stopped, "the runner hung (a slot was never freed?)"
    records = [json.loads((folder.run_dir(r.key) / "record.json").read_text()) for r in runs]
    for run, record in zip(runs, records, strict=True):
        header = folder.log_path(run.key).read_text().splitlines()[0]
        record["header"] = header
    return records, summary


def overlapping(a: dict, b: dict) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def test_runner_packs_k_runs_per_gpu_and_gives_a_2_device_run_two_whole_gpus(
    tmp_path: Path, deadline: None
) -> None:
    needs = [1, 1, 1, 1, 2, 0, 1, 1]
    options = RunnerOptions(workers=4, poll_s=0.05)
    records, _ = run_recorder(tmp_path, needs, options, gpus=("4", "5"), runs_per_gpu=2)
    expected_omp = str(threads_per_run(4))
    for need, record in zip(needs, records, strict=True):
        assert record["omp"] == expected_omp
        # the header is a line a POSIX shell runs as is: the empty value quoted as ''
        visible = shlex.quote(record["visible"])
        assert record["header"].startswith(f"$ CUDA_VISIBLE_DEVICES={visible} ")
        if need == 1:
            assert record["visible"] in ("4", "5")
    assert records[4]["visible"] == "4,5"
    assert records[5]["visible"] == ""  # the CPU run sees no GPU
    gpu_runs = [r for need, r in zip(needs, records, strict=True) if need > 0]
    for record in gpu_runs:  # at no moment more than K=2 runs on one GPU
        at = record["start"]
        for device in ("4", "5"):
            live = [r for r in gpu_runs if r["start"] <= at < r["end"]]
            assert sum(device in r["visible"].split(",") for r in live) <= 2
    two = records[4]
    assert not any(overlapping(two, r) for r in gpu_runs if r is not two)
    # Packed: the first four runs trained together, two on each GPU.
    assert all(overlapping(records[0], r) for r in records[1:4])
    assert sorted(r["visible"] for r in records[:4]) == ["4", "4", "5", "5"]
    # The 2-device run was not overtaken by the 1-device runs queued behind it.
    assert records[6]["start"] >= two["end"] and records[7]["start"] >= two["end"]


def test_a_failed_run_frees_its_gpu_for_the_next(tmp_path: Path, deadline: None) -> None:
    options = RunnerOptions(workers=1, poll_s=0.05)
    records, summary = run_recorder(
        tmp_path, [1, 1, 1], options, 0.3, exit_codes={0: 3}, gpus=("0",)
    )
    assert summary.failed == ["0000-need=1"] and summary.done == 2
    assert [r["visible"] for r in records] == ["0", "0", "0"]
    assert records[0]["end"] <= records[1]["start"] and records[1]["end"] <= records[2]["start"]


def test_the_runner_refuses_a_run_it_could_never_start() -> None:
    with pytest.raises(ValueError, match="would wait forever"):
        GpuSlotScheduler(("0",), 1, {"0000-ddp": 2}, threads=1)


def test_without_gpus_the_runner_leaves_cuda_visible_devices_alone(
    tmp_path: Path, deadline: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    records, _ = run_recorder(tmp_path, [1, 1], RunnerOptions(workers=2, poll_s=0.05), 0.2)
    assert [r["visible"] for r in records] == ["3", "3"]
    assert all(r["header"].startswith(f"$ {sys.executable}") for r in records)


# -- the sweep command ----------------------------------------------------------------------------
@pytest.fixture
def four_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep command finds 4 CUDA devices (only torch's NVML count is replaced)."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(gpus_module, "cuda_device_count", lambda: 4)


def dry_run_devices(stdout: str) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for line in stdout.splitlines():
        if line.startswith("[pending] "):
            key, command = line.removeprefix("[pending] ").split(": ", 1)
            first = shlex.split(command)[0]
            found[key] = first.removeprefix("CUDA_VISIBLE_DEVICES=") if "=" in first else None
    return found


def test_dry_run_shows_each_runs_gpus_from_its_trainer_config(
    sweep_cli: Callable[..., InProcess], tmp_path: Path, four_gpus: None
) -> None:
    path = sweep_file(
        tmp_path,
        {"trainer.devices": {"values": [1, 2]}, "seed_everything": {"values": [1, 2]}},
        extra=GPU_ARGS,
    )
    result = sweep_cli(str(path), "--dry-run", "--gpus", "1,2,3", "--runs-per-gpu", "2")
    assert result.returncode == 0, result.stderr
    assert "3 GPU(s) (1,2,3) x 2 run(s) each, 6 worker(s)" in result.stdout
    assert dry_run_devices(result.stdout) == {
        "0000-seed_everything=1,devices=1": "1",  # the least busy GPU
        "0001-seed_everything=1,devices=2": "2,3",  # two idle GPUs, whole
        "0002-seed_everything=2,devices=1": "1",  # a second run on GPU 1
        "0003-seed_everything=2,devices=2": "2,3",  # waits for 2 and 3 to be idle again
    }
    assert f"OMP_NUM_THREADS={threads_per_run(6)}" in result.stdout


def test_parent_cuda_visible_devices_and_cpu_runs(
    sweep_cli: Callable[..., InProcess],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    monkeypatch.setattr(gpus_module, "cuda_device_count", lambda: 2)
    path = sweep_file(
        tmp_path, {"trainer.accelerator": {"values": ["auto", "cpu", "gpu"]}}, extra=GPU_ARGS
    )
    result = sweep_cli(str(path), "--dry-run")  # default: every visible device
    assert result.returncode == 0, result.stderr
    assert list(dry_run_devices(result.stdout).values()) == ["4", "", "4"]
    assert "2 GPU(s) (4,5) x 1 run(s) each, 2 worker(s)" in result.stdout


def test_no_gpus_means_todays_command_lines(
    sweep_cli: Callable[..., InProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gpus_module, "cuda_device_count", lambda: 0)
    path = sweep_file(tmp_path, {"seed_everything": {"values": [1, 2]}}, extra=GPU_ARGS)
    result = sweep_cli(str(path), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert set(dry_run_devices(result.stdout).values()) == {None}
    assert "1 worker(s)" in result.stdout and "GPU" not in result.stdout


def test_help_names_the_gpu_flags(sweep_cli: Callable[..., InProcess]) -> None:
    result = sweep_cli("--help")
    for text in ("--gpus", "--runs-per-gpu", "CUDA_VISIBLE_DEVICES", "--workers caps"):
        assert text in result.stdout, text


@pytest.mark.parametrize(
    ("args", "params", "message"),
    [
        (["--gpus", "7"], {}, "--gpus 7: there is no device 7; 4 CUDA device(s) are visible"),
        (["--runs-per-gpu", "0"], {}, "--runs-per-gpu must be at least 1, got 0"),
        (["--gpus", "0,x"], {}, "give device numbers separated by commas"),
        (["--gpus", "none", "--runs-per-gpu", "2"], {}, "--gpus none turns them off"),
        (
            ["--gpus", "0,1"],
            {"trainer.devices": {"values": [1, 4]}},
            "run 0001-devices=4 trains on 4 devices (trainer.devices) but --gpus gives 2 (0,1)",
        ),
    ],
)
def test_bad_gpu_input_is_one_line_and_starts_nothing(
    sweep_cli: Callable[..., InProcess],
    tmp_path: Path,
    four_gpus: None,
    args: list[str],
    params: dict,
    message: str,
) -> None:
    path = sweep_file(tmp_path, params or {"seed_everything": {"values": [1]}}, extra=GPU_ARGS)
    assert message in one_error_line(sweep_cli(str(path), *args))
    assert not (tmp_path / "sweeps").exists()


def test_gpus_on_this_machine_without_cuda_exit_2_in_one_line(
    sweep_cli: Callable[..., InProcess], tmp_path: Path
) -> None:
    """The real command, no replaced count: this machine has no GPU (skipped where it has)."""
    import torch

    if torch.cuda.device_count():
        pytest.skip("this machine has CUDA devices")
    path = sweep_file(tmp_path, {"seed_everything": {"values": [1]}})
    for args in (["--gpus", "7"], ["--runs-per-gpu", "2"]):
        result = sweep_cli(str(path), *args)
        assert result.returncode == 2, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "no CUDA device that torch can see" in lines[0], lines
        assert lines[0].startswith(f"error: {args[0]} {args[1]}: ")
    assert not (tmp_path / "sweeps").exists()


@pytest.mark.process
def test_a_real_sweep_gives_each_training_run_its_gpu(
    sweep_cli: Callable[..., InProcess], tmp_path: Path, four_gpus: None
) -> None:
    """Two tiny trainings through the whole command, one of them on the CPU; on this machine
    both train on the CPU, with ``CUDA_VISIBLE_DEVICES`` set as on a GPU machine."""
    path = sweep_file(tmp_path, {"trainer.accelerator": {"values": ["auto", "cpu"]}})
    result = sweep_cli(str(path), "--gpus", "2,3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 GPU(s) (2,3) x 1 run(s) each, 2 worker(s)" in result.stdout
    folder = tmp_path / "sweeps" / "tiny"
    headers = [
        (folder / key / "run.log").read_text().splitlines()[0].split()[1]
        for key in ("0000-accelerator=auto", "0001-accelerator=cpu")
    ]
    assert headers == ["CUDA_VISIBLE_DEVICES=2", "CUDA_VISIBLE_DEVICES=''"]
    assert "on GPU 2" in result.stdout and "on the CPU" in result.stdout
