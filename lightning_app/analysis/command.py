"""``python -m lightning_app analyze``: run the registered analyses over logged runs.

The parser is built from the registry: every analysis's typed ``__init__`` options become
``--<analysis>.<option>`` flags and ``<analysis>: {option: value}`` keys of a ``--config`` file,
so a plugin's options appear here without any code in this module.
"""

from __future__ import annotations

import sys
from argparse import RawDescriptionHelpFormatter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from jsonargparse import ActionConfigFile, ArgumentParser, DefaultHelpFormatter, Namespace

from lightning_app import adaptive_record
from lightning_app.analysis.base import Analysis
from lightning_app.analysis.context import Selection, build_context
from lightning_app.analysis.decision import RULE_ANALYSIS, DecisionRule
from lightning_app.analysis.execution import Outcome, run_analyses, to_jsonable
from lightning_app.analysis.left_out import skipped_note
from lightning_app.analysis.registry import LoadFailure, Registry
from lightning_app.analysis.report import Report, write_report
from lightning_app.errors import UserError
from lightning_app.runs.option_errors import OneLineOptionParser
from lightning_app.runs.output_paths import check_output_folder
from lightning_app.runs.runset import RunSet

DESCRIPTION = """\
Is the change you see when you vary a hyperparameter bigger than what re-running with another
seed gives? Compares the SIGNAL runs (a sweep over hyperparameters) with the NOISE runs (one
config, seed varies) and writes OUT/report.md, OUT/report.json and PNG figures.

Example:
  python -m lightning_app analyze --source wandb/ --noise noise --signal signal --out report/

Parameters: by default every config key that varies across the signal runs with at least two runs
per value (keys that differ for every run, such as paths and names, are not parameters; seeds are
replicates, never parameters); name them with --params. The p-values come from F tests of an
additive model over all parameters (docs/statistics.md). Analyses: see --list; each one's options
are the --<analysis>.<option> flags below and can also be set in a --config YAML file. Exit
status: 0, 1 if an analysis failed (the report is still written), 2 for a mistake in the input.
"""


class _HelpFormatter(DefaultHelpFormatter, RawDescriptionHelpFormatter):
    """jsonargparse's help with the description's line breaks kept."""


@dataclass
class Prepared:
    """The analyses picked for a run: instances with their options, and failures to report."""

    analyses: list[tuple[Analysis, str, dict[str, Any]]] = field(default_factory=list)
    failures: list[LoadFailure] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    """Names in the order the report shows them."""
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Every loaded analysis's options, selected or not (``AnalysisContext.options``)."""
    rule: DecisionRule = field(default_factory=DecisionRule)
    """The decision rule from signal-effects' options (``AnalysisContext.rule``)."""


