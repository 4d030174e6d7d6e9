"""``python -m lightning_app``: every subcommand and where it lives.

``fit|validate|test|predict`` are LightningCLI's (``lightning_app.cli``). The others are entries
``"module:function"``; the function takes the remaining argv and is imported only when its command
runs, so ``analyze`` never imports torch or Lightning and ``fit`` never imports the analysis stack.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from lightning_app.errors import user_errors

EXTRA_COMMANDS: dict[str, tuple[str, str]] = {
    "sweep": ("lightning_app.sweeps.command:main", "Run a W&B-format sweep file locally."),
    "analyze": ("lightning_app.analysis.command:main", "Run the analyses over logged runs."),
    "export": ("lightning_app.runs.command:main", "Write runs from any source as one tidy file."),
}


def load_command(name: str) -> Callable[[list[str]], None]:
    """Import the function implementing subcommand ``name``."""
    target, _ = EXTRA_COMMANDS[name]
    module_name, func_name = target.split(":")
    func: Callable[[list[str]], None] = getattr(importlib.import_module(module_name), func_name)
    return func


LIGHTNING_COMMANDS = {
    "fit": "Train the BDRNN (LightningCLI: --config, --print_config, --model.hidden_size=64 ...).",
    "validate": "Evaluate a checkpoint on the validation split.",
    "test": "Evaluate a checkpoint on the test split.",
    "predict": "Predict digits with a checkpoint.",
}


def usage() -> str:
    """The top-level help: every subcommand, Lightning's and ours."""
    rows = {**LIGHTNING_COMMANDS, **{name: help for name, (_, help) in EXTRA_COMMANDS.items()}}
    lines = [f"  {name:<9} {help}" for name, help in rows.items()]
    return (
        "usage: python -m lightning_app COMMAND [--help] ...\n\n"
        "Tell signal from noise in hyperparameter search.\n\ncommands:\n" + "\n".join(lines)
    )


@contextmanager
def interrupted_quietly() -> Iterator[None]:
    """Ctrl-C ends the command with one line and exit status 130 (128 + SIGINT), no traceback."""
    try:
        yield
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        raise SystemExit(130) from None


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m lightning_app``."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        raise SystemExit(0 if args else 2)
    with user_errors(), interrupted_quietly():
        if args and args[0] in EXTRA_COMMANDS:
            load_command(args[0])(args[1:])
            return
        from lightning_app.cli import AppCLI

        AppCLI(args=argv)  # None: LightningCLI reads sys.argv itself, as DDP's relaunch expects
