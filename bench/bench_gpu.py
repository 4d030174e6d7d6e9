"""The study on one GPU through the sweep runner's packing: runs per GPU, wall time, 420 runs.

    python bench/bench_gpu.py                          # CUDA machine: K = 1, 2, 4, 8 runs on GPU 0
    python bench/bench_gpu.py --runs-per-gpu 4 8 --rounds 3 --json bench-gpu.json
    python bench/bench_gpu.py --cpu                    # dry mode, no GPU: --workers K on the CPU

For each K, a slice of the study is run by the real command,
``python -m lightning_app sweep SLICE --gpus 0 --runs-per-gpu K`` (offline W&B): each run is
``python -m lightning_app fit --config configs/bdrnn_mnist.yaml ...`` with the runner's
``CUDA_VISIBLE_DEVICES`` and thread share, ``bench/epoch_timer.py`` appending each epoch's
CUDA-synchronised times. The slices come from the study's own sweep files:

- noise: the first ``K x GPUs x rounds`` seeds of ``configs/sweeps/noise.yaml`` (hidden 128,
  2 layers, batch 100);
- signal: as many configurations drawn at random (seeded) from the grid of
  ``configs/sweeps/signal.yaml`` (layers 2-4, batch 64-512, hidden 10-100), so both halves of the
  study are costed with their own mix of sizes.

Every run trains ``--epochs`` epochs (default 2: the first is warm-up) on full Fashion-MNIST
(Debian's ``dataset-fashion-mnist`` or ``DATA_DIR/FashionMNIST/raw``; MNIST cannot be downloaded
offline and has the same sizes), validating and testing each epoch as the study does. ``rounds``
runs per slot (default 2) make the runner refill slots as runs end, as in the real sweep.

Reported per K: the slice's wall time (first run start to last run end, from ``state.json``),
runs finished per minute, the median steady epoch and each run's start-up (run time minus its
epochs: interpreter, imports, data, W&B, teardown, measured under that K's contention), and the
extrapolation: the study's 210 noise + 210 signal runs of 10 epochs on the GPUs given, each run
costed as start-up + first epoch + 9 steady epochs at that K, K runs per GPU at a time. The goal
is <= 30 minutes on one H100/H200.

DDP check: when the machine has two CUDA devices, the study's configuration (seed
``--ddp-seed``) is also trained for one epoch by the real ``fit`` with ``--trainer.devices=2
--trainer.strategy=ddp`` and once on one GPU, and the two runs' epoch times and test accuracies
are printed side by side (``data.batch_size`` is the global batch, so both take the same steps).
With fewer devices it is skipped with the reason printed; ``--cpu`` runs it as two CPU processes
(gloo, few batches) to check the path; ``--no-ddp`` skips it, ``--ddp-only`` runs only it.

``--cpu`` checks the whole path on a machine without CUDA: the same slices with
``--trainer.accelerator=cpu``, ``--gpus none --workers K`` (the runner's CPU mode), a few batches
per epoch; its numbers say nothing about a GPU. Without ``--cpu`` on such a machine the sweep
command itself refuses ``--gpus`` (exit 2, one line), and so does this script.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
STUDY = {"noise": 210, "signal": 210}
STUDY_EPOCHS = 10
GOAL_MIN = 30.0


def slice_file(args: argparse.Namespace, kind: str, folder: Path) -> Path:
    """The study's sweep file with the bench's training options added to its command."""
    spec = yaml.safe_load((REPO / "configs" / "sweeps" / f"{kind}.yaml").read_text())
    if kind == "signal":
        spec["method"] = "random"  # draws from the grid's values: a fair mix of the 210 sizes
    extra = [
        f"--data.dataset={args.dataset}",
        f"--data.data_dir={args.data_dir}",
        f"--trainer.max_epochs={args.epochs}",
        "--trainer.enable_model_summary=false",
        "--trainer.callbacks+=epoch_timer.EpochTimer",
    ]
    if args.cpu:
        extra += [
            "--trainer.accelerator=cpu",
            f"--trainer.limit_train_batches={args.batches}",
            f"--trainer.limit_val_batches={args.batches}",
            f"--trainer.limit_test_batches={args.batches}",
        ]
    elif args.batches:
        extra.append(f"--trainer.limit_train_batches={args.batches}")
    command = spec["command"]
    at = command.index("${args}")
    spec["command"] = [*command[:at], *extra, *command[at:]]
    path = folder / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def sweep_argv(
    args: argparse.Namespace, kind: str, path: Path, k: int, runs: int, folder: Path
) -> list[str]:
    argv = [sys.executable, "-m", "lightning_app", "sweep", str(path), "--count", str(runs)]
    argv += ["--dir", str(folder), "--wandb-mode", "offline"]
    if kind == "signal":
        argv += ["--seed", "0"]
    if args.cpu:
        return [*argv, "--gpus", "none", "--workers", str(k)]
    return [*argv, "--gpus", args.gpus, "--runs-per-gpu", str(k)]


def gpu_run_environment(timings: Path) -> dict[str, str]:
    return {
        **os.environ,
        "EPOCH_TIMER_OUT": str(timings),
        "PYTHONPATH": os.pathsep.join([str(REPO / "bench"), str(REPO)]),
        "WANDB_SILENT": "true",
        "WANDB_MODE": "offline",
    }


def run_slice(args: argparse.Namespace, kind: str, k: int, root: Path) -> dict[str, Any]:
    """One sweep of ``k`` runs per GPU over a slice of the study; its timings."""
    gpus = 1 if args.cpu else len(args.gpus.split(","))
    runs = k * gpus * args.rounds
    folder = root / f"{kind}-k{k}"
    timings = root / f"{kind}-k{k}-epochs.jsonl"
    path = slice_file(args, kind, root)
    argv = sweep_argv(args, kind, path, k, runs, folder)
    print(f"$ {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    proc = subprocess.run(
        argv,
        cwd=REPO,
        env=gpu_run_environment(timings),
        capture_output=True,
        text=True,
        check=False,
    )
    total_s = time.perf_counter() - start
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n", file=sys.stderr)
        failed = [line for line in proc.stdout.splitlines() if line.startswith("failed: ")]
        for line in failed[:1]:  # the first failed run's log shows why
            log = Path(line.split("see ", 1)[1])
            print(f"--- {log}\n{log.read_text()[-3000:]}", file=sys.stderr)
        raise SystemExit(proc.returncode)
    state = json.loads((folder / "state.json").read_text())["runs"]
    attempts = [record["attempts"][-1] for record in state.values()]
    durations = [a["ended"] - a["started"] for a in attempts]
    span = max(a["ended"] for a in attempts) - min(a["started"] for a in attempts)
    epochs = [json.loads(line) for line in timings.read_text().splitlines()]
    first = [e["epoch_s"] for e in epochs if e["epoch"] == 0]
    steady = [e["epoch_s"] for e in epochs if e["epoch"] > 0] or first
    startup = statistics.mean(durations) - sum(e["epoch_s"] for e in epochs) / len(attempts)
    return {
        "kind": kind,
        "runs_per_gpu": k,
        "gpus": gpus,
        "runs": len(attempts),
        "epochs": args.epochs,
        "command_s": total_s,
        "runs_s": span,
        "run_s_mean": statistics.mean(durations),
        "first_epoch_s": statistics.median(first),
        "steady_epoch_s": statistics.median(steady),
        "steady_epoch_s_range": [min(steady), max(steady)],
        "startup_s": startup,
        "device": epochs[0]["device"],
    }


def cuda_devices() -> int:
    """CUDA devices this process sees; 0 without CUDA (the dry machine)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def ddp_skip_reason(args: argparse.Namespace, visible: int) -> str | None:
    """Why the 2-device DDP check cannot run here, or None when it can."""
    if args.no_ddp:
        return "--no-ddp"
    if args.cpu:
        return None  # dry: two CPU processes
    if visible < 2:
        return f"{visible} CUDA device(s) visible; the DDP check needs 2"
    return None


