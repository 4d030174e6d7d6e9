"""Plausible mistakes with ``analyze``, each through the real command in-process.

A probe is one bad input: the command must exit 2 with exactly one ``error:`` line on stderr that
names the flag or file at fault, print no traceback, and leave the working folder and the source
as they were: no report folder, no file created, nothing changed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.probes import one_line_error
from tests.runs.helpers import first_record_offset, tree_snapshot

from .test_bad_input_command import write_source


@pytest.fixture
def analyze_probe(in_process, tmp_path: Path):
    """Run ``analyze`` on a small tidy source (``runs.csv``, or ``source=``) with ``argv``."""
    write_source(tmp_path / "runs.csv")
    (tmp_path / "a-file").write_text("not a folder\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    (tmp_path / "bad.yaml").write_text("signal-effects: [alpha\n")
    (tmp_path / "bogus.yaml").write_text("signal-effects:\n  error: bogus\n")
    (tmp_path / "no-epoch.csv").write_text("id,group,test/acc\nr1,noise,0.5\n")
    frame = pd.read_csv(tmp_path / "runs.csv")
    frame["test/acc"] = frame["test/acc"].astype(object)
    text = frame.copy()
    text.loc[text["id"].isin(["n0", "n1"]), "test/acc"] = "high"  # two noise runs: text
    text.to_csv(tmp_path / "text.csv", index=False)
    disjoint = frame.copy()  # every run has a number, but never at the same epoch
    disjoint["val/acc"] = pd.to_numeric(frame["test/acc"])
    disjoint.loc[(disjoint["group"] == "noise") & (disjoint["epoch"] == 1), "test/acc"] = "n/a?"
    disjoint.loc[(disjoint["group"] == "signal") & (disjoint["epoch"] == 0), "test/acc"] = "oops"
    disjoint.to_csv(tmp_path / "disjoint.csv", index=False)
    column = frame.copy()  # a column of text beside a numeric one
    column["val/acc"] = pd.to_numeric(frame["test/acc"])
    column["test/acc"] = "pending"
    column.to_csv(tmp_path / "column.csv", index=False)

    def probe(needle: str, *argv: str, source: str = "runs.csv", root: Path = tmp_path) -> str:
        before = (tree_snapshot(tmp_path), tree_snapshot(root))
        groups = ["--noise", "noise", "--signal", "signal"]
        result = in_process("analyze")("--source", source, *groups, "--out", "report", *argv)
        line = one_line_error(result, needle)
        assert (tree_snapshot(tmp_path), tree_snapshot(root)) == before
        return line

    return probe


PROBES: dict[str, tuple[list[str], str]] = {
    # --out is checked before any run is read
    "out under /proc": (["--out", "/proc/rep"], "error: --out /proc/rep: cannot write in /proc"),
    "out under a file": (["--out", "a-file/rep"], "a-file is a file, not a folder"),
    "out is a file": (["--out", "a-file"], "--out a-file: a file is there; the report needs a"),
    "out is a broken link": (["--out", "dangling"], "--out dangling: a broken link is there"),
    # option values: the flag as typed and what it accepts
    "literal option": (
        ["--signal-effects.error", "bogus"],
        "error: --signal-effects.error: expected one of signal, noise, pooled; got 'bogus'",
    ),
    "optional literal": (
        ["--wandb", "--wandb-mode", "bogus"],
        "error: --wandb-mode: expected one of online, offline; got 'bogus'",
    ),
    "int or final": (["--epoch", "abc"], "error: --epoch: expected an integer or 'final'; got"),
    "int": (["--permutations", "many"], "error: --permutations: expected an integer; got 'many'"),
    "float not int": (["--seed", "1.5"], "error: --seed: expected an integer; got '1.5'"),
    "float": (["--signal-effects.alpha", "x"], "--signal-effects.alpha: expected a number"),
    "optional float": (["--runs-needed.min_effect", "x"], "--runs-needed.min_effect: expected a"),
    "switch given a value": (["--wandb", "maybe"], "error: --wandb: takes no value"),
    "unknown option": (["--nosie", "noise"], "error: --nosie: unknown option; did you mean"),
    "option without value": (["--metric"], "error: --metric: expected a value"),
    "missing config": (["--config", "nope.yaml"], "error: --config nope.yaml: cannot read it"),
    "malformed config": (["--config", "bad.yaml"], "--config bad.yaml: malformed YAML at line 2"),
    "bad value in config": (
        ["--config", "bogus.yaml"],
        "error: --config bogus.yaml: signal-effects.error: expected one of signal, noise, pooled",
    ),
    "option out of range": (["--signal-effects.alpha", "2"], "--signal-effects: alpha must be"),
    "permutations zero": (["--permutations", "0"], "--permutations must be at least 1"),
    "negative seed": (["--seed", "-1"], "error: --seed must be 0 or more"),
    "unknown analysis": (["--analyses", "nope"], "--analyses: unknown analysis 'nope'"),
    # the data: groups, metric, epoch, parameters
    "unknown group": (["--signal", "sweep"], "--signal: no runs in group 'sweep'"),
    "same group twice": (["--signal", "noise"], "--noise and --signal name the same group"),
    "unknown metric": (["--metric", "val/loss"], "--metric: no run logged 'val/loss'"),
    "epoch beyond the last": (["--epoch", "99"], "--epoch 99: no run logged that epoch"),
    "unknown parameter": (["--params", "model.hiden_size"], "--params: no signal run has config"),
    "empty parameters": (["--params", " , "], "--params is empty"),
}


@pytest.mark.parametrize("case", list(PROBES))
def test_a_mistake_is_one_line_and_leaves_nothing(analyze_probe, case: str) -> None:
    argv, needle = PROBES[case]
    analyze_probe(needle, *argv)


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("missing", "error: missing: no such file or folder"),
        ("empty", "error: empty: empty folder, no runs to read"),
        ("a-file", "error: a-file: not a run source"),
        ("no-epoch.csv", "no-epoch.csv: not a tidy run table (no 'epoch' column)"),
    ],
)
def test_a_bad_source_is_one_line_naming_it(analyze_probe, source: str, needle: str) -> None:
    analyze_probe(needle, source=source)


def test_text_in_the_metric_column_is_called_text(analyze_probe) -> None:
    """Two of four noise runs hold text: the two are named, with the text, as skipped."""
    line = analyze_probe("only 2 noise run(s) in group 'noise' have 'test/acc'", source="text.csv")
    assert line.endswith(
        "; skipped: n0 (text.csv: no history: its metric values are not numbers "
        "(test/acc: 'high')), n1 (text.csv: no history: its metric values are not numbers "
        "(test/acc: 'high'))"
    )


def test_a_metric_column_of_text_is_not_called_unlogged(analyze_probe) -> None:
    line = analyze_probe(
        "error: --metric test/acc: the 'test/acc' values are not numbers", source="column.csv"
    )
    assert "column 'test/acc' is not numeric" in line


def test_text_at_every_shared_epoch_is_not_blamed_on_epochs(analyze_probe) -> None:
    line = analyze_probe("no epoch has a number for 'test/acc'", source="disjoint.csv")
    assert "are not all numbers" in line and "n0, n1" in line
    assert "disjoint epochs" not in line


def test_damaged_noise_runs_are_named_with_why(analyze_probe, wandb_dir: Path, tmp_path) -> None:
    """8 of 10 real noise runs cut inside their first history record: the error names each."""
    root = tmp_path / "runs-copy"
    shutil.copytree(wandb_dir, root, symlinks=True)
    cut = {}
    files = sorted(root.glob("*/run-*.wandb"))
    for path in files:
        data = path.read_bytes()
        if b"noise" in data[: first_record_offset(data, "history")] and len(cut) < 8:
            cut[path.stem.removeprefix("run-")] = first_record_offset(data, "history")
            path.write_bytes(data[: cut[path.stem.removeprefix("run-")] + 9])
    assert len(cut) == 8
    line = analyze_probe(
        "only 2 noise run(s) in group 'noise' have 'test/acc'", source=str(root), root=root
    )
    for run_id, offset in cut.items():
        assert (
            f"{run_id} (offline-run-" in line
            and f"run-{run_id}.wandb: truncated .wandb file: it ends inside a record at "
            f"byte {offset}, before any metrics)"
            in line
        )


def test_a_group_whose_every_run_is_damaged_names_them(analyze_probe, wandb_dir, tmp_path) -> None:
    """All 10 noise runs cut before their first metric: the group is not just "not there"."""
    root = tmp_path / "runs-copy"
    shutil.copytree(wandb_dir, root, symlinks=True)
    cut = []
    for path in sorted(root.glob("*/run-*.wandb")):
        data = path.read_bytes()
        offset = first_record_offset(data, "history")
        if b"noise" in data[:offset]:
            path.write_bytes(data[: offset + 9])
            cut.append(path.stem.removeprefix("run-"))
    assert len(cut) == 10
    line = analyze_probe("--noise: no runs in group 'noise' in", source=str(root), root=root)
    assert "groups found: 'signal'; skipped: " in line
    assert line.count("truncated .wandb file: it ends inside a record at byte") == 10
    assert all(f"{run_id} (offline-run-" in line for run_id in cut)
