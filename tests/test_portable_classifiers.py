"""Portable classifiers: export from one project, import into another, same scores; hostile
files refused with one clear error each (quadrat.workflow.classifiers)."""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from quadrat import Project
from quadrat.classifiers.serialize import read_header, with_metadata
from quadrat.demo import DemoSurvey
from quadrat.errors import (
    ClassifierFormatError,
    ConflictError,
    InputError,
    NotFoundError,
    WeightsError,
)
from quadrat.store import portable, queries
from quadrat.workflow import Source
from quadrat.workflow.classifiers import read_portable

SPEC = "m_10"


def trained(root: Path, survey: DemoSurvey, labelset: Path | None = None) -> Source:
    """A project at ``root`` with a trained texture classifier and the new images scored."""
    project = Project.create(root)
    src = project.create_source("reef", labelset=labelset or survey.labelset_csv)
    src.import_annotations(survey.annotations_csv, survey.annotated_dir)
    src.import_images([survey.new_dir])
    src.generate_points(SPEC, seed=1)
    src.extract("texture")
    outcome = src.train(kind="lr")
    assert outcome.accepted, outcome.message
    return src


def scored(src: Source, classifier_id: int | None = None) -> pd.DataFrame:
    """Points scored by classify: (image, row, column) -> top-5 labels and scores."""
    assert src.classify(classifier_id=classifier_id).points == 20
    table = src.annotations()
    table = table[table["suggestion_1"].notna()]
    keep = ["image", "row", "column"] + [
        c for c in table.columns if c.startswith(("suggestion_", "confidence_"))
    ]
    return table[keep].sort_values(["image", "row", "column"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def exported(
    tmp_path_factory: pytest.TempPathFactory, survey_template: DemoSurvey
) -> Iterator[tuple[Source, Path, pd.DataFrame]]:
    """A trained source, its scores and its exported file (made once; tests only read them)."""
    root = tmp_path_factory.mktemp("exported")
    src = trained(root / "a.db", survey_template)
    before = scored(src)
    path = src.export_classifier(root / "reef.quadrat")
    yield src, path, before
    src.project.close()


def test_the_file_carries_labelset_extractor_and_training_facts(
    exported: tuple[Source, Path, pd.DataFrame],
) -> None:
    src, path, _ = exported
    data = path.read_bytes()
    portable = read_header(data)["metadata"]["portable"]
    assert portable["source"] == "reef"
    labels = {label["short_code"]: label for label in portable["labelset"]}
    assert labels["CCA"]["name"] == "CCA (crustose coralline algae)"
    assert labels["CCA"]["functional_group"] == "Algae"
    assert labels["CCA"]["coralnet_id"] == 9002
    extractor = portable["extractor"]
    assert extractor["name"] == "texture" and extractor["key"] == src.extractor_key()
    assert extractor["config"]["weights_sha256"] is None
    facts = portable["classifier"]
    active = src.active_classifier()
    assert active is not None
    assert facts["kind"] == "lr" and facts["accuracy"] == pytest.approx(active.accuracy)
    assert facts["n_train"] == active.n_train and "accuracy" in facts["metrics"]
    assert portable["feature_dtype"] == "float16"
    assert b"\x80\x04" not in data[:16]  # safetensors, not a pickle
    assert str(Path(src.project.url.removeprefix("sqlite:///")).parent) not in json.dumps(portable)


def test_round_trip_into_a_fresh_project_gives_the_same_scores(
    tmp_path: Path, survey: DemoSurvey, exported: tuple[Source, Path, pd.DataFrame]
) -> None:
    _, path, before = exported
    with Project.create(tmp_path / "b.db") as project:
        info = project.import_classifier(path)
        src = project.source("reef")
        assert info.accepted and src.active_classifier() == info
        assert info.kind == "lr" and info.hyperparameters["imported"]["source"] == "reef"
        table = src.labelset()
        assert set(table["short_code"]) == {"Sand", "CCA", "Porit", "Turf", "Macro"}
        assert set(table["label_id"]) == {9001, 9002, 9003, 9004, 9005}
        src.import_annotations(survey.annotations_csv, survey.annotated_dir)
        src.import_images([survey.new_dir])
        src.generate_points(SPEC, seed=1)
        src.extract("texture")
        after = scored(src)
    pd.testing.assert_frame_equal(before, after, check_exact=False, rtol=1e-9)


def test_labels_numbered_in_another_order_keep_their_scores(
    tmp_path: Path, survey: DemoSurvey, exported: tuple[Source, Path, pd.DataFrame]
) -> None:
    """An existing source whose label ids run in another order than the file's."""
    _, path, before = exported
    lines = survey.labelset_csv.read_text().splitlines()
    reversed_csv = tmp_path / "reversed.csv"
    reversed_csv.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    with Project.create(tmp_path / "c.db") as project:
        src = project.create_source("lagoon", labelset=reversed_csv)
        info = project.import_classifier(path, source="lagoon")
        assert info.source_id == src.id
        src.import_annotations(survey.annotations_csv, survey.annotated_dir)
        src.import_images([survey.new_dir])
        src.generate_points(SPEC, seed=1)
        src.extract("texture")
        after = scored(src, info.id)
    pd.testing.assert_frame_equal(before, after, check_exact=False, rtol=1e-9)


def test_importing_the_same_file_twice_is_a_conflict(
    tmp_path: Path, exported: tuple[Source, Path, pd.DataFrame]
) -> None:
    _, path, _ = exported
    with Project.create(tmp_path / "b.db") as project:
        first = project.import_classifier(path)
        with pytest.raises(ConflictError, match=f"already imported as classifier {first.id}"):
            project.import_classifier(path)
        assert len(project.source("reef").classifiers()) == 1


# ------------------------------------------------------------------------------ hostile


def fresh(tmp_path: Path) -> Project:
    return Project.create(tmp_path / "fresh.db")


def test_a_pickle_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "evil.quadrat"
    path.write_bytes(pickle.dumps({"classes": [1, 2]}, protocol=4))
    with fresh(tmp_path) as project, pytest.raises(ClassifierFormatError, match="pickle"):
        project.import_classifier(path)
    with Project.open(tmp_path / "fresh.db") as project:
        assert project.sources == []


@pytest.mark.parametrize("keep", [0.5, 0.02])
def test_a_truncated_file_is_refused(
    tmp_path: Path, exported: tuple[Source, Path, pd.DataFrame], keep: float
) -> None:
    _, path, _ = exported
    data = path.read_bytes()
    cut = tmp_path / "cut.quadrat"
    cut.write_bytes(data[: int(len(data) * keep)])
    with (
        fresh(tmp_path) as project,
        pytest.raises(ClassifierFormatError, match=r"truncated|malformed"),
    ):
        project.import_classifier(cut)


def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with fresh(tmp_path) as project, pytest.raises(NotFoundError):
        project.import_classifier(tmp_path / "nope.quadrat")


def test_stored_bytes_without_the_portable_facts_are_refused(
    tmp_path: Path, exported: tuple[Source, Path, pd.DataFrame]
) -> None:
    src, _, _ = exported
    active = src.active_classifier()
    assert active is not None
    with src.project.store.session() as session:
        raw = queries.classifier_model(session, active.id)
    path = tmp_path / "raw.quadrat"
    path.write_bytes(raw)
    with fresh(tmp_path) as project, pytest.raises(ClassifierFormatError, match="export it again"):
        project.import_classifier(path)


def test_a_labelset_that_differs_is_refused_with_the_differences(
    tmp_path: Path, exported: tuple[Source, Path, pd.DataFrame]
) -> None:
    _, path, _ = exported
    other = tmp_path / "other.csv"
    other.write_text(
        "Label ID,Name,Short Code,Functional Group\n"
        "9001,Sand,Sand,Soft Substrate\n"
        "9003,Porites sp.,Porit,Hard coral\n"
        "9004,Turf algae,Turf,Algae\n"
        "9005,Macroalgae,Macro,Algae\n"
    )
    with fresh(tmp_path) as project:
        project.create_source("reef", labelset=other)
        with pytest.raises(InputError) as caught:
            project.import_classifier(path)
        message = str(caught.value)
        assert "CCA (CCA (crustose coralline algae)) is missing" in message
        assert "Porit is 'Porites' in the file, 'Porites sp.' here" in message
        assert caught.value.param == "source"
        assert project.source("reef").classifiers() == []


def altered(path: Path, out: Path, change: dict[str, Any]) -> Path:
    """A copy of a portable file whose portable metadata has ``change`` applied."""
    data = path.read_bytes()
    portable = read_header(data)["metadata"]["portable"]
    for dotted, value in change.items():
        *parents, last = dotted.split(".")
        node = portable
        for key in parents:
            node = node[key]
        node[last] = value
    out.write_bytes(with_metadata(data, {"portable": portable}))
    return out


def cnn_change(sha: str) -> dict[str, Any]:
    return {
        "extractor.name": "efficientnet_b0",
        "extractor.key": f"efficientnet_b0@{sha[:12]}",
        "extractor.config.name": "efficientnet_b0",
        "extractor.config.weights": "b0-coralnet.pt",
        "extractor.config.weights_sha256": sha,
    }


def test_missing_extractor_weights_are_named_by_file_and_sha256(
    tmp_path: Path, exported: tuple[Source, Path, pd.DataFrame]
) -> None:
    _, path, _ = exported
    sha = "ab" * 32
    cnn = altered(path, tmp_path / "cnn.quadrat", cnn_change(sha))
    with fresh(tmp_path) as project:
        with pytest.raises(WeightsError) as caught:
            project.import_classifier(cnn)
        assert sha in str(caught.value) and "b0-coralnet.pt" in str(caught.value)
        assert caught.value.param == "weights"
        wrong = tmp_path / "wrong.pt"
        wrong.write_bytes(b"not these weights")
        with pytest.raises(WeightsError, match=sha):
            project.import_classifier(cnn, weights=wrong)
        assert project.sources == []


def test_weights_found_by_sha256_are_recorded_for_this_machine(
    tmp_path: Path, exported: tuple[Source, Path, pd.DataFrame]
) -> None:
    _, path, _ = exported
    weights = tmp_path / "here" / "b0.pt"
    weights.parent.mkdir()
    weights.write_bytes(b"pretend these are weights")
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    cnn = altered(path, tmp_path / "cnn.quadrat", cnn_change(sha))
    with fresh(tmp_path) as project:
        info = project.import_classifier(cnn, weights=weights)
        with project.store.session() as session:
            record = portable.extractor_record(session, info.extractor_key)
        assert record is not None and record.config["weights"] == str(weights.resolve())
        # the project knows the file now: another source needs no weights argument
        project.import_classifier(cnn, source="second")


def test_another_texture_version_is_refused(
    tmp_path: Path, exported: tuple[Source, Path, pd.DataFrame]
) -> None:
    _, path, _ = exported
    old = altered(path, tmp_path / "old.quadrat", {"extractor.key": "texture@v0"})
    with fresh(tmp_path) as project, pytest.raises(InputError, match="texture@v0"):
        project.import_classifier(old)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"labelset": []}, "list of 1 to"),
        ({"labelset": [{"id": 1, "name": "x"}]}, "malformed"),
        ({"labelset": [{"id": 1, "name": "x" * 300, "short_code": "x"}]}, "malformed"),
        ({"labelset": [{"id": 1, "name": "a\x00b", "short_code": "x"}]}, "malformed"),
        (
            {"labelset": [{"id": 1, "name": "x", "short_code": "x", "coralnet_id": 2**40}]},
            "malformed",
        ),
        ({"source": "   "}, "no source name"),
        ({"version": 99}, "version 99"),
        ({"extractor": {"key": "k"}}, "no extractor record"),
        ({"extractor.feature_dim": 3}, "gives 3 features"),
        ({"extractor.config.weights_sha256": "../../etc"}, "not a SHA-256"),
        ({"classifier.kind": "os.system"}, "kind mlp or lr"),
    ],
)
def test_malformed_metadata_is_refused(
    tmp_path: Path,
    exported: tuple[Source, Path, pd.DataFrame],
    change: dict[str, Any],
    match: str,
) -> None:
    _, path, _ = exported
    bad = altered(path, tmp_path / "bad.quadrat", change)
    with pytest.raises(ClassifierFormatError, match=match):
        read_portable(bad)


