"""The hierarchical-answer setting: checked on construction, and the deploy result carries
an ``answer`` member only when the worker stored one (CoralNet's shape otherwise)."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")

from quadrat.errors import InputError
from quadrat.service.jsonapi import image_result
from quadrat.service.settings import ServiceSettings
from quadrat.store.jobs import JobImage
from quadrat.store.schema import DeployImageStatus


@pytest.mark.parametrize("bad", [-0.1, 1.5, "0.5", True])
def test_a_threshold_outside_0_1_is_refused(bad: object) -> None:
    with pytest.raises(InputError, match="hierarchical_threshold"):
        ServiceSettings(database="x.db", hierarchical_threshold=bad)  # type: ignore[arg-type]


def test_answer_member_only_when_stored() -> None:
    assert ServiceSettings(database="x.db", hierarchical_threshold=0.6).hierarchy is None
    scores = [{"label_id": 1, "label_code": "A", "label_name": "a", "score": 0.9}]
    answer = {"label": "Hard coral", "level": 1, "score": 0.8}
    image = JobImage(
        id=1,
        position=0,
        url="u",
        points=[(1, 2), (3, 4), (5, 6)],
        status=DeployImageStatus.DONE,
        result=[scores, {"classifications": scores}, {"classifications": scores, "answer": answer}],
        error=None,
    )
    points = image_result(image)["attributes"]["points"]
    assert [set(p) for p in points[:2]] == [{"row", "column", "classifications"}] * 2
    assert points[2]["answer"] == answer and points[2]["classifications"] == scores
