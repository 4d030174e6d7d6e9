"""``analyze --wandb``: the report as a W&B run of job type ``analysis`` beside the runs it read.

Summary numbers go to the run summary (``<analysis>/<path>``), every table to a ``wandb.Table``,
every figure to a ``wandb.Image``, findings to one table, and the report folder to an artifact.
Offline mode works like training's: ``$WANDB_MODE``, else online with an API key, else offline.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lightning_app.analysis.report import Report
from lightning_app.analysis.runner import to_jsonable


def resolved_mode(mode: str | None) -> str:
    """The W&B mode: explicit, else ``$WANDB_MODE``, else online with an API key, else offline."""
    if mode:
        return mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


def summary_scalars(report_json: dict[str, Any]) -> dict[str, float | int | str | bool]:
    """Flat ``analysis/path/to/value`` -> scalar for every scalar in the analyses' summaries.

    Per-epoch lists are left to tables; only dict paths become keys, so names stay readable.
    """
    flat: dict[str, float | int | str | bool] = {
        "noise/runs": report_json["noise"]["runs"],
        "signal/runs": report_json["signal"]["runs"],
    }
    for name, summary in report_json["analyses"].items():
        for key, value in _walk(summary, name):
            flat[key] = value
    return flat


def _walk(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{prefix}/{key}")
    elif isinstance(value, bool | int | float | str):
        yield prefix, value


def log_report(
    report: Report,
    files: list[Path],
    *,
    project: str,
    entity: str | None = None,
    mode: str | None = None,
    directory: Path | None = None,
) -> str:
    """Log the written report as a new W&B run; returns the run's id."""
    import wandb

    data = report.to_json()
    c = report.context
    run = wandb.init(
        project=project,
        entity=entity,
        job_type="analysis",
        group="analysis",
        name=f"analysis-{c.signal_group}-vs-{c.noise_group}",
        config=to_jsonable(
            {
                "metric": c.metric,
                "epoch": c.epoch,
                "noise_group": c.noise_group,
                "signal_group": c.signal_group,
                "params": list(c.params),
                "permutations": c.permutations,
                "seed": c.seed,
                "source": report.source,
                "options": {o.name: o.options for o in report.outcomes},
            }
        ),
        mode=resolved_mode(mode),  # type: ignore[arg-type]
        dir=str(directory) if directory else None,
        reinit="finish_previous",
    )
    try:
        run.summary.update(summary_scalars(data))
        payload: dict[str, Any] = {}
        findings = []
        for o in report.outcomes:
            if o.result is None:
                findings.append([o.name, f"failed: {o.error}"])
                continue
            findings += [[o.name, f] for f in o.result.findings]
            for i, table in enumerate(o.result.tables):
                frame = table.frame.astype(object).where(table.frame.notna(), None)
                payload[f"{o.name}/table-{i}"] = wandb.Table(dataframe=frame)
            for fig in o.result.figures:
                path = next((p for p in files if p.name == report.figure_file(o, fig.name)), None)
                if path is not None:
                    payload[f"{o.name}/{fig.name}"] = wandb.Image(str(path), caption=fig.caption)
        payload["findings"] = wandb.Table(columns=["analysis", "finding"], data=findings)
        run.log(payload)
        artifact = wandb.Artifact(
            f"report-{c.signal_group}-vs-{c.noise_group}", type="analysis-report"
        )
        for path in files:
            artifact.add_file(str(path))
        run.log_artifact(artifact)
        return str(run.id)
    finally:
        run.finish()
