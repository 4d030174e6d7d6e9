"""What an analysis is and what it returns.

An analysis is a class with a ``name``, a one-line ``description``, typed ``__init__`` options
(jsonargparse turns them into ``--<name>.<option>`` flags and config-file keys) and a
:meth:`Analysis.run` method. It returns an :class:`AnalysisResult`: findings, tables, figures and a
JSON-able summary. The report writer, the terminal table and the W&B logger are built from results,
so a plugin contains no I/O code.
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
    docstring's ``Args:`` section, which ``--help`` shows), and implement :meth:`run`.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    order: ClassVar[int] = 100
    """Position in the report (ascending, then by name); the built-ins use 10-40."""

    @abstractmethod
    def run(self, runs: RunSet, context: AnalysisContext) -> AnalysisResult:
        """Analyse the selected noise and signal runs; ``context`` holds the aligned arrays."""

    @classmethod
    def summary_line(cls) -> str:
        """The one-line description, falling back to the docstring's first line."""
        if cls.description:
            return cls.description.strip().splitlines()[0]
        doc = inspect.getdoc(cls) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""
