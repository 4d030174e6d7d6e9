"""Reading offline W&B runs written by the real wandb client, and every bad input of issue 3."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lightning_app.errors import UserError
from lightning_app.runs import RunSet, load_runs
from lightning_app.runs import wandb_offline as offline_module

from .helpers import RUN_SPECS, tree_snapshot
from .wandb_writer import metric_value


def reasons(runs: RunSet) -> dict[str, str]:
    return {s.id: s.reason for s in runs.skipped}


def warnings_of(runs: RunSet, run_id: str) -> list[str]:
    return [w.message for w in runs.warnings if w.id == run_id]


# -- what a good read gives --------------------------------------------------------------------
def test_reads_every_run_with_meta_config_and_joined_epochs(wandb_runs):
    runs = load_runs(str(wandb_runs.root), progress=False)
    ids = wandb_runs.ids
    # nohistory is skipped (see its own test); everything else reads
    assert set(runs.ids) == set(ids.values()) - {ids["nohistory"]}

    noise0 = runs.run(ids["noise0"])
    assert noise0.group == "noise"
    assert noise0.tags == ("cpu", "seeds")
    assert noise0.state == "finished"
    assert noise0.sweep_id is None
    assert noise0.name == ids["noise0"]  # offline runs have no display name: the id stands in
    # Lightning logs each metric in its own row; one row per epoch comes back
    assert list(noise0.history.index) == [0, 1, 2, 3]
    assert set(noise0.history.columns) == {"train/loss", "val/acc", "test/acc"}
    spec = RUN_SPECS["noise0"]
    for epoch in range(4):
        for metric in ("train/loss", "val/acc", "test/acc"):
            assert noise0.history.loc[epoch, metric] == metric_value(spec, metric, epoch)


def test_config_is_flat_dotted_without_wandb_internals(wandb_runs):
    runs = load_runs(str(wandb_runs.root), progress=False)
    config = runs.run(wandb_runs.ids["noise1"]).config
    assert config == {
        "seed_everything": 1,
        "model.hidden_size": 128,
        "model.num_layers": 2,
        "model.learning_rate": 0.001,
        "data.batch_size": 100,
        "data.root": "data/",
        "trainer.max_epochs": 4,
        "trainer.accelerator": "cpu",
        "trainer.devices": 1,
    }
    assert not any(k.startswith("_wandb") for k in runs.config.columns)
    # a config.update after init (what WandbLogger.log_hyperparams does) is applied
    updated = runs.run(wandb_runs.ids["noise2"]).config
    assert updated["model.dropout"] == 0.1
    assert updated["model.hidden_size"] == 128


def test_state_comes_from_the_exit_record(wandb_runs):
    runs = load_runs(str(wandb_runs.root), progress=False)
    assert runs.run(wandb_runs.ids["failed"]).state == "failed"  # exit code 1
    assert set(runs.select(group="noise").meta["state"]) == {"finished"}


def test_filters_by_group_tag_state_and_config(wandb_runs):
    root = str(wandb_runs.root)
    noise = load_runs(root, group="noise", progress=False)
    assert sorted(noise.ids) == sorted(wandb_runs.ids[n] for n in ("noise0", "noise1", "noise2"))
    grid = load_runs(root, tags=["grid"], progress=False)
    assert sorted(grid.ids) == sorted(wandb_runs.ids[n] for n in ("signal64", "failed"))
    finished_signal = load_runs(root, group="signal", state="finished", progress=False)
    assert finished_signal.ids == [wandb_runs.ids["signal64"]]
    both = load_runs(root, group=["noise", "signal"], progress=False)
    assert len(both) == 5
    assert both.select(config={"model.hidden_size": 64}).ids == [wandb_runs.ids["signal64"]]


def test_no_match_names_the_source_and_the_groups_there(wandb_runs):
    with pytest.raises(UserError, match=r"no runs match group=nosie .*groups: .*noise") as err:
        load_runs(str(wandb_runs.root), group="nosie", progress=False)
    assert str(wandb_runs.root) in str(err.value)


def test_unknown_state_is_a_user_error(wandb_runs):
    with pytest.raises(UserError, match="unknown run state 'done'"):
        load_runs(str(wandb_runs.root), state="done", progress=False)


def test_unknown_option_is_a_type_error(wandb_runs):
    with pytest.raises(TypeError, match=r"unknown option.*per_pge"):
        load_runs(str(wandb_runs.root), per_pge=10)


def test_metric_matrix_is_runs_by_epochs(wandb_runs):
    runs = load_runs(str(wandb_runs.root), group="noise", progress=False)
    matrix = runs.metric_matrix("test/acc")
    assert matrix.values.shape == (3, 4)
    assert list(matrix.epochs) == [0, 1, 2, 3]
    row = list(matrix.run_ids).index(wandb_runs.ids["noise1"])
    expected = [metric_value(RUN_SPECS["noise1"], "test/acc", e) for e in range(4)]
    np.testing.assert_array_equal(matrix.values[row], expected)


def test_a_single_run_file_is_a_source(wandb_runs):
    runs = load_runs(str(wandb_runs.file("signal64")), progress=False)
    assert runs.ids == [wandb_runs.ids["signal64"]]


def test_a_sweep_output_folder_is_searched_recursively(wandb_copy, tmp_path):
    sweep = tmp_path / "sweeps" / "noise"
    wandb_copy("noise0", dest=sweep / "trial-0" / "wandb")
    wandb_copy("noise1", dest=sweep / "trial-1" / "wandb")
    (sweep / "trial-1" / "wandb" / "latest-run").symlink_to(
        next((sweep / "trial-1/wandb").iterdir())
    )
    runs = load_runs(str(tmp_path / "sweeps"), progress=False)
    assert len(runs) == 2
    assert not runs.skipped  # latest-run (a symlink) is not read a second time


def test_wide_runs_spanning_many_blocks_read_fully(wandb_runs):
    runs = load_runs(str(wandb_runs.file("long")), progress=False)
    run = runs.run(wandb_runs.ids["long"])
    assert len(run.history) == 150
    assert {"lr-Adam", "grad_norm"} <= set(run.history.columns)
    assert not runs.warnings


# -- bad input: each gives a one-line reason while the other runs still read -------------------
def assert_one_line(runs: RunSet) -> None:
    for item in [*runs.skipped, *runs.warnings]:
        text = getattr(item, "reason", None) or getattr(item, "message", "")
        assert text and "\n" not in text


def test_empty_folder_is_a_user_error(tmp_path):
    (tmp_path / "wandb").mkdir()
    with pytest.raises(UserError, match=r"wandb: empty folder, no runs to read"):
        load_runs(str(tmp_path / "wandb"))


def test_folder_without_runs_is_a_user_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "model.ckpt").write_bytes(b"\0" * 10)
    with pytest.raises(UserError, match=r"no runs found \(no W&B run files") as err:
        load_runs(str(tmp_path))
    assert str(tmp_path) in str(err.value)


def test_missing_path_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such file or folder"):
        load_runs(str(tmp_path / "nope"))


def test_truncated_file_keeps_rows_before_the_cut_and_is_crashed(wandb_runs, wandb_copy):
    root = wandb_copy("noise0", "noise1")
    run_id = wandb_runs.ids["noise1"]
    (target,) = root.glob(f"*/run-{run_id}.wandb")
    data = target.read_bytes()
    target.write_bytes(data[: int(len(data) * 0.6)])  # killed mid-run: no exit record
    old = target.stat().st_mtime - 3600
    os.utime(target, (old, old))  # ... an hour ago
    runs = load_runs(str(root), progress=False)
    assert len(runs) == 2
    run = runs.run(run_id)
    assert run.state == "crashed"
    assert 1 <= len(run.history) < 4
    spec = RUN_SPECS["noise1"]
    assert run.history.loc[0, "test/acc"] == metric_value(spec, "test/acc", 0)
    (warning,) = [w for w in warnings_of(runs, run_id) if "ends inside a record" in w]
    assert f"run-{run_id}.wandb" in warning
    assert warning.endswith(f"; {len(run.history)} epochs read")  # the epochs kept, counted
    assert runs.run(wandb_runs.ids["noise0"]).state == "finished"


def test_file_without_exit_record_still_being_written_is_running(wandb_runs, wandb_copy):
    root = wandb_copy("noise1")
    (target,) = root.glob("*/run-*.wandb")
    data = target.read_bytes()
    target.write_bytes(data[: int(len(data) * 0.6)])  # modified just now
    assert load_runs(str(root), progress=False).meta["state"].tolist() == ["running"]
    crashed = load_runs(str(root), progress=False, running_grace_s=0)
    assert crashed.meta["state"].tolist() == ["crashed"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file (0 bytes)"),
        (
            bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)),
            "not a W&B run file",
        ),
        (
            struct.pack("<4sHB", b":W&B", 0xBEE1, 7) + b"\x00" * 100,
            "unsupported W&B log format version 7",
        ),
    ],
    ids=["zero-bytes", "random-bytes", "wrong-version"],
)
def test_unreadable_content_is_skipped_with_reason(wandb_runs, wandb_copy, content, reason):
    root = wandb_copy("noise0", "noise1")
    bad_dir = root / "offline-run-20250101_000000-badrun01"
    bad_dir.mkdir()
    (bad_dir / "run-badrun01.wandb").write_bytes(content)
    runs = load_runs(str(root), progress=False)
    assert len(runs) == 2
    assert list(reasons(runs)) == ["badrun01"]
    assert reasons(runs)["badrun01"].startswith(
        f"offline-run-20250101_000000-badrun01/run-badrun01.wandb: {reason}"
    )
    assert_one_line(runs)


def test_wrong_header_version_on_a_real_file(wandb_runs, wandb_copy):
    root = wandb_copy("noise0", "noise1")
    (target,) = root.glob(f"*/run-{wandb_runs.ids['noise1']}.wandb")
    data = bytearray(target.read_bytes())
    data[6] = 1  # header version byte
    target.write_bytes(bytes(data))
    runs = load_runs(str(root), progress=False)
    assert runs.ids == [wandb_runs.ids["noise0"]]
    assert "unsupported W&B log format version 1" in reasons(runs)[wandb_runs.ids["noise1"]]


def test_run_with_no_history_is_skipped(wandb_runs):
    runs = load_runs(str(wandb_runs.root), progress=False)
    reason = reasons(runs)[wandb_runs.ids["nohistory"]]
    assert reason.endswith("no history: the run logged no metrics (state finished)")


def test_run_without_the_requested_metric_is_skipped(wandb_runs):
    runs = load_runs(
        str(wandb_runs.root), group=["noise", "odd"], metrics=["test/acc"], progress=False
    )
    lossonly = wandb_runs.ids["lossonly"]
    assert lossonly not in runs.ids
    assert reasons(runs)[lossonly] == "does not log test/acc (it logs: train/loss)"
    assert runs.metrics() == ["test/acc"]
    assert len(runs) == 4


def test_nan_and_inf_values_are_kept_and_reported(wandb_runs):
    runs = load_runs(str(wandb_runs.root), group="odd", progress=False)
    run_id = wandb_runs.ids["nonfinite"]
    hist = runs.run(run_id).history
    assert np.isnan(hist.loc[2, "train/loss"])
    assert hist.loc[2, "val/acc"] == np.inf  # row had only a global step: placed at epoch 2
    assert hist.loc[2, "test/acc"] == -np.inf
    messages = warnings_of(runs, run_id)
    for metric in ("train/loss", "val/acc", "test/acc"):
        assert any(f"{metric} has 1 NaN/inf values" in m for m in messages)


def test_synced_run_folders_are_a_source(wandb_runs, wandb_copy, tmp_path):
    """What ``wandb sync`` or an online run leaves: ``run-<date>-<id>/run-<id>.wandb``."""
    offline = wandb_copy("noise0", "noise1", dest=tmp_path / "offline")
    synced = tmp_path / "synced"
    for folder in offline.iterdir():
        shutil.copytree(folder, synced / folder.name.removeprefix("offline-"))
    assert sorted(p.name[:4] for p in synced.iterdir()) == ["run-", "run-"]
    runs = load_runs(str(synced), progress=False)
    expected = load_runs(str(offline), progress=False)
    assert sorted(runs.ids) == sorted(wandb_runs.ids[n] for n in ("noise0", "noise1"))
    pd.testing.assert_frame_equal(runs.history.sort_index(), expected.history.sort_index())
    pd.testing.assert_frame_equal(runs.config.sort_index(), expected.config.sort_index())


def test_duplicate_run_ids_keep_one_copy_and_say_which(wandb_runs, wandb_copy, tmp_path):
    root = tmp_path / "synced"
    wandb_copy("noise0", "noise1", dest=root / "machine-a" / "wandb")
    wandb_copy("noise1", dest=root / "machine-b" / "wandb")  # the same run synced twice
    runs = load_runs(str(root), progress=False)
    assert len(runs) == 2
    (skip,) = runs.skipped
    assert skip.id == wandb_runs.ids["noise1"]
    assert "duplicate run id: another copy of this run, machine-a/wandb/" in skip.reason
    assert "(finished, 4 epochs)" in skip.reason


def test_duplicate_prefers_the_complete_copy(wandb_runs, wandb_copy, tmp_path):
    root = tmp_path / "synced"
    wandb_copy("noise1", dest=root / "a" / "wandb")
    wandb_copy("noise1", dest=root / "b" / "wandb")
    (first,) = (root / "a").glob("wandb/*/run-*.wandb")
    first.write_bytes(first.read_bytes()[:1500])  # the first copy (in path order) is cut short
    runs = load_runs(str(root), progress=False, running_grace_s=0)
    assert runs.meta["state"].tolist() == ["finished"]
    assert len(runs.history) == 4
    assert "b/wandb/" in runs.skipped[0].reason


def test_parts_of_a_resumed_run_are_merged(wandb_runs):
    runs = load_runs(str(wandb_runs.root), group="resumed", progress=False)
    assert runs.ids == ["resumed01"]
    run = runs.run("resumed01")
    assert run.state == "finished"  # the last part ended cleanly
    assert list(run.history.index) == [0, 1, 2, 3, 4]
    first, second = RUN_SPECS["resumed_a"], RUN_SPECS["resumed_b"]
    assert run.history.loc[1, "val/acc"] == metric_value(first, "val/acc", 1)
    assert run.history.loc[2, "val/acc"] == metric_value(second, "val/acc", 2)  # redone: later wins
    assert run.history.loc[4, "val/acc"] == metric_value(second, "val/acc", 4)
    (warning,) = warnings_of(runs, "resumed01")
    assert "resumed run: merged 2 files:" in warning and "(epochs 2..4)" in warning
    assert not runs.skipped


def test_a_resumed_runs_part_without_history_is_not_a_skipped_run(wandb_runs, wandb_copy):
    """Killed before wandb wrote an epoch, then resumed: one run, its history from the later
    part, and the empty part named in a warning rather than listed as a run left out."""
    from wandb.proto import wandb_internal_pb2

    from lightning_app.runs.wandb_log import LogProblems, frame_payloads, iter_payloads

    root = wandb_copy("resumed_a", "resumed_b")
    first = root / wandb_runs.file("resumed_a").relative_to(wandb_runs.root)
    kept = []
    for payload in iter_payloads(first.read_bytes(), LogProblems()):
        record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]
        record.ParseFromString(payload)
        if record.WhichOneof("record_type") not in ("history", "exit"):
            kept.append(bytes(payload))
    first.write_bytes(frame_payloads(kept))  # the run record and config, no epoch, no exit
    runs = load_runs(str(root), progress=False, running_grace_s=0)
    assert runs.ids == ["resumed01"] and not runs.skipped
    assert list(runs.run("resumed01").history.index) == [2, 3, 4]
    (warning,) = warnings_of(runs, "resumed01")
    assert warning.endswith(
        f": {first.relative_to(root)}: a part without history (no history: the run logged no "
        "metrics before it was killed (state crashed))"
    )


def test_a_resumed_runs_part_killed_before_its_run_record_is_not_a_skipped_run(
    wandb_runs, wandb_copy
):
    root = wandb_copy("resumed_a", "resumed_b")
    first = root / wandb_runs.file("resumed_a").relative_to(wandb_runs.root)
    first.write_bytes(first.read_bytes()[:7])  # only the file header: killed while starting
    runs = load_runs(str(root), progress=False)
    assert runs.ids == ["resumed01"] and not runs.skipped
    assert list(runs.run("resumed01").history.index) == [2, 3, 4]
    (warning,) = warnings_of(runs, "resumed01")
    assert f"{first.relative_to(root)}: a part without history (empty run file" in warning


def test_different_metric_names_across_runs(wandb_runs):
    runs = load_runs(str(wandb_runs.root), group=["noise", "long"], progress=False)
    assert set(runs.metrics()) == {"train/loss", "val/acc", "test/acc", "lr-Adam", "grad_norm"}
    matrix = runs.metric_matrix("grad_norm")
    has = dict(zip(matrix.run_ids, ~np.isnan(matrix.values).all(axis=1), strict=True))
    assert has[wandb_runs.ids["long"]]
    assert not has[wandb_runs.ids["noise0"]]


def test_unreadable_file_dangling_link(wandb_runs, wandb_copy):
    root = wandb_copy("noise0")
    gone = root / "offline-run-20250101_000000-gone0001"
    gone.mkdir()
    (gone / "run-gone0001.wandb").symlink_to(gone / "deleted.wandb")  # its target was deleted
    runs = load_runs(str(root), progress=False)
    assert runs.ids == [wandb_runs.ids["noise0"]]
    assert reasons(runs)["gone0001"] == (
        "offline-run-20250101_000000-gone0001/run-gone0001.wandb: "
        "cannot read file: No such file or directory"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_file_without_read_permission(wandb_runs, wandb_copy):
    root = wandb_copy("noise0", "noise1")
    (target,) = root.glob(f"*/run-{wandb_runs.ids['noise1']}.wandb")
    target.chmod(0)
    try:
        runs = load_runs(str(root), progress=False)
    finally:
        target.chmod(0o644)
    assert "Permission denied" in reasons(runs)[wandb_runs.ids["noise1"]]


def test_permission_error_while_reading(wandb_runs, wandb_copy, monkeypatch):
    # These tests run as root here, where chmod 000 does not stop reads (the test above then
    # skips), so the EACCES the OS would raise is raised for one file instead.
    root = wandb_copy("noise0", "noise1")
    denied = f"run-{wandb_runs.ids['noise1']}.wandb"
    real_open = Path.open

    def guarded_open(self, *args, **kwargs):
        if self.name == denied:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(offline_module.Path, "open", guarded_open)
    runs = load_runs(str(root), progress=False)
    assert runs.ids == [wandb_runs.ids["noise0"]]
    assert reasons(runs)[wandb_runs.ids["noise1"]].endswith("cannot read file: Permission denied")


def test_all_runs_unreadable_is_a_user_error_naming_the_first_reason(tmp_path):
    run_dir = tmp_path / "wandb" / "offline-run-20250101_000000-aaaa0001"
    run_dir.mkdir(parents=True)
    (run_dir / "run-aaaa0001.wandb").write_bytes(b"")
    with pytest.raises(UserError, match=r"no readable runs \(1 skipped; first: aaaa0001: .*empty"):
        load_runs(str(tmp_path / "wandb"))


def test_reading_never_modifies_the_source(wandb_runs, wandb_copy, tmp_path):
    root = wandb_copy(*RUN_SPECS)
    bad = root / "offline-run-20250101_000000-trunc001"
    bad.mkdir()
    (bad / "run-trunc001.wandb").write_bytes(wandb_runs.file("noise0").read_bytes()[:900])
    (root / "offline-run-20250101_000000-zero0001").mkdir()
    (root / "offline-run-20250101_000000-zero0001" / "run-zero0001.wandb").write_bytes(b"")
    before = tree_snapshot(root)
    load_runs(str(root), progress=False)
    load_runs(str(root), group="noise", metrics=["test/acc"], progress=False)
    assert tree_snapshot(root) == before


def test_progress_off_when_not_a_tty(wandb_runs, capfd):
    load_runs(str(wandb_runs.root), progress=True)  # stderr is captured: not a TTY
    assert capfd.readouterr().err == ""


def test_copies_are_independent_of_the_session_files(wandb_runs, wandb_copy):
    # guard for the tests above: damaging a copy must not touch the session's originals
    root = wandb_copy("noise0")
    (target,) = root.glob("*/run-*.wandb")
    target.write_bytes(b"")
    assert wandb_runs.file("noise0").stat().st_size > 0
    shutil.rmtree(root)


def test_progress_bar_only_for_a_tty_and_when_asked(monkeypatch):
    from lightning_app.runs import read_progress as progress

    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: True)
    assert progress.progress_wanted(True)
    assert not progress.progress_wanted(False)
    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: False)
    assert not progress.progress_wanted(True)


def test_file_cut_before_the_run_record_is_skipped(wandb_runs, wandb_copy):
    root = wandb_copy("noise0", "noise1")
    (target,) = root.glob(f"*/run-{wandb_runs.ids['noise1']}.wandb")
    target.write_bytes(target.read_bytes()[:40])  # header record only, then killed
    runs = load_runs(str(root), progress=False)
    assert runs.ids == [wandb_runs.ids["noise0"]]
    assert reasons(runs)[wandb_runs.ids["noise1"]].endswith(
        "no run record in its 40 bytes: the process stopped before wandb wrote the run's start"
    )


def test_header_only_file_of_a_run_killed_early_says_so(wandb_runs, wandb_copy):
    # wandb-core buffers a new run's records for up to ~15 s: a run killed sooner leaves the
    # 7-byte file header and nothing else.
    root = wandb_copy("noise0", "noise1")
    (target,) = root.glob(f"*/run-{wandb_runs.ids['noise1']}.wandb")
    target.write_bytes(target.read_bytes()[:7])
    runs = load_runs(str(root), progress=False)
    assert runs.ids == [wandb_runs.ids["noise0"]]
    assert reasons(runs)[wandb_runs.ids["noise1"]].endswith(
        "empty run file (only its 7-byte header): the process stopped, or is still starting, "
        "before wandb wrote its first records (wandb-core buffers them for up to ~15 s)"
    )


def test_damage_in_the_middle_keeps_the_rest_with_a_warning(wandb_runs, wandb_copy):
    root = wandb_copy("long", "noise0")
    (target,) = root.glob(f"*/run-{wandb_runs.ids['long']}.wandb")
    data = bytearray(target.read_bytes())
    data[40_000] ^= 0xFF  # inside the second 32 KiB block
    target.write_bytes(bytes(data))
    runs = load_runs(str(root), progress=False)
    run = runs.run(wandb_runs.ids["long"])
    assert run.state == "finished"  # the exit record after the damage was still read
    assert 100 < len(run.history) < 150
    (warning,) = warnings_of(runs, wandb_runs.ids["long"])[:1]
    assert "damaged data at byte" in warning and "bytes skipped" in warning


def test_a_metric_logged_as_text_is_named_as_text(tmp_path: Path) -> None:
    """A real run that logged ``test/acc`` as text: the run is read, the text is not a number,
    and a warning says so with the metric named (what analyze's too-few-runs error quotes)."""
    specs = [
        {
            "group": "noise",
            "epochs": 2,
            "metrics": ["train/loss", "val/acc"],
            "text_rows": [{"epoch": e, "test/acc": "high"} for e in range(2)],
        }
    ]
    (tmp_path / "specs.json").write_text(json.dumps(specs))
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    writer = Path(__file__).with_name("wandb_writer.py")
    proc = subprocess.run(
        [sys.executable, str(writer), str(tmp_path), str(tmp_path / "specs.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = load_runs(str(tmp_path / "wandb"))
    (run,) = list(runs)
    assert "test/acc" not in run.history.columns
    assert "val/acc" in run.history.columns
    text = [w for w in runs.warnings if w.not_numbers == "test/acc"]
    assert [w.id for w in text] == [run.id]
    assert "test/acc was logged as text 2 time(s); read as missing" in text[0].message
