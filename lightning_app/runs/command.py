"""``python -m lightning_app export``: write the runs of any source as one tidy table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from jsonargparse import ActionConfigFile, ArgumentParser, DefaultHelpFormatter

from lightning_app.errors import UserError
from lightning_app.runs.option_errors import OneLineOptionParser
from lightning_app.runs.runset import RunSet
from lightning_app.runs.tidy import check_tidy_path, write_tidy

DESCRIPTION = """\
Read logged runs from any source and write them as one tidy table: one row per run x epoch,
columns id, name, group, sweep_id, tags, state, epoch, one per metric, and one per config key
prefixed 'config.' (config.model.hidden_size). The table is itself a source: pass it back as
--source to `analyze` or `export`, or load it with pandas.

Sources: a folder of W&B runs (wandb/ or a sweep's output folder, searched recursively), one
run-<id>.wandb file, wandb://ENTITY/PROJECT (W&B API, cached locally), a Lightning CSVLogger
folder (metrics.csv + config.yaml/hparams.yaml), or a tidy .csv/.parquet.

Runs that cannot be read are listed on stderr with the reason; they never stop the export.
"""

MAX_LISTED = 20


def export(
    source: str,
    to: str,
    group: list[str] | str | None = None,
    sweep: list[str] | str | None = None,
    tags: list[str] | str | None = None,
    state: list[str] | str | None = None,
    metrics: list[str] | str | None = None,
    progress: bool = True,
) -> RunSet:
    """Write the runs of ``source`` to ``to``.

    Args:
        source: Where the runs are: a folder, a .wandb file, wandb://ENTITY/PROJECT, a Lightning
            CSVLogger folder, or a tidy .csv/.parquet.
        to: The table to write, runs.parquet or runs.csv (replaced if it exists).
        group: Keep runs of these groups (W&B group = sweep name, e.g. noise).
        sweep: Keep runs of these W&B sweep ids.
        tags: Keep runs carrying any of these tags.
        state: Keep runs in these states (finished, crashed, running, failed).
        metrics: Keep only these metrics (e.g. test/acc); runs logging none of them are skipped.
        progress: Show a progress bar on an interactive terminal.
    """
    from lightning_app.runs.sources import load_runs

    path = Path(to)
    check_tidy_path(path, "--to")
    if path.exists() and Path(source).exists() and path.resolve() == Path(source).resolve():
        raise UserError(f"--to {to}: this is the --source file; write the table elsewhere")
    runs = load_runs(
        source,
        group=group,
        sweep=sweep,
        tags=tags,
        state=state,
        progress=progress,
        metrics=metrics,
    )
    try:
        write_tidy(runs, path)
    except OSError as err:  # checked writable at start: the disk filled, or the folder went
        raise UserError(f"--to {to}: cannot write the table: {err.strerror or err}") from None
    return runs


class _HelpFormatter(DefaultHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """jsonargparse's help, keeping the description's paragraphs as written."""


def build_parser() -> ArgumentParser:
    parser = OneLineOptionParser(
        prog="python -m lightning_app export",
        description=DESCRIPTION,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--config", action=ActionConfigFile, help="A YAML file of these options.")
    parser.add_function_arguments(export, as_group=False)
    return parser


def main(argv: list[str]) -> None:
    """Entry point of ``export`` (see :data:`lightning_app.commands.EXTRA_COMMANDS`)."""
    parser = build_parser()
    cfg = parser.parse_args(argv)
    runs = export(
        source=cfg.source,
        to=cfg.to,
        group=cfg.group,
        sweep=cfg.sweep,
        tags=cfg.tags,
        state=cfg.state,
        metrics=cfg.metrics,
        progress=cfg.progress,
    )
    print(summary(runs, Path(cfg.to)), flush=True)
    report_problems(runs)


def summary(runs: RunSet, to: Path) -> str:
    epochs = runs.history.index.get_level_values("epoch")
    span = f"epochs {epochs.min()}..{epochs.max()}" if len(epochs) else "no epochs"
    return (
        f"wrote {len(runs)} runs ({len(runs.history)} run x epoch rows, {span}, "
        f"{len(runs.metrics())} metrics, {runs.config.shape[1]} config keys) to {to}"
    )


def report_problems(runs: RunSet, stream: TextIO | None = None) -> None:
    """List skipped runs and warnings on stderr, one line each (the first :data:`MAX_LISTED`)."""
    out = stream if stream is not None else sys.stderr
    for title, items in (
        ("skipped", [f"{s.id}: {s.reason}" for s in runs.skipped]),
        ("warning", [f"{w.id or 'source'}: {w.message}" for w in runs.warnings]),
    ):
        for line in items[:MAX_LISTED]:
            print(f"{title}: {line}", file=out)
        if len(items) > MAX_LISTED:
            print(f"{title}: ... and {len(items) - MAX_LISTED} more", file=out)
