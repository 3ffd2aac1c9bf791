"""The image browser's filters over a real server: label, date, site, machine confidence
below a value, each alone and with the status filter and the orders; each checked against
what the image pages themselves show."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui.conftest import UiServer
from tests.ui.test_api import detail, signed_in

requests = pytest.importorskip("requests")


def ids(server: UiServer, session: Any, **query: Any) -> list[int]:
    reply = session.get(server.url + "/ui/api/sources/1/images", params=query)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["total"] == len(body["images"])  # one page: 23 images
    return [image["id"] for image in body["images"]]


def details(server: UiServer, session: Any) -> dict[int, dict[str, Any]]:
    every = ids(server, session)
    return {i: session.get(f"{server.url}/ui/api/images/{i}").json() for i in every}


def test_filter_by_label_and_confidence(ui_server: UiServer) -> None:
    session, _ = signed_in(ui_server, "anna")
    images = details(ui_server, session)
    labels = session.get(ui_server.url + "/ui/api/sources/1/labels").json()["labels"]
    for label in labels:
        expected = sorted(
            i for i, d in images.items() if any(p["label_id"] == label["id"] for p in d["points"])
        )
        assert sorted(ids(ui_server, session, label_id=label["id"])) == expected, label
    tops = sorted(
        p["suggestions"][0]["score"]
        for d in images.values()
        for p in d["points"]
        if p["status"] in ("machine", "alleviate") and p["suggestions"]
    )
    assert tops
    cut = tops[len(tops) // 2]
    expected = sorted(
        i
        for i, d in images.items()
        if any(
            p["status"] in ("machine", "alleviate") and p["suggestions"][0]["score"] < cut
            for p in d["points"]
        )
    )
    assert expected
    assert sorted(ids(ui_server, session, max_confidence=cut)) == expected
    assert ids(ui_server, session, max_confidence=0.0) == []
    # With the status filter and the uncertainty order.
    machine = set(ids(ui_server, session, status="machine"))
    both = ids(ui_server, session, max_confidence=cut, status="machine", sort="uncertainty")
    assert set(both) == machine & set(expected)
    reply = session.get(ui_server.url + "/ui/api/sources/1/images?max_confidence=2")
    assert reply.status_code == 422


def test_filter_by_date_and_site(ui_server: UiServer) -> None:
    from sqlalchemy import select

    from quadrat.store.schema import Image

    session, _ = signed_in(ui_server, "anna")
    with ui_server.store.session() as db:
        rows = db.execute(select(Image.id, Image.name, Image.metadata_)).all()
        dated = {int(i): str(m["Date"]) for i, _n, m in rows if (m or {}).get("Date")}
        # Sites: CoralNet's Aux1 on two images, a column named Site on a third.
        first, second, third = sorted(dated)[:3]
        for image_id, meta in ((first, {"Aux1": "North"}), (second, {"Aux1": "North"})):
            db.get(Image, image_id).metadata_ = {**db.get(Image, image_id).metadata_, **meta}
        db.get(Image, third).metadata_ = {**db.get(Image, third).metadata_, "Site": "North"}
    assert len(dated) == 20  # the annotated images carry the CSV's Date
    low, high = sorted(set(dated.values()))[2], sorted(set(dated.values()))[5]
    expected = sorted(i for i, d in dated.items() if low <= d[:10] <= high)
    assert 0 < len(expected) < 20
    assert sorted(ids(ui_server, session, date_from=low, date_to=high)) == expected
    assert sorted(ids(ui_server, session, date_from=high)) == sorted(
        i for i, d in dated.items() if d[:10] >= high
    )
    assert sorted(ids(ui_server, session, site="North")) == [first, second, third]
    assert ids(ui_server, session, site="South") == []
    assert ids(ui_server, session, site="North", date_from="2999-01-01") == []
    reply = session.get(ui_server.url + "/ui/api/sources/1/images?date_from=March")
    assert reply.status_code == 400 and "YYYY-MM-DD" in detail(reply)


def test_filtered_pages(ui_server: UiServer) -> None:
    """Paging applies to the filtered images (the page holds 100; here 23 in all)."""
    session, _ = signed_in(ui_server, "anna")
    labels = session.get(ui_server.url + "/ui/api/sources/1/labels").json()["labels"]
    body = session.get(
        ui_server.url + "/ui/api/sources/1/images",
        params={"label_id": labels[0]["id"], "page": 2},
    ).json()
    assert body["images"] == [] and body["page"] == 2 and body["total"] > 0
    by_name = ids(ui_server, session, label_id=labels[0]["id"])
    names = [session.get(f"{ui_server.url}/ui/api/images/{i}").json()["name"] for i in by_name]
    assert names == sorted(names)


def test_sort_by_date(ui_server: UiServer) -> None:
    """Oldest first, by name within a day, images without a date last; with a status too."""
    session, _ = signed_in(ui_server, "anna")
    for query in ({"sort": "date"}, {"sort": "date", "status": "todo"}):
        body = session.get(ui_server.url + "/ui/api/sources/1/images", params=query).json()
        keys = [(i["date"] is None, i["date"] or "", i["name"]) for i in body["images"]]
        assert keys == sorted(keys) and len(keys) == body["total"] > 0, query
    every = session.get(ui_server.url + "/ui/api/sources/1/images?sort=date").json()["images"]
    assert every[0]["date"] is not None and every[-1]["date"] is None
