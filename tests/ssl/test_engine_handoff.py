"""The point of pretraining: a source extracts features with the backbone and trains."""

from __future__ import annotations

from pathlib import Path

import pytest

from quadrat import Project
from quadrat.demo import DemoSurvey
from quadrat.extractors import create_extractor
from quadrat.ssl.train import pretrain
from tests.ssl.conftest import tiny_config


@pytest.mark.slow
def test_source_extracts_and_trains_with_a_pretrained_backbone(
    tmp_path: Path, survey: DemoSurvey
) -> None:
    # Pretrain on the survey's own photos (random patches), as a user without labels would.
    backbone = pretrain(
        tiny_config(max_steps=2), survey.annotated_dir, tmp_path / "run", kind="photos"
    )
    project = Project.create(tmp_path / "p.db")
    src = project.create_source("reef", labelset=survey.labelset_csv)
    src.import_annotations(survey.annotations_csv, survey.annotated_dir)
    extractor = create_extractor(str(backbone), batch_size=64)
    summary = src.extract(extractor)
    assert summary.points == 240
    outcome = src.train(extractor.key, kind="lr")
    assert outcome.trained
    assert extractor.key.startswith("barlow_twins:test_resnet@")
