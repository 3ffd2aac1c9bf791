"""``quadrat serve`` and ``quadrat worker``: CoralNet's deploy API over a project (docs/serve.md).

``serve`` runs the HTTP server and its worker processes until Ctrl-C or SIGTERM;
``worker`` runs one more worker process, here or on another machine sharing the same
PostgreSQL database, for more classification throughput. Both build
:class:`~quadrat.service.settings.ServiceSettings` from their options and call the
service (:func:`quadrat.service.server.serve`, :meth:`JobQueue.run_worker`); the
service's dependencies (the ``serve`` extra) load only when a command runs.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from quadrat.cli._answers import HierarchicalThresholdOption, HierarchyOption
from quadrat.cli._common import DEFAULT_PROJECT, ProjectOption, console, user_errors
from quadrat.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from quadrat.service.settings import ServiceSettings

app = typer.Typer()

#: Modules of the ``serve`` extra, checked before the service is imported.
SERVE_MODULES = ("fastapi", "uvicorn", "multipart", "argon2", "huey")

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        metavar="URL",
        help="The project as a SQLAlchemy URL (postgresql+psycopg://user@host/db); the same as -p.",
        show_default=False,
    ),
]
AllowPrivateOption = Annotated[
    bool,
    typer.Option(
        "--allow-private-urls",
        help="Fetch image URLs on private, loopback and link-local addresses too "
        "(a closed lab network, tests). Off: only public addresses.",
    ),
]
ImageFolderOption = Annotated[
    Path | None,
    typer.Option(
        "--image-folder",
        metavar="DIR",
        help="Images may also be named by a path under this folder (offline labs).",
        show_default=False,
    ),
]


def _database(ctx: typer.Context, project: str, database: str | None) -> str:
    """The project to serve: ``--database`` or ``-p`` (not two different ones)."""
    source = ctx.get_parameter_source("project")  # typer's own click: compare by name
    typed = getattr(source, "name", None) == "COMMANDLINE"
    if database is not None and typed and project != database:
        raise InputError(
            f"give the project once: -p {project} or --database {database}, not both",
            value=database,
        )
    location = database if database is not None else project
    if "://" in location:
        if location.startswith("postgresql") and importlib.util.find_spec("psycopg") is None:
            from quadrat.errors import missing_dependency

            raise missing_dependency("psycopg", "postgres", purpose="a PostgreSQL project")
        return location
    path = Path(location).expanduser()
    if not path.is_file():
        raise NotFoundError(
            f"no project {location}: create one with quadrat init -p {location}, "
            "then add users with quadrat user add",
            path=path,
        )
    return str(path.resolve())  # worker processes may start elsewhere


def _require_serve_extra() -> None:
    """A MissingDependencyError (exit 7, with the pip command) when the extra is absent."""
    from quadrat.errors import missing_dependency

    for module in SERVE_MODULES:
        if importlib.util.find_spec(module) is None:
            raise missing_dependency(module, "serve", purpose="quadrat serve")


def _settings(**values: Any) -> ServiceSettings:
    """Settings from the options given (None: the service's default)."""
    from quadrat.service.settings import ServiceSettings

    folder = values.get("image_folder")
    if folder is not None:
        if not folder.is_dir():
            raise NotFoundError(f"no image folder {folder}", path=folder)
        values["image_folder"] = folder.resolve()
    tree = values.get("hierarchy")
    if tree is not None:
        if values.get("hierarchical_threshold") is None:
            raise InputError("--hierarchy needs --hierarchical-threshold", param="hierarchy")
        if not Path(tree).is_file():
            raise NotFoundError(f"no label tree file {tree}", path=tree)
        values["hierarchy"] = str(Path(tree).resolve())  # workers may start elsewhere
    return ServiceSettings(**{k: v for k, v in values.items() if v is not None})


def _import_failure(exc: ImportError) -> Exception:
    """A missing serve module as the missing-extra error; anything else as it was."""
    from quadrat.errors import MissingDependencyError, missing_dependency

    name = (getattr(exc, "name", None) or "").split(".")[0]
    if isinstance(exc, MissingDependencyError) or name not in SERVE_MODULES:
        return exc
    return missing_dependency(name, "serve", purpose="quadrat serve")


@app.command()
@user_errors(
    flags={
        "database": "--database/-p",
        "images_per_job": "--max-images",
        "upload_bytes_per_user": "--max-upload-bytes-per-user",
    }
)
def serve(
    ctx: typer.Context,
    project: ProjectOption = DEFAULT_PROJECT,
    database: DatabaseOption = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes that run deploy jobs.")] = 1,
    allow_private_urls: AllowPrivateOption = False,
    image_folder: ImageFolderOption = None,
    max_images: Annotated[
        int | None,
        typer.Option(min=1, help="Images in one deploy request (default 100, CoralNet's)."),
    ] = None,
    max_points: Annotated[
        int | None,
        typer.Option(min=1, help="Points on one image of a request (default 200, CoralNet's)."),
    ] = None,
    max_active_jobs: Annotated[
        int | None,
        typer.Option(min=1, help="Unfinished jobs one user may have (default 5, CoralNet's)."),
    ] = None,
    requests_per_minute: Annotated[
        int | None, typer.Option(min=1, help="Requests a user may make a minute (default 60).")
    ] = None,
    requests_per_hour: Annotated[
        int | None, typer.Option(min=1, help="... and an hour (default 1000).")
    ] = None,
    max_request_bytes: Annotated[
        int | None, typer.Option(min=1, help="Bytes of a JSON request body (default 4 MiB).")
    ] = None,
    max_upload_bytes: Annotated[
        int | None,
        typer.Option(min=1, help="Bytes of a request with uploaded images (default 200 MiB)."),
    ] = None,
    job_retention_days: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Days a finished job and its results are kept; then its status is a 404 "
            "(default 30, CoralNet's).",
        ),
    ] = None,
    upload_retention_hours: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Hours an uploaded image is kept after its last upload once no unfinished "
            "job uses it (default 24).",
        ),
    ] = None,
    max_upload_bytes_per_user: Annotated[
        int | None,
        typer.Option(
            min=1, help="Bytes of uploaded images one user's jobs may hold (default 1 GiB)."
        ),
    ] = None,
    max_suggest: Annotated[
        int | None,
        typer.Option(min=1, help="Points or images one suggest request may ask for (default 100)."),
    ] = None,
    max_replicates: Annotated[
        int | None,
        typer.Option(min=1, help="Bootstrap replicates of one cover request (default 5000)."),
    ] = None,
    max_similar: Annotated[
        int | None,
        typer.Option(min=1, help="Neighbours one similar-points request returns (default 100)."),
    ] = None,
    hierarchical_threshold: HierarchicalThresholdOption = None,
    hierarchy: HierarchyOption = None,
) -> None:
    """Serve CoralNet's deploy API (token, deploy, status, result) over a project."""
    location = _database(ctx, project, database)
    _require_serve_extra()
    settings = _settings(
        database=location,
        workers=workers,
        allow_private_urls=allow_private_urls,
        image_folder=image_folder,
        images_per_job=max_images,
        points_per_image=max_points,
        max_active_jobs=max_active_jobs,
        requests_per_minute=requests_per_minute,
        requests_per_hour=requests_per_hour,
        request_bytes=max_request_bytes,
        upload_request_bytes=max_upload_bytes,
        job_retention_days=job_retention_days,
        upload_retention_hours=upload_retention_hours,
        upload_bytes_per_user=max_upload_bytes_per_user,
        max_suggest=max_suggest,
        max_bootstrap_replicates=max_replicates,
        max_similar=max_similar,
        hierarchical_threshold=hierarchical_threshold,
        hierarchy=str(hierarchy) if hierarchy else None,
    )
    try:
        from quadrat.service.server import serve as run_server
    except ImportError as exc:
        raise _import_failure(exc) from exc
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(
            f"[yellow]note:[/] listening on {host}: put a TLS proxy in front "
            "(tokens and passwords travel in every request)",
            highlight=False,
        )
    console.print(f"serving {location} on http://{host}:{port}/api/ ({workers} worker(s))")
    console.print(f"annotate in the browser: http://{host}:{port}/ui/", highlight=False)
    run_server(settings, host, port)


@app.command()
@user_errors(flags={"database": "--database/-p"})
def worker(
    ctx: typer.Context,
    project: ProjectOption = DEFAULT_PROJECT,
    database: DatabaseOption = None,
    allow_private_urls: AllowPrivateOption = False,
    image_folder: ImageFolderOption = None,
    hierarchical_threshold: HierarchicalThresholdOption = None,
    hierarchy: HierarchyOption = None,
) -> None:
    """Run one more deploy worker for a served project (scale-out; Ctrl-C stops it)."""
    import signal
    import threading

    location = _database(ctx, project, database)
    _require_serve_extra()
    settings = _settings(
        database=location,
        allow_private_urls=allow_private_urls,
        image_folder=image_folder,
        hierarchical_threshold=hierarchical_threshold,
        hierarchy=str(hierarchy) if hierarchy else None,
    )
    try:
        from quadrat.service.queue import JobQueue
    except ImportError as exc:
        raise _import_failure(exc) from exc
    stop = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    queue = JobQueue(settings)
    console.print(f"worker for {location} running jobs (Ctrl-C stops after the current image)")
    try:
        queue.run_worker(stop)
    finally:
        queue.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
