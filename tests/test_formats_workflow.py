"""Source.import_annotations(format=...) / Source.export(format, ...): other tools' files
into a source and back, all or nothing, with CoralNet's CPCe rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quadrat import Project, Source
from quadrat.demo import DemoSurvey
from quadrat.errors import ConflictError, InputError, NotFoundError, PointOutsideImageError
from quadrat.io.formats.cpce import read_cpce
from quadrat.workflow.formats import formats_table
from tests.data.coralnet import data as coralnet
from tests.data.coralnet.data import GRID, IMAGES, POINT_LABELS
from tests.data.cpce import data as cpce_data
from tests.data.formats import data


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fmt")
    paths = coralnet.make_coralnet_fixture(root / "coralnet")
    paths.update(data.make_formats_fixture(root / "formats"))
    return paths


def new_source(tmp_path: Path, fixture: dict[str, Path], images: bool = True) -> Source:
    project = Project.create(tmp_path / "p.db")
    src = project.create_source("reef", labelset=fixture["labelset"])
    if images:
        src.import_images([fixture[name] for name in IMAGES])
    return src


def stored(src: Source) -> list[tuple[str, int, int, str | None]]:
    table = src.annotations()
    return [
        (str(n), int(r), int(c), lab if isinstance(lab, str) else None)
        for n, r, c, lab in zip(
            table["image"], table["row"], table["column"], table["label"], strict=True
        )
    ]


def expected(labels: bool = True) -> list[tuple[str, int, int, str | None]]:
    return [
        (n, r, c, code if labels else None)
        for n in IMAGES
        for (r, c), code in zip(GRID, POINT_LABELS[n], strict=True)
    ]


def test_formats_table_lists_import_and_export() -> None:
    rows = {row["name"]: row for row in formats_table()}
    assert rows["cpce"]["import"] and rows["cpce"]["export"]
    assert rows["geojson"]["export"] and not rows["geojson"]["import"]


def test_points_csv_onto_stored_images_and_back(tmp_path: Path, fixture: dict[str, Path]) -> None:
    src = new_source(tmp_path, fixture)
    summary = src.import_annotations(fixture["points.csv"], format="coralnet-points")
    assert (summary.images, summary.points, summary.annotations) == (3, 27, 0)
    assert stored(src) == expected(labels=False)
    with pytest.raises(ConflictError) as info:
        src.import_annotations(fixture["points.csv"], format="coralnet-points")
    assert info.value.line == 2
    out = tmp_path / "points.csv"
    assert src.export("coralnet-points", out) == 27
    assert out.read_text() == fixture["points.csv"].read_text()


def test_points_csv_with_new_images(tmp_path: Path, fixture: dict[str, Path]) -> None:
    src = new_source(tmp_path, fixture, images=False)
    summary = src.import_annotations(
        fixture["points.csv"], fixture["images"], format="coralnet-points"
    )
    assert (summary.images, summary.points) == (3, 27)


def test_unknown_image_and_outside_point_change_nothing(
    tmp_path: Path, fixture: dict[str, Path]
) -> None:
    src = new_source(tmp_path, fixture)
    bad = tmp_path / "bad.csv"
    bad.write_text("Name,Row,Column\nreef_a.jpg,1,1\nnowhere.jpg,1,1\n")
    with pytest.raises(NotFoundError) as info:
        src.import_annotations(bad, format="coralnet-points")
    assert info.value.line == 3
    bad.write_text("Name,Row,Column\nreef_a.jpg,1,1\nreef_c.jpg,240,1\n")
    with pytest.raises(PointOutsideImageError) as outside:
        src.import_annotations(bad, format="coralnet-points")
    assert outside.value.line == 3
    assert src.counts()["points"] == 0


def test_cpce_import_matches_images_and_infers_scale(
    tmp_path: Path, fixture: dict[str, Path]
) -> None:
    src = new_source(tmp_path, fixture)
    files = cpce_data.make_cpce_fixture(tmp_path / "cpc")
    folder = tmp_path / "upload"
    folder.mkdir()
    (folder / "a.cpc").write_bytes(files["reef_a"].read_bytes())  # 15 units a pixel
    b_points = [
        (r, c, code, "") for (r, c), code in zip(GRID, POINT_LABELS["reef_b.jpg"], strict=True)
    ]
    (folder / "b.cpc").write_text(  # CPCe 3.5: 12 units a pixel, LF lines
        cpce_data.cpc_text(
            b_points, scale=12, headers=None, newline="\n", image_path=r"E:\old\reef_b.jpg"
        )
    )
    summary = src.import_annotations(folder, format="cpce")
    assert (summary.images, summary.points, summary.annotations) == (2, 18, 18)
    assert stored(src) == expected()[:18]

    out = tmp_path / "export"
    assert src.export("cpce", out, image_dir=r"D:\Survey") == 2
    back = read_cpce(out)
    assert sorted(zip(back["row"], back["column"], back["label"], strict=True)) == sorted(
        (r, c, lab) for _, r, c, lab in expected()[:18]
    )
    assert set(back["image"]) == {r"D:\Survey\reef_a.jpg", r"D:\Survey\reef_b.jpg"}


def test_cpce_refusals_name_the_file(tmp_path: Path, fixture: dict[str, Path]) -> None:
    src = new_source(tmp_path, fixture)
    odd = tmp_path / "odd.cpc"
    odd.write_text(cpce_data.cpc_text(cpce_data.REEF_A, scale=30))
    assert src.import_annotations(odd, format="cpce").points == 9  # 30 units a pixel
    assert stored(src) == expected()[:9]
    src2 = new_source(tmp_path / "2", fixture)
    wrong = tmp_path / "wrong.cpc"
    wrong.write_text(cpce_data.cpc_text(cpce_data.REEF_A, width=400, height=240))
    with pytest.raises(InputError, match="integer scale factor") as info:
        src2.import_annotations(wrong, format="cpce")
    assert Path(str(info.value.path)) == wrong and info.value.line == 1
    nowhere = tmp_path / "nowhere.cpc"
    nowhere.write_text(cpce_data.cpc_text(cpce_data.REEF_A, image_path=r"D:\x\other.jpg"))
    with pytest.raises(NotFoundError):
        src2.import_annotations(nowhere, format="cpce")
    folder = tmp_path / "labels"
    folder.mkdir()
    (folder / "a.cpc").write_text(cpce_data.cpc_text(cpce_data.REEF_A))
    unknown = [(*cpce_data.REEF_A[0][:2], "Nope", "")]
    (folder / "b.cpc").write_text(cpce_data.cpc_text(unknown, image_path=r"D:\x\reef_b.jpg"))
    with pytest.raises(InputError, match="Nope") as label:
        src2.import_annotations(folder, format="cpce")
    assert label.value.path == folder / "b.cpc" and label.value.line == 8
    assert src2.counts()["points"] == 0


@pytest.mark.parametrize("fmt, name", [("viame", "viame.csv"), ("coco", "coco.json")])
def test_labelled_formats_import_with_images_and_round_trip(
    tmp_path: Path, fixture: dict[str, Path], fmt: str, name: str
) -> None:
    src = new_source(tmp_path, fixture, images=False)
    summary = src.import_annotations(fixture[name], fixture["images"], format=fmt)
    assert (summary.images, summary.points, summary.annotations) == (3, 27, 27)
    assert stored(src) == expected()
    out = tmp_path / f"out{name}"
    assert src.export_annotations(out, format=fmt) == 27
    again = new_source(tmp_path / "again", fixture)
    again.import_annotations(out, format=fmt)
    assert stored(again) == expected()


def test_geojson_export_of_georeferenced_images(tmp_path: Path, fixture: dict[str, Path]) -> None:
    project = Project.create(tmp_path / "p.db")
    src = project.create_source("reef", labelset=fixture["labelset"])
    src.import_annotations(fixture["annotations"], fixture["images"])
    out = tmp_path / "map.geojson"
    assert src.export("geojson", out) == 2 + 18  # reef_c has no position
    document = json.loads(out.read_text())
    image = document["features"][0]
    assert image["geometry"] == {"type": "Point", "coordinates": [-149.82, -17.48]}
    assert image["properties"]["cover_Porit"] == pytest.approx(400 / 9, abs=1e-3)
    with pytest.raises(InputError, match="cannot be imported"):
        src.import_annotations(out, format="geojson")


@pytest.mark.parametrize("fmt, name", [("biigle", "biigle.zip"), ("squidle", "squidle.csv")])
def test_biigle_and_squidle_import_by_label_name_and_round_trip(
    tmp_path: Path, fixture: dict[str, Path], fmt: str, name: str
) -> None:
    src = new_source(tmp_path, fixture, images=False)
    summary = src.import_annotations(fixture[name], fixture["images"], format=fmt)
    assert (summary.images, summary.points, summary.annotations) == (3, 27, 27)
    assert stored(src) == expected()
    out = tmp_path / f"out-{fmt}.csv"
    assert src.export(fmt, out) == 27
    again = new_source(tmp_path / "again", fixture)  # onto stored images this time
    again.import_annotations(out, format=fmt)
    assert stored(again) == expected()


def test_biigle_label_tree_into_a_source_and_out(tmp_path: Path, fixture: dict[str, Path]) -> None:
    project = Project.create(tmp_path / "p.db")
    src = project.create_source("reef")
    assert src.import_labelset(fixture["label_tree.json"], format="biigle-label-tree") == 5
    labelset = src.labelset()
    assert dict(zip(labelset["name"], labelset["functional_group"], strict=True))["Porites"] == (
        "Hard coral"
    )
    out = tmp_path / "tree.json"
    assert src.export("biigle-label-tree", out) == 5
    tree = json.loads(out.read_text())
    parents = {label["name"] for label in tree["labels"] if label["parent_id"] is None}
    assert parents == {"Algae", "Hard coral", "Other", "Soft Substrate"}
    with pytest.raises(InputError, match="is a labelset"):
        src.import_annotations(out, format="biigle-label-tree")


def test_cpce_id_and_notes_mapping(tmp_path: Path, fixture: dict[str, Path]) -> None:
    src = new_source(tmp_path, fixture)
    src.import_labelset(_labelset_with(tmp_path, "Porit+bleached"))
    points = [(39, 52, "Porit", "bleached"), (39, 159, "Porit", "")]
    cpc = tmp_path / "n.cpc"
    cpc.write_text(cpce_data.cpc_text(points))
    summary = src.import_annotations(cpc, format="cpce", label_mapping="id_and_notes")
    assert summary.annotations == 2
    assert [lab for *_, lab in stored(src)] == ["Porit+bleached", "Porit"]
    with pytest.raises(InputError, match="label_mapping"):
        src.import_annotations(cpc, format="cpce", label_mapping="notes")


def _labelset_with(tmp_path: Path, code: str) -> Path:
    path = tmp_path / "extra_labelset.csv"
    path.write_text(
        f"Label ID,Short Code,Name,Functional Group\n999,{code},Bleached Porites,Hard coral\n"
    )
    return path


def test_names_in_files_stay_inside_the_images_folder(
    tmp_path: Path, fixture: dict[str, Path]
) -> None:
    src = new_source(tmp_path, fixture, images=False)
    bad = tmp_path / "escape.csv"
    bad.write_text(data.VIAME_HEADER + "\n1,../coralnet/labelset.csv,0,1,1,1,1,1.0,-1,Sand,1.0\n")
    with pytest.raises(InputError, match="climbs out") as info:
        src.import_annotations(bad, fixture["images"], format="viame")
    assert info.value.line == 2
    assert src.counts()["images"] == 0


def test_file_size_limit_applies_to_json(tmp_path: Path, fixture: dict[str, Path]) -> None:
    from quadrat.errors import LimitError
    from quadrat.io.formats.coco import read_coco
    from quadrat.limits import Limits

    with pytest.raises(LimitError):
        read_coco(fixture["coco.json"], limits=Limits(csv_bytes=100))


def test_confirmed_only_export_leaves_machine_labels_out(
    tmp_path: Path, survey: DemoSurvey
) -> None:
    project = Project.create(tmp_path / "p.db")
    src = project.create_source("reef", labelset=survey.labelset_csv, point_spec="m_5")
    src.import_annotations(survey.annotations_csv, survey.annotated_dir)
    src.import_images([survey.new_dir])
    src.generate_points(seed=0)
    src.extract("texture")
    src.train(kind="lr", force=True, seed=0)
    src.classify(threshold=1.0)  # nothing auto-accepted: machine labels only
    machine = int((src.annotations()["status"] == "machine").sum())
    assert machine > 0
    total = src.export("coco", tmp_path / "all.json")
    confirmed = src.export("coco", tmp_path / "c.json", annotation_filter="confirmed_only")
    assert total - confirmed == machine
    with pytest.raises(InputError, match="annotation_filter"):
        src.export("coco", tmp_path / "x.json", annotation_filter="some")
