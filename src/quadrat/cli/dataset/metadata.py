"""``quadrat dataset validate``: read survey metadata into the BenthicNet table and check it.

Reads one input (CoralNet export, Squidle+ export, folder of photos, or any CSV),
optionally sets depth from depth logs and positions photos on GPX tracks, validates
every row, prints a summary and every bad row, and writes the table (Parquet or CSV)
atomically.
"""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from quadrat.cli._common import console, progress_bar, user_errors
from quadrat.cli.dataset._columns import parse_column_map
from quadrat.errors import InputError, QuadratError

if TYPE_CHECKING:  # pandas and the readers are imported when the command runs
    import pandas as pd

    from quadrat.datasets.schema import ValidationReport

app = typer.Typer()


class InputFormat(StrEnum):
    """The formats ``validate`` reads (``quadrat.datasets.readers.METADATA_READERS``)."""

    coralnet = "coralnet"
    squidle = "squidle"
    images = "images"
    csv = "csv"


def _print_summary(
    report: ValidationReport, seconds: float, matched: int | None, depth_matched: int | None
) -> None:
    table = report.table
    summary = Table(title="metadata", show_header=False)
    summary.add_row("rows read", f"{report.n_rows:,}")
    summary.add_row("bad rows", f"{report.n_bad:,}" + (" (dropped)" if report.dropped else ""))
    summary.add_row("rows written", f"{len(table):,}")
    summary.add_row("datasets / sites", f"{table['dataset'].nunique()} / {table['site'].nunique()}")
    summary.add_row("with position", f"{int(table['latitude'].notna().sum()):,}")
    summary.add_row("with datetime", f"{int(table['datetime'].notna().sum()):,}")
    if table["datetime"].notna().any():
        summary.add_row(
            "time span (UTC)", f"{table['datetime'].min()} to {table['datetime'].max()}"
        )
    if matched is not None:
        summary.add_row("positioned from GPX", f"{matched:,}")
    if depth_matched is not None:
        summary.add_row("depth from log", f"{depth_matched:,}")
    summary.add_row("seconds", f"{seconds:.2f}")
    console.print(summary)
    counts = report.reason_counts()
    if len(counts):
        reasons = Table(title="bad rows by reason")
        reasons.add_column("reason")
        reasons.add_column("rows", justify="right")
        for reason, rows in counts.items():
            reasons.add_row(str(reason), str(rows))
        console.print(reasons)


def _print_issues(issues: pd.DataFrame) -> None:
    """Every issue on its own line: where (line, file or row), image, reason, value."""
    import pandas as pd

    from quadrat.datasets.schema import SOURCE_FILE, SOURCE_LINE

    console.print(f"[bold]bad rows ({issues['row'].nunique():,}):[/]")
    for issue in issues.itertuples(index=False):
        line = getattr(issue, SOURCE_LINE)
        source = getattr(issue, SOURCE_FILE)
        if pd.notna(line):
            where = f"line {int(line)}"
        elif isinstance(source, str):
            where = Path(source).name
        else:
            where = f"row {issue.row}"
        value = "" if issue.value is None else escape(f" ({issue.column}: {issue.value})")
        console.print(
            f"  {escape(where)}: {escape(str(issue.image))}: [red]{escape(str(issue.reason))}[/]"
            + value,
            highlight=False,
            soft_wrap=True,
        )


