"""The store's reads and writes without the workflow: plain Python in, plain Python out."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from quadrat.errors import ConflictError, NotFoundError
from quadrat.store import queries, writes
from quadrat.store.features import record_extractor
from quadrat.store.project import Store


def test_a_source_from_labels_to_machine_labels(tmp_path: Path) -> None:
    store = Store.create(tmp_path / "p.db")
    with store.session() as session:
        source_id = writes.add_source(session, "reef", point_spec="m_2")
        labels = [("Sand", "Sand", None, 1), ("Coral", "Coral", "Hard coral", 2)]
        assert writes.add_labels(session, source_id, labels) == 2
        assert writes.add_labels(session, source_id, labels) == 0  # known codes are skipped
        images = []
        for name in ("b.jpg", "a.jpg"):
            image_id = writes.add_image(
                session, source_id, name=name, path=f"/x/{name}", sha256="0" * 64,
                width=10, height=10,
            )  # fmt: skip
            images.append((image_id, writes.add_points(session, image_id, [(1, 1), (2, 2)], "m_2")))
        codes = queries.label_ids(session, source_id)
        (b, b_points), (a, a_points) = images
        when = datetime(2024, 1, 1, tzinfo=UTC)
        writes.add_imported_annotations(
            session, [(p, codes["Sand"], "diver", when) for p in b_points]
        )
        writes.add_imported_annotations(session, [(a_points[0], codes["Coral"], None, None)])
    with store.session() as session, pytest.raises(ConflictError, match="reef"):
        writes.add_source(session, "reef")
    with store.session() as session:
        assert queries.get_source(session, "reef").point_spec == "m_2"
        with pytest.raises(NotFoundError, match="sources: reef"):
            queries.get_source(session, "lagoon")
        assert queries.confirmed_image_ids(session, source_id) == [b]
        assert queries.point_counts(session, source_id) == {b: 2, a: 2}
        counts = queries.counts(session, source_id)
        assert (counts["images"], counts["points"], counts["imported"]) == (2, 4, 3)
        assert (counts["unannotated"], counts["confirmed_images"]) == (1, 1)
        assert queries.human_labelled_point_ids(session, source_id) == {*b_points, a_points[0]}
        table = queries.annotation_table(session, source_id)
        assert list(table["image"]) == ["a.jpg", "a.jpg", "b.jpg", "b.jpg"]  # by name
        assert list(table["label"].fillna("-")) == ["Coral", "-", "Sand", "Sand"]
        assert queries.labelset_table(session, source_id)["short_code"].tolist() == [
            "Coral",
            "Sand",
        ]

    # Machine labels for the one unlabelled point, under a classifier.
    with store.session() as session:
        record_extractor(session, "tex", "texture", 2, {})
    with store.session() as session:
        classifier_id = writes.add_classifier(
            session, source_id=source_id, extractor_key="tex", kind="lr", n_images=1,
            n_train=2, n_val=1, accuracy=None, accepted=True, train_seconds=0.1, model=b"m",
        )  # fmt: skip
        top = np.array([[codes["Coral"], codes["Sand"]]])
        writes.replace_machine_labels(
            session, classifier_id, [a_points[1]], top, np.array([[0.9, 0.1]]),
            np.array([True]), when,
        )  # fmt: skip
    with store.session() as session:
        counts = queries.counts(session, source_id)
        assert (counts["alleviate"], counts["unannotated"]) == (1, 0)
        table = queries.annotation_table(session, source_id)
        assert table["suggestion_1"].tolist()[1] == "Coral"
        assert table["confidence_2"].tolist()[1] == pytest.approx(0.1)
        latest = queries.latest_classifier(session, source_id)
        assert latest is not None and latest.id == classifier_id and latest.accuracy is None
        assert queries.classifier_model(session, classifier_id) == b"m"
        with pytest.raises(NotFoundError):
            queries.get_classifier(session, source_id, classifier_id + 1)
