"""The adaptive sweep's record, ``SWEEP_DIR/adaptive.json``: one module for the writer and readers.

``sweep --adaptive`` writes it after every round and look (``sweeps/adaptive.py``); ``analyze``
finds it beside the signal sweep's runs and reports how the sweep stopped (report.md, report.json,
the terminal). Both sides import this module, so the file's name, its reading and its wording live
in one place. Standard library only: ``sweep --help`` must not load the statistics stack.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning_app import files
from lightning_app.errors import UserError

FILE_NAME = "adaptive.json"
"""The record's name inside the sweep folder."""


def path_in(root: Path) -> Path:
    """Where the record of the sweep in folder ``root`` lives."""
    return root / FILE_NAME


def load(path: Path) -> dict[str, Any]:
    """The record at ``path``; a damaged one is a one-line error naming the file."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: unreadable adaptive record ({err})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: unreadable adaptive record (not a JSON object)")
    return data


def write(path: Path, record: Mapping[str, Any]) -> None:
    """Replace the record durably: a sweep killed at any instant leaves the old or the new one."""
    files.write_json_atomic(path, record, durable=True)


def find(source: str, group: str) -> tuple[Path, dict[str, Any]] | None:
    """The adaptive record of sweep ``group`` under a local folder ``source``, if there is one.

    ``source`` is what ``analyze --source`` got: the sweep's own folder or one above it
    (``sweeps/``). Other sources (W&B projects, tidy files) have no sweep folder: None. A record
    that cannot be read is passed over here; the sweep itself refuses it when resumed.
    """
    root = Path(source)
    if not root.is_dir():
        return None
    for path in [path_in(root), *sorted(root.glob(f"*/{FILE_NAME}"))]:
        if not path.is_file():
            continue
        try:
            data = load(path)
        except UserError:
            continue
        if data.get("name") == group:
            return path, data
    return None


def summary_lines(record: Mapping[str, Any]) -> list[str]:
    """How an adaptive sweep stopped, as markdown bullets (report.md; the terminal prints them)."""
    design = record.get("design", {})
    looks = record.get("looks", [])
    stopped = record.get("stopped") or {}
    lines = [
        f"Adaptive replicates: up to {design.get('looks')} looks ({design.get('spending')} alpha "
        f"spending, alpha {design.get('alpha')}, {design.get('seeds_per_round')} seed(s) of "
        f"`{design.get('seed_key')}` per round, at most {design.get('max_runs')} runs).",
    ]
    if stopped:
        lines.append(
            f"Stopped after look {stopped.get('look')} with {stopped.get('runs')} runs: "
            f"{stopped.get('reason')}."
        )
    else:
        lines.append(
            f"Not finished: {len(looks)} look(s) made so far; rerun the sweep command to go on."
        )
    for name, decision in (record.get("decisions") or {}).items():
        lines.append(f"`{name}`: {decision.get('text')}")
    lines.append(
        "Only the sequential decisions control the false-positive rate at alpha over the looks; "
        "the p-values of signal-effects below are computed as if the run count had been fixed "
        "in advance."
    )
    return lines
