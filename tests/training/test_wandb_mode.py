"""The one W&B mode rule: flag > $WANDB_MODE > config file > automatic (credentials, agent)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_app.errors import UserError
from lightning_app.wandb_mode import DEFAULT_BASE_URL, credentials, resolve_mode, server_url
from tests.training.conftest import QUICKSTART, REPO, TINY, Result, wandb_files

KEY = "k" * 40


def netrc_home(tmp_path: Path, host: str) -> Path:
    """A home folder whose ``.netrc`` holds what ``wandb login`` writes for ``host``."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    netrc = home / ".netrc"
    netrc.write_text(f"machine {host}\n  login user\n  password {KEY}\n")
    netrc.chmod(0o600)
    return home


@pytest.mark.parametrize(
    ("flag", "env_mode", "config", "expected", "reason"),
    [
        ("disabled", "offline", "online", "disabled", "--wandb.mode"),
        (None, "disabled", "online", "disabled", "$WANDB_MODE"),
        (None, None, "online", "online", "the config's wandb.mode"),
        (None, None, None, "offline", "no W&B credentials; `wandb login` to log online"),
        (None, "dryrun", None, "offline", "$WANDB_MODE"),  # wandb's own alias
    ],
)
def test_precedence(flag, env_mode, config, expected, reason, tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)} | ({"WANDB_MODE": env_mode} if env_mode else {})
    choice = resolve_mode(flag=flag, config=config, env=env)
    assert (choice.mode, choice.reason) == (expected, reason)


def test_automatic_is_online_with_credentials_or_under_wandb_agent(tmp_path: Path) -> None:
    bare = {"HOME": str(tmp_path)}
    assert resolve_mode(env=bare).mode == "offline"
    assert resolve_mode(env=bare | {"WANDB_API_KEY": KEY}).mode == "online"
    agent = resolve_mode(env=bare | {"WANDB_SWEEP_ID": "abc123", "WANDB_RUN_ID": "r1"})
    assert (agent.mode, agent.reason) == ("online", "started by wandb agent")
    home = netrc_home(tmp_path, "api.wandb.ai")
    found = resolve_mode(env={"HOME": str(home)})
    assert found.mode == "online" and str(home / ".netrc") in found.reason
    # $WANDB_MODE and the config file still win over credentials
    assert resolve_mode(config="offline", env={"HOME": str(home)}).mode == "offline"


@pytest.mark.parametrize(
    ("machine", "base_url"),
    [
        ("api.wandb.ai", None),  # written by wandb before 0.31
        ("api.forge.coreweave.com", None),  # wandb 0.31's default server
        ("wandb.example.org", "https://wandb.example.org"),  # a self-hosted server
        ("wandb.example.org", None),  # another server's key is not this one's
        ("api.wandb.ai", "https://wandb.example.org"),
    ],
)
def test_netrc_lookup_agrees_with_wandbs_own(
    machine, base_url, tmp_path: Path, monkeypatch
) -> None:
    # wandb's lookup is private (wandb/sdk/lib/wbauth/wbnetrc.py); the stand-in must agree with it.
    from wandb.sdk.lib.wbauth import read_netrc_auth

    home = netrc_home(tmp_path, machine)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("NETRC", raising=False)
    env = {"HOME": str(home)} | ({"WANDB_BASE_URL": base_url} if base_url else {})
    theirs = read_netrc_auth(host=base_url or DEFAULT_BASE_URL)
    ours = credentials(env)
    assert (ours is not None) == (theirs is not None)


MYCORP = "https://wandb.mycorp.com"


def wandb_login_host(tmp_path: Path, host: str = MYCORP) -> tuple[Path, Path]:
    """A home and a working folder after ``wandb login --host HOST KEY`` (it needs the server, so
    its files are written here as wandb 0.31 writes them: the key in ``.netrc`` under the host,
    ``base_url`` in the global settings file, ``wandb/sdk/wandb_login.py``)."""
    home = netrc_home(tmp_path, host.removeprefix("https://"))
    settings = home / ".config" / "wandb" / "settings"
    settings.parent.mkdir(parents=True)
    settings.write_text(f"[default]\nbase_url = {host}\n\n")
    work = tmp_path / "work"
    work.mkdir()
    return home, work


