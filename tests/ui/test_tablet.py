"""The UI on a tablet (issue 14: "works at 1280x800 and on a tablet"): an iPad-sized
touch screen in portrait and landscape. Every page fits the width (no sideways scroll),
the image sits above the panel in portrait, and an annotator labels points by touch alone:
tap a marker, tap a suggestion, and it is saved."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.conftest import PASSWORDS, UiServer
from tests.ui.test_browser import _first_image, _ready, _shot, browser  # noqa: F401  (fixture)

#: iPad (10th generation) in CSS pixels: portrait and landscape.
SCREENS = {"portrait": (820, 1180), "landscape": (1180, 820)}


@pytest.fixture(params=sorted(SCREENS))
def tablet(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:  # noqa: F811
    width, height = SCREENS[request.param]
    context = browser.new_context(
        viewport={"width": width, "height": height}, has_touch=True, device_scale_factor=2
    )
    errors: list[str] = []
    tab = context.new_page()
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.orientation = request.param  # type: ignore[attr-defined]
    try:
        yield tab
    finally:
        context.close()
    assert errors == [], errors


def _fits_the_width(tab: Any) -> None:
    widths = tab.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"


def test_every_page_fits_and_points_are_labelled_by_touch(tablet: Any, ui_server: UiServer) -> None:
    from playwright.sync_api import expect

    tablet.goto(ui_server.url + "/ui/login")
    _fits_the_width(tablet)
    tablet.get_by_label("Username").tap()
    tablet.get_by_label("Username").fill("anna")
    tablet.get_by_label("Password").fill(PASSWORDS["anna"])
    tablet.get_by_role("button", name="Sign in").tap()
    tablet.wait_for_url(ui_server.url + "/ui/")
    tablet.wait_for_selector(".card")
    _fits_the_width(tablet)

    image = _first_image(tablet, ui_server)
    tablet.goto(f"{ui_server.url}/ui/annotate?image={image['id']}")
    _ready(tablet)
    _fits_the_width(tablet)
    viewer = tablet.locator("#viewer").bounding_box()
    panel = tablet.locator(".panel").bounding_box()
    assert viewer["width"] > 300 and viewer["height"] > 300, viewer
    if tablet.orientation == "portrait":  # type: ignore[attr-defined]
        assert panel["y"] >= viewer["y"] + viewer["height"] - 1  # the panel under the image
        _shot(tablet, "annotate-tablet")
    else:
        assert panel["x"] >= viewer["x"] + viewer["width"] - 1  # beside it

    # Tap the third marker: its point is current; tap the second suggestion: saved.
    third = tablet.locator('.marker[data-number="3"]')
    third.tap()
    expect(tablet.locator("#point-title")).to_have_text("Point 3 of 12")
    suggestion = tablet.locator("#suggestions button").nth(1)
    suggestion.scroll_into_view_if_needed()
    suggestion.tap()
    expect(third).to_have_attribute("data-status", "confirmed")
    point_id = image["points"][2]["id"]
    chosen = image["points"][2]["suggestions"][1]["label_id"]
    saved = tablet.request.get(f"{ui_server.url}/ui/api/images/{image['id']}").json()["points"]
    [point] = [p for p in saved if p["id"] == point_id]
    assert point["status"] == "confirmed" and point["label_id"] == chosen

    tablet.goto(f"{ui_server.url}/ui/review?source=1")
    tablet.wait_for_selector("#grid li, .grid li")
    _fits_the_width(tablet)
