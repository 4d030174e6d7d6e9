"""Sweep values as W&B users write them: lists for list-typed keys (non-ASCII, spaces) reach each
run's command line intact, and the W&B group is the sweep's name without a flag in the command."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from lightning_app.sweeps.validate import parse
from tests.conftest import InProcess
from tests.sweeps.conftest import QUICKSTART, sweep_file
from tests.sweeps.fakes import use_children

# The child writes the argv it received (no shell between the runner and it) into its folder.
RECORD_ARGV = textwrap.dedent(
    """
    import json, sys
    run_dir = next(a for a in sys.argv if a.startswith("--run_dir=")).split("=", 1)[1]
    with open(run_dir + "/argv.json", "w", encoding="utf-8") as out:
        json.dump(sys.argv[1:], out, ensure_ascii=False)
    """
)


def recorded_config(run_dir: Path) -> dict:
    """The config the training CLI parses from the argv a run received."""
    argv = json.loads((run_dir / "argv.json").read_text(encoding="utf-8"))
    cli = argv[argv.index("lightning_app") + 1 :]
    return parse(cli)[cli[0]]


def test_one_tag_per_run_with_non_ascii_values_reaches_each_run(
    sweep_cli: Callable[..., InProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_children(monkeypatch, lambda request: RECORD_ARGV)
    tags = [["café ünï"], ["with space"], ["$(reboot); `x` | y > z"]]
    path = sweep_file(tmp_path, {"wandb.tags": {"values": tags}}, name="tags")
    result = sweep_cli(str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    folder = tmp_path / "sweeps" / "tags"
    runs = sorted(p for p in folder.iterdir() if (p / "argv.json").is_file())
    assert [recorded_config(run)["wandb"]["tags"] for run in runs] == tags
    assert not (tmp_path / "reboot").exists()


def test_the_sweeps_name_is_the_group_over_the_configs_and_the_first_line_says_so(
    sweep_cli: Callable[..., InProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert yaml.safe_load(QUICKSTART.read_text())["wandb"]["group"] == "quickstart"
    use_children(monkeypatch, lambda request: RECORD_ARGV)
    path = sweep_file(tmp_path, {"seed_everything": {"values": [1, 2]}}, name="grp")
    data = yaml.safe_load(path.read_text())
    data["command"].remove("--wandb.group=grp")  # the config's group is 'quickstart'
    path.write_text(yaml.safe_dump(data))
    result = sweep_cli(str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("sweep grp: ")
    assert "W&B group: grp (the sweep's name; the config's 'quickstart' is overridden" in first
    assert "--wandb.group=grp" in first  # what `wandb agent` runs need for the same group
    runs = sorted(p for p in (tmp_path / "sweeps" / "grp").iterdir() if p.name[:1].isdigit())
    assert len(runs) == 2
    assert all(recorded_config(run)["wandb"]["group"] == "grp" for run in runs)


def test_a_command_that_names_the_group_says_only_the_sweeps_name(
    sweep_cli: Callable[..., InProcess], tmp_path: Path
) -> None:
    path = sweep_file(tmp_path, {"seed_everything": {"values": [1]}}, name="named")
    result = sweep_cli(str(path), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].endswith("W&B group: named (the sweep's name)")
