"""What one ``quadrat serve`` is configured with: its project, limits and safety switches.

Defaults are CoralNet's where it has one (100 images a request, 200 points an image, 5
active jobs, 60 requests a minute and 1000 an hour per user). Each limit can be changed per
server (these settings) and per user (``User.limits``, same names): :meth:`for_user`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from quadrat.errors import InputError
from quadrat.limits import Limits

_MIB = 1 << 20

#: Settings a user's ``limits`` may override.
PER_USER = (
    "images_per_job",
    "points_per_image",
    "max_active_jobs",
    "requests_per_minute",
    "requests_per_hour",
    "max_suggest",
    "max_bootstrap_replicates",
    "max_similar",
    "upload_bytes_per_user",
)


@dataclass(frozen=True)
class ServiceSettings:
    """One server's configuration (the CLI builds it from ``quadrat serve``'s options)."""

    #: The project: a SQLite path or a SQLAlchemy URL (``postgresql+psycopg://...``).
    database: str
    #: Images in one deploy request (CoralNet: 100).
    images_per_job: int = 100
    #: Points on one image of a deploy request (CoralNet: 200).
    points_per_image: int = 200
    #: Unfinished jobs one user may have (CoralNet: 5).
    max_active_jobs: int = 5
    #: Requests one user (or, before sign-in, one address) may make a minute (CoralNet: 60).
    requests_per_minute: int = 60
    #: ... and an hour (CoralNet: 1000).
    requests_per_hour: int = 1000
    #: Bytes of a request body (JSON or multipart upload), checked before it is parsed.
    request_bytes: int = 4 * _MIB
    #: Bytes of a multipart request with uploaded images (each image: ``limits``).
    upload_request_bytes: int = 200 * _MIB
    #: Image URLs may name private, loopback and link-local addresses (tests, closed labs).
    allow_private_urls: bool = False
    #: A folder images may also be named from (``file`` paths under it); None: none.
    image_folder: Path | None = None
    #: Worker processes that run deploy jobs.
    workers: int = 1
    #: Points (or images) one ``/api/quadrat/v1/.../suggest`` request may ask for (``n``).
    max_suggest: int = 100
    #: Bootstrap replicates one cover request may ask for (bounds the server's time).
    max_bootstrap_replicates: int = 5000
    #: Neighbours one "patches like this one" request may ask for (``k``).
    max_similar: int = 100
    #: Days a finished deploy job and its results are kept (CoralNet: 30, ``JOB_MAX_DAYS``);
    #: polling it afterwards gives the 404 of an unknown job.
    job_retention_days: int = 30
    #: Hours an uploaded image is kept after it was last uploaded, once no unfinished job
    #: names it (its results do not need it).
    upload_retention_hours: int = 24
    #: Bytes of uploaded images that one user's stored jobs may hold at a time.
    upload_bytes_per_user: int = 1024 * _MIB
    #: Add each point's hierarchical answer (the deepest label-tree node whose summed
    #: scores reach this, 0-1) to deploy results as an extra ``answer`` member; None:
    #: CoralNet's results exactly (docs/hierarchy.md).
    hierarchical_threshold: float | None = None
    #: The label tree for those answers: a CATAMI mapping CSV or a BIIGLE label tree
    #: JSON; None: the classifier's labelset functional groups.
    hierarchy: str | None = None
    #: Image file size, pixel count and download limits (see :mod:`quadrat.limits`).
    limits: Limits = field(default_factory=Limits.from_env)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "int" and (isinstance(value, bool) or not isinstance(value, int)):
                raise InputError(f"{f.name} must be an integer, got {value!r}", param=f.name)
            if f.type == "int" and value < 1:
                raise InputError(f"{f.name} must be 1 or more, got {value}", param=f.name)
        answer = self.hierarchical_threshold
        if answer is not None and (
            isinstance(answer, bool) or not isinstance(answer, int | float) or not 0 <= answer <= 1
        ):
            raise InputError(
                f"hierarchical_threshold must be a number from 0 to 1, got {answer!r}",
                param="hierarchical_threshold",
            )

    def for_user(self, overrides: dict[str, Any] | None) -> ServiceSettings:
        """These settings with a user's own limits applied (unknown keys ignored)."""
        if not overrides:
            return self
        chosen: dict[str, Any] = {
            k: int(v) for k, v in overrides.items() if k in PER_USER and v is not None
        }
        return replace(self, **chosen) if chosen else self
