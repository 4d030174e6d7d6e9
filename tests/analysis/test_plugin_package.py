"""A third-party plugin: its own package, pip-installed, listed and run by ``analyze``.

The plugin is the README's example. It is installed with ``pip --target`` into a temporary folder
and only a subprocess sees it (through PYTHONPATH), so the global environment is untouched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PLUGIN = textwrap.dedent(
    '''
    """top-runs: an example analysis plugin for lightning_app."""

    import numpy as np
    import pandas as pd

    from lightning_app.analysis import Analysis, AnalysisContext, AnalysisResult, Table
    from lightning_app.runs import RunSet


    class TopRuns(Analysis):
        """The best signal runs, and whether the best one's lead is more than noise."""

        name = "top-runs"
        description = "The best signal runs and the winner's lead in noise standard deviations."

        def __init__(self, top: int = 5) -> None:
            """
            Args:
                top: How many runs to list.
            """
            self.top = top

        def run(self, runs: RunSet, context: AnalysisContext) -> AnalysisResult:
            values = context.signal_at_epoch
            order = np.argsort(values)[::-1][: self.top]
            ids = [context.signal_ids[i] for i in order]
            noise_std = float(np.std(context.noise_at_epoch, ddof=1))
            lead = float(values[order[0]] - values[order[1]]) / noise_std
            frame = runs.config.loc[ids, list(context.params)].reset_index()
            frame[context.metric] = values[order]
            return AnalysisResult(
                summary={"best_run": ids[0], "lead_in_noise_std": lead},
                findings=[f"Run {ids[0]} is best; it leads the next by {lead:.1f} noise stds."],
                tables=[Table(f"Top {self.top} signal runs at epoch {context.epoch}", frame,
                              {context.metric: context.metric_format})],
            )
    '''
)

PYPROJECT = textwrap.dedent(
    """
    [build-system]
    requires = ["setuptools>=68"]
    build-backend = "setuptools.build_meta"

    [project]
    name = "top-runs-analysis"
    version = "0.1.0"
    dependencies = ["lightning-signal-noise"]

    [project.entry-points."lightning_app.analyses"]
    top-runs = "top_runs_analysis:TopRuns"

    [tool.setuptools]
    py-modules = ["top_runs_analysis"]
    """
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plugin package built and pip-installed into a private folder."""
    root = tmp_path_factory.mktemp("plugin")
    package = root / "top-runs-analysis"
    package.mkdir()
    (package / "pyproject.toml").write_text(PYPROJECT)
    (package / "top_runs_analysis.py").write_text(PLUGIN)
    target = root / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(package),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    assert list(target.glob("top_runs_analysis-0.1.0.dist-info"))
    return target


def _run(site: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        "WANDB_MODE": "offline",
    }
    code = f"from lightning_app.analysis.command import main; main({list(argv)!r})"
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_installed_plugin_is_listed_and_runs(site: Path, wandb_dir: Path, tmp_path: Path) -> None:
    code = "from lightning_app.analysis.command import main; main(['--list'])"
    env = {**os.environ, "PYTHONPATH": str(site)}
    listing = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert listing.returncode == 0, listing.stderr
    assert "top-runs" in listing.stdout and "top-runs-analysis 0.1.0" in listing.stdout
    assert "winner's lead" in listing.stdout
    # Not installed globally: without the folder on the path it is not there.
    plain = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert "top-runs" not in plain.stdout

    out = tmp_path / "report"
    done = _run(
        site,
        "--source",
        str(wandb_dir),
        "--noise",
        "noise",
        "--signal",
        "signal",
        "--analyses",
        "signal-effects,top-runs",
        "--top-runs.top",
        "3",
        "--permutations",
        "99",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert "Top 3 signal runs at epoch 3" in done.stdout
    report = json.loads((out / "report.json").read_text())
    assert list(report["analyses"]) == ["signal-effects", "top-runs"]
    top = report["analyses"]["top-runs"]
    assert top["lead_in_noise_std"] > 0 and top["best_run"]
    assert report["runs"]["top-runs"] == {
        "package": "top-runs-analysis 0.1.0",
        "options": {"top": 3},
        "seconds": pytest.approx(report["runs"]["top-runs"]["seconds"]),
        "ok": True,
    }
    assert "## top-runs" in (out / "report.md").read_text()
