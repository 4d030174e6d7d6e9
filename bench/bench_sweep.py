"""Sweep parallelism: the same small sweep with ``--workers 1`` and ``--workers 2``, side by side.

    python bench/bench_sweep.py            # 8 runs of a small model, results as a Markdown table
    python bench/bench_sweep.py --runs 12 --hidden 16 --batches 40 --repeat 3
    python bench/bench_sweep.py --ray      # the local runner (--workers 2) against Ray, 2 CPUs

Each side is the real command, ``python -m lightning_app sweep FILE --workers N``, in a fresh
folder (offline W&B). ``--workers 1`` gives its one run every core; ``--workers 2`` splits the
cores between two runs. Two times are reported: the whole command (``total``: includes checking
every run with the training CLI once, about 10 s) and the runs themselves (``runs``: first start
to last exit, from the sweep's ``state.json``). The goal is ``runs`` ratio >= 1.7 on 2 cores.
With ``--repeat N`` the two sides alternate N times and the best time of each is kept (the
machine may be shared; every measurement is printed). Runs start warm, as the sweep's default;
``--cold`` starts them as new processes (bench/bench_warm_start.py compares the two).

``--ray`` compares the local runner with ``--backend ray`` on this machine instead: ``--workers 2
--cold`` (two new processes at a time, 1 thread each) against a private Ray instance with 2 CPUs
(``--backend ray --threads 1``: two tasks at a time, each starting the same command as a new
process on the node). ``total`` then includes starting and stopping Ray.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def seed_sweep(folder: Path, name: str, runs: int, fit_args: list[str]) -> Path:
    """A grid sweep file over ``runs`` seeds of ``fit`` with ``fit_args``, written in ``folder``."""
    data = {
        "name": name,
        "method": "grid",
        "parameters": {"seed_everything": {"values": list(range(runs))}},
        "command": [
            "${env}",
            "${interpreter}",
            "-m",
            "lightning_app",
            "fit",
            *fit_args,
            f"--wandb.group={name}",
            "${args}",
        ],
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def sweep_file(folder: Path, runs: int, hidden: int, batches: int, epochs: int) -> Path:
    return seed_sweep(
        folder,
        "bench",
        runs,
        [
            "--config",
            str(REPO / "configs" / "quickstart.yaml"),
            f"--model.hidden_size={hidden}",
            f"--trainer.max_epochs={epochs}",
            f"--trainer.limit_train_batches={batches}",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
        ],
    )


def run(
    path: Path, workers: int, folder: Path, cold: bool = False, flags: list[str] | None = None
) -> dict[str, float]:
    """Run the sweep; return the command's wall time and the span of its runs."""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lightning_app",
            "sweep",
            str(path),
            "--workers",
            str(workers),
            "--dir",
            str(folder),
            *(["--cold"] if cold else []),
            *(flags or []),
        ],
        cwd=path.parent,
        env=env,
        capture_output=True,
        text=True,
    )
    total = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"sweep with --workers {workers} failed:\n{proc.stdout}\n{proc.stderr}")
    attempts = [a for r in json.loads((folder / "state.json").read_text())["runs"].values()
                for a in r["attempts"]]  # fmt: skip
    span = max(a["ended"] for a in attempts) - min(a["started"] for a in attempts)
    per_run = sum(a["ended"] - a["started"] for a in attempts) / len(attempts)
    return {"total": total, "runs": span, "per_run": per_run, "count": len(attempts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8, help="Runs in the sweep (seeds).")
    parser.add_argument("--hidden", type=int, default=16, help="model.hidden_size.")
    parser.add_argument(
        "--batches", type=int, default=70, help="trainer.limit_train_batches (70: all of mnist-5k)."
    )
    parser.add_argument("--epochs", type=int, default=2, help="trainer.max_epochs.")
    parser.add_argument("--repeat", type=int, default=1, help="Alternate runs; keep the best.")
    parser.add_argument("--cold", action="store_true", help="Start runs cold (sweep --cold).")
    parser.add_argument("--ray", action="store_true", help="Local --workers 2 against Ray.")
    args = parser.parse_args()
    if args.ray:
        compare_ray(args)
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        path = sweep_file(Path(tmp), args.runs, args.hidden, args.batches, args.epochs)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        trials: dict[int, list[dict[str, float]]] = {1: [], 2: []}
        for i in range(args.repeat):
            for w in (1, 2):
                trials[w].append(run(path, w, Path(tmp) / f"workers{w}-{i}", args.cold))
                print(f"workers {w}, try {i + 1}: runs {trials[w][-1]['runs']:.1f} s", flush=True)
        results = {w: min(t, key=lambda r: r["runs"]) for w, t in trials.items()}
        load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    one, two = results[1], results[2]
    print(f"machine: {platform.machine()}, {cores} cores, {platform.python_version()}, "
          f"load average {load:.1f} before / {load_after:.1f} after")  # fmt: skip
    print(f"sweep: {args.runs} runs, hidden {args.hidden}, {args.epochs} epoch(s) x "
          f"{args.batches} batches of mnist-5k\n")  # fmt: skip
    print("| workers | threads/run | total (s) | runs (s) | mean run (s) |")
    print("|---|---|---|---|---|")
    for workers, res in results.items():
        threads = max(1, (cores or 1) // workers)
        print(f"| {workers} | {threads} | {res['total']:.1f} | {res['runs']:.1f} | "
              f"{res['per_run']:.1f} |")  # fmt: skip
    print(f"\nratio workers 2 / workers 1: runs {one['runs'] / two['runs']:.2f}x, "
          f"total {one['total'] / two['total']:.2f}x (goal: runs >= 1.7x)")  # fmt: skip


SIDES = {
    "local --workers 2 --cold": ["--cold"],
    "--backend ray (2 CPUs)": ["--backend", "ray", "--threads", "1"],
}


def compare_ray(args: argparse.Namespace) -> None:
    """The local runner against a private Ray instance on this machine, alternating."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    trials: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="bench_sweep_ray_") as tmp:
        path = sweep_file(Path(tmp), args.runs, args.hidden, args.batches, args.epochs)
        for i in range(args.repeat):
            for n, (side, flags) in enumerate(SIDES.items()):
                result = run(path, 2, Path(tmp) / f"side{n}-{i}", flags=flags)
                trials[side].append(result)
                loads.append(os.getloadavg()[0])
                print(f"{side}, try {i + 1}: runs {result['runs']:.1f} s, "
                      f"total {result['total']:.1f} s", flush=True)  # fmt: skip
    best = {side: min(t, key=lambda r: r["runs"]) for side, t in trials.items()}
    print(f"machine: {platform.machine()}, {cores} cores, {platform.python_version()}, "
          f"load average {min(loads):.1f}-{max(loads):.1f} while measured")  # fmt: skip
    print(f"sweep: {args.runs} runs, hidden {args.hidden}, {args.epochs} epoch(s) x "
          f"{args.batches} batches of mnist-5k\n")  # fmt: skip
    print("| side | total (s) | runs (s) | mean run (s) |")
    print("|---|---|---|---|")
    for side, res in best.items():
        print(f"| {side} | {res['total']:.1f} | {res['runs']:.1f} | {res['per_run']:.1f} |")
    local, ray = best.values()
    print(f"\nratio local / ray (time, >1: Ray slower): runs {ray['runs'] / local['runs']:.2f}x, "
          f"total {ray['total'] / local['total']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