def wandbs_base_url(home: Path, work: Path, env: dict[str, str]) -> str:
    """The server wandb 0.31 itself settles on in ``work`` (its settings are what ``wandb.init``
    uses; only the public ``wandb.setup``, no run and no server)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    full |= {"HOME": str(home), "WANDB_SILENT": "true", **env}
    code = "import wandb; print(wandb.setup().settings.base_url)"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=work, env=full, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    return proc.stdout.strip().splitlines()[-1]


def test_a_wandb_login_host_logs_online(tmp_path: Path) -> None:
    home, work = wandb_login_host(tmp_path)
    env = {"HOME": str(home)}
    assert server_url(env, work) == MYCORP
    assert credentials(env, work) == str(home / ".netrc")
    # $WANDB_BASE_URL still wins: another server, whose key this netrc does not hold
    assert credentials(env | {"WANDB_BASE_URL": "https://other.example.org"}, work) is None


SERVER_LAYOUTS = [
    ("global", MYCORP),  # what `wandb login --host` leaves
    ("config_dir", "https://elsewhere.example.org"),  # $WANDB_CONFIG_DIR/settings
    ("workspace", "https://team.example.org"),  # ./wandb/settings over the global file
    ("dot_workspace", "https://dot.example.org"),  # ./.wandb/settings when .wandb exists
    ("env", "https://env.example.org"),  # $WANDB_BASE_URL over both files
    ("empty", DEFAULT_BASE_URL),  # a settings file without base_url
]


def server_layout(layout: str, expected: str, tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """A ``wandb login --host`` home, a working folder and the variables of ``layout``, whose
    server is ``expected``."""
    home, work = wandb_login_host(tmp_path)
    env: dict[str, str] = {}
    if layout == "config_dir":
        config = tmp_path / "config"
        config.mkdir()
        (config / "settings").write_text(f"[default]\nbase_url = {expected}/\n")
        env["WANDB_CONFIG_DIR"] = str(config)
    elif layout in ("workspace", "dot_workspace"):
        folder = work / ("wandb" if layout == "workspace" else ".wandb")
        folder.mkdir()
        (folder / "settings").write_text(f"[default]\nbase_url = {expected}\n")
    elif layout == "env":
        env["WANDB_BASE_URL"] = expected
    elif layout == "empty":
        (home / ".config" / "wandb" / "settings").write_text("[default]\nmode = offline\n")
    return home, work, env


@pytest.mark.parametrize(("layout", "expected"), SERVER_LAYOUTS)
def test_server_follows_wandbs_settings_files(layout, expected, tmp_path: Path) -> None:
    home, work, env = server_layout(layout, expected, tmp_path)
    assert server_url({"HOME": str(home)} | env, work) == expected


@pytest.mark.process
@pytest.mark.parametrize(("layout", "expected"), SERVER_LAYOUTS)
def test_wandb_itself_settles_on_the_same_server(layout, expected, tmp_path: Path) -> None:
    """wandb's own settings (in a process: they are read once per process) agree."""
    home, work, env = server_layout(layout, expected, tmp_path)
    assert wandbs_base_url(home, work, env) == expected


def test_a_mode_that_is_not_a_mode_is_named() -> None:
    with pytest.raises(UserError, match=r"WANDB_MODE='offlin' is not a W&B mode"):
        resolve_mode(env={"WANDB_MODE": "offlin"})


