"""Warm run start against cold, side by side: a tiny run's cold ``fit``, and sweeps both ways.

    python bench/bench_warm_start.py                  # tiny runs, then 8 runs of the noise sweep
    python bench/bench_warm_start.py --noise-runs 0   # tiny runs only (about 5 minutes)

Three measurements with the real commands (offline W&B, fresh folders):

1. ``fit`` of a tiny run (1 epoch of 2 batches of the quickstart) as a new process: what one run
   costs cold, start-up included (best of ``--repeat``).
2. A sweep of ``--runs`` such tiny runs with ``--workers 1``, warm (the default) and ``--cold``:
   per-run wall time is the span of the runs (first start to last exit, from ``state.json``;
   the warm side's first run also waits for the preloaded parent) over the number of runs.
   Goal: warm per-run <= 0.5x the cold ``fit``.
3. The first ``--noise-runs`` runs of ``configs/sweeps/cpu/noise.yaml`` (10 epochs of mnist-5k)
   with ``--workers 2``, warm and ``--cold``. Goal: cold span / warm span >= 1.25.

Sides alternate and the best of ``--repeat`` is kept; the load average is printed (the machine
may be shared).
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

from bench_sweep import seed_sweep  # this folder: bench/

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "--config",
    str(REPO / "configs" / "quickstart.yaml"),
    "--trainer.max_epochs=1",
    "--trainer.limit_train_batches=2",
    "--trainer.limit_val_batches=2",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]


def fit_environment() -> dict[str, str]:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("LIGHTNING_APP_START", None)
    return env


def cold_fit(folder: Path) -> float:
    """Wall time of one tiny ``fit`` started as a new process."""
    argv = [sys.executable, "-m", "lightning_app", "fit", *TINY, f"--run_dir={folder}"]
    argv.append(f"--wandb.dir={folder}")
    start = time.perf_counter()
    subprocess.run(argv, cwd=REPO, env=fit_environment(), check=True, capture_output=True)
    return time.perf_counter() - start


def tiny_sweep(folder: Path, runs: int) -> Path:
    return seed_sweep(folder, "bench-warm", runs, TINY)


def sweep(path: Path, folder: Path, workers: int, cold: bool, count: int | None = None) -> dict:
    """Run a sweep; the command's wall time, the span of its runs and their number."""
    argv = [sys.executable, "-m", "lightning_app", "sweep", str(path), "--workers", str(workers)]
    argv += ["--dir", str(folder), *(["--cold"] if cold else [])]
    argv += ["--count", str(count)] if count else []
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=REPO, env=fit_environment(), capture_output=True, text=True)
    total = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stdout}\n{proc.stderr}")
    state = json.loads((folder / "state.json").read_text())
    attempts = [a for r in state["runs"].values() for a in r["attempts"]]
    span = max(a["ended"] for a in attempts) - min(a["started"] for a in attempts)
    return {"total": total, "span": span, "runs": len(attempts)}


def best(trials: list[dict], key: str = "span") -> dict:
    return min(trials, key=lambda t: t[key])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6, help="Tiny runs in the tiny sweep.")
    parser.add_argument("--noise-runs", type=int, default=8, help="Noise sweep runs (0: skip).")
    parser.add_argument("--repeat", type=int, default=1, help="Alternate sides; keep the best.")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    fits: list[float] = []
    tiny: dict[str, list[dict]] = {"warm": [], "cold": []}
    noise: dict[str, list[dict]] = {"warm": [], "cold": []}
    with tempfile.TemporaryDirectory(prefix="bench_warm_") as tmp:
        root = Path(tmp)
        path = tiny_sweep(root, args.runs)
        noise_file = REPO / "configs" / "sweeps" / "cpu" / "noise.yaml"
        for i in range(args.repeat):
            fits.append(cold_fit(root / f"fit-{i}"))
            print(f"cold fit, try {i + 1}: {fits[-1]:.1f} s", flush=True)
            for side in ("warm", "cold"):
                result = sweep(path, root / f"tiny-{side}-{i}", 1, side == "cold")
                tiny[side].append(result)
                print(f"tiny sweep {side}, try {i + 1}: {result['span']:.1f} s", flush=True)
            if args.noise_runs:
                for side in ("warm", "cold"):
                    folder = root / f"noise-{side}-{i}"
                    result = sweep(noise_file, folder, 2, side == "cold", args.noise_runs)
                    noise[side].append(result)
                    print(f"noise sweep {side}, try {i + 1}: {result['span']:.1f} s", flush=True)
    load_after = os.getloadavg()[0]
    fit = min(fits)
    print(
        f"\nmachine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores, Python "
        f"{platform.python_version()}, load average {load:.1f} before / {load_after:.1f} after\n"
    )
    print("| measurement | cold (s) | warm (s) | warm / cold |")
    print("|---|---|---|---|")
    warm_run = best(tiny["warm"])["span"] / args.runs
    cold_run = best(tiny["cold"])["span"] / args.runs
    print(f"| tiny run, cold `fit` vs per run of a {args.runs}-run warm sweep | {fit:.1f} | "
          f"{warm_run:.1f} | {warm_run / fit:.2f} |")  # fmt: skip
    print(f"| tiny run, per run of a {args.runs}-run sweep (--workers 1) | {cold_run:.1f} | "
          f"{warm_run:.1f} | {warm_run / cold_run:.2f} |")  # fmt: skip
    if args.noise_runs:
        cold_span, warm_span = best(noise["cold"])["span"], best(noise["warm"])["span"]
        print(f"| noise sweep, first {args.noise_runs} runs (--workers 2), runs span | "
              f"{cold_span:.1f} | {warm_span:.1f} | {warm_span / cold_span:.2f} |")  # fmt: skip
        print(f"\nnoise sweep speed-up (cold / warm): {cold_span / warm_span:.2f}x (goal >= 1.25x)")
    print(f"tiny run: warm per-run / cold fit = {warm_run / fit:.2f} (goal <= 0.5)")


if __name__ == "__main__":
    main()
