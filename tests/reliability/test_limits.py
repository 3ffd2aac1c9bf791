"""Named, configurable limits (issue 12, item 3): refused before allocating, with a message
that says which limit, the value, and how to raise it."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib
from email.message import Message
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from quadrat import Project
from quadrat.datasets.download import DownloadOptions, download_images, read_manifest
from quadrat.datasets.download.http import _read_capped
from quadrat.demo import DemoSurvey
from quadrat.errors import FetchError, InputError, LimitError
from quadrat.io.coralnet import read_annotations_csv
from quadrat.io.csv import read_csv
from quadrat.io.images import check_complete, load_rgb, read_bytes, read_image_info
from quadrat.limits import ENV_VARS, Limits
from quadrat.points import PointSpec
from tests.data.http.data import FixtureServer, Reply, jpeg_bytes


def _says_how(error: LimitError, name: str) -> None:
    text = str(error)
    assert f"over the limit {name}" in text
    assert f"Limits({name}=...)" in text and ENV_VARS[name] in text


# --------------------------------------------------------------------------- the limits


def test_defaults_are_coralnets() -> None:
    limits = Limits()
    assert limits.points_per_image == 1_000
    assert limits.pixels_per_image == 100_000_000
    assert limits.image_file_bytes == 30 * 1024 * 1024


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUADRAT_MAX_POINTS_PER_IMAGE", "2_000")
    monkeypatch.setenv("QUADRAT_DOWNLOAD_DEADLINE_S", "2.5")
    limits = Limits.from_env()
    assert limits.points_per_image == 2000 and limits.download_seconds == 2.5
    assert limits.csv_rows == Limits().csv_rows
    assert Limits.from_env({}) == Limits()


@pytest.mark.parametrize("text", ["lots", "-5", "0"])
def test_bad_environment_values_are_input_errors(text: str) -> None:
    with pytest.raises(InputError):
        Limits.from_env({"QUADRAT_MAX_CSV_ROWS": text})


# --------------------------------------------------------------------------- points


@pytest.mark.parametrize("spec", ["m_1000000000", "t_100_100_100", "u_1000_1000", "m_1001"])
def test_point_specs_over_the_limit_are_refused(spec: str) -> None:
    with pytest.raises(LimitError) as err:
        PointSpec.parse(spec)
    _says_how(err.value, "points_per_image")
    assert spec in str(err.value)


def test_a_billion_points_are_refused_before_allocating() -> None:
    spec = PointSpec("simple", n=1_000_000_000)  # built directly: no parse-time check
    tracemalloc.start()
    try:
        with pytest.raises(LimitError) as err:
            spec.generate(4000, 3000, seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # bytes: nothing the size of the request was allocated
    assert err.value.value == 1_000_000_000
    assert err.value.exit_code == 6


def test_the_limit_can_be_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(PointSpec.parse("m_1000").generate(50, 50, seed=0)) == 1000
    more = Limits(points_per_image=1500)
    assert len(PointSpec.parse("m_1500", limits=more).generate(50, 50, seed=0, limits=more)) == 1500
    monkeypatch.setenv("QUADRAT_MAX_POINTS_PER_IMAGE", "1500")
    assert len(PointSpec.parse("m_1500").generate(50, 50, seed=0)) == 1500


def test_imported_specs_are_not_refused() -> None:
    assert PointSpec.parse("i_5000").count == 5000  # counted from the file's rows instead


def test_source_refuses_a_billion_points_and_keeps_its_points(
    tmp_path: Path, survey: DemoSurvey
) -> None:
    project = Project.create(tmp_path / "p.db")
    src = project.create_source("reef", labelset=survey.labelset_csv)
    src.import_images([survey.new_dir])
    with pytest.raises(LimitError):
        src.generate_points("m_1000000000")
    assert src.counts()["points"] == 0


def test_cli_points_refuses_a_billion(tmp_path: Path, survey: DemoSurvey) -> None:
    from typer.testing import CliRunner

    from quadrat.cli import app

    db = str(tmp_path / "p.db")
    with Project.create(db) as project:
        project.create_source("reef", labelset=survey.labelset_csv).import_images([survey.new_dir])
    result = CliRunner().invoke(app, ["points", "m_1000000000", "-p", db])
    assert result.exit_code == 6, result.output
    assert "Traceback" not in result.output
    assert "points_per_image" in result.output and "QUADRAT_MAX_POINTS_PER_IMAGE" in result.output


def test_annotation_csv_with_too_many_points_on_an_image(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    rows = ["Name,Row,Column"] + ["ok.jpg,1,1"] * 3 + ["big.jpg,2,2"] * 1001
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(LimitError) as err:
        read_annotations_csv(path)
    _says_how(err.value, "points_per_image")
    assert err.value.line == 5 and "'big.jpg'" in str(err.value)
    assert len(read_annotations_csv(path, limits=Limits(points_per_image=1001))) == 1004


# --------------------------------------------------------------------------- CSV


def test_csv_over_the_byte_limit_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.csv"
    path.write_text("Name,Row,Column\n" + "a.jpg,1,1\n" * 50)

    def no_read(self: Path) -> bytes:
        raise AssertionError("the file was read")

    monkeypatch.setattr(Path, "read_bytes", no_read)
    with pytest.raises(LimitError) as err:
        read_csv(path, limits=Limits(csv_bytes=100))
    _says_how(err.value, "csv_bytes")
    assert err.value.path == path


def test_csv_over_the_row_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.csv"
    path.write_text("Name,Row,Column\n" + "a.jpg,1,1\n" * 11)
    assert len(read_csv(path, limits=Limits(csv_rows=11))) == 11
    monkeypatch.setenv("QUADRAT_MAX_CSV_ROWS", "10")
    with pytest.raises(LimitError) as err:
        read_annotations_csv(path)
    _says_how(err.value, "csv_rows")


# --------------------------------------------------------------------------- images


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("size", [(12_000, 9_000), (40_000, 40_000)])
def test_decompression_bombs_are_refused_from_the_header(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header(*size))
    for read in (read_image_info, check_complete, load_rgb):
        with pytest.raises(LimitError) as err:
            read(path)
        assert "pixels_per_image" in str(err.value) and str(path) in str(err.value)


def test_image_file_over_the_byte_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(path)
    size = path.stat().st_size
    assert read_image_info(path).width == 32
    monkeypatch.setenv("QUADRAT_MAX_IMAGE_FILE_BYTES", str(size - 1))
    with pytest.raises(LimitError) as err:
        read_image_info(path)
    _says_how(err.value, "image_file_bytes")
    with pytest.raises(LimitError, match="QUADRAT_MAX_IMAGE_FILE_BYTES"):
        read_bytes(path)


# --------------------------------------------------------------------------- downloads


def test_download_over_the_size_cap_fails_that_image(tmp_path: Path) -> None:
    with FixtureServer() as server:
        body = jpeg_bytes(1)
        table = pd.DataFrame(
            {
                "dataset": ["ds"],
                "site": ["s1"],
                "image": ["big.jpg"],
                "url": [server.route("/big.jpg", [Reply.ok(body)])],
            }
        )
        options = DownloadOptions(retries=2, backoff=0.01, max_bytes=len(body) - 1)
        summary = download_images(table, tmp_path / "out", layout="tree", options=options)
        assert server.hits["/big.jpg"] == 1  # a size cap is not retried
    assert summary.failed == 1
    manifest = read_manifest(tmp_path / "out")
    assert "download_bytes" in manifest["error"].iloc[0]


def test_download_total_deadline(tmp_path: Path) -> None:
    with FixtureServer() as server:
        table = pd.DataFrame(
            {
                "dataset": ["ds"],
                "site": ["s1"],
                "image": ["slow.jpg"],
                "url": [server.route("/slow.jpg", [Reply.ok(jpeg_bytes(2))])],
            }
        )
        options = DownloadOptions(retries=0, deadline=1e-9)
        summary = download_images(table, tmp_path / "out", layout="tree", options=options)
    assert summary.failed == 1
    assert "total deadline" in read_manifest(tmp_path / "out")["error"].iloc[0]


class _Response:
    def __init__(self, body: bytes, content_type: str | None) -> None:
        self.headers = Message()
        if content_type is not None:
            self.headers["Content-Type"] = content_type
        self._body = io.BytesIO(body)

    def read(self, n: int = -1) -> bytes:
        return self._body.read(n)


@pytest.mark.parametrize("ctype", ["text/html; charset=utf-8", "application/json"])
def test_download_refuses_a_body_that_is_not_an_image(ctype: str) -> None:
    with pytest.raises(FetchError, match="not an image") as err:
        _read_capped(_Response(b"<html>", ctype), "http://x/a.jpg", DownloadOptions())  # type: ignore[arg-type]
    assert not err.value.retryable


@pytest.mark.parametrize("ctype", [None, "image/jpeg", "application/octet-stream"])
def test_download_accepts_image_types(ctype: str | None) -> None:
    data = _read_capped(_Response(b"abc", ctype), "http://x/a.jpg", DownloadOptions())  # type: ignore[arg-type]
    assert data == b"abc"
