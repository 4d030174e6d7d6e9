"""The terminal view of a report: findings and the key tables, drawn with rich."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table as RichTable

from lightning_app.analysis.execution import Outcome
from lightning_app.analysis.formatting import numeric_columns, table_cells
from lightning_app.analysis.report import Report


def print_report(report: Report, console: Console | None = None) -> None:
    """Print each analysis's findings and its terminal tables (long tables stay in report.md)."""
    # Piped output has no width; 120 columns keeps the tables readable in logs.
    console = console or Console(width=None if Console().is_terminal else 120)
    c = report.context
    console.rule(f"[bold]Signal vs noise: {c.metric} at epoch {c.epoch}")
    console.print(
        f"noise: group [bold]{c.noise_group}[/] ({len(c.noise_ids)} runs)   "
        f"signal: group [bold]{c.signal_group}[/] ({len(c.signal_ids)} runs)   "
        f"parameters: {', '.join(c.params)}",
        highlight=False,
    )
    for note in c.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    if report.adaptive is not None:
        from lightning_app.adaptive_record import summary_lines

        console.print()
        console.print("[bold cyan]adaptive replicates[/]  [dim]how the signal sweep stopped[/]")
        for line in summary_lines(report.adaptive):
            console.print(f"  • {line.replace('`', '')}", highlight=False, soft_wrap=True)
    for outcome in report.outcomes:
        _print_outcome(console, outcome)


def _print_outcome(console: Console, outcome: Outcome) -> None:
    console.print()
    console.print(f"[bold cyan]{outcome.name}[/]  [dim]{outcome.description}[/]", highlight=False)
    if outcome.result is None:
        console.print(f"[bold red]failed:[/] {outcome.error}", highlight=False)
        return
    for finding in outcome.result.findings:
        console.print(f"  • {finding}", highlight=False, soft_wrap=True)
    for note in outcome.result.notes:
        console.print(f"  [yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    for table in outcome.result.tables:
        if not table.terminal:
            continue
        columns, rows = table_cells(table.frame, table.formats)
        view = RichTable(title=table.title, title_justify="left", header_style="bold")
        for name, numeric in zip(columns, numeric_columns(table.frame), strict=True):
            view.add_column(name, justify="right" if numeric else "left")
        for row in rows:
            view.add_row(*row)
        console.print(view)
