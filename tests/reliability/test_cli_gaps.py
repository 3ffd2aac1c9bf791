"""Small CLI gaps: a header-only annotation CSV, a target accuracy that is no fraction,
an empty CATAMI scheme file. Each is one clear line, never an empty result or a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import quadrat
from quadrat.cli import app
from quadrat.demo import DemoSurvey

runner = CliRunner()


def _lines(output: str) -> list[str]:
    return [" ".join(line.split()) for line in output.strip().splitlines() if line.strip()]


def _project(tmp_path: Path, survey: DemoSurvey) -> str:
    db = tmp_path / "p.db"
    result = runner.invoke(app, ["init", "-p", str(db), "--labelset", str(survey.labelset_csv)])
    assert result.exit_code == 0, result.output
    return str(db)


def test_a_header_only_annotation_csv_is_nothing_to_do(tmp_path: Path, survey: DemoSurvey) -> None:
    db = _project(tmp_path, survey)
    header_only = tmp_path / "header.csv"
    header_only.write_text(survey.annotations_csv.read_text().splitlines()[0] + "\n")
    args = ["import", str(header_only), "-i", str(survey.annotated_dir), "-p", db]
    result = runner.invoke(app, args)
    assert result.exit_code == 3, result.output
    (line,) = _lines(result.output)
    assert line.startswith("nothing to do:") and "has no rows" in line
    assert str(header_only) in line
    assert runner.invoke(app, [*args, "--allow-nothing"]).exit_code == 0
    with quadrat.Project.open(db) as project:
        assert project.source().counts()["images"] == 0


def test_an_import_whose_rows_are_all_excluded_is_nothing_to_do(
    tmp_path: Path, survey: DemoSurvey
) -> None:
    db = _project(tmp_path, survey)
    args = ["import", str(survey.annotations_csv), "-i", str(survey.annotated_dir), "-p", db]
    result = runner.invoke(app, [*args, "--exclude", "*"])
    assert result.exit_code == 3, result.output
    assert "--exclude matched them all" in " ".join(result.output.split())
    assert runner.invoke(app, args).exit_code == 0  # a real import still says what it did


@pytest.mark.parametrize("value", ["2", "0", "-0.5", "1.5", "nan"])
def test_report_refuses_a_target_accuracy_that_is_no_fraction(
    tmp_path: Path, survey: DemoSurvey, value: str
) -> None:
    db = _project(tmp_path, survey)
    result = runner.invoke(app, ["report", "--target-accuracy", value, "-p", db])
    assert result.exit_code == 1, result.output
    (line,) = _lines(result.output)
    assert line.startswith("error:") and "fraction in (0, 1]" in line
    assert "--target-accuracy" in line


def test_report_accepts_a_target_accuracy_of_one(tmp_path: Path, survey: DemoSurvey) -> None:
    db = _project(tmp_path, survey)
    result = runner.invoke(app, ["report", "--target-accuracy", "1", "-p", db])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("content", ["", "\n\n", "\ufeff"])
@pytest.mark.parametrize(
    "command",
    [
        ["dataset", "catami"],
        ["dataset", "catami", "tree"],
        ["dataset", "catami", "show", "Sponges"],
    ],
)
def test_an_empty_scheme_file_is_one_line_naming_it(
    tmp_path: Path, content: str, command: list[str]
) -> None:
    scheme = tmp_path / "scheme.csv"
    scheme.write_text(content, encoding="utf-8")
    result = runner.invoke(app, [*command, "--scheme", str(scheme)])
    assert result.exit_code == 1, result.output
    (line,) = _lines(result.output)
    assert line.startswith("error:") and str(scheme) in line and "no CATAMI nodes" in line
    assert "--scheme" in line


def test_an_empty_scheme_file_is_refused_by_translate(tmp_path: Path) -> None:
    scheme = tmp_path / "scheme.csv"
    scheme.write_text("")
    names = tmp_path / "names.txt"
    names.write_text("Sponges\n")
    out = tmp_path / "map.csv"
    args = ["dataset", "translate", str(names), "-f", "names", "-o", str(out)]
    result = runner.invoke(app, [*args, "--scheme", str(scheme)])
    assert result.exit_code == 1, result.output
    assert str(scheme) in " ".join(result.output.split())
    assert not out.exists()
