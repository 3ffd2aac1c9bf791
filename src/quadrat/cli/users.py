"""``quadrat user ...``: the people and scripts that may sign in to ``quadrat serve``.

Passwords are asked at a hidden prompt (twice) or read as one line from standard input
(``--password-stdin``, for scripts); never as an option, which would land in the shell's
history and the process list. They are stored as argon2id hashes
(:mod:`quadrat.service.accounts`). Roles are per source (or on every source): viewer
(sees and deploys), annotator (also labels), admin (also manages the source).
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from quadrat.cli._common import (
    DEFAULT_PROJECT,
    ProjectOption,
    console,
    open_project,
    user_errors,
)
from quadrat.errors import InputError

if TYPE_CHECKING:
    from quadrat import Project

app = typer.Typer(
    name="user",
    help="Add, list and remove users of quadrat serve, and set their roles.",
    no_args_is_help=True,
)


class RoleChoice(StrEnum):
    """A role on a source, weakest first (the store's ``Role``; kept here for a light CLI)."""

    viewer = "viewer"
    annotator = "annotator"
    admin = "admin"


SourcesOption = Annotated[
    list[str] | None,
    typer.Option(
        "--source",
        "-s",
        help="Source the role applies to (repeatable; default: every source).",
    ),
]
NameArgument = Annotated[str, typer.Argument(metavar="NAME", help="Username.")]


@app.command("add")
@user_errors(flags={"username": "NAME"})
def add(
    name: NameArgument,
    role: Annotated[
        RoleChoice, typer.Option("--role", help="Role on the sources: viewer, annotator or admin.")
    ],
    source: SourcesOption = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password as one line from standard input."),
    ] = False,
    project: ProjectOption = DEFAULT_PROJECT,
) -> None:
    """Add a user with a role; the password is asked at a prompt (or read from stdin)."""
    from quadrat.service import accounts

    with open_project(project) as handle:
        accounts.check_username(name)
        _check_free(handle, name)
        password = _read_password(password_stdin)
        accounts.add_user(handle.store, name, password, role=role.value, sources=source or None)
    console.print(f"added user {name} ({_where(role.value, source)})")