def build_parser(
    classes: Mapping[str, type[Analysis]], unreadable: dict[str, str] | None = None
) -> ArgumentParser:
    """The ``analyze`` parser with one option group per analysis class.

    A class whose ``__init__`` jsonargparse cannot read is left out and its reason put in
    ``unreadable`` (when given), so one bad plugin does not break the command.
    """
    parser = OneLineOptionParser(
        prog="python -m lightning_app analyze",
        description=DESCRIPTION,
        default_env=False,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument(
        "--config", action=ActionConfigFile, help="YAML file with any of these options."
    )
    _add_data_options(parser)
    _add_wandb_options(parser)
    parser.add_argument(
        "--list", action="store_true", help="List the registered analyses and exit."
    )
    _add_analysis_options(parser, classes, unreadable)
    return parser


def _add_data_options(parser: ArgumentParser) -> None:
    """Where the runs are, which groups and metric, which analyses, where the report goes."""
    parser.add_argument(
        "--source",
        type=str | None,
        default=None,
        help="Where the runs are: a wandb/ folder of offline runs, a W&B "
        "entity/project, or a tidy file written by `export`.",
    )
    parser.add_argument(
        "--noise",
        type=str | None,
        default=None,
        help="Group of the noise runs (one config, seed varies).",
    )
    parser.add_argument(
        "--signal",
        type=str | None,
        default=None,
        help="Group of the signal runs (the hyperparameter sweep).",
    )
    parser.add_argument("--metric", type=str, default="test/acc", help="Metric to analyse.")
    parser.add_argument(
        "--epoch",
        type=int | Literal["final"],
        default="final",
        help="Epoch at which effects are measured: 'final' (the last epoch all "
        "runs have) or an epoch number.",
    )
    parser.add_argument(
        "--params",
        type=str | list[str] | None,
        default=None,
        help="Comma-separated config keys to treat as parameters, e.g. "
        "model.hidden_size,data.batch_size (default: detected).",
    )
    parser.add_argument(
        "--analyses",
        type=str | list[str] | None,
        default=None,
        help="Comma-separated analyses to run (default: all registered).",
    )
    parser.add_argument("--out", type=str, default="report", help="Folder for the report.")
    parser.add_argument(
        "--permutations",
        type=int,
        default=10_000,
        help="Random splits of the noise runs per parameter (the noise null).",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="Seed of every random split and resample."
    )


def _add_wandb_options(parser: ArgumentParser) -> None:
    """``--wandb`` and where the analysis run goes."""
    parser.add_argument(
        "--wandb",
        action="store_true",
        help="Also log the report as a W&B run (job_type 'analysis').",
    )
    parser.add_argument("--wandb-project", type=str, default="lightning_app", help="W&B project.")
    parser.add_argument("--wandb-entity", type=str | None, default=None, help="W&B entity.")
    parser.add_argument(
        "--wandb-mode",
        type=Literal["online", "offline"] | None,
        default=None,
        help="W&B mode; default: $WANDB_MODE, else online when wandb has credentials "
        "(`wandb login`), else offline.",
    )


def _add_analysis_options(
    parser: ArgumentParser,
    classes: Mapping[str, type[Analysis]],
    unreadable: dict[str, str] | None,
) -> None:
    """One ``--<name>.<option>`` group per analysis class, from its typed ``__init__``."""
    for name, cls in classes.items():
        try:
            parser.add_class_arguments(
                cls, nested_key=name, help=f"{name}: {cls.summary_line()}", fail_untyped=False
            )
        except Exception as err:  # an analysis whose options cannot be read is reported, not fatal
            if unreadable is not None:
                unreadable[name] = f"its options cannot be read: {err}"


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m lightning_app analyze``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    registry = Registry.discover()
    classes, failures = registry.load()
    unreadable: dict[str, str] = {}
    parser = build_parser(classes, unreadable)
    for name, reason in unreadable.items():
        classes.pop(name)
        failures.append(LoadFailure(registry.entries[name], reason))
    cfg = parser.parse_args(argv)
    if cfg.list:
        print_list(registry, classes, failures)
        return
    selected = _check_and_select(cfg, registry, classes)
    prepared = instantiate(selected, classes, failures, cfg, registry)
    params = _names(cfg.params, "--params")
    runs = load_groups(cfg.source, [cfg.noise, cfg.signal])
    selection = Selection(
        noise=cfg.noise,
        signal=cfg.signal,
        metric=cfg.metric,
        epoch=cfg.epoch,
        params=params,
        permutations=cfg.permutations,
        seed=cfg.seed,
    )
    report = analyze(runs, selection, prepared, source=cfg.source)
    out = Path(cfg.out)
    try:
        files = write_report(report, out)
    except OSError as err:  # checked writable at start: the disk filled, or the folder went
        raise UserError(f"--out {out}: cannot write the report: {err.strerror or err}") from None
    from lightning_app.analysis.terminal import print_report

    print_report(report)
    for outcome in report.failed:
        print(f"warning: analysis {outcome.name!r} failed: {outcome.error}", file=sys.stderr)
    print(f"\nreport: {out / 'report.md'}  ({len(files) - 2} figures, report.json)")
    if cfg.wandb:
        from lightning_app.analysis.wandb_publish import log_report

        run_id = log_report(
            report,
            files,
            project=cfg.wandb_project,
            entity=cfg.wandb_entity,
            mode=cfg.wandb_mode,
            directory=out,
        )
        print(f"W&B: logged analysis run {run_id} to project {cfg.wandb_project!r}")
    if report.failed:
        raise SystemExit(1)


def analyze(runs: RunSet, selection: Selection, prepared: Prepared, *, source: str = "") -> Report:
    """Prepare the data once and run every prepared analysis on it (the in-process API)."""
    context, used = build_context(runs, selection)
    context.rule = prepared.rule
    outcomes = [_failed_outcome(f) for f in prepared.failures]
    outcomes += run_analyses(prepared.analyses, used, context)
    order = {name: i for i, name in enumerate(prepared.order)}
    outcomes.sort(key=lambda o: order.get(o.name, len(order)))
    found = adaptive_record.find(source, selection.signal) if source else None
    return Report(
        context,
        outcomes,
        [*runs.skipped, *context.excluded],
        source,
        getattr(used, "warnings", []),
        adaptive=found[1] if found else None,
    )


def _check_and_select(
    cfg: Namespace, registry: Registry, classes: Mapping[str, type[Analysis]]
) -> list[str]:
    """The required options are there, ``--out`` can be written; the analyses to run, in order."""
    for flag in ("source", "noise", "signal"):
        if not cfg[flag]:
            raise UserError(f"--{flag} is required (see --help)")
    check_output_folder(Path(cfg.out), "--out")
    selected = _names(cfg.analyses, "--analyses") or sorted(
        registry.names(), key=lambda n: (classes[n].order if n in classes else 100, n)
    )
    unknown = [n for n in selected if n not in registry.entries]
    if unknown:
        raise UserError(
            f"--analyses: unknown analysis {', '.join(map(repr, unknown))}; registered: "
            f"{', '.join(registry.names())} (see --list)"
        )
    return selected


def instantiate(
    names: Sequence[str],
    classes: Mapping[str, type[Analysis]],
    failures: Sequence[LoadFailure],
    cfg: Namespace,
    registry: Registry,
) -> Prepared:
    """Build the selected analyses with their options; a bad option value is the user's mistake."""
    prepared = Prepared(failures=[f for f in failures if f.entry.name in names], order=list(names))
    for name in classes:
        options = cfg.get(_dest(name))
        prepared.options[name] = options.as_dict() if isinstance(options, Namespace) else {}
    for name in names:
        if name not in classes:
            continue
        kwargs = prepared.options[name]
        try:
            analysis = classes[name](**kwargs)
        except (TypeError, ValueError) as err:
            raise UserError(f"--{name}: {err}") from None
        prepared.analyses.append((analysis, registry.entries[name].package, to_jsonable(kwargs)))
    prepared.rule = DecisionRule.from_options(prepared.options.get(RULE_ANALYSIS, {}))
    return prepared


def load_groups(source: str, groups: list[str]) -> RunSet:
    """Read the runs of the two groups from ``source``.

    Only the two groups are read (a W&B project may hold many more); if one is missing, the
    source is read again unfiltered so the message can name the groups that are there.
    """
    from lightning_app.runs import load_runs

    try:
        runs = load_runs(source, group=groups)
    except UserError:
        runs = RunSet.empty()
    missing = [g for g in groups if g not in runs.groups()]
    if missing:
        everything = load_runs(source, progress=False)
        flag = "--noise" if missing[0] == groups[0] else "--signal"
        raise UserError(
            f"{flag}: no runs in group {missing[0]!r} in {source}; groups found: "
            f"{', '.join(map(repr, everything.groups())) or 'none'}"
            f"{skipped_note(everything, missing[0])}"
        )
    return runs


def print_list(
    registry: Registry, classes: Mapping[str, type[Analysis]], failures: Sequence[LoadFailure]
) -> None:
    """``--list``: name, description and package of every registered analysis."""
    from rich.console import Console
    from rich.table import Table

    broken = {f.entry.name: f.reason for f in failures}
    table = Table(
        title="Registered analyses (entry-point group lightning_app.analyses)", title_justify="left"
    )
    for column in ("name", "description", "package"):
        table.add_column(column)
    ordered = sorted(
        registry.entries.items(),
        key=lambda kv: (classes[kv[0]].order if kv[0] in classes else 100, kv[0]),
    )
    for name, entry in ordered:
        if name in classes:
            description = classes[name].summary_line()
        else:
            description = f"[red]cannot load: {broken.get(name, 'unknown error')}[/]"
        table.add_row(name, description, entry.package)
    for dup in registry.duplicates:
        table.add_row(dup.name, f"[red]{broken.get(dup.name, 'duplicate name')}[/]", dup.package)
    Console(width=max(120, Console().width)).print(table)


def _dest(name: str) -> str:
    """Where jsonargparse stores ``--<name>.*`` options (it turns dashes into underscores)."""
    return name.replace("-", "_")


def _names(value: str | list[str] | None, flag: str) -> list[str] | None:
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [n.strip() for n in items if n.strip()]
    if not names:
        raise UserError(f"{flag} is empty")
    return names


def _failed_outcome(failure: LoadFailure) -> Outcome:
    return Outcome(
        name=failure.entry.name,
        description="(could not be loaded)",
        package=failure.entry.package,
        options={},
        error=f"could not be loaded: {failure.reason}",
    )
