"""report.json and report.md (with PNG figures) assembled from the analyses' outcomes.

report.json's top level is a contract (docs/architecture.md): ``metric``, ``noise`` and ``signal``
(``{"group", "runs"}``), ``skipped_runs`` (``[{"id", "reason"}]``) and ``analyses`` (one key per
analysis; a failed one holds ``{"error": ...}``); ``failures`` lists every failed analysis with its
package, including a second plugin registered under a name that already ran. report.md is plain
GitHub markdown: findings as bullets, tables as pipe tables, figures as PNG links next to it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_app.analysis.context import AnalysisContext
from lightning_app.analysis.execution import Outcome
from lightning_app.analysis.formatting import numeric_columns, table_cells
from lightning_app.analysis.plots import DPI
from lightning_app.runs.runset import RunWarning, SkippedRun


@dataclass(frozen=True)
class Report:
    """One analyze run: the context, each analysis's outcome and the runs left out."""

    context: AnalysisContext
    outcomes: Sequence[Outcome]
    skipped: Sequence[SkippedRun]
    source: str = ""
    warnings: Sequence[RunWarning] = ()
    """What the source noticed in runs it kept (truncated files, NaN values)."""
    adaptive: Mapping[str, Any] | None = None
    """The signal sweep's adaptive record (``adaptive.json``) when it was an adaptive sweep."""

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def figure_file(self, outcome: Outcome, figure_name: str) -> str:
        return f"{outcome.name}-{figure_name}.png"

    def to_json(self) -> dict[str, Any]:
        c = self.context
        # A name can have two outcomes (a second plugin declared under a name that ran): the
        # one that ran keeps the name's keys, and ``failures`` lists the other.
        ran = {o.name for o in self.outcomes if o.ok}
        shown = [o for o in self.outcomes if o.ok or o.name not in ran]
        analyses: dict[str, Any] = {}
        for o in shown:
            analyses[o.name] = o.summary if o.ok else {"error": o.error}
        return {
            "metric": c.metric,
            "epoch": c.epoch,
            "epochs": [int(e) for e in c.epochs],
            "noise": {"group": c.noise_group, "runs": len(c.noise_ids)},
            "signal": {"group": c.signal_group, "runs": len(c.signal_ids)},
            "source": self.source,
            "params": {
                p.name: {
                    "values": [_plain(v) for v in p.values],
                    "runs_per_value": [int(s) for s in p.sizes],
                }
                for p in c.params.values()
            },
            "permutations": c.permutations,
            "seed": c.seed,
            "notes": list(c.notes),
            "skipped_runs": [{"id": s.id, "reason": s.reason} for s in self.skipped],
            "run_warnings": [{"id": w.id, "message": w.message} for w in self.warnings],
            "analyses": analyses,
            **({"adaptive": _adaptive_json(self.adaptive)} if self.adaptive is not None else {}),
            "runs": {
                o.name: {
                    "package": o.package,
                    "options": o.options,
                    "seconds": round(o.seconds, 3),
                    "ok": o.ok,
                }
                for o in shown
            },
            "failures": [
                {"analysis": o.name, "package": o.package, "error": o.error} for o in self.failed
            ],
        }


