"""``quadrat dataset subsample|partition``: thin a survey by distance, split it in space.

Both read a BenthicNet metadata table (Parquet or CSV, e.g. written by
``quadrat dataset validate``) and write a table of the same columns atomically.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from quadrat.cli._common import console, pick_option, progress_bar, user_errors
from quadrat.errors import InputError

if TYPE_CHECKING:  # pandas and the dataset modules are imported when a command runs
    import pandas as pd

    from quadrat.datasets.partition import PartitionResult

app = typer.Typer()


class SiteGrouping(StrEnum):
    """What makes a site for ``subsample``: (dataset, site), or the site name alone."""

    dataset_site = "dataset-site"
    site = "site"


class PartitionMethod(StrEnum):
    """How ``partition`` splits."""

    spatial = "spatial"
    site = "site"


@contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Put the input file's name on errors raised about its (already read) table."""
    try:
        yield
    except InputError as exc:
        if exc.path is not None:
            raise
        raise type(exc)(
            exc.message, path=path, line=exc.line, value=exc.value, param=exc.param
        ) from None


def _parse_factors(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InputError(
            "--factors takes numbers separated by commas (1,2,4)", value=text
        ) from None


@app.command()
@user_errors(flags={"group_by": "--group-by"})
def subsample(
    table_in: Annotated[Path, typer.Argument(metavar="IN", help="Metadata table (.parquet/.csv).")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Kept rows (.parquet/.csv).")
    ] = None,
    old_out: Annotated[Path | None, typer.Argument(metavar="OUT", hidden=True)] = None,
    distance: Annotated[float, typer.Option(help="Target metres between kept images.")] = 2.5,
    target: Annotated[int, typer.Option(help="Target images per site (0: no cap).")] = 1000,
    minimum: Annotated[int, typer.Option("--min", help="Sites up to this size stay whole.")] = 500,
    factors: Annotated[
        str, typer.Option(help="Distance multipliers tried to reach the target, e.g. 1,2,4.")
    ] = "1",
    pseudo_site_gap: Annotated[float, typer.Option(help="Metres: a new pseudo-site.")] = 1000.0,
    subsite_gap: Annotated[float, typer.Option(help="Metres: a new subsite.")] = 500.0,
    sort_by_time: Annotated[
        bool,
        typer.Option("--sort-by-time", help="Order each site by datetime first (else file order)."),
    ] = False,
    spatial_only: Annotated[
        bool,
        typer.Option(
            "--spatial-only",
            help="Never space a site evenly by position: thin every site above its minimum "
            "by distance; one without navigation is dropped.",
        ),
    ] = False,
    subsite_target_bonus: Annotated[
        int | None,
        typer.Option(help="Images added to the target per extra subsite (default: --target / 2)."),
    ] = None,
    subsite_min_bonus: Annotated[
        int | None,
        typer.Option(help="Images added to the minimum per extra subsite (default: --min / 2)."),
    ] = None,
    group_by: Annotated[
        SiteGrouping,
        typer.Option(help="A site is a (dataset, site) pair, or a site name across datasets."),
    ] = SiteGrouping.dataset_site,
    report: Annotated[
        Path | None, typer.Option(help="Folder for map.png, counts.csv and sites.csv.")
    ] = None,
    label_column: Annotated[
        str | None, typer.Option(help="Also count this label column in the report.")
    ] = None,
) -> None:
    """Thin every site to images about DISTANCE apart along its track (BenthicNet's method)."""
    table_out: Path = pick_option(
        out, old_out, new_flag="--out/-o", old_spelling="the OUT argument", required=True
    )
    from quadrat.datasets.schema import read_metadata_table
    from quadrat.datasets.subsample import REQUIRED_COLUMNS, subsample_sites
    from quadrat.io.tables import write_table
    from quadrat.reports.datasets import write_subsample_report

    table = read_metadata_table(table_in, required=REQUIRED_COLUMNS)
    if sort_by_time:
        if "datetime" not in table.columns:
            raise InputError("--sort-by-time needs a datetime column", path=table_in)
        table = table.sort_values("datetime", kind="stable")
    started = time.perf_counter()
    with progress_bar() as progress, _naming(table_in):
        result = subsample_sites(
            table,
            distance=distance,
            target_population=target,
            min_population=minimum,
            pseudo_site_gap=pseudo_site_gap,
            subsite_gap=subsite_gap,
            factors=_parse_factors(factors),
            allow_nonspatial=not spatial_only,
            subsite_target_bonus=subsite_target_bonus,
            subsite_min_bonus=subsite_min_bonus,
            group_by=("site",) if group_by is SiteGrouping.site else ("dataset", "site"),
            progress=progress,
        )
    seconds = time.perf_counter() - started
    write_table(result.kept, table_out)
    written = [table_out]
    if report is not None:
        written += write_subsample_report(
            table, result.kept, result.sites, report, label_column=label_column
        )
    _print_subsample_summary(result.sites, len(table), len(result.kept), seconds)
    for path in written:
        console.print(f"wrote {escape(str(path))}", highlight=False)


def _print_subsample_summary(sites: pd.DataFrame, before: int, after: int, seconds: float) -> None:
    summary = Table(title=f"kept {after:,} of {before:,} rows in {seconds:.2f} s")
    for column in ("method", "sites", "rows", "kept"):
        summary.add_column(column, justify="left" if column == "method" else "right")
    grouped = sites.groupby("method").agg(
        sites=("rows", "size"), rows=("rows", "sum"), kept=("kept", "sum")
    )
    for method, row in grouped.iterrows():
        summary.add_row(str(method), f"{row['sites']:,}", f"{row['rows']:,}", f"{row['kept']:,}")
    console.print(summary)


@app.command()
@user_errors
def partition(
    table_in: Annotated[Path, typer.Argument(metavar="IN", help="Labelled metadata table.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Same rows plus a 'partition' column."),
    ] = None,
    old_out: Annotated[Path | None, typer.Argument(metavar="OUT", hidden=True)] = None,
    label_column: Annotated[
        str | None, typer.Option(help="Column of labels to balance (spatial needs one).")
    ] = None,
    method: Annotated[PartitionMethod, typer.Option(help="spatial, or whole sites.")] = (
        PartitionMethod.spatial
    ),
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same split).")] = 0,
    test_fraction: Annotated[float, typer.Option(help="Site split: share of sites.")] = 0.2,
    exclusion: Annotated[float, typer.Option(help="Metres around test images.")] = 50.0,
    min_gap: Annotated[
        float, typer.Option("--min-gap", help="Minimum metres between train and test.")
    ] = 10.0,
    label_depth: Annotated[
        int | None, typer.Option("--depth", help="Cut 'A > B > C' labels to this many levels.")
    ] = None,
    balance: Annotated[
        Path | None, typer.Option(help="Class balance CSV (default: OUT's name + _balance.csv).")
    ] = None,
) -> None:
    """Split labelled images into train / test / excluded, far apart in space, seeded."""
    table_out: Path = pick_option(
        out, old_out, new_flag="--out/-o", old_spelling="the OUT argument", required=True
    )
    if method is PartitionMethod.spatial and label_column is None:
        raise InputError("--method spatial needs --label-column")
    from quadrat.datasets.partition import (
        site_grouped_split,
        spatial_partition,
        truncate_lineage,
    )
    from quadrat.datasets.schema import read_metadata_table
    from quadrat.datasets.subsample import REQUIRED_COLUMNS
    from quadrat.io.tables import write_table

    table = read_metadata_table(table_in, required=REQUIRED_COLUMNS)
    if label_column is not None and label_column not in table.columns:
        raise InputError(
            f"no label column {label_column!r}", path=table_in, value=list(table.columns)
        )
    labels_table = table
    if label_column is not None and label_depth is not None:
        labels_table = table.assign(
            **{label_column: truncate_lineage(table[label_column], label_depth)}
        )
    result: PartitionResult
    with console.status("partitioning"), _naming(table_in):
        if method is PartitionMethod.spatial and label_column is not None:  # checked above
            result = spatial_partition(
                labels_table,
                label_column,
                seed=seed,
                exclusion_distance=exclusion,
                strict_distance=min_gap,
            )
        else:
            result = site_grouped_split(
                labels_table, label_column, test_fraction=test_fraction, seed=seed
            )
    write_table(table.assign(partition=result.assignment), table_out)
    balance_path = balance or table_out.with_name(f"{table_out.stem}_balance.csv")
    write_table(result.balance.reset_index(), balance_path)
    _print_balance(result.balance, method)
    console.print(f"wrote {escape(str(table_out))}, {escape(str(balance_path))}", highlight=False)


def _print_balance(balance: pd.DataFrame, method: PartitionMethod) -> None:
    from quadrat.datasets.partition import SPLITS

    shown = Table(title=f"{method.value} partition: images per label and split")
    shown.add_column("label")
    shown.add_column("images", justify="right")
    for split in SPLITS:
        shown.add_column(split, justify="right")
    for label, row in balance.iterrows():
        cells = [f"{int(row[s]):,} ({row[f'{s}_fraction']:.0%})" for s in SPLITS]
        shown.add_row(escape(str(label)), f"{int(row['images']):,}", *cells)
    console.print(shown)
