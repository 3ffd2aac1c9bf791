"""Extraction on a local two-worker Ray cluster (CPU): the same store as one process.

Ray starts once for the module (two CPUs, no dashboard, a small object store) and is
always shut down; every wait on a worker has a timeout, so a broken cluster fails the
test instead of hanging it. Tests that stop the runner's actors come last.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from quadrat import Project, Source
from quadrat.cli._ray import cli_ray_runner
from quadrat.demo import DemoSurvey
from quadrat.errors import (
    ExtractorMismatchError,
    ImageError,
    MissingDependencyError,
    RayClusterError,
)
from quadrat.extraction import CpuRunner, ImageJob, JobResult, Runner
from quadrat.extraction.ray_runner import ExtractorSpec, RayRunner
from quadrat.extractors import Extractor, TorchExtractor, create_extractor
from quadrat.store import queries
from quadrat.store.features import load_features

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow

SOURCE = "reef"
TINY_CNN = "timm:test_resnet"
CHUNK = 3  # images a task: 20 images make 7 chunks, the last one short


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(
        address="local",  # never join a cluster that `ray start` left running
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=80 * 1024 * 1024,
        log_to_driver=False,
    )
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def runner(cluster: None) -> Iterator[RayRunner]:
    """Two actors (one CPU each), shared by the tests so that they start once."""
    ray_runner = RayRunner(
        address="local", num_workers=2, chunk_images=CHUNK, decode_threads=1, task_timeout_s=180
    )
    try:
        ray_runner.start()  # the actors boot while the reference store is computed
        yield ray_runner
    finally:
        ray_runner.close()


@pytest.fixture(scope="module")
def cnn_weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two weights files for a tiny timm CNN (seeds 0 and 1): keys name the file's hash.

    Files, as on a cluster where every worker reads the same weights; the second one
    gives workers other weights than the driver's, which must be refused.
    """
    folder = tmp_path_factory.mktemp("weights")
    paths = []
    for seed in (0, 1):
        model = create_extractor(TINY_CNN, random_weights=True, seed=seed, channels_last=False)
        assert isinstance(model, TorchExtractor)
        paths.append(folder / f"tiny_{seed}.pt")
        torch.save(model.model.state_dict(), paths[-1])
    return paths[0], paths[1]


@pytest.fixture(scope="module")
def tiny_cnn(cnn_weights: tuple[Path, Path]) -> Extractor:
    return create_extractor(TINY_CNN, cnn_weights[0], batch_size=16)