def write_report(report: Report, out: Path) -> list[Path]:
    """Write report.json, report.md and every figure as PNG into ``out``; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for o in report.outcomes:
        if o.result is None:
            continue
        for fig in o.result.figures:
            path = out / report.figure_file(o, fig.name)
            fig.figure.savefig(path, dpi=DPI)
            written.append(path)
    json_path = out / "report.json"
    json_path.write_text(json.dumps(report.to_json(), indent=2, allow_nan=False) + "\n")
    md_path = out / "report.md"
    md_path.write_text(render_markdown(report))
    return [md_path, json_path, *written]


def render_markdown(report: Report) -> str:
    """report.md: a header on the data, then one section per analysis."""
    c = report.context
    lines = [
        f"# Signal vs noise: `{c.metric}`",
        "",
        f"- **Noise**: group `{c.noise_group}`, {len(c.noise_ids)} runs (seed varies)",
        f"- **Signal**: group `{c.signal_group}`, {len(c.signal_ids)} runs",
        f"- **Epoch analysed**: {c.epoch} (of epochs {int(c.epochs[0])}-{int(c.epochs[-1])})",
        "- **Parameters**: " + ", ".join(f"`{p.name}` ({p.k} values)" for p in c.params.values()),
        f"- **Permutations**: {c.permutations}, seed {c.seed}"
        + (f"; source `{report.source}`" if report.source else ""),
        "",
        "Numbers in full precision are in [report.json](report.json).",
        "",
    ]
    if c.notes:
        lines += ["## Notes on the data", ""] + [f"- {n}" for n in c.notes] + [""]
    if report.adaptive is not None:
        lines += _adaptive_markdown(report.adaptive)
    for o in report.outcomes:
        lines += [f"## {o.name}", "", f"*{_escape(o.description)}*", ""]
        if o.result is None:
            lines += [f"> **Failed**: {_escape(o.error or '')}", ""]
            continue
        lines += [f"- {_escape(f)}" for f in o.result.findings]
        if o.result.findings:
            lines.append("")
        for note in o.result.notes:
            lines += [f"> Note: {_escape(note)}", ""]
        for table in o.result.tables:
            lines += [
                f"**{_escape(table.title)}**",
                "",
                *markdown_table(table.frame, table.formats),
                "",
            ]
        for fig in o.result.figures:
            lines += [
                f"![{_escape(fig.caption)}]({report.figure_file(o, fig.name)})",
                "",
                f"*{_escape(fig.caption)}*",
                "",
            ]
    if report.failed:
        lines += ["## Failed analyses", ""]
        lines += [f"- `{o.name}` ({o.package}): {_escape(o.error or '')}" for o in report.failed]
        lines.append("")
    if report.warnings:
        lines += ["## Warnings from reading the runs", ""]
        lines += [f"- `{w.id or 'source'}`: {_escape(w.message)}" for w in report.warnings]
        lines.append("")
    if report.skipped:
        lines += ["## Skipped runs", "", "| run | reason |", "| --- | --- |"]
        lines += [f"| `{s.id}` | {_escape(s.reason)} |" for s in report.skipped]
        lines.append("")
    return "\n".join(lines)


def _adaptive_json(record: Mapping[str, Any]) -> dict[str, Any]:
    """The adaptive record as report.json keeps it: design, looks, decisions, how it stopped."""
    keys = ("design", "looks", "decisions", "stopped", "elapsed_s")
    return {key: record.get(key) for key in keys}


def _adaptive_markdown(record: Mapping[str, Any]) -> list[str]:
    """How the adaptive signal sweep stopped: its decisions and a table of its looks."""
    from lightning_app.adaptive_record import summary_lines

    lines = ["## Adaptive replicates: how the signal sweep stopped", ""]
    lines += [f"- {_escape(line)}" for line in summary_lines(record)]
    lines.append("")
    looks = record.get("looks") or []
    if looks:
        names = list(looks[0].get("params", {}))
        lines += [
            "| look | runs | level | " + " | ".join(f"`{n}` p adj." for n in names) + " | next |",
            "| ---: | ---: | ---: | " + " | ".join("---:" for _ in names) + " | --- |",
        ]
        for look in looks:
            cells = []
            for name in names:
                res = look["params"][name]
                p = res.get("p_adjusted")
                mark = " (significant)" if res.get("significant") else ""
                mark = mark or (" (futile)" if res.get("futile") else "")
                cells.append(("n/a" if p is None else f"{p:.3g}") + mark)
            then = "round" if look.get("continue") else "stop"
            lines.append(
                f"| {look['look']} | {look['runs']} | {look['level']:.3g} | "
                + " | ".join(cells)
                + f" | {then} |"
            )
        lines.append("")
    return lines


def markdown_table(frame: Any, formats: dict[str, str]) -> list[str]:
    """A GitHub markdown table of ``frame``, numbers shown with ``formats``, right-aligned."""
    columns, rows = table_cells(frame, formats)
    numeric = numeric_columns(frame)
    out = [
        "| " + " | ".join(_escape(c) for c in columns) + " |",
        "| " + " | ".join("---:" if n else "---" for n in numeric) + " |",
    ]
    out += ["| " + " | ".join(_escape(cell) for cell in row) + " |" for row in rows]
    return out


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
