"""sweep --adaptive: bad input, a real adaptive sweep of tiny runs, resume mid-round, analyze."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from rich.console import Console

from lightning_app.commands import main
from lightning_app.sweeps import adaptive
from lightning_app.sweeps.layout import SweepFolder
from lightning_app.sweeps.plan import PlannedRun, plan_runs
from lightning_app.sweeps.runner import Summary
from lightning_app.sweeps.spec import load_sweep
from lightning_app.sweeps.state import Attempt, StateStore
from tests.conftest import InProcess
from tests.sweeps.conftest import run_sweep, start_sweep, sweep_file
from tests.sweeps.test_sweep_command import one_error_line

HIDDEN = {"model.hidden_size": {"values": [4, 16]}}


def adaptive_file(folder: Path, seeds: list[int], name: str = "adapt", **params) -> Path:
    parameters = {**HIDDEN, "seed_everything": {"values": seeds}, **params}
    return sweep_file(folder, parameters, name=name)


def record(folder: Path) -> dict:
    return json.loads((folder / "adaptive.json").read_text())


@pytest.mark.parametrize(
    ("parameters", "args", "message"),
    [
        (
            {**HIDDEN, "seed_everything": {"value": 0}},
            ["--adaptive"],
            "no seed key to vary (seed_everything has one value)",
        ),
        (HIDDEN, ["--adaptive"], "no seed key to vary;"),
        (
            {"seed_everything": {"values": [0, 1, 2]}},
            ["--adaptive"],
            "only the seed varies; there is no hyperparameter to test",
        ),
        (
            {**HIDDEN, "seed_everything": {"values": [0, 1, 2, 3]}},
            ["--adaptive", "--max-runs", "3"],
            "--max-runs 3 is smaller than one round: 2 configurations x 2 seed(s) = 4 runs",
        ),
        (
            {**HIDDEN, "seed_everything": {"values": [0, 1, 2, 3]}},
            ["--adaptive", "--count", "2"],
            "--count and --adaptive contradict each other",
        ),
        (
            {**HIDDEN, "seed_everything": {"values": [0, 1, 2, 3]}},
            ["--max-runs", "8"],
            "--max-runs applies only with --adaptive",
        ),
        (
            {**HIDDEN, "seed_everything": {"values": [0, 1, 2, 3]}},
            ["--adaptive", "--seeds-per-round", "5"],
            "lists only 4 values of seed_everything",
        ),
        (
            {**HIDDEN, "seed_everything": {"values": [0, 1]}},
            ["--adaptive", "--alpha", "1.5"],
            "--alpha must be between 0 and 1",
        ),
        (
            {
                **HIDDEN,
                "model.init_seed": {"values": [0, 1]},
                "data.shuffle_seed": {"values": [0, 1]},
            },
            ["--adaptive"],
            "several seed keys vary (data.shuffle_seed, model.init_seed)",
        ),
    ],
)
def test_bad_adaptive_input_is_one_line_and_exit_2_before_any_run(
    sweep_cli: InProcess, tmp_path: Path, parameters, args, message
) -> None:
    path = sweep_file(tmp_path, parameters, name="bad")
    line = one_error_line(sweep_cli(str(path), *args))
    assert message in line
    assert not (tmp_path / "sweeps").exists()


def test_a_random_sweep_cannot_be_adaptive(sweep_cli: InProcess, tmp_path: Path) -> None:
    path = sweep_file(
        tmp_path,
        {**HIDDEN, "seed_everything": {"values": [0, 1, 2]}},
        name="bad",
        method="random",
        run_cap=4,
    )
    assert "adaptive replicates needs method grid" in one_error_line(
        sweep_cli(str(path), "--adaptive")
    )


def test_dry_run_shows_the_rounds_and_the_look_levels(sweep_cli: InProcess, tmp_path: Path) -> None:
    path = adaptive_file(tmp_path, [0, 1, 2, 3])
    result = sweep_cli(str(path), "--adaptive", "--dry-run", "--max-runs", "7")
    assert result.returncode == 0, result.stderr
    assert "seeds of seed_everything 0,1,2 in 2 round(s) of 2; at most 6 runs" in result.stdout
    assert "look levels (obrien-fleming spending of alpha 0.05): 0.0164, 0.0336" in result.stdout


@pytest.mark.process
def test_an_adaptive_sweep_runs_looks_records_them_and_a_rerun_never_redecides(
    tmp_path: Path, sweep_cli: InProcess
) -> None:
    """Four tiny real runs (2 configurations x 2 seeds), one look, then reruns."""
    path = adaptive_file(tmp_path, [0, 1])
    folder = tmp_path / "sweeps" / "adapt"
    # train/loss: the tiny runs' test accuracy is often exactly 0 (too few batches to learn)
    args = ["--adaptive", "--workers", "2", "--metric", "train/loss"]
    result = sweep_cli(str(path), *args)  # in-process; the four runs are real trainings
    assert result.returncode == 0, result.stdout + result.stderr
    data = record(folder)
    assert data["design"]["looks"] == 1 and data["design"]["levels"] == [0.05]
    [look] = data["looks"]
    assert look["runs"] == 4 and look["seeds"] == 2 and look["epoch"] == 0
    hidden = look["params"]["model.hidden_size"]
    assert hidden["df_num"] == 1 and hidden["df_denom"] == 2
    assert hidden["significant"] == (hidden["p_adjusted"] < 0.05)
    assert data["stopped"]["look"] == 1 and data["stopped"]["runs"] == 4
    status = data["decisions"]["model.hidden_size"]["status"]
    assert status == ("significant" if hidden["significant"] else "not significant")
    assert "adaptive: stopped after look 1 with 4 of 4 runs" in result.stdout

    again = sweep_cli(str(path), *args)  # in-process: nothing to run
    assert again.returncode == 0, again.stdout + again.stderr
    assert "start " not in again.stdout and "stopped after look 1" in again.stdout
    assert record(folder) == data  # nothing run, nothing re-decided

    fixed = sweep_cli(str(path))
    assert "holds an adaptive sweep; rerun it with --adaptive" in one_error_line(fixed)


@pytest.mark.slow
def test_kill_mid_round_then_rerun_continues_and_analyze_reports_the_stop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rounds of 2 seeds (2 looks at most); the runner is killed (SIGKILL) mid-round and rerun."""
    path = adaptive_file(tmp_path, [0, 1, 2, 3])
    folder = tmp_path / "sweeps" / "adapt"
    args = [str(path), "--adaptive", "--workers", "2", "--metric", "train/loss"]
    runner = start_sweep(args, tmp_path)
    deadline = time.monotonic() + 900
    killed = False
    while time.monotonic() < deadline and runner.poll() is None:
        state_path = folder / "state.json"
        if state_path.exists():
            runs = json.loads(state_path.read_text())["runs"]
            statuses = [r["status"] for r in runs.values()]
            if "done" in statuses and "running" in statuses:
                runner.send_signal(signal.SIGKILL)
                killed = True
                break
        time.sleep(0.05)
    runner.wait()
    assert killed, "no run was mid-flight while another was done"
    before = record(folder)
    assert before["looks"] == [] and not before["stopped"]

    result = run_sweep(args, tmp_path, timeout=1500)  # 8 tiny runs: minutes on a busy machine
    assert result.returncode == 0, result.stdout + result.stderr
    assert "interrupted run(s) start again from scratch" in result.stdout
    data = record(folder)
    assert data["design"] == before["design"]
    assert [look["runs"] for look in data["looks"]] == [
        4 * (i + 1) for i in range(len(data["looks"]))
    ]
    assert data["stopped"]["look"] == len(data["looks"])
    assert all(look["continue"] for look in data["looks"][:-1])

    # A look made again from the same runs gives the same numbers: resuming never re-decides.
    spec = load_sweep(str(path))
    sweep_folder = SweepFolder(folder)
    options = adaptive.AdaptiveOptions(metric="train/loss")
    planned = [
        PlannedRun(i, r["key"], r["params"]) for i, r in enumerate(sweep_folder.load_plan()["runs"])
    ]
    rounds = adaptive.plan_rounds(spec, planned, options)
    again = adaptive.make_look(sweep_folder, spec, rounds, options, 1)
    assert again["params"] == data["looks"][0]["params"]

    noise = sweep_file(tmp_path, {"seed_everything": {"values": [5, 6, 7]}}, name="noise")
    assert run_sweep([str(noise), "--workers", "2"], tmp_path, timeout=900).returncode == 0
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "report"
    try:
        main(
            [
                "analyze",
                "--source",
                "sweeps/",
                "--noise",
                "noise",
                "--signal",
                "adapt",
                "--out",
                str(out),
                "--analyses",
                "signal-effects",
                "--permutations",
                "50",
                "--metric",
                "train/loss",
            ]
        )
    except SystemExit as exit_info:
        assert not exit_info.code, capsys.readouterr()
    report = json.loads((out / "report.json").read_text())
    assert report["adaptive"]["stopped"] == data["stopped"]
    assert "## Adaptive replicates: how the signal sweep stopped" in (out / "report.md").read_text()
    assert "adaptive replicates" in capsys.readouterr().out


