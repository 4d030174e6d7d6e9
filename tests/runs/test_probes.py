"""Plausible mistakes with ``export``, each through the real command in-process.

A probe is one bad input: the command must exit 2 with exactly one ``error:`` line on stderr that
names the flag or file at fault, print no traceback, and leave the working folder and the source
runs as they were (nothing created, nothing changed). Every path is checked before a run is read.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning_app.runs import wandb_offline
from tests.probes import one_line_error

from .helpers import first_record_offset, record_offsets, tree_snapshot


@pytest.fixture
def export_probe(in_process, wandb_runs, tmp_path: Path):
    """Run ``export`` with ``argv`` and check the one line, exit 2 and nothing touched."""
    (tmp_path / "a-file").write_text("not a folder\n")
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "empty").mkdir()
    (tmp_path / "no-epoch.csv").write_text("id,acc\nr1,0.5\n")
    (tmp_path / "bad.yaml").write_text("to: [out.csv\n")

    def probe(needle: str, *argv: str, source: str | None = None) -> str:
        before = (tree_snapshot(tmp_path), tree_snapshot(wandb_runs.root))
        given = ["--source", source if source is not None else str(wandb_runs.root)]
        result = in_process("export")(*given, *argv)
        line = one_line_error(result, needle)
        assert (tree_snapshot(tmp_path), tree_snapshot(wandb_runs.root)) == before
        return line

    return probe


PATH_PROBES = {
    "to under /proc": (["--to", "/proc/out.csv"], "--to /proc/out.csv: cannot write in /proc"),
    "to under a file": (["--to", "a-file/out.csv"], "--to a-file/out.csv: "),
    "to a folder": (["--to", "a-folder"], "--to a-folder: a folder is there"),
    "to unknown suffix": (["--to", "runs.xlsx"], "--to runs.xlsx: unknown table type '.xlsx'"),
    "to missing folder": (["--to", "nowhere/runs.csv"], "folder nowhere does not exist"),
}
OPTION_PROBES = {
    "progress not a bool": (
        ["--to", "r.csv", "--progress", "maybe"],
        "error: --progress: expected true or false; got 'maybe'",
    ),
    "group without a value": (["--to", "r.csv", "--group"], "error: --group: expected a value"),
    "to missing": ([], "error: --to is required"),
    "unknown option": (["--to", "r.csv", "--grup", "noise"], "--grup: unknown option"),
    "malformed config": (["--config", "bad.yaml"], "--config bad.yaml: malformed YAML at line"),
    "missing config": (["--config", "nope.yaml"], "error: --config nope.yaml: cannot read it"),
    "no run has the metric": (["--to", "r.csv", "--metrics", "val/loss"], "no run logs val/loss"),
    "unknown group": (["--to", "r.csv", "--group", "nope"], "no runs match"),
    "unknown state": (["--to", "r.csv", "--state", "done"], "error: --state: unknown run state"),
}


@pytest.mark.parametrize("case", list(PATH_PROBES))
def test_a_bad_target_is_one_line_before_any_run_is_read(export_probe, case: str) -> None:
    argv, needle = PATH_PROBES[case]
    export_probe(needle, *argv)


def test_a_file_in_the_way_is_named_not_called_a_missing_folder(export_probe, tmp_path) -> None:
    line = export_probe("--to a-file/out.csv", "--to", "a-file/out.csv")
    assert line.endswith(f"{tmp_path / 'a-file'} is a file, not a folder")


@pytest.mark.parametrize("case", list(OPTION_PROBES))
def test_an_option_mistake_is_one_line_naming_the_flag(export_probe, case: str) -> None:
    argv, needle = OPTION_PROBES[case]
    export_probe(needle, *argv)


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("missing", "missing: no such file or folder"),
        ("empty", "empty: empty folder, no runs to read"),
        ("no-epoch.csv", "no-epoch.csv: not a tidy run table (no 'epoch' column)"),
        ("a-file", "a-file: not a run source"),
    ],
)
def test_a_bad_source_is_one_line_naming_it(export_probe, source: str, needle: str) -> None:
    export_probe(needle, "--to", "r.csv", source=source)


def test_the_source_table_is_never_the_target(export_probe, tmp_path) -> None:
    """``--to`` naming the tidy file being read would replace the runs with their export."""
    source = tmp_path / "runs.csv"
    source.write_text("id,group,epoch,acc\nr1,noise,0,0.5\n")
    export_probe("--to runs.csv: this is the --source file", "--to", "runs.csv", source="runs.csv")


def test_a_truncated_file_is_called_truncated(in_process, wandb_runs, wandb_copy) -> None:
    """2 of 3 noise runs cut inside their first history record: listed as truncated, with the
    byte, not as runs that logged nothing yet."""
    root = wandb_copy("noise0", "noise1", "noise2")
    cuts = {}
    for name in ("noise1", "noise2"):
        (target,) = root.glob(f"*/run-{wandb_runs.ids[name]}.wandb")
        data = target.read_bytes()
        cuts[name] = first_record_offset(data, "history")
        target.write_bytes(data[: cuts[name] + 9])
    result = in_process("export")("--source", str(root), "--to", "runs.csv")
    assert result.returncode == 0, result.stderr
    for name, offset in cuts.items():
        run_id = wandb_runs.ids[name]
        (line,) = [x for x in result.stderr.splitlines() if x.startswith(f"skipped: {run_id}:")]
        assert line.endswith(
            f"run-{run_id}.wandb: truncated .wandb file: it ends inside a record at byte "
            f"{offset}, before any metrics"
        )
    assert "no metrics yet" not in result.stderr


def test_a_file_cut_inside_any_record_says_truncated(wandb_runs, tmp_path) -> None:
    """Cut inside each record in turn, from the first to the exit record: every cut says
    truncated, on the run kept (the epochs before the cut) or as the reason it was skipped."""
    data = wandb_runs.file("noise0").read_bytes()
    target = tmp_path / "offline-run-x" / f"run-{wandb_runs.ids['noise0']}.wandb"
    target.parent.mkdir()
    offsets = record_offsets(data)
    assert {"run", "history", "exit"} <= {kind for _, kind in offsets}
    for offset, kind in offsets:
        target.write_bytes(data[: offset + 3])
        result = wandb_offline.read_run_file(target)
        said = result.skipped or "; ".join(result.warnings)
        assert said.startswith("truncated .wandb file: "), (kind, said)
        assert f"ends inside a record at byte {offset}" in said, (kind, said)
