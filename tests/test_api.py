"""The public Python API: ``quadrat.Project`` and ``quadrat.Source`` as a user scripts them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import quadrat
from quadrat.demo import DemoSurvey
from quadrat.errors import ConflictError, InputError, NotFoundError, StateError


def test_public_names_resolve_and_are_documented() -> None:
    for name in quadrat.__all__:
        assert getattr(quadrat, name) is not None, name
    assert set(quadrat.__all__) <= set(dir(quadrat))
    assert quadrat.Project.__doc__ and quadrat.Source.__doc__
    with pytest.raises(AttributeError, match="no attribute 'engine'"):
        quadrat.engine  # noqa: B018  (the old module is gone, not shimmed)


def test_import_quadrat_stays_light() -> None:
    """``import quadrat`` (and reading its names list) loads no heavy library."""
    code = (
        "import json, sys, quadrat; quadrat.__all__; "
        "print(json.dumps(sorted(m for m in ('torch', 'sklearn', 'pandas', 'sqlalchemy', "
        "'scipy', 'matplotlib', 'numpy') if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == []


def test_create_open_and_context_manager(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    with quadrat.Project.create(path) as project:
        assert project.sources == []
        reef = project.create_source("reef", point_spec="m_5", confidence_threshold=0.9)
        assert (reef.name, reef.point_spec, reef.confidence_threshold) == ("reef", "m_5", 0.9)
    with pytest.raises(ConflictError, match="already exists"):
        quadrat.Project.create(path)
    with quadrat.Project.open(str(path)) as project:
        assert [s.name for s in project.sources] == ["reef"]
        assert project.source() == project.source("reef") == reef
        assert project.url.startswith("sqlite:///") and "p.db" in repr(project)
        with pytest.raises(ConflictError, match="reef"):
            project.create_source("reef")
        project.create_source("lagoon")
        with pytest.raises(InputError, match="several sources") as several:
            project.source()
        assert several.value.param == "source"
        with pytest.raises(NotFoundError, match="lagoon, reef"):
            project.source("atoll")


def test_missing_project_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as caught:
        quadrat.Project.open(tmp_path / "nothing.db")
    assert isinstance(caught.value, FileNotFoundError) and caught.value.param == "project"


def test_empty_project_has_no_source(tmp_path: Path) -> None:
    with quadrat.Project.create(tmp_path / "p.db") as project, pytest.raises(StateError):
        project.source()


def test_bad_settings_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    with quadrat.Project.create(tmp_path / "p.db") as project:
        with pytest.raises(InputError, match=r"\[0, 1\]"):
            project.create_source("reef", confidence_threshold=1.5)
        with pytest.raises(InputError):
            project.create_source("reef", point_spec="m_x")
        assert project.sources == []
        reef = project.create_source("reef")
        with pytest.raises(InputError) as caught:
            reef.set_confidence_threshold(-0.1)
        assert caught.value.param
        reef.set_confidence_threshold(0.8)
        assert reef.confidence_threshold == 0.8
        with pytest.raises(StateError, match="no stored features"):
            reef.extractor_key()
        with pytest.raises(StateError, match="no accepted classifier"):
            reef.classify()
        assert reef.classifiers() == [] and reef.active_classifier() is None


def test_whole_workflow_through_the_api(tmp_path: Path, survey: DemoSurvey) -> None:
    seen: list[tuple[str, int, int]] = []

    def progress(description: str, done: int, total: int) -> None:
        seen.append((description, done, total))

    with quadrat.Project.create(tmp_path / "p.db") as project:
        src = project.create_source("reef", labelset=survey.labelset_csv)
        assert len(src.labelset()) == 5
        imported = src.import_annotations(
            survey.annotations_csv, survey.annotated_dir, progress=progress
        )
        assert isinstance(imported, quadrat.ImportSummary)
        assert (imported.images, imported.points, imported.annotations) == (20, 240, 240)
        assert ("checking images", 20, 20) in seen
        assert src.import_images([survey.new_dir]).images == 2
        assert src.generate_points("m_10", seed=1) == 20
        assert src.point_spec == "m_10"  # the first spec used becomes the default

        extracted = src.extract("texture")  # a name goes to quadrat.create_extractor
        assert isinstance(extracted, quadrat.ExtractSummary)
        assert (extracted.images_done, extracted.points) == (22, 260)
        assert src.extract("texture").images_done == 0  # nothing left: reported, not raised
        assert src.extractor_key() == src.extractor_key("texture") == extracted.extractor_key
        with pytest.raises(InputError, match="no stored features from 'resnet50'"):
            src.extractor_key("resnet50")

        outcome = src.train(kind="lr")
        assert isinstance(outcome, quadrat.TrainOutcome) and outcome.trained
        again = src.train(kind="lr")  # the policy waits for more confirmed images
        assert not again.trained and "trained at" in again.message
        active = src.active_classifier()
        assert isinstance(active, quadrat.ClassifierInfo) and active.id == outcome.classifier_id
        assert [c.id for c in src.classifiers()] == [outcome.classifier_id]

        scored = src.classify(threshold=0.0)
        assert isinstance(scored, quadrat.ClassifySummary)
        assert (scored.points, scored.alleviated, scored.machine) == (20, 20, 0)
        counts = src.counts()
        assert counts["images"] == 22 and counts["points"] == 260
        assert (counts["imported"], counts["alleviate"], counts["unannotated"]) == (240, 20, 0)
        assert counts["confirmed_images"] == 20

        table = src.annotations()
        assert len(table) == 260 and table["suggestion_1"].notna().sum() == 20
        cover = src.cover()
        assert len(cover) == 22
        out = tmp_path / "out"
        assert src.export_annotations(out / "a.csv") == 260
        assert src.export_cover(out / "c.csv") == 22
        assert src.export_labelset(out / "l.csv") == 5

        report = src.report(out / "report")
        assert isinstance(report, quadrat.SourceReport)
        assert report.classifier is not None and report.classifier["id"] == outcome.classifier_id
        assert (out / "report" / "metrics.json") in report.files
        assert all(path.exists() for path in report.files)


def test_auto_device_does_not_import_torch_without_a_gpu_driver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a Linux machine with no GPU driver, "auto" is the CPU without importing torch."""
    import sys

    from quadrat import _util

    monkeypatch.setattr(_util.sys, "platform", "linux")
    monkeypatch.setattr(_util, "_GPU_DRIVER_FILES", ("/no/such/driver",))
    import types

    asked: list[int] = []

    def is_available() -> bool:
        asked.append(1)
        return True

    fake = types.ModuleType("torch")
    fake.cuda = types.SimpleNamespace(is_available=is_available)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", fake)
    assert _util.resolve_device("auto") == "cpu"
    assert asked == []  # torch was never asked
    monkeypatch.setattr(_util, "_GPU_DRIVER_FILES", (__file__,))  # a driver: torch is asked
    assert _util.resolve_device("auto") == "cuda" and asked == [1]
    monkeypatch.setattr(_util, "_GPU_DRIVER_FILES", ("/no/such/driver",))
    with pytest.raises(_util.DeviceError):
        _util.resolve_device("cuda")
