"""``quadrat demo``: the whole workflow on a synthetic survey, with nothing to download."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from quadrat.cli._common import console, fmt, progress_bar, user_errors
from quadrat.errors import InputError

if TYPE_CHECKING:
    import numpy as np

    from quadrat.workflow import Source

app = typer.Typer()

_MARKER = ".quadrat-demo"


@app.command()
@user_errors
def demo(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the survey, project and results.")
    ] = Path("quadrat-demo"),
    annotated_images: Annotated[
        int, typer.Option("--annotated-images", help="Annotated images (at least 20).")
    ] = 24,
    new_images: Annotated[int, typer.Option(help="New, unannotated images to classify.")] = 6,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic survey.")] = 0,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Then add an admin user and open the project in the browser "
            "(quadrat serve on 127.0.0.1; Ctrl-C stops it).",
        ),
    ] = False,
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port of --serve on 127.0.0.1.")
    ] = 8000,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="With --serve: read the admin's password as one line from standard input "
            "(else one is generated and printed once).",
        ),
    ] = False,
) -> None:
    """Run the whole workflow on a small synthetic survey (made up here, said plainly)."""
    from quadrat import Project, create_extractor
    from quadrat.cli.results import print_report
    from quadrat.demo import DEMO_LABELS, make_demo_survey

    images = annotated_images
    if images < 20:
        raise InputError(
            f"--annotated-images must be at least 20 (CoralNet's first training), not {images}"
        )
    if password_stdin and not serve:
        raise InputError("--password-stdin is for --serve's admin user; add --serve")
    password = None
    if serve:
        from quadrat.cli.serve import _require_serve_extra

        _require_serve_extra()  # before minutes of work, not after
        if password_stdin:
            from quadrat.cli.users import _read_password

            password = _read_password(True)
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
    with Project.create(project_path) as project:
        src = project.create_source("demo-reef", labelset=survey.labelset_csv, point_spec="m_30")
        with progress_bar() as progress:
            summary = src.import_annotations(
                survey.annotations_csv, survey.annotated_dir, progress=progress
            )
            console.print(
                f"2. imported {summary.images} images, {summary.annotations} annotations "
                f"into {project_path}"
            )
            new = src.import_images([survey.new_dir], progress=progress)
            added = src.generate_points(seed=seed)
            console.print(f"3. added {new.images} new images with {added} random points (m_30)")
            extractor = create_extractor("texture")
            ext = src.extract(extractor, progress=progress)
        console.print(
            f"4. extracted {ext.points} feature vectors with '{extractor.config.name}' "
            f"({extractor.config.feature_dim}-d, no weights) at "
            f"{fmt(ext.points_per_second)} points/s"
        )
        outcome = src.train(extractor.key, kind="mlp", seed=seed)
        console.print(f"5. {outcome.message}")
        suggested = src.report().suggested_threshold
        threshold = suggested["threshold"] if suggested else None
        with progress_bar() as progress:
            scored = src.classify(threshold=threshold, progress=progress)
        console.print(
            f"6. classified {scored.points} new points: {scored.alleviated} auto-accepted at "
            f"confidence >= {fmt(threshold, 2)}, {scored.machine} left for review"
        )
        _print_truth_check(src, survey.truth)
        results = out / "results"
        report = src.report(results)
        print_report(report)
        written = list(report.files)
        for name, writer in (
            ("annotations.csv", src.export_annotations),
            ("cover_export.csv", src.export_cover),
            ("labelset.csv", src.export_labelset),
        ):
            writer(results / name)
            written.append(results / name)
    console.print(f"7. wrote {len(written)} files to {results}: plots, metrics and CoralNet CSVs")
    if not serve:
        console.print(f"Explore further with: quadrat report -p {project_path}")
        return
    _serve_demo(project_path, port, password)


#: The demo's admin account (``quadrat demo --serve``).
DEMO_ADMIN = "demo-admin"


def _serve_demo(project_path: Path, port: int, password: str | None) -> None:
    """Add the demo admin (a generated password unless given) and serve on loopback."""
    import secrets

    from quadrat.cli.serve import _settings
    from quadrat.service import accounts
    from quadrat.service.server import serve as run_server
    from quadrat.store.project import Store

    generated = password is None
    secret = password if password is not None else secrets.token_urlsafe(12)
    store = Store.open(project_path)
    try:
        accounts.add_user(store, DEMO_ADMIN, secret, role="admin")
    finally:
        store.close()
    console.print(f"8. added the admin user [bold]{DEMO_ADMIN}[/]", highlight=False)
    if generated:
        console.print(
            f"   password: [bold]{secret}[/] (shown once; it is stored only as a hash)",
            highlight=False,
        )
    location = str(project_path.resolve())
    console.print(
        f"Sign in and annotate at http://127.0.0.1:{port}/ui/ (Ctrl-C stops the server)",
        highlight=False,
    )
    run_server(_settings(database=location), "127.0.0.1", port)


def _print_truth_check(src: Source, truth: dict[str, np.ndarray]) -> None:
    """Accuracy and cover of the machine's labels on the new images, against the hidden truth."""
    import numpy as np
    from rich.table import Table

    from quadrat.demo import DEMO_LABELS

    codes = [code for code, *_ in DEMO_LABELS]
    table = src.annotations()
    rows = table[table["image"].isin(list(truth)) & table["label"].notna()]
    if not len(rows):
        return
    true = [
        codes[int(truth[name][r, c])]
        for name, r, c in zip(rows["image"], rows["row"], rows["column"], strict=True)
    ]
    pred = [str(code) for code in rows["label"]]
    accuracy = float(np.mean([t == p for t, p in zip(true, pred, strict=True)]))
    check = Table(title=f"new images: machine vs hidden truth ({len(rows)} points)")
    check.add_column("label")
    check.add_column("true cover %", justify="right")
    check.add_column("machine cover %", justify="right")
    for code in codes:
        check.add_row(
            code,
            f"{100 * true.count(code) / len(true):.1f}",
            f"{100 * pred.count(code) / len(pred):.1f}",
        )
    console.print(check)
    console.print(f"machine accuracy on the new images: [bold]{fmt(accuracy)}[/]")
