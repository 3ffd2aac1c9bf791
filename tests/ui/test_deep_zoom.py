"""Deep zoom: the DZI tiles a large image is shown with, and the page that zooms into them.

The tiler (quadrat.service.ui.tiles) on generated files: the descriptor, every tile of
every level at its DZI size and content, EXIF orientation, the SHA-256 check, the limits.
Then a server whose project holds a generated 4000x3000 photo with red squares under its
points: the endpoints (anonymous refused, a changed file refused, caching headers), and
the page in Chromium zoomed in by keys and wheel, the marker still over its red square,
and the keys still the page's.
"""

from __future__ import annotations

import hashlib
import math
import xml.etree.ElementTree as ET
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageOps

from quadrat.errors import ImageError, InputError, LimitError, NotFoundError
from quadrat.service.settings import ServiceSettings
from quadrat.service.ui import tiles
from quadrat.service.ui.state import UiState
from quadrat.store.browse import ImageFile
from tests.ui.conftest import PASSWORDS, ROLES, UiServer
from tests.ui.test_api import detail
from tests.ui.test_browser import _ready, _shot, _sign_in, browser, page  # noqa: F401  (fixtures)

requests = pytest.importorskip("requests")

NS = "{" + tiles.DZI_NAMESPACE + "}"
#: The large image's points (row, column): each over a red square on a dark background.
BIG_SIZE = (3000, 4000)  # (height, width)
BIG_POINTS = [(500, 700), (520, 760), (1500, 2000), (2600, 3500), (90, 3950)]
SQUARE = 24  # half side of each red square


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _state(tmp_path: Path) -> UiState:
    return UiState(
        store=None, settings=ServiceSettings(database=str(tmp_path / "x.db")), secret="s"
    )


def _gradient(height: int, width: int) -> np.ndarray:
    """Smooth ramps (JPEG keeps them within a few levels): red across, green down."""
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    return np.stack([x, y, np.full_like(x, 128)], axis=-1).astype(np.uint8)


def _image_file(path: Path, orientation: int = 1) -> ImageFile:
    with Image.open(path) as im:
        width, height = im.size
    return ImageFile(1, 1, path.name, str(path), _sha(path), width, height, orientation)


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(BytesIO(data)).convert("RGB")).astype(int)


# ----------------------------------------------------------------------------- the tiler


def test_descriptor_and_every_tile_of_every_level(tmp_path: Path) -> None:
    height, width = 1100, 1300
    pixels = _gradient(height, width)
    path = tmp_path / "ramp.png"  # lossless: the tiles hold the file's pixels
    Image.fromarray(pixels).save(path)
    image = _image_file(path)
    limits = tiles.TileLimits(tile_size=254, overlap=1)
    tiler = tiles.Tiler(limits)
    state = _state(tmp_path)

    root = ET.fromstring(tiler.descriptor(state, image, "/ui/tiles/1/abc_files/"))
    assert root.tag == NS + "Image"
    assert root.attrib == {
        "Url": "/ui/tiles/1/abc_files/",
        "Format": "jpg",
        "Overlap": "1",
        "TileSize": "254",
    }
    size = root.find(NS + "Size")
    assert size is not None and size.attrib == {"Width": "1300", "Height": "1100"}

    top = math.ceil(math.log2(width))  # 11: level 11 is full size, level 0 is 1x1
    assert tiles.level_count(width, height) == top + 1 == 12
    for level in range(top + 1):
        level_w = math.ceil(width / 2 ** (top - level))
        level_h = math.ceil(height / 2 ** (top - level))
        expected = np.asarray(
            Image.fromarray(pixels).resize((level_w, level_h), Image.Resampling.BOX)
        ).astype(int)
        columns, rows = math.ceil(level_w / 254), math.ceil(level_h / 254)
        for column in range(columns):
            for row in range(rows):
                tile = _decode(tiler.tile(state, image, level, column, row))
                left = column * 254 - (1 if column else 0)
                upper = row * 254 - (1 if row else 0)
                right = min(level_w, (column + 1) * 254 + 1)
                lower = min(level_h, (row + 1) * 254 + 1)
                assert tile.shape == (lower - upper, right - left, 3), (level, column, row)
                if level >= 7:  # tiny levels: repeated ceil-halving and one resize differ
                    region = expected[upper:lower, left:right]
                    assert np.abs(tile - region).mean() < 6, (level, column, row)
        with pytest.raises(NotFoundError, match="no tile"):
            tiler.tile(state, image, level, columns, 0)
    assert tiler.tiles.used > 0 and len(tiler.pyramids) == 1
    with pytest.raises(NotFoundError, match="levels 0 to 11"):
        tiler.tile(state, image, top + 1, 0, 0)


