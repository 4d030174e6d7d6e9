"""What a "too few runs" error says about the runs it could not use.

"only 2 noise runs" is a puzzle when 4 were logged: the error names every run of the group that
was skipped while reading (a truncated file, no history) or left out for lack of the metric, with
the reason, and runs whose metric values are not numbers are named as such, not as missing epochs.
"""

from __future__ import annotations

from collections.abc import Sequence

from lightning_app.runs.runset import RunSet, SkippedRun

MAX_NAMED = 10
"""Runs named in one error line; the rest are counted."""


def skipped_note(
    runs: RunSet, group: str, excluded: Sequence[SkippedRun] = (), named: Sequence[str] = ()
) -> str:
    """``"; skipped: abc (reason), ..."`` for the runs of ``group`` that were not used, or ``""``.

    ``runs.skipped`` of ``group`` (or of no known group: a file cut before its run record) and
    ``excluded`` runs whose id is in ``named`` (the group's ids), each with its own reason and the
    reader's warnings about it (a truncated file that still held some epochs).
    """
    items = [s for s in runs.skipped if s.group in (group, None)]
    items += [s for s in excluded if s.id in set(named)]
    if not items:
        return ""
    parts = [f"{s.id} ({_with_warnings(runs, s)})" for s in items[:MAX_NAMED]]
    more = f" and {len(items) - MAX_NAMED} more" if len(items) > MAX_NAMED else ""
    return f"; skipped: {', '.join(parts)}{more}"


def not_numbers_note(runs: RunSet, metric: str, ids: Sequence[str]) -> str | None:
    """A sentence naming the runs (of ``ids``) whose ``metric`` values are not numbers, if any."""
    wanted = set(ids)
    column = [w for w in runs.warnings if w.not_numbers == metric and not w.id]
    if column:
        return f"the {metric!r} values are not numbers ({column[0].message})"
    bad = sorted({w.id for w in runs.warnings if w.not_numbers == metric and w.id in wanted})
    if not bad:
        return None
    shown = ", ".join(bad[:MAX_NAMED]) + (
        f" and {len(bad) - MAX_NAMED} more" if len(bad) > 10 else ""
    )
    return f"the {metric!r} values of run(s) {shown} are not all numbers (text read as missing)"


def _with_warnings(runs: RunSet, skipped: SkippedRun) -> str:
    notes = [w.message for w in runs.warnings if w.id == skipped.id and w.id]
    return "; ".join([skipped.reason, *notes])
