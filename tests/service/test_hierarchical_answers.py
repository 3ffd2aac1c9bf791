"""The service's hierarchical answers: off by default (CoralNet's result exactly), stored per
point when the server is configured with a threshold, and a tree that leaves out a label
fails the job with the label's name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from quadrat.service import accounts
from quadrat.service.jsonapi import image_result
from quadrat.service.settings import ServiceSettings
from quadrat.service.worker import run_job
from quadrat.store import jobs
from quadrat.store.project import Store
from quadrat.store.schema import DeployImageStatus
from quadrat.workflow import deploy
from tests.service.conftest import TrainedProject


@dataclass(frozen=True)
class AnsweringSettings(ServiceSettings):
    """The server settings with the hierarchical option (docs/hierarchy.md)."""

    hierarchical_threshold: float | None = None
    hierarchy: str | None = None


@pytest.fixture
def store(trained_project: TrainedProject) -> Iterator[Store]:
    opened = Store.open(trained_project.db)
    yield opened
    opened.close()
    deploy.forget_classifiers()


def run(store: Store, project: TrainedProject, folder: Path, **options: object) -> list:
    """One job of two images of the survey; the stored images."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.jpg").write_bytes(project.images[0].read_bytes())
    user = accounts.add_user(store, folder.name, "a long enough password", role="viewer")
    images = [("a.jpg", [(10, 10), (100, 150), (200, 300)]), ("a.jpg", [(50, 60)])]
    with store.session() as session:
        job_id = jobs.create_job(session, user, project.classifier_id, images)
    settings = AnsweringSettings(
        database=str(project.db),
        image_folder=folder,
        **options,  # type: ignore[arg-type]
    )
    assert run_job(store, settings, job_id) is True
    with store.session() as session:
        return jobs.job_images(session, job_id)


def test_default_result_is_coralnets(
    store: Store, trained_project: TrainedProject, tmp_path: Path
) -> None:
    rows = run(store, trained_project, tmp_path)
    assert [r.status for r in rows] == [DeployImageStatus.DONE] * 2
    for row in rows:
        assert all(isinstance(point, list) for point in row.result)  # classifications only


def test_answers_are_stored_and_the_api_result_is_unchanged(
    store: Store, trained_project: TrainedProject, tmp_path: Path
) -> None:
    plain = run(store, trained_project, tmp_path / "plain")
    answered = run(store, trained_project, tmp_path / "answered", hierarchical_threshold=0.6)
    groups = {"Algae", "Hard coral", "Soft Substrate"}
    codes = {code for _, _, code in trained_project.labels}
    for before, after in zip(plain, answered, strict=True):
        assert after.status == DeployImageStatus.DONE
        for ranked, point in zip(before.result, after.result, strict=True):
            assert point["classifications"] == ranked
            answer = point["answer"]
            assert set(answer) == {"label", "level", "score"}
            assert answer["level"] in {"label", "group", "none"}
            if answer["level"] == "label":
                assert answer["label"] == ranked[0]["label_code"] in codes
                assert answer["score"] == pytest.approx(ranked[0]["score"])
            elif answer["level"] == "group":
                assert answer["label"] in groups and answer["score"] >= 0.6
            else:
                assert answer["label"] is None
        # Without the option the deploy API's points are CoralNet's exactly; with it they
        # keep CoralNet's keys and values (an extra key may be added, never one changed).
        plain_points = image_result(before)["attributes"]["points"]
        assert all(set(p) == {"row", "column", "classifications"} for p in plain_points)
        for with_answer, coralnet in zip(
            image_result(after)["attributes"]["points"], plain_points, strict=True
        ):
            assert {k: with_answer[k] for k in coralnet} == coralnet


def test_a_tree_without_a_label_fails_the_job_naming_it(
    store: Store, trained_project: TrainedProject, tmp_path: Path
) -> None:
    tree = tmp_path / "tree.json"
    labels = [{"id": 1, "name": "Algae"}, {"id": 2, "name": "CCA", "parent_id": 1}]
    tree.write_text(json.dumps({"name": "partial", "labels": labels}), encoding="utf-8")
    rows = run(
        store, trained_project, tmp_path / "imgs", hierarchical_threshold=0.6, hierarchy=str(tree)
    )
    assert [r.status for r in rows] == [DeployImageStatus.FAILED] * 2
    assert rows[0].error is not None and "has no place in the label tree" in rows[0].error
    assert "Porit" in rows[0].error or "Sand" in rows[0].error
