"""``quadrat dataset download``: fetch a metadata table's images into shards or a tree."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from quadrat.cli._common import console, err_console, pick_option, progress_bar, user_errors
from quadrat.cli.dataset._columns import parse_column_map

app = typer.Typer()


@app.command("download")
@user_errors
def download(
    table: Annotated[
        Path, typer.Argument(help="Metadata table (CSV or parquet) with dataset, site, image, url.")
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output folder (rerun the command to resume)."),
    ] = None,
    old_out: Annotated[Path | None, typer.Argument(metavar="OUT", hidden=True)] = None,
    shards: Annotated[
        bool,
        typer.Option(
            "--shards/--tree",
            help="WebDataset tar shards, or a folder tree <out>/<dataset>/<site>/<image>.",
        ),
    ] = True,
    shard_size: Annotated[int, typer.Option(help="Images per shard.")] = 1000,
    prefix: Annotated[str, typer.Option(help="Shard name prefix: <prefix>-000000.tar.")] = "shard",
    workers: Annotated[int, typer.Option(help="Concurrent downloads.")] = 8,
    timeout: Annotated[float, typer.Option(help="Seconds before one request gives up.")] = 30.0,
    retries: Annotated[int, typer.Option(help="Retries after the first attempt.")] = 3,
    resize: Annotated[
        int | None,
        typer.Option(help="Shrink the shortest side to this many pixels (e.g. 512)."),
    ] = None,
    verify: Annotated[
        str,
        typer.Option(
            help="decode: decode every image fully; header: check header and end marker only "
            "(faster on large photos)."
        ),
    ] = "decode",
    column: Annotated[
        list[str] | None,
        typer.Option(
            "--column",
            "-c",
            help="Use the table's COLUMN as NAME (repeatable), e.g. -c url=path_best.",
        ),
    ] = None,
    dataset: Annotated[
        str | None, typer.Option(help="Dataset name when the table has no dataset column.")
    ] = None,
    site: Annotated[
        str | None, typer.Option(help="Site name when the table has no site column.")
    ] = None,
) -> None:
    """Download the images a table lists by URL: concurrent, retried, checksummed, resumable.

    Also writes OUT/manifest.parquet (a row per image) and OUT/failures.csv (URLs and why).
    """
    out = pick_option(
        out, old_out, new_flag="--out/-o", old_spelling="the OUT argument", required=True
    )
    from quadrat.datasets.download import DownloadOptions, download_images
    from quadrat.io.tables import read_table

    options = DownloadOptions(
        workers=workers,
        timeout=timeout,
        retries=retries,
        resize=resize,
        verify=verify,  # type: ignore[arg-type]  # checked by DownloadOptions
    )
    frame = read_table(table)
    with progress_bar() as progress:
        summary = download_images(
            frame,
            out,
            layout="shards" if shards else "tree",
            shard_size=shard_size,
            prefix=prefix,
            options=options,
            source=table,
            columns=parse_column_map(column),
            dataset=dataset,
            site=site,
            progress=progress,
        )
    report = Table(title=f"download into {out}", show_header=False)
    report.add_row("images in table", str(summary.total))
    report.add_row("already done", str(summary.skipped))
    report.add_row("downloaded", str(summary.downloaded))
    report.add_row("failed", str(summary.failed))
    report.add_row("stored", f"{summary.bytes / 1e6:.1f} MB")
    report.add_row("time", f"{summary.seconds:.1f} s ({summary.images_per_second:.1f} images/s)")
    if summary.written:
        report.add_row("new shards", f"{len(summary.written)} ({summary.written[-1].name} last)")
    report.add_row("manifest", str(summary.manifest))
    console.print(report)
    if summary.failed:
        err_console.print(
            f"[yellow]warning:[/] {summary.failed} image(s) failed; each URL and reason is in "
            f"{summary.failures}. Rerun the same command to retry them.",
            highlight=False,
            soft_wrap=True,
        )
