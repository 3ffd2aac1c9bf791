"""The point-annotation workflow commands: init, import, points, extract, train, classify."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select

from quadrat import engine
from quadrat.cli._common import (
    DEFAULT_PROJECT,
    ProjectOption,
    SourceOption,
    console,
    open_project,
    progress_bar,
    resolve_source,
    user_errors,
)
from quadrat.errors import InputError, ProjectError
from quadrat.store.project import Project
from quadrat.store.schema import ExtractorRecord, FeatureBlock, Image

app = typer.Typer()


@app.command()
@user_errors
def init(
    project: Annotated[
        Path, typer.Argument(help="Project file to create (SQLite).")
    ] = DEFAULT_PROJECT,
    source: Annotated[
        str, typer.Option("--source", "-s", help="Name of the first source.")
    ] = "default",
    labelset: Annotated[
        Path | None, typer.Option(help="CoralNet labelset CSV for the source.")
    ] = None,
    points: Annotated[
        str | None, typer.Option(help="Default point spec for new images: m_200, t_5_5_2, u_10_10.")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(help="Confidence threshold for auto-accepting (alleviate).")
    ] = None,
) -> None:
    """Create a project with one source (add more with --source on an existing project)."""
    try:
        handle = Project.open(project)
        created = False
    except ProjectError:
        handle = Project.create(project)
        created = True
    engine.create_source(
        handle, source, labelset=labelset, point_spec=points, confidence_threshold=threshold
    )
    verb = "created" if created else "updated"
    console.print(f"{verb} project [bold]{project}[/] with source [bold]{source}[/]")


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
    labelset: Annotated[Path | None, typer.Option(help="CoralNet labelset CSV to add.")] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(help="Leave out images whose name matches this glob (repeatable)."),
    ] = None,
    project: ProjectOption = DEFAULT_PROJECT,
    source: SourceOption = None,
) -> None:
    """Import a CoralNet annotation export with its images, new images, or a labelset."""
    handle = open_project(project)
    name = resolve_source(handle, source)
    if labelset is not None:
        added = engine.import_labelset(handle, name, labelset)
        console.print(f"labelset: {added} labels added")
    if csv is None and not images:
        if labelset is None:
            raise InputError("give an annotation CSV, --images, or --labelset")
        return
    with progress_bar() as progress:
        if csv is not None:
            if not images or len(images) != 1:
                raise InputError("give the folder of the CSV's images with --images DIR", path=csv)
            summary = engine.import_annotations(
                handle, name, csv, images[0], exclude=exclude or (), progress=progress
            )
        else:
            summary = engine.import_images(handle, name, images or [], progress=progress)
    for warning in summary.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    console.print(
        f"imported {summary.images} images, {summary.points} points, "
        f"{summary.annotations} annotations into source [bold]{name}[/]"
    )


@app.command()
@user_errors
def points(
    spec: Annotated[
        str | None,
        typer.Argument(help="CoralNet point spec: m_N, t_rows_cols_perCell, u_rows_cols."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed; the same seed gives the same points.")] = 0,
    project: ProjectOption = DEFAULT_PROJECT,
    source: SourceOption = None,
) -> None:
    """Generate points on every image of the source that has none."""
    handle = open_project(project)
    name = resolve_source(handle, source)
    added = engine.generate_points(handle, name, spec, seed=seed)
    console.print(f"generated {added} points")


@app.command()
@user_errors
def extract(
    extractor: Annotated[
        str, typer.Option("--extractor", "-e", help="Extractor name (see --list).")
    ] = "texture",
    weights: Annotated[Path | None, typer.Option(help="Local weights file.")] = None,
    batch_size: Annotated[int, typer.Option(help="Patches per forward pass.")] = 32,
    device: Annotated[
        str, typer.Option(help="auto (cuda when available), cpu, cuda or cuda:N.")
    ] = "auto",
    compile_: Annotated[
        bool, typer.Option("--compile", help="torch.compile the network (GPU runner).")
    ] = False,
    runtime: Annotated[
        str,
        typer.Option(
            help="CNN runtime: auto (OpenVINO on the CPU when installed, else eager), "
            "eager, compile or openvino; fp32 features agree within float rounding; add "
            "--bf16 for the faster, inexact mode."
        ),
    ] = "auto",
    bf16: Annotated[
        bool, typer.Option("--bf16", help="bf16 arithmetic: faster, changes features and key.")
    ] = False,
    threads: Annotated[
        int | None, typer.Option(help="PyTorch/OpenVINO threads (default: all cores).")
    ] = None,
    dtype: Annotated[
        str, typer.Option(help="Stored feature type: float16 or float32.")
    ] = "float16",
    workers: Annotated[int, typer.Option(help="Threads decoding images ahead.")] = 2,
    ray: Annotated[
        str | None,
        typer.Option(help="Extract on a Ray cluster: auto, local, host:port or ray://host:port."),
    ] = None,
    ray_workers: Annotated[int, typer.Option(help="Ray workers (actors), with --ray.")] = 2,
    ray_gpus: Annotated[float, typer.Option(help="GPUs per Ray worker (0: CPU workers).")] = 0.0,
    list_: Annotated[bool, typer.Option("--list", help="List extractors and exit.")] = False,
    project: ProjectOption = DEFAULT_PROJECT,
    source: SourceOption = None,
) -> None:
    """Extract features for every point lacking them (resumable: reruns skip stored images)."""
    # Imported here: torch, timm and Ray cost seconds that other commands need not pay.
    import torch

    from quadrat.extraction.gpu import GpuRunner, resolve_device
    from quadrat.extraction.ray_runner import cli_ray_runner
    from quadrat.extractors import create_extractor, list_extractors

    if list_:
        for entry in list_extractors():
            console.print(entry)
        return
    handle = open_project(project)
    name = resolve_source(handle, source)
    options: dict[str, Any] = {}
    if runtime != "auto" or bf16 or threads is not None:
        if extractor == "texture":
            raise InputError("--runtime, --bf16 and --threads apply to CNN extractors only")
        options = {"runtime": runtime, "autocast_bf16": bf16, "threads": threads}
    ray_runner = None
    if ray is not None:  # the driver's copy stays on the CPU; workers may use GPUs
        if compile_:
            raise InputError("--compile is for one machine's GPU runner; drop it with --ray")
        ray_runner = cli_ray_runner(
            ray,
            num_workers=ray_workers,
            num_gpus_per_worker=ray_gpus,
            device=device,
            extractor_name=extractor,
            weights=weights,
            batch_size=batch_size,
            decode_threads=workers,
            options=options,
        )
        device = "cpu"
    device = resolve_device(device, extractor)
    model = create_extractor(
        extractor, weights=weights, device=device, batch_size=batch_size, **options
    )
    if threads is not None:
        torch.set_num_threads(threads)
    runner = GpuRunner(workers=workers, compile=True) if compile_ else ray_runner
    with progress_bar() as progress, ray_runner or contextlib.nullcontext():
        summary = engine.extract_features(
            handle, name, model, dtype=dtype, workers=workers, runner=runner, progress=progress
        )
    console.print(
        f"{model.key}: {summary.points} points from {summary.images_done} images "
        f"({summary.points_per_second:.1f} points/s), {summary.images_skipped} already stored"
    )


def resolve_extractor_key(handle: Project, source: str, extractor: str | None) -> str:
    """The stored extractor key the user means: by key, by name, or the only one there is."""
    with handle.session() as session:
        src = handle.source(session, source)
        rows = session.execute(
            select(ExtractorRecord.key, ExtractorRecord.name)
            .join(FeatureBlock, FeatureBlock.extractor_key == ExtractorRecord.key)
            .join(Image, Image.id == FeatureBlock.image_id)
            .where(Image.source_id == src.id)
            .distinct()
        ).all()
    if not rows:
        raise ProjectError(f"source {source!r} has no stored features; run 'quadrat extract'")
    matches = [k for k, n in rows if extractor in (None, k, n)]
    if len(matches) == 1:
        return matches[0]
    keys = ", ".join(k for k, _ in rows)
    if not matches:
        raise InputError(f"no stored features from {extractor!r} (stored: {keys})")
    raise InputError(f"several extractors have features here ({keys}); pick one with --extractor")


@app.command()
@user_errors
def train(
    extractor: Annotated[
        str | None, typer.Option("--extractor", "-e", help="Extractor name or key.")
    ] = None,
    kind: Annotated[str, typer.Option(help="mlp (CoralNet 1.0) or lr.")] = "mlp",
    force: Annotated[bool, typer.Option(help="Train even if the policy says not yet.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the split and the model.")] = 0,
    device: Annotated[
        str | None,
        typer.Option(
            help="Train with PyTorch on auto, cpu or cuda (default: scikit-learn on CPU)."
        ),
    ] = None,
    project: ProjectOption = DEFAULT_PROJECT,
    source: SourceOption = None,
) -> None:
    """Train a classifier on confirmed points, following CoralNet's policy."""
    if kind not in ("mlp", "lr"):
        raise InputError(f"--kind must be mlp or lr, not {kind!r}")
    if device is not None and device not in ("auto", "cpu", "cuda"):
        raise InputError(f"--device must be auto, cpu or cuda, not {device!r}")
    handle = open_project(project)
    name = resolve_source(handle, source)
    key = resolve_extractor_key(handle, name, extractor)
    where = "scikit-learn" if device is None else f"torch on {device}"
    with console.status(f"training {kind} ({where}) on {key} features"):
        outcome = engine.train_source(
            handle,
            name,
            key,
            kind="lr" if kind == "lr" else "mlp",
            force=force,
            seed=seed,
            device=device,
        )
    console.print(outcome.message)
    if outcome.trained:
        m = outcome.metrics
        console.print(
            f"validation: accuracy {m['accuracy']:.3f}, macro F1 {m['macro_f1']:.3f} "
            f"on {outcome.n_val} points ({outcome.n_train} training points, "
            f"{outcome.train_seconds:.1f} s)"
        )


@app.command()
@user_errors
def classify(
    threshold: Annotated[
        float | None,
        typer.Option(help="Auto-accept at or above this confidence (saved for the source)."),
    ] = None,
    classifier: Annotated[
        int | None, typer.Option(help="Classifier id (default: latest accepted).")
    ] = None,
    project: ProjectOption = DEFAULT_PROJECT,
    source: SourceOption = None,
) -> None:
    """Score unlabelled points: top-5 suggestions, machine annotations, alleviation."""
    handle = open_project(project)
    name = resolve_source(handle, source)
    if threshold is not None:
        engine.set_confidence_threshold(handle, name, threshold)
    with progress_bar() as progress:
        summary = engine.classify_source(
            handle, name, classifier_id=classifier, threshold=threshold, progress=progress
        )
    table = Table(title=f"classifier {summary.classifier_id}")
    table.add_column("points scored", justify="right")
    table.add_column("machine", justify="right")
    table.add_column("alleviated", justify="right")
    table.add_row(str(summary.points), str(summary.machine), str(summary.alleviated))
    console.print(table)