def fit_argv(args: argparse.Namespace, devices: int, run_dir: Path) -> list[str]:
    """The real ``fit`` of the study's configuration for one epoch on ``devices`` devices."""
    config = REPO / "configs" / "bdrnn_mnist.yaml"
    argv = [sys.executable, "-m", "lightning_app", "fit", "--config", str(config)]
    argv += [
        f"--seed_everything={args.ddp_seed}",
        f"--run_dir={run_dir}",
        "--wandb.mode=offline",
        f"--data.dataset={args.dataset}",
        f"--data.data_dir={args.data_dir}",
        "--trainer.max_epochs=1",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--trainer.callbacks+=epoch_timer.EpochTimer",
        f"--trainer.devices={devices}",
    ]
    if devices > 1:
        argv.append("--trainer.strategy=ddp")
    if args.cpu:
        argv += ["--trainer.accelerator=cpu", *_cpu_batches(args)]
    else:
        argv.append("--trainer.accelerator=gpu")
        if args.batches:
            argv.append(f"--trainer.limit_train_batches={args.batches}")
    return argv


def _cpu_batches(args: argparse.Namespace) -> list[str]:
    return [f"--trainer.limit_{split}_batches={args.batches}" for split in ("train", "val", "test")]


def test_accuracy(stdout: str) -> float:
    """``test/acc`` from the summary line ``fit`` prints (``run ID (1 epochs): test/acc=...``)."""
    found = re.findall(r"test/acc=([0-9.]+)", stdout)
    if not found:
        raise SystemExit(f"no test/acc in the run's summary:\n{stdout[-2000:]}")
    return float(found[-1])


