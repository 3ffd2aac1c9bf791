"""Bad files of every format quadrat reads (issue 12 item 7): one clean error, nothing stored.

Each reader gets hostile files (empty, binary, not UTF-8, truncated, another format under
its name, malformed structure) and must raise a quadrat error (``quadrat.errors``) whose
message names the file, and the row where there is one. Through the command line the same
files give a non-zero exit status, one ``error:`` line naming the file and no traceback,
and the project keeps exactly what it held (counts compared before and after).
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

import quadrat
from quadrat.cli import app
from quadrat.demo import DemoSurvey
from quadrat.errors import QuadratError

runner = CliRunner()

# ------------------------------------------------------------------------ file contents

LABELSET_CSV = b"Label ID,Short Code,Name,Functional Group\n1,Porit,Porites,Hard coral\n"
ANNOTATIONS_CSV = b"Name,Row,Column,Label code\na.jpg,10,20,Porit\na.jpg,30,40,Porit\n"
GPX = (
    b'<?xml version="1.0"?><gpx version="1.1" creator="t" '
    b'xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>'
    b'<trkpt lat="-17.5" lon="-149.8"><time>2024-03-01T10:00:00Z</time></trkpt>'
    b'<trkpt lat="-17.6" lon="-149.9"><time>2024-03-01T10:01:00Z</time></trkpt>'
    b"</trkseg></trk></gpx>"
)
DEPTH_LOG = b"Time,Depth\n2024-03-01 10:00:00,10.5\n2024-03-01 10:01:00,11.0\n"
METADATA_CSV = b"filename,latitude,longitude,datetime\na.jpg,-17.5,-149.8,2024-03-01 10:00:00\n"
BINARY = bytes(range(256)) * 16
LATIN1 = "Name,Row,Column,Label code\nrécif.jpg,1,2,Porit\n".encode("latin-1")
BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
        for i in range(1, 10)
    )
    + b']><gpx version="1.1"><trk><name>&lol9;</name></trk></gpx>'
)


def png_bytes(width: int = 8, height: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg_bytes(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 30, 20)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def safetensors_claiming(header_bytes: int) -> bytes:
    """A safetensors file whose 8-byte prefix claims a header of ``header_bytes``."""
    return struct.pack("<Q", header_bytes) + b'{"a": {"dtype": "F32", "shape": [1], '


def deep_json(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# ---------------------------------------------------------------------------- readers


def _labelset(path: Path) -> Any:
    from quadrat.io.coralnet import read_labelset

    return read_labelset(path)


def _annotations(path: Path) -> Any:
    from quadrat.io.coralnet import read_annotations_csv

    return read_annotations_csv(path)


def _metadata(fmt: str) -> Callable[[Path], Any]:
    def read(path: Path) -> Any:
        from quadrat.datasets.readers import read_metadata

        return read_metadata(path, fmt)

    return read


def _gpx(path: Path) -> Any:
    from quadrat.datasets.readers import read_gpx

    return read_gpx(path)


def _depth_log(path: Path) -> Any:
    from quadrat.datasets.readers import read_depth_log

    return read_depth_log(path)


def _classifier(path: Path) -> Any:
    from quadrat.classifiers.serialize import read_classifier_file

    return read_classifier_file(path)


def _weights(path: Path) -> Any:
    pytest.importorskip("torch")
    from quadrat.extractors.checkpoints import read_state_dict

    return read_state_dict(path)


def _backbone(path: Path) -> Any:
    pytest.importorskip("torch")
    from quadrat.extractors.backbone_file import read_config

    return read_config(path)


def _image(path: Path) -> Any:
    from quadrat.io.images import check_complete, read_image_info

    info = read_image_info(path)
    check_complete(path)
    return info


def _cpc(path: Path) -> Any:
    from quadrat.io.cpce import read_cpc

    return read_cpc(path)


READERS: dict[str, tuple[str, Callable[[Path], Any]]] = {
    "labelset_csv": ("labels.csv", _labelset),
    "labelset_json": ("Labels.json", _labelset),
    "annotations": ("annotations.csv", _annotations),
    "metadata_csv": ("metadata.csv", _metadata("csv")),
    "metadata_coralnet": ("metadata.csv", _metadata("coralnet")),
    "metadata_squidle": ("squidle.csv", _metadata("squidle")),
    "gpx": ("track.gpx", _gpx),
    "depth_log": ("depth.csv", _depth_log),
    "classifier": ("model.quadrat", _classifier),
    "weights_pth": ("weights.pth", _weights),
    "weights_safetensors": ("weights.safetensors", _weights),
    "backbone": ("backbone.safetensors", _backbone),
    "image_jpg": ("photo.jpg", _image),
    "image_png": ("photo.png", _image),
    "cpc": ("photo.cpc", _cpc),
}

#: Hostile contents every reader must refuse.
COMMON: dict[str, bytes] = {
    "empty": b"",
    "binary": BINARY,
    "png_under_another_name": png_bytes(),
}

#: Further hostile contents per reader (and the line the error must name, when known).
SPECIFIC: list[tuple[str, str, bytes, int | None]] = [
    ("labelset_csv", "not_utf8", LATIN1, None),
    ("labelset_csv", "unclosed_quote", LABELSET_CSV + b'2,"CCA,CCA,Algae\n', 3),
    ("labelset_csv", "duplicate_code", LABELSET_CSV + b"2,Porit,Porites 2,Hard coral\n", 3),
    ("labelset_csv", "ragged", LABELSET_CSV + b"2,CCA,CCA,Algae,extra,more\n", 3),
    ("labelset_json", "not_json", b'{"labels": [', None),
    ("labelset_json", "wrong_shape", b'{"labels": 5}', None),
    ("labelset_json", "deeply_nested", deep_json(100_000), None),
    ("labelset_json", "numbers", b"[1, 2, 3]", None),
    ("annotations", "not_utf8", LATIN1, None),
    ("annotations", "truncated", ANNOTATIONS_CSV[:48], 3),
    ("annotations", "negative_row", ANNOTATIONS_CSV + b"a.jpg,-1,2,Porit\n", 4),
    ("annotations", "huge_row", ANNOTATIONS_CSV + b"a.jpg,99999999999999999999,2,x\n", 4),
    ("annotations", "ragged", ANNOTATIONS_CSV + b"a.jpg,1,2,Porit,extra\n", 4),
    ("annotations", "unclosed_quote", ANNOTATIONS_CSV + b'\n"a.jpg,1,2,Porit\n', 5),
    ("annotations", "bad_date", b"Name,Row,Column,Date annotated\na.jpg,1,2,someday\n", 2),
    ("metadata_csv", "not_utf8", LATIN1, None),
    ("metadata_csv", "ragged", METADATA_CSV + b"b.jpg,1,2\n,,,\nc.jpg,1,2,3,4,5\n", 5),
    ("metadata_coralnet", "not_utf8", LATIN1, None),
    ("metadata_squidle", "not_utf8", LATIN1, None),
    ("gpx", "truncated", GPX[: len(GPX) // 2], None),
    ("gpx", "not_xml", b"lat,lon\n1,2\n", None),
    ("gpx", "billion_laughs", BILLION_LAUGHS, None),
    ("gpx", "bad_time", GPX.replace(b"2024-03-01T10:00:00Z", b"yesterday"), None),
    ("depth_log", "not_utf8", LATIN1, None),
    ("depth_log", "truncated", DEPTH_LOG[:8], None),
    ("depth_log", "bad_depth", DEPTH_LOG + b"2024-03-01 10:02:00,deep\n", 4),
    ("classifier", "truncated_header", safetensors_claiming(10**12), None),
    ("classifier", "json", json.dumps({"kind": "lr"}).encode(), None),
    ("classifier", "pickle", b"\x80\x04\x95" + BINARY[:64], None),
    ("weights_pth", "truncated_zip", b"PK\x03\x04" + BINARY[:100], None),
    ("weights_safetensors", "header_claims_a_terabyte", safetensors_claiming(10**12), None),
    ("weights_safetensors", "text", b"these are not weights\n", None),
    ("backbone", "header_claims_a_terabyte", safetensors_claiming(10**12), None),
    ("image_jpg", "truncated_jpeg", jpeg_bytes()[:300], None),
    ("image_jpg", "text", b"this is not a photo\n" * 10, None),
    ("image_png", "claims_100000x100000", png_claiming(100_000, 100_000), None),
    ("image_png", "truncated_png", png_bytes(64, 64)[:60], None),
    ("cpc", "text", b"not a cpc\r\n", 1),
]

CASES = [
    pytest.param(reader, content, data, None, id=f"{reader}-{content}")
    for reader in READERS
    for content, data in COMMON.items()
    if not (reader.startswith("image") and content == "png_under_another_name")
] + [pytest.param(*case, id=f"{case[0]}-{case[1]}") for case in SPECIFIC]


@pytest.mark.parametrize(("reader", "content", "data", "line"), CASES)
def test_a_bad_file_is_one_clean_error_naming_it(
    tmp_path: Path, reader: str, content: str, data: bytes, line: int | None
) -> None:
    name, read = READERS[reader]
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(QuadratError) as caught:
        read(path)
    error = caught.value
    assert str(path) in str(error) or error.path == path, str(error)
    if line is not None:
        assert error.line == line, str(error)
        assert f"line {line}" in str(error)
    assert "Traceback" not in str(error) and len(str(error)) < 2000


@pytest.mark.parametrize("reader", ["labelset_csv", "annotations", "gpx", "classifier", "cpc"])
def test_a_folder_or_a_missing_file_is_a_clean_error(tmp_path: Path, reader: str) -> None:
    """A quadrat error, or the OSError the command line prints as one line."""
    _name, read = READERS[reader]
    for path in (tmp_path, tmp_path / "missing.file"):
        with pytest.raises((QuadratError, IsADirectoryError, FileNotFoundError)) as caught:
            read(path)
        assert str(path) in str(caught.value)


# ------------------------------------------------------------------ through the CLI


def _one_line_error(args: list[str], *names: Path) -> str:
    result = runner.invoke(app, args)
    text = " ".join(result.output.split())
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert text.startswith("error:") and text.count("error:") == 1, result.output
    for name in names:
        assert name.name in text, text
    return text


def _state(db: Path) -> dict[str, Any]:
    with quadrat.Project.open(db) as project:
        src = project.source()
        return {
            **src.counts(),
            "labels": len(src.labelset()),
            "classifiers": len(src.classifiers()),
            "sources": len(project.sources),
        }


@pytest.fixture
def project(tmp_path: Path, survey: DemoSurvey) -> Path:
    """A project holding the synthetic survey (labelset, images, annotations)."""
    db = tmp_path / "p.db"
    with quadrat.Project.create(db) as created:
        src = created.create_source("reef", labelset=survey.labelset_csv)
        src.import_annotations(survey.annotations_csv, survey.annotated_dir)
    return db


CLI_CSV = {
    "empty": b"",
    "binary": BINARY,
    "not_utf8": LATIN1,
    "png": png_bytes(),
    "missing_columns": b"Name,Label code\na.jpg,Porit\n",
    "ragged": ANNOTATIONS_CSV + b"a.jpg,1,2,Porit,extra\n",
    "negative_row": ANNOTATIONS_CSV + b"a.jpg,-1,2,Porit\n",
    "unknown_image": ANNOTATIONS_CSV,
}


@pytest.mark.parametrize("content", list(CLI_CSV))
def test_cli_import_of_a_bad_annotation_csv(
    tmp_path: Path, survey: DemoSurvey, project: Path, content: str
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(CLI_CSV[content])
    before = _state(project)
    _one_line_error(["import", str(bad), "-i", str(survey.annotated_dir), "-p", str(project)], bad)
    assert _state(project) == before


CLI_LABELSETS = {
    "labels.csv": [b"", BINARY, LATIN1, LABELSET_CSV + b"2,Porit,Porites 2,Hard coral\n"],
    "Labels.json": [b"{", b'{"labels": 5}', deep_json(100_000), png_bytes()],
}


@pytest.mark.parametrize(
    ("name", "index"),
    [(name, i) for name, contents in CLI_LABELSETS.items() for i in range(len(contents))],
)
def test_cli_import_of_a_bad_labelset(tmp_path: Path, project: Path, name: str, index: int) -> None:
    bad = tmp_path / name
    bad.write_bytes(CLI_LABELSETS[name][index])
    before = _state(project)
    _one_line_error(["import", "--labelset", str(bad), "-p", str(project)], bad)
    assert _state(project) == before


CLI_IMAGES = {
    "zero.jpg": b"",
    "truncated.jpg": jpeg_bytes()[:300],
    "bomb.png": png_claiming(100_000, 100_000),
    "text.jpg": b"this is a text file\n" * 20,
    "html.png": b"<html><body>404 not found</body></html>\n",
}


@pytest.mark.parametrize("name", list(CLI_IMAGES))
def test_cli_import_of_a_bad_image(tmp_path: Path, project: Path, name: str) -> None:
    folder = tmp_path / "new"
    folder.mkdir()
    (folder / "good.jpg").write_bytes(jpeg_bytes())
    bad = folder / name
    bad.write_bytes(CLI_IMAGES[name])
    before = _state(project)
    _one_line_error(["import", "-i", str(folder), "-p", str(project)], bad)
    assert _state(project) == before  # the good image was not stored either


CLI_CLASSIFIERS = {
    "empty": b"",
    "binary": BINARY,
    "pickle": b"\x80\x04\x95" + BINARY[:64],
    "header_claims_a_terabyte": safetensors_claiming(10**12),
    "json": b'{"kind": "lr"}',
}


@pytest.mark.parametrize("content", list(CLI_CLASSIFIERS))
def test_cli_import_of_a_bad_classifier_file(tmp_path: Path, project: Path, content: str) -> None:
    bad = tmp_path / "model.quadrat"
    bad.write_bytes(CLI_CLASSIFIERS[content])
    before = _state(project)
    _one_line_error(["classifier", "import", str(bad), "-p", str(project)], bad)
    assert _state(project) == before


CLI_METADATA = {
    ("csv", "empty"): b"",
    ("csv", "binary"): BINARY,
    ("csv", "not_utf8"): LATIN1,
    ("coralnet", "png"): png_bytes(),
    ("squidle", "binary"): BINARY,
}


@pytest.mark.parametrize(("fmt", "content"), list(CLI_METADATA))
def test_cli_dataset_validate_of_a_bad_metadata_file(
    tmp_path: Path, fmt: str, content: str
) -> None:
    bad = tmp_path / "meta.csv"
    bad.write_bytes(CLI_METADATA[(fmt, content)])
    out = tmp_path / "out.csv"
    _one_line_error(["dataset", "validate", str(bad), "-f", fmt, "-o", str(out)], bad)
    assert not out.exists()


@pytest.mark.parametrize(
    ("option", "name", "data"),
    [
        ("--gpx", "track.gpx", b""),
        ("--gpx", "track.gpx", GPX[:60]),
        ("--gpx", "track.gpx", BILLION_LAUGHS),
        ("--depth-log", "depth.csv", BINARY),
        ("--depth-log", "depth.csv", DEPTH_LOG + b"2024-03-01 10:02:00,deep\n"),
    ],
    ids=["gpx-empty", "gpx-truncated", "gpx-billion-laughs", "depth-binary", "depth-bad-value"],
)
def test_cli_dataset_validate_with_a_bad_track_or_depth_log(
    tmp_path: Path, option: str, name: str, data: bytes
) -> None:
    meta = tmp_path / "meta.csv"
    meta.write_bytes(METADATA_CSV)
    bad = tmp_path / name
    bad.write_bytes(data)
    out = tmp_path / "out.csv"
    _one_line_error(["dataset", "validate", str(meta), "-o", str(out), option, str(bad)], bad)
    assert not out.exists()