@app.command()
@user_errors
def validate(
    input_path: Annotated[
        Path, typer.Argument(metavar="INPUT", help="Metadata file, or a folder of images.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Table to write: .parquet or .csv.")],
    input_format: Annotated[
        InputFormat | None,
        typer.Option(
            "--format", "-f", help="What INPUT is (default: images for a folder, else csv)."
        ),
    ] = None,
    gpx: Annotated[
        list[Path] | None,
        typer.Option(help="GPX track(s) to position photos by time (repeatable)."),
    ] = None,
    clock_offset: Annotated[
        str,
        typer.Option(
            help="Add to photo times to get GPS (UTC) time: seconds (-10800) or -3h.",
        ),
    ] = "0",
    max_gap: Annotated[
        float, typer.Option(help="Seconds from the nearest GPX fix beyond which no match.")
    ] = 30.0,
    depth_log: Annotated[
        list[Path] | None,
        typer.Option(help="Time-stamped depth log CSV(s) (Time, Depth) to set depth (repeatable)."),
    ] = None,
    depth_log_columns: Annotated[
        str | None,
        typer.Option(
            metavar="TIME,DEPTH",
            help="Names of the depth log's columns when it has no header row, "
            "in file order (e.g. time,depth).",
        ),
    ] = None,
    depth_log_offset: Annotated[
        str,
        typer.Option(help="Add to photo times to get the depth log's time (as --clock-offset)."),
    ] = "0",
    drop_bad: Annotated[bool, typer.Option("--drop-bad", help="Leave bad rows out.")] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail (exit 1) on the first bad row.")
    ] = False,
    issues_out: Annotated[
        Path | None, typer.Option("--issues", help="Also write every issue to this CSV.")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option(help="Dataset name (default: from the file, else its folder).")
    ] = None,
    site: Annotated[str | None, typer.Option(help="Site for rows whose input has none.")] = None,
    platform: Annotated[str | None, typer.Option(help="Platform (AUV, ROV, diver...).")] = None,
    column: Annotated[
        list[str] | None,
        typer.Option(
            "--column",
            "-c",
            help="CSV only: use the file's COLUMN as NAME (repeatable), "
            "e.g. -c datetime=date+time.",
        ),
    ] = None,
    timezone: Annotated[
        str, typer.Option(help="Timezone of date-times without an offset (e.g. Etc/GMT+3).")
    ] = "UTC",
    dayfirst: Annotated[
        bool, typer.Option("--dayfirst", help="Read 11/03/2019 as 11 March.")
    ] = False,
    depth_positive_up: Annotated[
        bool,
        typer.Option("--depth-positive-up", help="CSV only: depth is recorded negative down."),
    ] = False,
) -> None:
    """Read survey metadata into the BenthicNet table, name every bad row, write the table."""
    if drop_bad and strict:
        raise InputError("--drop-bad and --strict contradict each other; pick one")
    from quadrat.datasets import readers
    from quadrat.datasets.schema import OnError, validate_metadata, write_metadata

    started = time.perf_counter()
    with progress_bar() as progress:
        table = readers.read_metadata(
            input_path,
            None if input_format is None else input_format.value,
            dataset=dataset,
            site=site,
            platform=platform,
            columns=parse_column_map(column),
            depth_positive_up=depth_positive_up,
            progress=progress,
        )
    depth_matched: int | None = None
    if depth_log:  # before GPX: both offsets are against the camera's own clock
        names = None if depth_log_columns is None else tuple(depth_log_columns.split(","))
        try:
            log = readers.read_depth_logs(depth_log, timezone=timezone, columns=names)
        except QuadratError as exc:
            if exc.param == "columns":  # not -c/--column, which names the INPUT's columns
                exc.param = "depth_log_columns"
            raise
        table = readers.match_depth(table, log, clock_offset=depth_log_offset, timezone=timezone)
        depth_matched = int(table["depth_matched"].sum())
    matched: int | None = None
    if gpx:
        track = readers.read_gpx_tracks(gpx)
        table = readers.match_gpx(
            table, track, clock_offset=clock_offset, max_gap=max_gap, timezone=timezone
        )
        matched = int(table["gpx_matched"].sum())
    on_error: OnError = "raise" if strict else "drop" if drop_bad else "keep"
    report = validate_metadata(table, on_error=on_error, timezone=timezone, dayfirst=dayfirst)
    write_metadata(report.table, out)
    if issues_out is not None:
        write_metadata(report.issues.astype({"value": "string"}), issues_out)
    seconds = time.perf_counter() - started
    _print_summary(report, seconds, matched, depth_matched)
    if len(report.issues):
        _print_issues(report.issues)
    console.print(f"wrote {len(report.table):,} rows to [bold]{out}[/]")