def test_tiles_show_the_image_upright(tmp_path: Path) -> None:
    """Stored 64x48 with EXIF orientation 6: the tiles are 48x64, turned as a viewer shows it."""
    stored = np.zeros((48, 64, 3), np.uint8)
    stored[:, :32] = (250, 10, 10)  # left half red, right half blue, as stored
    stored[:, 32:] = (10, 10, 250)
    path = tmp_path / "turned.png"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(path, exif=exif)
    for orientation in range(1, 9):  # the numpy views agree with Pillow's exif_transpose
        marked = Image.fromarray(stored)
        info = Image.Exif()
        info[0x0112] = orientation
        marked.info["exif"] = info.tobytes()
        expected = np.asarray(ImageOps.exif_transpose(marked))
        assert np.array_equal(tiles.upright(stored, orientation), expected), orientation
    image = _image_file(path, orientation=6)
    tiler = tiles.Tiler(tiles.TileLimits(tile_size=256))
    with pytest.warns(UserWarning, match="EXIF orientation"):
        root = ET.fromstring(tiler.descriptor(_state(tmp_path), image, "/t_files/"))
    size = root.find(NS + "Size")
    assert size is not None and size.attrib == {"Width": "48", "Height": "64"}
    tile = _decode(tiler.tile(_state(tmp_path), image, 6, 0, 0))
    assert tile.shape == (64, 48, 3)
    assert tile[:30, 24, 0].min() > 200 and tile[34:, 24, 2].min() > 200  # red on top


def test_a_changed_file_is_refused_and_limits_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "photo.jpg"
    Image.fromarray(_gradient(300, 400)).save(path)
    image = _image_file(path)
    Image.fromarray(_gradient(300, 400)[::-1]).save(path)  # changed after "import"
    with pytest.raises(ImageError, match="SHA-256 differs"):
        tiles.Tiler().tile(_state(tmp_path), image, 9, 0, 0)

    # Over max_pixels: refused from the recorded size, before the file is even opened.
    missing = ImageFile(2, 1, "mosaic.tif", str(tmp_path / "absent.tif"), "0" * 64, 9000, 9000, 1)
    with pytest.raises(LimitError, match="max_pixels"):
        tiles.Tiler(tiles.TileLimits(max_pixels=80_000_000)).tile(
            _state(tmp_path), missing, 0, 0, 0
        )
    # The caches stay within their byte budgets (the newest entry always stays).
    cache = tiles.ByteLru(100)
    for key in range(5):
        cache.put(key, b"x" * 40, 40)
    assert len(cache) == 2 and cache.used == 80 and cache.get(0) is None and cache.get(4)
    cache.put("big", b"x" * 500, 500)
    assert len(cache) == 1 and cache.get("big")

    monkeypatch.setenv("QUADRAT_UI_TILE_SIZE", "1022")
    monkeypatch.setenv("QUADRAT_UI_TILE_CACHE_BYTES", "1_000_000")
    limits = tiles.TileLimits.from_env()
    assert limits.tile_size == 1022 and limits.tile_cache_bytes == 1_000_000
    monkeypatch.setenv("QUADRAT_UI_TILE_SIZE", "8")
    with pytest.raises(InputError, match="tile_size"):
        tiles.TileLimits.from_env()
    monkeypatch.setenv("QUADRAT_UI_TILE_SIZE", "big")
    with pytest.raises(InputError, match="QUADRAT_UI_TILE_SIZE"):
        tiles.TileLimits.from_env()


# ----------------------------------------------------------------------------- a server


def _big_photo(path: Path) -> None:
    height, width = BIG_SIZE
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[...] = (20, 40, 90)
    pixels[::50, :] = (60, 80, 120)  # a grid, so a zoomed view shows where it is
    pixels[:, ::50] = (60, 80, 120)
    for row, column in BIG_POINTS:
        pixels[row - SQUARE : row + SQUARE, column - SQUARE : column + SQUARE] = (235, 20, 20)
    Image.fromarray(pixels).save(path, quality=90)


