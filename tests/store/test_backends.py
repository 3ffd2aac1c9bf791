"""The store on both backends: SQLite and PostgreSQL (the ``database_url`` fixture).

The core workflow (import, points, texture features, an lr classifier, classification,
exports) must give the same results on PostgreSQL as on SQLite, and the service's store
functions (store/accounts.py, store/jobs.py) must behave the same on both. Without
PostgreSQL the ``postgresql`` cases skip (or fail when QUADRAT_REQUIRE_POSTGRES=1, as in
CI); tests/conftest.py says how a server is found or started.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from quadrat import Project
from quadrat.demo import DemoSurvey
from quadrat.errors import ConflictError, NotFoundError
from quadrat.extractors import create_extractor
from quadrat.store import accounts, jobs, migrations, queries
from quadrat.store.project import Store
from quadrat.store.schema import DeployImageStatus, JobStatus, Role

#: Columns that hold when a row was written, not what it says.
CLOCK_COLUMNS = ("Date annotated", "annotated_at", "created_at", "date")


def test_create_open_and_reopen(database_url: str) -> None:
    with Project.create(database_url) as project:
        project.create_source("reef", point_spec="m_5", confidence_threshold=0.9)
        assert project.store.revision == migrations.HEAD
    with pytest.raises(ConflictError, match="already exists"):
        Project.create(database_url)
    with Project.open(database_url) as project:
        (reef,) = project.sources
        assert (reef.name, reef.point_spec, reef.confidence_threshold) == ("reef", "m_5", 0.9)
        with pytest.raises(ConflictError, match="reef"):
            project.create_source("reef")


def _without_clock(frame: pd.DataFrame) -> pd.DataFrame:
    keep = [c for c in frame.columns if not any(word in str(c) for word in CLOCK_COLUMNS)]
    return frame[keep].reset_index(drop=True)


def run_workflow(url: str, survey: DemoSurvey, out: Path) -> dict[str, Any]:
    """Everything a user would compare between two runs of the same survey."""
    out.mkdir(parents=True, exist_ok=True)
    with Project.create(url) as project:
        src = project.create_source("reef", labelset=survey.labelset_csv)
        imported = src.import_annotations(survey.annotations_csv, survey.annotated_dir)
        new = src.import_images([survey.new_dir])
        generated = src.generate_points("m_10", seed=1)
        extractor = create_extractor("texture")
        extracted = src.extract(extractor, workers=1)
        outcome = src.train(extractor.key, kind="lr")
        scored = src.classify(threshold=0.5)
        rows = (
            src.export_annotations(out / "annotations.csv"),
            src.export_cover(out / "cover.csv"),
            src.export_labelset(out / "labelset.csv"),
        )
        with project.store.session() as session:
            from quadrat.store.features import load_features

            stored = load_features(session, extractor.key, source_id=src.id)
        return {
            "imported": (imported.images, imported.points, imported.annotations),
            "new images": new.images,
            "generated": generated,
            "extracted": (extracted.images_done, extracted.points),
            "features": dict(zip(stored.point_ids.tolist(), stored.features.tolist(), strict=True)),
            "trained": (outcome.trained, outcome.accepted),
            "accuracy": outcome.metrics["accuracy"],
            "scored": (scored.points, scored.alleviated),
            "counts": src.counts(),
            "rows": rows,
            "annotations": _without_clock(src.annotations()),
            "cover": _without_clock(pd.read_csv(out / "cover.csv")),
            "exported annotations": _without_clock(pd.read_csv(out / "annotations.csv")),
            "labelset": pd.read_csv(out / "labelset.csv"),
        }


@pytest.mark.slow
def test_the_workflow_gives_the_same_results_on_postgresql(
    postgres_url: str, survey: DemoSurvey, tmp_path: Path
) -> None:
    on_sqlite = run_workflow(f"sqlite:///{tmp_path / 'p.db'}", survey, tmp_path / "sqlite")
    on_postgres = run_workflow(postgres_url, survey, tmp_path / "postgres")
    assert on_sqlite["imported"] == (20, 240, 240)
    assert on_sqlite["trained"] == (True, True)
    assert on_sqlite["scored"][0] == 20
    for key, expected in on_sqlite.items():
        got = on_postgres[key]
        if isinstance(expected, pd.DataFrame):
            pd.testing.assert_frame_equal(got, expected, check_dtype=False, obj=key)
        else:
            assert got == expected, key


def _user_source_classifier(store: Store) -> tuple[int, int, int]:
    """A user ``ana``, a source ``reef`` and one classifier (for jobs to name)."""
    from quadrat.store.features import record_extractor
    from quadrat.store.schema import ClassifierRecord, Source

    with store.session() as session:
        source = Source(name="reef")
        session.add(source)
        session.flush()
        record_extractor(session, "tex", "texture", 4, {})
        session.flush()  # the extractor row first (no ORM relationship orders them)
        classifier = ClassifierRecord(
            source_id=source.id,
            extractor_key="tex",
            kind="lr",
            n_images=1,
            n_train=1,
            n_val=0,
            accepted=True,
            train_seconds=0.0,
            model=b"",
        )
        session.add(classifier)
        user_id = accounts.add_user(session, "ana", "argon2-hash", limits={"max_active_jobs": 2})
        return user_id, source.id, classifier.id


def test_accounts(database_url: str) -> None:
    store = Store.create(database_url)
    try:
        user_id, source_id, _ = _user_source_classifier(store)
        with store.session() as session, pytest.raises(ConflictError, match="ana"):
            accounts.add_user(session, "ana", "x")
        with store.session() as session:
            accounts.add_user(session, "bo", "bo-hash")
            accounts.set_role(session, "ana", Role.VIEWER, None)
            accounts.set_role(session, "ana", Role.ADMIN, source_id)
            accounts.set_role(session, "ana", Role.ANNOTATOR, None)  # replaces the first
            accounts.add_token(session, user_id, "a" * 64)
            accounts.add_token(session, user_id, "b" * 64)
        with store.session() as session:
            ana = accounts.get_user(session, "ana")
            assert ana.roles == {None: Role.ANNOTATOR, "reef": Role.ADMIN}
            assert ana.limits == {"max_active_jobs": 2} and ana.active
            assert accounts.role_on_source(session, user_id, source_id) == Role.ADMIN
            assert accounts.password_hash(session, "ana") == (user_id, "argon2-hash")
            assert [u.username for u in accounts.list_users(session)] == ["ana", "bo"]
            token_user = accounts.user_of_token(session, "a" * 64)
            assert token_user is not None and token_user.id == user_id
            assert accounts.user_of_token(session, "c" * 64) is None
            assert accounts.find_user(session, "nobody") is None
            with pytest.raises(NotFoundError):
                accounts.get_user(session, "nobody")
        with store.session() as session:
            accounts.remove_role(session, "ana", source_id)
            accounts.set_active(session, "bo", False)
            assert accounts.revoke_tokens(session, "ana") == 2
        with store.session() as session:
            assert accounts.role_on_source(session, user_id, source_id) == Role.ANNOTATOR
            assert accounts.user_of_token(session, "a" * 64) is None
            assert accounts.password_hash(session, "bo") is None  # deactivated
            accounts.remove_user(session, "bo")
        with store.session() as session:
            assert [u.username for u in accounts.list_users(session)] == ["ana"]
    finally:
        store.close()


def test_jobs(database_url: str) -> None:
    store = Store.create(database_url)
    try:
        user_id, _, classifier = _user_source_classifier(store)
        with store.session() as session:
            first = jobs.create_job(
                session, user_id, classifier, [("http://a/1.jpg", [(1, 2), (3, 4)])]
            )
            second = jobs.create_job(
                session,
                user_id,
                classifier,
                [("http://a/2.jpg", [(5, 6)]), ("http://a/3.jpg", [(7, 8)])],
            )
        with store.session() as session:
            assert jobs.active_job_ids(session, user_id) == [first, second]
            assert jobs.unfinished_job_ids(session) == [first, second]
            info = jobs.get_job(session, second)
            assert (info.status, info.total, info.successes, info.failures) == (
                JobStatus.PENDING,
                2,
                0,
                0,
            )
            assert jobs.start_job(session, second) == 1
            images = jobs.job_images(session, second)
            assert [(i.position, i.url, i.points) for i in images] == [
                (0, "http://a/2.jpg", [(5, 6)]),
                (1, "http://a/3.jpg", [(7, 8)]),
            ]
            result = [[{"label_id": 7, "label_name": "Sand", "label_code": "S", "score": 0.75}]]
            jobs.set_image_result(session, images[0].id, result)
            jobs.set_image_error(session, images[1].id, "Row value 7 falls\noutside")
        with store.session() as session:
            info = jobs.get_job(session, second)
            assert (info.status, info.successes, info.failures, info.attempts) == (
                JobStatus.IN_PROGRESS,
                1,
                1,
                1,
            )
            done, failed = jobs.job_images(session, second)
            assert (done.status, done.result) == (DeployImageStatus.DONE, result)
            assert (failed.status, failed.error) == (
                DeployImageStatus.FAILED,
                "Row value 7 falls outside",
            )
            assert jobs.job_images(session, second, pending_only=True) == []
            jobs.finish_job(session, second)
            assert jobs.fail_pending_images(session, first, "server stopped") == 1
            jobs.finish_job(session, first)
        with store.session() as session:
            assert jobs.active_job_ids(session, user_id) == []
            assert jobs.unfinished_job_ids(session) == []
            assert set(jobs.recently_completed_job_ids(session, user_id, 5)) == {first, second}
            assert len(jobs.recently_completed_job_ids(session, user_id, 1)) == 1
            assert jobs.get_job(session, first).finished
            assert jobs.find_job(session, 999) is None
            with pytest.raises(NotFoundError):
                jobs.get_job(session, 999)
    finally:
        store.close()


def test_sources_sort_alike(database_url: str) -> None:
    """ORDER BY on names: byte order on SQLite, and on the test clusters (initdb
    --locale=C). A server created with a locale collation (en_US.UTF-8) would sort
    "atoll" before "Lagoon"; docs/store.md says to create the database with C collation."""
    with Project.create(database_url) as project:
        for name in ("reef", "Lagoon", "atoll"):
            project.create_source(name)
        with project.store.session() as session:
            assert queries.source_names(session) == ["Lagoon", "atoll", "reef"]
