"""Issue 12 item 6, annotation export bugs (fixtures generated here, as the held-back
source is not in the repo): ``Long Label`` per label, empty columns kept."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import quadrat
from quadrat.io.coralnet import read_annotations_csv
from quadrat.workflow.exports import metadata_order
from tests.data.coralnet import data

#: A source's export with a Long Label column (per point) and metadata columns that are
#: empty on every row (Aux2, Camera) or on some (Comments).
HEADER = ["Name", "Date", "Site", "Aux2", "Camera", "Comments", "Row", "Column", "Label",
          "Long Label"]  # fmt: skip


def _csv(path: Path) -> Path:
    names = {code: name for _, code, name, _ in data.LABELS}
    rows = []
    for image in data.IMAGES:
        comment = "murky" if image == "reef_b.jpg" else ""
        for (r, c), code in zip(data.GRID, data.POINT_LABELS[image], strict=True):
            # The file's Long Label of the first point of each image is what a per-image
            # store would repeat for every point of the image.
            rows.append([image, "2024-05-01", "North", "", "", comment, r, c, code, names[code]])
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


@pytest.fixture
def exported(tmp_path: Path) -> tuple[list[str], list[dict[str, str]]]:
    paths = data.make_coralnet_fixture(tmp_path / "fx")
    source_csv = _csv(tmp_path / "source.csv")
    out = tmp_path / "export.csv"
    with quadrat.Project.create(tmp_path / "p.db") as project:
        src = project.create_source("reef", labelset=paths["labelset"])
        src.import_annotations(source_csv, paths["images"])
        assert src.export_annotations(out) == data.EXPECTED["n_points"]
    with out.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def test_long_label_is_the_label_name_of_each_point(
    exported: tuple[list[str], list[dict[str, str]]],
) -> None:
    names = {code: name for _, code, name, _ in data.LABELS}
    header, rows = exported
    assert len(rows) == 27
    wrong = [row for row in rows if row["Long Label"] != names[row["Label"]]]
    assert wrong == []
    assert header.index("Long Label") == header.index("Label") + 1  # per point, not metadata


def test_empty_metadata_columns_are_kept(
    exported: tuple[list[str], list[dict[str, str]]],
) -> None:
    header, rows = exported
    assert header == HEADER  # empty columns kept, CoralNet's order
    assert {row["Aux2"] for row in rows} == {""}
    assert {row["Camera"] for row in rows} == {""}
    assert {row["Site"] for row in rows} == {"North"}
    comments = {row["Name"]: row["Comments"] for row in rows}
    assert comments == {"reef_a.jpg": "", "reef_b.jpg": "murky", "reef_c.jpg": ""}


def test_long_label_is_read_per_point_not_as_metadata(tmp_path: Path) -> None:
    table = read_annotations_csv(_csv(tmp_path / "a.csv"))
    assert "Long Label" not in table.attrs["metadata_columns"]
    assert table["long_label"].iloc[0] == "Porites"
    assert table["long_label"].iloc[2] == "CCA (crustose coralline algae)"


def test_metadata_order_is_coralnets_with_renamed_aux_in_place() -> None:
    got = metadata_order(["Comments", "Site", "Date", "Long Label", "Aux2", "Camera"])
    assert got == ["Date", "Site", "Aux2", "Camera", "Comments"]
