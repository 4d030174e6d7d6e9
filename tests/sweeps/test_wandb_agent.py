"""The shipped sweep files under wandb 0.31's real ``wandb agent`` code.

``agent_run(sweep_file)`` creates the sweep as ``wandb sweep FILE`` does
(``sweep_utils.load_sweep_config`` + ``_upsert_sweep``) and runs ``wandb.wandb_agent.run_agent``
for one run: the real ``Agent`` fetches the sweep's config, registers, heartbeats, builds the
run's command line and environment (``Agent._command_run``) and starts it with the real
``AgentProcess``. The W&B server cannot be reached from here, so the API object is the one stub
(``SweepServer``: ``wandb.Api()`` returns an object whose ``_service_api.execute_graphql``
answers the sweep's GraphQL operations as the server does). The run's ``python`` is a recorder
placed first on ``PATH``: the agent's ``/usr/bin/env python ...`` starts it instead of training,
and it writes down the arguments and environment the run got. What the agent spawned is read
with a spy around ``subprocess.Popen`` that calls the real one.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple
from unittest import mock

import pytest
import wandb
import yaml
from wandb import wandb_agent
from wandb.apis.public.sweeps import _upsert_sweep
from wandb.sdk.launch.sweeps import utils as sweep_utils

from lightning_app.sweeps.commandline import agent_command, check_command
from lightning_app.sweeps.plan import plan_runs
from lightning_app.sweeps.spec import load_sweep
from lightning_app.sweeps.validate import parse
from lightning_app.wandb_mode import ModeChoice, resolve_mode
from tests.sweeps.conftest import REPO, config_value

SHIPPED = sorted((REPO / "configs" / "sweeps").rglob("*.yaml"))
ENTITY, PROJECT, SWEEP_ID, RUN_ID = "ada", "lightning_app", "swp0a1b2", "run0c3d4"
RECORDER = """#!/bin/sh
exec {python} -c 'import json, os, sys
json.dump({{"args": sys.argv[1:], "env": dict(os.environ), "cwd": os.getcwd()}},
          open({record}, "w"))' "$@"
"""


class AgentRun(NamedTuple):
    argv: list[str]
    """The command line the agent started (``/usr/bin/env python -m lightning_app fit ...``)."""
    env: dict[str, str]
    """The environment the run's process received from the agent."""


class AgentFailed(AssertionError):
    """The agent started no run; the message is what it logged."""


class SweepServer:
    """The W&B server's side of ``wandb sweep`` and ``wandb agent``, for one sweep and one run
    (the stub: only the API transport, ``ServiceApi.execute_graphql``, is replaced)."""

    def __init__(self, params: Mapping[str, Any]):
        self.params = dict(params)
        self.config_yaml: str | None = None
        self.heartbeats = 0
        self.run_sent = False

    def execute_graphql(self, query: str, variables: Any = None, timeout: Any = None, **_: Any):
        variables = variables or {}
        if "mutation UpsertSweep" in query:  # wandb sweep FILE
            self.config_yaml = variables["config"]
            project = {"id": "UHJvamVjdDox", "name": PROJECT, "entity": {"id": "1", "name": ENTITY}}
            return {
                "upsertSweep": {
                    "sweep": {"name": SWEEP_ID, "project": project},
                    "configValidationWarnings": [],
                }
            }
        if "query SweepWithRuns" in query:  # Agent.run: the sweep's config
            assert variables["sweep"] == SWEEP_ID, variables
            sweep: dict[str, Any] = {
                "id": "U3dlZXA6MQ==",
                "name": SWEEP_ID,
                "method": "grid",
                "state": "RUNNING",
                "config": self.config_yaml,
                "runs": {"edges": []},
            }
            return {"project": {"sweep": sweep}}
        if "mutation CreateAgent" in query:
            assert variables["sweep"] == SWEEP_ID, variables
            return {"createAgent": {"agent": {"id": "QWdlbnQ6MQ=="}}}
        if "mutation Heartbeat" in query:
            commands = self._next(json.loads(variables["runState"]))
            return {"agentHeartbeat": {"agent": {"id": variables["id"]}, "commands": commands}}
        raise AssertionError(f"the stub server does not know {query.split('(')[0].strip()}")

    def _next(self, running: dict[str, bool]) -> str:
        self.heartbeats += 1
        if not self.run_sent:
            self.run_sent = True
            config = yaml.safe_load(self.config_yaml or "")
            command: dict[str, Any] = {
                "type": "run",
                "run_id": RUN_ID,
                "args": {name: {"value": value} for name, value in self.params.items()},
            }
            if "program" in config:  # the sweep's program; absent without one (wandb issue 4187)
                command["program"] = config["program"]
            return json.dumps([command])
        if not running:  # the run never started: tell the agent to stop
            return json.dumps([{"type": "exit"}])
        return "[]"


class _StubApi:
    """What ``wandb.Api()`` returns while the agent runs: settings and the stubbed transport."""

    def __init__(self, server: SweepServer):
        self.settings = {"entity": ENTITY, "project": PROJECT, "base_url": "https://api.wandb.ai"}
        self._service_api = server


