"""quadrat's own endpoints under /api/quadrat/v1/ (issue 15 through the token API): cover
with intervals, which points to label next, and patches like this one. Token auth, roles,
named limits and JSON:API errors as in the deploy API; the answers are the library's."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from quadrat.demo import DemoSurvey
from tests.service.conftest import MEDIA_TYPE, TrainedProject, Users

pytest.importorskip("fastapi")

BASE = "/api/quadrat/v1"


@pytest.fixture(scope="module")
def analysis_db(
    trained_template: TrainedProject,
    survey_template: DemoSurvey,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The trained project plus the survey's new images, with points the classifier scored
    (so there is something to suggest), and users: a viewer, an annotator, a stranger."""
    import quadrat

    db = tmp_path_factory.mktemp("analysis") / "project.db"
    shutil.copyfile(Path(trained_template.db), db)
    with quadrat.Project.open(db) as project:
        reef = project.source("reef")
        reef.import_images([survey_template.new_dir])
        reef.generate_points("m_10", seed=0)
        reef.extract("texture")
        reef.classify()
        project.create_source("bare", labelset=survey_template.labelset_csv)  # no classifier
    return db


@dataclass
class Client:
    client: Any
    users: Users

    def get(self, path: str, who: str | None = "vic", **params: Any) -> Any:
        headers = self.users.headers(who) if who else {}
        return self.client.get(BASE + path, params=params, headers=headers)

    @property
    def project(self) -> Any:
        import quadrat

        return quadrat.Project(self.client.app.state.store)  # the app's own store


def _client(db: Path, tmp_path: Path, **settings: Any) -> Iterator[Client]:
    from fastapi.testclient import TestClient

    from quadrat.service.app import create_app
    from quadrat.service.settings import ServiceSettings
    from tests.service.conftest import FakeQueue

    private = tmp_path / "project.db"
    shutil.copyfile(db, private)
    users = Users(private)
    users.add("vic", role="viewer")
    users.add("ann", role="annotator")
    users.add("ann3", role="annotator", limits={"max_suggest": 3})
    users.add("nobody", role=None)
    app = create_app(ServiceSettings(database=str(private), **settings), queue=FakeQueue())
    with TestClient(app, raise_server_exceptions=True) as client:
        yield Client(client, users)


@pytest.fixture
def api(analysis_db: Path, tmp_path: Path) -> Iterator[Client]:
    yield from _client(analysis_db, tmp_path)


def error(reply: Any) -> dict[str, Any]:
    assert reply.headers["content-type"] == MEDIA_TYPE
    body = reply.json()
    assert set(body) == {"errors"} and len(body["errors"]) == 1, body
    item: dict[str, Any] = body["errors"][0]
    return item


# ----------------------------------------------------------------------------- doors


def test_token_auth_roles_and_methods_as_the_deploy_api(api: Client) -> None:
    reply = api.get("/sources/1/cover", who=None)
    assert reply.status_code == 403
    assert error(reply) == {"detail": "Authentication credentials were not provided."}
    bad = api.client.get(BASE + "/sources/1/cover", headers={"Authorization": "Token " + "0" * 40})
    assert bad.status_code == 403 and error(bad) == {"detail": "Invalid token."}
    # No role on the source, or no such source: the same 404.
    hidden = api.get("/sources/1/cover", who="nobody")
    assert hidden.status_code == 404
    assert error(hidden) == error(api.get("/sources/99/cover"))
    assert error(api.get("/sources/99999999999999999999999/cover"))["detail"].startswith("This")
    post = api.client.post(BASE + "/sources/1/cover", headers=api.users.headers("vic"))
    assert post.status_code == 405 and error(post) == {"detail": 'Method "POST" not allowed.'}
    assert api.get("/sources/", who="nobody").json() == {"data": []}
    listed = api.get("/sources/").json()["data"]
    assert [(d["id"], d["attributes"]["name"], d["attributes"]["role"]) for d in listed] == [
        ("2", "bare", "viewer"),
        ("1", "reef", "viewer"),
    ]
    # CoralNet's endpoints are untouched beside them.
    user = api.client.get("/api/user/vic/", headers=api.users.headers("vic"))
    assert user.status_code == 200 and user.json()["meta"] == {"max_active_jobs": 5}


