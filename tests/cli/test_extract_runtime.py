"""`quadrat extract --runtime/--bf16/--threads`: exact runtimes share the stored features."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quadrat.cli import app
from quadrat.demo import DemoSurvey

runner = CliRunner()


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def _project(tmp_path: Path, survey: DemoSurvey) -> str:
    db = str(tmp_path / "s.db")
    assert _invoke("init", db, "--labelset", str(survey.labelset_csv))[0] == 0
    code, out = _invoke(
        "import", str(survey.annotations_csv), "--images", str(survey.annotated_dir), "-p", db
    )
    assert code == 0, out
    return db


def test_runtime_options_are_for_cnns(tmp_path: Path, survey: DemoSurvey) -> None:
    db = _project(tmp_path, survey)
    code, out = _invoke("extract", "-e", "texture", "--runtime", "openvino", "-p", db)
    assert code == 1 and "apply to CNN extractors only" in out
    code, out = _invoke("extract", "-e", "timm:test_efficientnet", "-p", db)
    assert code == 1 and "--weights FILE" in out and "--random-weights" in out
    assert "backbone.safetensors" in out
    code, out = _invoke(
        "extract", "-e", "timm:test_efficientnet", "--random-weights", "--runtime", "tvm", "-p", db
    )
    assert code == 1 and "unknown runtime 'tvm'" in out


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino not installed")
def test_openvino_features_count_as_eager_ones(tmp_path: Path, survey: DemoSurvey) -> None:
    db = _project(tmp_path, survey)
    cnn = ("-e", "timm:test_efficientnet", "--random-weights", "--device", "cpu", "-p", db)
    code, out = _invoke("extract", *cnn, "--runtime", "openvino", "--threads", "1")
    assert code == 0, out
    assert "240 points from 20 images" in out
    code, out = _invoke("extract", *cnn, "--allow-nothing")  # eager: same key, nothing to do
    assert code == 0, out
    assert "0 points from 0 images" in out and "20 already stored" in out
    code, out = _invoke("extract", *cnn, "--runtime", "openvino", "--bf16")  # a new key
    assert code == 0, out
    assert "+openvino-bf16" in out and "240 points from 20 images" in out
