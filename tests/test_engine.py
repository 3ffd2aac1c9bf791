"""One source's workflow end to end, and what bad input does (and does not) change."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from quadrat import engine
from quadrat.demo import DemoSurvey
from quadrat.errors import (
    CsvFormatError,
    DuplicateImportError,
    ImageError,
    PointOutsideImageError,
    ProjectError,
    UnknownLabelError,
)
from quadrat.extractors import create_extractor
from quadrat.io.coralnet import read_annotations_csv, read_percent_cover_csv
from quadrat.reports.exports import export_annotations, export_cover, export_labelset
from quadrat.store.features import load_features
from quadrat.store.project import Project
from quadrat.store.schema import (
    Annotation,
    AnnotationStatus,
    ClassifierRecord,
    FeatureBlock,
    Image,
    Point,
    Score,
)

SOURCE = "reef"


def new_project(tmp_path: Path, survey: DemoSurvey) -> Project:
    project = Project.create(tmp_path / "p.db")
    engine.create_source(project, SOURCE, labelset=survey.labelset_csv)
    return project


def counts(project: Project) -> tuple[int, int, int]:
    with project.session() as session:
        return (
            session.scalar(select(func.count(Image.id))) or 0,
            session.scalar(select(func.count(Point.id))) or 0,
            session.scalar(select(func.count(Annotation.id))) or 0,
        )


def test_whole_workflow(tmp_path: Path, survey: DemoSurvey) -> None:
    project = new_project(tmp_path, survey)
    summary = engine.import_annotations(
        project, SOURCE, survey.annotations_csv, survey.annotated_dir
    )
    assert (summary.images, summary.points, summary.annotations) == (20, 240, 240)
    assert engine.import_images(project, SOURCE, [survey.new_dir]).images == 2
    assert engine.generate_points(project, SOURCE, "m_10", seed=1) == 20
    assert engine.generate_points(project, SOURCE, "m_10", seed=1) == 0  # only pointless images

    extractor = create_extractor("texture")
    ext = engine.extract_features(project, SOURCE, extractor)
    assert (ext.images_done, ext.points) == (22, 260)
    again = engine.extract_features(project, SOURCE, extractor)
    assert (again.images_done, again.images_skipped) == (0, 22)

    outcome = engine.train_source(project, SOURCE, extractor.key, kind="lr")
    assert outcome.trained and outcome.accepted
    assert 0.5 < outcome.metrics["accuracy"] <= 1.0

    scored = engine.classify_source(project, SOURCE, threshold=0.0)
    assert scored.points == 20 and scored.alleviated == 20
    with project.session() as session:
        statuses = dict(
            session.execute(
                select(Annotation.status, func.count()).group_by(Annotation.status)
            ).all()
        )
        assert statuses == {AnnotationStatus.IMPORTED: 240, AnnotationStatus.ALLEVIATE: 20}
        n_scores = session.scalar(select(func.count()).select_from(Score))
        ranks = session.scalar(select(func.count(func.distinct(Score.rank))))
        assert ranks == min(5, len(outcome.metrics["labels"])) and n_scores == 20 * ranks

    rescored = engine.classify_source(project, SOURCE, threshold=1.01 - 0.01)
    assert rescored.points == 20  # machine labels are re-scored, human ones never
    with project.session() as session:
        assert session.scalar(select(func.count()).select_from(Score)) == n_scores

    out = tmp_path / "out"
    out.mkdir()
    assert export_annotations(project, SOURCE, out / "a.csv") == 260
    table = read_annotations_csv(out / "a.csv")
    assert len(table) == 260
    new_rows = table[table["image"].str.startswith("demo_quadrat_02")]
    assert new_rows["machine_suggestion_1"].notna().any()
    assert export_cover(project, SOURCE, out / "c.csv") == 22
    cover = read_percent_cover_csv(out / "c.csv")
    label_columns = [
        c
        for c in cover.columns
        if c not in ("Image ID", "Image name", "Annotation status", "Points")
    ]
    np.testing.assert_allclose(cover[label_columns].sum(axis=1), 100.0, atol=0.01)
    assert export_labelset(project, SOURCE, out / "l.csv") == 5


def test_training_policy_waits_for_20_images(tmp_path: Path, survey: DemoSurvey) -> None:
    project = new_project(tmp_path, survey)
    rows = list(csv.reader(survey.annotations_csv.open()))
    keep = {f"demo_quadrat_{i:03d}.jpg" for i in range(1, 20)}  # 19 images
    small = tmp_path / "small.csv"
    with small.open("w", newline="") as handle:
        csv.writer(handle).writerows([rows[0]] + [r for r in rows[1:] if r[0] in keep])
    engine.import_annotations(project, SOURCE, small, survey.annotated_dir)
    extractor = create_extractor("texture")
    engine.extract_features(project, SOURCE, extractor)
    outcome = engine.train_source(project, SOURCE, extractor.key)
    assert not outcome.trained and "20" in outcome.message
    assert engine.train_source(project, SOURCE, extractor.key, kind="lr", force=True).trained


def test_extraction_resumes_after_a_crash(tmp_path: Path, survey: DemoSurvey) -> None:
    project = new_project(tmp_path, survey)
    engine.import_annotations(project, SOURCE, survey.annotations_csv, survey.annotated_dir)
    extractor = create_extractor("texture", batch_size=1)  # one image per network call
    real = extractor.extract
    calls = {"n": 0}

    def dying(patches: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt  # as if killed halfway
        return real(patches)

    extractor.extract = dying  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        engine.extract_features(project, SOURCE, extractor)
    with project.session() as session:
        assert session.scalar(select(func.count()).select_from(FeatureBlock)) == 5
    extractor.extract = real  # type: ignore[method-assign]
    summary = engine.extract_features(project, SOURCE, extractor)
    assert (summary.images_done, summary.images_skipped) == (15, 5)
    with project.session() as session:
        assert session.scalar(select(func.count()).select_from(FeatureBlock)) == 20
        total = session.scalar(select(func.sum(FeatureBlock.n_points)))
    assert total == 240


def _rewrite(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    rows = list(csv.reader(path.open()))
    rows = change(rows)
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)


@pytest.mark.parametrize(
    ("damage", "error", "match"),
    [
        (
            lambda r: (
                [r[0]] + [[*x[:4], "Kelp", *x[5:]] if i == 7 else x for i, x in enumerate(r[1:])]
            ),
            UnknownLabelError,
            "Kelp",
        ),
        (
            lambda r: (
                [r[0]] + [[*x[:2], "9999", *x[3:]] if i == 3 else x for i, x in enumerate(r[1:])]
            ),
            PointOutsideImageError,
            "line 5",
        ),
        (lambda r: [[c for j, c in enumerate(x) if j != 2] for x in r], CsvFormatError, "Row"),
        (
            lambda r: [*r, ["missing.jpg", "2024-01-01", "1", "1", "Sand", "x"]],
            ImageError,
            "missing.jpg",
        ),
    ],
    ids=["unknown-label", "point-outside", "no-row-column", "missing-image"],
)
def test_bad_csv_leaves_project_intact(
    tmp_path: Path,
    survey: DemoSurvey,
    damage,
    error: type[Exception],
    match: str,  # type: ignore[no-untyped-def]
) -> None:
    project = new_project(tmp_path, survey)
    _rewrite(survey.annotations_csv, damage)
    with pytest.raises(error, match=match):
        engine.import_annotations(project, SOURCE, survey.annotations_csv, survey.annotated_dir)
    assert counts(project) == (0, 0, 0)


def test_truncated_jpeg_is_refused(tmp_path: Path, survey: DemoSurvey) -> None:
    project = new_project(tmp_path, survey)
    victim = survey.annotated_dir / "demo_quadrat_007.jpg"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"demo_quadrat_007\.jpg"):
        engine.import_annotations(project, SOURCE, survey.annotations_csv, survey.annotated_dir)
    assert counts(project) == (0, 0, 0)


def test_duplicate_import_is_refused(tmp_path: Path, survey: DemoSurvey) -> None:
    project = new_project(tmp_path, survey)
    engine.import_annotations(project, SOURCE, survey.annotations_csv, survey.annotated_dir)
    before = counts(project)
    with pytest.raises(DuplicateImportError, match="already in source"):
        engine.import_annotations(project, SOURCE, survey.annotations_csv, survey.annotated_dir)
    assert counts(project) == before


def test_import_needs_a_labelset(tmp_path: Path, survey: DemoSurvey) -> None:
    project = Project.create(tmp_path / "p.db")
    engine.create_source(project, SOURCE)
    with pytest.raises(ProjectError, match="labelset"):
        engine.import_annotations(project, SOURCE, survey.annotations_csv, survey.annotated_dir)


def test_worse_classifier_is_rejected(tmp_path: Path, survey: DemoSurvey) -> None:
    project = new_project(tmp_path, survey)
    engine.import_annotations(project, SOURCE, survey.annotations_csv, survey.annotated_dir)
    extractor = create_extractor("texture")
    engine.extract_features(project, SOURCE, extractor)
    first = engine.train_source(project, SOURCE, extractor.key, kind="lr")
    assert first.accepted and first.accuracy is not None
    with project.session() as session:  # pretend the first one was nearly perfect
        record = session.get(ClassifierRecord, first.classifier_id)
        assert record is not None
        record.accuracy = min(1.0, first.accuracy / 1.005)
    second = engine.train_source(project, SOURCE, extractor.key, kind="lr", force=True)
    assert second.trained and not second.accepted and "rejected" in second.message
    with project.session() as session:
        source = project.source(session, SOURCE)
        latest = engine.latest_classifier(session, source)
        assert latest is not None and latest.id == first.classifier_id


def test_batching_across_images_keeps_features(tmp_path: Path, survey: DemoSurvey) -> None:
    """Patches of many images in one network call give each image its own features."""
    stored = []
    for batch_size in (1, 64):  # one image per call, then all 20 images in one call
        project = Project.create(tmp_path / f"b{batch_size}.db")
        engine.create_source(project, SOURCE, labelset=survey.labelset_csv)
        engine.import_annotations(project, SOURCE, survey.annotations_csv, survey.annotated_dir)
        extractor = create_extractor("texture", batch_size=batch_size)
        engine.extract_features(project, SOURCE, extractor, dtype="float32")
        with project.session() as session:
            stored.append(load_features(session, extractor.key))
    np.testing.assert_array_equal(stored[0].point_ids, stored[1].point_ids)
    np.testing.assert_allclose(stored[0].features, stored[1].features, rtol=1e-5, atol=1e-6)
