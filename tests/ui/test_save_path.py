"""The keypress save path: the store's reads and writes of one point's label (prebuilt
statements), and confirmations that only nudge the policy check (debounced, never in the
request)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quadrat.errors import ConflictError, InputError, NotFoundError
from quadrat.service.ui import training
from quadrat.service.ui.training import Trainer
from quadrat.store import annotate


@pytest.fixture
def project(database_url: str, tmp_path: Path) -> Iterator[Any]:
    """Two sources, on SQLite and PostgreSQL: 'reef' (3 images of 4 points) and 'other'."""
    import numpy as np
    from PIL import Image

    import quadrat

    root = tmp_path
    labels = root / "labels.csv"
    labels.write_text("Name,Short Code,Functional Group\nSand,SAND,Other\nCoral,CORAL,Hard\n")
    folder = root / "images"
    folder.mkdir()
    for i in range(3):
        pixels = np.random.default_rng(i).integers(0, 255, (60, 80, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.jpg")
    with quadrat.Project.create(database_url) as made:
        reef = made.create_source("reef", labelset=labels, point_spec="m_4")
        made.create_source("other", labelset=labels, point_spec="m_4")
        reef.import_images([folder])
        reef.generate_points(seed=0)
    opened = quadrat.Project.open(database_url)
    yield opened.store
    opened.close()


def labels_of(store: Any, source: str) -> list[int]:
    from quadrat.store import browse, portable

    with store.session() as s:
        source_id = next(r.id for r in browse.list_sources(s) if r.name == source)
        return [r.id for r in portable.label_rows(s, source_id, by_code=True)]


def person(label_id: int, who: str = "anna") -> annotate.AnnotationState:
    return annotate.AnnotationState(label_id, "confirmed", who, "2026-12-03T12:00:00+00:00", None)


def test_a_label_is_inserted_updated_undone_and_checked(project: Any) -> None:
    store = project
    sand, coral = labels_of(store, "reef")
    with store.session() as s:
        points = annotate.image_points(s, 1)
        assert [p.number for p in points] == [1, 2, 3, 4] and points[0].label_id is None
        first = points[0].id
        assert annotate.point_source(s, first) == (1, 1)
        assert annotate.annotation_state(s, first) is None
        annotate.write_annotation(s, first, person(sand))  # a new row
    with store.session() as s:
        assert annotate.annotation_state(s, first) == person(sand)
        annotate.write_annotation(s, first, person(coral, "bob"))  # the same row, changed
    with store.session() as s:
        row = annotate.point_row(s, first)
        assert (row.label_id, row.status, row.annotator) == (coral, "confirmed", "bob")
        assert row.annotated_at is not None and row.annotated_at.tzinfo is not None
        with pytest.raises(ConflictError):  # an undo of what is no longer there
            annotate.replace_if_current(s, first, person(sand), None)
        annotate.replace_if_current(s, first, person(coral, "bob"), None)
    with store.session() as s:
        assert annotate.annotation_state(s, first) is None
        assert annotate.point_row(s, first).label_id is None


def test_a_label_of_another_source_or_a_missing_point_is_refused(project: Any) -> None:
    store = project
    foreign = labels_of(store, "other")[0]
    with store.session() as s:
        point = annotate.image_points(s, 2)[0].id
    with pytest.raises(InputError, match="not in this point's labelset"), store.session() as s:
        annotate.write_annotation(s, point, person(foreign))
    with pytest.raises(NotFoundError, match="no point 999999"), store.session() as s:
        annotate.write_annotation(s, 999999, person(foreign))
    with pytest.raises(NotFoundError), store.session() as s:
        annotate.point_row(s, 999999)
    with store.session() as s:
        assert annotate.annotation_state(s, point) is None  # nothing written


def test_point_rows_show_the_latest_classifiers_top_five_in_rank_order(project: Any) -> None:
    from quadrat.store.schema import Score

    store = project
    sand, coral = labels_of(store, "reef")
    with store.session() as s:
        point = annotate.image_points(s, 3)[1].id
        cid = _classifier(s)
        s.add_all(
            [
                Score(point_id=point, classifier_id=cid, rank=1, label_id=coral, score=0.3),
                Score(point_id=point, classifier_id=cid, rank=0, label_id=sand, score=0.7),
            ]
        )
    with store.session() as s:
        row = annotate.point_row(s, point)
        assert [(x.label_id, x.score) for x in row.suggestions] == [(sand, 0.7), (coral, 0.3)]
        assert annotate.image_points(s, 3)[1] == row


def _classifier(session: Any) -> int:
    from quadrat.store import writes
    from quadrat.store.schema import ExtractorRecord

    session.add(ExtractorRecord(key="k", name="k", feature_dim=1, config={}))
    session.flush()
    return int(
        writes.add_classifier(
            session,
            source_id=1,
            extractor_key="k",
            kind="lr",
            hyperparameters={},
            metrics={},
            n_images=0,
            n_train=0,
            n_val=0,
            accuracy=None,
            accepted=True,
            train_seconds=0.0,
            model=b"{}",
        )
    )


def test_confirmations_only_nudge_one_debounced_policy_check(
    project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[int] = []

    def policy_due(self: Trainer, source_id: int) -> tuple[bool, str]:
        checks.append(source_id)
        return False, "3 confirmed images; the next classifier is trained at 20"

    monkeypatch.setattr(Trainer, "_policy_due", policy_due)
    monkeypatch.setattr(training, "CHECK_QUIET_SECONDS", 0.3)
    trainer = Trainer(project)
    try:
        started = time.perf_counter()
        for _ in range(20):
            trainer.nudge(1)
        assert time.perf_counter() - started < 1.0  # no database, no check in the request
        assert checks == [] and trainer.status(1).state == "queued"
        assert trainer.wait_idle(20)
        assert checks == [1]  # twenty confirmations, one check once they paused
        shown = trainer.status(1)
        assert shown.state == "done" and not shown.trained
        assert "next classifier is trained at 20" in str(shown.message)
    finally:
        trainer.close()
