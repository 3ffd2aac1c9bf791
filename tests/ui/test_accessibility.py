"""Accessible markup on every page (issue 14: "labels, focus order, contrast"), checked in
Chromium on the rendered pages, not on the HTML files: every form control and button has
an accessible name, every image a text alternative, no positive ``tabindex`` (the focus
follows the page's order), ``Tab`` reaches the controls in that order, and text meets
WCAG 2.1 AA contrast against the background it is drawn on (4.5:1, 3:1 for large text).

No axe-core: it is an npm package, and these rules are what the pages need; the contrast
rule is WCAG's formula (relative luminance of sRGB colours), in ``audit.js``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import UiServer
from tests.ui.test_browser import _first_image, _ready, _sign_in, browser, page  # noqa: F401

#: The audit, run in the page: the problems found, as [rule, element, detail].
AUDIT = (Path(__file__).parent / "audit.js").read_text()
#: The annotation page's header controls, left to right.
HEADER = ("previous-image", "next-image", "toggle-numbers", "zoom-to-point", "sign-out")


def _audit(tab: Any, where: str) -> None:
    problems = tab.evaluate(AUDIT)
    assert problems == [], f"{where}: {problems}"


def test_every_page_passes_the_audit(page: Any, ui_server: UiServer) -> None:  # noqa: F811
    page.goto(ui_server.url + "/ui/login")
    page.wait_for_selector("form")
    _audit(page, "sign-in page")
    _sign_in(page, ui_server, "anna", "/ui/")
    page.wait_for_selector(".card")
    page.get_by_role("button", name="Browse images").first.click()
    page.wait_for_selector("#image-rows tr")
    _audit(page, "sources page")
    image = _first_image(page, ui_server)
    page.goto(f"{ui_server.url}/ui/annotate?image={image['id']}")
    _ready(page)
    _audit(page, "annotation page")
    page.goto(f"{ui_server.url}/ui/review?source=1")
    page.wait_for_selector(".grid li")
    _audit(page, "review grid")

    # The audit finds what it looks for: grey text on white, a button without a name, an
    # unlabelled field, an image without alt, a positive tabindex.
    # (Colours set through the CSSOM: the pages' CSP refuses inline style attributes.)
    page.evaluate(
        """() => {
          const main = document.querySelector("main");
          main.insertAdjacentHTML("beforeend", '<p id="faint">faint</p>' +
            '<button type="button"></button><input type="text"><img src="data:,">' +
            '<span tabindex="3">x</span>');
          document.getElementById("faint").style.color = "#aaa";
        }"""
    )
    found = page.evaluate(AUDIT)
    assert sorted({rule for rule, _where, _detail in found}) == [
        "alt",
        "contrast",
        "name",
        "tabindex",
    ], found


def test_tab_follows_the_page_order_into_the_image(
    page: Any,  # noqa: F811
    ui_server: UiServer,
) -> None:
    """From the page's first control, Tab visits the header's controls left to right and
    then the image (where the keys label points); nothing steals the focus."""
    _sign_in(page, ui_server, "anna", "/ui/")
    image = _first_image(page, ui_server)
    page.goto(f"{ui_server.url}/ui/annotate?image={image['id']}")
    _ready(page)
    page.locator("nav a").first.focus()  # the first control of the page: Sources
    order: list[str] = []
    for _ in range(12):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => { const e = document.activeElement;"
            " return e.id || e.textContent.trim().slice(0, 20) || e.tagName; }"
        )
        order.append(focused)
        if focused == "viewer":
            break
    assert order[-1] == "viewer", order
    assert [name for name in order if name in HEADER] == list(HEADER), order
    positions = page.evaluate(
        "(ids) => ids.map((id) => document.getElementById(id).getBoundingClientRect().x)",
        list(HEADER),
    )
    assert positions == sorted(positions), positions  # left to right


@pytest.mark.parametrize("name", ["login", "index", "annotate", "review"])
def test_pages_declare_their_language_title_and_viewport(name: str) -> None:
    from quadrat.service.ui.routes import STATIC

    html = (STATIC / f"{name}.html").read_text()
    assert '<html lang="en">' in html and "<title>" in html
    assert 'name="viewport"' in html
