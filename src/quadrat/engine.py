"""One source's workflow: import, points, extract, train, classify (and alleviate).

Every step reads and writes the project store and can be re-run: import refuses
duplicates, extraction skips images whose features are stored, training follows the
source's policy, classification only touches points no person has labelled. Each step
validates its whole input before writing, so bad input leaves the project as it was.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from quadrat.classifiers.metrics import alleviate_curve, top_k
from quadrat.classifiers.policy import TrainingPolicy
from quadrat.classifiers.serialize import dumps_estimator, loads_estimator
from quadrat.classifiers.training import train_classifier
from quadrat.errors import (
    DuplicateImportError,
    ImageError,
    InputError,
    PointOutsideImageError,
    ProjectError,
)
from quadrat.extraction import ImageJob, Runner, default_runner
from quadrat.io.coralnet import (
    read_annotations_csv,
    read_labelset_csv,
    resolve_labels,
)
from quadrat.io.images import check_complete, read_image_info
from quadrat.points import PointSpec
from quadrat.store.block_writer import BlockWriter
from quadrat.store.features import (
    load_features,
    register_extractor,
)
from quadrat.store.project import Project
from quadrat.store.schema import (
    Annotation,
    AnnotationStatus,
    ClassifierRecord,
    FeatureBlock,
    Image,
    Label,
    Point,
    Score,
    Source,
)

if TYPE_CHECKING:  # torch is imported when an extractor is built, not by the engine
    from quadrat.extractors import Extractor

#: ``progress(description, done, total)``; the CLI draws it as a rich progress bar.
Progress = Callable[[str, int, int], None]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")


def _no_progress(_description: str, _done: int, _total: int) -> None:
    return None


# ----------------------------------------------------------------------------- sources


def create_source(
    project: Project,
    name: str,
    *,
    labelset: str | Path | None = None,
    point_spec: str | None = None,
    confidence_threshold: float | None = None,
) -> None:
    """Add a source, optionally with its labelset from a CoralNet labelset CSV."""
    if point_spec is not None:
        PointSpec.parse(point_spec)  # fail now, not when points are generated
    _check_threshold(confidence_threshold)
    with project.session() as session:
        if session.scalar(select(Source.id).where(Source.name == name)) is not None:
            raise DuplicateImportError(f"source {name!r} already exists in {project.url}")
        source = Source(name=name, point_spec=point_spec, confidence_threshold=confidence_threshold)
        session.add(source)
        session.flush()
        if labelset is not None:
            _add_labels(session, source, read_labelset_csv(labelset), Path(labelset))


def import_labelset(project: Project, source_name: str, path: str | Path) -> int:
    """Add the labels of a CoralNet labelset CSV that the source does not have yet."""
    table = read_labelset_csv(path)
    with project.session() as session:
        return _add_labels(session, project.source(session, source_name), table, Path(path))


def _add_labels(session: Session, source: Source, table: pd.DataFrame, path: Path) -> int:
    known = set(session.scalars(select(Label.short_code).where(Label.source_id == source.id)))
    added = 0
    for row in table.itertuples(index=False):
        if row.short_code in known:
            continue
        label_id = None if pd.isna(row.label_id) else int(row.label_id)
        fg = None if pd.isna(row.functional_group) else str(row.functional_group)
        session.add(
            Label(
                source_id=source.id,
                name=str(row.name),
                short_code=str(row.short_code),
                functional_group=fg,
                coralnet_id=label_id,
            )
        )
        known.add(row.short_code)
        added += 1
    return added


def set_confidence_threshold(project: Project, source_name: str, threshold: float | None) -> None:
    _check_threshold(threshold)
    with project.session() as session:
        project.source(session, source_name).confidence_threshold = threshold


def _check_threshold(threshold: float | None) -> None:
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise InputError(f"confidence threshold must lie in [0, 1], not {threshold}")


def labelset_table(session: Session, source: Source) -> pd.DataFrame:
    rows = session.execute(
        select(Label.coralnet_id, Label.name, Label.short_code, Label.functional_group)
        .where(Label.source_id == source.id)
        .order_by(Label.short_code)
    ).all()
    return pd.DataFrame(rows, columns=["label_id", "name", "short_code", "functional_group"])


# ----------------------------------------------------------------------------- import


@dataclass
class ImportSummary:
    images: int = 0
    points: int = 0
    annotations: int = 0
    warnings: list[str] = field(default_factory=list)


def import_annotations(
    project: Project,
    source_name: str,
    csv_path: str | Path,
    image_dir: str | Path,
    *,
    exclude: Sequence[str] = (),
    progress: Progress = _no_progress,
) -> ImportSummary:
    """Import a CoralNet annotation export and its images, all or nothing.

    Every image named in the CSV must exist in ``image_dir``, be complete, be new to the
    source, and contain its points; every label must be in the source's labelset.
    Images whose name matches a glob in ``exclude`` are left out.
    """
    csv_path, image_dir = Path(csv_path), Path(image_dir)
    if not image_dir.is_dir():
        raise InputError("image folder not found", path=image_dir)
    table = read_annotations_csv(csv_path)
    meta_columns = list(table.attrs.get("metadata_columns", []))
    if exclude:
        names = table["image"].astype(str)
        dropped = np.zeros(len(table), dtype=bool)
        for pattern in exclude:
            dropped |= names.map(lambda n, p=pattern: fnmatch.fnmatchcase(n, p)).to_numpy(bool)
        table = table[~dropped].reset_index(drop=True)
    summary = ImportSummary()
    with project.session() as session:
        source = project.source(session, source_name)
        labels = {
            code: label_id
            for label_id, code in session.execute(
                select(Label.id, Label.short_code).where(Label.source_id == source.id)
            )
        }
        has_labels = "label" in table and table["label"].notna().any()
        if has_labels:
            if not labels:
                raise ProjectError(
                    f"source {source_name!r} has no labelset yet; import one first "
                    "('quadrat init --labelset' or 'quadrat import --labelset')"
                )
            labelset = labelset_table(session, source)
            labelled = table["label"].notna()
            codes = resolve_labels(
                table.loc[labelled, "label"],
                labelset,
                path=csv_path,
                lines=table.loc[labelled, "line"],
            )
            table["label_id"] = pd.Series(codes.map(labels), index=codes.index).astype("Int64")
        else:
            table["label_id"] = pd.Series(pd.NA, index=table.index, dtype="Int64")

        existing = set(session.scalars(select(Image.name).where(Image.source_id == source.id)))
        groups = list(table.groupby("image", sort=False))
        planned: list[tuple[str, Any, pd.DataFrame]] = []
        for done, (name, rows) in enumerate(groups, start=1):
            first_line = int(rows["line"].iloc[0])
            if name in existing:
                raise DuplicateImportError(
                    f"{csv_path}, line {first_line}: image {name!r} is already in source "
                    f"{source_name!r}; nothing was imported"
                )
            path = image_dir / str(name)
            if not path.is_file():
                raise ImageError(
                    f"image {name!r} listed here is not in {image_dir}",
                    path=csv_path,
                    line=first_line,
                )
            info = read_image_info(path)
            check_complete(path)
            outside = (
                (rows["row"] < 0)
                | (rows["row"] >= info.height)
                | (rows["column"] < 0)
                | (rows["column"] >= info.width)
            )
            if outside.any():
                bad = rows[outside].iloc[0]
                raise PointOutsideImageError(
                    f"point (row {bad['row']}, column {bad['column']}) lies outside image "
                    f"{name!r} ({info.height} rows x {info.width} columns)",
                    path=csv_path,
                    line=int(bad["line"]),
                )
            if info.exif_orientation != 1:
                summary.warnings.append(
                    f"{path}: EXIF orientation {info.exif_orientation}; point coordinates "
                    "refer to the stored pixels, not the rotated view"
                )
            planned.append((str(name), info, rows))
            progress("checking images", done, len(groups))

        for name, info, rows in planned:
            first = rows.iloc[0]
            metadata = {c: _json_value(first[c]) for c in meta_columns if pd.notna(first[c])}
            image = Image(
                source_id=source.id,
                name=name,
                path=str(info.path.resolve()),
                sha256=info.sha256,
                width=info.width,
                height=info.height,
                exif_orientation=info.exif_orientation,
                metadata_=metadata,
            )
            session.add(image)
            session.flush()
            point_ids = session.scalars(
                insert(Point).returning(Point.id, sort_by_parameter_order=True),
                [
                    {
                        "image_id": image.id,
                        "number": number,
                        "row": int(r),
                        "column": int(c),
                        "generated_by": "imported",
                    }
                    for number, (r, c) in enumerate(
                        zip(rows["row"], rows["column"], strict=True), start=1
                    )
                ],
            ).all()
            annotation_rows = []
            for point_id, label_id, annotator, date in zip(
                point_ids,
                rows["label_id"],
                rows.get("annotator", pd.Series(None, index=rows.index)),
                rows.get("date_annotated", pd.Series(None, index=rows.index)),
                strict=True,
            ):
                if pd.isna(label_id):
                    continue
                annotation_rows.append(
                    {
                        "point_id": point_id,
                        "label_id": int(label_id),
                        "status": AnnotationStatus.IMPORTED,
                        "annotator": None if pd.isna(annotator) else str(annotator),
                        "annotated_at": _parse_date(date),
                    }
                )
            if annotation_rows:
                session.execute(insert(Annotation), annotation_rows)
            summary.images += 1
            summary.points += len(point_ids)
            summary.annotations += len(annotation_rows)
    return summary


def import_images(
    project: Project,
    source_name: str,
    paths: Sequence[str | Path],
    *,
    progress: Progress = _no_progress,
) -> ImportSummary:
    """Add images without annotations (new photos to be classified), all or nothing."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES))
        elif p.is_file():
            files.append(p)
        else:
            raise ImageError("image not found", path=p)
    summary = ImportSummary()
    with project.session() as session:
        source = project.source(session, source_name)
        existing = set(session.scalars(select(Image.name).where(Image.source_id == source.id)))
        for done, path in enumerate(files, start=1):
            if path.name in existing:
                raise DuplicateImportError(
                    f"{path}: image {path.name!r} is already in source {source_name!r}; "
                    "nothing was imported"
                )
            info = read_image_info(path)
            check_complete(path)
            session.add(
                Image(
                    source_id=source.id,
                    name=path.name,
                    path=str(path.resolve()),
                    sha256=info.sha256,
                    width=info.width,
                    height=info.height,
                    exif_orientation=info.exif_orientation,
                    metadata_={},
                )
            )
            existing.add(path.name)
            summary.images += 1
            progress("importing images", done, len(files))
    return summary


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _parse_date(value: Any) -> datetime | None:
    if value is None or (not isinstance(value, datetime) and pd.isna(value)):
        return None
    stamp = pd.Timestamp(value)
    if pd.isna(stamp):
        return None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(UTC)
    return stamp.to_pydatetime()


