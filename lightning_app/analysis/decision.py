"""The decision rule the analyses share: when a parameter's effect is signal, weak or noise.

signal-effects applies it and runs-needed plans run counts for it, so both must read one rule:
:class:`DecisionRule` is built once from signal-effects' options (``analyze`` does it) and set on
the :class:`~lightning_app.analysis.context.AnalysisContext`; an analysis that plans for, or
reports on, the verdicts reads ``context.rule`` instead of another analysis's options.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

from lightning_app.analysis.factorial import ErrorTerm, check_error_term
from lightning_app.analysis.power import Correction
from lightning_app.errors import UserError

Verdict = Literal["signal", "weak", "noise"]

RULE_ANALYSIS = "signal-effects"
"""The analysis whose options set the rule (``--signal-effects.alpha`` and so on)."""

ERROR_WORDS = {
    "signal": "the signal runs' residuals around the additive model",
    "noise": "the noise runs' variance",
    "pooled": "the signal residuals and the noise runs pooled",
}


@dataclass(frozen=True)
class DecisionRule:
    """Significance after correction, then size: the rule behind every verdict.

    ``alpha`` applies to p-values corrected across the parameters by ``correction``; the F tests
    use the error term ``error``; a significant effect at least ``signal_ratio`` times its noise
    effect is signal. Invalid values raise ``ValueError`` (an option's mistake).
    """

    alpha: float = 0.05
    signal_ratio: float = 5.0
    correction: Correction = "holm"
    error: ErrorTerm = "signal"

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1, got {self.alpha}")
        if self.signal_ratio < 1:
            raise ValueError(f"signal_ratio must be at least 1, got {self.signal_ratio}")
        check_error_term(self.error)

    def verdict(self, p_adjusted: float, ratio: float | None) -> Verdict:
        """``noise`` unless significant after correction; then ``signal`` if the effect is at
        least ``signal_ratio`` times the noise effect, else ``weak``.

        Significance alone is not enough: with many runs a tiny effect becomes significant, and
        the study's point is the size of an effect relative to what reseeding gives. A ratio of
        None (the noise effect is exactly 0) counts as infinitely large.
        """
        if not p_adjusted < self.alpha:
            return "noise"
        if ratio is None or ratio >= self.signal_ratio:
            return "signal"
        return "weak"

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> DecisionRule:
        """The rule from signal-effects' options as the user set them (others are ignored).

        An invalid value is the user's mistake, named by its flag.
        """
        names = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in options.items() if k in names and v is not None})
        except ValueError as err:
            raise UserError(f"--{RULE_ANALYSIS}: {err}") from None


RULE_OPTIONS = ("alpha", "correction", "error", "signal_ratio")
"""The options that make up the rule, in the order reports list them."""
