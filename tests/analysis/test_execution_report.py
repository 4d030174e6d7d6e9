"""A plugin that raises or returns garbage is reported and the others still run; the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure as MplFigure

from analyses.noise_baseline import NoiseBaseline
from lightning_app.analysis import (
    Analysis,
    AnalysisContext,
    AnalysisResult,
    Figure,
    Selection,
    Table,
    build_context,
)
from lightning_app.analysis.command import Prepared, analyze
from lightning_app.analysis.execution import run_analysis, to_jsonable
from lightning_app.analysis.report import render_markdown, write_report
from lightning_app.errors import UserError
from lightning_app.runs.runset import RunSet


class Raises(Analysis):
    name = "raises"
    description = "Always raises."

    def run(self, runs: RunSet, context: AnalysisContext) -> AnalysisResult:
        raise RuntimeError("boom")


class Garbage(Analysis):
    name = "garbage"
    description = "Returns what it is given."

    def __init__(self, result: Any = None) -> None:
        self.result = result

    def run(self, runs: RunSet, context: AnalysisContext) -> AnalysisResult:
        return self.result


class BestRun(Analysis):
    name = "best-run"
    description = "The best signal run."

    def run(self, runs: RunSet, context: AnalysisContext) -> AnalysisResult:
        best = int(np.argmax(context.signal_at_epoch))
        fig = MplFigure(figsize=(3, 2))
        fig.add_subplot().plot(context.epochs, context.signal[best])
        return AnalysisResult(
            summary={
                "run": context.signal_ids[best],
                "value": context.signal_at_epoch[best],
                "missing": np.nan,
            },
            findings=[f"Best run {context.signal_ids[best]}."],
            tables=[
                Table(
                    "best",
                    pd.DataFrame(
                        {
                            "run": [context.signal_ids[best]],
                            "value": [context.signal_at_epoch[best]],
                        }
                    ),
                    {"value": ".2%"},
                )
            ],
            figures=[Figure("curve", "Its curve | with a pipe.", fig)],
        )


@pytest.fixture(scope="module")
def prepared(planted: RunSet) -> tuple[AnalysisContext, RunSet]:
    return build_context(planted, Selection("noise", "signal", permutations=99))


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ({"effect": 1}, "expected an AnalysisResult, got dict"),
        (AnalysisResult(summary=[1, 2]), "summary must be a dict"),  # type: ignore[arg-type]
        (AnalysisResult(summary={"x": object()}), "summary is not JSON-able: summary.x holds"),
        (AnalysisResult(summary={1: 2}), "non-string key"),  # type: ignore[dict-item]
        (AnalysisResult(findings=["ok", 3]), "findings must be a list of strings"),  # type: ignore[list-item]
        (AnalysisResult(tables=[pd.DataFrame()]), "Table objects"),
        (AnalysisResult(figures=[Figure("Bad Name", "", MplFigure())]), "figure name 'Bad Name'"),
        (AnalysisResult(figures=[Figure("a", "", "not a figure")]), "matplotlib Figure"),  # type: ignore[arg-type]
    ],
)
def test_garbage_results_are_failures_with_a_reason(
    prepared: tuple[AnalysisContext, RunSet], result: Any, message: str
) -> None:
    context, runs = prepared
    outcome = run_analysis(Garbage(result), runs, context)
    assert not outcome.ok and outcome.result is None
    assert outcome.error is not None and "returned an invalid result" in outcome.error
    assert message in outcome.error


def test_a_raising_plugin_is_reported_with_its_line_and_the_others_run(
    planted: RunSet, tmp_path: Path
) -> None:
    prepared = Prepared(
        analyses=[
            (Raises(), "my-plugin 0.1", {}),
            (NoiseBaseline(), "built-in", {}),
            (BestRun(), "my-plugin 0.1", {}),
        ],
        order=["raises", "noise-baseline", "best-run"],
    )
    report = analyze(planted, Selection("noise", "signal", permutations=99), prepared)
    raised = report.outcomes[0]
    assert raised.error is not None
    assert raised.error.startswith("RuntimeError: boom (analysis/test_execution_report.py:")
    assert [o.ok for o in report.outcomes] == [False, True, True]
    files = write_report(report, tmp_path)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["analyses"]["raises"] == {"error": raised.error}
    assert data["analyses"]["best-run"]["missing"] is None  # NaN never becomes a number
    assert data["runs"]["raises"]["ok"] is False
    md = (tmp_path / "report.md").read_text()
    assert "> **Failed**: RuntimeError: boom" in md
    assert "## Failed analyses" in md and "`raises` (my-plugin 0.1)" in md
    assert "![Its curve \\| with a pipe.](best-run-curve.png)" in md
    assert (tmp_path / "best-run-curve.png").exists()
    assert {p.name for p in files} >= {"report.md", "report.json", "noise-baseline-band.png"}


def test_a_user_error_inside_an_analysis_is_a_plain_message(
    prepared: tuple[AnalysisContext, RunSet],
) -> None:
    class Picky(Analysis):
        name = "picky"
        description = "Needs something."

        def run(self, runs: RunSet, context: AnalysisContext) -> AnalysisResult:
            raise UserError("needs at least 3 values of model.hidden_size")

    context, runs = prepared
    outcome = run_analysis(Picky(), runs, context)
    assert outcome.error == "needs at least 3 values of model.hidden_size"


def test_markdown_tables_format_numbers_and_show_missing_values(
    prepared: tuple[AnalysisContext, RunSet],
) -> None:
    context, runs = prepared
    report = analyze(
        runs,
        Selection("noise", "signal", permutations=99),
        Prepared(analyses=[(BestRun(), "x", {})], order=["best-run"]),
    )
    md = render_markdown(report)
    assert "| run | value |" in md and "| --- | ---: |" in md
    value = context.signal_at_epoch.max()
    assert f"| {value:.2%} |" in md
    assert "- **Noise**: group `noise`, 60 runs" in md


def test_to_jsonable() -> None:
    assert to_jsonable(
        {
            "a": np.float32(0.5),
            "b": np.array([1, np.nan]),
            "c": (np.int64(2),),
            "d": np.bool_(True),
            "e": float("inf"),
        }
    ) == {"a": 0.5, "b": [1.0, None], "c": [2], "d": True, "e": None}
    with pytest.raises(TypeError, match=r"summary\.x holds a set"):
        to_jsonable({"x": {1}})


def test_the_plugin_sketch_in_the_api_docstring_runs(planted: RunSet) -> None:
    """lightning_app.analysis.base shows plugin authors the compute-then-render pattern; the
    sketch must stay a working plugin."""
    import dataclasses

    from lightning_app.analysis import base

    code = (base.__doc__ or "").split("```python\n", 1)[1].split("```", 1)[0]
    names: dict[str, Any] = {
        "dataclass": dataclasses.dataclass,
        "np": np,
        "Analysis": Analysis,
        "AnalysisContext": AnalysisContext,
        "AnalysisResult": AnalysisResult,
        "RunSet": RunSet,
    }
    exec(compile(code, "lightning_app/analysis/base.py docstring", "exec"), names)
    context, used = build_context(planted, Selection("noise", "signal", permutations=99))
    outcome = run_analysis(names["TopRuns"](), used, context)
    assert outcome.ok, outcome.error
    assert outcome.summary is not None and len(outcome.summary["top"]) == 3
    assert outcome.result is not None
    assert outcome.result.findings[0].startswith("The best run, signal-")
