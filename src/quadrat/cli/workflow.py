"""The person's steps of the workflow: init, import, points (extract, train, classify are
in ``machine.py``).

Each command parses its options, calls the public API (:class:`quadrat.Project`,
:class:`quadrat.Source`) and prints; nothing else. The library is imported inside the
command bodies so that ``quadrat --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from quadrat.cli._common import (
    DEFAULT_PROJECT,
    AllowNothingOption,
    ProjectOption,
    SourceOption,
    console,
    deprecated_alias,
    err_console,
    nothing_to_do,
    open_project,
    progress_bar,
    user_errors,
)
from quadrat.errors import InputError

app = typer.Typer()

#: ``--annotation-area`` of ``init`` and ``points``: CoralNet's per-source annotation area.
AreaOption = Annotated[
    str | None,
    typer.Option(
        "--annotation-area",
        metavar="AREA",
        help="Where generated points may fall, saved with the source: 'min_x;max_x;min_y;max_y' "
        "in percent of the width and height (5;95;5;95 keeps 5 % off every edge) or "
        "'x0,x1,y0,y1' in pixels; 'whole' for the whole image (the default).",
        show_default=False,
    ),
]


@app.command()
@user_errors
def init(
    old_project: Annotated[
        str | None,
        typer.Argument(
            metavar="[PROJECT]",
            help="Deprecated: give the project with -p/--project.",
            show_default=False,
            hidden=True,
        ),
    ] = None,
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            "-p",
            envvar="QUADRAT_PROJECT",
            metavar="FILE|URL",
            help=f"Project file (SQLite) or SQLAlchemy URL to create or add to "
            f"(default {DEFAULT_PROJECT}).",
            show_default=False,
        ),
    ] = None,
    source: Annotated[
        str, typer.Option("--source", "-s", help="Name of the new source.")
    ] = "default",
    labelset: Annotated[
        Path | None,
        typer.Option(
            help="Labelset for the source (CoralNet CSV or CoralNet-Toolbox Labels.json)."
        ),
    ] = None,
    points: Annotated[
        str | None, typer.Option(help="Default point spec for new images: m_200, t_5_5_2, u_10_10.")
    ] = None,
    annotation_area: AreaOption = None,
    threshold: Annotated[
        float | None, typer.Option(help="Confidence threshold for auto-accepting (alleviate).")
    ] = None,
) -> None:
    """Create a project with a source, or add a source to an existing project."""
    from quadrat.errors import NotFoundError
    from quadrat.workflow import Project

    if old_project is not None:
        if project is not None and project != old_project:
            raise InputError(
                "give the project once, with -p/--project, not also as a positional argument",
                value=old_project,
            )
        deprecated_alias("the positional PROJECT of 'quadrat init'", "-p/--project")
        project = old_project
    location = project or DEFAULT_PROJECT
    try:
        handle = Project.open(location)
        created = False
    except NotFoundError:
        handle = Project.create(location)
        created = True
    try:
        with handle:
            handle.create_source(
                source,
                labelset=labelset,
                point_spec=points,
                confidence_threshold=threshold,
                annotation_area=None if annotation_area == "whole" else annotation_area,
            )
    except BaseException:
        if created and handle.url.startswith("sqlite:///"):  # all or nothing: no empty project
            made = Path(handle.url.removeprefix("sqlite:///"))
            for path in (
                made,
                made.with_name(f"{made.name}-wal"),
                made.with_name(f"{made.name}-shm"),
            ):
                path.unlink(missing_ok=True)
        raise
    verb = "created" if created else "updated"
    console.print(f"{verb} project [bold]{location}[/] with source [bold]{source}[/]")


@app.command("import")
@user_errors
def import_(
    csv: Annotated[
        Path | None, typer.Argument(help="CoralNet annotation CSV (omit to add images only).")
    ] = None,
    images: Annotated[
        list[Path] | None,
        typer.Option("--images", "-i", help="Folder of the CSV's images, or images to add."),
    ] = None,
    labelset: Annotated[
        Path | None,
        typer.Option(help="Labelset to add (CoralNet CSV or CoralNet-Toolbox Labels.json)."),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(help="Leave out images whose name matches this glob (repeatable)."),
    ] = None,
    skip_missing: Annotated[
        bool,
        typer.Option(
            "--skip-missing",
            help="Import the images that are there; list the CSV's missing ones in a file "
            "(see --skipped-list) instead of stopping at the first.",
        ),
    ] = False,
    skipped_list: Annotated[
        Path | None,
        typer.Option(
            help="CSV of the images --skip-missing left out (default: PROJECT-skipped-images.csv "
            "beside the project).",
            show_default=False,
        ),
    ] = None,
    allow_nothing: AllowNothingOption = False,
    format_: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="Format of the file: coralnet (default), or one 'quadrat formats' lists "
            "(cpce, viame, coco, biigle, squidle, coralnet-points, biigle-label-tree). "
            "Without --images its points go onto images already imported.",
        ),
    ] = "coralnet",
    label_mapping: Annotated[
        str,
        typer.Option(help="cpce: labels are the ID (id_only) or ID+Notes (id_and_notes)."),
    ] = "id_only",
    project: ProjectOption = DEFAULT_PROJECT,
    source: SourceOption = None,
) -> None:
    """Import a CoralNet annotation export with its images, new images, or a labelset."""
    if csv is None and not images and labelset is None:
        raise InputError("give an annotation CSV, --images, or --labelset")
    if format_ != "coralnet" and csv is not None:
        _import_format(csv, images, format_, label_mapping, exclude, project, source)
        return
    if csv is not None and (not images or len(images) != 1):
        raise InputError("give the folder of the CSV's images with --images DIR", path=csv)
    with open_project(project) as handle:
        src = handle.source(source)
        if labelset is not None:
            console.print(f"labelset: {src.import_labelset(labelset)} labels added")
        if csv is None and not images:
            return
        with progress_bar() as progress:
            if csv is not None:
                assert images is not None
                summary = src.import_annotations(
                    csv,
                    images[0],
                    exclude=exclude or (),
                    progress=progress,
                    skip_missing=skip_missing,
                )
            else:
                summary = src.import_images(images or [], progress=progress)
    for warning in summary.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if summary.skipped:
        listed = write_skipped(summary.skipped, skipped_list or default_skipped_list(project))
        names = ", ".join(name for name, _ in summary.skipped[:5])
        more = f" and {len(summary.skipped) - 5} more" if len(summary.skipped) > 5 else ""
        err_console.print(
            f"[yellow]skipped {len(summary.skipped)} missing images[/] ({names}{more}); "
            f"the list is in {listed}",
            highlight=False,
            soft_wrap=True,
        )
    if csv is not None and summary.images == 0 and not summary.skipped:
        # Decided from the count: a header-only CSV reads as a table of no rows.
        why = (
            "no rows left to import (the file has none, or --exclude matched them all)"
            if exclude
            else "the file has no rows (only a header)"
        )
        nothing_to_do(f"{csv}: {why}; nothing was imported", allow=allow_nothing)
    console.print(
        f"imported {summary.images} images, {summary.points} points, "
        f"{summary.annotations} annotations into source [bold]{src.name}[/]"
    )


def _import_format(
    path: Path,
    images: list[Path] | None,
    format_: str,
    label_mapping: str,
    exclude: list[str] | None,
    project: str,
    source: str | None,
) -> None:
    """``import FILE --format F``: another tool's file (docs/formats.md)."""
    from quadrat.io.formats import get_format

    if images and len(images) != 1:
        raise InputError("give one folder of the file's images with --images DIR", path=path)
    with open_project(project) as handle:
        src = handle.source(source)
        if get_format(format_).kind == "labelset":
            added = src.import_labelset(path, format=format_)
            console.print(f"labelset: {added} labels added")
            return
        with progress_bar() as progress:
            summary = src.import_annotations(
                path,
                images[0] if images else None,
                exclude=exclude or (),
                progress=progress,
                format=format_,
                label_mapping=label_mapping,
            )
    for warning in summary.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    console.print(
        f"imported {summary.images} images, {summary.points} points, "
        f"{summary.annotations} annotations ({format_}) into source [bold]{src.name}[/]"
    )