# ----------------------------------------------------------------------------- points


def generate_points(
    project: Project, source_name: str, spec: str | None = None, *, seed: int = 0
) -> int:
    """Give every image of the source that has no points a CoralNet-style point set.

    Each image's points depend only on ``seed`` and the image's name, so rerunning (or
    adding images later) gives the same points for the same image.
    """
    with project.session() as session:
        source = project.source(session, source_name)
        text = spec or source.point_spec
        if text is None:
            raise InputError(
                f"source {source_name!r} has no point spec; give one (e.g. m_200, t_5_5_2, u_10_10)"
            )
        point_spec = PointSpec.parse(text)
        images = session.execute(
            select(Image.id, Image.name, Image.height, Image.width)
            .where(Image.source_id == source.id)
            .where(~select(Point.id).where(Point.image_id == Image.id).exists())
        ).all()
        added = 0
        for image_id, name, height, width in images:
            image_seed = zlib.crc32(name.encode()) ^ (seed * 0x9E3779B1 & 0xFFFFFFFF)
            coords = point_spec.generate(height, width, seed=image_seed)
            session.execute(
                insert(Point),
                [
                    {
                        "image_id": image_id,
                        "number": number,
                        "row": int(r),
                        "column": int(c),
                        "generated_by": str(point_spec),
                    }
                    for number, (r, c) in enumerate(coords, start=1)
                ],
            )
            added += len(coords)
        if source.point_spec is None:
            source.point_spec = str(point_spec)
    return added


