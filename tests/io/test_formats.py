"""quadrat.io.formats: each format read from files in its published layout, written and
read back unchanged, and malformed files refused with the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from quadrat.errors import CsvFormatError, InputError, LimitError
from quadrat.io.cpce import read_cpc
from quadrat.io.formats import get_format, list_formats
from quadrat.io.formats.biigle import (
    REPORT_COLUMNS,
    read_biigle_label_tree,
    read_biigle_report,
    write_biigle_label_tree,
    write_biigle_report,
)
from quadrat.io.formats.coco import read_coco, write_coco
from quadrat.io.formats.cpce import read_cpce, write_cpce
from quadrat.io.formats.geojson import geojson_document, write_geojson
from quadrat.io.formats.points_csv import read_points_csv, write_points_csv
from quadrat.io.formats.squidle import read_squidle, write_squidle
from quadrat.io.formats.viame import read_viame_csv, write_viame_csv
from quadrat.limits import Limits
from tests.data.coralnet.data import GRID, HEIGHT, IMAGES, LABELS, POINT_LABELS, WIDTH
from tests.data.cpce import data as cpce_data
from tests.data.formats import data


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return data.make_formats_fixture(tmp_path_factory.mktemp("formats"))


def expected_points(labels: bool = True) -> list[tuple[str, int, int, str | None]]:
    return [
        (name, r, c, code if labels else None)
        for name in IMAGES
        for (r, c), code in zip(GRID, POINT_LABELS[name], strict=True)
    ]


def points_of(table: pd.DataFrame) -> list[tuple[str, int, int, str | None]]:
    return [
        (str(n), int(r), int(c), lab if isinstance(lab, str) else None)
        for n, r, c, lab in zip(
            table["image"], table["row"], table["column"], table["label"], strict=True
        )
    ]


def source_table(labels: bool = True) -> pd.DataFrame:
    """A point table as the workflow hands it to writers."""
    rows = expected_points(labels)
    table = pd.DataFrame(rows, columns=["image", "row", "column", "label"])
    table["width"], table["height"] = WIDTH, HEIGHT
    return table


def test_registry_lists_what_each_format_supports() -> None:
    names = {f.name: f for f in list_formats()}
    assert {"coralnet-points", "cpce", "viame", "coco", "geojson"} <= set(names)
    assert names["geojson"].exports and not names["geojson"].imports
    assert all(names[n].imports and names[n].exports for n in ("cpce", "viame", "coco"))
    with pytest.raises(InputError, match="did you mean 'viame'"):
        get_format("viam")


# ----------------------------------------------------------------------- points CSV


def test_points_csv_reads_coralnet_points_upload(files: dict[str, Path]) -> None:
    table = read_points_csv(files["points.csv"])
    assert points_of(table) == expected_points(labels=False)
    assert table["line"].tolist()[:2] == [2, 3]


def test_points_csv_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "points.csv"
    assert write_points_csv(source_table(), out) == 27
    assert out.read_text().splitlines()[:2] == ["Name,Row,Column", "reef_a.jpg,39,52"]
    assert points_of(read_points_csv(out)) == expected_points(labels=False)


@pytest.mark.parametrize("name", ["points_row_text.csv", "points_no_column.csv"])
def test_points_csv_refuses_bad_files_by_line(files: dict[str, Path], name: str) -> None:
    with pytest.raises(CsvFormatError) as info:
        read_points_csv(files[name])
    assert info.value.path == files[name] and info.value.line == data.BAD[name]


def test_points_csv_limits_points_per_image(tmp_path: Path) -> None:
    path = tmp_path / "many.csv"
    path.write_text("Name,Row,Column\n" + "a.jpg,1,1\n" * 4)
    with pytest.raises(LimitError) as info:
        read_points_csv(path, limits=Limits(points_per_image=3))
    assert info.value.line == 5


# ----------------------------------------------------------------------- CPCe


def test_cpce_reads_a_folder_of_cpce_files(tmp_path: Path) -> None:
    folder = tmp_path / "cpc"
    folder.mkdir()
    (folder / "reef_a.cpc").write_bytes(cpce_data.cpc_text(cpce_data.REEF_A).encode())
    table = read_cpce(folder)
    assert points_of(table) == [
        (cpce_data.IMAGE_PATH, r, c, code) for name, r, c, code in expected_points()[:9]
    ]
    assert table["x"].tolist()[0] == 52 * 15 and table["line"].tolist()[0] == 7


def test_cpce_round_trip_writes_coralnets_layout(tmp_path: Path) -> None:
    table = source_table()
    table.loc[0, "label"] = None
    assert write_cpce(table, tmp_path / "out", image_dir=r"D:\Survey", code_path=r"C:\c.txt") == 3
    path = tmp_path / "out" / "reef_a.cpc"
    raw = path.read_bytes()
    assert raw.startswith(b'"C:\\c.txt","D:\\Survey\\reef_a.jpg",4800,3600,14400,10800\r\n')
    lines = raw.decode().split("\r\n")
    assert lines[1:7] == ["0,3585", "4785,3585", "4785,0", "0,0", "9", "780,585"]
    assert lines[15] == '"1","","Notes",""'
    assert lines[-29:] == ['""'] * 28 + [""]
    cpc = read_cpc(path)
    assert [(p.row, p.column, p.code or None) for p in cpc.points] == [
        (r, c, code) for _, r, c, code in points_of(table)[:9]
    ]
    assert len(cpc.headers) == 28


def test_cpce_writer_strips_quotes_and_refuses_names_outside(tmp_path: Path) -> None:
    table = source_table().iloc[:1].copy()
    table["label"] = 'Po"rit'
    write_cpce(table, tmp_path / "q")
    assert '"Porit"' in (tmp_path / "q" / "reef_a.cpc").read_text()
    table["image"] = "../escape.jpg"
    with pytest.raises(InputError, match="climbs out"):
        write_cpce(table, tmp_path / "r")


def test_cpce_bad_file_names_file_and_line(tmp_path: Path) -> None:
    fixture = cpce_data.make_cpce_fixture(tmp_path / "bad")
    with pytest.raises(InputError) as info:
        read_cpce(fixture["point_ragged"])
    assert info.value.path == fixture["point_ragged"] and info.value.line == 7


# ----------------------------------------------------------------------- VIAME


def test_viame_reads_boxes_keypoints_and_species(files: dict[str, Path]) -> None:
    table = read_viame_csv(files["viame.csv"])
    assert points_of(table) == expected_points()
    assert table["line"].tolist()[0] == 3
    assert table["score"].tolist()[-1] == pytest.approx(0.81)


def test_viame_round_trip(tmp_path: Path) -> None:
    table = source_table()
    table["suggestion_1"], table["confidence_1"] = "Sand", 0.4
    out = tmp_path / "v.csv"
    assert write_viame_csv(table, out) == 27
    lines = out.read_text().splitlines()
    assert lines[0].startswith("# 1: Detection or Track-id,2: Video or Image Identifier")
    assert lines[2] == "1,reef_a.jpg,0,52,39,52,39,1.0,-1,Porit,1.0,Sand,0.4"
    assert points_of(read_viame_csv(out)) == expected_points()
    boxed = tmp_path / "boxed.csv"
    write_viame_csv(table, boxed, half_size=60)
    assert "(kp) point 52 39" in boxed.read_text()  # the box was clipped: centre kept
    assert points_of(read_viame_csv(boxed)) == expected_points()


@pytest.mark.parametrize("name", ["viame_short.csv", "viame_box_text.csv", "viame_pair.csv"])
def test_viame_refuses_bad_rows_by_line(files: dict[str, Path], name: str) -> None:
    with pytest.raises(CsvFormatError) as info:
        read_viame_csv(files[name])
    assert info.value.path == files[name] and info.value.line == data.BAD[name]


# ----------------------------------------------------------------------- COCO


def test_coco_reads_keypoints(files: dict[str, Path]) -> None:
    assert points_of(read_coco(files["coco.json"])) == expected_points()


def test_coco_round_trip(tmp_path: Path) -> None:
    table = source_table()
    table.loc[3, "label"] = None
    out = tmp_path / "c.json"
    assert write_coco(table, out) == 26
    document = json.loads(out.read_text())
    assert document["images"][0] == {
        "id": 1,
        "file_name": "reef_a.jpg",
        "width": WIDTH,
        "height": HEIGHT,
    }
    assert document["annotations"][0]["keypoints"] == [52, 39, 2]
    expected = [p for k, p in enumerate(expected_points()) if k != 3]
    assert points_of(read_coco(out)) == expected


def test_coco_errors_name_line_or_place(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        read_coco(files["coco_syntax.json"])
    assert info.value.line == data.BAD["coco_syntax.json"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"images": [], "annotations": [{"image_id": 7}]}))
    with pytest.raises(InputError, match=r"annotations\[0\]: image_id 7"):
        read_coco(bad)


# ----------------------------------------------------------------------- GeoJSON


def test_geojson_places_images_and_points_with_cover(tmp_path: Path) -> None:
    table = source_table()
    table["latitude"] = table["image"].map({"reef_a.jpg": -17.48, "reef_b.jpg": "-17.5"})
    table["longitude"] = table["image"].map({"reef_a.jpg": -149.82, "reef_b.jpg": "-149.9"})
    document = geojson_document(table)
    assert document["quadrat"]["images_without_position"] == ["reef_c.jpg"]
    images = [f for f in document["features"] if f["properties"]["kind"] == "image"]
    assert [f["geometry"]["coordinates"] for f in images] == [[-149.82, -17.48], [-149.9, -17.5]]
    assert images[0]["properties"]["cover_Porit"] == pytest.approx(400 / 9, abs=1e-3)
    points = [f for f in document["features"] if f["properties"]["kind"] == "point"]
    assert len(points) == 18 and points[0]["properties"]["label"] == "Porit"
    out = tmp_path / "m.geojson"
    assert write_geojson(table, out) == 20
    assert json.loads(out.read_text())["type"] == "FeatureCollection"
    assert write_geojson(table, out, points="no") == 2
    with pytest.raises(InputError, match="points must be yes or no"):
        write_geojson(table, out, points="maybe")


# ----------------------------------------------------------------------- BIIGLE


def names_for(points: list[tuple[str, int, int, str | None]]) -> list[tuple[str, int, int, str]]:
    names = {code: name for _, code, name, _ in LABELS}
    return [(n, r, c, names[lab]) for n, r, c, lab in points if lab is not None]


@pytest.mark.parametrize("name", ["biigle.csv", "biigle.zip"])
def test_biigle_report_reads_points_and_circles(files: dict[str, Path], name: str) -> None:
    table = read_biigle_report(files[name])
    assert points_of(table) == names_for(expected_points())
    assert table.attrs["skipped_shapes"] == 1  # the polygon


def test_biigle_report_round_trip(tmp_path: Path) -> None:
    table = source_table()
    names = {code: name for _, code, name, _ in LABELS}
    table["label_name"] = table["label"].map(names)
    table.loc[0, "label"] = None
    out = tmp_path / "b.csv"
    assert write_biigle_report(table, out) == 26
    header, first = out.read_text().splitlines()[:2]
    assert header.split(",") == list(REPORT_COLUMNS)
    assert ',1,Point,"[159,39]",' in first
    assert points_of(read_biigle_report(out)) == names_for(expected_points())[1:]


def test_biigle_bad_points_name_the_line(files: dict[str, Path]) -> None:
    with pytest.raises(CsvFormatError) as info:
        read_biigle_report(files["biigle_points.csv"])
    assert info.value.line == data.BAD["biigle_points.csv"]


def test_biigle_label_tree_round_trip(files: dict[str, Path], tmp_path: Path) -> None:
    labelset = read_biigle_label_tree(files["label_tree.json"])
    assert sorted(zip(labelset["name"], labelset["functional_group"], strict=True)) == sorted(
        (name, group) for _, _, name, group in LABELS
    )
    out = tmp_path / "tree.json"
    assert write_biigle_label_tree(labelset, out) == len(LABELS)
    again = read_biigle_label_tree(out)
    assert again[["name", "functional_group"]].values.tolist() == (
        labelset[["name", "functional_group"]].values.tolist()
    )
    bad = tmp_path / "bad.json"
    bad.write_text('{"labels": [{"name": "x"}]}')
    with pytest.raises(InputError, match=r"labels\[0\] must be an object with id and name"):
        read_biigle_label_tree(bad)


# ----------------------------------------------------------------------- Squidle+


def test_squidle_reads_fractions_and_media_names(files: dict[str, Path]) -> None:
    table = read_squidle(files["squidle.csv"])
    assert table["image"].tolist()[:1] == ["reef_a.jpg"]
    assert table["label"].tolist()[0] == "Porites"
    assert table["x_fraction"].tolist()[0] == pytest.approx(52.25 / 320)


def test_squidle_round_trip(tmp_path: Path) -> None:
    table = source_table()
    out = tmp_path / "s.csv"
    assert write_squidle(table, out) == 27
    back = read_squidle(out)
    columns = (back["x_fraction"] * WIDTH).astype(int).tolist()
    rows = (back["y_fraction"] * HEIGHT).astype(int).tolist()
    assert list(zip(back["image"], rows, columns, back["label"], strict=True)) == (
        expected_points()
    )


def test_squidle_refuses_positions_outside_0_1(files: dict[str, Path]) -> None:
    with pytest.raises(CsvFormatError, match="fraction") as info:
        read_squidle(files["squidle_x.csv"])
    assert info.value.line == data.BAD["squidle_x.csv"]
