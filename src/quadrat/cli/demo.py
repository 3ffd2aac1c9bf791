"""``quadrat demo``: the whole workflow on a synthetic survey, with nothing to download."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table
from sqlalchemy import select

from quadrat import engine
from quadrat.cli._common import console, progress_bar, user_errors
from quadrat.cli.results import print_report
from quadrat.demo import DEMO_LABELS, make_demo_survey
from quadrat.errors import InputError
from quadrat.reports.exports import export_annotations, export_cover, export_labelset
from quadrat.reports.summary import build_report, write_report
from quadrat.store.project import Project
from quadrat.store.schema import Annotation, Image, Label, Point

app = typer.Typer()

_MARKER = ".quadrat-demo"


@app.command()
@user_errors
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the survey, project and results.")] = Path(
        "quadrat-demo"
    ),
    images: Annotated[int, typer.Option(help="Annotated images (at least 20).")] = 24,
    new_images: Annotated[int, typer.Option(help="New, unannotated images to classify.")] = 6,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic survey.")] = 0,
) -> None:
    """Run the whole workflow on a small synthetic survey (made up here, said plainly)."""
    if images < 20:
        raise InputError(f"--images must be at least 20 (CoralNet's first training), not {images}")
    if out.exists():
        if not (out / _MARKER).exists():
            raise InputError(
                "folder exists and is not a quadrat demo; choose another --out", path=out
            )
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / _MARKER).write_text("made by quadrat demo; safe to delete\n")
    console.rule("quadrat demo")
    console.print(
        "[bold yellow]This is a SYNTHETIC survey[/]: procedurally textured images of five "
        f"made-up substrates ({', '.join(code for code, *_ in DEMO_LABELS)}). "
        "Its figures show the workflow runs, not how well quadrat labels real reefs."
    )
    survey = make_demo_survey(out / "survey", n_annotated=images, n_new=new_images, seed=seed)
    console.print(
        f"1. wrote {images} annotated + {new_images} new JPEGs and a CoralNet CSV in {survey.root}"
    )

    project_path = out / "demo.db"
    project = Project.create(project_path)
    engine.create_source(project, "demo-reef", labelset=survey.labelset_csv, point_spec="m_30")
    with progress_bar() as progress:
        summary = engine.import_annotations(
            project, "demo-reef", survey.annotations_csv, survey.annotated_dir, progress=progress
        )
        console.print(
            f"2. imported {summary.images} images, {summary.annotations} annotations "
            f"into {project_path}"
        )
        new = engine.import_images(project, "demo-reef", [survey.new_dir], progress=progress)
        added = engine.generate_points(project, "demo-reef", seed=seed)
        console.print(f"3. added {new.images} new images with {added} random points (m_30)")
        from quadrat.extractors import create_extractor  # torch: only when needed

        extractor = create_extractor("texture")
        ext = engine.extract_features(project, "demo-reef", extractor, progress=progress)
    console.print(
        f"4. extracted {ext.points} feature vectors with '{extractor.config.name}' "
        f"({extractor.config.feature_dim}-d, no weights) at {ext.points_per_second:.0f} points/s"
    )
    outcome = engine.train_source(project, "demo-reef", extractor.key, kind="mlp", seed=seed)
    console.print(f"5. {outcome.message}")
    report = build_report(project, "demo-reef")
    threshold = report.suggested_threshold["threshold"] if report.suggested_threshold else None
    with progress_bar() as progress:
        scored = engine.classify_source(
            project, "demo-reef", threshold=threshold, progress=progress
        )
    console.print(
        f"6. classified {scored.points} new points: {scored.alleviated} auto-accepted at "
        f"confidence >= {threshold if threshold is not None else 'n/a'}, "
        f"{scored.machine} left for review"
    )
    _print_truth_check(project, survey.truth)
    report = build_report(project, "demo-reef")
    print_report(report)
    results = out / "results"
    written = write_report(report, results)
    for name, writer in (
        ("annotations.csv", export_annotations),
        ("cover_export.csv", export_cover),
        ("labelset.csv", export_labelset),
    ):
        writer(project, "demo-reef", results / name)
        written.append(results / name)
    console.print(f"7. wrote {len(written)} files to {results}: plots, metrics and CoralNet CSVs")
    console.print(f"Explore further with: quadrat report -p {project_path}")


def _print_truth_check(project: Project, truth: dict[str, np.ndarray]) -> None:
    """Accuracy and cover of the machine's labels on the new images, against the hidden truth."""
    codes = [code for code, *_ in DEMO_LABELS]
    with project.session() as session:
        rows = session.execute(
            select(Image.name, Point.row, Point.column, Label.short_code)
            .join(Point, Point.image_id == Image.id)
            .join(Annotation, Annotation.point_id == Point.id)
            .join(Label, Label.id == Annotation.label_id)
            .where(Image.name.in_(list(truth)))
        ).all()
    if not rows:
        return
    true = [codes[int(truth[name][r, c])] for name, r, c, _ in rows]
    pred = [code for *_, code in rows]
    accuracy = float(np.mean([t == p for t, p in zip(true, pred, strict=True)]))
    table = Table(title=f"new images: machine vs hidden truth ({len(rows)} points)")
    table.add_column("label")
    table.add_column("true cover %", justify="right")
    table.add_column("machine cover %", justify="right")
    for code in codes:
        table.add_row(
            code,
            f"{100 * true.count(code) / len(true):.1f}",
            f"{100 * pred.count(code) / len(pred):.1f}",
        )
    console.print(table)
    console.print(f"machine accuracy on the new images: [bold]{accuracy:.3f}[/]")
