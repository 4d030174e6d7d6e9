"""Benchmark: reading W&B offline run histories into a RunSet (issue 3, BENCHMARKS.md).

    python bench/bench_history.py [--sizes 100 1000] [--repeats 3] [--reference-sample 10]

1. Writes one seed run with the real ``wandb`` client (offline), logging like Lightning's
   WandbLogger: the nested CLI config, then per epoch ``train/loss``, ``val/acc``, ``test/acc`` in
   separate rows with ``epoch`` and ``trainer/global_step`` (10 epochs).
2. Makes N runs from it by rewriting its records (run id, group, seed, metric values) with wandb's
   protobuf classes and framing them with ``frame_payloads`` (checked byte-identical to wandb-core's
   own framing in tests/runs/test_wandb_log.py). One ``wandb.init`` per run would take ~0.6 s each.
3. Reads them with ``load_runs`` in a fresh subprocess per size (so peak memory is this read's),
   ``repeats`` times, and reports the median wall time, runs/s and peak RSS above the baseline
   after imports.
4. Reference: ``wandb leet inspect PATH --json`` (wandb's own decoder, one process per run) on a
   sample of runs, for the same files.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

EPOCHS = 10
STEPS_PER_EPOCH = 600


def write_seed_run(out: Path) -> Path:
    """One real offline run, written by the wandb client; returns its .wandb file."""
    os.environ["WANDB_MODE"] = "offline"
    os.environ["WANDB_SILENT"] = "true"
    import wandb

    config = {
        "seed_everything": 0,
        "model": {"hidden_size": 128, "num_layers": 2, "learning_rate": 0.001, "dropout": 0.0},
        "data": {"batch_size": 100, "root": "data/", "num_workers": 0},
        "trainer": {"max_epochs": EPOCHS, "accelerator": "cpu", "devices": 1, "precision": "32"},
    }
    run = wandb.init(mode="offline", dir=str(out), project="bench", group="noise", config=config)
    rng = random.Random(0)
    for epoch in range(EPOCHS):
        step = (epoch + 1) * STEPS_PER_EPOCH
        acc = 0.9 + 0.008 * epoch + rng.gauss(0, 0.002)
        for metric, value in (("train/loss", 1 / (epoch + 1)), ("val/acc", acc), ("test/acc", acc)):
            run.log({metric: value, "epoch": epoch, "trainer/global_step": step})
    run.finish()
    (path,) = (out / "wandb").glob("offline-run-*/run-*.wandb")
    # wandb 0.31's finish() can return before wandb-core has written the file: wait for it
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if _has_exit_record(path):
            return path
        time.sleep(0.05)
    raise TimeoutError(f"{path}: wandb did not finish writing the seed run")


def _has_exit_record(path: Path) -> bool:
    from wandb.proto import wandb_internal_pb2 as pb

    from lightning_app.runs.wandb_log import LogProblems, iter_payloads

    record = pb.Record()  # type: ignore[attr-defined]  # generated protobuf class
    for payload in iter_payloads(path.read_bytes(), LogProblems()):
        record.ParseFromString(payload)
        if record.WhichOneof("record_type") == "exit":
            return True
    return False


def make_variants(seed: Path, out: Path, count: int, start: int = 0) -> None:
    """``count`` runs like ``seed`` with new ids, groups, seeds and metric values."""
    from wandb.proto import wandb_internal_pb2 as pb

    from lightning_app.runs.wandb_log import LogProblems, frame_payloads, iter_payloads

    payloads = [bytes(p) for p in iter_payloads(seed.read_bytes(), LogProblems())]
    rng = random.Random(start)
    for i in range(start, start + count):
        run_id = "".join(rng.choices(string.ascii_lowercase + string.digits, k=8))
        shift = rng.gauss(0, 0.01)
        records = []
        for payload in payloads:
            record = pb.Record()  # type: ignore[attr-defined]  # generated protobuf class
            record.ParseFromString(payload)
            kind = record.WhichOneof("record_type")
            if kind == "run":
                record.run.run_id = run_id
                record.run.run_group = "noise" if i % 2 == 0 else "signal"
                for item in record.run.config.update:
                    if item.key == "seed_everything":
                        item.value_json = json.dumps(i)
            elif kind == "history":
                for item in record.history.item:
                    key = item.key or ".".join(item.nested_key)
                    if key.endswith("/acc"):
                        item.value_json = json.dumps(float(item.value_json) + shift)
            records.append(record.SerializeToString())
        run_dir = out / f"offline-run-20260101_{i:06d}-{run_id}"
        run_dir.mkdir(parents=True)
        (run_dir / f"run-{run_id}.wandb").write_bytes(frame_payloads(records))


READER = r"""
import json, resource, sys, time
from lightning_app.runs.sources import load_runs
def rss_kb():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmRSS"))
base = rss_kb()
times = []
for _ in range(int(sys.argv[2])):
    t0 = time.perf_counter()
    runs = load_runs(sys.argv[1], progress=False)
    times.append(time.perf_counter() - t0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"times": times, "runs": len(runs), "rows": len(runs.history),
                  "skipped": len(runs.skipped), "base_kb": base, "peak_kb": peak,
                  "history_bytes": int(runs.history.memory_usage(deep=True).sum())}))
