"""``quadrat dataset ...``: the benthic dataset toolkit (metadata, subsampling, CATAMI).

One module per command (or small group), each with its own Typer app; they are merged
here with ``add_typer`` (no name: their commands join this group), as typer's
one-file-per-command layout does. Command modules import pandas and the library inside
their command bodies, so ``quadrat dataset --help`` stays fast.
"""

from __future__ import annotations

import typer

from quadrat.cli.dataset import download, labels, metadata, spatial

app = typer.Typer(
    name="dataset",
    help="Benthic dataset toolkit: validate metadata, subsample, partition, CATAMI, download.",
    no_args_is_help=True,
)

for _module in (metadata, spatial, labels, download):
    app.add_typer(_module.app)
