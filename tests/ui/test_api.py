"""The UI's JSON endpoints over a real server: sign-in, CSRF, roles, labels, undo.

Driven with ``requests`` (a browser's cookies and headers, without the browser), so every
status code and rule is checked directly; tests/ui/test_browser.py drives the pages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import PASSWORDS, UiServer

requests = pytest.importorskip("requests")


def signed_in(server: UiServer, name: str) -> tuple[Any, str]:
    """A requests session signed in as ``name``, and its CSRF token."""
    session = requests.Session()
    csrf = session.get(server.url + "/ui/api/session").json()["csrf"]
    reply = session.post(
        server.url + "/ui/api/login",
        json={"username": name, "password": PASSWORDS[name]},
        headers={"X-CSRF-Token": csrf},
    )
    assert reply.status_code == 200, reply.text
    return session, reply.json()["csrf"]


def detail(reply: Any) -> str:
    """An error's message, as the UI's own body or the service's ``{"errors": [...]}``."""
    body = reply.json()
    return str(body["detail"] if "detail" in body else body["errors"][0]["detail"])


def new_image(server: UiServer, session: Any) -> dict[str, Any]:
    """The first image with machine suggestions and no person's label."""
    page = session.get(server.url + "/ui/api/sources/1/images?status=machine").json()
    assert page["images"], page
    return dict(session.get(f"{server.url}/ui/api/images/{page['images'][0]['id']}").json())


def test_nothing_is_served_without_a_session(ui_server: UiServer) -> None:
    anonymous = requests.Session()
    for path in (
        "/ui/api/sources",
        "/ui/api/sources/1/images",
        "/ui/api/sources/1/labels",
        "/ui/api/images/21",
        "/ui/api/images/21/file",
        "/ui/api/images/21/thumbnail",
        "/ui/api/points/1/patch",
    ):
        reply = anonymous.get(ui_server.url + path)
        assert reply.status_code == 401, path
        assert "json" in reply.headers["content-type"], path
    reply = anonymous.put(ui_server.url + "/ui/api/points/1/annotation", json={"label_id": 1})
    assert reply.status_code == 401
    # Pages send the browser to sign in, and come back afterwards.
    reply = anonymous.get(ui_server.url + "/ui/annotate?image=21", allow_redirects=False)
    assert reply.status_code == 303
    assert reply.headers["location"] == "/ui/login?next=/ui/annotate%3Fimage%3D21"
    root = anonymous.get(ui_server.url + "/", allow_redirects=False)
    assert root.status_code == 303 and root.headers["location"] == "/ui/"
    # The sign-in page and its script are public: they hold no data.
    assert anonymous.get(ui_server.url + "/ui/login").status_code == 200
    assert anonymous.get(ui_server.url + "/ui/static/login.js").status_code == 200


def test_a_forged_or_foreign_cookie_is_no_session(ui_server: UiServer) -> None:
    session, _ = signed_in(ui_server, "anna")
    cookie = session.cookies.get("quadrat_session")
    forged = requests.Session()
    forged.cookies.set("quadrat_session", cookie[:-3] + ("AAA" if cookie[-3:] != "AAA" else "BBB"))
    assert forged.get(ui_server.url + "/ui/api/sources").status_code == 401


def test_session_cookie_flags(ui_server: UiServer) -> None:
    reply = requests.get(ui_server.url + "/ui/api/session")
    cookie = reply.headers["set-cookie"].lower()
    assert "quadrat_session=" in cookie
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert reply.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in reply.headers["content-security-policy"]