"""


def measure_load(source: Path, repeats: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", READER, str(source), str(repeats)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_reference(files: list[Path]) -> float | None:
    """Seconds per run for ``wandb leet inspect --json`` (None if the command is not there)."""
    wandb_cli = shutil.which("wandb")
    if wandb_cli is None:
        return None
    start = time.perf_counter()
    for path in files:
        proc = subprocess.run(
            [wandb_cli, "leet", "inspect", str(path), "--json"],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or '"type":"history"' not in proc.stdout:
            return None
    return (time.perf_counter() - start) / len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-sample", type=int, default=10)
    parser.add_argument("--keep", type=Path, help="write the generated runs here and keep them")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-history-"))
    try:
        t0 = time.perf_counter()
        seed = write_seed_run(work / "seed")
        seed_s = time.perf_counter() - t0
        print(f"seed run written by wandb in {seed_s:.1f} s ({seed.stat().st_size} bytes)")
        rows = []
        made = 0
        root = work / "runs" / "wandb"
        for size in sorted(args.sizes):
            t0 = time.perf_counter()
            make_variants(seed, root, size - made, start=made)
            made = size
            gen_s = time.perf_counter() - t0
            disk = sum(p.stat().st_size for p in root.glob("*/run-*.wandb"))
            result = measure_load(root, args.repeats)
            assert result["runs"] == size and result["rows"] == size * EPOCHS, result
            median = statistics.median(result["times"])
            rows.append(
                {
                    "runs": size,
                    "generate_s": gen_s,
                    "disk_mb": disk / 1e6,
                    "median_s": median,
                    "min_s": min(result["times"]),
                    "runs_per_s": size / median,
                    "peak_rss_mb": result["peak_kb"] / 1024,
                    "rss_above_base_mb": (result["peak_kb"] - result["base_kb"]) / 1024,
                    "history_mb": result["history_bytes"] / 1e6,
                }
            )
        sample = sorted(root.glob("*/run-*.wandb"))[: args.reference_sample]
        reference = measure_reference(sample)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print(
        "| runs x 10 epochs | on disk | load_runs median (min) | runs/s | peak RSS "
        "(above imports) | history frame |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['runs']:,} | {r['disk_mb']:.1f} MB | {r['median_s']:.2f} s ({r['min_s']:.2f} s)"
            f" | {r['runs_per_s']:,.0f} | {r['peak_rss_mb']:.0f} MB (+{r['rss_above_base_mb']:.0f}"
            f" MB) | {r['history_mb']:.2f} MB |"
        )
    made_s = sum(r["generate_s"] for r in rows)
    print(f"\n{rows[-1]['runs']:,} runs generated from the seed in {made_s:.1f} s")
    if len(rows) >= 2:
        small, big = rows[0], rows[-1]
        growth = (big["median_s"] / small["median_s"]) / (big["runs"] / small["runs"])
        print(
            f"\ntime per run at {big['runs']} vs {small['runs']} runs: {growth:.2f}x (1.0 = linear)"
        )
    if reference is None:
        print("\nreference: `wandb leet inspect --json` unavailable here")
    else:
        ours = rows[-1]["median_s"] / rows[-1]["runs"]
        print(
            f"\nreference: `wandb leet inspect PATH --json`, one process per run, "
            f"{len(sample)} runs: {reference:.2f} s/run ({1 / reference:.1f} runs/s) -> "
            f"{reference / ours:,.0f}x "
            f"slower than load_runs per run; 1,000 runs would take ~{reference * 1000 / 60:.0f} min"
        )


if __name__ == "__main__":
    main()