@pytest.fixture(scope="module")
def ui_project_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Overrides conftest's project: a large photo with points, a small one, one to tamper."""
    import quadrat
    from quadrat.demo import make_demo_survey
    from quadrat.service import accounts
    from quadrat.store import annotate, browse
    from quadrat.store.project import Store

    root = tmp_path_factory.mktemp("deep-zoom")
    survey = make_demo_survey(root / "survey", n_annotated=1, n_new=0, size=(48, 64))
    photos = root / "photos"
    photos.mkdir()
    _big_photo(photos / "a_large.jpg")
    Image.fromarray(_gradient(300, 400)).save(photos / "b_small.jpg")
    Image.fromarray(_gradient(300, 400)[:, ::-1]).save(photos / "c_tampered.jpg")
    path = root / "survey.db"
    with quadrat.Project.create(path) as project:
        reef = project.create_source("reef", labelset=survey.labelset_csv, point_spec="m_5")
        reef.import_images([photos])
    store = Store.open(path)
    try:
        with store.session() as session:
            _total, rows = browse.image_page(session, 1, sort="name")
            large = next(r.id for r in rows if r.name == "a_large.jpg")
            for row, column in BIG_POINTS:
                annotate.add_point(session, large, row, column, limit=1000)
            small = next(r.id for r in rows if r.name == "b_small.jpg")
            annotate.add_point(session, small, 150, 200, limit=1000)
        for name, password in PASSWORDS.items():
            accounts.add_user(store, name, password, role=ROLES[name])
    finally:
        store.close()
    return path


@pytest.fixture(scope="module")
def images(ui_server: UiServer) -> dict[str, dict[str, Any]]:
    session = _signed_in(ui_server, "victor")
    listing = session.get(ui_server.url + "/ui/api/sources/1/images").json()["images"]
    return {image["name"]: image for image in listing}


def _signed_in(server: UiServer, name: str) -> Any:
    session = requests.Session()
    csrf = session.get(server.url + "/ui/api/session").json()["csrf"]
    reply = session.post(
        server.url + "/ui/api/login",
        json={"username": name, "password": PASSWORDS[name]},
        headers={"X-CSRF-Token": csrf},
    )
    assert reply.status_code == 200, reply.text
    return session


def test_tile_endpoints(ui_server: UiServer, images: dict[str, dict[str, Any]]) -> None:
    large = images["a_large.jpg"]
    viewer = _signed_in(ui_server, "victor")  # reading needs no more than the viewer role
    dzi = f"{ui_server.url}/ui/api/images/{large['id']}/tiles.dzi"
    reply = viewer.get(dzi)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/xml")
    assert reply.headers["cache-control"] == "no-store"
    root = ET.fromstring(reply.text)
    size = root.find(NS + "Size")
    assert size is not None and size.attrib == {"Width": "4000", "Height": "3000"}
    url = root.attrib["Url"]
    assert url.startswith(f"/ui/tiles/{large['id']}/") and url.endswith("_files/")
    tile_size = int(root.attrib["TileSize"])
    top = math.ceil(math.log2(4000))  # 12

    reply = viewer.get(f"{ui_server.url}{url}{top}/1_1.jpg")
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "image/jpeg"
    assert "private" in reply.headers["cache-control"]
    assert "max-age=86400" in reply.headers["cache-control"]
    assert Image.open(BytesIO(reply.content)).size == (tile_size + 2, tile_size + 2)
    assert Image.open(BytesIO(viewer.get(f"{ui_server.url}{url}0/0_0.jpg").content)).size == (
        1,
        1,
    )
    for bad in (f"{top + 1}/0_0.jpg", f"{top}/99_0.jpg", f"{top}/0_99.jpg"):
        assert viewer.get(f"{ui_server.url}{url}{bad}").status_code == 404, bad
    stale = url.replace("_files/", "").rsplit("/", 1)[0] + "/0123456789abcdef_files/"
    assert viewer.get(f"{ui_server.url}{stale}{top}/0_0.jpg").status_code == 404

    anonymous = requests.Session()
    assert anonymous.get(dzi).status_code == 401
    assert anonymous.get(f"{ui_server.url}{url}{top}/0_0.jpg").status_code == 401


def test_a_file_changed_after_import_is_not_tiled(
    ui_server: UiServer, images: dict[str, dict[str, Any]]
) -> None:
    from quadrat.store import browse

    tampered = images["c_tampered.jpg"]
    with ui_server.store.session() as session:
        stored = browse.image_file(session, tampered["id"]).path
    Image.fromarray(_gradient(300, 400)).save(stored)  # another picture, same name
    reply = _signed_in(ui_server, "anna").get(
        f"{ui_server.url}/ui/api/images/{tampered['id']}/tiles.dzi"
    )
    assert reply.status_code == 400
    assert "SHA-256 differs" in detail(reply)


