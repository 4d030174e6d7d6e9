"""Analysis time: 1,000 runs x 50 epochs, every built-in analysis, 10,000 permutations.

Not a test: run ``python bench/bench_analysis.py`` and copy the table into BENCHMARKS.md
("## Analysis time"). Times are wall-clock seconds, best of ``--repeat`` runs, measured in
process so they exclude interpreter start-up and reading the runs (the history sources have
their own benchmark). The data is simulated with planted effects: 500 noise runs and a full
5 x 10 x 10 grid of 500 signal runs.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

from lightning_app.analysis import Selection
from lightning_app.analysis.command import Prepared, analyze
from lightning_app.analysis.registry import Registry
from lightning_app.analysis.report import write_report

if __package__ in (None, ""):  # run as `python bench/bench_analysis.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.simulation.synthetic import simulate_runset

BUILT_INS = ["noise-baseline", "signal-effects", "runs-needed", "epoch-dynamics"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--permutations", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    grid = {
        "model.num_layers": [1, 2, 3, 4, 5],
        "data.batch_size": [32, 64, 100, 128, 200, 256, 300, 400, 512, 600],
        "model.hidden_size": [10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
    }
    effects = {
        "model.hidden_size": {
            h: -0.015 + 0.0015 * i for i, h in enumerate(grid["model.hidden_size"])
        },
        "data.batch_size": {b: -0.0004 * i for i, b in enumerate(grid["data.batch_size"])},
    }
    start = time.perf_counter()
    runs = simulate_runset(
        grid,
        effects=effects,
        noise_runs=500,
        epochs=args.epochs,
        tau=8.0,
        defaults={"model.num_layers": 2, "data.batch_size": 100, "model.hidden_size": 100},
        seed=0,
    )
    built = time.perf_counter() - start
    classes, failures = Registry.discover().load(BUILT_INS)
    assert not failures, failures
    selection = Selection("noise", "signal", permutations=args.permutations)

    best: dict[str, float] = {}
    for _ in range(args.repeat):
        prepared = Prepared(
            analyses=[(classes[n](), "built-in", {}) for n in BUILT_INS], order=BUILT_INS
        )
        t0 = time.perf_counter()
        report = analyze(runs, selection, prepared)
        t1 = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            write_report(report, Path(out))
        t2 = time.perf_counter()
        assert not report.failed, [o.error for o in report.failed]
        times = {o.name: o.seconds for o in report.outcomes}
        times["prepare (align runs, find parameters)"] = (t1 - t0) - sum(
            o.seconds for o in report.outcomes
        )
        times["all analyses (prepare + run, figures built)"] = t1 - t0
        times["write report.md/json + PNGs"] = t2 - t1
        times["total"] = t2 - t0
        for key, value in times.items():
            best[key] = min(best.get(key, float("inf")), value)

    print(
        f"{len(runs)} runs x {args.epochs} epochs, {args.permutations} permutations, "
        f"{len(report.context.params)} parameters; simulated in {built:.1f} s; "
        f"{platform.processor() or platform.machine()}, best of {args.repeat}"
    )
    print("| step | seconds |\n| --- | ---: |")
    for key, value in best.items():
        print(f"| {key} | {value:.2f} |")


if __name__ == "__main__":
    main()
