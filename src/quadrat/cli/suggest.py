"""Commands that help people label: suggest (what to label next) and audit (wrong labels).

Both read only; they print a table, or write it with ``--out`` (CSV, or Parquet by suffix).
docs/suggest-audit.md.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from quadrat.cli._common import (
    DEFAULT_PROJECT,
    ProjectOption,
    SourceOption,
    console,
    fmt,
    nothing_to_do,
    open_project,
    user_errors,
)

if TYPE_CHECKING:
    import pandas as pd

app = typer.Typer()


class StrategyChoice(StrEnum):
    margin = "margin"
    entropy = "entropy"
    random = "random"


class ByChoice(StrEnum):
    points = "points"
    images = "images"


def _show(frame: pd.DataFrame, out: Path | None, what: str) -> None:
    """Write ``frame`` to ``out`` (atomically), or print it as a plain table (ids left out)."""
    if out is not None:
        from quadrat.io.tables import write_table

        write_table(frame, out)
        console.print(f"{len(frame)} {what} written to {out}")
        return
    shown = frame.drop(columns=[c for c in ("point_id", "image_id") if c in frame.columns])
    typer.echo(shown.to_string(index=False, float_format=lambda v: fmt(v)))


@app.command()
@user_errors(flags={"n": "-n/--number", "strategy": "--strategy", "by": "--by"})
def suggest(
    number: Annotated[
        int, typer.Option("--number", "-n", min=1, help="How many points (or images).")
    ] = 20,
    strategy: Annotated[
        StrategyChoice,
        typer.Option(
            "--strategy",
            help="margin: smallest gap between the two top labels; entropy: flattest "
            "scores; random: uniform (needs no classifier).",
        ),
    ] = StrategyChoice.margin,
    by: Annotated[
        ByChoice,
        typer.Option("--by", help="Rank points, or images by their points' mean score."),
    ] = ByChoice.points,
    no_diversity: Annotated[
        bool,
        typer.Option(
            "--no-diversity",
            help="Take the most uncertain as they come (default: spread the batch over the "
            "features, k-center greedy among the 5 N most uncertain).",
        ),
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of --strategy random.")] = 0,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the list here (CSV, or .parquet)."),
    ] = None,
    allow_nothing: Annotated[
        bool, typer.Option("--allow-nothing", help="Exit 0, not 3, when nothing is left.")
    ] = False,
    project: ProjectOption = DEFAULT_PROJECT,
    source: SourceOption = None,
) -> None:
    """Which unconfirmed points (or images) to label next, most useful first."""
    with open_project(project) as handle:
        frame = handle.source(source).suggest(
            number,
            strategy=strategy.value,
            by=by.value,
            diversity=not no_diversity,
            seed=seed,
        )
    if frame.empty:
        nothing_to_do("every point has a person's label", allow=allow_nothing)
    _show(frame, out, by.value)


@app.command()
@user_errors(flags={"folds": "--folds", "k": "--neighbours", "max_agreement": "--max-agreement"})
def audit(
    extractor: Annotated[
        str | None,
        typer.Option(
            "--extractor",
            "-e",
            help="Features to use (default: the active classifier's, else the only ones).",
        ),
    ] = None,
    folds: Annotated[int, typer.Option("--folds", min=2, help="Cross-validation folds.")] = 5,
    neighbours: Annotated[
        int, typer.Option("--neighbours", min=1, help="Neighbours for the agreement.")
    ] = 10,
    max_agreement: Annotated[
        float,
        typer.Option(
            "--max-agreement",
            min=0.0,
            help="Flag only labels fewer than this share of neighbours agree with "
            "(above 1: confident learning alone).",
        ),
    ] = 0.5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the folds.")] = 0,
    all_points: Annotated[
        bool,
        typer.Option("--all", help="List every labelled point (with a flagged column)."),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the list here (CSV, or .parquet)."),
    ] = None,
    project: ProjectOption = DEFAULT_PROJECT,
    source: SourceOption = None,
) -> None:
    """Person-given labels that cross-validated predictions and feature-space neighbours
    disagree with (confident learning), most suspect first."""
    with open_project(project) as handle:
        frame = handle.source(source).audit(
            extractor_key=extractor,
            folds=folds,
            k=neighbours,
            seed=seed,
            max_agreement=None if max_agreement > 1 else max_agreement,
            all_points=all_points,
        )
    if out is None and frame.empty:
        console.print("no label flagged")
        return
    _show(frame, out, "points")
