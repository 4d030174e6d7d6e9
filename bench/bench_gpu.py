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

``--cpu`` checks the whole path on a machine without CUDA: the same slices with
``--trainer.accelerator=cpu``, ``--gpus none --workers K`` (the runner's CPU mode), a few batches
per epoch; its numbers say nothing about a GPU. Without ``--cpu`` on such a machine the sweep
command itself refuses ``--gpus`` (exit 2, one line), and so does this script.
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


def environment(timings: Path) -> dict[str, str]:
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
        argv, cwd=REPO, env=environment(timings), capture_output=True, text=True, check=False
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
    args = parser.parse_args()
    if args.cpu:
        args.batches = args.batches or 5
        args.epochs = min(args.epochs, 2)

    root = Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    print(f"sweep folders and epoch timings in {root}", flush=True)
    results: list[dict[str, Any]] = []
    for k in args.runs_per_gpu:
        for kind in args.slices:
            results.append(run_slice(args, kind, k, root))
            r = results[-1]
            print(
                f"  {kind} K={k}: {r['runs']} runs in {r['runs_s']:.1f} s, "
                f"epoch {r['steady_epoch_s']:.2f} s, start-up {r['startup_s']:.1f} s",
                flush=True,
            )

    mode = "CPU dry mode (--workers K; says nothing about a GPU)" if args.cpu else "GPU"
    print(f"\ndevice: {results[0]['device']}; {mode}; {args.epochs} epochs per run, "
          f"{args.rounds} round(s) per slot\n")  # fmt: skip
    print("| K | slice | runs | runs s (wall) | runs/min | steady epoch s | start-up s |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['runs_per_gpu']} | {r['kind']} | {r['runs']} | {r['runs_s']:.1f} | "
              f"{60 * r['runs'] / r['runs_s']:.1f} | {r['steady_epoch_s']:.2f} | "
              f"{r['startup_s']:.1f} |")  # fmt: skip

    estimates = {}
    if set(args.slices) == set(STUDY):
        where = "the CPU (dry mode)" if args.cpu else f"{results[0]['gpus']} GPU(s)"
        print(f"\n| K | study: 420 runs x {STUDY_EPOCHS} epochs on {where}, minutes |")
        print("|---|---|")
        for k in args.runs_per_gpu:
            by_kind = {r["kind"]: r for r in results if r["runs_per_gpu"] == k}
            estimates[k] = study_minutes(by_kind)
            print(f"| {k} | {estimates[k]:.1f} |")
        best = min(estimates, key=lambda k: estimates[k])
        verdict = "meets" if estimates[best] <= GOAL_MIN else "misses"
        note = " (CPU dry mode: not a GPU estimate)" if args.cpu else ""
        print(f"\nbest K = {best}{note}: about {estimates[best]:.0f} min, which {verdict} the goal "
              f"(<= {GOAL_MIN:.0f} min on one GPU)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"results": results, "study_minutes": estimates}, indent=1))
    if not args.keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
