"""The study on one GPU: epoch time, runs per GPU at once, and the 420 runs' time.

    python bench/bench_gpu.py                                  # on a machine with a CUDA GPU
    python bench/bench_gpu.py --accelerator cpu --batches 20 --concurrency 1 2   # dry run

Every run is the real command, ``python -m lightning_app fit --config configs/bdrnn_mnist.yaml``
(hidden 128, 2 layers, batch 100, Adam 0.003; val and test evaluated every epoch), on full
Fashion-MNIST (Debian's files, or ``DATA_DIR/FashionMNIST/raw`` holding the four IDX files),
offline W&B, with ``epoch_timer.EpochTimer`` appending each epoch's times to a JSON-lines file.

1. Epoch time of one run alone (``--epochs`` epochs; the first is reported apart as warm-up).
2. Runs per GPU: N runs started together for N in ``--concurrency``; per-run and total
   samples/s. More runs at once pay while the total still grows.
3. The study's 420 runs x 10 epochs on one GPU at the best N, plus each run's start-up
   (process start to first batch, measured). All 420 are costed as the study configuration;
   the signal grid's runs are smaller on average (hidden 10-100), so this is an upper bound.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STUDY_RUNS, STUDY_EPOCHS = 420, 10


def start_run(args: argparse.Namespace, folder: Path, seed: int) -> tuple[subprocess.Popen, Path]:
    """Start one training run of the study's configuration; return it and its timings file."""
    timings = folder / f"epochs-{seed}.jsonl"
    command = [
        sys.executable, "-m", "lightning_app", "fit",
        "--config", str(REPO / "configs/bdrnn_mnist.yaml"),
        "--data.dataset=fashion-mnist", f"--data.data_dir={args.data_dir}",
        f"--seed_everything={seed}", f"--trainer.max_epochs={args.epochs}",
        f"--trainer.accelerator={args.accelerator}", "--trainer.devices=1",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        "--trainer.callbacks+=epoch_timer.EpochTimer", "--wandb.mode=offline",
        f"--run_dir={folder / f'run-{seed}'}",
    ]  # fmt: skip
    if args.batches:
        command.append(f"--trainer.limit_train_batches={args.batches}")
    env = {
        **os.environ,
        "EPOCH_TIMER_OUT": str(timings),
        "PYTHONPATH": os.pathsep.join([str(REPO / "bench"), str(REPO)]),
        "WANDB_SILENT": "true",
    }
    with open(folder / f"run-{seed}.log", "w") as log:  # the child keeps its own copy
        process = subprocess.Popen(
            command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    return process, timings


def run_together(args: argparse.Namespace, n: int) -> list[dict]:
    """Start ``n`` runs at once, wait for all; each run's epoch records plus its wall time."""
    folder = Path(tempfile.mkdtemp(prefix=f"bench-gpu-{n}-"))
    start = time.perf_counter()
    runs = [start_run(args, folder, seed) for seed in range(n)]
    results = []
    for seed, (process, timings) in enumerate(runs):
        if process.wait() != 0:
            sys.exit(f"error: run {seed} of {n} failed; see {folder / f'run-{seed}.log'}")
        epochs = [json.loads(line) for line in timings.read_text().splitlines()]
        results.append({"epochs": epochs, "wall_s": time.perf_counter() - start})
    return results


def samples_per_s(epoch: dict) -> float:
    return epoch["batches"] * epoch["batch_size"] / epoch["train_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accelerator", default="gpu")
    parser.add_argument("--data_dir", default=str(REPO / "data"))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batches", type=int, default=0, help="limit_train_batches (0: all)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")

    alone = run_together(args, 1)[0]
    first, *rest = alone["epochs"]
    steady = rest or [first]
    epoch_s = statistics.median(e["epoch_s"] for e in steady)
    trained_s = sum(e["epoch_s"] for e in alone["epochs"])
    startup_s = alone["wall_s"] - trained_s  # process start, imports, data, W&B, teardown
    print(f"device: {first['device']}")
    print("\n| one run alone | seconds |\n|---|---|")
    print(f"| first epoch (warm-up), train + eval | {first['epoch_s']:.2f} |")
    print(f"| later epochs, train + eval (median) | {epoch_s:.2f} |")
    print(f"| later epochs, training batches only | "
          f"{statistics.median(e['train_s'] for e in steady):.2f} |")  # fmt: skip
    print(f"| start-up and teardown per run | {startup_s:.1f} |")

    print("\n| runs at once | per-run samples/s (median) | total samples/s | epoch s (median) |")
    print("|---|---|---|---|")
    best_n, best_total, best_epoch_s = 1, 0.0, epoch_s
    for n in args.concurrency:
        results = [alone] if n == 1 else run_together(args, n)
        last = [r["epochs"][-1] for r in results]
        per_run = statistics.median(samples_per_s(e) for e in last)
        total = sum(samples_per_s(e) for e in last)
        n_epoch_s = statistics.median(e["epoch_s"] for e in last)
        print(f"| {n} | {per_run:,.0f} | {total:,.0f} | {n_epoch_s:.2f} |")
        if total > best_total * 1.05:  # more runs at once only if they pay by 5 % or more
            best_n, best_total, best_epoch_s = n, total, n_epoch_s

    hours = STUDY_RUNS * (STUDY_EPOCHS * best_epoch_s + startup_s) / best_n / 3600
    print(f"\nThe study's {STUDY_RUNS} runs x {STUDY_EPOCHS} epochs, {best_n} at a time: "
          f"about {hours:.1f} h on one {first['device']}")  # fmt: skip


if __name__ == "__main__":
    main()
