"""``quadrat formats``: the other tools' formats quadrat imports and exports (docs/formats.md)."""

from __future__ import annotations

import typer

from quadrat.cli._common import console, user_errors

app = typer.Typer()


@app.command()
@user_errors
def formats() -> None:
    """List the formats for 'import FILE --format F' and 'export annotations --format F'."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from quadrat.workflow.formats import formats_table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("format", "import", "export", "carries", "description"):
        table.add_column(column)
    for row in formats_table():
        table.add_row(
            row["name"],
            "yes" if row["import"] else "-",
            "yes" if row["export"] else "-",
            row["carries"],
            row["description"],
        )
    (console if console.is_terminal else Console(width=200)).print(table)
