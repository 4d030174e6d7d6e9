"""Analyses over logged runs: the plugin API, the runner and the report.

A plugin subclasses :class:`Analysis` and returns an :class:`AnalysisResult`; everything else
(discovery, options, running, report.md/json, terminal, W&B) is done here. Statistics live in
:mod:`lightning_app.analysis.stats`, figures in :mod:`lightning_app.analysis.plots`.
"""

from lightning_app.analysis.base import Analysis, AnalysisResult, Figure, Table
from lightning_app.analysis.context import AnalysisContext, Selection, build_context
from lightning_app.analysis.decision import DecisionRule
from lightning_app.analysis.parameters import Parameter

__all__ = [
    "Analysis",
    "AnalysisContext",
    "AnalysisResult",
    "DecisionRule",
    "Figure",
    "Parameter",
    "Selection",
    "Table",
    "build_context",
]
