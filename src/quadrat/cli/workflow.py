"""The point-annotation workflow commands: init, import, points, extract, train, classify.

Each command parses its options, calls the public API (:class:`quadrat.Project`,
:class:`quadrat.Source`) and prints; nothing else. The library is imported inside the
command bodies so that ``quadrat --help`` stays fast.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer

from quadrat.cli._answers import HierarchicalThresholdOption, HierarchyOption, print_summary
from quadrat.cli._common import (
    DEFAULT_PROJECT,
    AllowNothingOption,
    ProjectOption,
    SourceOption,
    console,
    deprecated_alias,
    err_console,
    fmt,
    nothing_to_do,
    open_project,
    progress_bar,
    user_errors,
)
from quadrat.errors import InputError, WeightsError

app = typer.Typer()

#: A CNN asked for without weights: the library's refusal in this command's words.
NO_WEIGHTS_HINT = (
    "the CNN extractor {name!r} needs weights: give --weights FILE (a local weights file, "
    "e.g. CoralNet's EfficientNet-B0 in pyspacer's layout or a timm state dict), or a "
    "backbone pretrained by 'quadrat pretrain' as the extractor (-e runs/x/backbone.safetensors); "
    "--random-weights runs seeded random weights on purpose (benchmarks: their features are a "
    "floor, not a classifier anyone should use)"
)


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
                source, labelset=labelset, point_spec=points, confidence_threshold=threshold
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
    project: ProjectOption = DEFAULT_PROJECT,
    source: SourceOption = None,
) -> None:
    """Generate points on every image of the source that has none."""
    with open_project(project) as handle:
        added = handle.source(source).generate_points(spec, seed=seed)
    console.print(f"generated {added} points")


@app.command()
@user_errors
def extract(
    extractor: Annotated[
        str, typer.Option("--extractor", "-e", help="Extractor name (see --list).")
    ] = "texture",
    weights: Annotated[Path | None, typer.Option(help="Local weights file.")] = None,
    random_weights: Annotated[
        bool,
        typer.Option(
            "--random-weights",
            help="Use a CNN with seeded random weights on purpose (benchmarks, tests).",
        ),
    ] = False,
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
    allow_nothing: AllowNothingOption = False,
    project: ProjectOption = DEFAULT_PROJECT,
    source: SourceOption = None,
) -> None:
    """Extract features for every point lacking them (resumable: reruns skip stored images)."""
    # Imported here: torch, timm and Ray cost seconds that other commands need not pay.
    from quadrat import create_extractor, list_extractors
    from quadrat._util import resolve_device
    from quadrat.extraction import Runner

    if list_:
        for entry in list_extractors():
            console.print(entry)
        return
    options: dict[str, Any] = {}
    if runtime != "auto" or bf16 or threads is not None:
        if extractor == "texture":
            raise InputError("--runtime, --bf16 and --threads apply to CNN extractors only")
        options = {"runtime": runtime, "autocast_bf16": bf16, "threads": threads}
    if random_weights:  # only when asked, so an extractor without the parameter still works
        options["random_weights"] = True
    with open_project(project) as handle:
        src = handle.source(source)
        ray_runner = None
        if ray is not None:  # the driver's copy stays on the CPU; workers may use GPUs
            from quadrat.cli._ray import cli_ray_runner

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
                options={k: v for k, v in options.items() if k != "random_weights"},
                random_weights=random_weights,
            )
            device = "cpu"
        device = resolve_device(device, cpu_only=extractor == "texture")
        try:
            model = create_extractor(
                extractor, weights=weights, device=device, batch_size=batch_size, **options
            )
        except WeightsError as exc:
            if exc.param != "weights":
                raise
            raise WeightsError(NO_WEIGHTS_HINT.format(name=extractor), value=extractor) from None
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        runner: Runner | None = ray_runner
        if compile_:
            from quadrat.extraction.gpu import GpuRunner

            runner = GpuRunner(workers=workers, compile=True)
        with progress_bar() as progress, ray_runner or contextlib.nullcontext():
            summary = src.extract(
                model, dtype=dtype, workers=workers, runner=runner, progress=progress
            )
    line = (
        f"{model.key}: {summary.points} points from {summary.images_done} images "
        f"({fmt(summary.points_per_second)} points/s), {summary.images_skipped} already stored"
    )
    if summary.images_done == 0:
        nothing_to_do(f"{line}; no image lacks features", allow=allow_nothing)
    console.print(line)


@app.command()
@user_errors
def train(
    extractor: Annotated[
        str | None, typer.Option("--extractor", "-e", help="Extractor name or key.")
    ] = None,
    kind: Annotated[str, typer.Option(help="mlp (CoralNet 1.0) or lr.")] = "mlp",
    force: Annotated[
        bool, typer.Option("--force", help="Train even if the policy says not yet.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the split and the model.")] = 0,
    device: Annotated[
        str | None,
        typer.Option(
            help="Train with PyTorch on auto, cpu or cuda (default: scikit-learn on CPU)."
        ),
    ] = None,
    allow_nothing: AllowNothingOption = False,
    project: ProjectOption = DEFAULT_PROJECT,
    source: SourceOption = None,
) -> None:
    """Train a classifier on confirmed points, following CoralNet's policy."""
    if kind not in ("mlp", "lr"):
        raise InputError(f"--kind must be mlp or lr, not {kind!r}")
    if device is not None and device not in ("auto", "cpu", "cuda"):
        raise InputError(f"--device must be auto, cpu or cuda, not {device!r}")
    with open_project(project) as handle:
        src = handle.source(source)
        key = src.extractor_key(extractor)
        where = "scikit-learn" if device is None else f"torch on {device}"
        with console.status(f"training {kind} ({where}) on {key} features"):
            outcome = src.train(key, kind=kind, force=force, seed=seed, device=device)
    if not outcome.trained:
        nothing_to_do(f"{outcome.message} (--force trains now)", allow=allow_nothing)
    console.print(outcome.message)
    m = outcome.metrics
    console.print(
        f"validation: accuracy {fmt(m['accuracy'])}, macro F1 {fmt(m['macro_f1'])} "
        f"on {outcome.n_val} points ({outcome.n_train} training points, "
        f"{fmt(outcome.train_seconds, 2)} s)"
    )


@app.command()
@user_errors(flags={"value": "--threshold"})  # Source.set_confidence_threshold(value)
def classify(
    threshold: Annotated[
        float | None,
        typer.Option(help="Auto-accept at or above this confidence (saved for the source)."),
    ] = None,
    classifier: Annotated[
        int | None, typer.Option(help="Classifier id (default: latest accepted).")
    ] = None,
    hierarchical_threshold: HierarchicalThresholdOption = None,
    hierarchy: HierarchyOption = None,
    allow_nothing: AllowNothingOption = False,
    project: ProjectOption = DEFAULT_PROJECT,
    source: SourceOption = None,
) -> None:
    """Score unlabelled points: top-5 suggestions, machine annotations, alleviation."""
    from quadrat.workflow.classify import classify as classify_step

    with open_project(project) as handle:
        src = handle.source(source)
        if threshold is not None:
            src.set_confidence_threshold(threshold)
        with progress_bar() as progress:
            answers: dict[str, Any] = {"hierarchy": hierarchy}
            answers["hierarchical_threshold"] = hierarchical_threshold
            summary = classify_step(
                src, threshold=threshold, classifier_id=classifier, progress=progress, **answers
            )
    if summary.points == 0:
        nothing_to_do(
            f"classifier {summary.classifier_id}: every point has a person's label",
            allow=allow_nothing,
        )
    print_summary(summary)
