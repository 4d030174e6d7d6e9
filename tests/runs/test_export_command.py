"""``python -m lightning_app export``: any source to one tidy table."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from lightning_app.errors import UserError
from lightning_app.runs import load_runs
from lightning_app.runs.command import main

from .helpers import tree_snapshot


def test_export_to_parquet_and_back(wandb_runs, tmp_path, capsys):
    out = tmp_path / "runs.parquet"
    main(["--source", str(wandb_runs.root), "--to", str(out), "--group", "noise"])
    printed = capsys.readouterr()
    assert printed.out.strip() == (
        f"wrote 3 runs (12 run x epoch rows, epochs 0..3, 3 metrics, 10 config keys) to {out}"
    )
    table = pd.read_parquet(out)
    assert len(table) == 12 and set(table["group"]) == {"noise"}
    assert "config.model.hidden_size" in table.columns
    back = load_runs(str(out), progress=False)
    assert sorted(back.ids) == sorted(wandb_runs.ids[n] for n in ("noise0", "noise1", "noise2"))


def test_export_lists_skipped_runs_on_stderr(wandb_runs, tmp_path, capsys):
    out = tmp_path / "runs.csv"
    main(["--source", str(wandb_runs.root), "--to", str(out), "--metrics", "test/acc"])
    err = capsys.readouterr().err.splitlines()
    assert (
        f"skipped: {wandb_runs.ids['lossonly']}: does not log test/acc (it logs: train/loss)" in err
    )
    assert any(line.startswith(f"skipped: {wandb_runs.ids['nohistory']}: ") for line in err)
    assert pd.read_csv(out).columns[7] == "test/acc"


def test_export_rejects_bad_targets_before_reading(wandb_runs, tmp_path):
    with pytest.raises(UserError, match=r"--to .*runs\.xlsx: unknown table type"):
        main(["--source", str(wandb_runs.root), "--to", str(tmp_path / "runs.xlsx")])
    with pytest.raises(UserError, match="does not exist"):
        main(["--source", str(wandb_runs.root), "--to", str(tmp_path / "no" / "runs.csv")])


def test_export_never_writes_into_the_source(wandb_runs, tmp_path):
    before = tree_snapshot(wandb_runs.root)
    main(
        ["--source", str(wandb_runs.root), "--to", str(tmp_path / "r.parquet"), "--progress=false"]
    )
    assert tree_snapshot(wandb_runs.root) == before


def test_help_explains_sources_and_columns(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for expected in ("wandb://ENTITY/PROJECT", "config.model.hidden_size", "--to", "--group"):
        assert expected in text


@pytest.mark.process
def test_the_real_command_prints_one_line_errors(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lightning_app",
            "export",
            "--source",
            str(tmp_path / "missing"),
            "--to",
            str(tmp_path / "runs.parquet"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {tmp_path / 'missing'}: no such file or folder"
