"""Retraining and points from the page, over a real server: CoralNet's policy after
confirmations trains in the background, "Train now" (admins), and generating the points
of an image that has none (annotators). Role checks and CSRF as everywhere in /ui/api."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import UiServer
from tests.ui.test_api import detail, signed_in

requests = pytest.importorskip("requests")


def wait_for_training(server: UiServer, session: Any, timeout: float = 120) -> dict[str, Any]:
    """The source's training status once it is neither queued nor running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = session.get(server.url + "/ui/api/sources/1/training").json()["training"]
        if status["state"] not in ("queued", "running"):
            return dict(status)
        time.sleep(0.2)
    raise AssertionError("the background training did not finish")


def history(server: UiServer, session: Any) -> list[dict[str, Any]]:
    [source] = session.get(server.url + "/ui/api/sources").json()["sources"]
    return list(source["classifiers"])


def test_confirmations_retrain_by_coralnets_policy(ui_server: UiServer) -> None:
    session, csrf = signed_in(ui_server, "anna")
    before = history(ui_server, session)
    assert [c["n_images"] for c in before] == [20]
    assert before[0]["verdict"].startswith("accepted: first classifier")
    # The three new images have machine suggestions; confirming every point of one makes
    # 21 confirmed images (not due: the next classifier is at 22), of two, 22.
    page = session.get(ui_server.url + "/ui/api/sources/1/images?status=machine").json()
    new = [image["id"] for image in page["images"]]
    assert len(new) == 3
    labels = session.get(ui_server.url + "/ui/api/sources/1/labels").json()["labels"]

    def confirm_all(image_id: int) -> None:
        points = session.get(f"{ui_server.url}/ui/api/images/{image_id}").json()["points"]
        reply = session.post(
            ui_server.url + "/ui/api/sources/1/relabel",
            json={"point_ids": [p["id"] for p in points], "label_id": labels[0]["id"]},
            headers={"X-CSRF-Token": csrf},
        )
        assert reply.status_code == 200, reply.text  # answered before any training

    confirm_all(new[0])
    status = wait_for_training(ui_server, session)
    assert status["state"] == "done" and not status["trained"], status
    assert "21 confirmed images" in status["message"] and "22" in status["message"]
    assert len(history(ui_server, session)) == 1
    # A point added by hand has no features yet: the training extracts them first.
    reply = session.post(
        f"{ui_server.url}/ui/api/images/{new[1]}/points",
        json={"row": 5, "column": 7},
        headers={"X-CSRF-Token": csrf},
    )
    assert reply.status_code == 200, reply.text
    confirm_all(new[1])
    status = wait_for_training(ui_server, session)
    assert status["state"] == "done" and status["trained"] and not status["forced"], status
    after = history(ui_server, session)
    assert [c["n_images"] for c in after] == [20, 22]
    verdict = after[-1]["verdict"]
    assert verdict.split(":")[0] == ("accepted" if after[-1]["accepted"] else "rejected")
    assert f"of classifier {before[0]['id']}" in verdict and "needs at least" in verdict
    assert status["classifier_id"] == after[-1]["id"]


def test_train_now_is_for_admins_and_runs_in_the_background(ui_server: UiServer) -> None:
    url = ui_server.url + "/ui/api/sources/1/train"
    assert requests.post(url).status_code == 401
    for name in ("victor", "anna"):
        session, csrf = signed_in(ui_server, name)
        reply = session.post(url, headers={"X-CSRF-Token": csrf})
        assert reply.status_code == 403, name
        assert "admin" in detail(reply)
        can = session.get(ui_server.url + "/ui/api/sources/1/training").json()["can_train"]
        assert can is False
    admin, csrf = signed_in(ui_server, "ada")
    assert admin.post(url).status_code == 403  # no CSRF header
    assert admin.get(ui_server.url + "/ui/api/sources/1/training").json()["can_train"] is True
    wait_for_training(ui_server, admin)
    count = len(history(ui_server, admin))
    reply = admin.post(url, headers={"X-CSRF-Token": csrf})
    assert reply.status_code == 202, reply.text
    assert reply.json()["training"]["state"] in ("queued", "running", "done")
    status = wait_for_training(ui_server, admin)
    assert status["state"] == "done" and status["trained"] and status["forced"], status
    assert status["requested_by"] == "ada"
    assert len(history(ui_server, admin)) == count + 1
    assert (
        admin.post(
            ui_server.url + "/ui/api/sources/99/train", headers={"X-CSRF-Token": csrf}
        ).status_code
        == 404
    )


def _image_without_points(server: UiServer, tmp_path: Path) -> int:
    import numpy as np
    from PIL import Image

    from quadrat.workflow.project import Project

    path = tmp_path / "fresh_quadrat.jpg"
    pixels = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    Project(server.store).source("reef").import_images([path])
    session, _ = signed_in(server, "anna")
    page = session.get(server.url + "/ui/api/sources/1/images?status=unannotated").json()
    [image] = [i for i in page["images"] if i["name"] == "fresh_quadrat.jpg"]
    assert image["points"] == 0
    return int(image["id"])


def test_generate_points_for_an_image_without_points(ui_server: UiServer, tmp_path: Path) -> None:
    image_id = _image_without_points(ui_server, tmp_path)
    url = f"{ui_server.url}/ui/api/images/{image_id}/generate-points"
    assert requests.post(url).status_code == 401
    viewer, viewer_csrf = signed_in(ui_server, "victor")
    assert viewer.post(url, headers={"X-CSRF-Token": viewer_csrf}).status_code == 403
    session, csrf = signed_in(ui_server, "anna")
    assert session.post(url).status_code == 403  # no CSRF header
    # The source's annotation area holds (the middle half of the 400x300 image).
    from quadrat.workflow.project import Project

    reef = Project(ui_server.store).source("reef")
    reef.set_annotation_area("25;75;25;75")
    try:
        reply = session.post(url, headers={"X-CSRF-Token": csrf})
    finally:
        reef.set_annotation_area(None)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["spec"] == "m_12" and len(body["points"]) == 12
    assert [p["number"] for p in body["points"]] == list(range(1, 13))
    assert all(74 <= p["row"] <= 224 and 99 <= p["column"] <= 299 for p in body["points"])
    shown = session.get(f"{ui_server.url}/ui/api/images/{image_id}").json()["points"]
    assert [(p["row"], p["column"]) for p in shown] == [
        (p["row"], p["column"]) for p in body["points"]
    ]
    # In the background: their features, then the active classifier's suggestions.
    assert body["suggesting"] is True
    status = wait_for_training(ui_server, session)
    assert status["state"] == "done" and status["suggest"] and status["reclassified"], status
    shown = session.get(f"{ui_server.url}/ui/api/images/{image_id}").json()["points"]
    assert all(p["status"] in ("machine", "alleviate") and p["suggestions"] for p in shown)
    again = session.post(url, headers={"X-CSRF-Token": csrf})
    assert again.status_code == 409 and "points already" in detail(again)
