"""Fetching deploy images: schemes, private addresses, redirects, size, time and pixel caps,
paths under the image folder and uploads (servers bind 127.0.0.1 only)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from quadrat.errors import FetchError, ImageError, InputError, LimitError, NotFoundError
from quadrat.limits import Limits
from quadrat.service import fetch, uploads
from quadrat.service.settings import ServiceSettings
from tests.service._jobs_helpers import FolderServer, folder_server


def png(height: int, width: int, value: int = 90) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), value, dtype=np.uint8)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FolderServer]:
    folder = tmp_path / "www"
    folder.mkdir()
    (folder / "small.png").write_bytes(png(40, 60))
    (folder / "big.png").write_bytes(png(400, 500))
    with folder_server(folder) as srv:
        yield srv


def get(url: str, *, allow_private: bool = True, **limits: float) -> bytes:
    return fetch.download(url, allow_private=allow_private, limits=Limits(**limits))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("172.16.0.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "reserved"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_addresses_a_server_must_not_reach(address: str, problem: str | None) -> None:
    found = fetch.address_problem(address)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://127.0.0.1/x.png", "gopher://127.0.0.1/", "data:,x"]
)
def test_only_http_and_https(url: str) -> None:
    with pytest.raises(FetchError, match="only http and https"):
        get(url)


def test_other_schemes_are_refused_by_load_image_too(tmp_path: Path) -> None:
    settings = ServiceSettings(database=str(tmp_path / "p.db"), image_folder=tmp_path)
    (tmp_path / "x.png").write_bytes(png(10, 10))
    with pytest.raises(FetchError, match="only http and https"):
        fetch.load_image(f"file://{tmp_path / 'x.png'}", settings)


def test_loopback_is_refused_unless_allowed(server: FolderServer) -> None:
    with pytest.raises(FetchError, match="loopback address"):
        get(server.url("small.png"), allow_private=False)
    with pytest.raises(FetchError, match="loopback address"):
        get(server.url("small.png").replace("127.0.0.1", "localhost"), allow_private=False)
    assert get(server.url("small.png")) == (server.folder / "small.png").read_bytes()


def test_redirects_are_followed_to_http_only(server: FolderServer) -> None:
    target = server.url("small.png")
    assert get(server.url(f"redirect?to={target}")) == (server.folder / "small.png").read_bytes()
    with pytest.raises(FetchError, match="only http and https URLs are followed"):
        get(server.url("redirect?to=file:///etc/passwd"))
    with pytest.raises(FetchError, match="only http and https URLs are followed"):
        get(server.url("redirect?to=ftp://127.0.0.1/x"))


def test_a_redirect_target_is_checked_again(
    server: FolderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first host passes the check, the redirect's host does not: refused."""

    def only_127_0_0_2_is_private(address: str) -> str | None:
        return "a private address" if address == "127.0.0.2" else None

    monkeypatch.setattr(fetch, "address_problem", only_127_0_0_2_is_private)
    port = server.port
    to = f"http://127.0.0.2:{port}/small.png"
    with pytest.raises(FetchError, match=r"127\.0\.0\.2, a private address"):
        get(server.url(f"redirect?to={to}"), allow_private=False)


def test_too_many_redirects(server: FolderServer) -> None:
    url = server.url("small.png")
    for _ in range(fetch.MAX_REDIRECTS + 1):
        url = server.url(f"redirect?to={url}")
    with pytest.raises(FetchError):
        get(url)


def test_byte_cap_with_and_without_a_stated_size(server: FolderServer) -> None:
    size = (server.folder / "big.png").stat().st_size
    with pytest.raises(FetchError, match="download_bytes"):
        get(server.url("big.png"), download_bytes=size - 1)
    with pytest.raises(FetchError, match="download_bytes"):
        get(server.url("big.png"), image_file_bytes=size - 1)
    with pytest.raises(FetchError, match="over the limit download_bytes"):
        get(server.url("unsized?n=5000"), download_bytes=4000)
    assert len(get(server.url("unsized?n=3000"), download_bytes=4000)) == 3000


def test_total_deadline_cuts_a_slow_body(server: FolderServer) -> None:
    """The drip sends a byte every 0.1 s for 20 s; the 1 s deadline stops it."""
    with pytest.raises(FetchError, match="total deadline of 1 s"):
        get(server.url("drip"), download_seconds=1)


def test_http_errors_and_unknown_files(server: FolderServer) -> None:
    with pytest.raises(FetchError, match="HTTP 404"):
        get(server.url("missing.png"))


def test_pixel_cap_is_checked_on_the_header() -> None:
    data = png(400, 500)
    assert fetch.check_header(data, Limits()) == (500, 400)
    with pytest.raises(LimitError, match="pixels_per_image"):
        fetch.decode(data, Limits(pixels_per_image=400 * 500 - 1))
    with pytest.raises(ImageError, match="not an image"):
        fetch.decode(b"text, not an image", Limits())
    pixels = fetch.decode(data, Limits())
    assert pixels.shape == (400, 500, 3) and pixels.dtype == np.uint8


def test_paths_under_the_image_folder(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    (folder / "site").mkdir(parents=True)
    (folder / "site" / "a.png").write_bytes(png(20, 30))
    (tmp_path / "secret.png").write_bytes(png(20, 30))
    settings = ServiceSettings(database=str(tmp_path / "p.db"), image_folder=folder)
    assert fetch.load_image("site/a.png", settings).shape == (20, 30, 3)
    with pytest.raises(InputError, match=r"climbs out of the folder"):
        fetch.load_image("../secret.png", settings)
    with pytest.raises(NotFoundError):
        fetch.load_image("site/missing.png", settings)
    without = ServiceSettings(database=str(tmp_path / "p.db"))
    with pytest.raises(InputError, match="no image folder"):
        fetch.load_image("site/a.png", without)


def test_uploads_are_kept_beside_the_project(tmp_path: Path) -> None:
    settings = ServiceSettings(database=str(tmp_path / "p.db"))
    name = uploads.save_upload(settings, png(12, 16))
    assert name.startswith(uploads.UPLOAD_PREFIX) and len(name) == len("upload:") + 64
    assert uploads.upload_path(settings, name).parent == tmp_path / "p.db.uploads"
    assert fetch.load_image(name, settings).shape == (12, 16, 3)
    with pytest.raises(NotFoundError):
        fetch.load_image("upload:" + "0" * 64, settings)
    with pytest.raises(InputError):
        fetch.load_image("upload:../../etc/passwd", settings)