def test_max_hours_stops_before_a_round_that_would_end_past_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The budget check between rounds, with the runner and the look stubbed (no training)."""
    path = adaptive_file(tmp_path, [0, 1, 2, 3])
    spec = load_sweep(str(path))
    runs = plan_runs(spec)
    options = adaptive.AdaptiveOptions(max_hours=0.02)  # 72 s
    rounds = adaptive.plan_rounds(spec, runs, options)
    folder = SweepFolder(tmp_path / "sweeps" / "adapt")
    folder.create(spec, runs, {"count": None})
    started: list[int] = []

    def run_round(todo: list[PlannedRun]) -> Summary:
        store = StateStore(folder.root)
        for run in todo:
            if store.status(run.key) != "done":
                record = store.get(run.key)
                record.status = "done"
                record.attempts = [Attempt(1, started=0.0, ended=30.0, outcome="done")]
        store.save()
        started.append(len(todo))
        return Summary(done=len(todo), elapsed_s=30.0)

    def look(folder, spec, rounds, options, number):  # an open parameter at every look
        res = {
            "df_num": 1,
            "df_denom": 2,
            "f_statistic": 1.0,
            "p_value": 0.3,
            "p_adjusted": 0.3,
            "significant": False,
            "futile": False,
            "power_at_budget": 0.9,
        }
        return {
            "look": number,
            "runs": 4 * number,
            "level": 0.01,
            "epoch": 0,
            "params": {"model.hidden_size": res},
        }

    monkeypatch.setattr(adaptive, "make_look", look)
    console = Console(record=True)
    adaptive.run_adaptive(console, folder, spec, rounds, options, run_round, lambda s, n: None, 2)
    data = record(folder.root)
    assert started == [4]  # round 2 would take 2 x 30 s more: 90 s > 72 s
    assert data["stopped"]["code"] == "max-hours" and data["stopped"]["look"] == 1
    assert data["decisions"]["model.hidden_size"]["status"] == "not significant"
    assert "--max-hours: 0.01 h run so far" in console.export_text()


def test_a_round_that_does_not_finish_ends_the_sweep_with_its_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No look after a stopped or failed round: the command exits as a fixed sweep would."""
    from lightning_app.sweeps.command import exit_status

    path = adaptive_file(tmp_path, [0, 1, 2, 3])
    spec = load_sweep(str(path))
    runs = plan_runs(spec)
    options = adaptive.AdaptiveOptions()
    rounds = adaptive.plan_rounds(spec, runs, options)
    folder = SweepFolder(tmp_path / "sweeps" / "adapt")
    folder.create(spec, runs, {"count": None})
    looks: list[int] = []
    monkeypatch.setattr(adaptive, "make_look", lambda *args: looks.append(1))
    reported: list[int] = []
    for summary, code in ((Summary(stopped=True), 130), (Summary(failed=["x"]), 1)):

        def run_round(todo: list[PlannedRun], summary: Summary = summary) -> Summary:
            return summary

        outcome = adaptive.run_adaptive(
            Console(record=True), folder, spec, rounds, options, run_round,
            lambda s, n: reported.append(n), 2,
        )  # fmt: skip
        assert outcome.unfinished is summary and exit_status(summary) == code
    assert not looks and reported == [4, 4]
    assert record(folder.root)["looks"] == [] and record(folder.root)["stopped"] is None
