"""Sweeps: W&B sweep files run on this machine, N runs at a time, resumable.

``spec`` reads and checks the file (W&B's format), ``plan`` expands it into runs, ``commandline``
builds each run's command as ``wandb agent`` would, ``validate`` parses every value with the
training CLI, ``state``/``layout`` keep the sweep folder, ``runner`` runs it, ``command`` is the
``python -m lightning_app sweep`` entry point.
"""

from lightning_app.sweeps.commandline import agent_command, check_command, format_args
from lightning_app.sweeps.plan import PlannedRun, plan_runs
from lightning_app.sweeps.spec import SweepParameter, SweepSpec, load_sweep

__all__ = [
    "PlannedRun",
    "SweepParameter",
    "SweepSpec",
    "agent_command",
    "check_command",
    "format_args",
    "load_sweep",
    "plan_runs",
]