def run_fit(args: argparse.Namespace, devices: int, root: Path) -> dict[str, Any]:
    """One epoch of the study's configuration on ``devices`` devices: epoch time, test accuracy."""
    timings = root / f"ddp-{devices}-epochs.jsonl"
    argv = fit_argv(args, devices, root / f"ddp-{devices}")
    print(f"$ {' '.join(argv)}", flush=True)
    proc = subprocess.run(
        argv,
        cwd=root,
        env=gpu_run_environment(timings),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n", file=sys.stderr)
        raise SystemExit(proc.returncode)
    (epoch,) = [json.loads(line) for line in timings.read_text().splitlines()]
    return {
        "devices": devices,
        "epoch_s": epoch["epoch_s"],
        "train_s": epoch["train_s"],
        "test_acc": test_accuracy(proc.stdout),
        "device": epoch["device"],
    }


def ddp_check(args: argparse.Namespace, root: Path) -> dict[str, Any] | None:
    """The 2-device DDP run against a 1-device run of the same seed, or None (reason printed)."""
    reason = ddp_skip_reason(args, 0 if args.cpu else cuda_devices())
    if reason:
        print(f"\nDDP check skipped: {reason}", flush=True)
        return None
    one, two = run_fit(args, 1, root), run_fit(args, 2, root)
    where = "CPU processes (dry mode: says nothing about GPUs)" if args.cpu else one["device"]
    print(f"\nDDP check, 1 epoch, seed {args.ddp_seed}, on {where}:\n")
    print("| devices | epoch s | train s | test/acc |")
    print("|---|---|---|---|")
    for r in (one, two):
        print(f"| {r['devices']} | {r['epoch_s']:.2f} | {r['train_s']:.2f} | {r['test_acc']:.4f} |")
    print(f"\nDDP speed-up {one['epoch_s'] / two['epoch_s']:.2f}x per epoch; "
          f"test/acc difference {two['test_acc'] - one['test_acc']:+.4f}")  # fmt: skip
    return {"one_device": one, "two_devices": two}


def study_minutes(by_kind: dict[str, dict[str, Any]]) -> float:
    """The study's 420 runs x 10 epochs at this K, from each slice's per-run costs."""
    seconds = 0.0
    for kind, count in STUDY.items():
        m = by_kind[kind]
        run_s = m["startup_s"] + m["first_epoch_s"] + (STUDY_EPOCHS - 1) * m["steady_epoch_s"]
        seconds += count * run_s / (m["runs_per_gpu"] * m["gpus"])
    return seconds / 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-per-gpu", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--gpus", default="0", help="--gpus of the sweep command (default 0)")
    parser.add_argument("--rounds", type=int, default=2, help="runs per slot in each slice")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--slices", nargs="+", choices=list(STUDY), default=list(STUDY))
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--data_dir", default=str(REPO / "data"))
    parser.add_argument("--batches", type=int, default=0, help="limit_train_batches (0: all)")
    parser.add_argument("--cpu", action="store_true", help="dry mode without a GPU (see above)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    parser.add_argument("--keep", action="store_true", help="keep the sweep folders")
    parser.add_argument("--no-ddp", action="store_true", help="skip the 2-device DDP check")
    parser.add_argument("--ddp-only", action="store_true", help="run only the DDP check")
    parser.add_argument("--ddp-seed", type=int, default=0, help="seed of the DDP check's runs")
    args = parser.parse_args()
    if args.cpu:
        args.batches = args.batches or 5
        args.epochs = min(args.epochs, 2)

    root = Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    print(f"sweep folders and epoch timings in {root}", flush=True)
    results: list[dict[str, Any]] = []
    for k in [] if args.ddp_only else args.runs_per_gpu:
        for kind in args.slices:
            results.append(run_slice(args, kind, k, root))
            r = results[-1]
            print(
                f"  {kind} K={k}: {r['runs']} runs in {r['runs_s']:.1f} s, "
                f"epoch {r['steady_epoch_s']:.2f} s, start-up {r['startup_s']:.1f} s",
                flush=True,
            )

    if results:
        report(args, results)
    ddp = ddp_check(args, root)
    if args.json:
        estimates = study_estimates(args, results) if results else {}
        numbers = {"results": results, "study_minutes": estimates, "ddp": ddp}
        args.json.write_text(json.dumps(numbers, indent=1))
    if not args.keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)


