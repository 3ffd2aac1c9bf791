"""Exports people open in spreadsheets (issue 12, item 5): ``escape_formulas`` prefixes
``'`` to text cells a spreadsheet would run; off by default (CoralNet's bytes) with a
warning when it would be needed. Numbers such as ``-12.5`` are data, never formulas."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import pandas as pd
import pytest

from quadrat import Project
from quadrat.demo import DemoSurvey
from quadrat.io.coralnet import (
    write_annotations_csv,
    write_labelset_csv,
    write_percent_cover_csv,
)
from quadrat.io.coralnet._cells import formula_cells

HOSTILE = ['=HYPERLINK("http://x")', "+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx", "=1"]
HARMLESS = ["-12.5", "+3", "-1e-3", ".5", "Sand", "a=b", "", "-", "C-C"]


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_formula_cells_spares_numbers() -> None:
    flagged = formula_cells(pd.Series(HOSTILE + HARMLESS, dtype="string"))
    assert flagged.tolist() == [True] * len(HOSTILE) + [False] * (len(HARMLESS) - 2) + [
        True,  # "-" alone is text a spreadsheet may take as a formula start
        False,
    ]


def _labelset(codes: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "label_id": range(1, len(codes) + 1),
            "short_code": codes,
            "name": [f"{c} name" for c in codes],
        }
    )


def test_labelset_escaped_on_request(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    write_labelset_csv(_labelset(["Sand", "=cmd", "-12"]), path, escape_formulas=True)
    rows = _rows(path)
    codes = [r[1] for r in rows[1:]]
    assert sorted(codes) == sorted(["Sand", "'=cmd", "-12"])
    assert "'=cmd name" in [r[2] for r in rows[1:]]


def test_off_by_default_with_a_warning_and_coralnet_bytes(tmp_path: Path) -> None:
    plain, escaped = tmp_path / "plain.csv", tmp_path / "escaped.csv"
    with pytest.warns(UserWarning, match=r"escape_formulas=True") as record:
        write_labelset_csv(_labelset(["Sand", "@x"]), plain)
    message = str(record[0].message)
    assert str(plain) in message and "2 cell(s)" in message and "'@x'" in message
    assert "@x" in plain.read_text() and "'@x" not in plain.read_text()
    write_labelset_csv(_labelset(["Sand", "@x"]), escaped, escape_formulas=True)
    assert plain.read_text().replace("@x", "'@x") == escaped.read_text()


def test_clean_exports_do_not_warn_and_are_unchanged(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "image": ["a.jpg", "b.jpg"],
            "Depth": ["-12.5", "-3"],
            "Latitude": ["-17.49", "-17.5"],
            "row": [1, 2],
            "column": [3, 4],
            "label": ["Sand", "CCA"],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_annotations_csv(frame, tmp_path / "a.csv")
        write_annotations_csv(frame, tmp_path / "b.csv", escape_formulas=True)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert "-17.49" in (tmp_path / "a.csv").read_text()


def test_annotations_escape_names_labels_and_metadata(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "image": ["=img.jpg", "b.jpg"],
            "Comments": ["+call()", "-5"],
            "row": [1, 2],
            "column": [3, 4],
            "label": ["@lab", "Sand"],
        }
    )
    path = tmp_path / "a.csv"
    write_annotations_csv(frame, path, escape_formulas=True)
    rows = _rows(path)
    assert rows[0] == ["Name", "Comments", "Row", "Column", "Label"]
    assert rows[1] == ["'=img.jpg", "'+call()", "1", "3", "'@lab"]
    assert rows[2] == ["b.jpg", "-5", "2", "4", "Sand"]


def test_cover_escapes_label_headers(tmp_path: Path) -> None:
    cover = pd.DataFrame(
        {
            "Image ID": [1],
            "Image name": ["-x.jpg"],
            "Annotation status": ["confirmed"],
            "Points": [10],
            "=evil": [40.0],
            "Sand": [60.0],
        }
    )
    path = tmp_path / "cover.csv"
    with pytest.warns(UserWarning, match="header '=evil'"):
        write_percent_cover_csv(cover, tmp_path / "plain.csv")
    write_percent_cover_csv(cover, path, escape_formulas=True)
    rows = _rows(path)
    assert rows[0][4:] == ["'=evil", "Sand"]
    assert rows[1][1] == "'-x.jpg" and rows[1][4:] == ["40.000", "60.000"]


def _hostile_source(tmp_path: Path, survey: DemoSurvey) -> tuple[Project, str]:
    labelset = tmp_path / "labels.csv"
    text = survey.labelset_csv.read_text().replace(",Sand,Sand,", ",=Sand,=Sand,")
    labelset.write_text(text)
    db = str(tmp_path / "p.db")
    project = Project.create(db)
    project.create_source("reef", labelset=labelset)
    return project, db


def test_source_exports_take_the_option(tmp_path: Path, survey: DemoSurvey) -> None:
    project, _ = _hostile_source(tmp_path, survey)
    src = project.source()
    with pytest.warns(UserWarning, match="escape_formulas"):
        src.export_labelset(tmp_path / "plain.csv")
    assert src.export_labelset(tmp_path / "safe.csv", escape_formulas=True) == 5
    assert "'=Sand" in (tmp_path / "safe.csv").read_text()
    assert src.export_annotations(tmp_path / "a.csv", escape_formulas=True) == 0
    project.close()


def test_cli_export_escape_formulas(tmp_path: Path, survey: DemoSurvey) -> None:
    from typer.testing import CliRunner

    from quadrat.cli import app

    project, db = _hostile_source(tmp_path, survey)
    project.close()
    out = tmp_path / "labels-out.csv"
    result = CliRunner().invoke(
        app, ["export", "labelset", "--escape-formulas", "-o", str(out), "-p", db]
    )
    assert result.exit_code == 0, result.output
    assert "'=Sand" in out.read_text()
    plain = tmp_path / "plain.csv"
    result = CliRunner().invoke(app, ["export", "labelset", "-o", str(plain), "-p", db])
    assert result.exit_code == 0, result.output
    assert "formula" in result.output and "use --escape-formulas" in result.output
    assert "=Sand" in plain.read_text() and "'=Sand" not in plain.read_text()