def _marker_centre(tab: Any, number: int) -> tuple[float, float]:
    box = tab.locator(f'.marker[data-number="{number}"]').bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def _settled(tab: Any, number: int) -> tuple[float, float]:
    """The marker's centre once the view stopped moving (still for 0.4 s)."""
    tab.wait_for_timeout(150)  # the next frames start the animation
    last, still = (-1.0, -1.0), 0
    for _ in range(80):
        now = _marker_centre(tab, number)
        still = still + 1 if math.dist(now, last) < 0.5 else 0
        if still >= 4:
            return now
        last = now
        tab.wait_for_timeout(100)
    return last


def _red_square_centre(tab: Any, x: float, y: float) -> tuple[float, float]:
    """Centre of the red square drawn around (x, y), markers hidden (polls for the tiles)."""
    hide = "document.querySelectorAll('.marker').forEach(m => m.style.visibility = '%s')"
    tab.evaluate(hide % "hidden")
    left, top = max(0, round(x) - 90), max(0, round(y) - 90)
    cx, cy = round(x) - left, round(y) - top
    try:
        for _ in range(40):
            clip = {"x": left, "y": top, "width": cx + 90, "height": cy + 90}
            shot = _decode(tab.screenshot(clip=clip, type="png"))
            red = (shot[..., 0] > 170) & (shot[..., 2] < 90)
            if red[cy - 2 : cy + 3, cx - 2 : cx + 3].all():
                break
            tab.wait_for_timeout(100)
    finally:
        tab.evaluate(hide % "")
    assert red[cy, cx], "no red square under the marker"

    def run(line: np.ndarray, at: int) -> float:  # middle of the red run through ``at``
        start = end = at
        while start > 0 and line[start - 1]:
            start -= 1
        while end < line.size - 1 and line[end + 1]:
            end += 1
        return (start + end + 1) / 2

    return left + run(red[cy, :], cx), top + run(red[:, cx], cy)


def test_zoom_in_on_a_large_image_markers_stay_and_keys_work(
    page: Any,  # noqa: F811
    ui_server: UiServer,
    images: dict[str, dict[str, Any]],
) -> None:
    from playwright.sync_api import expect

    large = images["a_large.jpg"]
    console: list[str] = []  # a CSP refusal (an inline style...) is a console error
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    _sign_in(page, ui_server, "anna", f"/ui/annotate?image={large['id']}")
    _ready(page)
    expect(page.locator(".marker")).to_have_count(len(BIG_POINTS))
    assert console == []
    expect(page.locator("#point-title")).to_have_text(f"Point 1 of {len(BIG_POINTS)}")
    one, two = _settled(page, 1), _marker_centre(page, 2)
    fitted = math.dist(one, two)
    assert fitted < 40  # 60 px apart in a 4000 px image fitted into about 900 px

    # Zoom in about point 1 with the keys, then with the wheel: the markers follow.
    for _ in range(6):
        page.keyboard.press("+")
    one = _settled(page, 1)
    page.mouse.move(*one)
    page.mouse.wheel(0, -300)
    one = _settled(page, 1)
    two = _marker_centre(page, 2)
    assert math.dist(one, two) > 4 * fitted
    # The marker is on its point: the centre of the red square around it, to a pixel or two
    # (the square is 48 image pixels, about 50 on screen).
    square = _red_square_centre(page, *one)
    assert math.dist(square, one) < 2.5, (square, one)
    _shot(page, "annotate-deep-zoom")
    # A drag pans the image and the marker with it.
    page.mouse.move(one[0] + 40, one[1] + 40)
    page.mouse.down()
    page.mouse.move(one[0] + 140, one[1] + 100, steps=5)
    page.mouse.up()
    moved = _settled(page, 1)
    assert abs(moved[0] - (one[0] + 100)) < 8 and abs(moved[1] - (one[1] + 60)) < 8, moved
    square = _red_square_centre(page, *moved)
    assert math.dist(square, moved) < 2.5, (square, moved)

    # Keys are still the page's, with the focus on the image: Tab, a label key, Ctrl+Z.
    expect(page.locator("#viewer")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("#point-title")).to_have_text(f"Point 2 of {len(BIG_POINTS)}")
    labels = page.request.get(f"{ui_server.url}/ui/api/sources/1/labels").json()["labels"]
    page.keyboard.press(labels[0]["hotkey"])
    second = page.locator('.marker[data-number="2"]')
    expect(second).to_have_attribute("data-status", "confirmed")
    expect(second).to_have_css("background-color", "rgb(46, 204, 113)")  # green
    page.keyboard.press("Control+z")
    expect(page.locator('.marker[data-number="2"]')).to_have_attribute("data-status", "unannotated")
    # A click on a marker picks its point; the arrows then move from there.
    page.keyboard.press("0")  # fit: every marker on screen
    _settled(page, 4)
    page.mouse.click(*_marker_centre(page, 4))
    expect(page.locator("#point-title")).to_have_text(f"Point 4 of {len(BIG_POINTS)}")
    fitted_four = _settled(page, 4)
    page.keyboard.press("ArrowRight")
    expect(page.locator("#point-title")).to_have_text(f"Point 5 of {len(BIG_POINTS)}")
    # Point 5 is 50 px from the right edge (a dozen on screen): with the whole image on
    # screen the view stays put rather than panning the image off to one side.
    assert math.dist(_settled(page, 4), fitted_four) < 1.5
    page.keyboard.press("PageDown")
    expect(page.locator("#image-name")).to_have_text("b_small.jpg")
    expect(page.locator(".marker")).to_have_count(1)
    page.keyboard.press("PageUp")
    expect(page.locator("#image-name")).to_have_text("a_large.jpg")
    expect(page.locator(".marker")).to_have_count(len(BIG_POINTS))


