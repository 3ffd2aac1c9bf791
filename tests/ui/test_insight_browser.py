"""Issue 15 on the pages, in a real browser (the system Chromium, as tests/ui/test_browser.py):
"Find similar" in the review grid, the "label next" list and the cover table on the sources
page. ``QUADRAT_UI_SCREENSHOTS=docs/ui`` writes the screenshots shown in docs/ui.md."""

from __future__ import annotations

import re
from typing import Any

from tests.ui.conftest import UiServer
from tests.ui.test_browser import _ready, _shot, _sign_in, browser, page  # noqa: F401


def test_find_similar_in_the_review_grid(page: Any, ui_server: UiServer) -> None:  # noqa: F811
    from playwright.sync_api import expect

    _sign_in(page, ui_server, "victor", "/ui/")  # a viewer may look
    labels = page.request.get(f"{ui_server.url}/ui/api/sources/1/labels").json()["labels"]
    totals = {
        label["id"]: page.request.get(
            f"{ui_server.url}/ui/api/sources/1/review?label_id={label['id']}"
        ).json()["total"]
        for label in labels
    }
    label_id = max(totals, key=lambda i: totals[i])
    page.goto(f"{ui_server.url}/ui/review?source=1&label={label_id}")
    _ready(page)
    tiles = page.locator("#grid .tile")
    expect(tiles).to_have_count(totals[label_id])
    find = page.get_by_role("button", name="Find similar")
    expect(find).to_be_disabled()
    target = tiles.nth(totals[label_id] - 1)
    point_id = int(target.get_attribute("data-point"))
    target.click()
    expect(find).to_be_enabled()
    find.click()
    expect(tiles.nth(0)).to_have_attribute("data-point", str(point_id))
    expect(tiles.nth(0)).to_have_class(re.compile(r"\bchosen\b"))
    expect(page.locator("#review-count")).to_contain_text("nearest first to")
    expected = page.request.get(
        f"{ui_server.url}/ui/api/sources/1/review?label_id={label_id}&order=similar&point={point_id}"
    ).json()
    shown = [int(tiles.nth(i).get_attribute("data-point")) for i in range(3)]
    assert shown == [p["id"] for p in expected["points"][:3]]
    _shot(page, "review-similar")
    # S on a focused patch orders by that one; the button goes back to the chosen order.
    tiles.nth(2).focus()
    page.keyboard.press("s")
    expect(tiles.nth(0)).to_have_attribute("data-point", str(shown[2]))
    page.get_by_role("button", name="Clear similarity order").click()
    expect(page.locator("#review-count")).not_to_contain_text("nearest first")

    # The viewer's sources page shows the cover, and no "label next" work list.
    page.goto(ui_server.url + "/ui/")
    expect(page.locator("#cover-1 tbody tr").first).to_be_visible()
    assert page.locator(".label-next").count() == 0


def test_label_next_and_cover_on_the_sources_page(page: Any, ui_server: UiServer) -> None:  # noqa: F811
    from playwright.sync_api import expect

    _sign_in(page, ui_server, "anna", "/ui/")
    items = page.locator("#label-next-1 li")
    expect(items).to_have_count(10)
    first = items.nth(0).locator("a")
    href = first.get_attribute("href")
    assert href is not None and href.startswith("/ui/annotate?image=") and "&point=" in href
    rows = page.locator("#cover-1 tbody tr")
    expect(rows.first).to_be_visible()
    expect(page.locator("#cover-1 caption")).to_contain_text("as labelled: cover of 23 images")
    expect(page.locator("#cover-1 caption")).to_contain_text("95% interval")
    assert " – " in (rows.nth(0).locator("td").nth(2).text_content() or "")
    page.get_by_label("Show cover").select_option("acc")
    expect(page.locator("#cover-1 caption")).to_contain_text("corrected (ACC")
    _shot(page, "sources-insight", full_page=True)
    first.click()
    page.wait_for_url(lambda url: "/ui/annotate?image=" in url)
    _ready(page)