@pytest.fixture
def netrc_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A ``wandb login`` for the default server and no WANDB_MODE: the automatic case."""
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(netrc_home(tmp_path, "api.wandb.ai")))


def run_mode(*args: str) -> str:
    """The mode the real CLI starts a run with (its W&B run is not started offline)."""
    from lightning_app.cli import AppCLI

    cli = AppCLI(args=["--config", str(QUICKSTART), *args], run=False)
    return cli.save_config_kwargs["mode"].mode


def test_cli_applies_the_rule(in_process, netrc_env, monkeypatch, tmp_path: Path) -> None:
    in_process()  # a fresh working directory (netrc_env, set up after it, unsets WANDB_MODE)
    offline = tmp_path / "offline.yaml"
    offline.write_text("wandb:\n  mode: offline\n")
    assert run_mode("--config", str(offline)) == "offline"  # config file over credentials
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert run_mode("--config", str(offline)) == "disabled"  # WANDB_MODE over the config file
    assert run_mode("--config", str(offline), "--wandb.mode=offline") == "offline"  # flag wins
    assert run_mode("--wandb.mode", "offline") == "offline"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fit_without_wandb_mode(cwd: Path, env: dict[str, str], *args: str) -> Result:
    """The real ``fit`` of a tiny run with ``env`` and no ``WANDB_MODE`` at all."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    full |= {"WANDB_SILENT": "true", "PYTHONPATH": str(REPO), **env}
    proc = subprocess.run(
        [sys.executable, "-m", "lightning_app", "fit", *TINY, *args],
        cwd=cwd, env=full, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.mark.process
def test_a_wandb_login_logs_online_and_an_unreachable_server_stops_the_run(
    tmp_path: Path,
) -> None:
    # Only loopback: the "server" is a closed port on 127.0.0.1, reached by wandb's real client.
    server = f"http://127.0.0.1:{closed_port()}"
    home = netrc_home(tmp_path, server.removeprefix("http://"))
    env = {"HOME": str(home), "WANDB_BASE_URL": server, "WANDB_INIT_TIMEOUT": "3"}
    work = tmp_path / "work"
    work.mkdir()
    stopped = fit_without_wandb_mode(work, env)
    assert stopped.returncode == 2, stopped.stderr
    (line,) = stopped.stderr.strip().splitlines()[-1:]
    assert line.startswith(
        f"error: W&B online (W&B credentials in {home / '.netrc'}), but the server {server} "
        "cannot be reached: "
    )
    assert line.endswith("or add --wandb.fallback=offline to fall back when it is down")

    fallback = fit_without_wandb_mode(work, env, "--wandb.fallback=offline")
    assert fallback.returncode == 0, fallback.stderr
    assert f"warning: W&B online (W&B credentials in {home / '.netrc'})" in fallback.stderr
    assert "logging offline as --wandb.fallback=offline asks" in fallback.stderr
    assert len(wandb_files(work)) == 1  # the offline run, ready for `wandb sync`


def wandb_command(work: Path, home: Path, *args: str) -> None:
    """wandb's own CLI (``wandb offline``/``online`` write its settings files, no server)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    subprocess.run(
        [sys.executable, "-m", "wandb", *args], cwd=work, env=env | {"HOME": str(home)},
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip


@pytest.mark.process
def test_wandb_offline_and_online_are_obeyed(tmp_path: Path, monkeypatch) -> None:
    home = netrc_home(tmp_path, "api.wandb.ai")  # logged in: automatic would be online
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    env = {"HOME": str(home)}
    wandb_command(work, home, "offline")
    choice = resolve_mode(env=env)
    assert choice.mode == "offline" and choice.reason.startswith("`wandb offline` in "), choice
    # the user's own settings outrank a (shared) config file, $WANDB_MODE and a flag outrank them
    assert resolve_mode(config="online", env=env).mode == "offline"
    assert resolve_mode(env=env | {"WANDB_MODE": "online"}).mode == "online"
    assert resolve_mode(flag="online", env=env).mode == "online"
    wandb_command(work, home, "online")  # clears the setting: automatic again
    assert resolve_mode(env=env).reason == f"W&B credentials in {home / '.netrc'}"
