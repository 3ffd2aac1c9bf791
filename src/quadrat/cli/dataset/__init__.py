"""``quadrat dataset ...``: the benthic dataset toolkit (metadata, subsampling, CATAMI).

One module per command (or small group); each defines its commands on :data:`app`.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="dataset",
    help="Benthic dataset toolkit: validate metadata, subsample, partition, CATAMI, download.",
    no_args_is_help=True,
)

for _module in ("metadata", "spatial", "labels", "download"):
    importlib.import_module(f"quadrat.cli.dataset.{_module}")
