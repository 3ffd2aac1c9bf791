"""What ``classify`` and ``export annotations`` share for hierarchical answers: the two
options and the per-level table (docs/hierarchy.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from quadrat.cli._common import console

if TYPE_CHECKING:
    from quadrat.workflow.classify import ClassifySummary

HierarchicalThresholdOption = Annotated[
    float | None,
    typer.Option(
        "--hierarchical-threshold",
        help="Answer each point with the deepest node of the label tree whose summed top-5 "
        "scores reach this (e.g. 'Hard coral' rather than an unsure genus). docs/hierarchy.md.",
    ),
]
HierarchyOption = Annotated[
    Path | None,
    typer.Option(
        "--hierarchy",
        metavar="FILE",
        help="with --hierarchical-threshold: the label tree, a CATAMI mapping (.csv: "
        "source_label, caab_code) or a BIIGLE label tree (.json); default: the labelset's "
        "functional groups.",
    ),
]


def print_summary(summary: ClassifySummary) -> None:
    """The classify table, then the points per answer level when answers were asked for."""
    from rich.table import Table

    table = Table(title=f"classifier {summary.classifier_id}")
    columns = ["points scored", "machine", "alleviated"]
    columns += [f"answered: {level}" for level in summary.answer_levels]
    for column in columns:
        table.add_column(column, justify="right")
    counts = [summary.points, summary.machine, summary.alleviated]
    table.add_row(*(str(n) for n in [*counts, *summary.answer_levels.values()]))
    console.print(table)
