"""A source's annotation area (CoralNet's per-source setting): generated points stay inside
it, on the command line, in the Python API and on the annotation page (tests/ui)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from quadrat import Project, Source
from quadrat.cli import app
from quadrat.demo import DemoSurvey
from quadrat.errors import InputError
from quadrat.points import AnnotationArea
from quadrat.store import queries

runner = CliRunner()


def _points(src: Source) -> list[tuple[str, int, int, int, int]]:
    """(image name, width, height, row, column) of every point of the source."""
    with src.project.store.session() as session:
        sizes = queries.image_sizes(session, src.id)
        names = {image_id: (name, w, h) for name, (image_id, w, h) in sizes.items()}
        rows = queries.points_of_images(session, list(names))
    return [(*names[image_id], row, column) for image_id, _point, row, column in rows]


def _pixels(pct: float, size: int) -> int:
    return max(math.ceil(pct / 100 * size) - 1, 0)  # CoralNet's rule


@pytest.mark.parametrize(
    ("text", "expected"),
    [(" 5;95;10;90 ", "5;95;10;90"), ("10,200,20,100", "10,200,20,100"), ("0;100;0;100", None)],
)
def test_check_text_keeps_the_stored_form(text: str, expected: str | None) -> None:
    assert AnnotationArea.check_text(text) == (expected or text.strip())


@pytest.mark.parametrize(
    "text", ["5;95;10", "5;105;0;100", "90;10;0;100", "a,b,c,d", "", "9,1,0,5"]
)
def test_check_text_refuses_bad_areas_naming_them(text: str) -> None:
    with pytest.raises(InputError) as raised:
        AnnotationArea.check_text(text, param="annotation_area")
    assert raised.value.param == "annotation_area"
    assert repr(text.strip()) in str(raised.value) or "percentage" in str(raised.value)


def test_points_fall_inside_the_area(tmp_path: Path, survey: DemoSurvey) -> None:
    with Project.create(tmp_path / "p.db") as project:
        src = project.create_source(
            "reef", labelset=survey.labelset_csv, annotation_area="10;90;20;80"
        )
        assert src.annotation_area == "10;90;20;80"
        src.import_images([survey.new_dir])
        assert src.generate_points("m_50", seed=3) == 100
        rows = _points(src)
        assert len(rows) == 100
        for name, width, height, row, column in rows:
            assert _pixels(10, width) <= column <= _pixels(90, width), name
            assert _pixels(20, height) <= row <= _pixels(80, height), name
        # Without the area the same seed spreads over the whole image.
        src.set_annotation_area(None)
        assert src.annotation_area is None
        other = project.create_source("whole", labelset=survey.labelset_csv)
        other.import_images([survey.new_dir])
        other.generate_points("m_50", seed=3)
        spread = _points(other)
        assert any(
            column > _pixels(90, width) or row < _pixels(20, height)
            for _name, width, height, row, column in spread
        )


def test_an_area_too_large_for_an_image_names_it_and_adds_nothing(
    tmp_path: Path, survey: DemoSurvey
) -> None:
    width, height = Image.open(sorted(survey.new_dir.iterdir())[0]).size
    with Project.create(tmp_path / "p.db") as project:
        src = project.create_source("reef", labelset=survey.labelset_csv)
        src.import_images([survey.new_dir])
        src.set_annotation_area(f"0,{width + 5},0,{height - 1}")  # pixels: wider than the image
        with pytest.raises(InputError, match=r"image '.*' \(\d+x\d+\).*annotation area"):
            src.generate_points("m_10")
        assert src.counts()["points"] == 0  # all or nothing
        with pytest.raises(InputError):
            src.set_annotation_area("5;95")
        assert src.annotation_area == f"0,{width + 5},0,{height - 1}"  # unchanged


def test_cli_init_and_points_take_the_area(tmp_path: Path, survey: DemoSurvey) -> None:
    db = str(tmp_path / "p.db")
    made = runner.invoke(
        app,
        [
            "init",
            "-p",
            db,
            "-s",
            "reef",
            "--labelset",
            str(survey.labelset_csv),
            "--annotation-area",
            "25;75;25;75",
        ],
    )
    assert made.exit_code == 0, made.output
    assert runner.invoke(app, ["import", "--images", str(survey.new_dir), "-p", db]).exit_code == 0
    bad = runner.invoke(app, ["points", "m_10", "-p", db, "--annotation-area", "1;2;3"])
    assert bad.exit_code != 0
    assert "annotation area" in bad.output and "--annotation-area" in bad.output
    done = runner.invoke(app, ["points", "m_10", "-p", db])
    assert done.exit_code == 0, done.output
    assert "inside the annotation area 25;75;25;75" in done.output
    with Project.open(db) as project:
        for name, width, height, row, column in _points(project.source("reef")):
            assert _pixels(25, width) <= column <= _pixels(75, width), name
            assert _pixels(25, height) <= row <= _pixels(75, height), name
        assert project.source("reef").annotation_area == "25;75;25;75"
    cleared = runner.invoke(app, ["points", "-p", db, "--annotation-area", "whole"])
    assert cleared.exit_code == 0, cleared.output
    with Project.open(db) as project:
        assert project.source("reef").annotation_area is None