def default_skipped_list(project: str) -> Path:
    """Where ``import --skip-missing`` lists skipped images: beside a project file."""
    if "://" in project:
        return Path("skipped-images.csv")
    where = Path(project).expanduser()
    return where.with_name(f"{where.stem}-skipped-images.csv")


def write_skipped(skipped: list[tuple[str, int]], path: Path) -> Path:
    """Write the skipped images (``Name``, the CSV ``Line`` of their first row) atomically."""
    import csv as csv_module
    import io

    from quadrat.io.atomic import write_text

    buffer = io.StringIO()
    writer = csv_module.writer(buffer, lineterminator="\n")
    writer.writerow(["Name", "Line"])
    writer.writerows(skipped)
    return write_text(path, buffer.getvalue())


@app.command()
@user_errors
def points(
    spec: Annotated[
        str | None,
        typer.Argument(help="CoralNet point spec: m_N, t_rows_cols_perCell, u_rows_cols."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed; the same seed gives the same points.")] = 0,
    annotation_area: AreaOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    source: SourceOption = None,
) -> None:
    """Generate points on every image of the source that has none, in its annotation area."""
    with open_project(project) as handle:
        chosen = handle.source(source)
        if annotation_area is not None:
            chosen.set_annotation_area(None if annotation_area == "whole" else annotation_area)
        added = chosen.generate_points(spec, seed=seed)
        area = chosen.annotation_area
    where = f" inside the annotation area {area}" if area else ""
    console.print(f"generated {added} points{where}")
