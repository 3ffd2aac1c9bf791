"""The round-two page controls in a real browser (the system Chromium, as in
tests/ui/test_browser.py): the image browser's filters, "Train now" with the background
training's verdict, and "Generate points" on an image without points."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.ui.conftest import UiServer
from tests.ui.test_browser import _ready, _shot, _sign_in, browser, page  # noqa: F401  (fixtures)


def test_filters_train_now_and_generate_points(
    page: Any,  # noqa: F811
    ui_server: UiServer,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    _sign_in(page, ui_server, "ada", "/ui/")
    api = ui_server.url + "/ui/api/sources/1/images"

    # Filters: each control narrows the list to what the API says.
    page.get_by_role("button", name="Browse images").click()
    expect(page.locator("#images-caption")).to_have_text("23 images")
    # Each row has the image's thumbnail, edged in its status colour, loaded.
    expect(page.locator("#image-rows img.thumb")).to_have_count(23)
    first = page.locator("#image-rows img.thumb").first
    first.scroll_into_view_if_needed()
    page.wait_for_function(
        "() => { const i = document.querySelector('#image-rows img.thumb');"
        " return i.complete && i.naturalWidth === 160; }"
    )
    assert "status-confirmed" in (first.get_attribute("class") or "")
    expect(first).to_have_css("border-left-color", "rgb(46, 204, 113)")  # confirmed: green
    labels = page.request.get(ui_server.url + "/ui/api/sources/1/labels").json()["labels"]
    page.get_by_label("Label", exact=True).select_option(str(labels[1]["id"]))
    total = page.request.get(f"{api}?label_id={labels[1]['id']}").json()["total"]
    expect(page.locator("#images-caption")).to_have_text(f"{total} images")
    page.get_by_label("Label", exact=True).select_option("")
    page.get_by_label("Machine confidence below (%)").fill("60")
    page.get_by_label("Machine confidence below (%)").press("Enter")
    total = page.request.get(f"{api}?max_confidence=0.6").json()["total"]
    expect(page.locator("#images-caption")).to_have_text(f"{total} images")
    page.get_by_label("Machine confidence below (%)").fill("")
    page.get_by_label("Date from").fill("2024-03-05")
    page.get_by_label("to", exact=True).fill("2024-03-07")
    page.get_by_label("to", exact=True).press("Tab")
    expect(page.locator("#images-caption")).to_have_text("3 images")
    _shot(page, "browse-filters", full_page=True)
    page.get_by_label("Site").fill("Nowhere")
    page.get_by_label("Site").press("Tab")
    expect(page.locator("#images-caption")).to_have_text("0 images")

    # How far the next classifier is, in the policy's words.
    policy = page.request.get(ui_server.url + "/ui/api/sources").json()["sources"][0]["policy"]
    expect(page.locator("#training-1-policy")).to_have_text(
        f"{policy['confirmed_images']} confirmed images; the next classifier is trained at "
        f"{policy['next_at']} ({policy['next_at'] - policy['confirmed_images']} more to confirm)."
    )

    # Train now: the background run ends with a verdict, and the history shows why.
    before = len(
        page.request.get(ui_server.url + "/ui/api/sources").json()["sources"][0]["classifiers"]
    )
    page.get_by_role("button", name="Train now").click()
    expect(page.locator("#training-1-status")).to_contain_text(
        "Latest training (Train now, by ada): classifier", timeout=120_000
    )
    expect(page.locator(".history li")).to_have_count(before + 1)
    expect(page.locator(".history li").last).to_contain_text("vs")
    page.locator("#training-1-title").scroll_into_view_if_needed()
    _shot(page, "sources-training")

    # Generate points on an image that has none.
    import numpy as np
    from PIL import Image

    from quadrat.workflow.project import Project

    path = tmp_path / "zz_empty.jpg"
    Image.fromarray(np.full((240, 320, 3), 128, np.uint8)).save(path)
    Project(ui_server.store).source("reef").import_images([path])
    listing = page.request.get(f"{api}?status=unannotated").json()["images"]
    [image] = [i for i in listing if i["name"] == "zz_empty.jpg"]
    page.goto(f"{ui_server.url}/ui/annotate?image={image['id']}")
    _ready(page)
    expect(page.locator("#no-points")).to_be_visible()
    page.get_by_role("button", name="Generate points").click()
    expect(page.locator("#points button")).to_have_count(12)
    expect(page.locator("#no-points")).to_be_hidden()
    expect(page.locator("#saved")).to_have_text("Suggestions ready", timeout=120_000)
    expect(page.locator("#suggestions li").first).to_be_visible()
    stored = page.request.get(f"{ui_server.url}/ui/api/images/{image['id']}").json()
    assert len(stored["points"]) == 12


def test_export_for_another_tool_downloads_the_chosen_format(
    page: Any,  # noqa: F811
    ui_server: UiServer,
    tmp_path: Path,
) -> None:
    import zipfile

    from playwright.sync_api import expect

    _sign_in(page, ui_server, "victor", "/ui/")  # viewers may export
    chooser = page.get_by_label("Export for another tool:")
    expect(chooser.locator("option[value=cpce]")).to_have_count(1)
    chooser.select_option("cpce")
    with page.expect_download() as waiting:
        page.get_by_role("link", name="Download").click()
    download = waiting.value
    assert download.suggested_filename == "reef_cpce.zip"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        assert archive.namelist() and all(n.endswith(".cpc") for n in archive.namelist())
    chooser.select_option("viame")
    with page.expect_download() as waiting:
        page.get_by_role("link", name="Download").click()
    assert waiting.value.suggested_filename == "reef_viame.csv"