# ----------------------------------------------------------------------------- extract


@dataclass
class ExtractSummary:
    extractor_key: str
    images_done: int = 0
    images_skipped: int = 0
    points: int = 0
    seconds: float = 0.0

    @property
    def points_per_second(self) -> float:
        return self.points / self.seconds if self.seconds else 0.0


def extract_features(
    project: Project,
    source_name: str,
    extractor: Extractor,
    *,
    dtype: str = "float16",
    workers: int = 2,
    runner: Runner | None = None,
    progress: Progress = _no_progress,
) -> ExtractSummary:
    """Extract and store features for every point of the source that lacks them.

    ``runner`` computes the features (default: :func:`quadrat.extraction.default_runner`,
    CPU threads or the GPU pipeline by the extractor's device; a Ray runner for a
    cluster); this function alone writes the store, one transaction per image: killing
    the job loses at most the images in flight, and a rerun completes the rest.
    """
    import time

    key = extractor.key
    with project.session() as session:
        source = project.source(session, source_name)
        register_extractor(
            session,
            key,
            extractor.config.name,
            extractor.config.feature_dim,
            dataclasses.asdict(extractor.config),
        )
        counts = dict(
            session.execute(
                select(Point.image_id, func.count(Point.id))
                .join(Image, Image.id == Point.image_id)
                .where(Image.source_id == source.id)
                .group_by(Point.image_id)
            ).all()
        )
        stored = dict(
            session.execute(
                select(FeatureBlock.image_id, FeatureBlock.n_points)
                .join(Image, Image.id == FeatureBlock.image_id)
                .where(Image.source_id == source.id, FeatureBlock.extractor_key == key)
            ).all()
        )
        todo_ids = [i for i, n in counts.items() if stored.get(i) != n]
        todo = (
            session.execute(
                select(Image.id, Image.name, Image.path)
                .where(Image.id.in_(todo_ids))
                .order_by(Image.id)
            ).all()
            if todo_ids
            else []
        )
        point_rows = (
            session.execute(
                select(Point.image_id, Point.id, Point.row, Point.column)
                .where(Point.image_id.in_(todo_ids))
                .order_by(Point.image_id, Point.number)
            ).all()
            if todo_ids
            else []
        )
    by_image: dict[int, list[tuple[int, int, int]]] = {}
    for image_id, point_id, row, col in point_rows:
        by_image.setdefault(image_id, []).append((point_id, row, col))

    def jobs() -> Iterator[ImageJob]:
        for image in todo:
            pts = np.asarray(by_image[image.id], dtype=np.int64).reshape(-1, 3)
            yield ImageJob(image.id, image.name, image.path, pts[:, 0], pts[:, 1], pts[:, 2])

    summary = ExtractSummary(extractor_key=key, images_skipped=len(counts) - len(todo))
    runner = runner if runner is not None else default_runner(extractor, workers=workers)
    points_of = {image_id: len(points) for image_id, points in by_image.items()}

    def written(image_ids: list[int]) -> None:  # on the writer thread, after each commit
        summary.images_done += len(image_ids)
        summary.points += sum(points_of[i] for i in image_ids)
        progress("extracting features", summary.images_done, len(todo))

    start = time.perf_counter()
    # Blocks are committed on a writer thread, whole images per transaction: the network
    # never waits for the database, and a killed job still leaves whole images only.
    with BlockWriter(project, key, dtype=dtype, on_written=written) as writer:
        for job, features in runner(jobs(), extractor):
            writer.put(job.image_id, job.point_ids, features)
    summary.seconds = time.perf_counter() - start
    return summary


