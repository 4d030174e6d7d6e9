"""The one W&B mode rule, shared by ``fit`` (and the other run commands), ``sweep`` and ``analyze``.

Precedence: an explicit flag (``--wandb.mode``, ``--wandb-mode``) > ``$WANDB_MODE`` > the
``mode`` that ``wandb offline`` / ``wandb disabled`` store in wandb's settings files (``wandb
online`` clears it) > the config file's ``wandb.mode`` > automatic. The environment and wandb's
own settings are the user's, a config file is the project's (often shared): the user's wins.
Automatic is ``online`` when wandb has credentials
(``$WANDB_API_KEY``, ``$WANDB_IDENTITY_TOKEN_FILE``, or the netrc entry ``wandb login`` writes for
the W&B host) or the process runs under ``wandb agent`` (``$WANDB_SWEEP_ID``); ``offline``
otherwise, so a laptop without an account never needs one.

Credentials are looked up the way wandb 0.31 does (``wandb/sdk/lib/wbauth``), with the standard
library, because wandb's own lookup is private and ``wandb.login`` writes wandb's settings file.
The server is wandb's too: ``$WANDB_BASE_URL`` > the workspace settings file (``./wandb/settings``)
> the global one (``$WANDB_CONFIG_DIR/settings``, else ``~/.config/wandb/settings``, where
``wandb login --host`` stores ``base_url``) > wandb's default (``wandb/sdk/lib/settings_file.py``).
"""

from __future__ import annotations

import configparser
import netrc
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import urlsplit

from lightning_app.errors import UserError

WandbMode = Literal["online", "offline", "disabled"]
MODES: tuple[str, ...] = get_args(WandbMode)
# Aliases wandb 0.31 accepts in WANDB_MODE (wandb_settings.Settings.mode) and what they mean.
_ALIASES = {"dryrun": "offline", "run": "online"}
DEFAULT_BASE_URL = "https://api.forge.coreweave.com"
"""wandb 0.31's default server; ``wandb login`` stores its key under this host or, before 0.31,
under the W&B API host behind it."""
_DEFAULT_HOSTS = ("api.forge.coreweave.com", "api.wandb.ai")


@dataclass(frozen=True)
class ModeChoice:
    """A resolved W&B mode and why it was chosen (shown to the user)."""

    mode: WandbMode
    reason: str

    def __str__(self) -> str:
        return f"{self.mode} ({self.reason})"


def resolve_mode(
    *,
    flag: str | None = None,
    config: str | None = None,
    flag_name: str = "--wandb.mode",
    env: Mapping[str, str] | None = None,
) -> ModeChoice:
    """The mode a run logs in: ``flag`` > ``$WANDB_MODE`` > wandb's settings > ``config`` >
    automatic."""
    env = os.environ if env is None else env
    if flag:
        return ModeChoice(_checked(flag, flag_name), flag_name)
    if env.get("WANDB_MODE"):
        return ModeChoice(_checked(env["WANDB_MODE"], "WANDB_MODE"), "$WANDB_MODE")
    stored = settings_mode(env)
    if stored:
        value, path = stored
        return ModeChoice(_checked(value, f"mode in {path}"), f"`wandb {value}` in {path}")
    if config:
        return ModeChoice(_checked(config, "wandb.mode"), "the config's wandb.mode")
    if env.get("WANDB_SWEEP_ID"):
        return ModeChoice("online", "started by wandb agent")
    found = credentials(env)
    if found:
        return ModeChoice("online", f"W&B credentials in {found}")
    return ModeChoice("offline", "no W&B credentials; `wandb login` to log online")


def server_url(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> str:
    """The W&B server runs talk to, found as wandb finds it, so a ``wandb login --host`` counts.

    ``$WANDB_BASE_URL`` > ``base_url`` in the workspace settings file (under ``cwd``) > in the
    global one > wandb's default. wandb drops a trailing slash; so does this.
    """
    env = os.environ if env is None else env
    if env.get("WANDB_BASE_URL"):
        return env["WANDB_BASE_URL"].rstrip("/")
    for path in settings_files(env, Path.cwd() if cwd is None else cwd):
        url = _settings_value(path, "base_url")
        if url:
            return url.rstrip("/")
    return DEFAULT_BASE_URL


def settings_mode(
    env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> tuple[str, Path] | None:
    """The ``mode`` wandb's settings files hold (``wandb offline`` writes it) and the file, if
    any; the workspace file wins over the global one, as in wandb."""
    env = os.environ if env is None else env
    for path in settings_files(env, Path.cwd() if cwd is None else cwd):
        mode = _settings_value(path, "mode")
        if mode:
            return mode, path
    return None


def settings_files(env: Mapping[str, str], cwd: Path) -> tuple[Path, Path]:
    """wandb's settings files, the one that wins first: the workspace's, then the global one.

    The workspace folder is ``./.wandb`` when it exists, else ``./wandb`` (wandb's ``wandb_dir``).
    """
    dot = cwd / ".wandb"
    workspace = (dot if dot.exists() else cwd / "wandb") / "settings"
    if env.get("WANDB_CONFIG_DIR"):
        config_dir = Path(env["WANDB_CONFIG_DIR"]).expanduser()
    else:
        config_dir = _home(env) / ".config" / "wandb"
    return workspace, config_dir / "settings"


def _settings_value(path: Path, key: str) -> str | None:
    """``key`` in a settings file's ``[default]`` section; a missing or unreadable file is empty,
    as wandb treats it."""
    parser = configparser.ConfigParser()
    try:
        parser.read(path)
    except (OSError, configparser.Error):
        return None
    return parser.get("default", key, fallback=None) or None


def unreachable(choice: ModeChoice, err: BaseException) -> str:
    """One line for an online run whose server could not be reached (wandb's ``CommError``)."""
    text = str(err).strip()
    reason = text.splitlines()[0] if text else type(err).__name__
    return (
        f"W&B online ({choice.reason}), but the server {server_url()} cannot be reached: {reason}"
    )


def credentials(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> str | None:
    """Where wandb would find credentials for the server (an env var or a netrc file), if any."""
    env = os.environ if env is None else env
    for name in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE"):
        if env.get(name):
            return f"${name}"
    path = netrc_path(env)
    try:
        entries = netrc.netrc(str(path)).hosts
    except (OSError, netrc.NetrcParseError):
        return None
    url = server_url(env, cwd)
    hosts = _DEFAULT_HOSTS if url == DEFAULT_BASE_URL else (urlsplit(url).netloc,)
    if any(entries.get(host, (None, None, None))[2] for host in hosts):
        return str(path)
    return None


def netrc_path(env: Mapping[str, str]) -> Path:
    """The netrc file wandb reads: ``$NETRC``, else ``~/.netrc``, else ``~/_netrc`` if it exists."""
    if env.get("NETRC"):
        return Path(env["NETRC"]).expanduser()
    home = _home(env)
    unix = home / ".netrc"
    windows = home / "_netrc"
    return windows if not unix.exists() and windows.exists() else unix


def _home(env: Mapping[str, str]) -> Path:
    """``$HOME`` from ``env`` (tests pass their own), else the user's home."""
    return Path(env["HOME"]) if env.get("HOME") else Path.home()


def _checked(value: str, where: str) -> WandbMode:
    mode = _ALIASES.get(value, value)
    if mode not in MODES:
        raise UserError(f"{where}={value!r} is not a W&B mode; use one of {', '.join(MODES)}")
    return mode  # type: ignore[return-value]  # checked against MODES just above
