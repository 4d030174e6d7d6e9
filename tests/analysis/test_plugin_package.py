"""A third-party plugin: its own package, pip-installed, listed and run by ``analyze``.

The plugin is the one docs/plugins.md shows, read from that page, so the guide cannot go stale.
It is installed with ``pip --target`` into a temporary folder and only the real
``python -m lightning_app analyze`` process sees it (through PYTHONPATH), so the global
environment is untouched. Broken plugins are declared by dist-info folders put on this
process's ``sys.path`` for one test, and run through the command's dispatcher in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lightning_app.runs import load_runs

REPO = Path(__file__).resolve().parents[2]
PLUGIN_GUIDE = REPO / "docs" / "plugins.md"


def _guide_block(language: str) -> str:
    """The first fenced ``language`` block under "A complete plugin" in the plugin guide."""
    text = PLUGIN_GUIDE.read_text()
    section = text[text.index("## A complete plugin") :]
    start = section.index(f"```{language}\n") + len(language) + 4
    return section[start : section.index("```", start)]


PLUGIN = _guide_block("python")
PYPROJECT = _guide_block("toml")


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
    """``python -m lightning_app analyze ARGV`` as a user runs it, the plugin installed."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]),
        "WANDB_MODE": "offline",
    }
    return subprocess.run(
        [sys.executable, "-m", "lightning_app", "analyze", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.process
def test_installed_plugin_is_listed_and_runs(
    site: Path, wandb_dir: Path, tmp_path: Path, in_process
) -> None:
    """The plugin journey for real: pip-installed, listed and run by ``python -m lightning_app
    analyze`` (the one test of this folder that starts the command as a process)."""
    listing = _run(site, "--list")
    assert listing.returncode == 0, listing.stderr
    assert "top-runs" in listing.stdout and "top-runs-analysis 0.1.0" in listing.stdout
    assert "winner's lead" in listing.stdout
    # Not installed globally: without the folder on the path it is not there.
    plain = in_process("analyze")("--list")
    assert plain.returncode == 0 and "noise-baseline" in plain.stdout
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
    # The plugin's numbers, recomputed here from the runs as logged.
    runs = load_runs(wandb_dir, progress=False)
    final = runs.history.xs(3, level="epoch")["test/acc"]
    signal = final[runs.meta.loc[final.index, "group"] == "signal"].sort_values(ascending=False)
    noise = final[runs.meta.loc[final.index, "group"] == "noise"]
    top = report["analyses"]["top-runs"]
    assert top["best_run"] == signal.index[0]
    lead = (signal.iloc[0] - signal.iloc[1]) / noise.std(ddof=1)
    assert top["lead_in_noise_std"] == pytest.approx(lead, rel=1e-9)
    assert f"Run {signal.index[0]} is best; it leads the next by {lead:.1f} noise stds." in (
        done.stdout
    )
    seconds = report["runs"]["top-runs"].pop("seconds")
    assert isinstance(seconds, float) and 0 <= seconds < 60
    assert report["runs"]["top-runs"] == {
        "package": "top-runs-analysis 0.1.0",
        "options": {"top": 3},
        "ok": True,
    }
    markdown = (out / "report.md").read_text()
    assert "## top-runs" in markdown
    for run_id in signal.index[:3]:
        assert run_id in markdown
    assert signal.index[3] not in markdown.split("## top-runs")[1]


BROKEN = textwrap.dedent(
    '''
    """Analyses that fail in every way a plugin can."""

    from lightning_app.analysis import Analysis, AnalysisResult


    class Raises(Analysis):
        name = "raises"
        description = "Raises while it runs."

        def run(self, runs, context):
            raise RuntimeError("the plugin broke")


    class Malformed(Analysis):
        name = "malformed"
        description = "Returns something that is not an AnalysisResult."

        def run(self, runs, context):
            return {"best": 1}


    class WrongName(Analysis):
        name = "another-name"
        description = "Its name is not its entry point's."

        def run(self, runs, context):
            return AnalysisResult()


    class NotAnalysis:
        """A plain class."""


    class First(Analysis):
        name = "twice"
        description = "The first of two analyses registered under one name."

        def run(self, runs, context):
            return AnalysisResult(summary={"which": "first"})


    class Second(First):
        pass
    '''
)
# Entry points of two distributions: every kind of broken entry, and a name both declare.
DISTRIBUTIONS = {
    "broken_plugins-0.1.dist-info": """
        [lightning_app.analyses]
        raises = broken_plugins:Raises
        malformed = broken_plugins:Malformed
        cannot-import = no_such_module_here:Thing
        not-an-analysis = broken_plugins:NotAnalysis
        wrong-name = broken_plugins:WrongName
        twice = broken_plugins:First
    """,
    "zz_second_plugins-0.2.dist-info": """
        [lightning_app.analyses]
        twice = broken_plugins:Second
    """,
}


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder on PYTHONPATH whose dist-info folders declare entry points, as pip leaves them
    (importlib.metadata reads them the same way; no build needed)."""
    site = tmp_path_factory.mktemp("broken-site")
    (site / "broken_plugins.py").write_text(BROKEN)
    for folder, entry_points in DISTRIBUTIONS.items():
        name, version = folder.removesuffix(".dist-info").rsplit("-", 1)
        (site / folder).mkdir()
        (site / folder / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        (site / folder / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    return site


def test_broken_plugins_are_reported_and_the_others_still_run(
    broken_site: Path, wandb_dir: Path, tmp_path: Path, in_process, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m lightning_app analyze`` (its dispatcher, in this process) with the broken
    plugins installed: each is named with its reason and the others still run."""
    monkeypatch.syspath_prepend(str(broken_site))  # entry points are read from sys.path
    out = tmp_path / "report"
    try:
        done = in_process("analyze")(
            "--source", str(wandb_dir), "--noise", "noise", "--signal", "signal",
            "--permutations", "99", "--out", str(out),
        )  # fmt: skip
    finally:
        sys.modules.pop("broken_plugins", None)
    assert done.returncode == 1, done.stderr
    report = json.loads((out / "report.json").read_text())
    analyses, runs = report["analyses"], report["runs"]
    builtins = ["noise-baseline", "signal-effects", "runs-needed", "epoch-dynamics"]
    for name in builtins:  # the others ran in full
        assert runs[name]["ok"] and analyses[name], name
    assert analyses["noise-baseline"]["final_epoch"] == 3
    reasons = {
        "raises": "RuntimeError: the plugin broke",
        "malformed": "AnalysisResult",
        "cannot-import": "ModuleNotFoundError: No module named 'no_such_module_here'",
        "not-an-analysis": "broken_plugins:NotAnalysis is not a subclass of",
        "wrong-name": "name is 'another-name' but its entry point is named 'wrong-name'",
    }
    stderr = done.stderr
    markdown = (out / "report.md").read_text()
    for name, reason in reasons.items():
        assert not runs[name]["ok"] and reason in analyses[name]["error"], name
        line = next(x for x in stderr.splitlines() if f"analysis {name!r} failed" in x)
        assert reason in line, line
        assert reason in markdown, name
    # Two distributions declare "twice": the first runs, the second is named as the failure.
    assert analyses["twice"] == {"which": "first"} and runs["twice"]["ok"]
    duplicate = "could not be loaded: name already used by broken_plugins 0.1; ignored"
    assert f"analysis 'twice' failed: {duplicate}" in stderr
    assert f"`twice` (zz_second_plugins 0.2): {duplicate}" in markdown
    failures = {(f["analysis"], f["package"]): f["error"] for f in report["failures"]}
    assert failures.pop(("twice", "zz_second_plugins 0.2")) == duplicate
    assert sorted(name for name, _ in failures) == sorted(reasons)
    assert "Traceback" not in stderr
