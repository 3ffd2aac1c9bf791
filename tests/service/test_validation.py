"""The deploy payload validator alone: every CoralNet message, at its JSON pointer, first only."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from quadrat.errors import InputError, PayloadError
from quadrat.service.validation import (
    MAX_URL_LENGTH,
    DeployImageRequest,
    error_item,
    pointer,
    validate_deploy,
)


def image(url: Any = "https://example.org/a.jpg", points: Any = None, **extra: Any) -> Any:
    attributes = {"url": url, "points": [{"row": 10, "column": 20}] if points is None else points}
    return {"type": "image", "attributes": attributes, **extra}


def doc(*images: Any) -> dict[str, Any]:
    return {"data": list(images) or [image()]}


POINT = {"row": 1, "column": 2}

# (case, payload, message, pointer): CoralNet's api_core/forms.py rules, in its order.
CASES: list[tuple[str, Any, str, str]] = [
    ("document is an array", [], "Ensure this element is a hash.", "/"),
    ("document is a string", "data", "Ensure this element is a hash.", "/"),
    ("document is null", None, "Ensure this element is a hash.", "/"),
    ("no data key", {}, "Ensure this hash has a 'data' key.", "/"),
    ("data is a string", {"data": "a string"}, "Ensure this element is an array.", "/data"),
    ("data is a hash", {"data": {}}, "Ensure this element is an array.", "/data"),
    ("data is empty", {"data": []}, "Ensure this array is non-empty.", "/data"),
    (
        "101 images (checked before any image)",
        {"data": [{}] * 101},
        "This array exceeds the max length of 100.",
        "/data",
    ),
    ("image is a string", {"data": ["abc"]}, "Ensure this element is a hash.", "/data/0"),
    (
        "image without type",
        {"data": [{"attributes": {}}]},
        "Ensure this hash has a 'type' key.",
        "/data/0",
    ),
    (
        "image without attributes",
        {"data": [{"type": "image"}]},
        "Ensure this hash has a 'attributes' key.",
        "/data/0",
    ),
    (
        "type is not image",
        {"data": [{"type": "point", "attributes": {}}]},
        "This element should be equal to 'image'.",
        "/data/0/type",
    ),
    (
        "type is not a string",
        {"data": [{"type": 1, "attributes": {}}]},
        "Ensure this element is a string.",
        "/data/0/type",
    ),
    (
        "attributes is an array",
        {"data": [{"type": "image", "attributes": []}]},
        "Ensure this element is a hash.",
        "/data/0/attributes",
    ),
    (
        "no url",
        {"data": [{"type": "image", "attributes": {"points": []}}]},
        "Ensure this hash has a 'url' key.",
        "/data/0/attributes",
    ),
    (
        "no points",
        {"data": [{"type": "image", "attributes": {"url": "URL 1"}}]},
        "Ensure this hash has a 'points' key.",
        "/data/0/attributes",
    ),
    (
        "url is an array",
        doc(image(url=[], points=[])),
        "Ensure this element is a string.",
        "/data/0/attributes/url",
    ),
    (
        "url is a number",
        doc(image(url=5)),
        "Ensure this element is a string.",
        "/data/0/attributes/url",
    ),
    (
        "url longer than the store keeps",
        doc(image(url="h" * (MAX_URL_LENGTH + 1))),
        f"Ensure this element has no more than {MAX_URL_LENGTH} characters.",
        "/data/0/attributes/url",
    ),
    (
        "points is a string",
        doc(image(points="abc")),
        "Ensure this element is an array.",
        "/data/0/attributes/points",
    ),
    (
        "points is empty",
        doc(image(points=[])),
        "Ensure this array is non-empty.",
        "/data/0/attributes/points",
    ),
    (
        "201 points",
        doc(image(points=[{}] * 201)),
        "This array exceeds the max length of 200.",
        "/data/0/attributes/points",
    ),
    (
        "point is a string",
        doc(image(points=["abc"])),
        "Ensure this element is a hash.",
        "/data/0/attributes/points/0",
    ),
    (
        "point without row",
        doc(image(points=[{"column": 10}])),
        "Ensure this hash has a 'row' key.",
        "/data/0/attributes/points/0",
    ),
    (
        "point without column",
        doc(image(points=[{"row": 10}])),
        "Ensure this hash has a 'column' key.",
        "/data/0/attributes/points/0",
    ),
    (
        "row is a string",
        doc(image(points=[{"row": "10", "column": 0}])),
        "Ensure this element is an integer.",
        "/data/0/attributes/points/0/row",
    ),
    (
        "row is a float",
        doc(image(points=[{"row": 10.0, "column": 0}])),
        "Ensure this element is an integer.",
        "/data/0/attributes/points/0/row",
    ),
    (
        "column is a boolean",
        doc(image(points=[{"row": 0, "column": True}])),
        "Ensure this element is an integer.",
        "/data/0/attributes/points/0/column",
    ),
    (
        "row below 0",
        doc(image(points=[{"row": -1, "column": 0}])),
        "This element's value is below the minimum of 0.",
        "/data/0/attributes/points/0/row",
    ),
    (
        "column below 0",
        doc(image(points=[{"row": 0, "column": -1}])),
        "This element's value is below the minimum of 0.",
        "/data/0/attributes/points/0/column",
    ),
    (
        "second image's error",
        doc(image(), {"type": "image", "attributes": {"points": []}}),
        "Ensure this hash has a 'url' key.",
        "/data/1/attributes",
    ),
    (
        "second point's error",
        doc(image(points=[{"row": 10, "column": 10}, {"row": 10}])),
        "Ensure this hash has a 'column' key.",
        "/data/0/attributes/points/1",
    ),
    (
        "first of two errors only",
        doc(image(points=[{"row": -1, "column": -1}]), "abc"),
        "This element's value is below the minimum of 0.",
        "/data/0/attributes/points/0/row",
    ),
]


@pytest.mark.parametrize(
    ("payload", "message", "where"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_error_has_coralnets_message_and_pointer(
    payload: Any, message: str, where: str
) -> None:
    with pytest.raises(PayloadError) as caught:
        validate_deploy(copy.deepcopy(payload))
    assert caught.value.message == message
    assert caught.value.pointer == where
    assert error_item(caught.value) == {"detail": message, "source": {"pointer": where}}
    assert isinstance(caught.value, InputError) and caught.value.param == "data"


def test_a_valid_request_gives_images_in_order_and_ignores_extra_keys() -> None:
    payload = {
        "data": [
            image("https://example.org/1.jpg", [{"row": 0, "column": 0, "note": "x"}], id="a"),
            {
                "type": "image",
                "attributes": {
                    "url": "site3/IMG_0001.JPG",
                    "name": "IMG_0001.JPG",  # CoralNet-Toolbox sends a name
                    "points": [{"row": 5, "column": 7}, {"row": 2999, "column": 0}],
                },
            },
        ],
        "meta": {"anything": True},
    }
    assert validate_deploy(payload) == [
        DeployImageRequest("https://example.org/1.jpg", [(0, 0)]),
        DeployImageRequest("site3/IMG_0001.JPG", [(5, 7), (2999, 0)]),
    ]


def test_limits_are_the_callers() -> None:
    two = doc(image(), image())
    with pytest.raises(PayloadError, match=r"max length of 1\.") as caught:
        validate_deploy(two, images_per_job=1)
    assert caught.value.pointer == "/data"
    assert len(validate_deploy(two, images_per_job=2)) == 2
    many = doc(image(points=[POINT] * 201))
    assert len(validate_deploy(many, points_per_image=201)[0].points) == 201
    with pytest.raises(PayloadError, match=r"max length of 3\.") as caught:
        validate_deploy(doc(image(points=[POINT] * 4)), points_per_image=3)
    assert caught.value.pointer == "/data/0/attributes/points"


def test_exactly_the_limits_pass() -> None:
    full = {"data": [image(points=[POINT] * 200) for _ in range(100)]}
    images = validate_deploy(full)
    assert len(images) == 100 and all(len(i.points) == 200 for i in images)


def test_pointer_escapes_as_rfc6901() -> None:
    assert pointer(("a/b", "c~d", 0)) == "/a~1b/c~0d/0"
    assert pointer(()) == "/"
