"""``quadrat probe``: how much a backbone's frozen features know about a labelled table.

Parses, calls :func:`quadrat.probes.run.probe_backbone` (linear probe on the flat
labels, hierarchical CATAMI probe on those that map), prints the metrics and optionally
writes them as JSON. docs/probes.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from quadrat.cli._common import console, fmt, progress_bar, user_errors

if TYPE_CHECKING:
    from quadrat.probes.run import ProbeResults

app = typer.Typer()


@app.command()
@user_errors(flags={"image_dir": "--images/-i", "path": "TABLE"})
def probe(
    table: Annotated[
        Path,
        typer.Argument(
            metavar="TABLE",
            help="Labelled table: a patch table (path, label[, group]) or, with --images, "
            "a CoralNet annotation CSV.",
        ),
    ],
    images: Annotated[
        Path | None,
        typer.Option("--images", "-i", help="Photos of a CoralNet annotation CSV."),
    ] = None,
    extractor: Annotated[
        str,
        typer.Option(
            "--extractor", "-e", help="Extractor name, or a 'quadrat pretrain' backbone file."
        ),
    ] = "texture",
    weights: Annotated[Path | None, typer.Option(help="Local weights file.")] = None,
    random_weights: Annotated[
        bool,
        typer.Option("--random-weights", help="Seeded random CNN weights on purpose (a control)."),
    ] = False,
    device: Annotated[
        str, typer.Option(help="auto (cuda when available), cpu, cuda or cuda:N.")
    ] = "auto",
    batch_size: Annotated[int, typer.Option(help="Patches per forward pass.")] = 32,
    label_column: Annotated[str, typer.Option(help="Label column of a patch table.")] = "label",
    mapping: Annotated[
        Path | None,
        typer.Option(help="CATAMI mapping CSV (source_label, caab_code) for the labels."),
    ] = None,
    folds: Annotated[int, typer.Option(help="Cross-validation folds (grouped by photo).")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same folds).")] = 0,
    epochs: Annotated[int, typer.Option(help="Hierarchical probe epochs.")] = 100,
    flat_only: Annotated[
        bool, typer.Option("--flat-only", help="Skip the hierarchical CATAMI probe.")
    ] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the metrics (JSON).")] = (
        None
    ),
) -> None:
    """Linear and hierarchical CATAMI probes of a backbone on a labelled table."""
    from quadrat import create_extractor
    from quadrat._util import dumps, resolve_device
    from quadrat.cli.machine import NO_WEIGHTS_HINT
    from quadrat.errors import WeightsError
    from quadrat.io.atomic import write_text
    from quadrat.labels.translate_io import read_mapping
    from quadrat.probes.run import probe_backbone, read_labelled_patches

    data = read_labelled_patches(table, image_dir=images, label_column=label_column)
    codes = read_mapping(mapping) if mapping is not None else None
    options: dict[str, Any] = {"random_weights": True} if random_weights else {}
    try:
        model = create_extractor(
            extractor,
            weights=weights,
            device=resolve_device(device, cpu_only=extractor == "texture"),
            batch_size=batch_size,
            **options,
        )
    except WeightsError as exc:
        if exc.param != "weights":
            raise
        raise WeightsError(NO_WEIGHTS_HINT.format(name=extractor), value=extractor) from None
    with progress_bar() as progress:
        results = probe_backbone(
            data,
            model,
            batch_size=batch_size,
            progress=progress,
            folds=folds,
            seed=seed,
            hierarchical=not flat_only,
            mapping=codes,
            probe_options={"epochs": epochs},
        )
    _print_results(results)
    if out is not None:
        write_text(out, dumps(results.to_dict(), indent=2) + "\n")
        console.print(f"wrote {escape(str(out))}", highlight=False)


def _print_results(results: ProbeResults) -> None:
    flat = Table(
        title=f"{escape(str(results.extractor))}: {results.samples:,} samples, "
        f"{results.classes} labels, {results.folds} folds"
    )
    for column in ("probe", "accuracy", "macro F1", "n"):
        flat.add_column(column, justify="left" if column == "probe" else "right")
    scores = results.flat
    flat.add_row("linear", fmt(scores["accuracy"]), fmt(scores["macro_f1"]), fmt(scores["n"]))
    console.print(flat)
    hier = results.hierarchical
    if hier is not None:
        shown = Table(title=f"CATAMI probe ({hier['nodes']} nodes)")
        for column in ("group", "exact match", "F1", "AP", "MCC", "samples"):
            shown.add_column(column, justify="left" if column == "group" else "right")
        shown.add_row(
            "all (subset, micro)",
            fmt(hier["subset_accuracy"]),
            fmt(hier["micro_f1"]),
            fmt(hier["micro_ap"]),
            "-",
            fmt(hier["n_samples"]),
        )
        for group, values in hier.get("groups", {}).items():
            shown.add_row(
                escape(group),
                *(fmt(values[m]) for m in ("exact_match", "f1", "ap", "mcc", "n_samples")),
            )
        console.print(shown)
    if results.hierarchical_note:
        console.print(f"CATAMI probe skipped: {results.hierarchical_note}", highlight=False)
    if results.unmapped:
        names = ", ".join(results.unmapped[:10]) + (" ..." if len(results.unmapped) > 10 else "")
        console.print(
            f"{len(results.unmapped)} label(s) not in CATAMI, left out of that probe: "
            f"{escape(names)}",
            highlight=False,
        )
