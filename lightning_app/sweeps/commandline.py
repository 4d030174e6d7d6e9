"""A run's command line, built from the sweep file's ``command`` the way ``wandb agent`` builds it.

``wandb agent`` (``wandb/wandb_agent.py``, ``wandb/sdk/launch/sweeps/utils.py``) replaces an item
that is exactly ``${name}`` by a list (``${args}`` -> ``--key=value`` per parameter, values
formatted with Python's ``str``; ``${interpreter}`` -> ``python``; ``${env}`` -> ``/usr/bin/env``;
``${program}`` -> the file's ``program``), replaces ``${envvar:NAME}`` inside any item by that
environment variable, and keeps every other item as it is. The local runner builds the same list,
except that it runs this Python (``sys.executable``) directly instead of ``/usr/bin/env python``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lightning_app.errors import UserError
from lightning_app.sweeps.spec import SweepSpec

ARG_MACROS = (
    "args_no_equals",
    "args_no_hyphens",
    "args_no_boolean_flags",
    "args_json",
    "args_json_file",
    "args_append_hydra",
    "args_override_hydra",
)
MACRO = re.compile(r"^\$\{([A-Za-z_:0-9]*)\}$")
ENVVAR = re.compile(r"\$\{envvar:([A-Z0-9_]*)\}")
MODULE = "lightning_app"
RUNNER_KEYS = ("run_dir", "wandb.dir", "wandb.group")
"""Config keys the local runner sets for every run; a sweep may not vary them."""


@dataclass(frozen=True)
class CommandTemplate:
    """A checked ``command``: where our CLI's arguments start and where ``${args}`` goes."""

    items: tuple[str, ...]
    cli_start: int
    """Index of the first item after ``-m lightning_app`` (the subcommand, e.g. ``fit``)."""


def check_command(spec: SweepSpec) -> CommandTemplate:
    """The sweep's command must run ``-m lightning_app`` and pass the parameters as ``${args}``."""
    items = spec.command
    where = f"{spec.path}: command"
    if items.count("${args}") != 1:
        found = [m for item in items if (m := MACRO.match(item)) and m.group(1) in ARG_MACROS]
        hint = f" ({found[0].group(0)} gives the CLI arguments it cannot parse)" if found else ""
        raise UserError(
            f"{where} must contain the item ${{args}} exactly once, which passes each parameter "
            f"as --key=value{hint}"
        )
    for item in items:
        match = MACRO.match(item)
        if match is None:
            if "${" in ENVVAR.sub("", item):
                raise UserError(f"{where}: {item!r} mixes a macro with text; W&B keeps it as is")
            continue
        macro = match.group(1)
        if macro in ARG_MACROS:
            raise UserError(
                f"{where}: ${{{macro}}} passes parameters in a form the training CLI does not "
                "read; use ${args} (--key=value)"
            )
        if macro == "program" and spec.program is None:
            raise UserError(f"{where} uses ${{program}} but the file sets no program")
        if macro not in ("env", "interpreter", "program", "args"):
            raise UserError(f"{where}: unknown macro ${{{macro}}}")
    for i in range(len(items) - 1):
        if items[i] == "-m" and items[i + 1] == MODULE:
            cli_start = i + 2
            break
    else:
        raise UserError(
            f"{where} must run `${{interpreter}} -m {MODULE} fit --config ... ${{args}}`, "
            f"got {' '.join(items)!r}"
        )
    if items.index("${args}") < cli_start:
        raise UserError(f"{where}: ${{args}} must come after `-m {MODULE} <subcommand>`")
    for item in items[cli_start:]:
        if MACRO.match(item) and item != "${args}":
            raise UserError(f"{where}: {item} after `-m {MODULE}` would reach the CLI as is")
    return CommandTemplate(items, cli_start)


def format_args(params: Mapping[str, Any]) -> list[str]:
    """``${args}``: ``--key=value`` per parameter, the value formatted by ``str()`` (as W&B)."""
    return [f"--{name}={value}" for name, value in params.items()]


def agent_command(
    template: CommandTemplate,
    params: Mapping[str, Any],
    *,
    program: str | None = None,
    interpreter: Sequence[str] = ("python",),
    env: Sequence[str] = ("/usr/bin/env",),
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """The argv ``wandb agent`` runs for ``params``; ``interpreter``/``env`` as the agent sets them.

    The local runner passes ``interpreter=(sys.executable,)`` and ``env=()``.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Sequence[str]] = {
        "args": format_args(params),
        "interpreter": interpreter,
        "env": env,
        "program": [program] if program is not None else [],
    }
    argv: list[str] = []
    for item in template.items:
        item = _envvars(item, environ)
        match = MACRO.match(item)
        argv.extend(values.get(match.group(1), ()) if match else [item])
    return argv


def local_command(
    template: CommandTemplate, params: Mapping[str, Any], program: str | None, extra: list[str]
) -> list[str]:
    """The argv the local runner starts: the agent's, run by this Python, plus ``extra``."""
    argv = agent_command(template, params, program=program, interpreter=(sys.executable,), env=())
    return [*argv, *extra]


def cli_arguments(
    template: CommandTemplate, params: Mapping[str, Any], extra: Sequence[str] = ()
) -> list[str]:
    """The arguments our CLI receives (after ``-m lightning_app``): what validation parses."""
    at = template.items.index("${args}")
    head = [_envvars(item) for item in template.items[template.cli_start : at]]
    tail = [_envvars(item) for item in template.items[at + 1 :]]
    return [*head, *format_args(params), *tail, *extra]


def _envvars(item: str, environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    return ENVVAR.sub(lambda m: environ.get(m.group(1), m.group(1)), item)
