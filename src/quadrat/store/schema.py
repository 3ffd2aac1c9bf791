"""The project's tables (SQLAlchemy 2 declarative models).

One project holds many *sources* (CoralNet's word for a survey with its own labelset and
classifier). Everything a source owns hangs off it by foreign key with ``ON DELETE
CASCADE``, so deleting a source never leaves orphans.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

#: The project format in ``meta.schema_version``: 2, schema versions are Alembic revisions
#: (:mod:`quadrat.store.migrations`; a change of the tables below needs a new revision).
#: Releases before Alembic wrote 1 and refuse anything higher, rather than write to tables
#: they do not know; ``Store.open`` adopts a format-1 file as the baseline revision.
SCHEMA_VERSION = 2
#: The hand-versioned format of releases before Alembic.
LEGACY_SCHEMA_VERSION = 1


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON}


class AnnotationStatus(enum.StrEnum):
    """Who set an annotation: CoralNet's statuses plus ``imported``."""

    IMPORTED = "imported"  # came from a CSV; treated as confirmed for training
    CONFIRMED = "confirmed"  # a person confirmed it
    MACHINE = "machine"  # the classifier's top-1 suggestion, not yet confirmed
    ALLEVIATE = "alleviate"  # auto-accepted: top score above the source's threshold

    @classmethod
    def human(cls) -> tuple[AnnotationStatus, ...]:
        """Statuses a classifier may learn from."""
        return (cls.IMPORTED, cls.CONFIRMED)


