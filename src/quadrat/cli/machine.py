"""The machine's steps of the workflow: extract, train, classify.

Each command parses its options, calls the public API (:class:`quadrat.Source`) and
prints; nothing else. The library is imported inside the command bodies so that
``quadrat --help`` stays fast. The person's steps (init, import, points) are in
``workflow.py``.
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