def report(args: argparse.Namespace, results: list[dict[str, Any]]) -> None:
    """The slices' table and, with both slices, the study's estimate per K."""
    mode = "CPU dry mode (--workers K; says nothing about a GPU)" if args.cpu else "GPU"
    print(f"\ndevice: {results[0]['device']}; {mode}; {args.epochs} epochs per run, "
          f"{args.rounds} round(s) per slot\n")  # fmt: skip
    print("| K | slice | runs | runs s (wall) | runs/min | steady epoch s | start-up s |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['runs_per_gpu']} | {r['kind']} | {r['runs']} | {r['runs_s']:.1f} | "
              f"{60 * r['runs'] / r['runs_s']:.1f} | {r['steady_epoch_s']:.2f} | "
              f"{r['startup_s']:.1f} |")  # fmt: skip

    estimates = study_estimates(args, results)
    if estimates:
        where = "the CPU (dry mode)" if args.cpu else f"{results[0]['gpus']} GPU(s)"
        print(f"\n| K | study: 420 runs x {STUDY_EPOCHS} epochs on {where}, minutes |")
        print("|---|---|")
        for k, minutes in estimates.items():
            print(f"| {k} | {minutes:.1f} |")
        best = min(estimates, key=lambda k: estimates[k])
        verdict = "meets" if estimates[best] <= GOAL_MIN else "misses"
        note = " (CPU dry mode: not a GPU estimate)" if args.cpu else ""
        print(f"\nbest K = {best}{note}: about {estimates[best]:.0f} min, which {verdict} the goal "
              f"(<= {GOAL_MIN:.0f} min on one GPU)")  # fmt: skip


def study_estimates(args: argparse.Namespace, results: list[dict[str, Any]]) -> dict[int, float]:
    """Study minutes per K; empty unless both slices ran."""
    if set(args.slices) != set(STUDY):
        return {}
    estimates = {}
    for k in args.runs_per_gpu:
        by_kind = {r["kind"]: r for r in results if r["runs_per_gpu"] == k}
        estimates[k] = study_minutes(by_kind)
    return estimates


if __name__ == "__main__":
    main()