# ----------------------------------------------------------------------------- train


@dataclass
class TrainOutcome:
    trained: bool
    message: str
    classifier_id: int | None = None
    accepted: bool = False
    accuracy: float | None = None
    n_train: int = 0
    n_val: int = 0
    train_seconds: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)


def confirmed_image_ids(session: Session, source: Source) -> list[int]:
    """Images whose every point has a person's label (imported or confirmed)."""
    human = [s.value for s in AnnotationStatus.human()]
    rows = session.execute(
        select(
            Point.image_id,
            func.count(Point.id),
            func.count(Annotation.id).filter(Annotation.status.in_(human)),
        )
        .join(Image, Image.id == Point.image_id)
        .outerjoin(Annotation, Annotation.point_id == Point.id)
        .where(Image.source_id == source.id)
        .group_by(Point.image_id)
    ).all()
    return sorted(image_id for image_id, n, n_human in rows if n > 0 and n == n_human)


def latest_classifier(
    session: Session,
    source: Source,
    *,
    accepted_only: bool = True,
    extractor_key: str | None = None,
) -> ClassifierRecord | None:
    """The source's newest (accepted) classifier, optionally on one extractor's features."""
    query = select(ClassifierRecord).where(ClassifierRecord.source_id == source.id)
    if extractor_key is not None:
        query = query.where(ClassifierRecord.extractor_key == extractor_key)
    if accepted_only:
        query = query.where(ClassifierRecord.accepted.is_(True))
    return session.scalar(query.order_by(ClassifierRecord.id.desc()).limit(1))


