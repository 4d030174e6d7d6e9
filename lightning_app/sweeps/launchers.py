"""The one place where a sweep's launcher is chosen and built (cold, warm or Ray).

Everything else holds a :class:`~lightning_app.sweeps.launch.Launcher` and calls its protocol
(``begin``, ``prepare``, ``ready``, ``start``, ``signal``, ``close``); nothing asks which kind
it has. Importing this module imports neither Ray nor the training code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

from lightning_app.sweeps.launch import Launcher, ProcessLauncher
from lightning_app.sweeps.ray_task import RayLauncher
from lightning_app.sweeps.warm import WarmLauncher

LauncherKind = Literal["cold", "warm", "ray"]


def make_launcher(
    kind: LauncherKind,
    env: Mapping[str, str],
    note: Callable[[str], None] | None = None,
    cwd: Path | None = None,
) -> Launcher:
    """The launcher that starts runs ``kind``'s way.

    ``env`` is the runs' common environment (the warm start's parent imports torch with the
    runs' thread counts); ``note`` is told, once, when a warm start falls back to cold; ``cwd``
    is where Ray tasks start their runs (default: this process's working directory).
    """
    if kind == "warm":
        return WarmLauncher(env, note=note)
    if kind == "ray":
        return RayLauncher(cwd)
    return ProcessLauncher()


__all__ = ["LauncherKind", "make_launcher"]