# ----------------------------------------------------------------------------- cover


def test_cover_with_intervals_is_the_librarys(api: Client) -> None:
    reply = api.get("/sources/1/cover", replicates=60, seed=3)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == MEDIA_TYPE
    body = reply.json()
    meta = body["meta"]
    assert meta["level"] == "source" and meta["corrected"] == "none"
    assert meta["replicates"] == 60 and meta["confidence"] == 0.95 and meta["labels"]
    [row] = body["data"]
    assert row["type"] == "cover" and row["id"] == "1"
    expected = (
        api.project.source("reef")
        .cover(intervals=True, level="source", replicates=60, seed=3)
        .iloc[0]
        .to_dict()
    )
    attributes = row["attributes"]
    assert list(attributes) == meta["columns"] == [str(c) for c in expected]
    for label in meta["labels"]:
        low, mid, high = (attributes[f"{label} {p}"] for p in ("lower", "estimate", "upper"))
        assert 0 <= low <= mid <= high <= 100
        assert mid == pytest.approx(expected[f"{label} estimate"])
        assert (low, high) == pytest.approx(
            (expected[f"{label} lower"], expected[f"{label} upper"])
        )
    per_image = api.get("/sources/1/cover", level="image", replicates=20).json()
    assert len(per_image["data"]) >= 20 and "Image name" in per_image["meta"]["columns"]
    corrected = api.get("/sources/1/cover", corrected="acc", replicates=20)
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["meta"]["corrected"] == "acc"


def test_cover_refusals_name_the_parameter_and_limit(api: Client) -> None:
    over = api.get("/sources/1/cover", replicates=5001)
    assert over.status_code == 400
    item = error(over)
    assert item["source"] == {"parameter": "replicates"}
    assert item["meta"] == {"limit": "max_bootstrap_replicates", "max": 5000}
    assert "max_bootstrap_replicates" in item["detail"]
    for params, name in (
        ({"replicates": "many"}, "replicates"),
        ({"replicates": 0}, "replicates"),
        ({"confidence": 1.5}, "confidence"),
        ({"level": "everywhere"}, "level"),
        ({"corrected": "magic"}, "corrected"),
    ):
        reply = api.get("/sources/1/cover", **params)
        assert reply.status_code == 400, (params, reply.text)
        assert error(reply)["source"] == {"parameter": name}, params
    site = error(api.get("/sources/1/cover", level="site:Aux9", replicates=10))
    assert "Date" in site["detail"]  # says which columns exist


# ----------------------------------------------------------------------------- suggest


def test_suggest_ranks_points_nobody_labelled_for_annotators(api: Client) -> None:
    reply = api.get("/sources/1/suggest", who="ann", n=5)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["meta"]["strategy"] == "margin" and body["meta"]["n"] == 5
    data = body["data"]
    assert [d["attributes"]["rank"] for d in data] == [1, 2, 3, 4, 5]
    expected = api.project.source("reef").suggest(5)
    assert [d["id"] for d in data] == [str(p) for p in expected["point_id"]]
    annotations = api.project.source("reef").annotations().set_index("point_id")
    for item in data:
        assert item["type"] == "point"
        attributes = item["attributes"]
        assert {"image", "point", "top_label", "top_score", "margin", "image_id"} <= set(attributes)
        assert annotations.loc[int(item["id"]), "status"] not in ("confirmed", "imported")
    images = api.get("/sources/1/suggest", who="ann", n=2, by="images", strategy="entropy")
    assert images.status_code == 200, images.text
    assert [d["type"] for d in images.json()["data"]] == ["image", "image"]

    viewer = api.get("/sources/1/suggest", n=5)
    assert viewer.status_code == 403 and "annotator" in error(viewer)["detail"]
    strategy = api.get("/sources/1/suggest", who="ann", strategy="guess")
    assert strategy.status_code == 400 and error(strategy)["source"] == {"parameter": "strategy"}
    assert error(api.get("/sources/1/suggest", who="ann", by="sites"))["source"] == {
        "parameter": "by"
    }
    # A source without a classifier yet: a 409 saying so, not a server error.
    bare = api.get("/sources/2/suggest", who="ann")
    assert bare.status_code == 409 and "classifier" in error(bare)["detail"]
    over = api.get("/sources/1/suggest", who="ann", n=101)
    assert over.status_code == 400
    assert error(over)["meta"] == {"limit": "max_suggest", "max": 100}
    # A user's own limit, as for the deploy limits.
    assert api.get("/sources/1/suggest", who="ann3", n=3).status_code == 200
    mine = api.get("/sources/1/suggest", who="ann3", n=4)
    assert mine.status_code == 400 and error(mine)["meta"] == {"limit": "max_suggest", "max": 3}