@app.command("list")
@user_errors
def list_users(project: ProjectOption = DEFAULT_PROJECT) -> None:
    """Every user with their roles, and whether they may sign in."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from quadrat.store import accounts

    with open_project(project) as handle, handle.store.session() as session:
        users = accounts.list_users(session)
    if not users:
        console.print("no users yet: quadrat user add NAME --role viewer")
        return
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("user", "role", "on", "active", "limits", "created"):
        table.add_column(column, no_wrap=column != "limits", overflow="fold")
    for user in users:
        limits = ", ".join(f"{k}={v}" for k, v in sorted(user.limits.items())) or "-"
        created = user.created_at.strftime("%Y-%m-%d") if user.created_at else "-"
        active = "yes" if user.active else "no"
        granted = sorted(user.roles.items(), key=lambda kv: kv[0] or "")
        rows = [(str(role), source or "every source") for source, role in granted]
        for role, on in rows or [("-", "-")]:  # one row per role, so a script can grep it
            table.add_row(user.username, role, on, active, limits, created)
    # Piped into a file or another program: whole rows, not squeezed to 80 columns.
    (console if console.is_terminal else Console(width=200)).print(table)


@app.command("role")
@user_errors(flags={"username": "NAME"})
def role(
    name: NameArgument,
    new_role: Annotated[
        RoleChoice, typer.Argument(metavar="ROLE", help="viewer, annotator or admin.")
    ],
    source: SourcesOption = None,
    project: ProjectOption = DEFAULT_PROJECT,
) -> None:
    """Give a user a role on sources (default: every source); replaces their role there."""
    from quadrat.service import accounts

    with open_project(project) as handle:
        accounts.set_role(handle.store, name, new_role.value, source or None)
    console.print(f"{name} is now {_where(new_role.value, source)}")


@app.command("remove")
@user_errors(flags={"username": "NAME"})
def remove(name: NameArgument, project: ProjectOption = DEFAULT_PROJECT) -> None:
    """Delete a user, with their roles, tokens and deploy jobs."""
    from quadrat.store import accounts

    with open_project(project) as handle, handle.store.session() as session:
        accounts.remove_user(session, name)
    console.print(f"removed user {name}")


@app.command("revoke-tokens")
@user_errors(flags={"username": "NAME"})
def revoke_tokens(name: NameArgument, project: ProjectOption = DEFAULT_PROJECT) -> None:
    """End every API token of a user (their scripts must sign in again)."""
    from quadrat.service import accounts

    with open_project(project) as handle:
        count = accounts.revoke_tokens(handle.store, name)
    console.print(f"revoked {count} token{'s' if count != 1 else ''} of {name}")


@app.command("limits")
@user_errors(flags={"username": "NAME"})
def limits(
    name: NameArgument,
    images_per_job: Annotated[
        int | None, typer.Option(min=1, help="Images in one deploy request (server default 100).")
    ] = None,
    points_per_image: Annotated[
        int | None, typer.Option(min=1, help="Points on one image of a request (default 200).")
    ] = None,
    max_active_jobs: Annotated[
        int | None, typer.Option(min=1, help="Unfinished jobs at once (default 5).")
    ] = None,
    requests_per_minute: Annotated[
        int | None, typer.Option(min=1, help="Requests a minute (default 60).")
    ] = None,
    requests_per_hour: Annotated[
        int | None, typer.Option(min=1, help="Requests an hour (default 1000).")
    ] = None,
    max_suggest: Annotated[
        int | None, typer.Option(min=1, help="Points or images one suggest call ranks (100).")
    ] = None,
    max_replicates: Annotated[
        int | None, typer.Option(min=1, help="Bootstrap replicates of one cover call (5000).")
    ] = None,
    max_similar: Annotated[
        int | None, typer.Option(min=1, help="Neighbours one similar-points call returns (100).")
    ] = None,
    max_upload_bytes: Annotated[
        int | None, typer.Option(min=1, help="Uploaded bytes this user's jobs may hold (1 GiB).")
    ] = None,
    reset: Annotated[
        bool, typer.Option("--reset", help="Drop this user's own limits first.")
    ] = False,
    project: ProjectOption = DEFAULT_PROJECT,
) -> None:
    """Set a user's own service limits (over the server's); with no option, show them."""
    from quadrat.store import accounts

    given = {
        "images_per_job": images_per_job,
        "points_per_image": points_per_image,
        "max_active_jobs": max_active_jobs,
        "requests_per_minute": requests_per_minute,
        "requests_per_hour": requests_per_hour,
        "max_suggest": max_suggest,
        "max_bootstrap_replicates": max_replicates,
        "max_similar": max_similar,
        "upload_bytes_per_user": max_upload_bytes,
    }
    changes = {k: v for k, v in given.items() if v is not None}
    with open_project(project) as handle, handle.store.session() as session:
        current = {} if reset else dict(accounts.get_user(session, name).limits)
        if changes or reset:
            current.update(changes)
            accounts.set_user_limits(session, name, current)
    shown = ", ".join(f"{k}={v}" for k, v in sorted(current.items()))
    console.print(f"{name}: {shown or 'the server limits'}")


def _check_free(handle: Project, name: str) -> None:
    """Refuse a taken name before asking for a password (ConflictError, exit 5)."""
    from quadrat.errors import ConflictError
    from quadrat.store import accounts

    with handle.store.session() as session:
        if accounts.find_user(session, name) is not None:
            raise ConflictError(f"a user named {name!r} exists already", value=name)


def _read_password(from_stdin: bool) -> str:
    """One line of standard input, or a hidden prompt asked twice."""
    if from_stdin:
        line = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
        if not line:
            raise InputError("no password on standard input (one line is read)")
        return line
    answer: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return answer


def _where(role: str, sources: list[str] | None) -> str:
    if not sources:
        return f"{role} on every source"
    return f"{role} on {', '.join(sources)}"