def test_sign_in_needs_the_csrf_token_and_the_right_password(ui_server: UiServer) -> None:
    session = requests.Session()
    csrf = session.get(ui_server.url + "/ui/api/session").json()["csrf"]
    body = {"username": "anna", "password": PASSWORDS["anna"]}
    assert session.post(ui_server.url + "/ui/api/login", json=body).status_code == 403
    wrong = {"username": "anna", "password": "not-it"}
    reply = session.post(
        ui_server.url + "/ui/api/login", json=wrong, headers={"X-CSRF-Token": csrf}
    )
    assert reply.status_code == 400
    assert detail(reply) == "Wrong username or password."
    unknown = {"username": "nobody", "password": "x"}
    reply = session.post(
        ui_server.url + "/ui/api/login", json=unknown, headers={"X-CSRF-Token": csrf}
    )
    assert reply.status_code == 400
    reply = session.post(ui_server.url + "/ui/api/login", json=body, headers={"X-CSRF-Token": csrf})
    assert reply.status_code == 200
    # A new session (and token) at sign-in: the anonymous token no longer works.
    new_csrf = reply.json()["csrf"]
    assert new_csrf != csrf
    assert session.get(ui_server.url + "/ui/api/session").json()["user"]["username"] == "anna"


def test_changes_need_the_csrf_header_and_same_origin(ui_server: UiServer) -> None:
    session, csrf = signed_in(ui_server, "anna")
    point = new_image(ui_server, session)["points"][0]
    url = f"{ui_server.url}/ui/api/points/{point['id']}/annotation"
    body = {"label_id": point["suggestions"][0]["label_id"]}
    assert session.put(url, json=body).status_code == 403
    assert session.put(url, json=body, headers={"X-CSRF-Token": "x" * 43}).status_code == 403
    cross = {"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
    assert session.put(url, json=body, headers=cross).status_code == 403
    assert session.put(url, json=body, headers={"X-CSRF-Token": csrf}).status_code == 200
    # Signing out ends the session.
    session.post(ui_server.url + "/ui/api/logout", headers={"X-CSRF-Token": csrf})
    assert session.get(ui_server.url + "/ui/api/sources").status_code == 401


def test_sources_images_points_labels(ui_server: UiServer) -> None:
    session, _ = signed_in(ui_server, "anna")
    sources = session.get(ui_server.url + "/ui/api/sources").json()["sources"]
    assert [s["name"] for s in sources] == ["reef"]
    reef = sources[0]
    assert reef["role"] == "annotator"
    assert reef["images"]["confirmed"] == 20
    assert reef["active_classifier"]["kind"] == "lr"
    # CoralNet's policy: trained at 20 images, so the next classifier at 10 % more.
    from quadrat.classifiers.policy import TrainingPolicy

    assert reef["policy"] == {
        "due": False,
        "confirmed_images": 20,
        "next_at": TrainingPolicy().next_count(20),
    }
    assert reef["policy"]["next_at"] > 20
    labels = session.get(ui_server.url + "/ui/api/sources/1/labels").json()["labels"]
    assert [label["hotkey"] for label in labels] == list("qwert")
    assert {label["code"] for label in labels} == {"CCA", "Macro", "Porit", "Sand", "Turf"}
    page = session.get(ui_server.url + "/ui/api/sources/1/images").json()
    assert (page["total"], page["pages"], page["page_size"]) == (23, 1, 100)
    names = [image["name"] for image in page["images"]]
    assert names == sorted(names)
    by_doubt = session.get(
        ui_server.url + "/ui/api/sources/1/images?status=todo&sort=uncertainty"
    ).json()
    doubts = [image["uncertainty"] for image in by_doubt["images"]]
    assert by_doubt["total"] == 3 and doubts == sorted(doubts, reverse=True)
    bad = session.get(ui_server.url + "/ui/api/sources/1/images?status=lost")
    assert bad.status_code == 400
    image = new_image(ui_server, session)
    assert image["width"] == 480 and image["height"] == 360 and image["orientation"] == 1
    assert len(image["points"]) == 12
    point = image["points"][0]
    assert point["status"] == "machine" and len(point["suggestions"]) == 5
    scores = [s["score"] for s in point["suggestions"]]
    assert scores == sorted(scores, reverse=True)
    assert point["label_id"] == point["suggestions"][0]["label_id"]


def test_labels_count_their_points(ui_server: UiServer) -> None:
    """The review grid opens on the label with the most points, so each label says how many
    points a person labelled with it and how many the machine did."""
    from quadrat.workflow.project import Project

    session, _ = signed_in(ui_server, "anna")
    labels = session.get(ui_server.url + "/ui/api/sources/1/labels").json()["labels"]
    table = Project(ui_server.store).source("reef").annotations()
    table = table[table["label"].notna()]
    human = table["status"].isin(["imported", "confirmed"])
    for label in labels:
        mine = table["label"] == label["code"]
        assert label["confirmed"] == int((mine & human).sum()), label
        assert label["machine"] == int((mine & ~human).sum()), label
    assert sum(label["confirmed"] + label["machine"] for label in labels) == len(table) > 0
    assert sum(label["machine"] for label in labels) > 0


def test_image_and_patch_are_jpegs_without_exif(ui_server: UiServer) -> None:
    from io import BytesIO

    from PIL import Image

    session, _ = signed_in(ui_server, "victor")
    image = new_image(ui_server, session)
    reply = session.get(f"{ui_server.url}/ui/api/images/{image['id']}/file")
    assert reply.status_code == 200 and reply.headers["content-type"] == "image/jpeg"
    picture = Image.open(BytesIO(reply.content))
    assert picture.size == (480, 360)
    assert not picture.getexif()
    patch = session.get(f"{ui_server.url}/ui/api/points/{image['points'][0]['id']}/patch")
    assert Image.open(BytesIO(patch.content)).size == (224, 224)
    thumb = session.get(f"{ui_server.url}/ui/api/images/{image['id']}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.headers["cache-control"].startswith("private")
    assert Image.open(BytesIO(thumb.content)).size == (160, 120)
    assert session.get(f"{ui_server.url}/ui/api/images/999999/thumbnail").status_code == 404


def test_label_undo_and_conflict(ui_server: UiServer) -> None:
    session, csrf = signed_in(ui_server, "anna")
    headers = {"X-CSRF-Token": csrf}
    image = new_image(ui_server, session)
    point = image["points"][1]
    second = point["suggestions"][1]["label_id"]
    url = f"{ui_server.url}/ui/api/points/{point['id']}/annotation"
    reply = session.put(url, json={"label_id": second}, headers=headers)
    assert reply.status_code == 200
    saved = reply.json()["point"]
    assert (saved["label_id"], saved["status"], saved["annotator"]) == (second, "confirmed", "anna")
    assert saved["annotated_at"].endswith("+00:00")
    # A reload sees it.
    again = session.get(f"{ui_server.url}/ui/api/images/{image['id']}").json()["points"][1]
    assert (again["label_id"], again["status"]) == (second, "confirmed")
    # Undo puts back the machine's annotation exactly.
    token = reply.json()["undo"]
    restored = session.post(
        ui_server.url + "/ui/api/undo", json={"undo": token}, headers=headers
    ).json()["point"]
    assert {k: restored[k] for k in ("label_id", "status", "annotator", "annotated_at")} == {
        k: point[k] for k in ("label_id", "status", "annotator", "annotated_at")
    }
    # The same undo again: the point no longer holds that change.
    reply = session.post(ui_server.url + "/ui/api/undo", json={"undo": token}, headers=headers)
    assert reply.status_code == 409
    # A tampered token is refused.
    reply = session.post(
        ui_server.url + "/ui/api/undo", json={"undo": token[:-2] + "xx"}, headers=headers
    )
    assert reply.status_code == 400
    # A label of no labelset, and a point that does not exist.
    assert session.put(url, json={"label_id": 999}, headers=headers).status_code == 400
    missing = f"{ui_server.url}/ui/api/points/999999/annotation"
    assert session.put(missing, json={"label_id": second}, headers=headers).status_code == 404


def test_a_viewer_reads_but_changes_nothing(ui_server: UiServer) -> None:
    session, csrf = signed_in(ui_server, "victor")
    headers = {"X-CSRF-Token": csrf}
    image = new_image(ui_server, session)
    assert image["role"] == "viewer"
    point = image["points"][2]
    url = f"{ui_server.url}/ui/api/points/{point['id']}/annotation"
    reply = session.put(
        url, json={"label_id": point["suggestions"][1]["label_id"]}, headers=headers
    )
    assert reply.status_code == 403
    assert "viewer" in detail(reply)
    after = session.get(f"{ui_server.url}/ui/api/images/{image['id']}").json()["points"][2]
    assert after == point
    # Nor can a viewer replay an annotator's undo token.
    anna, anna_csrf = signed_in(ui_server, "anna")
    token = anna.put(
        url, json={"label_id": point["label_id"]}, headers={"X-CSRF-Token": anna_csrf}
    ).json()["undo"]
    reply = session.post(ui_server.url + "/ui/api/undo", json={"undo": token}, headers=headers)
    assert reply.status_code == 403


def test_an_api_token_works_without_csrf(ui_server: UiServer) -> None:
    from quadrat.service import accounts

    user_id = accounts.authenticate(ui_server.store, "ada", PASSWORDS["ada"])
    assert user_id is not None
    token = accounts.issue_token(ui_server.store, user_id)
    auth = {"Authorization": f"Token {token}"}
    assert requests.get(ui_server.url + "/ui/api/sources", headers=auth).status_code == 200
    bad = {"Authorization": "Token " + "0" * 40}
    assert requests.get(ui_server.url + "/ui/api/sources", headers=bad).status_code == 401
    image = requests.get(ui_server.url + "/ui/api/sources/1/images?status=todo", headers=auth)
    first = image.json()["images"][0]["id"]
    point = requests.get(f"{ui_server.url}/ui/api/images/{first}", headers=auth).json()["points"][3]
    reply = requests.put(
        f"{ui_server.url}/ui/api/points/{point['id']}/annotation",
        json={"label_id": point["label_id"]},
        headers=auth,
    )
    assert reply.status_code == 200 and reply.json()["point"]["annotator"] == "ada"


def test_review_grid_relabel_and_undo_many(ui_server: UiServer) -> None:
    session, csrf = signed_in(ui_server, "anna")
    headers = {"X-CSRF-Token": csrf}
    labels = session.get(ui_server.url + "/ui/api/sources/1/labels").json()["labels"]
    pages = {
        label["id"]: session.get(
            f"{ui_server.url}/ui/api/sources/1/review?label_id={label['id']}&status=machine"
        ).json()
        for label in labels
    }
    label_id, page = max(pages.items(), key=lambda item: item[1]["total"])
    assert page["total"] >= 3
    scores = [p["score"] for p in page["points"]]
    assert scores == sorted(scores)  # least confident first
    assert {p["status"] for p in page["points"]} <= {"machine", "alleviate"}
    chosen = [p["id"] for p in page["points"][:3]]
    other = next(label["id"] for label in labels if label["id"] != label_id)
    url = ui_server.url + "/ui/api/sources/1/relabel"
    reply = session.post(url, json={"point_ids": chosen, "label_id": other}, headers=headers)
    assert reply.status_code == 200 and reply.json()["changed"] == 3
    moved = session.get(
        f"{ui_server.url}/ui/api/sources/1/review?label_id={other}&status=human&sort=image"
    ).json()
    assert set(chosen) <= {p["id"] for p in moved["points"]}
    # One undo puts all three back.
    reply = session.post(
        ui_server.url + "/ui/api/undo", json={"undo": reply.json()["undo"]}, headers=headers
    )
    assert reply.status_code == 200
    assert [p["status"] for p in reply.json()["points"]] == ["machine"] * 3
    # A point of no source is refused, and nothing of the request is written.
    bad = {"point_ids": [chosen[0], 999999], "label_id": other}
    assert session.post(url, json=bad, headers=headers).status_code == 404
    first = session.get(
        f"{ui_server.url}/ui/api/sources/1/review?label_id={label_id}&status=machine"
    ).json()
    assert chosen[0] in {p["id"] for p in first["points"]}
    # A viewer may look but not relabel.
    viewer, viewer_csrf = signed_in(ui_server, "victor")
    reply = viewer.post(
        url, json={"point_ids": chosen, "label_id": other}, headers={"X-CSRF-Token": viewer_csrf}
    )
    assert reply.status_code == 403


def test_alleviate_curve_and_apply_by_an_admin_only(ui_server: UiServer) -> None:
    anna, anna_csrf = signed_in(ui_server, "anna")
    data = anna.get(ui_server.url + "/ui/api/sources/1/alleviate").json()
    assert data["threshold"] is None and data["can_apply"] is False
    curve = data["curve"]
    assert len(curve["threshold"]) == len(curve["fraction_accepted"]) > 10
    assert curve["fraction_accepted"][0] == 1.0
    url = ui_server.url + "/ui/api/sources/1/alleviate"
    reply = anna.post(url, json={"threshold": 0.5}, headers={"X-CSRF-Token": anna_csrf})
    assert reply.status_code == 403
    ada, ada_csrf = signed_in(ui_server, "ada")
    bad = ada.post(url, json={"threshold": 1.5}, headers={"X-CSRF-Token": ada_csrf})
    assert bad.status_code in (400, 422)
    reply = ada.post(url, json={"threshold": 0.5}, headers={"X-CSRF-Token": ada_csrf})
    assert reply.status_code == 200, reply.text
    done = reply.json()
    assert done["alleviated"] > 0 and done["counts"]["alleviate"] == done["alleviated"]
    assert ada.get(url).json()["threshold"] == 0.5
    # A person's labels stay as they were.
    assert done["counts"]["imported"] == 200


def test_exports_are_the_cli_csvs(ui_server: UiServer) -> None:
    session, _ = signed_in(ui_server, "victor")
    for kind, first in (
        ("annotations", "Name"),
        ("cover", "Image ID"),
        ("labelset", "Label ID"),
    ):
        reply = session.get(f"{ui_server.url}/ui/api/sources/1/export/{kind}.csv")
        assert reply.status_code == 200, kind
        assert reply.headers["content-type"].startswith("text/csv")
        assert f'filename="reef_{kind}.csv"' in reply.headers["content-disposition"]
        assert reply.text.splitlines()[0].split(",")[0] == first, reply.text[:80]
    assert session.get(ui_server.url + "/ui/api/sources/1/export/secrets.csv").status_code == 404
    assert requests.get(ui_server.url + "/ui/api/sources/1/export/cover.csv").status_code == 401


def test_exports_in_other_tools_formats_are_what_the_cli_writes(
    ui_server: UiServer, tmp_path: Path
) -> None:
    """Every format ``quadrat formats`` lists as exportable downloads from the page, byte
    for byte what ``Source.export`` writes; viewers may, anonymous may not."""
    import io
    import zipfile

    from quadrat.workflow.project import Project

    session, _ = signed_in(ui_server, "victor")
    listed = session.get(ui_server.url + "/ui/api/export-formats").json()["formats"]
    names = {f["name"] for f in listed}
    assert {"cpce", "viame", "coco", "squidle", "biigle", "coralnet-points"} <= names
    reef = Project(ui_server.store).source("reef")
    for fmt in listed:
        if fmt["name"] == "geojson":
            continue  # the demo's photos are not georeferenced: below
        url = f"{ui_server.url}/ui/api/sources/1/export/format/{fmt['name']}"
        reply = session.get(url)
        assert reply.status_code == 200, (fmt["name"], reply.text[:200])
        name = f'filename="reef_{fmt["name"]}{fmt["suffix"]}"'
        assert name in reply.headers["content-disposition"]
        written = tmp_path / f"{fmt['name']}{fmt['suffix']}"
        reef.export(fmt["name"], written)
        if fmt["suffix"] == ".zip":  # the same members with the same bytes
            with zipfile.ZipFile(io.BytesIO(reply.content)) as got, zipfile.ZipFile(written) as cli:
                assert got.namelist() == cli.namelist() and got.namelist()
                assert all(got.read(n) == cli.read(n) for n in got.namelist())
        else:
            assert reply.content == written.read_bytes(), fmt["name"]
    assert (
        session.get(f"{ui_server.url}/ui/api/sources/1/export/format/cpce")
        .headers["content-type"]
        .startswith("application/zip")
    )
    geo = session.get(f"{ui_server.url}/ui/api/sources/1/export/format/geojson")
    assert geo.status_code in (200, 400), geo.text  # 400 names what is missing
    unknown = session.get(f"{ui_server.url}/ui/api/sources/1/export/format/excel")
    assert unknown.status_code == 400 and "excel" in detail(unknown)
    assert session.get(f"{ui_server.url}/ui/api/sources/99/export/format/viame").status_code == 404
    assert requests.get(f"{ui_server.url}/ui/api/sources/1/export/format/viame").status_code == 401
    assert requests.get(ui_server.url + "/ui/api/export-formats").status_code == 401


def test_points_added_and_removed_by_hand(ui_server: UiServer) -> None:
    from quadrat.store.queries import stored_block_sizes

    session, csrf = signed_in(ui_server, "anna")
    headers = {"X-CSRF-Token": csrf}
    image = new_image(ui_server, session)
    url = f"{ui_server.url}/ui/api/images/{image['id']}/points"
    reply = session.post(url, json={"row": 5, "column": 7}, headers=headers)
    assert reply.status_code == 200, reply.text
    added = reply.json()["point"]
    assert (added["number"], added["row"], added["column"]) == (13, 5, 7)
    assert added["status"] is None and added["suggestions"] == []
    outside = session.post(url, json={"row": 360, "column": 0}, headers=headers)
    assert outside.status_code == 400
    # The image's features are dropped: the next extraction computes them again.
    with ui_server.store.session() as db:
        assert image["id"] not in stored_block_sizes(db, 1, "texture@v1")
    gone = image["points"][0]
    reply = session.delete(f"{ui_server.url}/ui/api/points/{gone['id']}", headers=headers)
    assert reply.status_code == 200
    after = session.get(f"{ui_server.url}/ui/api/images/{image['id']}").json()["points"]
    assert [p["number"] for p in after] == list(range(2, 14))
    viewer, viewer_csrf = signed_in(ui_server, "victor")
    reply = viewer.post(url, json={"row": 1, "column": 1}, headers={"X-CSRF-Token": viewer_csrf})
    assert reply.status_code == 403


def test_password_guessing_is_slowed_down(ui_server: UiServer) -> None:
    session = requests.Session()
    csrf = session.get(ui_server.url + "/ui/api/session").json()["csrf"]
    headers = {"X-CSRF-Token": csrf}
    guess = {"username": "ada", "password": "guess"}
    statuses = [
        session.post(ui_server.url + "/ui/api/login", json=guess, headers=headers).status_code
        for _ in range(11)
    ]
    # Ten failures a minute from one address or for one name, then 429 (earlier tests of
    # this module failed a few times from this address too).
    assert 429 in statuses
    first = statuses.index(429)
    assert set(statuses[:first]) == {400} and set(statuses[first:]) == {429}
    right = {"username": "ada", "password": PASSWORDS["ada"]}
    reply = session.post(ui_server.url + "/ui/api/login", json=right, headers=headers)
    assert reply.status_code == 429  # even the right password waits
    assert "try again in" in detail(reply)
