"""Issue 12 item 6: CoralNet-Toolbox ``Labels.json`` is read as a labelset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import quadrat
from quadrat.errors import InputError
from quadrat.io.coralnet import read_labelset

#: CoralNet-Toolbox's Labels.json: a list of labels with its own string ids and colours.
TOOLBOX = [
    {"id": "a1f3", "short_label_code": "CCA", "long_label_code": "Crustose coralline algae",
     "color": [236, 0, 140, 255]},
    {"id": "b2e4", "short_label_code": "Sand", "long_label_code": "Sand", "color": [1, 2, 3]},
    {"id": "c3d5", "short_label_code": "Porit", "long_label_code": "Porites",
     "color": [4, 5, 6]},
]  # fmt: skip


def test_toolbox_labels_json_is_read(tmp_path: Path) -> None:
    path = tmp_path / "Labels.json"
    path.write_text(json.dumps(TOOLBOX))
    table = read_labelset(path)
    assert list(table["short_code"]) == ["CCA", "Sand", "Porit"]
    assert list(table["name"]) == ["Crustose coralline algae", "Sand", "Porites"]
    assert table["label_id"].isna().all()  # the Toolbox's ids are not CoralNet label ids


@pytest.mark.parametrize(
    "data",
    [{"labels": TOOLBOX}, {str(i): label for i, label in enumerate(TOOLBOX)}],
    ids=["labels-key", "object-of-labels"],
)
def test_toolbox_json_wrapped_forms(tmp_path: Path, data: object) -> None:
    path = tmp_path / "labels.txt"  # no .json suffix: recognised by its first character
    path.write_text(json.dumps(data, indent=2))
    assert list(read_labelset(path)["short_code"]) == ["CCA", "Sand", "Porit"]


def test_source_imports_toolbox_labelset(tmp_path: Path) -> None:
    path = tmp_path / "Labels.json"
    path.write_text(json.dumps(TOOLBOX))
    with quadrat.Project.create(tmp_path / "p.db") as project:
        src = project.create_source("s")
        assert src.import_labelset(path) == 3
        labelset = src.labelset()
    names = dict(zip(labelset["short_code"], labelset["name"], strict=True))
    assert names["CCA"] == "Crustose coralline algae"


@pytest.mark.parametrize(
    "text",
    ['{"version": 1}', "[1, 2]", '[{"color": [1, 2, 3]}]', "[]", "{not json"],
)
def test_unknown_json_shape_says_what_was_expected(tmp_path: Path, text: str) -> None:
    path = tmp_path / "Labels.json"
    path.write_text(text)
    with pytest.raises(InputError, match="short_label_code") as info:
        read_labelset(path)
    assert info.value.path is not None and Path(info.value.path) == path


def test_duplicate_short_codes_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "Labels.json"
    path.write_text(json.dumps([*TOOLBOX, {"short_label_code": "cca"}]))
    with pytest.raises(InputError, match="duplicate short code 'cca'"):
        read_labelset(path)
