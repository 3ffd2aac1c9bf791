"""Commands that read results out: export (CoralNet CSVs) and report (metrics, plots)."""

from __future__ import annotations

import functools
import warnings
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from quadrat.cli._answers import HierarchicalThresholdOption, HierarchyOption
from quadrat.cli._common import (
    DEFAULT_PROJECT,
    ProjectOption,
    SourceOption,
    console,
    fmt,
    open_project,
    pick_option,
    user_errors,
)
from quadrat.errors import InputError

if TYPE_CHECKING:
    from quadrat.reports.summary import SourceReport

app = typer.Typer()


class ExportKind(StrEnum):
    annotations = "annotations"
    cover = "cover"
    labelset = "labelset"


@app.command()
@user_errors
def export(
    kind: Annotated[ExportKind, typer.Argument(help="What to export.")],
    old_path: Annotated[
        Path | None,
        typer.Argument(metavar="[PATH]", help="Deprecated: use --out.", hidden=True),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="CSV file to write (atomically).")
    ] = None,
    escape_formulas: Annotated[
        bool,
        typer.Option(
            "--escape-formulas",
            help="Prefix ' to text cells starting with = + - @ (safe to open in a spreadsheet; "
            "no longer CoralNet's exact bytes).",
        ),
    ] = False,
    intervals: Annotated[
        bool,
        typer.Option(
            "--intervals",
            help="cover: add '<label> estimate/lower/upper' columns (two-stage bootstrap: "
            "images within a site, then points within images). docs/cover.md.",
        ),
    ] = False,
    level: Annotated[
        str,
        typer.Option(
            "--level",
            metavar="image|source|site:COLUMN",
            help="cover: one row per image, per site (an image metadata column, e.g. "
            "site:Aux1) or for the whole source.",
        ),
    ] = "image",
    corrected: Annotated[
        str,
        typer.Option(
            "--corrected",
            metavar="none|acc|pacc",
            help="cover: correct machine labels for the classifier's validation confusions "
            "(acc: adjusted classify and count; pacc: on the calibrated scores).",
        ),
    ] = "none",
    confidence: Annotated[
        float, typer.Option("--confidence", help="cover: level of the intervals.")
    ] = 0.95,
    replicates: Annotated[
        int, typer.Option("--replicates", help="cover: bootstrap replicates.")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="cover: bootstrap seed.")] = 0,
    format_: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="annotations/labelset: another tool's format ('quadrat formats': cpce (a "
            "folder), viame, coco, geojson, biigle, squidle, coralnet-points, "
            "biigle-label-tree); default coralnet.",
        ),
    ] = "coralnet",
    confirmed_only: Annotated[
        bool,
        typer.Option(
            "--confirmed-only",
            help="with --format: machine labels nobody accepted are written unlabelled.",
        ),
    ] = False,
    format_options: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            metavar="KEY=VALUE",
            help="with --format: an option of its writer (repeatable), e.g. cpce "
            "image_dir='D:\\Survey' code_path=..., viame half_size=112, geojson points=no.",
        ),
    ] = None,
    hierarchical_threshold: HierarchicalThresholdOption = None,
    hierarchy: HierarchyOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
    source: SourceOption = None,
) -> None:
    """Export CoralNet CSVs: annotations (with machine suggestions), percent cover, labelset.

    Cover with --intervals (or --level/--corrected) adds estimate and bound columns after
    CoralNet's; annotations with --hierarchical-threshold add Answer, Answer level and
    Answer confidence after CoralNet's; without them the file is CoralNet's own.
    """
    path = pick_option(out, old_path, new_flag="--out/-o", old_spelling="the positional PATH")
    if path is None:
        raise InputError("give the CSV file to write with --out FILE")
    extended = intervals or level != "image" or corrected != "none"
    if extended and kind != ExportKind.cover:
        raise InputError("--intervals, --level and --corrected apply to 'export cover' only")
    if (hierarchical_threshold is not None or hierarchy is not None) and (
        kind != ExportKind.annotations or format_ != "coralnet"
    ):
        raise InputError(
            "--hierarchical-threshold and --hierarchy apply to 'export annotations' (CoralNet "
            "format) only"
        )
    if hierarchy is not None and hierarchical_threshold is None:
        raise InputError("--hierarchy needs --hierarchical-threshold")
    options = (
        dict(
            intervals=intervals,
            level=level,
            corrected=corrected,
            confidence=confidence,
            replicates=replicates,
            seed=seed,
        )
        if extended
        else {}
    )
    if format_ != "coralnet":
        from quadrat.io.formats import get_format

        is_labelset = get_format(format_).kind == "labelset"
        if kind == ExportKind.cover or extended or is_labelset != (kind == ExportKind.labelset):
            raise InputError(
                f"--format {format_} does not apply to 'export {kind.value}' (labelset formats "
                "go with 'export labelset', the others with 'export annotations')"
            )
        writer_options: dict[str, str] = {}
        for item in format_options or []:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise InputError(f"--option takes KEY=VALUE, got {item!r}")
            writer_options[key.strip()] = value
        with open_project(project) as handle:
            written = handle.source(source).export(
                format_,
                path,
                annotation_filter="confirmed_only" if confirmed_only else "all",
                **writer_options,
            )
        console.print(f"wrote {written} records ({format_}) to {path}")
        return
    with open_project(project) as handle:
        src = handle.source(source)
        writer = {
            ExportKind.annotations: src.export_annotations,
            ExportKind.cover: src.export_cover,
            ExportKind.labelset: src.export_labelset,
        }[kind]
        if hierarchical_threshold is not None:  # annotations with answers (docs/hierarchy.md)
            from quadrat.workflow import exports

            writer = functools.partial(
                exports.export_annotations,
                src,
                hierarchical_threshold=hierarchical_threshold,
                hierarchy=hierarchy,
            )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            rows = writer(path, escape_formulas=escape_formulas, **options)
    for warning in caught:  # the library names its parameter; here it is a flag
        text = str(warning.message).replace("pass escape_formulas=True", "use --escape-formulas")
        warnings.warn(text, warning.category, stacklevel=1)
    console.print(f"wrote {rows} rows to {path}")


