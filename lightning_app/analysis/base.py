"""What an analysis is and what it returns.

An analysis is a class with a ``name``, a one-line ``description``, typed ``__init__`` options
(jsonargparse turns them into ``--<name>.<option>`` flags and config-file keys) and a
:meth:`Analysis.run` method. It returns an :class:`AnalysisResult`: findings, tables, figures and a
JSON-able summary. The report writer, the terminal table and the W&B logger are built from results,
so a plugin contains no I/O code.

The built-ins (``analyses/``) all follow one pattern, the one to copy: a pure ``compute_*`` function
turns the :class:`~lightning_app.analysis.context.AnalysisContext` into a frozen dataclass result
(numbers only, named in scipy's style: ``statistic``, ``pvalue``, ...), and a ``render_*`` function
turns that result into an :class:`AnalysisResult`, so ``run`` is one line:

```python
@dataclass(frozen=True)
class TopRunsResult:
    ids: list[str]
    values: np.ndarray

def compute_top_runs(context: AnalysisContext, top: int) -> TopRunsResult:
    order = np.argsort(context.signal_at_epoch)[::-1][:top]
    return TopRunsResult([context.signal_ids[i] for i in order], context.signal_at_epoch[order])

def render_top_runs(result: TopRunsResult, context: AnalysisContext) -> AnalysisResult:
    return AnalysisResult(
        summary={"top": dict(zip(result.ids, result.values.tolist()))},
        findings=[f"The best run, {result.ids[0]}, reaches {context.fmt(result.values[0])}."],
    )

class TopRuns(Analysis):
    name = "top-runs"
    description = "The best signal runs at the analysed epoch."

    def __init__(self, top: int = 3) -> None:
        self.top = top

    def run(self, runs: RunSet, context: AnalysisContext) -> AnalysisResult:
        return render_top_runs(compute_top_runs(context, self.top), context)
```

What analyses share lives on the context, computed once: the aligned arrays, the parameters, each
parameter's noise null (``context.noise_null``), the additive model (``context.model``) and the
decision rule (``context.rule``: alpha, correction, error term, signal ratio). An analysis reads
these; it never imports another analysis or reads another's options.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

    from lightning_app.analysis.context import AnalysisContext
    from lightning_app.runs.runset import RunSet


@dataclass
class Table:
    """A table of raw values; ``formats`` maps a column to a format spec used only for display.

    Values stay in the metric's own units (accuracy as a fraction) so the numbers that reach
    report.json and W&B are not rounded; ``formats`` (e.g. ``{"effect": ".2%"}``) decides how
    report.md and the terminal show them.
    """

    title: str
    frame: pd.DataFrame
    formats: dict[str, str] = field(default_factory=dict)
    terminal: bool = True
    """Also print this table on the terminal (long per-epoch tables set it to False)."""


@dataclass
class Figure:
    """A matplotlib figure with a file stem (``[a-z0-9-]``) and a caption for report.md."""

    name: str
    caption: str
    figure: MplFigure


@dataclass
class AnalysisResult:
    """Everything an analysis reports; assembled into report.md, report.json and W&B.

    ``summary`` becomes ``report.json["analyses"][name]`` (numpy scalars and arrays are converted,
    NaN becomes null). ``findings`` are sentences with numbers in them; ``notes`` are caveats about
    the data or the method that a reader must see next to the findings.
    """

    summary: dict[str, Any] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Analysis(ABC):
    """Base class of every analysis, built-in or plugin.

    Subclasses set ``name`` (the entry-point name) and ``description`` (one line), take their
    options as typed keyword arguments of ``__init__`` with defaults (documented in the
    docstring's ``Args:`` section, which ``--help`` shows), and implement :meth:`run`, best as
    ``render_x(compute_x(context, ...), context)`` (see the module docstring).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    order: ClassVar[int] = 100
    """Position in the report (ascending, then by name); the built-ins use 10-40."""

    @abstractmethod
    def run(self, runs: RunSet, context: AnalysisContext) -> AnalysisResult:
        """Analyse the selected noise and signal runs; ``context`` holds the aligned arrays and
        what analyses share (noise nulls, the additive model, the decision rule)."""

    @classmethod
    def summary_line(cls) -> str:
        """The one-line description, falling back to the docstring's first line."""
        if cls.description:
            return cls.description.strip().splitlines()[0]
        doc = inspect.getdoc(cls) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""
