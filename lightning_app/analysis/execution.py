"""Run analyses one after another; one that raises or returns garbage is reported, not fatal.

Every result is checked before anything is written: a summary that is not JSON-able, a
finding that is not a sentence, a table that is not a frame, a figure that is not a matplotlib
figure all turn that analysis into a failure with a message saying which, so a report never holds
half-broken output and the other analyses still run.
"""

from __future__ import annotations

import inspect
import math
import re
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lightning_app.analysis.base import Analysis, AnalysisResult, Figure, Table
from lightning_app.analysis.context import AnalysisContext
from lightning_app.errors import UserError
from lightning_app.runs.runset import RunSet

_FIGURE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class InvalidResult(Exception):
    """An analysis returned something the report cannot hold."""


@dataclass
class Outcome:
    """What became of one analysis: its checked result, or why there is none."""

    name: str
    description: str
    package: str
    options: dict[str, Any]
    result: AnalysisResult | None = None
    summary: dict[str, Any] | None = None
    """The result's summary made JSON-able (numpy converted, NaN as None)."""
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


def run_analysis(
    analysis: Analysis,
    runs: RunSet,
    context: AnalysisContext,
    *,
    package: str = "",
    options: Mapping[str, Any] | None = None,
) -> Outcome:
    """Run one analysis and check its result; exceptions become the outcome's ``error``."""
    outcome = Outcome(
        analysis.name, analysis.summary_line(), package, dict(options or {}), seconds=0.0
    )
    start = time.perf_counter()
    try:
        result = analysis.run(runs, context)
        outcome.summary = check_result(result)
        outcome.result = result
    except UserError as err:
        outcome.error = str(err)
    except InvalidResult as err:
        outcome.error = f"returned an invalid result: {err}"
    except Exception as err:  # a plugin's bug must not take the other analyses down
        outcome.error = f"{type(err).__name__}: {err}{_where(err, type(analysis))}"
    outcome.seconds = time.perf_counter() - start
    return outcome


def run_analyses(
    analyses: Sequence[tuple[Analysis, str, Mapping[str, Any]]],
    runs: RunSet,
    context: AnalysisContext,
) -> list[Outcome]:
    """Run ``(analysis, package, options)`` triples in order; see :func:`run_analysis`."""
    return [
        run_analysis(a, runs, context, package=package, options=options)
        for a, package, options in analyses
    ]


def check_result(result: object) -> dict[str, Any]:
    """Raise :class:`InvalidResult` unless ``result`` is a well-formed AnalysisResult.

    Returns the JSON-able summary.
    """
    if not isinstance(result, AnalysisResult):
        raise InvalidResult(f"expected an AnalysisResult, got {type(result).__name__}")
    if not isinstance(result.summary, dict):
        raise InvalidResult(f"summary must be a dict, got {type(result.summary).__name__}")
    for kind, items in (("findings", result.findings), ("notes", result.notes)):
        if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
            raise InvalidResult(f"{kind} must be a list of strings")
    if not isinstance(result.tables, list):
        raise InvalidResult("tables must be a list of Table")
    for table in result.tables:
        if not isinstance(table, Table) or not isinstance(table.frame, pd.DataFrame):
            raise InvalidResult("tables must be Table objects holding a pandas DataFrame")
    if not isinstance(result.figures, list):
        raise InvalidResult("figures must be a list of Figure")
    names = set()
    for fig in result.figures:
        from matplotlib.figure import Figure as MplFigure

        if not isinstance(fig, Figure) or not isinstance(fig.figure, MplFigure):
            raise InvalidResult("figures must be Figure objects holding a matplotlib Figure")
        if not _FIGURE_NAME.match(fig.name) or fig.name in names:
            raise InvalidResult(f"figure name {fig.name!r} must be unique and match [a-z0-9-]+")
        names.add(fig.name)
    try:
        summary = to_jsonable(result.summary)
    except TypeError as err:
        raise InvalidResult(f"summary is not JSON-able: {err}") from None
    assert isinstance(summary, dict)
    return summary


def to_jsonable(value: Any, path: str = "summary") -> Any:
    """Plain JSON types from numpy/pandas values; NaN and infinities become None.

    JSON has no NaN; writing null keeps report.json valid for every JSON reader and never shows
    a number that was not computed.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.ndarray):
        return [to_jsonable(v, f"{path}[]") for v in value.tolist()]
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path} has a non-string key {key!r}")
            out[key] = to_jsonable(item, f"{path}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [to_jsonable(v, f"{path}[]") for v in value]
    raise TypeError(f"{path} holds a {type(value).__name__}")


def _where(err: BaseException, cls: type) -> str:
    """`` (package/file.py:12)``: the analysis's own line that raised, else the deepest one."""
    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return ""
    try:
        own = inspect.getsourcefile(cls)
    except TypeError:
        own = None
    mine = [f for f in frames if own and f.filename == own]
    last = (mine or frames)[-1]
    return f" ({'/'.join(last.filename.split('/')[-2:])}:{last.lineno})"
