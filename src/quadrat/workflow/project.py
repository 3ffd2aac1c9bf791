"""``quadrat.Project``: a project file (or database URL) and its sources.

A notebook, the CLI and a web service all start here::

    project = quadrat.Project.create("survey.db")
    reef = project.create_source("reef", labelset="labelset.csv", point_spec="m_30")

The project wraps the low-level :class:`quadrat.store.project.Store` (an engine and
transactions); each :class:`~quadrat.workflow.source.Source` it hands out is a light
handle (project + source id), so many may be held at once and none holds a transaction.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from quadrat.errors import InputError, StateError
from quadrat.points import AnnotationArea, PointSpec
from quadrat.store import queries, writes
from quadrat.store.project import Store
from quadrat.workflow._common import check_threshold
from quadrat.workflow.source import Source

if TYPE_CHECKING:
    from quadrat.store.queries import ClassifierInfo


class Project:
    """A quadrat project: one database holding sources, images, features and classifiers.

    Use :meth:`create` or :meth:`open` (not the constructor), and close it when done, or
    use it as a context manager.
    """

    def __init__(self, store: Store) -> None:
        #: The low-level store (sessions); for the store package and its tests.
        self.store = store

    @classmethod
    def create(cls, location: str | Path, *, busy_timeout: float | None = None) -> Project:
        """Create a new, empty project at a path (SQLite) or SQLAlchemy URL.

        Refuses an existing file (:class:`~quadrat.errors.ConflictError`). All or nothing:
        a failure leaves no half-made project behind.
        """
        return cls(Store.create(location, busy_timeout=busy_timeout))

    @classmethod
    def open(
        cls,
        location: str | Path,
        *,
        read_only: bool | None = None,
        busy_timeout: float | None = None,
    ) -> Project:
        """Open an existing project, upgrading an older schema.

        A missing file is a :class:`~quadrat.errors.NotFoundError`; a file that is not a
        quadrat project a :class:`~quadrat.errors.ProjectError` (the file is not
        changed). ``read_only``: None opens read-only when the file or its folder is not
        writable (exports and reports work, writes are a StateError); True always.
        ``busy_timeout``: seconds a write waits for another process's write before a
        :class:`~quadrat.errors.ConflictError` (default 30, or ``QUADRAT_BUSY_TIMEOUT``).
        """
        return cls(Store.open(location, read_only=read_only, busy_timeout=busy_timeout))

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the project's database."""
        return self.store.url

    def close(self) -> None:
        """Release the database connections (the handle's sources stop working)."""
        self.store.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Project({self.url!r})"

    # ------------------------------------------------------------------------- sources

    @property
    def sources(self) -> list[Source]:
        """Every source of the project, by name."""
        with self.store.session() as session:
            infos = [queries.get_source(session, name) for name in queries.source_names(session)]
        return [Source(self, info.id, info.name) for info in infos]

    def source(self, name: str | None = None) -> Source:
        """The source called ``name``; with None, the project's only source.

        An unknown name is a :class:`~quadrat.errors.NotFoundError` that lists the sources.
        """
        with self.store.session() as session:
            if name is not None:
                info = queries.get_source(session, name)
                return Source(self, info.id, info.name)
            names = queries.source_names(session)
        if len(names) == 1:
            return self.source(names[0])
        if not names:
            raise StateError("the project has no source yet; create one first", param="source")
        raise InputError(
            f"the project has several sources ({', '.join(names)}); name the one to use",
            param="source",
        )

    def create_source(
        self,
        name: str,
        labelset: str | Path | None = None,
        point_spec: str | None = None,
        confidence_threshold: float | None = None,
        annotation_area: str | None = None,
    ) -> Source:
        """Add a source, optionally with its labelset from a CoralNet labelset CSV.

        ``point_spec`` (CoralNet notation: ``m_200``, ``t_5_5_2``, ``u_10_10``) is the
        default for :meth:`Source.generate_points`; ``confidence_threshold`` auto-accepts
        machine labels at or above it; ``annotation_area`` (``5;95;5;95`` in percent, or
        ``x0,x1,y0,y1`` in pixels) keeps generated points inside it, CoralNet's per-source
        setting. Everything is checked before the source is added.
        """
        from quadrat.workflow.importing import label_rows, read_labelset

        if not name or not name.strip():
            raise InputError("a source needs a name", value=name, param="name")
        if point_spec is not None:
            PointSpec.parse(point_spec)  # fail now, not when points are generated
        check_threshold(confidence_threshold, "confidence_threshold")
        if annotation_area is not None:
            annotation_area = AnnotationArea.check_text(annotation_area, param="annotation_area")
        labels = label_rows(read_labelset(labelset)) if labelset is not None else []
        with self.store.session() as session:
            source_id = writes.add_source(
                session,
                name,
                point_spec=point_spec,
                confidence_threshold=confidence_threshold,
                annotation_area=annotation_area,
            )
            writes.add_labels(session, source_id, labels)
        return Source(self, source_id, name)

    def import_classifier(
        self,
        path: str | Path,
        source: str | None = None,
        *,
        weights: str | Path | None = None,
    ) -> ClassifierInfo:
        """Register a portable classifier file (``Source.export_classifier``) in this project.

        It becomes the active classifier of ``source`` (default: the name in the file),
        which is created with the file's labelset or must already have its labels. A CNN
        extractor's weights must be on this machine: ``weights`` names the file (checked
        by SHA-256) when the project does not know it yet. See
        :mod:`quadrat.workflow.classifiers`.
        """
        from quadrat.workflow.classifiers import import_classifier

        return import_classifier(self, path, source, weights=weights)
