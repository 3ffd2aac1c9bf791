"""What every command shares: the console, one-line errors, progress bars, options."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

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


#: Exit statuses (docs/cli.md). Error families carry theirs (``QuadratError.exit_code``).
EXIT_OK = 0
EXIT_ERROR = 1  # bad input or wrong state (InputError, StateError, ...)
EXIT_USAGE = 2  # Typer/click: unknown option, missing argument
EXIT_NOTHING_TO_DO = 3  # the command had nothing to do (says why); see --allow-nothing
EXIT_NOT_FOUND = 4  # NotFoundError: a file, source, classifier that does not exist
EXIT_CONFLICT = 5  # ConflictError: already imported, already exists, project locked
EXIT_LIMIT = 6  # LimitError: an input over a configurable limit
EXIT_MISSING_DEPENDENCY = 7  # MissingDependencyError: pip install 'quadrat[extra]'

#: Python parameter names (``QuadratError.param``) whose CLI flag is not ``--name``.
PARAM_FLAGS: dict[str, str] = {
    "random_weights": "--random-weights",
    "weights": "--weights FILE",
    "threshold": "--threshold",
    "force": "--force",
    "source": "--source/-s",
    "project": "--project/-p",
}


def flag_for(param: str) -> str:
    """The CLI flag of a library parameter (``min_score`` -> ``--min-score``)."""
    return PARAM_FLAGS.get(param, "--" + param.replace("_", "-"))


def user_errors(func: F) -> F:
    """Turn a user-facing error into one red line and its family's exit status, no traceback.

    The library names parameters (``error.param``); here they become the flag to change.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            try:
                return func(*args, **kwargs)
            except QuadratError as exc:
                hint = f" (see {flag_for(exc.param)})" if exc.param else ""
                err_console.print(
                    f"[bold red]error:[/] {exc}{hint}", highlight=False, soft_wrap=True
                )
                raise typer.Exit(exc.exit_code) from None
            except FileNotFoundError as exc:
                err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
                raise typer.Exit(EXIT_NOT_FOUND) from None
            except (PermissionError, IsADirectoryError) as exc:
                err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
                raise typer.Exit(EXIT_ERROR) from None

    return wrapper  # type: ignore[return-value]


def nothing_to_do(message: str, *, allow: bool = False) -> NoReturn:
    """Say why a command did nothing and exit with EXIT_NOTHING_TO_DO (0 when ``allow``)."""
    err_console.print(f"[yellow]nothing to do:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_OK if allow else EXIT_NOTHING_TO_DO)


def fmt(value: float | int | None, digits: int = 3) -> str:
    """A figure for people: ints as ints, floats to ``digits`` significant places, None as '-'.

    >>> fmt(0.8200000000000001), fmt(1234.5678), fmt(3), fmt(None), fmt(float("nan"))
    ('0.82', '1235', '3', '-', '-')
    """
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        return "-"
    if abs(number) >= 10**digits:
        return f"{number:.0f}"
    return f"{number:.{digits}g}"


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
