"""Check every run's arguments with the training CLI's own parser before any run starts.

The parser is LightningCLI's (built by :class:`lightning_app.cli.AppCLI`, nothing instantiated),
so a key the CLI does not know, a value of the wrong type or a config file that does not load is
found in seconds, in this process, instead of in the first run's log minutes later. Each distinct
``(parameter, value)`` is parsed once on top of the command's fixed arguments (a grid of 210 runs
over 3+7+10 values costs 20 parses, ~50 ms each), plus the first run with all its values.
"""

from __future__ import annotations

import difflib
from argparse import ArgumentError
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from lightning_app.errors import UserError
from lightning_app.sweeps import value_types
from lightning_app.sweeps.commandline import RUNNER_KEYS, CommandTemplate, cli_arguments
from lightning_app.sweeps.plan import PlannedRun
from lightning_app.sweeps.spec import GRID_KINDS, SweepParameter

SUBCOMMANDS = ("fit", "validate", "test", "predict")
DRAWS_CHECKED = 5
"""Draws of a continuous distribution parsed per parameter (they all have one type)."""


class _ParserReady(Exception):
    def __init__(self, parser: Any) -> None:
        self.parser = parser


@cache
def training_parser() -> Any:
    """The ``python -m lightning_app`` parser with fit/validate/test/predict subcommands, built
    with jsonargparse's ``exit_on_error=False``: a bad argument raises ``ArgumentError``."""
    from lightning_app.cli import AppCLI

    class ParserOnly(AppCLI):
        def parse_arguments(self, parser: Any, args: Any) -> None:
            raise _ParserReady(parser)

    raising = {"exit_on_error": False}
    try:
        ParserOnly(args=[], parser_kwargs={**raising, **dict.fromkeys(SUBCOMMANDS, raising)})
    except _ParserReady as ready:
        return ready.parser
    raise AssertionError("LightningCLI parsed no arguments")  # pragma: no cover


def parse(args: Sequence[str]) -> Any:
    """Parse ``args`` (a subcommand and its options); raises :class:`ParseError`."""
    from lightning_app.cli_errors import check_config_files, one_line

    check_config_files(list(args))
    try:
        return training_parser().parse_args(list(args))
    except ArgumentError as err:
        raise ParseError(one_line(str(err))) from None


class ParseError(Exception):
    """The CLI parser's complaint about a command line, as one line."""


def known_keys(config: Any) -> set[str]:
    """Every dotted key a subcommand's parsed ``config`` accepts (``model.hidden_size``,
    ``trainer.max_epochs``): its keys, with the ``init_args`` level of the model's and
    DataModule's classes (the class the command selects) left out, as sweeps spell them."""
    keys: set[str] = set()
    for key in config.keys():  # noqa: SIM118 - Namespace is not iterable; keys() are dotted
        parts = [part for part in key.split(".") if part != "init_args"]
        keys.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return keys


def command_group(template: CommandTemplate) -> str | None:
    """The W&B group the sweep's command sets (its config file or a ``--wandb.group``)."""
    fixed = cli_arguments(template, {})
    subcommand = fixed[0] if fixed else ""
    try:
        group = parse(fixed)[subcommand]["wandb"]["group"]
    except (ParseError, KeyError, TypeError):
        return None
    return str(group) if group is not None else None


def _subparser(subcommand: str) -> Any:
    return training_parser()._subcommands_action._name_parser_map[subcommand]


def _value_refusal(
    name: str,
    value: Any,
    subcommand: str,
    base: Any,
    parameters: Sequence[SweepParameter],
    err: ParseError,
) -> str:
    """Why the CLI refused ``--name=value``: in the key's own type where it can be told (the
    parser's own message names the whole ``model`` Union for ``model.hidden_size``)."""
    typehint = value_types.key_type(_subparser(subcommand), base[subcommand], name)
    told = _refusal(name, value, typehint, parameters) if typehint is not None else None
    return told or f"parameters.{name}: the CLI rejects --{name}={value}: {err}"


def _refusal(name: str, value: Any, hint: Any, parameters: Sequence[SweepParameter]) -> str | None:
    """The value's fault in the key's own terms (None: nothing more to say than the parser)."""
    if value_types.is_list(hint) and not isinstance(value, list):
        param = next(p for p in parameters if p.name == name)
        values = param.grid_values() if param.distribution in GRID_KINDS else [value]
        return f"parameter {name} value {value!r}: {value_types.list_advice(name, values)}"
    if value is None:
        return (
            f"parameter {name} value null: W&B passes it as --{name}=None, the text None, "
            f"not null; expected {value_types.describe(hint)}"
        )
    if isinstance(value, list | dict) and not value_types.accepts(hint, str(value)):
        return (
            f"parameter {name} value {value!r}: W&B passes it as --{name}={value}, which does not "
            f"read back as {value_types.describe(hint)} (a quote inside an item breaks it)"
        )
    if not value_types.accepts(hint, str(value)):
        return f"parameter {name} value {value!r}: expected {value_types.describe(hint)}"
    return None


def validate_runs(
    template: CommandTemplate,
    runs: Sequence[PlannedRun],
    parameters: Sequence[SweepParameter],
    runner_args: Sequence[str],
    where: str,
) -> Mapping[str, Any]:
    """Parse the command, each parameter value and the first run; return the first run's config.

    Values written in the file (``value``, ``values``, a grid's integers) are each parsed once;
    of a continuous distribution's draws the first few are, as they all have the same type.

    Raises:
        UserError: naming the parameter (and value) the CLI rejects.
    """
    names = [p.name for p in parameters]
    drawn = {p.name for p in parameters if p.distribution not in GRID_KINDS}
    for name in names:
        if name in RUNNER_KEYS:
            raise UserError(f"{where}: parameters.{name} is set by the sweep runner for each run")
    fixed = cli_arguments(template, {}, runner_args)
    subcommand = fixed[0] if fixed else ""
    try:
        base = parse(fixed)
    except ParseError as err:
        raise UserError(f"{where}: the command does not parse: {err}") from None
    keys = known_keys(base[subcommand]) if subcommand in SUBCOMMANDS else set()
    for name in names:
        if name not in keys and name != "config":
            close = difflib.get_close_matches(name, sorted(keys), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UserError(
                f"{where}: parameters.{name} is not a config key of "
                f"`python -m lightning_app {subcommand}`{hint}"
            )
    seen: set[tuple[str, str]] = set()
    checked = dict.fromkeys(names, 0)
    for run in runs:
        for name, value in run.params.items():
            if (name, str(value)) in seen or (name in drawn and checked[name] >= DRAWS_CHECKED):
                continue
            seen.add((name, str(value)))
            checked[name] += 1
            try:
                parse(cli_arguments(template, {name: value}, runner_args))
            except ParseError as err:
                raise UserError(
                    f"{where}: {_value_refusal(name, value, subcommand, base, parameters, err)}"
                ) from None
    if not runs:
        return base
    try:
        return parse(cli_arguments(template, runs[0].params, runner_args))
    except ParseError as err:
        raise UserError(f"{where}: run {runs[0].key} does not parse: {err}") from None
