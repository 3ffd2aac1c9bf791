"""The HTTP contract of ``quadrat serve``: CoralNet's deploy API, status for status, word for word.

Most cases run the app in-process (``TestClient``, a fake queue, job states written through
``quadrat.store.jobs``); the last ones run the real server (``python -m quadrat.service``)
with its workers and talk to it with ``requests``, as CoralNet's clients do.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from quadrat.service.throttle import RateLimiter, throttled_message
from quadrat.store import jobs as job_rows
from quadrat.store.project import Store
from tests.service.conftest import (
    MEDIA_TYPE,
    PASSWORD,
    Api,
    LiveServer,
    TrainedProject,
    Users,
    make_jpeg,
)

JSONAPI = {"Content-Type": MEDIA_TYPE}


def body(*images: dict[str, Any]) -> str:
    return json.dumps({"data": list(images)})


def image(url: str = "https://example.org/a.jpg", points: Any = None) -> dict[str, Any]:
    pts = [{"row": 10, "column": 10}] if points is None else points
    return {"type": "image", "attributes": {"url": url, "points": pts}}


def errors(response: Any) -> list[dict[str, Any]]:
    assert response.headers["content-type"] == MEDIA_TYPE
    data = response.json()
    assert list(data) == ["errors"] and len(data["errors"]) == 1
    return list(data["errors"])


def detail(response: Any) -> str:
    return str(errors(response)[0]["detail"])


def post_deploy(api: Api, headers: dict[str, str], content: str | None = None, **kw: Any) -> Any:
    return api.client.post(
        api.deploy_url(kw.pop("classifier_id", None)),
        content=body(image()) if content is None else content,
        headers={**JSONAPI, **headers},
        **kw,
    )


def store_of(project: TrainedProject) -> Store:
    return Store.open(project.db)


def set_state(project: TrainedProject, job_id: int, state: str) -> None:
    """Move a job on as a worker would: ``in_progress``, ``done`` (first image failed)."""
    store = store_of(project)
    try:
        with store.session() as session:
            images = job_rows.job_images(session, job_id)
            if state == "in_progress":
                job_rows.start_job(session, job_id)
            elif state == "done":
                for i, img in enumerate(images):
                    if i == 0:
                        job_rows.set_image_error(session, img.id, "Failed to download: 404")
                    else:
                        scored = [
                            [
                                {
                                    "label_id": k,
                                    "label_name": f"L{k}",
                                    "label_code": f"C{k}",
                                    "score": round(1 - k / 10, 2),
                                }
                                for k in range(7)
                            ]
                            for _ in img.points
                        ]
                        job_rows.set_image_result(session, img.id, scored)
                job_rows.finish_job(session, job_id)
    finally:
        store.close()


def job_id_of(response: Any) -> int:
    assert response.status_code == 202, response.text
    match = re.fullmatch(r"/api/deploy_job/(\d+)/status/", response.headers["location"])
    assert match, response.headers["location"]
    return int(match.group(1))


# ------------------------------------------------------------------ token_auth


def test_token_auth_gives_a_40_hex_token_and_nothing_else(api: Api, users: Users) -> None:
    users.add("alice")
    response = api.client.post(
        "/api/token_auth/",
        content=json.dumps({"username": "alice", "password": PASSWORD}),
        headers=JSONAPI,
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == MEDIA_TYPE
    data = response.json()
    assert list(data) == ["token"] and re.fullmatch(r"[0-9a-f]{40}", data["token"])
    # The token works, and is stored only as its digest.
    me = api.client.get("/api/user/alice/", headers={"Authorization": f"Token {data['token']}"})
    assert me.status_code == 200
    assert data["token"].encode() not in Path(api.project.db).read_bytes()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {"username": "alice", "password": "wrong"},
            {"non_field_errors": ["Unable to log in with provided credentials."]},
        ),
        (
            {"username": "nobody", "password": PASSWORD},
            {"non_field_errors": ["Unable to log in with provided credentials."]},
        ),
        ({"password": PASSWORD}, {"username": ["This field is required."]}),
        ({"username": "alice"}, {"password": ["This field is required."]}),
        (
            {},
            {"username": ["This field is required."], "password": ["This field is required."]},
        ),
        ({"username": "", "password": PASSWORD}, {"username": ["This field may not be blank."]}),
        ({"username": None, "password": PASSWORD}, {"username": ["This field may not be null."]}),
        ({"username": ["alice"], "password": PASSWORD}, {"username": ["Not a valid string."]}),
        (
            ["alice", PASSWORD],
            {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]},
        ),
    ],
)
def test_token_auth_errors(api: Api, users: Users, payload: Any, expected: Any) -> None:
    users.add("alice")
    response = api.client.post("/api/token_auth/", content=json.dumps(payload), headers=JSONAPI)
    assert response.status_code == 400
    assert errors(response) == [expected]


def test_token_auth_needs_the_media_type_and_post(api: Api) -> None:
    response = api.client.post(
        "/api/token_auth/",
        content=json.dumps({"username": "a", "password": "b"}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 415
    assert errors(response) == [
        {"detail": "Content type should be application/vnd.api+json, not application/json"}
    ]
    got = api.client.get("/api/token_auth/")
    assert got.status_code == 405 and detail(got) == 'Method "GET" not allowed.'
    bad = api.client.post("/api/token_auth/", content="{oops", headers=JSONAPI)
    assert bad.status_code == 400 and detail(bad).startswith("JSON parse error - ")


# ------------------------------------------------------------------ authentication, methods


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/classifier/1/deploy/"),
        ("GET", "/api/deploy_job/1/status/"),
        ("GET", "/api/deploy_job/1/result/"),
        ("GET", "/api/user/alice/"),
    ],
)
def test_every_endpoint_but_token_auth_needs_a_token(api: Api, method: str, path: str) -> None:
    missing = api.client.request(method, path)
    assert missing.status_code == 403
    assert errors(missing) == [{"detail": "Authentication credentials were not provided."}]
    bad = api.client.request(method, path, headers={"Authorization": "Token " + "0" * 40})
    assert bad.status_code == 403 and detail(bad) == "Invalid token."
    other_scheme = api.client.request(method, path, headers={"Authorization": "Bearer x"})
    assert detail(other_scheme) == "Authentication credentials were not provided."
    assert detail(api.client.request(method, path, headers={"Authorization": "Token"})) == (
        "Invalid token header. No credentials provided."
    )


def test_wrong_methods_are_405_once_signed_in(api: Api, users: Users) -> None:
    users.add("alice")
    headers = users.headers("alice")
    for method, path in [
        ("GET", api.deploy_url()),
        ("PUT", api.deploy_url()),
        ("POST", "/api/deploy_job/1/status/"),
        ("DELETE", "/api/deploy_job/1/result/"),
        ("POST", "/api/user/alice/"),
    ]:
        response = api.client.request(method, path, headers=headers)
        assert response.status_code == 405, (method, path)
        assert errors(response) == [{"detail": f'Method "{method}" not allowed.'}]
        assert "allow" in response.headers
    # Unknown paths are a JSON:API 404 too.
    nowhere = api.client.get("/api/nothing/", headers=headers)
    assert nowhere.status_code == 404 and detail(nowhere) == "Not found."


# ------------------------------------------------------------------ deploy


def test_deploy_accepts_a_job_with_202_and_its_status_url(api: Api, users: Users) -> None:
    users.add("alice")
    payload = body(
        image("https://example.org/1.jpg", [{"row": 10, "column": 10}, {"row": 20, "column": 5}]),
        {
            "type": "image",
            "attributes": {
                "url": "https://example.org/2.jpg",
                "name": "2.jpg",
                "points": [{"row": 1, "column": 2}],
            },
        },
    )
    response = post_deploy(api, users.headers("alice"), payload)
    job_id = job_id_of(response)
    assert response.content == b""
    assert api.queue.ids == [job_id]
    store = store_of(api.project)
    with store.session() as session:
        info = job_rows.get_job(session, job_id)
        stored = job_rows.job_images(session, job_id)
    store.close()
    assert (info.user_id, info.classifier_id, info.total) == (
        users.ids["alice"],
        api.project.classifier_id,
        2,
    )
    assert [(i.url, i.points) for i in stored] == [
        ("https://example.org/1.jpg", [(10, 10), (20, 5)]),
        ("https://example.org/2.jpg", [(1, 2)]),
    ]


def test_deploy_content_type_and_json_errors(api: Api, users: Users) -> None:
    users.add("alice")
    headers = users.headers("alice")
    wrong = post_deploy(api, {**headers, "Content-Type": "application/json"})
    assert wrong.status_code == 415
    assert detail(wrong) == "Content type should be application/vnd.api+json, not application/json"
    parse = post_deploy(api, headers, "[abc")
    assert parse.status_code == 400 and detail(parse).startswith("JSON parse error - ")
    nan = post_deploy(api, headers, '{"data": NaN}')
    assert nan.status_code == 400 and detail(nan).startswith("JSON parse error - ")
    # No body at all is an empty document (DRF's rule), so the validator speaks.
    empty = api.client.post(api.deploy_url(), headers=headers)
    assert empty.status_code == 400
    assert errors(empty) == [
        {"detail": "Ensure this hash has a 'data' key.", "source": {"pointer": "/"}}
    ]
    # A charset parameter is fine.
    ok = post_deploy(api, {**headers, "Content-Type": MEDIA_TYPE + "; charset=utf-8"})
    assert ok.status_code == 202


def test_validation_error_is_the_first_only_with_its_pointer(api: Api, users: Users) -> None:
    users.add("alice")
    payload = body(image(points=[{"row": 10, "column": 10}, {"row": 10}]), "abc")  # type: ignore[arg-type]
    response = post_deploy(api, users.headers("alice"), payload)
    assert response.status_code == 400
    assert errors(response) == [
        {
            "detail": "Ensure this hash has a 'column' key.",
            "source": {"pointer": "/data/0/attributes/points/1"},
        }
    ]
    too_many = post_deploy(api, users.headers("alice"), json.dumps({"data": [{}] * 101}))
    assert errors(too_many) == [
        {"detail": "This array exceeds the max length of 100.", "source": {"pointer": "/data"}}
    ]
    assert api.queue.ids == []


def test_deploy_checks_run_in_coralnets_order(api: Api, users: Users) -> None:
    users.add("alice")
    headers = users.headers("alice")
    unknown = 999
    # Bad JSON comes before an unknown classifier ...
    response = post_deploy(api, headers, "[abc", classifier_id=unknown)
    assert response.status_code == 400 and detail(response).startswith("JSON parse error")
    # ... a wrong content type too ...
    response = post_deploy(api, {**headers, "Content-Type": "text/plain"}, classifier_id=unknown)
    assert response.status_code == 415
    # ... and an unknown classifier before validation.
    response = post_deploy(api, headers, "{}", classifier_id=unknown)
    assert response.status_code == 404
    assert errors(response) == [{"detail": "This classifier doesn't exist or is not accessible"}]
    # Five active jobs come before everything else.
    ids = [job_id_of(post_deploy(api, headers)) for _ in range(5)]
    response = post_deploy(api, headers, "[abc", classifier_id=unknown)
    assert response.status_code == 429
    assert errors(response) == [
        {
            "detail": f"You already have 5 jobs active (IDs: {', '.join(map(str, ids))}). "
            "You must wait until one of them finishes before requesting another job."
        }
    ]
    # One finishing makes room.
    set_state(api.project, ids[0], "done")
    assert post_deploy(api, headers).status_code == 202


def test_active_jobs_limit_is_per_user(make_api: Any, users: Users) -> None:
    api = make_api(max_active_jobs=2)
    users.add("alice", limits={"max_active_jobs": 3})
    users.add("bob")
    a = [job_id_of(post_deploy(api, users.headers("alice"))) for _ in range(3)]
    refused = post_deploy(api, users.headers("alice"))
    assert refused.status_code == 429
    assert detail(refused).startswith(
        f"You already have 3 jobs active (IDs: {a[0]}, {a[1]}, {a[2]})."
    )
    b = [job_id_of(post_deploy(api, users.headers("bob"))) for _ in range(2)]
    assert detail(post_deploy(api, users.headers("bob"))).startswith(
        f"You already have 2 jobs active (IDs: {b[0]}, {b[1]})."
    )


def test_per_user_image_and_point_limits(api: Api, users: Users) -> None:
    users.add("alice", limits={"images_per_job": 2, "points_per_image": 3})
    headers = users.headers("alice")
    three = body(image(), image(), image())
    assert errors(post_deploy(api, headers, three)) == [
        {"detail": "This array exceeds the max length of 2.", "source": {"pointer": "/data"}}
    ]
    four_points = body(image(points=[{"row": 1, "column": 1}] * 4))
    assert errors(post_deploy(api, headers, four_points)) == [
        {
            "detail": "This array exceeds the max length of 3.",
            "source": {"pointer": "/data/0/attributes/points"},
        }
    ]


def test_deploy_needs_a_viewer_role_on_the_classifiers_source(api: Api, users: Users) -> None:
    users.add("viewer", role="viewer", sources=["reef"])
    users.add("admin", role="admin")
    users.add("outsider", role=None)
    for name in ("viewer", "admin"):
        assert post_deploy(api, users.headers(name)).status_code == 202, name
    response = post_deploy(api, users.headers("outsider"))
    assert response.status_code == 404
    assert detail(response) == "This classifier doesn't exist or is not accessible"


def test_request_body_over_the_limit_is_413_before_parsing(make_api: Any, users: Users) -> None:
    api = make_api(request_bytes=1000)
    users.add("alice")
    big = body(*[image(f"https://example.org/{i:04d}.jpg") for i in range(40)])
    assert len(big) > 1000
    response = post_deploy(api, users.headers("alice"), big)
    assert response.status_code == 413
    (error,) = errors(response)
    assert "request_bytes" in error["detail"] and "1000 bytes" in error["detail"]
    assert error["meta"] == {"limit": "request_bytes", "max_bytes": 1000}
    # Without a Content-Length (chunked), the count stops the read.
    chunked = api.client.post(
        api.deploy_url(),
        content=(big[i : i + 100].encode() for i in range(0, len(big), 100)),
        headers={**JSONAPI, **users.headers("alice")},
    )
    assert chunked.status_code == 413
    assert errors(chunked)[0]["meta"]["limit"] == "request_bytes"
    assert api.queue.ids == []


# ------------------------------------------------------------------ status and result


def test_status_pending_in_progress_then_303(api: Api, users: Users) -> None:
    users.add("alice")
    headers = users.headers("alice")
    job_id = job_id_of(post_deploy(api, headers, body(image(), image())))
    url = f"/api/deploy_job/{job_id}/status/"
    pending = api.client.get(url, headers=headers)
    assert pending.status_code == 200 and pending.headers["content-type"] == MEDIA_TYPE
    assert pending.json() == {
        "data": [
            {
                "type": "job",
                "id": str(job_id),
                "attributes": {"status": "Pending", "successes": 0, "failures": 0, "total": 2},
            }
        ]
    }
    set_state(api.project, job_id, "in_progress")
    running = api.client.get(url, headers=headers).json()
    assert running["data"][0]["attributes"]["status"] == "In Progress"
    set_state(api.project, job_id, "done")
    done = api.client.get(url, headers=headers, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == f"/api/deploy_job/{job_id}/result/"
    assert done.content == b""


def test_result_409_until_done_then_images_in_request_order(api: Api, users: Users) -> None:
    users.add("alice")
    headers = users.headers("alice")
    urls = ["https://example.org/bad.jpg", "https://example.org/good.jpg"]
    payload = body(
        image(urls[0]), image(urls[1], [{"row": 3, "column": 4}, {"row": 5, "column": 6}])
    )
    job_id = job_id_of(post_deploy(api, headers, payload))
    url = f"/api/deploy_job/{job_id}/result/"
    early = api.client.get(url, headers=headers)
    assert early.status_code == 409
    assert errors(early) == [{"detail": "This job isn't finished yet"}]
    set_state(api.project, job_id, "done")
    response = api.client.get(url, headers=headers)
    assert response.status_code == 200
    data = response.json()["data"]
    assert data[0] == {
        "type": "image",
        "id": urls[0],
        "attributes": {"url": urls[0], "errors": ["Failed to download: 404"]},
    }
    assert data[1]["type"] == "image" and data[1]["id"] == urls[1]
    attributes = data[1]["attributes"]
    assert attributes["url"] == urls[1]
    assert [(p["row"], p["column"]) for p in attributes["points"]] == [(3, 4), (5, 6)]
    for point in attributes["points"]:
        assert len(point["classifications"]) == 5  # top 5 of 7
        assert set(point["classifications"][0]) == {"label_id", "label_name", "label_code", "score"}
        scores = [c["score"] for c in point["classifications"]]
        assert scores == sorted(scores, reverse=True)
    # The status URL, followed, now gives the result (what requests does with a 303).
    followed = api.client.get(f"/api/deploy_job/{job_id}/status/", headers=headers)
    assert followed.status_code == 200 and followed.json() == response.json()


def test_jobs_of_others_and_unknown_jobs_are_404(api: Api, users: Users) -> None:
    users.add("alice")
    users.add("bob")
    job_id = job_id_of(post_deploy(api, users.headers("alice")))
    for path in ("status", "result"):
        for who, jid in (("bob", job_id), ("alice", job_id + 100)):
            response = api.client.get(f"/api/deploy_job/{jid}/{path}/", headers=users.headers(who))
            assert response.status_code == 404
            assert errors(response) == [
                {"detail": "This deploy job doesn't exist or is not accessible"}
            ]


# ------------------------------------------------------------------ user


def test_user_endpoint_lists_own_jobs_only(make_api: Any, users: Users) -> None:
    api = make_api()
    users.add("alice", limits={"max_active_jobs": 2})
    users.add("bob")
    headers = users.headers("alice")
    finished = []
    for _ in range(6):
        job_id = job_id_of(post_deploy(api, headers))
        set_state(api.project, job_id, "done")
        finished.append(job_id)
        time.sleep(0.01)  # distinct finish times
    active = [job_id_of(post_deploy(api, headers)) for _ in range(2)]
    response = api.client.get("/api/user/alice/", headers=headers)
    assert response.status_code == 200 and response.headers["content-type"] == MEDIA_TYPE
    assert response.json() == {
        "data": {
            "active_jobs": [{"type": "jobs", "id": str(i)} for i in active],
            # up to 2 x max_active_jobs, newest first
            "recently_completed_jobs": [
                {"type": "jobs", "id": str(i)} for i in reversed(finished[-4:])
            ],
        },
        "meta": {"max_active_jobs": 2},
    }
    other = api.client.get("/api/user/bob/", headers=headers)
    assert other.status_code == 404
    assert errors(other) == [
        {"detail": "You can only see details for the user you're logged in as"}
    ]
    bob = api.client.get("/api/user/bob/", headers=users.headers("bob")).json()
    assert bob == {
        "data": {"active_jobs": [], "recently_completed_jobs": []},
        "meta": {"max_active_jobs": 5},
    }


# ------------------------------------------------------------------ throttling


def test_throttling_per_user_with_coralnets_message(make_api: Any, users: Users) -> None:
    api = make_api(requests_per_minute=3)
    users.add("alice")
    users.add("bob")
    for _ in range(3):
        assert api.client.get("/api/user/alice/", headers=users.headers("alice")).status_code == 200
    throttled = api.client.get("/api/user/alice/", headers=users.headers("alice"))
    assert throttled.status_code == 429
    message = detail(throttled)
    match = re.fullmatch(r"Request was throttled\. Expected available in (\d+) seconds?\.", message)
    assert match and 1 <= int(match.group(1)) <= 60
    assert throttled.headers["retry-after"] == match.group(1)
    # Every endpoint counts; other users are not affected.
    assert post_deploy(api, users.headers("alice")).status_code == 429
    assert api.client.get("/api/user/bob/", headers=users.headers("bob")).status_code == 200


def test_hourly_limit_and_per_user_override(make_api: Any, users: Users) -> None:
    api = make_api(requests_per_hour=2)
    users.add("alice")
    users.add("power", limits={"requests_per_hour": 5})
    codes = [
        api.client.get("/api/user/alice/", headers=users.headers("alice")).status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]
    message = detail(api.client.get("/api/user/alice/", headers=users.headers("alice")))
    wait = int(re.findall(r"\d+", message)[0])
    assert 3000 < wait <= 3600
    codes = [
        api.client.get("/api/user/power/", headers=users.headers("power")).status_code
        for _ in range(6)
    ]
    assert codes == [200] * 5 + [429]


def test_token_auth_is_throttled_per_address(make_api: Any, users: Users) -> None:
    api = make_api(requests_per_minute=2)
    users.add("alice")
    payload = json.dumps({"username": "alice", "password": "wrong"})
    codes = [
        api.client.post("/api/token_auth/", content=payload, headers=JSONAPI).status_code
        for _ in range(3)
    ]
    assert codes == [400, 400, 429]


def test_rate_limiter_sliding_window() -> None:
    now = [1000.0]
    limiter = RateLimiter(clock=lambda: now[0])
    rates = [(2, 60.0), (3, 3600.0)]
    assert limiter.hit("k", rates) is None
    now[0] += 10
    assert limiter.hit("k", rates) is None
    assert limiter.hit("k", rates) == 50  # the first leaves the minute at t=1060
    assert limiter.hit("other", rates) is None
    now[0] += 50.5
    assert limiter.hit("k", rates) is None  # refused requests were not counted
    # The minute frees at 1070 (9.5 s), the hour (3 counted) at 4600 (3539.5 s): the longer.
    assert limiter.hit("k", rates) == 3540
    now[0] += 3600
    assert limiter.hit("k", rates) is None
    assert throttled_message(1) == "Request was throttled. Expected available in 1 second."
    assert throttled_message(7) == "Request was throttled. Expected available in 7 seconds."


# ------------------------------------------------------------------ beyond CoralNet


def test_paths_under_the_image_folder(make_api: Any, users: Users, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    (folder / "site3").mkdir(parents=True)
    (folder / "site3" / "a.jpg").write_bytes(make_jpeg())
    api = make_api(image_folder=folder)
    users.add("alice")
    headers = users.headers("alice")
    job_id = job_id_of(post_deploy(api, headers, body(image("site3/a.jpg"))))
    store = store_of(api.project)
    with store.session() as session:
        assert [i.url for i in job_rows.job_images(session, job_id)] == ["site3/a.jpg"]
    store.close()
    for bad in ("../secret.jpg", "/etc/passwd", "site3/../../x.jpg"):
        response = post_deploy(api, headers, body(image(), image(bad)))
        assert response.status_code == 400, bad
        assert errors(response) == [
            {
                "detail": "Ensure this path is a relative path inside the server's image folder.",
                "source": {"pointer": "/data/1/attributes/url"},
            }
        ]
    # URLs with a scheme are left to the worker (http(s) only, checked when fetched).
    assert post_deploy(api, headers, body(image("https://example.org/x.jpg"))).status_code == 202


def test_multipart_upload(api: Api, users: Users) -> None:
    users.add("alice")
    headers = users.headers("alice")
    jpeg = make_jpeg(seed=3)
    document = body(
        image("upload:reef 1.jpg", [{"row": 1, "column": 2}]), image("https://example.org/b.jpg")
    )
    response = api.client.post(
        api.deploy_url(),
        data={"data": document},
        files=[
            ("images", ("reef 1.jpg", jpeg, "image/jpeg")),
            ("images", ("unused.jpg", b"x", "image/jpeg")),
        ],
        headers=headers,
    )
    job_id = job_id_of(response)
    store = store_of(api.project)
    with store.session() as session:
        stored = job_rows.job_images(session, job_id)
    store.close()
    digest = hashlib.sha256(jpeg).hexdigest()
    assert [(i.url, i.points) for i in stored] == [
        (f"upload:{digest}", [(1, 2)]),
        ("https://example.org/b.jpg", [(10, 10)]),
    ]
    from quadrat.service.uploads import upload_path

    assert upload_path(api.settings, f"upload:{digest}").read_bytes() == jpeg
    # A url naming no uploaded file, and a JSON body naming an upload.
    missing = api.client.post(
        api.deploy_url(),
        data={"data": body(image("upload:other.jpg"))},
        files=[("images", ("reef 1.jpg", jpeg, "image/jpeg"))],
        headers=headers,
    )
    assert errors(missing) == [
        {
            "detail": "No file named 'other.jpg' was uploaded with this request.",
            "source": {"pointer": "/data/0/attributes/url"},
        }
    ]
    as_json = post_deploy(api, headers, body(image(f"upload:{digest}")))
    assert as_json.status_code == 400
    # The same order of checks and messages as a JSON body.
    no_data = api.client.post(
        api.deploy_url(), files=[("images", ("a.jpg", jpeg, "image/jpeg"))], headers=headers
    )
    assert errors(no_data) == [
        {"detail": "Ensure this hash has a 'data' key.", "source": {"pointer": "/"}}
    ]
    bad_json = api.client.post(
        api.deploy_url(), files={"data": (None, "[abc", MEDIA_TYPE)}, headers=headers
    )
    assert bad_json.status_code == 400 and detail(bad_json).startswith("JSON parse error - ")
    # Form fields alone are not multipart: the media type is CoralNet's or multipart.
    form = api.client.post(api.deploy_url(), data={"data": document}, headers=headers)
    assert form.status_code == 415
    assert detail(form) == (
        "Content type should be application/vnd.api+json, not application/x-www-form-urlencoded"
    )


def test_multipart_limits(make_api: Any, users: Users) -> None:
    from quadrat.limits import Limits

    api = make_api(limits=Limits(image_file_bytes=1000), upload_request_bytes=50_000)
    users.add("alice")
    headers = users.headers("alice")
    big = make_jpeg(seed=1)
    assert 1000 < len(big) < 50_000
    response = api.client.post(
        api.deploy_url(),
        data={"data": body(image("upload:big.jpg"))},
        files=[("images", ("big.jpg", big, "image/jpeg"))],
        headers=headers,
    )
    assert response.status_code == 413
    (error,) = errors(response)
    assert error["meta"] == {"limit": "image_file_bytes", "max_bytes": 1000}
    assert "big.jpg" in error["detail"]
    huge = api.client.post(
        api.deploy_url(),
        data={"data": body(image("upload:a.jpg"))},
        files=[("images", ("a.jpg", b"\xff" * 60_000, "image/jpeg"))],
        headers=headers,
    )
    assert huge.status_code == 413
    assert errors(huge)[0]["meta"] == {"limit": "upload_request_bytes", "max_bytes": 50_000}


# ------------------------------------------------------------------ the real server


def _requests_session(base: str, username: str) -> Any:
    import requests

    session = requests.Session()
    response = session.post(
        f"{base}/api/token_auth/",
        data=json.dumps({"username": username, "password": PASSWORD}),
        headers=JSONAPI,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    session.headers.update(
        {"Authorization": f"Token {response.json()['token']}", "Content-Type": MEDIA_TYPE}
    )
    return session


def _wait_for_result(session: Any, base: str, location: str, seconds: float = 240) -> Any:
    """Poll the status as CoralNet clients do; requests follows the 303 to the result."""
    deadline = time.monotonic() + seconds
    while True:
        response = session.get(base + location, timeout=30)
        if response.status_code == 429:  # a polite client waits as told
            time.sleep(int(response.headers["Retry-After"]))
            continue
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        if data and "status" not in data[0]["attributes"]:
            assert response.history and response.history[0].status_code == 303
            return data
        attributes = data[0]["attributes"]
        assert attributes["status"] in ("Pending", "In Progress")
        assert attributes["total"] >= attributes["successes"] + attributes["failures"]
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(1.0)


def test_end_to_end_against_the_real_server(
    live_server: LiveServer, users: Users, image_server: Any, trained_project: TrainedProject
) -> None:
    users.add("alice")
    base = live_server.base
    session = _requests_session(base, "alice")
    good = next(n for n in image_server.files if n not in ("noise.jpg", "not-an-image.jpg"))
    payload = body(
        image(image_server.url(good), [{"row": 10, "column": 10}, {"row": 100, "column": 200}]),
        image(image_server.url("missing.jpg")),
        image(image_server.url("not-an-image.jpg")),
        image(image_server.url(good), [{"row": 5000, "column": 10}]),
    )
    response = session.post(
        f"{base}{trained_project_deploy(trained_project)}", data=payload, timeout=30
    )
    assert response.status_code == 202 and response.content == b""
    location = response.headers["Location"]
    assert re.fullmatch(r"/api/deploy_job/\d+/status/", location)
    data = _wait_for_result(session, base, location)
    assert [d["id"] for d in data] == [
        image_server.url(good),
        image_server.url("missing.jpg"),
        image_server.url("not-an-image.jpg"),
        image_server.url(good),
    ]
    first = data[0]["attributes"]
    assert [(p["row"], p["column"]) for p in first["points"]] == [(10, 10), (100, 200)]
    known = {label_id: (name, code) for label_id, name, code in trained_project.labels}
    for point in first["points"]:
        classes = point["classifications"]
        assert len(classes) == min(5, len(known))
        for c in classes:
            assert known[c["label_id"]] == (c["label_name"], c["label_code"])
            assert 0.0 <= c["score"] <= 1.0
        assert [c["score"] for c in classes] == sorted((c["score"] for c in classes), reverse=True)
    for failed in data[1:]:
        assert set(failed["attributes"]) == {"url", "errors"}
        (line,) = failed["attributes"]["errors"]
        assert line and "\n" not in line
    assert (
        "Row value 5000 falls outside this image's valid range"
        in data[3]["attributes"]["errors"][0]
    )
    result = session.get(base + location.replace("status", "result"), timeout=30)
    assert result.status_code == 200 and result.json()["data"] == data
    # A body over the limit is answered 413 from its Content-Length, and the client sees it.
    big = session.post(
        f"{base}{trained_project_deploy(trained_project)}", data=b" " * (5 << 20), timeout=60
    )
    assert big.status_code == 413
    assert big.json()["errors"][0]["meta"] == {"limit": "request_bytes", "max_bytes": 4 << 20}


def trained_project_deploy(project: TrainedProject) -> str:
    return f"/api/classifier/{project.classifier_id}/deploy/"


def test_coralnet_toolbox_style_client_loop(
    live_server: LiveServer, users: Users, image_server: Any, trained_project: TrainedProject
) -> None:
    """Batches within the limits, at most N jobs active, poll each, read every result.

    The user's own limit of 2 active jobs makes the client meet the 429 and wait, as
    CoralNet-Toolbox does at 5.
    """
    users.add("alice", limits={"max_active_jobs": 2})
    base = live_server.base
    session = _requests_session(base, "alice")
    good = [n for n in image_server.files if n not in ("noise.jpg", "not-an-image.jpg")]
    batches = [
        [
            image(
                image_server.url(good[(b + i) % len(good)]),
                [{"row": 5 + 7 * k, "column": 9 + 11 * k} for k in range(20)],
            )
            for i in range(3)
        ]
        for b in range(7)
    ]
    active: list[str] = []
    results: list[Any] = []
    for batch in batches:
        while True:
            response = session.post(
                base + trained_project_deploy(trained_project), data=body(*batch), timeout=30
            )
            if response.status_code == 202:
                active.append(response.headers["Location"])
                break
            assert response.status_code == 429, response.text
            assert "jobs active" in response.json()["errors"][0]["detail"]
            results.append(_wait_for_result(session, base, active.pop(0)))
        me = session.get(f"{base}/api/user/alice/", timeout=30).json()
        assert len(me["data"]["active_jobs"]) <= me["meta"]["max_active_jobs"] == 2
    while active:
        results.append(_wait_for_result(session, base, active.pop(0)))
    assert len(results) == len(batches)
    for data in results:
        assert len(data) == 3
        for item in data:
            points = item["attributes"]["points"]
            assert len(points) == 20 and all(p["classifications"] for p in points)
    me = session.get(f"{base}/api/user/alice/", timeout=30).json()
    assert me["data"]["active_jobs"] == [] and me["meta"] == {"max_active_jobs": 2}
    assert len(me["data"]["recently_completed_jobs"]) == 4  # 2 x max_active_jobs


def test_importing_the_app_loads_no_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, quadrat.service.app; "
        "print(sorted(m for m in ('torch', 'timm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_second_open_in_one_process_keeps_its_writes(tmp_path: Path) -> None:
    """A server opens its project more than once (app, queue, recovery); another process
    (a worker) opening and closing it must not take itself for the last user and delete
    the -wal under the server: a header read with open()/close() dropped the locks."""
    import subprocess
    import sys

    from quadrat.store import accounts as rows

    db = tmp_path / "p.db"
    Store.create(db).close()
    first = Store.open(db)
    second = Store.open(db)
    try:
        with second.session() as session:
            rows.add_user(session, "u1", "hash")
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"from quadrat.store.project import Store; Store.open({str(db)!r}).close()",
            ],
            check=True,
        )
        with second.session() as session:
            rows.add_user(session, "u2", "hash")
        code = (
            f"import sqlite3; c = sqlite3.connect({str(db)!r}); "
            "print(sorted(r[0] for r in c.execute('select username from users')))"
        )
        seen = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert seen.stdout.strip() == "['u1', 'u2']"
    finally:
        second.close()
        first.close()


# ------------------------------------------------------------------ PostgreSQL


def test_the_contract_on_postgresql(postgres_url: str, survey_template: Any) -> None:
    """The same answers with the project in PostgreSQL (the in-process app, a fake queue)."""
    from fastapi.testclient import TestClient

    from quadrat.service.app import create_app
    from quadrat.service.settings import ServiceSettings
    from tests.service.conftest import FakeQueue, build_trained

    project = build_trained(postgres_url, survey_template)
    users = Users(postgres_url)
    users.add("alice", limits={"max_active_jobs": 2})
    users.add("bob")
    queue = FakeQueue()
    settings = ServiceSettings(database=postgres_url)
    with TestClient(create_app(settings, queue=queue)) as client:
        api = Api(client, queue, settings, project)
        token = client.post(
            "/api/token_auth/",
            content=json.dumps({"username": "alice", "password": PASSWORD}),
            headers=JSONAPI,
        )
        assert token.status_code == 200 and list(token.json()) == ["token"]
        headers = {"Authorization": f"Token {token.json()['token']}"}
        first = job_id_of(post_deploy(api, headers, body(image(), image("https://e.org/2.jpg"))))
        second = job_id_of(post_deploy(api, headers))
        refused = post_deploy(api, headers)
        assert refused.status_code == 429
        assert detail(refused).startswith(
            f"You already have 2 jobs active (IDs: {first}, {second})."
        )
        assert queue.ids == [first, second]
        status = client.get(f"/api/deploy_job/{first}/status/", headers=headers)
        assert status.json()["data"][0]["attributes"] == {
            "status": "Pending",
            "successes": 0,
            "failures": 0,
            "total": 2,
        }
        assert client.get(f"/api/deploy_job/{first}/result/", headers=headers).status_code == 409
        set_state(project, first, "done")
        done = client.get(
            f"/api/deploy_job/{first}/status/", headers=headers, follow_redirects=False
        )
        assert done.status_code == 303
        result = client.get(f"/api/deploy_job/{first}/result/", headers=headers).json()["data"]
        assert [r["id"] for r in result] == ["https://example.org/a.jpg", "https://e.org/2.jpg"]
        assert "errors" in result[0]["attributes"] and "points" in result[1]["attributes"]
        other = client.get(f"/api/deploy_job/{first}/status/", headers=users.headers("bob"))
        assert other.status_code == 404
        me = client.get("/api/user/alice/", headers=headers).json()
        assert me == {
            "data": {
                "active_jobs": [{"type": "jobs", "id": str(second)}],
                "recently_completed_jobs": [{"type": "jobs", "id": str(first)}],
            },
            "meta": {"max_active_jobs": 2},
        }
        invalid = post_deploy(
            api, users.headers("bob"), body(image(points=[{"row": -1, "column": 0}]))
        )
        assert errors(invalid) == [
            {
                "detail": "This element's value is below the minimum of 0.",
                "source": {"pointer": "/data/0/attributes/points/0/row"},
            }
        ]


def test_ids_beyond_the_databases_integers_are_not_found(api: Api, users: Users) -> None:
    users.add("alice")
    headers = users.headers("alice")
    huge = 2**70
    response = post_deploy(api, headers, classifier_id=huge)
    assert response.status_code == 404 and detail(response).startswith("This classifier")
    for path in ("status", "result"):
        response = api.client.get(f"/api/deploy_job/{huge}/{path}/", headers=headers)
        assert response.status_code == 404 and detail(response).startswith("This deploy job")


def test_a_body_of_another_media_type_is_refused_unread(make_api: Any, users: Users) -> None:
    """415 comes from the headers, before the body is parsed (or, here, could be: not a form)."""
    api = make_api()
    users.add("alice")
    response = api.client.post(
        "/api/token_auth/",
        content=b"x" * 1_000_000,
        headers={"Content-Type": "multipart/form-data"},
    )
    assert response.status_code == 415
    assert detail(response) == (
        "Content type should be application/vnd.api+json, not multipart/form-data"
    )
    # An empty body of any type is an empty document (DRF's rule).
    empty = api.client.post("/api/token_auth/", headers={"Content-Type": "text/plain"})
    assert errors(empty) == [
        {"username": ["This field is required."], "password": ["This field is required."]}
    ]


def test_end_to_end_on_postgresql(
    postgres_url: str, survey_template: Any, image_server: Any, tmp_path: Path
) -> None:
    """The real server and its worker on a PostgreSQL project, through requests."""
    from tests.service.conftest import build_trained, start_server, stop_server

    pytest.importorskip("quadrat.service.server")
    project = build_trained(postgres_url, survey_template)
    Users(postgres_url).add("alice")
    server = start_server(postgres_url, tmp_path / "server.log")
    try:
        session = _requests_session(server.base, "alice")
        good = next(n for n in image_server.files if n not in ("noise.jpg", "not-an-image.jpg"))
        payload = body(
            image(image_server.url(good), [{"row": 10, "column": 10}, {"row": 20, "column": 30}]),
            image(image_server.url("missing.jpg")),
        )
        response = session.post(
            server.base + trained_project_deploy(project), data=payload, timeout=30
        )
        assert response.status_code == 202, response.text
        data = _wait_for_result(session, server.base, response.headers["Location"])
        assert [len(d["attributes"].get("points", [])) for d in data] == [2, 0]
        assert all(p["classifications"] for p in data[0]["attributes"]["points"])
        assert len(data[1]["attributes"]["errors"]) == 1
    finally:
        stop_server(server.process)
