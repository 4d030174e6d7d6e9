"""``analyze`` end to end on real offline W&B runs, and its messages for bad input."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from lightning_app.analysis.command import main
from lightning_app.errors import UserError


@pytest.fixture(scope="module")
def report_dir(wandb_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    main(
        [
            "--source",
            str(wandb_dir),
            "--noise",
            "noise",
            "--signal",
            "signal",
            "--out",
            str(out),
            "--permutations",
            "999",
            "--runs-needed.min_effect",
            "0.002",
        ]
    )
    return out


def test_report_json_contract(report_dir: Path) -> None:
    report = json.loads((report_dir / "report.json").read_text())
    assert report["metric"] == "test/acc"
    assert report["noise"] == {"group": "noise", "runs": 10}
    assert report["signal"] == {"group": "signal", "runs": 12}
    assert report["skipped_runs"] == []
    # seed_everything, paths and names vary too, but are not parameters.
    assert list(report["params"]) == ["data.batch_size", "model.hidden_size"]
    analyses = report["analyses"]
    assert list(analyses) == ["noise-baseline", "signal-effects", "runs-needed", "epoch-dynamics"]
    base = analyses["noise-baseline"]
    assert {"final_epoch", "final_mean", "final_std", "final_range", "per_epoch"} <= set(base)
    assert base["final_epoch"] == 3 and len(base["per_epoch"]) == 4
    hidden = analyses["signal-effects"]["params"]["model.hidden_size"]
    assert {"effect", "noise_effect", "ratio", "p_value", "verdict"} <= set(hidden)
    assert hidden["verdict"] == "signal" and hidden["best_value"] == "64"
    assert hidden["effect"] == pytest.approx(0.014, abs=0.003)
    plan = analyses["runs-needed"]["params"]["model.hidden_size"]
    assert {"effect", "runs_per_group", "alpha", "power"} <= set(plan)
    assert report["runs"]["runs-needed"]["options"]["min_effect"] == 0.002


def test_report_md_and_figures(report_dir: Path) -> None:
    md = (report_dir / "report.md").read_text()
    assert md.startswith("# Signal vs noise: `test/acc`")
    for section in (
        "## noise-baseline",
        "## signal-effects",
        "## runs-needed",
        "## epoch-dynamics",
    ):
        assert section in md
    assert "| parameter |" in md and "model.hidden_size: signal." in md
    links = [line.split("](")[1].rstrip(")") for line in md.splitlines() if line.startswith("![")]
    assert len(links) >= 7
    for link in links:
        png = (report_dir / link).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and 5_000 < len(png) < 400_000


def test_terminal_shows_findings_and_tables(
    wandb_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(
        [
            "--source",
            str(wandb_dir),
            "--noise",
            "noise",
            "--signal",
            "signal",
            "--out",
            str(tmp_path),
            "--analyses",
            "signal-effects",
            "--permutations",
            "199",
            "--params",
            "model.hidden_size",
            "--epoch",
            "2",
        ]
    )
    out = capsys.readouterr().out
    assert "Signal effect vs noise effect at epoch 2" in out
    assert "model.hidden_size: signal. At epoch 2" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert list(report["analyses"]) == ["signal-effects"] and report["epoch"] == 2
    assert list(report["params"]) == ["model.hidden_size"]


def test_options_from_a_config_file(wandb_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "analyze.yaml"
    config.write_text(
        textwrap.dedent(f"""
        source: {wandb_dir}
        noise: noise
        signal: signal
        analyses: [signal-effects]
        permutations: 199
        out: {tmp_path / "out"}
        signal-effects:
          signal_ratio: 1000.0
          correction: bonferroni
    """)
    )
    main(["--config", str(config)])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    effects = report["analyses"]["signal-effects"]
    assert effects["correction"] == "bonferroni" and effects["signal_ratio"] == 1000.0
    # No effect here is 1000x its noise: the strong one is now "weak", proving the option is used.
    assert effects["params"]["model.hidden_size"]["verdict"] == "weak"


def test_runs_needed_follows_signal_effects_options(wandb_dir: Path, tmp_path: Path) -> None:
    """--signal-effects.error pooled alone makes runs-needed plan for the pooled error term, as
    --runs-needed.error pooled does, even when signal-effects itself is not run."""

    def plan(name: str, *options: str) -> dict[str, Any]:
        out = tmp_path / name
        common = ["--source", str(wandb_dir), "--noise", "noise", "--signal", "signal"]
        run = ["--permutations", "99", "--analyses", "runs-needed", "--runs-needed.resamples", "0"]
        main([*common, "--out", str(out), *run, *options])
        report = json.loads((out / "report.json").read_text())
        return dict(report["analyses"]["runs-needed"])

    followed = plan("followed", "--signal-effects.error", "pooled")
    explicit = plan("explicit", "--runs-needed.error", "pooled")
    default = plan("default")
    assert followed["error"] == explicit["error"] == "pooled" != default["error"]
    assert followed["params"] == explicit["params"] != default["params"]
    assert "error" in followed["as_signal_effects"]
    assert "error" not in explicit["as_signal_effects"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--noise", "noise", "--signal", "signal"], "--source is required"),
        (["--noise", "noise"], "--source is required"),
        (["--analyses", "noise-baseline,nope"], "unknown analysis 'nope'; registered: "),
        (["--signal-effects.alpha", "2"], "--signal-effects: alpha must be between 0 and 1"),
        (  # the decision rule runs-needed plans for is refused at start, selected or not
            ["--analyses", "runs-needed", "--signal-effects.alpha", "2"],
            "--signal-effects: alpha must be between 0 and 1",
        ),
        (["--params", " , "], "--params is empty"),
        (["--out", __file__], "--out .*test_command.py: a file is there; the report needs a"),
    ],
)
def test_bad_arguments(argv: list[str], message: str) -> None:
    base = ["--source", "somewhere", "--noise", "noise", "--signal", "signal"]
    if "--source is required" in message:
        base = []
    with pytest.raises(UserError, match=message):
        main([*base, *argv])


def test_unknown_group_names_the_groups_there(wandb_dir: Path) -> None:
    with pytest.raises(UserError, match=r"--signal: no runs in group 'sweep'.*'noise', 'signal'"):
        main(["--source", str(wandb_dir), "--noise", "noise", "--signal", "sweep"])


def test_invalid_option_value_is_rejected_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--signal-effects.correction", "magic", "--list"])
    assert exit_info.value.code == 2
    assert "correction" in capsys.readouterr().err


def test_help_explains_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "bigger than what re-running" in out
    for flag in (
        "--source",
        "--noise",
        "--signal",
        "--metric",
        "--epoch",
        "--params",
        "--analyses",
        "--out",
        "--wandb",
        "--list",
        "--signal-effects.signal_ratio",
        "--runs-needed.min_effect",
        "--epoch-dynamics.center",
    ):
        assert flag in out


def test_list_shows_name_description_and_package(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--list"])
    out = capsys.readouterr().out
    assert out.index("noise-baseline") < out.index("signal-effects") < out.index("runs-needed")
    assert "lightning-signal-noise 0.1.0" in out and "Levene" in out


def test_the_command_fails_cleanly(in_process) -> None:
    """Through ``python -m lightning_app``'s dispatcher: routed here, exit 2 with one line on
    stderr (test_bad_input_command.py runs the real process)."""
    bad = in_process("analyze")("--noise", "a", "--signal", "b")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: --source is required (see --help)"


def test_wandb_flag_logs_an_analysis_run(
    wandb_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(
        [
            "--source",
            str(wandb_dir),
            "--noise",
            "noise",
            "--signal",
            "signal",
            "--out",
            str(tmp_path),
            "--analyses",
            "noise-baseline",
            "--permutations",
            "9",
            "--wandb",
            "--wandb-mode",
            "offline",
        ]
    )
    out = capsys.readouterr().out
    assert "W&B: logged analysis run" in out and "'lightning_app'" in out
    assert len(list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))) == 1
