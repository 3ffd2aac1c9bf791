"""Issue 15 in the UI, over a real server: the review grid ordered by similarity to a
chosen patch, the points to label next, and cover with its interval. Role checks as
everywhere in /ui/api: viewers read, "label next" is for annotators, anonymous gets 401."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui.conftest import UiServer
from tests.ui.test_api import detail, signed_in

requests = pytest.importorskip("requests")


def _label_with_most_points(server: UiServer, session: Any) -> tuple[int, list[dict[str, Any]]]:
    labels = session.get(server.url + "/ui/api/sources/1/labels").json()["labels"]
    best: tuple[int, list[dict[str, Any]]] = (0, [])
    for label in labels:
        page = session.get(
            server.url + f"/ui/api/sources/1/review?label_id={label['id']}&sort=image"
        ).json()
        if len(page["points"]) > len(best[1]):
            best = (label["id"], page["points"])
    return best


def test_review_ordered_by_similarity(ui_server: UiServer) -> None:
    import quadrat

    viewer, _ = signed_in(ui_server, "victor")  # a viewer may read the grid
    label_id, points = _label_with_most_points(ui_server, viewer)
    assert len(points) >= 10
    chosen = points[len(points) // 2]["id"]
    url = ui_server.url + f"/ui/api/sources/1/review?label_id={label_id}&order=similar"
    reply = viewer.get(f"{url}&point={chosen}")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["order"] == "similar" and body["point"] == chosen
    assert body["total"] == len(points)
    got = [p["id"] for p in body["points"]]
    assert sorted(got) == sorted(p["id"] for p in points)  # the same patches, reordered
    assert got[0] == chosen and body["points"][0]["distance"] == 0.0
    distances = [p["distance"] for p in body["points"]]
    assert distances == sorted(distances) and distances[1] > 0
    # The order is the library's nearest neighbours of the chosen patch, within the label.
    near = quadrat.Project(ui_server.store).source("reef").similar_points(chosen, k=10_000)
    ours = set(got)
    expected = [int(i) for i in near["point_id"] if int(i) in ours]
    assert got[1:] == expected
    assert got != [p["id"] for p in points]  # not the order by image it started from
    # The nearest neighbour overall of the chosen point, if it has this label, comes first.
    if int(near["point_id"].iloc[0]) in ours:
        assert got[1] == int(near["point_id"].iloc[0])

    assert viewer.get(url).status_code == 400  # no point chosen
    assert viewer.get(f"{url.replace('similar', 'sideways')}&point={chosen}").status_code == 400
    assert viewer.get(f"{url}&point=999999").status_code == 404
    assert requests.get(f"{url}&point={chosen}").status_code == 401  # anonymous


def test_label_next_is_suggests_rows_for_annotators(ui_server: UiServer) -> None:
    anna, _ = signed_in(ui_server, "anna")
    url = ui_server.url + "/ui/api/sources/1/suggest?n=5"
    reply = anna.get(url)
    assert reply.status_code == 200, reply.text
    rows = reply.json()["points"]
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    assert len({r["point_id"] for r in rows}) == 5
    for row in rows:
        assert {"image", "point", "top_label", "top_score", "margin", "score"} <= set(row)
        image = anna.get(f"{ui_server.url}/ui/api/images/{row['image_id']}").json()
        [point] = [p for p in image["points"] if p["id"] == row["point_id"]]
        assert point["number"] == row["point"]
        assert point["status"] not in ("confirmed", "imported")  # a person labelled none
    assert anna.get(f"{url}&strategy=entropy").status_code == 200
    assert anna.get(f"{url}&strategy=guess").status_code == 400
    assert anna.get(ui_server.url + "/ui/api/sources/1/suggest?n=0").status_code == 422
    # The server's limit (ServiceSettings.max_suggest, `quadrat serve --max-suggest`).
    too_many = anna.get(ui_server.url + "/ui/api/sources/1/suggest?n=101")
    assert too_many.status_code == 422 and "max_suggest" in detail(too_many)
    viewer, _ = signed_in(ui_server, "victor")
    reply = viewer.get(url)
    assert reply.status_code == 403 and "annotator" in detail(reply)
    assert requests.get(url).status_code == 401
    assert anna.get(ui_server.url + "/ui/api/sources/99/suggest").status_code == 404


def test_cover_with_intervals_for_viewers(ui_server: UiServer) -> None:
    viewer, _ = signed_in(ui_server, "victor")
    url = ui_server.url + "/ui/api/sources/1/cover"
    reply = viewer.get(url + "?replicates=200")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["level"] == "source" and body["corrected"] == "none"
    [row] = body["rows"]
    assert row["Source"] == "reef" and row["Images"] >= 20
    assert body["labels"]
    total = 0.0
    for label in body["labels"]:
        low, mid, high = (row[f"{label} {part}"] for part in ("lower", "estimate", "upper"))
        assert 0 <= low <= mid <= high <= 100
        total += mid
    assert total == pytest.approx(100, abs=0.5)
    per_image = viewer.get(url + "?level=image&replicates=100").json()
    assert len(per_image["rows"]) >= 20 and "Image name" in per_image["columns"]
    per_site = viewer.get(url + "?level=site:Date&replicates=100")
    assert per_site.status_code == 200, per_site.text
    assert per_site.json()["columns"][:3] == ["Date", "Images", "Points"]
    assert sum(r["Images"] for r in per_site.json()["rows"]) == row["Images"]
    corrected = viewer.get(url + "?corrected=acc&replicates=100")
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["rows"][0]["Method"] == "acc"
    assert viewer.get(url + "?level=everywhere").status_code == 400
    assert "Date" in detail(viewer.get(url + "?level=site:Aux9"))  # says which columns exist
    assert viewer.get(url + "?corrected=magic").status_code == 400
    assert viewer.get(url + "?replicates=0").status_code == 422
    too_many = viewer.get(url + "?replicates=5001")
    assert too_many.status_code == 422 and "max_bootstrap_replicates" in detail(too_many)
    assert requests.get(url).status_code == 401


def test_limits_come_from_the_server_settings() -> None:
    from fastapi import HTTPException

    from quadrat.service.ui.insight import within_limit

    assert within_limit(3, 3, "n", "max_suggest") == 3
    with pytest.raises(HTTPException) as raised:
        within_limit(4, 3, "n", "max_suggest")
    assert raised.value.status_code == 422 and "at most 3" in str(raised.value.detail)
