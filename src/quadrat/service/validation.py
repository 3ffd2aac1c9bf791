"""The deploy request's payload, checked the way CoralNet's API checks it.

Existing clients read these errors, so the rules, their order and the messages are
CoralNet's (``api_core/forms.py`` and ``vision_backend_api``'s deploy validator): the first
problem found is reported alone, with a JSON pointer to the element at fault
(``/data/0/attributes/points/1``; the document itself is ``/``). Keys nobody asked for are
ignored (clients send ``name`` inside ``attributes``).

Two differences, both stricter and both about values no CoralNet client sends: a JSON
``true`` is not an integer here (Python's ``bool`` is an ``int``, so CoralNet takes it as 1),
and a url longer than the store keeps (:data:`MAX_URL_LENGTH`) is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from quadrat.errors import PayloadError

#: Longest image url accepted (``deploy_images.url`` holds 4096 characters).
MAX_URL_LENGTH = 4096


@dataclass(frozen=True)
class DeployImageRequest:
    """One image of a valid request: its url as sent and its points as (row, column)."""

    url: str
    points: list[tuple[int, int]]


_Where = tuple[str | int, ...]


def pointer(path: _Where) -> str:
    """RFC 6901 pointer, as CoralNet writes it (``/`` for the whole document)."""
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path)


def payload_error(detail: str, path: _Where) -> PayloadError:
    """The error to raise for the element at ``path`` (its pointer in ``value``)."""
    return PayloadError(detail, value=pointer(path), param="data")


def error_item(exc: PayloadError) -> dict[str, Any]:
    """The JSON:API error object of a payload error (one item of ``errors``)."""
    return {"detail": exc.message, "source": {"pointer": exc.pointer}}


def _hash(element: Any, path: _Where, keys: tuple[str, ...] = ()) -> Mapping[str, Any]:
    if not isinstance(element, Mapping):
        raise payload_error("Ensure this element is a hash.", path)
    for key in keys:
        if key not in element:
            raise payload_error(f"Ensure this hash has a '{key}' key.", path)
    return element


def _array(element: Any, path: _Where, *, max_length: int) -> list[Any]:
    if not isinstance(element, list):
        raise payload_error("Ensure this element is an array.", path)
    if not element:
        raise payload_error("Ensure this array is non-empty.", path)
    if len(element) > max_length:
        raise payload_error(f"This array exceeds the max length of {max_length}.", path)
    return element


def _string(element: Any, path: _Where, *, equal_to: str | None = None) -> str:
    if not isinstance(element, str):
        raise payload_error("Ensure this element is a string.", path)
    if equal_to is not None and element != equal_to:
        raise payload_error(f"This element should be equal to '{equal_to}'.", path)
    return element


def _integer(element: Any, path: _Where, *, min_value: int) -> int:
    if isinstance(element, bool) or not isinstance(element, int):
        raise payload_error("Ensure this element is an integer.", path)
    if element < min_value:
        raise payload_error(f"This element's value is below the minimum of {min_value}.", path)
    return element


def validate_deploy(
    document: Any, *, images_per_job: int = 100, points_per_image: int = 200
) -> list[DeployImageRequest]:
    """The images of a deploy request, in request order; a :class:`PayloadError` if invalid.

    ``document`` is the parsed JSON body. The limits are the caller's (the server's, or
    the user's own): CoralNet's are 100 images and 200 points an image.
    """
    root = _hash(document, (), ("data",))
    images = _array(root["data"], ("data",), max_length=images_per_job)
    out: list[DeployImageRequest] = []
    for i, image in enumerate(images):
        at: _Where = ("data", i)
        spec = _hash(image, at, ("type", "attributes"))
        _string(spec["type"], (*at, "type"), equal_to="image")
        attributes = _hash(spec["attributes"], (*at, "attributes"), ("url", "points"))
        url = _string(attributes["url"], (*at, "attributes", "url"))
        if len(url) > MAX_URL_LENGTH:
            raise payload_error(
                f"Ensure this element has no more than {MAX_URL_LENGTH} characters.",
                (*at, "attributes", "url"),
            )
        points_at: _Where = (*at, "attributes", "points")
        points = _array(attributes["points"], points_at, max_length=points_per_image)
        parsed: list[tuple[int, int]] = []
        for j, point in enumerate(points):
            point_at: _Where = (*points_at, j)
            spec_point = _hash(point, point_at, ("row", "column"))
            row = _integer(spec_point["row"], (*point_at, "row"), min_value=0)
            column = _integer(spec_point["column"], (*point_at, "column"), min_value=0)
            parsed.append((row, column))
        out.append(DeployImageRequest(url=url, points=parsed))
    return out


def python_type_name(value: Any) -> str:
    return {type(None): "NoneType"}.get(type(value), type(value).__name__)


def char_field(body: dict[str, Any], name: str, *, trim: bool) -> tuple[str, str | None]:
    """A DRF ``CharField``: the value, or the error DRF would give for it."""
    if name not in body:
        return "", "This field is required."
    value = body[name]
    if value is None:
        return "", "This field may not be null."
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return "", "Not a valid string."
    text = str(value)
    if trim:
        text = text.strip()
    if text == "":
        return "", "This field may not be blank."
    return text, None
