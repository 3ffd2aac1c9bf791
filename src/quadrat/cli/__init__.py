"""The ``quadrat`` command line (Typer + rich): a Typer app per module, merged here.

As typer's one-file-per-command layout: each command module defines its own ``app`` and
``app.add_typer(module.app)`` without a name merges its commands at the top level
(``dataset`` keeps its name and stays a group). Command modules import only typer, rich,
the standard library and light quadrat modules at their top, and the library inside
command bodies, so that ``quadrat --help`` starts in a fraction of a second
(``benchmarks/cli_startup.py``; ``tests/cli/test_cli_conventions.py`` checks the imports).
Conventions and exit statuses: docs/cli.md.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from quadrat.cli import (
    classifiers,
    demo,
    formats,
    machine,
    pretrain,
    probe,
    results,
    serve,
    suggest,
    users,
    workflow,
)
from quadrat.cli._common import DEPRECATED_OPTIONS, deprecated_alias, tidy_help
from quadrat.cli.dataset import app as dataset_app

tidy_help()


class QuadratGroup(TyperGroup):
    """The top-level group; it also accepts the old spellings in ``DEPRECATED_OPTIONS``."""

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name is None or command is None:
            return name, command, rest
        if isinstance(command, TyperGroup) and rest and rest[0] in command.commands:
            path, leaf = f"{name} {rest[0]}", command.commands[rest[0]]
            return name, command, rest[:1] + _accept_deprecated(path, leaf, rest[1:])
        return name, command, _accept_deprecated(name, command, rest)


def _accept_deprecated(path: str, command: Any, args: list[str]) -> list[str]:
    """``args`` with each deprecated option spelling of ``path`` replaced by today's.

    An old spelling is replaced only when the command no longer has it, so the table may
    name a rename before the command makes it.
    """
    aliases = DEPRECATED_OPTIONS.get(path)
    if not aliases:
        return args
    known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    rewritten: list[str] = []
    for index, token in enumerate(args):
        if token == "--":
            rewritten.extend(args[index:])
            break
        flag, equals, value = token.partition("=")
        if flag not in aliases or flag in known:
            rewritten.append(token)
            continue
        new = aliases[flag]
        if new == "":  # restated the default
            deprecated_alias(flag, "leave it out (it is the default)")
        elif new is None:  # the option became a positional argument; keep its value
            deprecated_alias(flag, "give its value alone, as an argument")
            if equals:
                rewritten.append(value)
        else:
            deprecated_alias(flag, new)
            rewritten.append(new + equals + value)
    return rewritten


def _print_version(value: bool) -> None:
    if value:
        from quadrat import __version__

        typer.echo(f"quadrat {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="quadrat",
    cls=QuadratGroup,
    help="Seafloor photographs to ecological data: CoralNet-style point annotation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Seafloor photographs to ecological data: CoralNet-style point annotation."""


for _module in (workflow, machine, results, formats, suggest, demo, pretrain, probe, serve):
    app.add_typer(_module.app)
app.add_typer(dataset_app, name="dataset")
app.add_typer(classifiers.app, name="classifier")
app.add_typer(users.app, name="user")


def main() -> None:
    """The ``quadrat`` script."""
    app(prog_name="quadrat")