@app.command()
@user_errors
def report(
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder for plots, metrics.json and cover.csv."),
    ] = None,
    target_accuracy: Annotated[
        float, typer.Option(help="Accuracy the suggested alleviate threshold should keep.")
    ] = 0.95,
    project: ProjectOption = DEFAULT_PROJECT,
    source: SourceOption = None,
) -> None:
    """Print the active classifier's metrics, rejected ones, the cover; write plots with --out."""
    if not 0 < target_accuracy <= 1:  # checked here too: without a classifier none is chosen
        raise InputError(
            f"the target accuracy is a fraction in (0, 1], not {target_accuracy:g}",
            value=target_accuracy,
            param="target_accuracy",
        )
    with open_project(project) as handle:
        summary = handle.source(source).report(out, target_accuracy=target_accuracy)
    print_report(summary)
    if summary.files:
        console.print(f"wrote {', '.join(str(f) for f in summary.files)}")


def print_report(summary: SourceReport) -> None:
    """The report as people read it: counts, the classifier, per-label figures, cover."""
    from rich.table import Table

    console.rule(f"source {summary.source}")
    console.print(
        f"{summary.n_images} images ({summary.n_confirmed_images} confirmed), "
        f"{summary.n_points} points: "
        + ", ".join(f"{n} {status}" for status, n in summary.status_counts.items())
    )
    if summary.classifier is None:
        console.print("no accepted classifier" if summary.rejected else "no classifier trained yet")
    else:
        c = summary.classifier
        verdict = "accepted" if c["accepted"] else "not accepted"
        console.print(
            f"classifier {c['id']} ({c['kind']} on {c['extractor_key']}, {verdict}): "
            f"validation accuracy {fmt(c['accuracy'])}, macro F1 {fmt(c['macro_f1'])}, "
            f"{c['n_train']} training / {c['n_val']} validation points, "
            f"trained in {fmt(c['train_seconds'], 2)} s"
        )
        table = Table(title="per label (validation)")
        for column in ("label", "precision", "recall", "f1", "support"):
            table.add_column(column, justify="left" if column == "label" else "right")
        for row in summary.per_label:
            table.add_row(
                str(row["label"]),
                fmt(row["precision"]),
                fmt(row["recall"]),
                fmt(row["f1"]),
                str(int(row["support"])),
            )
        console.print(table)
        if summary.suggested_threshold is not None:
            t = summary.suggested_threshold
            console.print(
                f"alleviate: threshold {fmt(t['threshold'], 2)} keeps accuracy "
                f"{fmt(t['accuracy_accepted'])} on the {t['fraction_accepted']:.0%} of points "
                f"it accepts (target {fmt(summary.target_accuracy, 2)})"
            )
    for rejected in summary.rejected:
        console.print(f"classifier {rejected['id']} ({rejected['kind']}): {rejected['reason']}")
    if summary.cover is not None and len(summary.cover):
        table = Table(title="percent cover (all images with every point annotated)")
        table.add_column("label")
        table.add_column("cover %", justify="right")
        bounds = None
        if summary.cover_intervals is not None:
            table.add_column("95% interval", justify="right")
            bounds = summary.cover_intervals.set_index("label")
        for label, value in summary.overall_cover.items():
            cells = [str(label), f"{value:.1f}"]
            if bounds is not None and str(label) in bounds.index:
                row = bounds.loc[str(label)]
                cells.append(f"{row['lower']:.1f}-{row['upper']:.1f}")
            table.add_row(*cells)
        console.print(table)