class _Logged(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        error = f": {record.exc_info[1]!r}" if record.exc_info else ""
        self.messages.append(record.getMessage().splitlines()[0] + error)


def first_grid_point(sweep_file: Path) -> dict[str, Any]:
    """The first run of the sweep's grid (the local runner enumerates W&B's grid order)."""
    return dict(plan_runs(load_sweep(sweep_file))[0].params)


def agent_run(sweep_file: Path, params: Mapping[str, Any] | None = None) -> AgentRun:
    """The command line and environment wandb 0.31's agent gives the sweep's run for ``params``
    (default: the first grid point). Raises :class:`AgentFailed` if the agent starts no run."""
    params = first_grid_point(sweep_file) if params is None else params
    server = SweepServer(params)
    spawned: list[tuple[list[str], Any]] = []
    real_popen = subprocess.Popen

    def spy(args: Any, *rest: Any, **kwargs: Any) -> Any:
        process = real_popen(args, *rest, **kwargs)
        spawned.append((list(args), process))
        return process

    logged = _Logged()
    with tempfile.TemporaryDirectory(prefix="agent-run-") as tmp:
        record = Path(tmp, "record.json")
        python = Path(tmp, "bin", "python")
        python.parent.mkdir()
        python.write_text(RECORDER.format(python=sys.executable, record=json.dumps(str(record))))
        python.chmod(0o755)
        environ = {"PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}", "WANDB_DIR": tmp}
        wandb_agent.logger.addHandler(logged)
        try:
            with (
                mock.patch.dict(os.environ, environ),  # restores whatever the agent sets, too
                mock.patch.object(wandb, "Api", lambda *a, **k: _StubApi(server)),
                mock.patch.object(wandb_agent.Agent, "POLL_INTERVAL", 0.05),
                mock.patch.object(subprocess, "Popen", spy),
            ):
                config = sweep_utils.load_sweep_config(str(sweep_file))  # wandb sweep FILE
                assert config is not None, sweep_file
                _upsert_sweep(wandb.Api(), config, project=PROJECT, entity=ENTITY)
                wandb_agent.run_agent(f"{ENTITY}/{PROJECT}/{SWEEP_ID}", count=1)
        finally:
            wandb_agent.logger.removeHandler(logged)
        if not spawned:
            raise AgentFailed("; ".join(logged.messages) or "the agent started no run")
        (argv, process), *others = spawned
        assert not others, spawned
        assert process.wait(timeout=60) == 0, argv  # the recorder ran
        recorded = json.loads(record.read_text())
    assert argv[:2] == ["/usr/bin/env", "python"] and recorded["args"] == argv[2:]
    env = {k: v for k, v in recorded["env"].items() if k != "PATH"}
    env["PATH"] = recorded["env"]["PATH"].removeprefix(f"{python.parent}{os.pathsep}")
    return AgentRun(argv, env)


def after_module(argv: list[str]) -> list[str]:
    """The arguments ``python -m lightning_app`` receives."""
    at = argv.index("-m")
    assert argv[at + 1] == "lightning_app", argv
    return argv[at + 2 :]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_the_real_agent_runs_each_shipped_sweep_with_our_cli(
    path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    spec = load_sweep(path)
    params = first_grid_point(path)
    argv, env = agent_run(path, params)
    # (a) python -m lightning_app fit <the file's fixed flags> --<param>=<value>...
    assert argv[:5] == ["/usr/bin/env", "python", "-m", "lightning_app", "fit"]
    fixed = list(spec.command[spec.command.index("fit") + 1 : spec.command.index("${args}")])
    flags = [f"--{name}={value}" for name, value in params.items()]
    assert argv[5:] == fixed + flags
    assert f"--wandb.group={spec.name}" in fixed
    assert argv == agent_command(check_command(spec), params, program=spec.program)  # our copy
    # (b) the training CLI's own parser reads it, and the values reach the config
    monkeypatch.chdir(REPO)  # the files name configs/... relative to the repository
    fit = parse(after_module(argv))["fit"]
    for name, value in params.items():
        assert config_value(fit, name) == value, name
    assert fit["wandb"]["group"] == spec.name
    # (c) what the real agent tells the run about the sweep
    assert env["WANDB_SWEEP_ID"] == SWEEP_ID
    assert env["WANDB_RUN_ID"] == RUN_ID
    assert env["WANDB_SWEEP_PARAM_PATH"].endswith(f"config-{RUN_ID}.yaml")
    # (d) so the run logs online, on a machine without a login too (this test's own
    # WANDB_MODE=offline, inherited by the agent's child, set aside as a user's shell has none)
    shell = {k: v for k, v in env.items() if k not in ("WANDB_MODE", "WANDB_API_KEY", "NETRC")}
    shell["HOME"] = str(tmp_path)
    assert resolve_mode(env=shell) == ModeChoice("online", "started by wandb agent")


def test_without_program_the_real_agent_starts_no_run(tmp_path: Path) -> None:
    """Why every sweep file names ``program``: the agent reads it for each run (issue 4187)."""
    shipped = REPO / "configs" / "sweeps" / "cpu" / "noise.yaml"
    raw = yaml.safe_load(shipped.read_text())
    del raw["program"]
    bare = tmp_path / "noise.yaml"
    bare.write_text(yaml.safe_dump(raw))
    with pytest.raises(AgentFailed, match=r"KeyError.*program"):
        agent_run(bare, first_grid_point(shipped))


def print_config(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``python -m lightning_app <the agent's arguments> --print_config``, as the agent's run
    would start in the repository, with the environment the agent gave it."""
    params = first_grid_point(path)
    argv, env = agent_run(path, params)
    proc = subprocess.run(
        [sys.executable, "-m", "lightning_app", *after_module(argv), "--print_config"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return params, yaml.safe_load(proc.stdout)


def check_printed(path: Path) -> None:
    params, config = print_config(path)
    for name, value in params.items():
        assert config_value(config, name) == value, name
    assert config["wandb"]["group"] == load_sweep(path).name


@pytest.mark.process
def test_the_agents_command_line_prints_its_config() -> None:
    """One file end to end through a real ``python -m lightning_app`` (about 10 s)."""
    check_printed(REPO / "configs" / "sweeps" / "cpu" / "signal.yaml")


@pytest.mark.slow
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_every_agent_command_line_prints_its_config(path: Path) -> None:
    check_printed(path)