class Meta(Base):
    """Key-value facts about the project file itself (schema version, creator)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(1024))


class Source(Base):
    __tablename__ = "sources"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: Points scored at or above this are auto-accepted ("alleviate"); None disables it.
    confidence_threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: Default point generation for new images, in CoralNet's notation (``m_200``).
    point_spec: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: Where generated points may fall, in CoralNet's stored form (``5;95;5;95`` percent of
    #: the width and height, or ``x0,x1,y0,y1`` pixels); None: the whole image.
    annotation_area: Mapped[str | None] = mapped_column(String(64), nullable=True)

    labels: Mapped[list[Label]] = relationship(
        back_populates="source", cascade="all, delete-orphan", passive_deletes=True
    )
    images: Mapped[list[Image]] = relationship(
        back_populates="source", cascade="all, delete-orphan", passive_deletes=True
    )


class Label(Base):
    """A label of a source's labelset (CoralNet: name, short code, functional group)."""

    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("source_id", "short_code"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    short_code: Mapped[str] = mapped_column(String(64))
    functional_group: Mapped[str | None] = mapped_column(String(128), nullable=True)
    coralnet_id: Mapped[int | None] = mapped_column(Integer, nullable=True)

    source: Mapped[Source] = relationship(back_populates="labels")


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("source_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    #: The image's name as CoralNet knows it (the CSV's ``Name``).
    name: Mapped[str] = mapped_column(String(512))
    path: Mapped[str] = mapped_column(String(4096))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    exif_orientation: Mapped[int] = mapped_column(Integer, default=1)
    #: CoralNet metadata and aux columns (Date, Aux1..5, Latitude, ...), as given.
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    source: Mapped[Source] = relationship(back_populates="images")
    points: Mapped[list[Point]] = relationship(
        back_populates="image",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Point.number",
    )


class Point(Base):
    __tablename__ = "points"
    __table_args__ = (UniqueConstraint("image_id", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    #: 1-based point number within its image (CoralNet's order).
    number: Mapped[int] = mapped_column(Integer)
    row: Mapped[int] = mapped_column(Integer)
    column: Mapped[int] = mapped_column(Integer)
    #: ``imported`` or the CoralNet point spec that made it (``m_200``, ``t_5_5_2``...).
    generated_by: Mapped[str] = mapped_column(String(64))

    image: Mapped[Image] = relationship(back_populates="points")
    annotation: Mapped[Annotation | None] = relationship(
        back_populates="point", cascade="all, delete-orphan", passive_deletes=True
    )


class Annotation(Base):
    """The current label of a point (one per point)."""

    __tablename__ = "annotations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    point_id: Mapped[int] = mapped_column(ForeignKey("points.id", ondelete="CASCADE"), unique=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id", ondelete="CASCADE"))
    status: Mapped[AnnotationStatus] = mapped_column(
        Enum(AnnotationStatus, native_enum=False, length=16, validate_strings=True)
    )
    annotator: Mapped[str | None] = mapped_column(String(256), nullable=True)
    annotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    classifier_id: Mapped[int | None] = mapped_column(
        ForeignKey("classifiers.id", ondelete="SET NULL"), nullable=True
    )

    point: Mapped[Point] = relationship(back_populates="annotation")
    label: Mapped[Label] = relationship()


class ExtractorRecord(Base):
    """An extractor that produced stored features: its key and full configuration."""

    __tablename__ = "extractors"
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    feature_dim: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class FeatureBlock(Base):
    """Features of all points of one image for one extractor, as one compact binary block.

    ``point_ids`` (int64) and ``data`` (``dtype``, shape ``(n, dim)``) are raw little-endian
    arrays: compact (float16 is 2 bytes a value), appendable image by image, and read back
    with ``numpy.frombuffer`` without parsing. One image's block is written in its own
    transaction, so an interrupted extraction leaves only whole blocks behind.
    """

    __tablename__ = "feature_blocks"
    __table_args__ = (UniqueConstraint("image_id", "extractor_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    extractor_key: Mapped[str] = mapped_column(ForeignKey("extractors.key"), index=True)
    dtype: Mapped[str] = mapped_column(String(16))
    n_points: Mapped[int] = mapped_column(Integer)
    dim: Mapped[int] = mapped_column(Integer)
    point_ids: Mapped[bytes] = mapped_column(LargeBinary)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ClassifierRecord(Base):
    """A trained classifier (CoralNet's "robot") with its hyperparameters and metrics."""

    __tablename__ = "classifiers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    extractor_key: Mapped[str] = mapped_column(ForeignKey("extractors.key"))
    kind: Mapped[str] = mapped_column(String(32))
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Confirmed images when it was trained (the retraining policy counts from this).
    n_images: Mapped[int] = mapped_column(Integer)
    n_train: Mapped[int] = mapped_column(Integer)
    n_val: Mapped[int] = mapped_column(Integer)
    #: Validation accuracy; None when no validation point had a label it knows.
    accuracy: Mapped[float | None] = mapped_column(Float, nullable=True)
    accepted: Mapped[bool] = mapped_column(Boolean)
    train_seconds: Mapped[float] = mapped_column(Float)
    model: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Score(Base):
    """One of a point's top-5 labels under a classifier, with its probability."""

    __tablename__ = "scores"
    point_id: Mapped[int] = mapped_column(
        ForeignKey("points.id", ondelete="CASCADE"), primary_key=True
    )
    classifier_id: Mapped[int] = mapped_column(
        ForeignKey("classifiers.id", ondelete="CASCADE"), primary_key=True
    )
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id", ondelete="CASCADE"))
    score: Mapped[float] = mapped_column(Float)


Index("ix_points_image", Point.image_id)
Index("ix_annotations_label", Annotation.label_id)
Index("ix_scores_classifier", Score.classifier_id)


# ------------------------------------------------------------------ service (quadrat serve)


class Role(enum.StrEnum):
    """A user's role on a source (or on every source, ``source_id`` NULL), weakest first."""

    VIEWER = "viewer"  # sees images, annotations, classifiers; deploys classifiers
    ANNOTATOR = "annotator"  # also labels points and confirms machine suggestions
    ADMIN = "admin"  # also manages the source: labelset, training, users' roles

    @property
    def rank(self) -> int:
        return list(Role).index(self)


class User(Base):
    """A person or script that signs in to ``quadrat serve``."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    #: An argon2 hash (argon2-cffi's PHC string); never the password.
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Per-user overrides of the service limits (``max_active_jobs``, ``images_per_job``,
    #: ``points_per_image``, ``requests_per_minute``, ``requests_per_hour``).
    limits: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SourceRole(Base):
    """What a user may do on one source; ``source_id`` NULL means on every source."""

    __tablename__ = "source_roles"
    __table_args__ = (UniqueConstraint("user_id", "source_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("sources.id", ondelete="CASCADE"), nullable=True
    )
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=16, validate_strings=True)
    )


class ApiToken(Base):
    """An API token (CoralNet's ``Authorization: Token <40 hex>``), stored as its SHA-256.

    Tokens are 160 random bits, so a fast hash is enough (no dictionary to attack), and a
    stolen database yields no usable token. They do not expire (CoralNet's behaviour).
    """

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JobStatus(enum.StrEnum):
    """A deploy job's life: CoralNet's API reports ``Pending`` / ``In Progress``, then 303."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    DONE = "done"


class DeployJob(Base):
    """One deploy request: up to 100 images to classify with one classifier."""

    __tablename__ = "deploy_jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    classifier_id: Mapped[int | None] = mapped_column(
        ForeignKey("classifiers.id", ondelete="SET NULL"), nullable=True
    )
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, native_enum=False, length=16, validate_strings=True), index=True
    )
    #: Times a worker started the job (a restart after a crash starts it again).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class DeployImageStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class DeployImage(Base):
    """One image of a deploy job, in request order, with its points and then its result."""

    __tablename__ = "deploy_images"
    __table_args__ = (UniqueConstraint("job_id", "position"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("deploy_jobs.id", ondelete="CASCADE"))
    #: 0-based index in the request's ``data`` array.
    position: Mapped[int] = mapped_column(Integer)
    #: The ``url`` as the client sent it (returned verbatim as the result's id and url).
    url: Mapped[str] = mapped_column(String(4096))
    #: ``[[row, column], ...]`` as requested.
    points: Mapped[list[Any]] = mapped_column(JSON)
    status: Mapped[DeployImageStatus] = mapped_column(
        Enum(DeployImageStatus, native_enum=False, length=16, validate_strings=True)
    )
    #: Per point, its classifications (``label_id``, ``label_name``, ``label_code``,
    #: ``score``), top first; set when ``status`` is done.
    result: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    #: One line saying why the image failed; set when ``status`` is failed.
    error: Mapped[str | None] = mapped_column(String(1024), nullable=True)


Index("ix_deploy_images_job", DeployImage.job_id)
