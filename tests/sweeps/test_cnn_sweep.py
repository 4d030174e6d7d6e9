"""A user's model through the whole journey: the example CNN's sweeps in miniature, analysed.

The sweep files are derived from the shipped configs/sweeps/cpu/cnn-noise.yaml and cnn.yaml
(fewer values and seeds, a few batches), run by the real ``sweep`` command, and analysed by
``analyze``, which must find the CNN's own argument ``model.channels`` as the signal's parameter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.sweeps.conftest import REPO

SHIPPED = REPO / "configs" / "sweeps" / "cpu"
SHORT = [
    "--trainer.max_epochs=2",
    "--trainer.limit_train_batches=6",
    "--trainer.limit_val_batches=4",
]


def miniature(name: str, folder: Path, parameters: dict[str, Any]) -> Path:
    """The shipped sweep file ``name`` with other parameter values and a short training run."""
    spec = yaml.safe_load((SHIPPED / f"{name}.yaml").read_text())
    assert set(spec["parameters"]) == set(parameters)  # the same keys as the shipped file
    spec["parameters"] = parameters
    command = [str(REPO / x) if x.startswith("configs/") else x for x in spec["command"]]
    end = command.index("${args}")
    spec["command"] = [*command[:end], *SHORT, *command[end:]]
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.process
def test_the_cnn_sweeps_are_analysed_by_the_models_own_arguments(
    tmp_path: Path, in_process, sweep_cli
) -> None:
    noise = miniature("cnn-noise", tmp_path, {"seed_everything": {"values": [0, 1, 2]}})
    signal = miniature(
        "cnn",
        tmp_path,
        {"model.channels": {"values": [2, 16]}, "seed_everything": {"values": [100, 101]}},
    )
    for path in (noise, signal):  # the command's code in this process; the runs are real
        result = sweep_cli(str(path), "--workers", "2")
        assert result.returncode == 0, result.stdout + result.stderr

    analyze = in_process("analyze")
    result = analyze(
        "--source", "sweeps/", "--noise", "cnn-noise", "--signal", "cnn", "--out", "report",
        "--permutations", "200",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr

    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["metric"] == "test/acc"
    assert report["noise"] == {"group": "cnn-noise", "runs": 3}
    assert report["signal"] == {"group": "cnn", "runs": 4}
    assert report["skipped_runs"] == []
    assert report["analyses"]["noise-baseline"]["final_epoch"] == 1
    # The CNN's argument is the one parameter: seeds are replicates, the class path is constant.
    effects = report["analyses"]["signal-effects"]["params"]
    assert set(effects) == {"model.channels"}
    assert 0 < effects["model.channels"]["p_value"] <= 1
    assert set(report["analyses"]["runs-needed"]["params"]) == {"model.channels"}
