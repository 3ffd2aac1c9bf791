"""One source's workflow end to end (quadrat.workflow), and what bad input does (and does
not) change."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from quadrat import Project, Source
from quadrat.demo import DemoSurvey
from quadrat.errors import (
    CsvFormatError,
    DuplicateImportError,
    ImageError,
    PointOutsideImageError,
    StateError,
    UnknownLabelError,
)
from quadrat.extractors import create_extractor
from quadrat.io.coralnet import read_annotations_csv, read_percent_cover_csv
from quadrat.store import queries
from quadrat.store.features import load_features

SOURCE = "reef"


def new_source(tmp_path: Path, survey: DemoSurvey) -> Source:
    project = Project.create(tmp_path / "p.db")
    return project.create_source(SOURCE, labelset=survey.labelset_csv)


def counts(src: Source) -> tuple[int, int, int]:
    c = src.counts()
    return c["images"], c["points"], c["annotations"]


def blocks(src: Source, key: str) -> dict[int, int]:
    with src.project.store.session() as session:
        return queries.stored_block_sizes(session, src.id, key)


def test_whole_workflow(tmp_path: Path, survey: DemoSurvey) -> None:
    src = new_source(tmp_path, survey)
    summary = src.import_annotations(survey.annotations_csv, survey.annotated_dir)
    assert (summary.images, summary.points, summary.annotations) == (20, 240, 240)
    assert src.import_images([survey.new_dir]).images == 2
    assert src.generate_points("m_10", seed=1) == 20
    assert src.generate_points("m_10", seed=1) == 0  # only pointless images

    extractor = create_extractor("texture")
    ext = src.extract(extractor)
    assert (ext.images_done, ext.points) == (22, 260)
    again = src.extract(extractor)
    assert (again.images_done, again.images_skipped) == (0, 22)

    progress = src.policy_progress()
    assert progress.due and progress.confirmed_images == 20 and progress.next_at == 20
    outcome = src.train(extractor.key, kind="lr")
    assert outcome.trained and outcome.accepted
    after = src.policy_progress()
    assert not after.due and after.next_at > 20 and after.message in src.train().message
    assert 0.5 < outcome.metrics["accuracy"] <= 1.0

    scored = src.classify(threshold=0.0)
    assert scored.points == 20 and scored.alleviated == 20
    c = src.counts()
    assert (c["imported"], c["alleviate"], c["machine"], c["confirmed"]) == (240, 20, 0, 0)
    table = src.annotations()
    ranks = min(5, len(outcome.metrics["labels"]))
    assert f"suggestion_{ranks}" in table and f"suggestion_{ranks + 1}" not in table
    scored_rows = table[f"suggestion_{ranks}"].notna()
    assert scored_rows.sum() == 20 and set(table.loc[scored_rows, "status"]) == {"alleviate"}

    rescored = src.classify(threshold=1.01 - 0.01)
    assert rescored.points == 20  # machine labels are re-scored, human ones never
    assert src.annotations()[f"suggestion_{ranks}"].notna().sum() == 20
    assert src.counts()["imported"] == 240

    out = tmp_path / "out"
    out.mkdir()
    assert src.export_annotations(out / "a.csv") == 260
    table = read_annotations_csv(out / "a.csv")
    assert len(table) == 260
    new_rows = table[table["image"].str.startswith("demo_quadrat_02")]
    assert new_rows["machine_suggestion_1"].notna().any()
    assert src.export_cover(out / "c.csv") == 22
    cover = read_percent_cover_csv(out / "c.csv")
    label_columns = [
        c
        for c in cover.columns
        if c not in ("Image ID", "Image name", "Annotation status", "Points")
    ]
    np.testing.assert_allclose(cover[label_columns].sum(axis=1), 100.0, atol=0.01)
    assert src.export_labelset(out / "l.csv") == 5


def test_training_policy_waits_for_20_images(tmp_path: Path, survey: DemoSurvey) -> None:
    src = new_source(tmp_path, survey)
    rows = list(csv.reader(survey.annotations_csv.open()))
    keep = {f"demo_quadrat_{i:03d}.jpg" for i in range(1, 20)}  # 19 images
    small = tmp_path / "small.csv"
    with small.open("w", newline="") as handle:
        csv.writer(handle).writerows([rows[0]] + [r for r in rows[1:] if r[0] in keep])
    src.import_annotations(small, survey.annotated_dir)
    extractor = create_extractor("texture")
    src.extract(extractor)
    outcome = src.train(extractor.key)
    assert not outcome.trained and "20" in outcome.message
    assert src.train(extractor.key, kind="lr", force=True).trained


def test_extraction_resumes_after_a_crash(tmp_path: Path, survey: DemoSurvey) -> None:
    src = new_source(tmp_path, survey)
    src.import_annotations(survey.annotations_csv, survey.annotated_dir)
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
        src.extract(extractor)
    assert len(blocks(src, extractor.key)) == 5
    extractor.extract = real  # type: ignore[method-assign]
    summary = src.extract(extractor)
    assert (summary.images_done, summary.images_skipped) == (15, 5)
    stored = blocks(src, extractor.key)
    assert len(stored) == 20 and sum(stored.values()) == 240


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
    src = new_source(tmp_path, survey)
    _rewrite(survey.annotations_csv, damage)
    with pytest.raises(error, match=match):
        src.import_annotations(survey.annotations_csv, survey.annotated_dir)
    assert counts(src) == (0, 0, 0)


def test_truncated_jpeg_is_refused(tmp_path: Path, survey: DemoSurvey) -> None:
    src = new_source(tmp_path, survey)
    victim = survey.annotated_dir / "demo_quadrat_007.jpg"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"demo_quadrat_007\.jpg"):
        src.import_annotations(survey.annotations_csv, survey.annotated_dir)
    assert counts(src) == (0, 0, 0)


def test_duplicate_import_is_refused(tmp_path: Path, survey: DemoSurvey) -> None:
    src = new_source(tmp_path, survey)
    src.import_annotations(survey.annotations_csv, survey.annotated_dir)
    before = counts(src)
    with pytest.raises(DuplicateImportError, match="already in source"):
        src.import_annotations(survey.annotations_csv, survey.annotated_dir)
    assert counts(src) == before


def test_import_needs_a_labelset(tmp_path: Path, survey: DemoSurvey) -> None:
    src = Project.create(tmp_path / "p.db").create_source(SOURCE)
    with pytest.raises(StateError, match="labelset"):
        src.import_annotations(survey.annotations_csv, survey.annotated_dir)


def test_worse_classifier_is_rejected(tmp_path: Path, survey: DemoSurvey) -> None:
    src = new_source(tmp_path, survey)
    src.import_annotations(survey.annotations_csv, survey.annotated_dir)
    extractor = create_extractor("texture")
    src.extract(extractor)
    first = src.train(extractor.key, kind="lr")
    assert first.accepted and first.accuracy is not None
    from quadrat.classifiers.policy import TrainingPolicy

    # Demand more than any classifier could give: twice the first one's accuracy.
    assert first.accuracy > 0.5
    second = src.train(
        extractor.key, kind="lr", force=True, policy=TrainingPolicy(accept_factor=2.0)
    )
    assert second.trained and not second.accepted and "rejected" in second.message
    assert src.active_classifier() is not None
    assert src.active_classifier().id == first.classifier_id  # type: ignore[union-attr]
    history = src.classifiers()
    assert [c.id for c in history] == [first.classifier_id, second.classifier_id]
    assert [c.accepted for c in history] == [True, False]


def test_batching_across_images_keeps_features(tmp_path: Path, survey: DemoSurvey) -> None:
    """Patches of many images in one network call give each image its own features."""
    stored = []
    for batch_size in (1, 64):  # one image per call, then all 20 images in one call
        project = Project.create(tmp_path / f"b{batch_size}.db")
        src = project.create_source(SOURCE, labelset=survey.labelset_csv)
        src.import_annotations(survey.annotations_csv, survey.annotated_dir)
        extractor = create_extractor("texture", batch_size=batch_size)
        src.extract(extractor, dtype="float32")
        with project.store.session() as session:
            stored.append(load_features(session, extractor.key))
    np.testing.assert_array_equal(stored[0].point_ids, stored[1].point_ids)
    np.testing.assert_allclose(stored[0].features, stored[1].features, rtol=1e-5, atol=1e-6)
