"""The image browser's filters and orders on PostgreSQL (JSON metadata, semi-joins, window
counts): the same answers as on SQLite, from store.browse directly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def _pages(store: Any, **kwargs: Any) -> list[str]:
    from quadrat.store import browse

    with store.session() as session:
        where = browse.ImageFilter(
            **{k: kwargs.pop(k) for k in list(kwargs) if k not in ("status", "sort")}
        )
        total, rows = browse.image_page(session, 1, where=where, **kwargs)
    assert total == len(rows)
    return [r.name for r in rows]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_filters_and_orders(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    import quadrat
    from quadrat.demo import make_demo_survey
    from quadrat.store.schema import Image

    survey = make_demo_survey(
        tmp_path / "survey", n_annotated=4, n_new=1, points_per_image=5, size=(120, 160)
    )
    location = (
        str(tmp_path / "p.db") if backend == "sqlite" else request.getfixturevalue("postgres_url")
    )
    with quadrat.Project.create(location) as project:
        reef = project.create_source("reef", labelset=survey.labelset_csv, point_spec="m_5")
        reef.import_annotations(survey.annotations_csv, survey.annotated_dir)
        reef.import_images([survey.new_dir])
        reef.generate_points(seed=0)
        store = project.store
        with store.session() as session:
            for image in session.query(Image).order_by(Image.name).limit(2):
                image.metadata_ = {**image.metadata_, "Aux1": "North"}
        names = _pages(store)
        assert names == sorted(names) and len(names) == 5
        by_date = _pages(store, sort="date")
        assert by_date[-1] == "demo_quadrat_005.jpg"  # the new image has no date
        assert _pages(store, site="North") == names[:2]
        assert _pages(store, date_from="2024-03-02", date_to="2024-03-03") == names[1:3]
        assert _pages(store, status="unannotated") == ["demo_quadrat_005.jpg"]
        assert _pages(store, status="todo", sort="date") == ["demo_quadrat_005.jpg"]
        assert _pages(store, max_confidence=0.5) == []  # no classifier yet
        labels = reef.labelset()
        with store.session() as session:
            from quadrat.store import portable

            label_ids = [row.id for row in portable.label_rows(session, 1, by_code=True)]
        found = set()
        for label_id in label_ids:
            found |= set(_pages(store, label_id=label_id, sort="uncertainty"))
        assert found == set(names[:4]) and len(labels) == len(label_ids)
