"""A deploy request whose uploads would take a user over ``upload_bytes_per_user`` is a
413 naming the limit; an image the user's jobs already hold counts once."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("fastapi")

from tests.service.conftest import Api, Users, make_jpeg


def _deploy(api: Api, headers: dict[str, str], *jpegs: tuple[str, bytes]) -> object:
    document = json.dumps(
        {
            "data": [
                {
                    "type": "image",
                    "attributes": {"url": f"upload:{name}", "points": [{"row": 1, "column": 2}]},
                }
                for name, _ in jpegs
            ]
        }
    )
    return api.client.post(
        api.deploy_url(),
        data={"data": document},
        files=[("images", (name, data, "image/jpeg")) for name, data in jpegs],
        headers=headers,
    )


def test_uploads_over_the_users_quota_are_a_413(api: Api, users: Users) -> None:
    first, second = make_jpeg(seed=1), make_jpeg(seed=2)
    users.add("alice", limits={"upload_bytes_per_user": len(first) + len(second) // 2})
    headers = users.headers("alice")
    assert _deploy(api, headers, ("a.jpg", first)).status_code == 202  # type: ignore[attr-defined]
    # The same image again is held already: it costs nothing more.
    assert _deploy(api, headers, ("again.jpg", first)).status_code == 202  # type: ignore[attr-defined]
    refused = _deploy(api, headers, ("b.jpg", second))
    assert refused.status_code == 413  # type: ignore[attr-defined]
    [error] = refused.json()["errors"]  # type: ignore[attr-defined]
    assert "upload_bytes_per_user" in error["detail"]
    assert error["meta"] == {
        "limit": "upload_bytes_per_user",
        "max_bytes": len(first) + len(second) // 2,
    }
    # Another user has a quota of their own.
    users.add("bob")
    assert _deploy(api, users.headers("bob"), ("b.jpg", second)).status_code == 202  # type: ignore[attr-defined]
