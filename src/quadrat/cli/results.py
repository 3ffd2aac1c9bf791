"""Commands that read results out: export (CoralNet CSVs) and report (metrics, plots)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from quadrat.cli._common import (
    DEFAULT_PROJECT,
    ProjectOption,
    SourceOption,
    console,
    open_project,
    resolve_source,
    user_errors,
)
from quadrat.reports.summary import SourceReport, build_report, write_report

app = typer.Typer()


class ExportKind(StrEnum):
    annotations = "annotations"
    cover = "cover"
    labelset = "labelset"


@app.command()
@user_errors
def export(
    kind: Annotated[ExportKind, typer.Argument(help="What to export.")],
    path: Annotated[Path, typer.Argument(help="CSV file to write (atomically).")],
    project: ProjectOption = DEFAULT_PROJECT,
    source: SourceOption = None,
) -> None:
    """Export CoralNet CSVs: annotations (with machine suggestions), percent cover, labelset."""
    from quadrat.reports.exports import export_annotations, export_cover, export_labelset

    handle = open_project(project)
    name = resolve_source(handle, source)
    writer = {
        ExportKind.annotations: export_annotations,
        ExportKind.cover: export_cover,
        ExportKind.labelset: export_labelset,
    }[kind]
    rows = writer(handle, name, path)
    console.print(f"wrote {rows} rows to {path}")


@app.command()
@user_errors
def report(
    out: Annotated[
        Path | None, typer.Option(help="Folder for plots, metrics.json and cover.csv.")
    ] = None,
    target_accuracy: Annotated[
        float, typer.Option(help="Accuracy the suggested alleviate threshold should keep.")
    ] = 0.95,
    project: ProjectOption = DEFAULT_PROJECT,
    source: SourceOption = None,
) -> None:
    """Print the latest classifier's metrics and the source's cover; write plots with --out."""
    handle = open_project(project)
    name = resolve_source(handle, source)
    summary = build_report(handle, name, target_accuracy=target_accuracy)
    print_report(summary)
    if out is not None:
        files = write_report(summary, out)
        console.print(f"wrote {', '.join(str(f) for f in files)}")


def print_report(summary: SourceReport) -> None:
    console.rule(f"source {summary.source}")
    console.print(
        f"{summary.n_images} images ({summary.n_confirmed_images} confirmed), "
        f"{summary.n_points} points: "
        + ", ".join(f"{n} {status}" for status, n in summary.status_counts.items())
    )
    if summary.classifier is None:
        console.print("no classifier trained yet")
    else:
        c = summary.classifier
        verdict = "accepted" if c["accepted"] else "not accepted"
        console.print(
            f"classifier {c['id']} ({c['kind']} on {c['extractor_key']}, {verdict}): "
            f"validation accuracy {_fmt(c['accuracy'])}, macro F1 {_fmt(c['macro_f1'])}, "
            f"{c['n_train']} training / {c['n_val']} validation points, "
            f"trained in {c['train_seconds']:.1f} s"
        )
        table = Table(title="per label (validation)")
        for column in ("label", "precision", "recall", "f1", "support"):
            table.add_column(column, justify="left" if column == "label" else "right")
        for row in summary.per_label:
            table.add_row(
                str(row["label"]),
                f"{row['precision']:.3f}",
                f"{row['recall']:.3f}",
                f"{row['f1']:.3f}",
                str(int(row["support"])),
            )
        console.print(table)
        if summary.suggested_threshold is not None:
            t = summary.suggested_threshold
            console.print(
                f"alleviate: threshold {t['threshold']:.2f} keeps accuracy "
                f"{t['accuracy_accepted']:.3f} on the {t['fraction_accepted']:.0%} of points "
                f"it accepts (target {summary.target_accuracy:.2f})"
            )
    if summary.cover is not None and len(summary.cover):
        table = Table(title="percent cover (all images with every point annotated)")
        table.add_column("label")
        table.add_column("cover %", justify="right")
        for label, value in summary.overall_cover.items():
            table.add_row(str(label), f"{value:.1f}")
        console.print(table)


def _fmt(value: float | None) -> str:
    """A metric to 3 decimals, or n/a when it could not be computed."""
    return "n/a" if value is None or value != value else f"{value:.3f}"
