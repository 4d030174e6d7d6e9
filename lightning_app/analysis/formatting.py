"""How numbers read in findings, tables and the terminal (the data keeps full precision)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def metric_format(metric: str, values: np.ndarray) -> str:
    """``".2%"`` for accuracy-like fractions (shown as the study's percentages), else ``".4g"``."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    looks_like_fraction = finite.size > 0 and finite.min() >= 0 and finite.max() <= 1
    if looks_like_fraction and any(
        w in metric.lower() for w in ("acc", "f1", "precision", "recall")
    ):
        return ".2%"
    return ".4g"


def format_value(value: Any, spec: str = "") -> str:
    """``value`` with a format spec; missing numbers show as an em dash, not as ``nan``."""
    if value is None:
        return "—"
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return "—"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
    if spec == "p":
        return format_p(float(value))
    if spec == "x":
        return format_ratio(float(value))
    if spec:
        try:
            return format(value, spec)
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float | np.floating):
        return f"{value:.4g}"
    return str(value)


def format_p(p: float) -> str:
    """A p-value: three significant digits, or ``<0.0001``."""
    if math.isnan(p):
        return "—"
    return "<0.0001" if p < 1e-4 else f"{p:.3g}"


def p_text(p: float) -> str:
    """``p = 0.031`` or ``p < 0.0001`` for sentences."""
    text = format_p(p)
    return f"p {text[0]} {text[1:]}" if text.startswith("<") else f"p = {text}"


def format_ratio(ratio: float) -> str:
    """A multiple of the noise effect, e.g. ``10.2x``."""
    if math.isnan(ratio):
        return "—"
    if math.isinf(ratio):
        return "∞"
    return f"{ratio:.1f}x" if ratio < 100 else f"{ratio:.0f}x"


def table_cells(frame: Any, formats: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    """Column names and display strings of a table's frame, using its per-column formats."""
    columns = [str(c) for c in frame.columns]
    rows = [
        [
            format_value(_missing_to_none(v), formats.get(c, ""))
            for c, v in zip(columns, row, strict=True)
        ]
        for row in frame.itertuples(index=False, name=None)
    ]
    return columns, rows


def _missing_to_none(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float | np.floating) and math.isnan(value):
        return None
    return value


def numeric_columns(frame: Any) -> list[bool]:
    """Per column, whether every present value is a number (right-aligned in tables)."""
    flags = []
    for column in frame.columns:
        values = [v for v in frame[column].tolist() if _missing_to_none(v) is not None]
        flags.append(
            bool(values)
            and all(
                isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in values
            )
        )
    return flags
