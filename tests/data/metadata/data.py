"""Tiny survey-metadata inputs, each with known flaws, for the dataset readers and validation.

``make_metadata_fixtures(root)`` writes (deterministically) and returns name -> path:

- ``images``: a folder ``survey/`` with ``reef_a/`` (three 32x24 JPEGs with EXIF
  DateTimeOriginal, OffsetTimeOriginal -03:00 and GPS, one at 0/0), ``reef_b/`` (one JPEG
  without GPS, one whose DateTimeOriginal is garbage) and ``reef_b/broken.jpg`` (text);
- ``gpx``: a GPX 1.1 track over reef_a's photo times (UTC) plus a waypoint without time;
- ``depth_log``: a camera depth log (Paralenz style: ``Time`` as ``2019:03:11 12:00:00``
  local, ``Depth`` as ``008.0 ``) over reef_a's local photo times;
- ``coralnet``: a CoralNet annotation export (2 points per image, Aux1 = site, Height (cm),
  one latitude of 95);
- ``coralnet_metadata``: CoralNet's metadata-only export (no Row/Column) of the same images;
- ``squidle_points``: a Squidle+ point export (3 images, 2 points each);
- ``squidle_media``: a Squidle+ media list (no campaign/deployment columns);
- ``rov``: an ROV log with ``date``/``time``/``lat``/``lon``/negative ``depth``/``img_name``,
  one 0/0 row, one duplicate image, one unparseable date.

The constants below are what a correct reader finds; tests compare against them.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825

#: reef_a photos: name -> (local EXIF time at -03:00, latitude, longitude).
REEF_A: dict[str, tuple[str, float, float]] = {
    "a1.jpg": ("2019:03:11 12:00:00", -42.6240, -64.2600),
    "a2.jpg": ("2019:03:11 12:00:30", -42.6242, -64.2598),
    "a3.jpg": ("2019:03:11 12:01:00", 0.0, 0.0),  # a GPS without a fix
}
#: The GPX track: UTC times (photo time + 3 h) and positions; a4 is not on it.
TRACK: list[tuple[str, float, float]] = [
    ("2019-03-11T14:59:50Z", -42.6239, -64.2601),
    ("2019-03-11T15:00:10Z", -42.6241, -64.2599),
    ("2019-03-11T15:00:50Z", -42.6243, -64.2597),
    ("2019-03-11T15:01:10Z", -42.6245, -64.2595),
]
#: The depth log: (second after 12:00:00 local, depth m); a2 (12:00:30) is 8.5 m, a3
#: (12:01:00) is past the log.
DEPTH_LOG: list[tuple[int, float]] = [(0, 8.0), (28, 8.0), (32, 9.0), (50, 9.5)]
SQUIDLE_IMAGES = ("PR_0001.jpg", "PR_0002.jpg", "PR_0003.jpg")
ROV_ROWS = 6
ROV_BAD_LINES = {4: "null island", 6: "duplicate", 7: "datetime"}


def _jpeg(path: Path, seed: int, *, stamp: str | None, gps: tuple[float, float] | None) -> None:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x010F] = "QuadratCam"
    exif[0x0110] = "QC-1"
    if stamp is not None:
        extended = exif.get_ifd(_EXIF_IFD)
        extended[0x9003] = stamp
        extended[0x9011] = "-03:00"
    if gps is not None:
        info = exif.get_ifd(_GPS_IFD)
        lat, lon = gps
        info[1] = "S" if lat < 0 else "N"
        info[2] = _dms(abs(lat))
        info[3] = "W" if lon < 0 else "E"
        info[4] = _dms(abs(lon))
        info[5] = b"\x01"
        info[6] = 8.5
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, "JPEG", quality=90, exif=exif.tobytes())


def _dms(degrees: float) -> tuple[float, float, float]:
    whole = int(degrees)
    minutes = (degrees - whole) * 60
    return (float(whole), float(int(minutes)), (minutes - int(minutes)) * 60)


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _gpx(path: Path) -> Path:
    points = "\n".join(
        f'      <trkpt lat="{lat}" lon="{lon}"><ele>0.5</ele><time>{t}</time></trkpt>'
        for t, lat, lon in TRACK
    )
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<gpx version="1.1" creator="quadrat-tests" xmlns="http://www.topografix.com/GPX/1/1">\n'
        '  <wpt lat="-42.6" lon="-64.2"><name>boat ramp</name></wpt>\n'
        "  <trk><name>transect 1</name><trkseg>\n"
        f"{points}\n"
        "  </trkseg></trk>\n"
        "</gpx>\n",
        encoding="utf-8",
    )
    return path


def make_metadata_fixtures(root: Path) -> dict[str, Path]:
    """Write every fixture under ``root`` (created if needed); return name -> path."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    survey = root / "survey"
    for seed, (name, (stamp, lat, lon)) in enumerate(REEF_A.items()):
        _jpeg(survey / "reef_a" / name, seed, stamp=stamp, gps=(lat, lon))
    _jpeg(survey / "reef_b" / "b1.jpg", 10, stamp="2019:03:11 13:00:00", gps=None)
    _jpeg(survey / "reef_b" / "b2.jpg", 11, stamp="not a date", gps=(-42.7, -64.3))
    (survey / "reef_b" / "broken.jpg").write_text("not a JPEG\n")
    (survey / "reef_b" / "notes.txt").write_text("field notes, not an image\n")

    paths: dict[str, Path] = {"images": survey, "gpx": _gpx(root / "track.gpx")}
    paths["depth_log"] = _write_csv(
        root / "LOG01.CSV",
        ["Time", "Temperature", "Depth", "Image/video-file"],
        [[f"2019:03:11 12:00:{s:02d}", " +14.4 ", f"{d:05.1f} ", ""] for s, d in DEPTH_LOG],
    )

    meta = ["Date", "Aux1", "Height (cm)", "Latitude", "Longitude", "Depth", "Camera"]
    images = [
        ["IMG_1.JPG", "2020-01-05", "north", "50", "-17.48", "-149.82", "4", "GoPro"],
        ["IMG_2.JPG", "2020-01-05", "north", "50", "95", "-149.82", "4", "GoPro"],
        ["IMG_3.JPG", "2020-01-06", "", "", "", "", "", "GoPro"],
    ]
    rows = [[*image, r, c, "Sand"] for image in images for r, c in ((10, 20), (30, 40))]
    paths["coralnet"] = _write_csv(
        root / "coralnet.csv", ["Name", *meta, "Row", "Column", "Label"], rows
    )
    paths["coralnet_metadata"] = _write_csv(root / "coralnet_metadata.csv", ["Name", *meta], images)

    header = [
        "",
        "label.name",
        "point.id",
        "point.media.deployment.campaign.key",
        "point.media.deployment.key",
        "point.media.id",
        "point.media.key",
        "point.media.path_best",
        "point.pose.alt",
        "point.pose.dep",
        "point.pose.lat",
        "point.pose.lon",
        "point.pose.timestamp",
        "point.x",
        "point.y",
    ]
    rows = []
    for i, image in enumerate(SQUIDLE_IMAGES):
        for j in range(2):
            rows.append(
                [
                    len(rows),
                    "Ecklonia radiata",
                    100 + len(rows),
                    "Tasmania201006",
                    "r20100604_lanterns" if i < 2 else "r20100605_lanterns",
                    500 + i,
                    image.removesuffix(".jpg"),
                    f"https://example.org/auv/{image}",
                    1.9,
                    21.5 + i,
                    -43.136 - i * 1e-4,
                    148.006,
                    f"2010-06-04 23:1{i}:41",
                    0.25 + j / 2,
                    0.5,
                ]
            )
    paths["squidle_points"] = _write_csv(root / "squidle_points.csv", header, rows)
    paths["squidle_media"] = _write_csv(
        root / "squidle_media.csv",
        [
            "",
            "id",
            "key",
            "path_best",
            "pose.lat",
            "pose.lon",
            "pose.alt",
            "pose.dep",
            "pose.timestamp",
        ],
        [
            [
                0,
                500,
                "PR_0001",
                "https://example.org/auv/PR_0001.jpg",
                -43.1,
                148.0,
                2.0,
                21.0,
                "2010-06-04 23:10:41",
            ],
            [
                1,
                501,
                "PR_0002",
                "https://example.org/auv/PR_0002.jpg",
                -43.2,
                148.1,
                1.8,
                22.0,
                "2010-06-04 23:11:41",
            ],
        ],
    )
    paths["rov"] = _write_csv(
        root / "rov.csv",
        ["time", "date", "site", "depth", "lat", "lon", "img_name", "heading"],
        [
            ["13:50:40", "10/6/2022", "1", "-6.5", "47.630268", "-122.3982391", "r1.jpg", "263"],
            ["13:50:45", "10/6/2022", "1", "-6.6", "47.630270", "-122.3982400", "r2.jpg", "264"],
            ["13:50:50", "10/6/2022", "1", "-6.7", "0", "0", "r3.jpg", "265"],
            ["09:12:00", "10/7/2022", "2", "-4.1", "47.589065", "-122.3430633", "r4.jpg", "146"],
            ["09:12:00", "10/7/2022", "2", "-4.1", "47.589065", "-122.3430633", "r4.jpg", "146"],
            ["9:12:05", "13/45/2022", "2", "-4.2", "47.589070", "-122.3430640", "r5.jpg", "147"],
        ],
    )
    return paths
