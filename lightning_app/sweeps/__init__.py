"""Sweeps: W&B sweep files run on this machine, N runs at a time, resumable.

``spec`` reads and checks the file (W&B's format), ``plan`` expands it into runs, ``commandline``
builds each run's command as ``wandb agent`` would, ``validate`` parses every value with the
training CLI, ``state``/``layout`` keep the sweep folder, ``runner`` runs it, ``command`` is the
``python -m lightning_app sweep`` entry point.

The launcher seam: the runner turns each start into a ``launch.RunRequest`` (identity, argv,
environment, log, ``Resources``); a ``scheduling.Scheduler`` (CPU slots, GPU slots, Ray requests)
decides which runs start and what they hold; a ``launch.Launcher`` built by
``launchers.make_launcher`` (cold, ``warm``, Ray's ``ray_task``) starts it; ``processes`` is the
one place process groups are signalled, stopped and killed.
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
