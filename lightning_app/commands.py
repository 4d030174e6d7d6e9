"""The non-Lightning subcommands of ``python -m lightning_app`` and where each lives.

Each entry is ``"module:function"``; the function takes the remaining argv (a list of strings) and
is imported only when its command runs, so ``fit`` never imports the analysis stack and vice versa.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

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
