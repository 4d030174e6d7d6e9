"""Write offline W&B runs with the real ``wandb`` client, logging the way Lightning does.

Run as a script (``python wandb_writer.py OUT_DIR SPECS_JSON``) so each test session's wandb
service and global state stay out of the pytest process. A spec is a dict::

    {"group": "noise", "tags": ["cpu"], "config": {...nested CLI config...},
     "epochs": 4, "acc0": 0.5, "exit_code": 0,
     "metrics": ["train/loss", "val/acc", "test/acc"],   # optional
     "config_update": {...},                                # optional, like WandbLogger
     "extra_rows": [{...}, ...],                            # optional, logged after the epochs
     "text_rows": [{...}, ...],                             # optional, logged as given (text)
     "id": "abc", "resume": "allow", "start_epoch": 2}      # optional: resume a run by id

Every epoch logs each metric in its own ``run.log`` call with ``epoch`` and
``trainer/global_step``, as Lightning's WandbLogger does (training end, then validation, then
test), so readers must join rows by epoch.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

STEPS_PER_EPOCH = 10
DEFAULT_METRICS = ("train/loss", "val/acc", "test/acc")


def metric_value(spec: dict[str, Any], metric: str, epoch: int) -> float:
    """The value a spec logs: deterministic, so tests can check exact numbers."""
    acc0 = float(spec.get("acc0", 0.5))
    if metric == "train/loss":
        return 1.0 / (epoch + 1) + acc0 / 10
    if metric == "val/acc":
        return acc0 + 0.01 * epoch
    return acc0 + 0.02 * epoch - 0.001


def write_runs(out_dir: Path, specs: list[dict[str, Any]]) -> list[str]:
    os.environ["WANDB_MODE"] = "offline"
    os.environ["WANDB_SILENT"] = "true"
    os.environ.setdefault("WANDB_DISABLE_GIT", "true")
    import wandb

    ids = []
    for spec in specs:
        run = wandb.init(
            mode="offline",
            dir=str(out_dir),
            project="signal-noise-tests",
            group=spec.get("group"),
            tags=spec.get("tags"),
            config=spec.get("config"),
            name=spec.get("name"),
            id=spec.get("id"),
            resume=spec.get("resume"),
            settings=wandb.Settings(
                console="off",
                x_disable_stats=True,
                x_disable_meta=True,
                x_disable_machine_info=True,
            ),
        )
        if spec.get("config_update"):
            run.config.update(spec["config_update"], allow_val_change=True)
        metrics = spec.get("metrics", DEFAULT_METRICS)
        start = int(spec.get("start_epoch", 0))
        for epoch in range(start, start + int(spec.get("epochs", 0))):
            step = (epoch + 1) * STEPS_PER_EPOCH
            for metric in metrics:
                run.log(
                    {
                        metric: metric_value(spec, metric, epoch),
                        "epoch": epoch,
                        "trainer/global_step": step,
                    }
                )
        for row in spec.get("extra_rows", []):
            run.log({k: (float(v) if isinstance(v, str) else v) for k, v in row.items()})
        for row in spec.get("text_rows", []):
            run.log(row)
        ids.append(run.id)
        run.finish(exit_code=int(spec.get("exit_code", 0)))
        wait_until_flushed(Path(run.dir).parent)
    return ids


def wait_until_flushed(run_dir: Path, timeout_s: float = 60.0) -> None:
    """Wait until the run's file holds its exit record.

    wandb 0.31's ``run.finish()`` in offline mode can return before wandb-core has written the
    file (seen here: 7 bytes right after ``finish``, complete half a second later).
    """
    from wandb.proto import wandb_internal_pb2 as pb

    from lightning_app.runs.wandb_log import LogProblems, iter_payloads

    (path,) = run_dir.glob("run-*.wandb")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = pb.Record()
        for payload in iter_payloads(path.read_bytes(), LogProblems()):
            record.ParseFromString(payload)
            if record.WhichOneof("record_type") == "exit":
                return
        time.sleep(0.05)
    raise TimeoutError(f"{path}: no exit record after {timeout_s} s")


if __name__ == "__main__":
    target, specs_json = Path(sys.argv[1]), sys.argv[2]
    print(json.dumps(write_runs(target, json.loads(Path(specs_json).read_text()))))
