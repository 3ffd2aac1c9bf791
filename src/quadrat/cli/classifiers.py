"""``quadrat classifier list|export|import``: see, share and install trained classifiers.

A classifier exported here is one portable file (safetensors arrays plus JSON, no code)
carrying its labelset and extractor; imported into another project it becomes the active
classifier of its source, and ``quadrat serve`` deploys it by the id ``list`` prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from quadrat.cli._common import (
    DEFAULT_PROJECT,
    ProjectOption,
    console,
    fmt,
    open_project,
    user_errors,
)
from quadrat.errors import InputError

if TYPE_CHECKING:
    from quadrat import Project, Source

app = typer.Typer(
    name="classifier",
    help="List, export and import trained classifiers (portable files for quadrat serve).",
    no_args_is_help=True,
)


@app.command("list")
@user_errors
def list_classifiers(
    project: ProjectOption = DEFAULT_PROJECT,
    source: Annotated[
        str | None, typer.Option("--source", "-s", help="Only this source (default: every one).")
    ] = None,
) -> None:
    """Every classifier: id, source, date, kind, accuracy, accepted, active (the one deployed)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    with open_project(project) as handle:
        sources = [handle.source(source)] if source is not None else handle.sources
        rows = []
        for src in sources:
            active = src.active_classifier()
            for info in src.classifiers():
                rows.append((src.name, info, active is not None and info.id == active.id))
    if not rows:
        console.print("no classifier yet: train one (quadrat train) or import one")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    columns = ("id", "source", "date", "kind", "accuracy", "accepted", "active", "extractor")
    for column in columns:
        table.add_column(
            column,
            justify="right" if column in ("id", "accuracy") else "left",
            no_wrap=column != "extractor",
            min_width=len(column) if column != "extractor" else None,
        )
    for name, info, is_active in rows:
        when = info.created_at.strftime("%Y-%m-%d %H:%M") if info.created_at else "-"
        imported = info.hyperparameters.get("imported")
        kind = f"{info.kind} (imported)" if imported else info.kind
        table.add_row(
            str(info.id),
            name,
            when,
            kind,
            fmt(info.accuracy),
            "yes" if info.accepted else "no",
            "yes" if is_active else "",
            info.extractor_key,
        )
    # Piped into a file or another program: whole rows, not squeezed to 80 columns.
    (console if console.is_terminal else Console(width=200)).print(table)


@app.command("export")
@user_errors
def export_classifier(
    classifier_id: Annotated[
        int, typer.Argument(metavar="ID", help="Classifier id (see quadrat classifier list).")
    ],
    file: Annotated[
        Path | None,
        typer.Argument(metavar="[FILE]", help="File to write (same as -o).", hidden=True),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Portable classifier file to write.")
    ] = None,
    project: ProjectOption = DEFAULT_PROJECT,
) -> None:
    """Write a classifier with its labelset and extractor as one portable file."""
    if file is not None and out is not None and file != out:
        raise InputError("give the file to write once: as FILE or with -o/--out, not both")
    path = out or file
    if path is None:
        raise InputError("give the file to write: quadrat classifier export ID -o FILE")
    with open_project(project) as handle:
        src = _source_of(handle, classifier_id)
        written = src.export_classifier(path, classifier_id)
    console.print(f"wrote classifier {classifier_id} of source {src.name} to {written}")


@app.command("import")
@user_errors
def import_classifier(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="Portable classifier file.")],
    project: ProjectOption = DEFAULT_PROJECT,
    source: Annotated[
        str | None,
        typer.Option("--source", "-s", help="Source to add it to (default: the name in the file)."),
    ] = None,
    weights: Annotated[
        Path | None,
        typer.Option(
            "--weights",
            help="The CNN extractor's weights file on this machine (checked by SHA-256).",
        ),
    ] = None,
) -> None:
    """Register a portable classifier: it becomes the active classifier of its source."""
    with open_project(project) as handle:
        info = handle.import_classifier(file, source, weights=weights)
        name = next(s.name for s in handle.sources if s.id == info.source_id)
    console.print(
        f"imported classifier {info.id} ({info.kind} on {info.extractor_key}, accuracy "
        f"{fmt(info.accuracy)}) as the active classifier of source {name}; deploy it as "
        f"/api/classifier/{info.id}/deploy/"
    )


def _source_of(handle: Project, classifier_id: int) -> Source:
    """The source holding ``classifier_id`` (NotFoundError, exit 4, if none does)."""
    from quadrat.errors import NotFoundError

    for src in handle.sources:
        if any(info.id == classifier_id for info in src.classifiers()):
            return src
    raise NotFoundError(
        f"no classifier {classifier_id} in this project (quadrat classifier list shows them)",
        value=classifier_id,
    )
