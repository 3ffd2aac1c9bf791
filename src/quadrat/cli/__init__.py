"""The ``quadrat`` command line (Typer + rich); one module per command group."""

from __future__ import annotations

import typer

from quadrat.cli import demo, pretrain, results, workflow
from quadrat.cli.dataset import app as dataset_app

app = typer.Typer(
    name="quadrat",
    help="Seafloor photographs to ecological data: CoralNet-style point annotation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
for group in (workflow.app, results.app, demo.app, pretrain.app):
    app.registered_commands.extend(group.registered_commands)
app.add_typer(dataset_app, name="dataset")


def main() -> None:
    app()
