"""What every command shares: the console, one-line errors, progress bars, options.

Only typer, rich, the standard library and :mod:`quadrat.errors` load here: every command
module imports this one, and ``quadrat --help`` must start in well under a second. The
project (SQLAlchemy, pandas) loads inside :func:`open_project`, when a command runs.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar, overload

import typer
from rich.console import Console
from rich.markup import escape

from quadrat.errors import QuadratError

if TYPE_CHECKING:
    from quadrat import Project

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

#: The project every command opens unless ``-p`` or ``QUADRAT_PROJECT`` says otherwise.
DEFAULT_PROJECT = "quadrat.db"

# Shared options (docs/cli.md lists the conventions). A str, not a Path: a Path would
# fold the "//" of a SQLAlchemy URL ("postgresql://host/db").
ProjectOption = Annotated[
    str,
    typer.Option(
        "--project",
        "-p",
        envvar="QUADRAT_PROJECT",
        metavar="FILE|URL",
        help="Project file (SQLite) or SQLAlchemy URL.",
        show_default=True,
    ),
]
SourceOption = Annotated[
    str | None,
    typer.Option("--source", "-s", help="Source name (default: the project's only source)."),
]
OutOption = Annotated[Path, typer.Option("--out", "-o", help="Where to write the output.")]
AllowNothingOption = Annotated[
    bool,
    typer.Option(
        "--allow-nothing",
        help="Exit 0, not 3, when there is nothing to do.",
    ),
]


#: Exit statuses (docs/cli.md). Error families carry theirs (``QuadratError.exit_code``).
EXIT_OK = 0
EXIT_ERROR = 1  # bad input or wrong state (InputError, StateError, ...)
EXIT_USAGE = 2  # Typer/click: unknown option, missing argument
EXIT_NOTHING_TO_DO = 3  # the command had nothing to do (says why); see --allow-nothing
EXIT_NOT_FOUND = 4  # NotFoundError: a file, source, classifier that does not exist
EXIT_CONFLICT = 5  # ConflictError: already imported, already exists, project locked
EXIT_LIMIT = 6  # LimitError: an input over a configurable limit
EXIT_MISSING_DEPENDENCY = 7  # MissingDependencyError: pip install 'quadrat[extra]'
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT

#: Python parameter names (``QuadratError.param``) whose CLI flag is not ``--name``.
PARAM_FLAGS: dict[str, str] = {
    "random_weights": "--random-weights",
    "weights": "--weights FILE",
    "threshold": "--threshold",
    "confidence_threshold": "--threshold",
    "point_spec": "--points",
    "annotation_area": "--annotation-area",
    "image_dir": "--images/-i",
    "paths": "--images/-i",
    "name": "--source/-s",
    "force": "--force",
    "source": "--source/-s",
    "project": "--project/-p",
    "location": "--project/-p",
    "out": "--out/-o",
    "out_dir": "--out/-o",
    "extractor": "--extractor/-e",
    "extractor_key": "--extractor/-e",
    "classifier_id": "--classifier",
    "format": "--format/-f",
    "columns": "--column/-c",
    "workers": "--workers",
}

#: Old option spellings still accepted (hidden from help, with a warning), per command path.
#: ``None`` as the new spelling drops the flag and keeps its value as a positional argument;
#: ``""`` drops a flag that only restated the default (``--no-force``).
DEPRECATED_OPTIONS: dict[str, dict[str, str | None]] = {
    "train": {"--no-force": ""},
    "dataset translate": {"--from": "--format"},
    "dataset rollup": {"--from": "--format", "--level": "--depth"},
    "dataset validate": {"--map": "--column"},
    "dataset partition": {"--strict": "--min-gap", "--label-depth": "--depth"},
    "dataset subsample": {"--no-sort-by-time": ""},
    "demo": {"--images": "--annotated-images"},
    "pretrain": {
        "--data": None,
        "--kind": "--format",
        "--accelerator": "--device",
        "--devices": "--num-devices",
        "--no-resume": "",
    },
}


def flag_for(param: str) -> str:
    """The CLI flag of a library parameter (``min_score`` -> ``--min-score``)."""
    return PARAM_FLAGS.get(param, "--" + param.replace("_", "-"))


@overload
def user_errors(func: F) -> F: ...


@overload
def user_errors(*, flags: Mapping[str, str]) -> Callable[[F], F]: ...


def user_errors(
    func: F | None = None, *, flags: Mapping[str, str] | None = None
) -> F | Callable[[F], F]:
    """Turn a user-facing error into one red line and its family's exit status, no traceback.

    The library names parameters (``error.param``); here they become the flag to change
    (:data:`PARAM_FLAGS`). ``@user_errors(flags={"value": "--threshold"})`` names the flag
    of a parameter whose name says little outside the function the command called.
    """
    if func is None:
        return functools.partial(user_errors, flags=flags)
    own_flags = dict(flags or {})

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            try:
                return func(*args, **kwargs)
            except QuadratError as exc:
                flag = _hint(exc.param, own_flags) if exc.param else None
                hint = f" (see {flag})" if flag else ""
                _error(f"{exc}{hint}")
                raise typer.Exit(exc.exit_code) from None
            except FileNotFoundError as exc:
                _error(str(exc))
                raise typer.Exit(EXIT_NOT_FOUND) from None
            except (PermissionError, IsADirectoryError) as exc:
                _error(str(exc))
                raise typer.Exit(EXIT_ERROR) from None
            except OSError as exc:  # a folder where a file goes, a full disk: no traceback
                where = f"{exc.filename}: " if exc.filename else ""
                _error(f"{where}{exc.strerror or exc}")
                raise typer.Exit(EXIT_ERROR) from None
            except KeyboardInterrupt:
                _error("interrupted")
                raise typer.Exit(EXIT_INTERRUPTED) from None

    wrapper.__quadrat_user_errors__ = True  # type: ignore[attr-defined]
    return wrapper


def _hint(param: str, own_flags: Mapping[str, str]) -> str | None:
    """The flag (or argument) of ``param`` on the running command; None if it has none.

    A library function names its own parameter; the command that called it may not offer
    it (``folder`` of an image lister), and a wrong hint is worse than none.
    """
    flag = own_flags.get(param) or flag_for(param)
    try:
        from typer._click.globals import get_current_context  # no public accessor

        ctx = get_current_context(silent=True)
    except ImportError:  # another Typer: keep the mapped flag
        return flag
    if ctx is None:  # called outside a command (tests of the decorator alone)
        return flag
    spellings = {opt for p in ctx.command.params for opt in (*p.opts, *p.secondary_opts)}
    if any(word in spellings for word in flag.replace("/", " ").split()):
        return flag
    for p in ctx.command.params:
        if p.name == param and not p.opts[0].startswith("-"):  # an argument
            return (p.metavar or p.name.upper()).strip("[]")
    return None


def _error(message: str) -> None:
    err_console.print(
        f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True, markup=True
    )


def nothing_to_do(message: str, *, allow: bool = False) -> NoReturn:
    """Say why a command did nothing and exit with EXIT_NOTHING_TO_DO (0 when ``allow``)."""
    err_console.print(
        f"[yellow]nothing to do:[/] {escape(message)}", highlight=False, soft_wrap=True
    )
    raise typer.Exit(EXIT_OK if allow else EXIT_NOTHING_TO_DO)


def deprecated_alias(old: str, new: str) -> None:
    """Warn that ``old`` is an old spelling of ``new`` (the command still runs).

    ``new`` may be a whole instruction ("leave it out: it is the default").
    """
    advice = new if " " in new else f"use {new}"
    err_console.print(
        f"[yellow]warning:[/] {old} is deprecated; {advice}", highlight=False, soft_wrap=True
    )


def pick_option(
    new: Any, old: Any, *, new_flag: str, old_spelling: str, required: bool = False
) -> Any:
    """The value of a renamed option or argument: ``new`` if given, else the deprecated ``old``.

    For a positional argument that became an option (``export KIND PATH`` ->
    ``export KIND -o PATH``): keep the old one as a hidden optional argument
    (``typer.Argument(hidden=True)``) and merge the two here. ``required``: a usage error
    (exit 2) when neither is given.
    """
    if old is None:
        if new is None and required:
            raise typer.BadParameter("missing", param_hint=f"'{new_flag}'")
        return new
    if new is not None and new != old:
        raise typer.BadParameter(f"given twice, also as {old_spelling}", param_hint=f"'{new_flag}'")
    deprecated_alias(old_spelling, new_flag)
    return old


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


def open_project(location: str | Path) -> Project:
    """The project at ``location`` (NotFoundError, exit 4, when there is none)."""
    from quadrat import Project

    return Project.open(location)


def resolve_source(project: Any, name: str | None) -> str:
    """The named source, or the project's only one (the library says which when ambiguous)."""
    return str(project.source(name).name)


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar driven by the library's ``progress(description, done, total)``."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
        disable=os.environ.get("QUADRAT_NO_PROGRESS") == "1",
    )
    tasks: dict[str, TaskID] = {}

    def update(description: str, done: int, total: int) -> None:
        if not tasks:  # started on the first report: a command that fails first prints none
            bar.start()
        if description not in tasks:
            tasks[description] = bar.add_task(description, total=total)
        bar.update(tasks[description], completed=done, total=total)

    try:
        yield update
    finally:
        if tasks:
            bar.stop()


def tidy_help() -> None:
    """Print ``--force``, not ``--force <bool>``, and ``--gpx <path>...``, not ``<list[Path]>``.

    Typer's rich help writes a type after every option, flags included (click's plain help
    never did: a flag takes no value), and a repeatable option's type as a Python
    annotation. Idempotent; called once by :mod:`quadrat.cli`.
    """
    from typer.core import TyperOption

    original = TyperOption.display_type_rich
    if getattr(original, "__quadrat_tidy__", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        text = original(self, ctx)
        if self.multiple and text and text.startswith("<list[") and text.endswith("]>"):
            return f"<{text[6:-2].lower()}>..."
        return text

    display_type_rich.__quadrat_tidy__ = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