def training_data(
    session: Session, source: Source, extractor_key: str, image_ids: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, label ids and image ids of the human-labelled points of ``image_ids``."""
    # Stored precision (float16 as extracted): the classifier converts only its fit part.
    matrix = load_features(
        session, extractor_key, source_id=source.id, image_ids=image_ids, dtype="stored"
    )
    human = [s.value for s in AnnotationStatus.human()]
    rows = session.execute(
        select(Point.id, Annotation.label_id, Point.image_id)
        .join(Annotation, Annotation.point_id == Point.id)
        .join(Image, Image.id == Point.image_id)
        .where(Image.source_id == source.id, Annotation.status.in_(human))
    ).all()
    lookup = pd.DataFrame(rows, columns=["point_id", "label_id", "image_id"]).set_index("point_id")
    wanted = set(image_ids)
    lookup = lookup[lookup["image_id"].isin(wanted)]
    missing = lookup.index.difference(pd.Index(matrix.point_ids))
    if len(missing):
        raise ProjectError(
            f"{len(missing)} labelled points have no features for {extractor_key!r}; "
            "run 'quadrat extract' first"
        )
    order = pd.Index(matrix.point_ids).get_indexer(lookup.index)
    return (
        matrix.features[order],
        lookup["label_id"].to_numpy(np.int64),
        lookup["image_id"].to_numpy(np.int64),
    )


def train_source(
    project: Project,
    source_name: str,
    extractor_key: str,
    *,
    kind: Literal["lr", "mlp"] = "mlp",
    force: bool = False,
    policy: TrainingPolicy | None = None,
    seed: int = 0,
    device: str | None = None,
) -> TrainOutcome:
    """Train a classifier if the source's policy calls for one, and keep it if it is better.

    ``device`` ("auto", "cpu", "cuda") trains with PyTorch there; None with scikit-learn.
    """
    policy = policy or TrainingPolicy()
    with project.session() as session:
        source = project.source(session, source_name)
        images = confirmed_image_ids(session, source)
        # The policy runs per extractor: switching extractors starts a new series of
        # classifiers, as CoralNet resets a source's classifiers when its extractor changes.
        previous = latest_classifier(session, source, extractor_key=extractor_key)
        last_count = previous.n_images if previous is not None else None
        if not force and not policy.should_train(len(images), last_count):
            need = policy.min_images if last_count is None else policy.next_count(last_count)
            return TrainOutcome(
                trained=False,
                message=(
                    f"{len(images)} confirmed images; the next classifier is trained at "
                    f"{need} (use --force to train now)"
                ),
            )
        if len(images) < 2:
            raise ProjectError(
                f"source {source_name!r} has {len(images)} confirmed images; need at least 2"
            )
        X, y, groups = training_data(session, source, extractor_key, images)
        prev_acc = previous.accuracy if previous is not None else None
    result = train_classifier(
        X,
        y,
        groups=groups,
        kind=kind,
        random_state=seed,
        previous_accuracy=prev_acc,
        policy=policy,
        device=device,
    )
    accepted = result.accepted
    metrics = dict(result.metrics)
    curve = alleviate_curve(result.val_proba, result.val_true, result.estimator.classes_)
    metrics["alleviate_curve"] = curve.to_dict(orient="list")
    with project.session() as session:
        record = ClassifierRecord(
            source_id=project.source(session, source_name).id,
            extractor_key=extractor_key,
            kind=kind,
            hyperparameters=result.hyperparameters,
            metrics=_jsonable(metrics),
            n_images=len(images),
            n_train=result.n_train,
            n_val=result.n_val,
            accuracy=_finite_or_none(result.metrics["accuracy"]),
            accepted=accepted,
            train_seconds=float(result.train_seconds),
            model=dumps_estimator(result.estimator),
        )
        session.add(record)
        session.flush()
        record_id = record.id
    if accepted:
        verdict = "accepted"
    elif prev_acc is not None:
        verdict = f"rejected (previous accuracy {prev_acc:.3f})"
    else:
        verdict = "rejected (no validation point with a known label)"
    return TrainOutcome(
        trained=True,
        message=f"classifier {record_id}: accuracy {result.metrics['accuracy']:.3f}, {verdict}",
        classifier_id=record_id,
        accepted=accepted,
        accuracy=_finite_or_none(result.metrics["accuracy"]),
        n_train=result.n_train,
        n_val=result.n_val,
        train_seconds=float(result.train_seconds),
        metrics=metrics,
    )


def _finite_or_none(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, pd.DataFrame):
        return _jsonable(value.to_dict(orient="list"))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ----------------------------------------------------------------------------- classify


@dataclass
class ClassifySummary:
    classifier_id: int
    points: int = 0
    machine: int = 0
    alleviated: int = 0


def classify_source(
    project: Project,
    source_name: str,
    *,
    classifier_id: int | None = None,
    threshold: float | None = None,
    batch_size: int = 65536,
    progress: Progress = _no_progress,
) -> ClassifySummary:
    """Score every point no person has labelled: top-5 scores, a machine annotation, and
    auto-acceptance (``alleviate``) at or above the confidence threshold."""
    _check_threshold(threshold)
    with project.session() as session:
        source = project.source(session, source_name)
        if classifier_id is None:
            record = latest_classifier(session, source)
            if record is None:
                raise ProjectError(
                    f"source {source_name!r} has no accepted classifier; run 'quadrat train'"
                )
        else:
            record = session.get(ClassifierRecord, classifier_id)
            if record is None or record.source_id != source.id:
                raise ProjectError(f"no classifier {classifier_id} in source {source_name!r}")
        if threshold is None:
            threshold = source.confidence_threshold
        estimator = loads_estimator(record.model)
        matrix = load_features(session, record.extractor_key, source_id=source.id)
        human = [s.value for s in AnnotationStatus.human()]
        labelled = set(
            session.scalars(
                select(Annotation.point_id)
                .join(Point, Point.id == Annotation.point_id)
                .join(Image, Image.id == Point.image_id)
                .where(Image.source_id == source.id, Annotation.status.in_(human))
            )
        )
        keep = ~np.isin(
            matrix.point_ids, np.fromiter(labelled, dtype=np.int64, count=len(labelled))
        )
        point_ids = matrix.point_ids[keep]
        features = matrix.features[keep]
        summary = ClassifySummary(classifier_id=record.id)
        now = datetime.now(UTC)
        classes = np.asarray(estimator.classes_)
        for start in range(0, len(point_ids), batch_size):
            ids = point_ids[start : start + batch_size]
            proba = estimator.predict_proba(features[start : start + batch_size])
            labels, scores = top_k(proba, classes, k=5)
            id_list = [int(i) for i in ids]
            for chunk in range(0, len(id_list), 900):
                part = id_list[chunk : chunk + 900]
                session.execute(
                    delete(Score).where(Score.classifier_id == record.id, Score.point_id.in_(part))
                )
                session.execute(delete(Annotation).where(Annotation.point_id.in_(part)))
            session.execute(
                insert(Score),
                [
                    {
                        "point_id": pid,
                        "classifier_id": record.id,
                        "rank": rank,
                        "label_id": int(labels[i, rank]),
                        "score": float(scores[i, rank]),
                    }
                    for i, pid in enumerate(id_list)
                    for rank in range(labels.shape[1])
                ],
            )
            accept = (
                scores[:, 0] >= threshold if threshold is not None else np.zeros(len(ids), bool)
            )
            session.execute(
                insert(Annotation),
                [
                    {
                        "point_id": pid,
                        "label_id": int(labels[i, 0]),
                        "status": AnnotationStatus.ALLEVIATE
                        if accept[i]
                        else AnnotationStatus.MACHINE,
                        "annotator": f"classifier {record.id}",
                        "annotated_at": now,
                        "classifier_id": record.id,
                    }
                    for i, pid in enumerate(id_list)
                ],
            )
            summary.points += len(ids)
            summary.alleviated += int(accept.sum())
            summary.machine += int((~accept).sum())
            progress("classifying points", summary.points, len(point_ids))
    return summary


# ----------------------------------------------------------------------------- tables


def annotation_table(session: Session, source: Source) -> pd.DataFrame:
    """Every point of the source with its annotation and its latest top-5 scores."""
    rows = session.execute(
        select(
            Image.id,
            Image.name,
            Image.metadata_,
            Point.id,
            Point.number,
            Point.row,
            Point.column,
            Label.short_code,
            Annotation.status,
            Annotation.annotator,
            Annotation.annotated_at,
        )
        .join(Point, Point.image_id == Image.id)
        .outerjoin(Annotation, Annotation.point_id == Point.id)
        .outerjoin(Label, Label.id == Annotation.label_id)
        .where(Image.source_id == source.id)
        .order_by(Image.name, Point.number)
    ).all()
    table = pd.DataFrame(
        rows,
        columns=[
            "image_id",
            "image",
            "metadata",
            "point_id",
            "number",
            "row",
            "column",
            "label",
            "status",
            "annotator",
            "date_annotated",
        ],
    )
    table["status"] = table["status"].map(lambda s: None if s is None else str(s))
    score_rows = session.execute(
        select(Score.point_id, Score.rank, Label.short_code, Score.score)
        .join(Label, Label.id == Score.label_id)
        .join(Point, Point.id == Score.point_id)
        .join(Image, Image.id == Point.image_id)
        .where(
            Image.source_id == source.id,
            Score.classifier_id
            == select(func.max(Score.classifier_id))
            .where(Score.point_id == Point.id)
            .correlate(Point)
            .scalar_subquery(),
        )
    ).all()
    if score_rows:
        scores = pd.DataFrame(score_rows, columns=["point_id", "rank", "label", "score"])
        wide = scores.pivot(index="point_id", columns="rank", values=["label", "score"])
        for rank in sorted(scores["rank"].unique()):
            table[f"suggestion_{rank + 1}"] = table["point_id"].map(wide[("label", rank)])
            table[f"confidence_{rank + 1}"] = table["point_id"].map(wide[("score", rank)])
    return table
