"""``quadrat classifier list|export|import``: a user sees which id to deploy, shares it as one
file, and installs it in another project; hostile files end as one line and an exit status."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quadrat import Project
from quadrat.classifiers.serialize import read_header, with_metadata
from quadrat.cli import app
from quadrat.cli._common import EXIT_CONFLICT, EXIT_ERROR, EXIT_NOT_FOUND, EXIT_USAGE
from quadrat.demo import DemoSurvey

runner = CliRunner()


def invoke(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture
def trained(tmp_path: Path, survey: DemoSurvey) -> Path:
    """A project whose source reef has a trained (accepted) texture classifier."""
    db = tmp_path / "a.db"
    with Project.create(db) as project:
        src = project.create_source("reef", labelset=survey.labelset_csv)
        src.import_annotations(survey.annotations_csv, survey.annotated_dir)
        src.extract("texture")
        assert src.train(kind="lr").accepted
    return db


def test_list_shows_which_classifier_is_active(trained: Path) -> None:
    code, out = invoke("classifier", "list", "-p", trained)
    assert code == 0, out
    for word in ("id", "source", "date", "kind", "accuracy", "accepted", "active", "reef", "lr"):
        assert word in out
    assert "yes yes" in out  # accepted and active
    code, out = invoke("classifier", "list", "-p", trained, "--source", "nope")
    assert code == EXIT_NOT_FOUND and "no source 'nope'" in out


def test_list_of_a_project_without_classifiers(tmp_path: Path) -> None:
    Project.create(tmp_path / "e.db").close()
    code, out = invoke("classifier", "list", "-p", tmp_path / "e.db")
    assert code == 0 and "no classifier yet" in out


def test_export_then_import_into_another_project(tmp_path: Path, trained: Path) -> None:
    file = tmp_path / "reef.quadrat"
    code, out = invoke("classifier", "export", "1", "-o", file, "-p", trained)
    assert code == 0, out
    assert file.is_file() and "wrote classifier 1 of source reef" in out
    # the spelling: the file as a second argument
    code, out = invoke("classifier", "export", "1", tmp_path / "again.quadrat", "-p", trained)
    assert code == 0 and (tmp_path / "again.quadrat").is_file(), out

    other = tmp_path / "b.db"
    Project.create(other).close()
    code, out = invoke("classifier", "import", file, "-p", other)
    assert code == 0, out
    assert "imported classifier 1" in out and "/api/classifier/1/deploy/" in out
    code, out = invoke("classifier", "list", "-p", other)
    assert code == 0 and "lr (imported)" in out and "reef" in out
    code, out = invoke("classifier", "import", file, "-p", other, "--source", "lagoon")
    assert code == 0 and "source lagoon" in out, out
    code, out = invoke("classifier", "list", "-p", other, "-s", "lagoon")
    assert code == 0 and "lagoon" in out and "reef" not in out, out
    code, out = invoke("classifier", "import", file, "-p", other)
    assert code == EXIT_CONFLICT and "already imported as classifier 1" in out


def test_export_errors(tmp_path: Path, trained: Path) -> None:
    code, out = invoke("classifier", "export", "99", "-o", tmp_path / "x", "-p", trained)
    assert code == EXIT_NOT_FOUND and "no classifier 99" in out
    code, out = invoke("classifier", "export", "1", "-p", trained)
    assert code == EXIT_ERROR and "-o FILE" in out
    code, out = invoke("classifier", "export", "one", "-o", tmp_path / "x", "-p", trained)
    assert code == EXIT_USAGE


def test_hostile_and_mismatched_files_are_one_line_errors(
    tmp_path: Path, trained: Path, survey: DemoSurvey
) -> None:
    other = tmp_path / "b.db"
    Project.create(other).close()
    evil = tmp_path / "evil.quadrat"
    evil.write_bytes(pickle.dumps(["not", "a", "classifier"]))
    code, out = invoke("classifier", "import", evil, "-p", other)
    assert code == EXIT_ERROR and "pickle" in out and "Traceback" not in out
    code, out = invoke("classifier", "import", tmp_path / "none.quadrat", "-p", other)
    assert code == EXIT_NOT_FOUND

    file = tmp_path / "reef.quadrat"
    assert invoke("classifier", "export", "1", "-o", file, "-p", trained)[0] == 0
    lines = survey.labelset_csv.read_text().splitlines()
    small = tmp_path / "small.csv"
    small.write_text("\n".join(line for line in lines if ",CCA," not in line) + "\n")
    assert invoke("init", "-p", other, "-s", "reef", "--labelset", small)[0] == 0
    code, out = invoke("classifier", "import", file, "-p", other)
    assert code == EXIT_ERROR
    assert "CCA (CCA (crustose coralline algae)) is missing" in out and "(see --source/-s)" in out

    data = file.read_bytes()
    portable = read_header(data)["metadata"]["portable"]
    sha = "cd" * 32
    portable["extractor"].update(key=f"efficientnet_b0@{sha[:12]}", name="efficientnet_b0")
    portable["extractor"]["config"].update(weights="b0.pt", weights_sha256=sha)
    cnn = tmp_path / "cnn.quadrat"
    cnn.write_bytes(with_metadata(data, {"portable": portable}))
    code, out = invoke("classifier", "import", cnn, "-p", other, "-s", "new")
    assert code == EXIT_ERROR
    assert sha in out and "b0.pt" in out and "(see --weights FILE)" in out