def test_limits_are_server_settings(analysis_db: Path, tmp_path: Path) -> None:
    for api in _client(analysis_db, tmp_path, max_similar=2, max_bootstrap_replicates=10):
        assert api.get("/sources/1/cover", replicates=11).status_code == 400
        default = api.get("/sources/1/cover")  # the default is cut to the server's limit
        assert default.status_code == 200 and default.json()["meta"]["replicates"] == 10
        assert len(api.get("/points/1/similar").json()["data"]) == 2
        assert error(api.get("/points/1/similar", k=3))["meta"] == {
            "limit": "max_similar",
            "max": 2,
        }


# ----------------------------------------------------------------------------- similar


def test_similar_points_are_the_indexs_nearest(api: Client) -> None:
    point = int(api.project.source("reef").annotations()["point_id"].iloc[7])
    reply = api.get(f"/points/{point}/similar", k=6)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["meta"] == {"source": "reef", "point": point, "k": 6}
    data = body["data"]
    assert len(data) == 6 and str(point) not in [d["id"] for d in data]
    distances = [d["attributes"]["distance"] for d in data]
    assert distances == sorted(distances) and distances[0] >= 0
    expected = api.project.source("reef").similar_points(point, k=6)
    assert [d["id"] for d in data] == [str(p) for p in expected["point_id"]]
    assert set(data[0]["attributes"]) == {
        "image",
        "point",
        "row",
        "column",
        "label",
        "status",
        "distance",
    }

    assert api.get(f"/points/{point}/similar", who="nobody").status_code == 404
    missing = api.get("/points/999999/similar")
    assert missing.status_code == 404 and error(missing) == error(
        api.get(f"/points/{point}/similar", who="nobody")
    )
    assert error(api.get(f"/points/{point}/similar", k=0))["source"] == {"parameter": "k"}
    assert api.get(f"/points/{point}/similar", k=101).status_code == 400


def test_cover_suggest_and_similar_on_postgresql(postgres_url: str, survey_template: Any) -> None:
    """The same three endpoints over a project in PostgreSQL: the library's answers."""
    from fastapi.testclient import TestClient

    import quadrat
    from quadrat.service.app import create_app
    from quadrat.service.settings import ServiceSettings
    from tests.service.conftest import FakeQueue, build_trained

    build_trained(postgres_url, survey_template)
    with quadrat.Project.open(postgres_url) as project:
        reef = project.source("reef")
        reef.import_images([survey_template.new_dir])
        reef.generate_points("m_10", seed=0)
        reef.extract("texture")
        reef.classify()
    users = Users(postgres_url)
    users.add("vic", role="viewer")
    users.add("ann", role="annotator")
    app = create_app(ServiceSettings(database=postgres_url), queue=FakeQueue())
    with TestClient(app, raise_server_exceptions=True) as client:
        api = Client(client, users)
        source = api.project.source("reef")
        cover = api.get("/sources/1/cover", replicates=40, seed=1)
        assert cover.status_code == 200, cover.text
        assert cover.json()["meta"]["replicates"] == 40
        suggested = api.get("/sources/1/suggest", who="ann", n=4)
        assert suggested.status_code == 200, suggested.text
        ids = [d["id"] for d in suggested.json()["data"]]
        assert ids == [str(p) for p in source.suggest(4)["point_id"]]
        point = int(source.annotations()["point_id"].iloc[3])
        similar = api.get(f"/points/{point}/similar", k=5)
        assert similar.status_code == 200, similar.text
        expected = source.similar_points(point, k=5)["point_id"]
        assert [d["id"] for d in similar.json()["data"]] == [str(p) for p in expected]
