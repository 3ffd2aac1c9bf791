"""The UI in a real browser: Playwright for Python driving the system's Chromium.

Sign in, confirm five points with the keyboard, correct one by label search, reload and
find them saved, undo with Ctrl+Z, change image with PageDown; a viewer changes nothing;
an anonymous request for an image is refused. Never ``playwright install``: the browser
is the Debian package (``apt-get install chromium``, done by ``.ci/run``), found on PATH
or named by ``QUADRAT_CHROMIUM``. Without it the tests skip, except under CI
(``CI`` or ``QUADRAT_REQUIRE_BROWSER`` set), where they fail.

``QUADRAT_UI_SCREENSHOTS=docs/ui`` writes the screenshots shown in docs/ui.md.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import PASSWORDS, UiServer

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _chromium() -> str | None:
    named = os.environ.get("QUADRAT_CHROMIUM")
    if named:
        return named
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _must_run() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("QUADRAT_REQUIRE_BROWSER"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if _must_run():
            raise
        pytest.skip("playwright is not installed (pip install playwright; the test extra)")
    if executable is None:
        if _must_run():
            pytest.fail("no Chromium on PATH in CI: .ci/run installs the Debian package")
        pytest.skip("no Chromium on PATH (apt-get install chromium, or set QUADRAT_CHROMIUM)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable)
        try:
            yield launched
        finally:
            launched.close()


def _shot(page: Any, name: str, **options: Any) -> None:
    folder = os.environ.get("QUADRAT_UI_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        target = Path(folder) / f"{name}.jpg"
        page.screenshot(path=str(target), type="jpeg", quality=80, **options)


def _sign_in(page: Any, server: UiServer, name: str, target: str) -> None:
    """Open ``target``, get sent to the sign-in page, sign in, land back on ``target``."""
    page.goto(server.url + target)
    page.wait_for_url(lambda url: "/ui/login?next=" in url)
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(PASSWORDS[name])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/ui/login" not in url)


def _first_image(page: Any, server: UiServer, status: str = "machine") -> dict[str, Any]:
    listing = page.request.get(f"{server.url}/ui/api/sources/1/images?status={status}").json()
    image_id = listing["images"][0]["id"]
    return dict(page.request.get(f"{server.url}/ui/api/images/{image_id}").json())


def _ready(page: Any) -> None:
    page.wait_for_selector("body[data-ready=true]")


def _point_button(page: Any, number: int) -> Any:
    return page.locator(f'#points button[data-number="{number}"]')


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    tab = context.new_page()
    tab.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield tab
    finally:
        context.close()
    assert errors == [], errors  # no script error on any page


def test_annotate_with_the_keyboard_and_find_it_saved(page: Any, ui_server: UiServer) -> None:
    from playwright.sync_api import expect

    page.goto(ui_server.url + "/")
    page.wait_for_url(lambda url: "/ui/login?next=" in url)
    _shot(page, "login")
    page.get_by_label("Username").fill("anna")
    page.get_by_label("Password").fill(PASSWORDS["anna"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(ui_server.url + "/ui/")
    page.wait_for_selector(".card")
    page.get_by_role("button", name="Browse images").click()
    page.wait_for_selector("#image-rows tr")
    _shot(page, "sources", full_page=True)

    image = _first_image(page, ui_server)
    labels = {
        label["id"]: label
        for label in page.request.get(f"{ui_server.url}/ui/api/sources/1/labels").json()["labels"]
    }
    page.goto(f"{ui_server.url}/ui/annotate?image={image['id']}")
    _ready(page)
    expect(page.locator("#image-name")).to_have_text(image["name"])
    expect(page.locator("#point-title")).to_have_text("Point 1 of 12")
    expect(page.locator("#suggestions li")).to_have_count(5)
    expect(page.locator("#viewer")).to_be_focused()

    # Five points confirmed with the keyboard: Enter (the top one) and 1-5.
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    page.keyboard.press("2")  # point 3: the second suggestion
    page.keyboard.press("Enter")
    page.keyboard.press("1")
    expected = {p["number"]: p["suggestions"][0]["label_id"] for p in image["points"][:5]}
    expected[3] = image["points"][2]["suggestions"][1]["label_id"]
    for number in range(1, 6):
        expect(_point_button(page, number)).to_have_attribute("data-status", "confirmed")
    expect(page.locator("#point-title")).to_have_text("Point 6 of 12")

    # Point 6 corrected by label search: a label that is not its top suggestion.
    sixth = image["points"][5]
    other = next(i for i in labels if i != sixth["suggestions"][0]["label_id"])
    expected[6] = other
    page.keyboard.press("/")
    expect(page.get_by_label("Label by code or name")).to_be_focused()
    page.keyboard.type(labels[other]["name"][:4])
    expect(page.locator("#label-results li").first).to_contain_text(labels[other]["code"])
    page.keyboard.press("Enter")
    expect(_point_button(page, 6)).to_have_attribute("data-status", "confirmed")
    expect(page.locator("#saved")).to_contain_text("point 6")
    _shot(page, "annotate")

    # Saved on the server, by anna, and still there after a reload.
    def stored() -> dict[int, tuple[int, str, str]]:
        points = page.request.get(f"{ui_server.url}/ui/api/images/{image['id']}").json()["points"]
        return {p["number"]: (p["label_id"], p["status"], p["annotator"]) for p in points}

    saved = stored()
    for number, label_id in expected.items():
        assert saved[number] == (label_id, "confirmed", "anna"), number
    assert saved[8][1] == "machine"
    page.reload()
    _ready(page)
    for number, label_id in expected.items():
        button = _point_button(page, number)
        expect(button).to_have_attribute("data-status", "confirmed")
        expect(button).to_contain_text(labels[label_id]["code"])
    # The page reopens where it was (the point is kept in the URL): the one after 6.
    expect(page.locator("#point-title")).to_have_text("Point 7 of 12")
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#point-title")).to_have_text("Point 6 of 12")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#point-title")).to_have_text("Point 7 of 12")

    # Ctrl+Z undoes the last change: point 7 back to the machine's suggestion.
    page.keyboard.press("Enter")
    expect(_point_button(page, 7)).to_have_attribute("data-status", "confirmed")
    page.keyboard.press("Control+z")
    expect(_point_button(page, 7)).to_have_attribute("data-status", "machine")
    expect(page.locator("#point-title")).to_have_text("Point 7 of 12")
    seventh = image["points"][6]
    assert stored()[7] == (seventh["label_id"], "machine", seventh["annotator"])

    # Tab and Shift+Tab move between points; PageDown and PageUp between images.
    page.keyboard.press("Tab")
    expect(page.locator("#point-title")).to_have_text("Point 8 of 12")
    page.keyboard.press("Shift+Tab")
    expect(page.locator("#point-title")).to_have_text("Point 7 of 12")
    page.keyboard.press("PageDown")
    expect(page.locator("#image-name")).not_to_have_text(image["name"])
    page.keyboard.press("PageUp")
    expect(page.locator("#image-name")).to_have_text(image["name"])


def test_a_viewer_cannot_change_anything(page: Any, ui_server: UiServer) -> None:
    from playwright.sync_api import expect

    _sign_in(page, ui_server, "victor", "/ui/")
    image = _first_image(page, ui_server, status="todo")
    before = page.request.get(f"{ui_server.url}/ui/api/images/{image['id']}").json()
    page.goto(f"{ui_server.url}/ui/annotate?image={image['id']}")
    _ready(page)
    expect(page.locator("#read-only")).to_be_visible()
    expect(page.locator("#suggestions button").first).to_be_disabled()
    page.keyboard.press("Enter")
    page.keyboard.press("3")
    expect(page.locator("#error")).to_contain_text("viewer")
    _shot(page, "viewer")
    after = page.request.get(f"{ui_server.url}/ui/api/images/{image['id']}").json()
    assert after["points"] == before["points"]
    # The API refuses too, whatever the page does.
    point = image["points"][0]
    csrf = page.request.get(f"{ui_server.url}/ui/api/session").json()["csrf"]
    reply = page.request.put(
        f"{ui_server.url}/ui/api/points/{point['id']}/annotation",
        data={"label_id": point["suggestions"][-1]["label_id"]},
        headers={"X-CSRF-Token": csrf},
    )
    assert reply.status == 403


def test_anonymous_requests_for_images_are_refused(browser: Any, ui_server: UiServer) -> None:
    context = browser.new_context()
    try:
        tab = context.new_page()
        for path in ("/ui/api/images/21/file", "/ui/api/points/1/patch", "/ui/api/images/21"):
            assert tab.request.get(ui_server.url + path).status == 401, path
        tab.goto(ui_server.url + "/ui/annotate?image=21")
        assert "/ui/login?next=" in tab.url
    finally:
        context.close()


def test_review_grid_and_alleviate_slider(page: Any, ui_server: UiServer) -> None:
    from playwright.sync_api import expect

    _sign_in(page, ui_server, "ada", "/ui/")
    labels = page.request.get(f"{ui_server.url}/ui/api/sources/1/labels").json()["labels"]
    totals = {
        label["id"]: page.request.get(
            f"{ui_server.url}/ui/api/sources/1/review?label_id={label['id']}&status=machine"
        ).json()["total"]
        for label in labels
    }
    label_id = max(totals, key=lambda i: totals[i])
    other = next(label for label in labels if label["id"] != label_id)

    # Relabel three patches in the review grid.
    page.goto(f"{ui_server.url}/ui/review?source=1&label={label_id}")
    _ready(page)
    page.get_by_label("Showing").select_option("machine")
    tiles = page.locator("#grid .tile")
    expect(tiles).to_have_count(totals[label_id])
    chosen = [int(tiles.nth(i).get_attribute("data-point")) for i in range(3)]
    tiles.nth(0).click()
    tiles.nth(1).focus()
    page.keyboard.press("Space")
    tiles.nth(2).click()
    expect(page.locator("#selected-count")).to_have_text("3 selected")
    page.get_by_label("Relabel the selected as").select_option(str(other["id"]))
    _shot(page, "review")
    page.get_by_role("button", name="Relabel", exact=True).click()
    expect(page.locator("#review-count")).to_contain_text("Relabelled 3 points")
    expect(tiles).to_have_count(totals[label_id] - 3)
    for point_id in chosen:
        assert page.locator(f'#grid [data-point="{point_id}"]').count() == 0
    moved = page.request.get(
        f"{ui_server.url}/ui/api/sources/1/review?label_id={other['id']}&status=human"
    ).json()
    by_id = {p["id"]: p for p in moved["points"]}
    assert all(by_id[i]["status"] == "confirmed" and by_id[i]["annotator"] == "ada" for i in chosen)

    # Move the alleviate slider to 60% and apply it.
    page.goto(ui_server.url + "/ui/")
    slider = page.get_by_label("Auto-accept points the classifier scores at or above")
    slider.focus()
    page.keyboard.press("End")
    for _ in range(40):
        page.keyboard.press("ArrowLeft")
    expect(page.locator("#alleviate-1-effect")).to_contain_text("At 60%:")
    page.get_by_role("button", name="Apply threshold").click()
    expect(page.locator(".alleviate [role=status]")).to_contain_text("Applied:")
    _shot(page, "sources-alleviate", full_page=True)
    data = page.request.get(f"{ui_server.url}/ui/api/sources/1/alleviate").json()
    assert data["threshold"] == 0.6
    counts = page.request.get(f"{ui_server.url}/ui/api/sources").json()["sources"][0]["points"]
    assert counts["alleviate"] > 0


def test_points_by_hand(page: Any, ui_server: UiServer) -> None:
    from playwright.sync_api import expect

    _sign_in(page, ui_server, "anna", "/ui/")
    image = _first_image(page, ui_server, status="todo")
    page.goto(f"{ui_server.url}/ui/annotate?image={image['id']}")
    _ready(page)
    n = len(image["points"])
    box = page.locator("#canvas").bounding_box()
    page.keyboard.down("Shift")
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.keyboard.up("Shift")
    expect(page.locator("#points button")).to_have_count(n + 1)
    expect(page.locator("#point-title")).to_have_text(f"Point {n + 1} of {n + 1}")
    added = page.request.get(f"{ui_server.url}/ui/api/images/{image['id']}").json()["points"][-1]
    # The centre of the view is the centre of the image (fitted, upright).
    assert abs(added["row"] - 180) <= 2 and abs(added["column"] - 240) <= 2
    page.once("dialog", lambda dialog: dialog.accept())
    page.keyboard.press("Delete")
    expect(page.locator("#points button")).to_have_count(n)
    after = page.request.get(f"{ui_server.url}/ui/api/images/{image['id']}").json()["points"]
    assert [p["id"] for p in after] == [p["id"] for p in image["points"]]
