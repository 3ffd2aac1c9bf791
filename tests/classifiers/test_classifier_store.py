"""Classifiers in a project: stored as arrays, exported as files, and a planted pickle in
the project's classifier column refused without running it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from quadrat import Project, Source
from quadrat.classifiers import serialize
from quadrat.demo import DemoSurvey
from quadrat.errors import ClassifierFormatError, StateError
from quadrat.extractors import create_extractor
from quadrat.store import queries
from quadrat.store.features import load_features

from .test_serialize import legacy_blob


def trained_source(tmp_path: Path, survey: DemoSurvey) -> tuple[Project, Source, str]:
    project = Project.create(tmp_path / "p.db")
    src = project.create_source("reef", labelset=survey.labelset_csv)
    src.import_annotations(survey.annotations_csv, survey.annotated_dir)
    src.import_images([survey.new_dir])
    src.generate_points("m_10", seed=1)
    extractor = create_extractor("texture")
    src.extract(extractor)
    outcome = src.train(extractor.key, kind="lr")
    assert outcome.trained and outcome.accepted
    return project, src, extractor.key


def test_export_classifier_file_scores_as_stored(tmp_path: Path, survey: DemoSurvey) -> None:
    project, src, key = trained_source(tmp_path, survey)
    with project:
        with pytest.raises(StateError):
            project.create_source("empty").export_classifier(tmp_path / "none.safetensors")
        path = src.export_classifier(tmp_path / "export" / "reef.safetensors")
        data = serialize.read_classifier_file(path)
        header = serialize.read_header(data)
        assert header["kind"] == "CalibratedLogisticRegression"
        assert header["metadata"]["extractor_key"] == key
        assert header["metadata"]["kind"] == "lr"
        assert 0.5 < header["metadata"]["metrics"]["accuracy"] <= 1.0
        [info] = src.classifiers()
        with project.store.session() as session:
            stored = queries.classifier_model(session, info.id)
            features = load_features(session, key, source_id=src.id).features
        # the file is the stored classifier plus the portable facts (labelset, extractor)
        assert header["metadata"]["portable"]["extractor"]["key"] == key
        assert serialize.read_header(stored) == {
            **header,
            "metadata": {k: v for k, v in header["metadata"].items() if k != "portable"},
        }
        from_file = serialize.loads_estimator(data)
        scores = from_file.predict_proba(features)
        np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-9)
        np.testing.assert_array_equal(
            scores, serialize.loads_estimator(stored).predict_proba(features)
        )
        by_id = src.export_classifier(tmp_path / "by_id.safetensors", info.id).read_bytes()
        assert serialize.read_header(by_id)["metadata"]["portable"]["classifier"]["id"] == info.id


def test_planted_pickle_in_the_project_is_refused(tmp_path: Path, survey: DemoSurvey) -> None:
    project, src, key = trained_source(tmp_path, survey)
    project.close()
    marker = tmp_path / "marker"
    with sqlite3.connect(tmp_path / "p.db") as db:  # what a hostile project file holds
        db.execute("UPDATE classifiers SET model = ?", (legacy_blob(marker),))
    db.close()

    with Project.open(tmp_path / "p.db") as project:
        src = project.source("reef")
        with pytest.raises(ClassifierFormatError, match="older quadrat in an unsafe") as caught:
            src.classify(threshold=0.5)
        assert caught.value.param == "force"
        with pytest.raises(ClassifierFormatError, match="unsafe"):
            src.export_classifier(tmp_path / "evil.safetensors")
        assert not (tmp_path / "evil.safetensors").exists()
        assert src.counts()["alleviate"] == 0  # nothing was classified
        # The way out the message names: retrain with force, then classify works.
        assert src.train(key, kind="lr", force=True).trained
        assert src.classify(threshold=0.0).points > 0
    assert not marker.exists()