def test_a_labelset_not_listing_the_predicted_labels_is_refused(
    tmp_path: Path, exported: tuple[Source, Path, pd.DataFrame]
) -> None:
    _, path, _ = exported
    labels = read_header(path.read_bytes())["metadata"]["portable"]["labelset"]
    shifted = [{**label, "id": label["id"] + 1000} for label in labels]
    bad = altered(path, tmp_path / "bad.quadrat", {"labelset": shifted})
    with pytest.raises(ClassifierFormatError, match="does not list"):
        read_portable(bad)
    assert np.all([label["id"] < 1000 for label in labels])


def test_deploying_an_imported_classifier_scores_as_classify_did(
    tmp_path: Path, survey: DemoSurvey, exported: tuple[Source, Path, pd.DataFrame]
) -> None:
    """The service's path (workflow.deploy) in a project holding no features at all."""
    from PIL import Image

    from quadrat.workflow.deploy import classify_points, forget_classifiers

    _, path, before = exported
    forget_classifiers()
    with Project.create(tmp_path / "server.db") as project:
        info = project.import_classifier(path)
        for name, points in before.groupby("image"):
            pixels = np.asarray(Image.open(survey.new_dir / name).convert("RGB"))
            rows = list(zip(points["row"].astype(int), points["column"].astype(int), strict=True))
            scored_here = classify_points(project, info.id, pixels, rows)
            for (_, row), ranked in zip(points.iterrows(), scored_here, strict=True):
                assert [c["label_code"] for c in ranked] == [
                    row[f"suggestion_{k}"] for k in range(1, len(ranked) + 1)
                ]
                # float32 arithmetic in another order; without the stored feature precision
                # (float16) the scores would differ by about 3e-4
                assert [c["score"] for c in ranked] == pytest.approx(
                    [row[f"confidence_{k}"] for k in range(1, len(ranked) + 1)], rel=1e-6, abs=1e-7
                )
                assert ranked[0]["label_id"] >= 9001  # CoralNet's ids from the labelset
    forget_classifiers()
