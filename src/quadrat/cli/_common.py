"""What every command shares: the console, one-line errors, progress bars, options."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import select

from quadrat.errors import QuadratError
from quadrat.store.project import Project
from quadrat.store.schema import Source

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

ProjectOption = Annotated[
    Path,
    typer.Option(
        "--project",
        "-p",
        envvar="QUADRAT_PROJECT",
        help="Project file (SQLite) or SQLAlchemy URL.",
        show_default=True,
    ),
]
SourceOption = Annotated[
    str | None,
    typer.Option("--source", "-s", help="Source name (default: the project's only source)."),
]
DEFAULT_PROJECT = Path("quadrat.db")


def user_errors(func: F) -> F:
    """Turn a user-facing error into one red line and exit status 1, no traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            try:
                return func(*args, **kwargs)
            except QuadratError as exc:
                err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
                raise typer.Exit(1) from None
            except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
                err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
                raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _show_warning(message: Any, category: Any, *_args: Any, **_kwargs: Any) -> None:
    err_console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


def open_project(location: Path) -> Project:
    return Project.open(location)


def resolve_source(project: Project, name: str | None) -> str:
    """The named source, or the project's only one."""
    if name is not None:
        return name
    with project.session() as session:
        names = session.scalars(select(Source.name).order_by(Source.name)).all()
    if len(names) == 1:
        return names[0]
    if not names:
        raise QuadratError("the project has no source yet; create one with 'quadrat init'")
    raise QuadratError(
        f"the project has several sources ({', '.join(names)}); pick one with --source"
    )


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar driven by the engine's ``progress(description, done, total)``."""
    disable = os.environ.get("QUADRAT_NO_PROGRESS") == "1"
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
        disable=disable,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def update(description: str, done: int, total: int) -> None:
            if description not in tasks:
                tasks[description] = bar.add_task(description, total=total)
            bar.update(tasks[description], completed=done, total=total)

        yield update
