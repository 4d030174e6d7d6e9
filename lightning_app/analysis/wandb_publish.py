"""``analyze --wandb``: the report as a W&B run of job type ``analysis`` beside the runs it read.

Summary numbers go to the run summary (``<analysis>/<path>``), every table to a ``wandb.Table``,
every figure to a ``wandb.Image``, findings to one table, and the report folder to an artifact.
The W&B mode follows the same rule as training (``lightning_app.wandb_mode``): ``--wandb-mode`` >
``$WANDB_MODE`` > online with wandb credentials > offline.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lightning_app.analysis.execution import to_jsonable
from lightning_app.analysis.report import Report
from lightning_app.errors import UserError
from lightning_app.wandb_mode import resolve_mode, unreachable


def _payload(report: Report, files: list[Path]) -> dict[str, Any]:
    """Every table as a ``wandb.Table``, every written figure as a ``wandb.Image``, and the
    findings (or each failure) as one table."""
    import wandb

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
    return payload


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

    choice = resolve_mode(flag=mode, flag_name="--wandb-mode")
    c = report.context
    try:
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
            mode=choice.mode,
            dir=str(directory) if directory else None,
            reinit="finish_previous",
        )
    except wandb.errors.CommError as err:
        raise UserError(
            f"{unreachable(choice, err)}; log offline with --wandb-mode offline"
        ) from None
    try:
        run.summary.update(summary_scalars(report.to_json()))
        run.log(_payload(report, files))
        artifact = wandb.Artifact(
            f"report-{c.signal_group}-vs-{c.noise_group}", type="analysis-report"
        )
        for path in files:
            artifact.add_file(str(path))
        run.log_artifact(artifact)
        return str(run.id)
    finally:
        run.finish()