@pytest.fixture(scope="module")
def reference(
    tiny_cnn: Extractor, survey_template: DemoSurvey, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The single-process store of both extractors, float32: what Ray runs must equal."""
    project = new_project(tmp_path_factory.mktemp("reference") / "one.db", survey_template)
    for extractor in (create_extractor("texture"), tiny_cnn):
        project.extract(extractor, dtype="float32")
    return stored(project)


def new_project(path: Path, survey: DemoSurvey) -> Source:
    src = Project.create(path).create_source(SOURCE, labelset=survey.labelset_csv)
    src.import_annotations(survey.annotations_csv, survey.annotated_dir)
    return src


Stored = tuple[np.ndarray, np.ndarray]


def stored(project: Source) -> dict[str, Stored]:
    """Every extractor key in the store with its (point ids, features)."""
    keys = project.extractor_keys()
    with project.project.store.session() as session:
        out = {}
        for key in keys:
            matrix = load_features(session, key)
            out[key] = (matrix.point_ids, matrix.features)
    return out


def assert_same_store(project: Source, reference: dict[str, Stored], key: str) -> None:
    """Same extractor keys, same point ids, bit-identical features."""
    mine = stored(project)
    assert list(mine) == [key]
    np.testing.assert_array_equal(mine[key][0], reference[key][0])
    np.testing.assert_array_equal(mine[key][1], reference[key][1])


def first_images(limit: int) -> Runner:
    """A single-process runner that stops after ``limit`` images, as if killed."""

    def run(jobs: Iterable[ImageJob], extractor: Extractor) -> Iterator[JobResult]:
        return itertools.islice(CpuRunner()(jobs, extractor), limit)

    return run


@pytest.mark.parametrize("which", ["texture", "tiny_cnn"])
def test_same_store_as_one_process(
    which: str,
    runner: RayRunner,
    tiny_cnn: Extractor,
    reference: dict[str, Stored],
    survey_template: DemoSurvey,
    tmp_path: Path,
) -> None:
    extractor = create_extractor("texture") if which == "texture" else tiny_cnn
    project = new_project(tmp_path / "ray.db", survey_template)
    summary = project.extract(extractor, dtype="float32", runner=runner)
    assert (summary.images_done, summary.points, summary.images_skipped) == (20, 240, 0)
    assert_same_store(project, reference, extractor.key)
    assert len(runner.worker_peak_rss_mb) == 2 and min(runner.worker_peak_rss_mb) > 10


def test_resumes_a_partial_store(
    runner: RayRunner, reference: dict[str, Stored], survey_template: DemoSurvey, tmp_path: Path
) -> None:
    extractor = create_extractor("texture")
    project = new_project(tmp_path / "ray.db", survey_template)
    partial = project.extract(extractor, dtype="float32", runner=first_images(7))
    assert partial.images_done == 7
    summary = project.extract(extractor, dtype="float32", runner=runner)
    assert (summary.images_done, summary.images_skipped, summary.points) == (13, 7, 156)
    assert_same_store(project, reference, extractor.key)


def test_results_in_job_order_with_a_bounded_window(
    runner: RayRunner, survey_template: DemoSurvey, tmp_path: Path
) -> None:
    images = sorted(survey_template.annotated_dir.glob("*.jpg"))
    rng = np.random.default_rng(3)
    jobs = [
        ImageJob(
            image_id=100 - i,  # not sorted: the order given is the order kept
            name=path.name,
            path=str(path),
            point_ids=np.arange(n, dtype=np.int64) + 1000 * i,
            rows=rng.integers(0, 240, n),
            cols=rng.integers(0, 320, n),
        )
        for i, (path, n) in enumerate(zip(images, itertools.cycle([1, 9, 2, 5]), strict=False))
    ]
    pulled = 0

    def lazily() -> Iterator[ImageJob]:
        nonlocal pulled
        for job in jobs:
            pulled += 1
            yield job

    extractor = create_extractor("texture")
    results = runner(lazily(), extractor)
    first = next(results)
    window = runner.num_workers * runner.chunks_in_flight_per_worker * CHUNK
    assert pulled <= window + CHUNK  # jobs are read as the window frees, not all at once
    got = [first, *results]
    assert [job.image_id for job, _ in got] == [job.image_id for job in jobs]
    expected = CpuRunner()(jobs, extractor)
    for (job, features), (_, want) in zip(got, expected, strict=True):
        assert features.shape == (len(job), extractor.feature_dim)
        np.testing.assert_array_equal(features, want)


def test_workers_rebuild_from_a_spec(
    runner: RayRunner,
    tiny_cnn: Extractor,
    cnn_weights: tuple[Path, Path],
    reference: dict[str, Stored],
    survey_template: DemoSurvey,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ours, other_weights = (str(path) for path in cnn_weights)
    project = new_project(tmp_path / "ray.db", survey_template)
    monkeypatch.setattr(runner, "extractor_spec", ExtractorSpec(TINY_CNN, ours, batch_size=16))
    project.extract(tiny_cnn, dtype="float32", runner=runner)
    assert_same_store(project, reference, tiny_cnn.key)

    # Workers given other weights build another key: refused before any work is done.
    monkeypatch.setattr(runner, "extractor_spec", ExtractorSpec(TINY_CNN, other_weights))
    other = new_project(tmp_path / "other.db", survey_template)
    with pytest.raises(ExtractorMismatchError, match=tiny_cnn.key):
        other.extract(tiny_cnn, runner=runner)
    assert stored(other) == {}


def test_shipped_images_give_the_same_store(
    runner: RayRunner,
    reference: dict[str, Stored],
    survey_template: DemoSurvey,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extractor = create_extractor("texture")
    project = new_project(tmp_path / "ray.db", survey_template)
    monkeypatch.setattr(runner, "ship_images", True)
    project.extract(extractor, dtype="float32", runner=runner)
    assert_same_store(project, reference, extractor.key)


@pytest.mark.shared_data
def test_moorea_photos_same_store(runner: RayRunner, shared_data: Path, tmp_path: Path) -> None:
    """Two real Moorea quadrats (about 1900 x 1950 px JPEG with EXIF, 200 points each)."""
    moorea = shared_data / "moorea-lter-2008"
    keep_two = ["*pole2-3*", "*pole3-4*", "*pole4-5*", "*_qu[3-8]_*"]
    projects = []
    for name in ("one.db", "ray.db"):
        project = Project.create(tmp_path / name).create_source(
            "moorea", labelset=moorea / "labelset.csv"
        )
        project.import_annotations(moorea / "annotations.csv", moorea / "images", exclude=keep_two)
        projects.append(project)
    extractor = create_extractor("texture")
    projects[0].extract(extractor, dtype="float32")
    summary = projects[1].extract(extractor, dtype="float32", runner=runner)
    assert (summary.images_done, summary.points) == (2, 400)
    assert_same_store(projects[1], stored(projects[0]), extractor.key)


def test_bad_address_names_it(cluster: None) -> None:
    with pytest.raises(RayClusterError, match=r"cannot reach a Ray cluster at '127\.0\.0\.1:1'"):
        RayRunner(address="127.0.0.1:1").connect()
    with pytest.raises(RayClusterError, match="'nowhere'"):
        RayRunner(address="nowhere").connect()


def test_more_than_the_cluster_has_fails_at_once(runner: RayRunner) -> None:
    with pytest.raises(RayClusterError, match="need 1 GPUs"):
        RayRunner(address="local", num_workers=1, num_gpus_per_worker=1).start()
    with pytest.raises(RayClusterError, match=r"need 3 CPUs .* the cluster has 2"):
        RayRunner(address="local", num_workers=3).start()


def test_missing_ray_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'quadrat\[cluster\]'"):
        RayRunner(address="local").connect()


def test_unreadable_image_keeps_what_was_stored(
    runner: RayRunner, survey: DemoSurvey, tmp_path: Path
) -> None:
    """A worker's error comes back as quadrat's own, naming the file; earlier images stay."""
    project = new_project(tmp_path / "ray.db", survey)
    with project.project.store.session() as session:  # the workflow's order: by image id
        ids = sorted(set(project.annotations()["image_id"]))
        broken = Path(queries.image_files(session, ids)[10][2])
    data = broken.read_bytes()
    broken.write_bytes(data[:200])
    extractor = create_extractor("texture")
    with pytest.raises(ImageError, match=broken.name):
        project.extract(extractor, runner=runner)
    assert len(stored(project)[extractor.key][0]) == 9 * 12  # the chunks before the bad one
    broken.write_bytes(data)
    summary = project.extract(extractor, runner=runner)
    assert (summary.images_done, summary.images_skipped) == (11, 9)


def test_cli_extract_on_ray(runner: RayRunner, survey: DemoSurvey, tmp_path: Path) -> None:
    runner.release()  # the CLI starts its own two actors on the two CPUs
    db = tmp_path / "cli.db"
    new_project(db, survey).project.close()
    cli = CliRunner()
    from quadrat.cli import app

    result = cli.invoke(app, ["extract", "--ray", "local", "--ray-workers", "2", "-p", str(db)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "240 points from 20 images" in " ".join(result.output.split())
    assert ray.is_initialized()  # joined the running instance: not the CLI's to stop

    errors = (
        (["--ray", "127.0.0.1:1"], "127.0.0.1:1"),
        (["--ray-workers", "0"], "0"),
        (["--ray-gpus", "1"], "need 2 GPUs"),
        (["--device", "cuda"], "--ray-gpus"),
    )
    for args, named in errors:
        result = cli.invoke(app, ["extract", "--ray", "local", *args, "-p", str(db)])
        assert result.exit_code == 1
        text = " ".join(result.output.split())
        assert text.startswith("error:") and named in text and "Traceback" not in text

    # Extractor options (runtime, bf16, threads) make the workers rebuild the network.
    rebuilt = cli_ray_runner(
        "local",
        num_workers=1,
        num_gpus_per_worker=0,
        device="auto",
        extractor_name=TINY_CNN,
        weights=None,
        batch_size=8,
        decode_threads=1,
        options={"threads": 1},
        random_weights=True,
    )
    try:
        assert rebuilt.extractor_spec == ExtractorSpec(
            TINY_CNN, None, "cpu", 8, {"threads": 1}, random_weights=True
        )
    finally:
        rebuilt.close()