def _number_shown(tab: Any, number: int) -> bool:
    content = tab.evaluate(
        'n => getComputedStyle(document.querySelector(`.marker[data-number="${n}"]`),'
        " '::after').content",
        number,
    )
    return content not in ("none", "normal", "")


def test_numbers_can_be_hidden_and_the_choice_is_kept(
    page: Any,  # noqa: F811
    ui_server: UiServer,
    images: dict[str, dict[str, Any]],
) -> None:
    """200 numbered markers cover each other at the fitted zoom (seen on Moorea): `.` or the
    Numbers button hides them but the current point's, and a reload keeps the choice."""
    from playwright.sync_api import expect

    large = images["a_large.jpg"]
    _sign_in(page, ui_server, "anna", f"/ui/annotate?image={large['id']}")
    _ready(page)
    button = page.locator("#toggle-numbers")
    assert _number_shown(page, 1) and _number_shown(page, 2)
    page.keyboard.press(".")
    expect(button).to_have_attribute("aria-pressed", "false")
    assert _number_shown(page, 1)  # the current point keeps its number
    assert not _number_shown(page, 2)
    page.reload()
    _ready(page)
    expect(button).to_have_attribute("aria-pressed", "false")
    assert not _number_shown(page, 3)
    button.click()
    expect(button).to_have_attribute("aria-pressed", "true")
    assert _number_shown(page, 2) and _number_shown(page, 3)


def test_zoom_to_point_centres_each_point_and_is_kept(
    page: Any,  # noqa: F811
    ui_server: UiServer,
    images: dict[str, dict[str, Any]],
) -> None:
    """`*` (or the button): each point picked is shown centred, three patches wide; Tab
    moves the view to the next point; a reload keeps the mode; `*` again fits the image."""
    from playwright.sync_api import expect

    large = images["a_large.jpg"]
    _sign_in(page, ui_server, "anna", f"/ui/annotate?image={large['id']}")
    _ready(page)
    fitted = math.dist(_settled(page, 1), _marker_centre(page, 2))
    box = page.locator("#viewer").bounding_box()
    centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    button = page.locator("#zoom-to-point")
    expect(button).to_have_attribute("aria-pressed", "false")
    page.locator("#viewer").focus()
    page.keyboard.press("*")
    expect(button).to_have_attribute("aria-pressed", "true")
    one = _settled(page, 1)
    assert math.dist(one, centre) < 3, (one, centre)
    # 672 image pixels across about 900 screen pixels: markers 60 px apart spread out.
    assert math.dist(one, _marker_centre(page, 2)) > 4 * fitted
    page.keyboard.press("Tab")
    expect(page.locator("#point-title")).to_have_text(f"Point 2 of {len(BIG_POINTS)}")
    assert math.dist(_settled(page, 2), centre) < 3
    page.reload()  # the address keeps the current point (2)
    _ready(page)
    expect(button).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#point-title")).to_have_text(f"Point 2 of {len(BIG_POINTS)}")
    assert math.dist(_settled(page, 2), centre) < 3
    page.locator("#viewer").focus()
    page.keyboard.press("*")
    expect(button).to_have_attribute("aria-pressed", "false")
    assert math.dist(_settled(page, 1), _marker_centre(page, 2)) == pytest.approx(fitted, abs=1.5)
