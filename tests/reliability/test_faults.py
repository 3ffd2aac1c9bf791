"""Concurrency and faults (issue 12 item 4): each fault is one clear error, never a traceback.

Two writers on one project, foreign SQLite files, read-only projects, ``init`` failing
half-way, a full disk and a read-only output folder, temporary files of killed writers,
bad option values and hostile files given to the commands.
"""

from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

import quadrat
from quadrat.cli import app
from quadrat.demo import DemoSurvey
from quadrat.errors import ConflictError, NotFoundError, ProjectError, StateError
from quadrat.io import atomic
from quadrat.io.atomic import atomic_file, write_text

runner = CliRunner()


def fail(*args: str, code: int | tuple[int, ...] = 1) -> str:
    """A command that fails with one ``error:`` line and no traceback; its text, unwrapped."""
    result = runner.invoke(app, list(args))
    codes = (code,) if isinstance(code, int) else code
    assert result.exit_code in codes, (result.output, repr(result.exception))
    assert "Traceback" not in result.output
    text = result.output.strip()
    assert text.startswith("error:"), text
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)
    return " ".join(text.split())


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------- two writers


def test_a_second_writer_waits_then_gets_a_conflict_error(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    quadrat.Project.create(db).close()
    holder = sqlite3.connect(db)
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    try:
        with (
            quadrat.Project.open(db, busy_timeout=0.2) as project,
            pytest.raises(ConflictError, match="busy: another quadrat process") as caught,
        ):
            project.create_source("reef")
        assert caught.value.path == db
        assert "0.2 s" in str(caught.value)
    finally:
        holder.rollback()
        holder.close()
    with quadrat.Project.open(db) as project:  # nothing half-written; the next write works
        assert project.sources == []
        project.create_source("reef")


def test_two_imports_racing_on_one_project(tmp_path: Path, survey: DemoSurvey) -> None:
    """Two real processes import the same CSV at once: one wins, the other exits 5 in one
    line (busy, or already imported), and the project holds the images once."""
    db = tmp_path / "p.db"
    assert runner.invoke(app, ["init", "-p", str(db), "--labelset", str(survey.labelset_csv)])
    cli = Path(sys.executable).with_name("quadrat")
    if not cli.exists():
        pytest.skip("the quadrat script is not installed beside this Python")
    args = [str(cli), "import", str(survey.annotations_csv), "-i", str(survey.annotated_dir)]
    env = {**os.environ, "QUADRAT_NO_PROGRESS": "1"}
    racers = [
        subprocess.Popen(
            [*args, "-p", str(db)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
        )
        for _ in range(2)
    ]
    outputs = [(r.wait(timeout=120), r.stdout.read().decode() if r.stdout else "") for r in racers]
    assert sorted(code for code, _ in outputs) == [0, 5], outputs
    for _code, text in outputs:
        assert "Traceback" not in text and "IntegrityError" not in text, text
    with quadrat.Project.open(db) as project:
        total = len(list(survey.annotated_dir.iterdir()))
        assert project.source().counts()["images"] == total


def test_the_second_writer_succeeds_when_the_first_finishes_within_the_timeout(
    tmp_path: Path,
) -> None:
    db = tmp_path / "p.db"
    quadrat.Project.create(db).close()
    holder = sqlite3.connect(db, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(0.3, holder.commit)
    timer.start()
    try:
        with quadrat.Project.open(db, busy_timeout=20) as project:
            project.create_source("reef")
            assert [s.name for s in project.sources] == ["reef"]
    finally:
        timer.join()
        holder.close()


def test_the_busy_timeout_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quadrat.store.project import DEFAULT_BUSY_TIMEOUT, busy_timeout_seconds

    assert busy_timeout_seconds() == DEFAULT_BUSY_TIMEOUT == 30.0
    monkeypatch.setenv("QUADRAT_BUSY_TIMEOUT", "0.1")
    assert busy_timeout_seconds() == 0.1
    monkeypatch.setenv("QUADRAT_BUSY_TIMEOUT", "soon")
    with pytest.raises(quadrat.errors.InputError, match="QUADRAT_BUSY_TIMEOUT"):
        busy_timeout_seconds()


def test_two_writers_through_the_cli(
    tmp_path: Path, survey: DemoSurvey, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "p.db"
    assert runner.invoke(app, ["init", "-p", str(db), "--labelset", str(survey.labelset_csv)])
    monkeypatch.setenv("QUADRAT_BUSY_TIMEOUT", "0.1")
    holder = sqlite3.connect(db)
    holder.execute("BEGIN IMMEDIATE")
    try:
        text = fail(
            "import",
            str(survey.annotations_csv),
            "--images",
            str(survey.annotated_dir),
            "-p",
            str(db),
            code=5,
        )
    finally:
        holder.rollback()
        holder.close()
    assert "the project is busy" in text and "database is locked" not in text
    assert str(db) in text


def test_a_row_added_meanwhile_is_a_conflict_not_an_integrity_error(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    with quadrat.Project.create(db) as project:
        project.create_source("reef")
        from quadrat.store.schema import Source as SourceRow

        with (
            pytest.raises(ConflictError, match="another process changed the project"),
            project.store.session() as session,  # as if another process added it meanwhile
        ):
            session.add(SourceRow(name="reef"))
        assert [s.name for s in project.sources] == ["reef"]


# --------------------------------------------------------------------- foreign files


def test_a_foreign_sqlite_file_is_refused_unchanged(tmp_path: Path) -> None:
    foreign = tmp_path / "notes.db"
    with sqlite3.connect(foreign) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
        connection.execute("INSERT INTO notes VALUES ('keep me')")
    connection.close()
    before = digest(foreign)
    with pytest.raises(ProjectError, match="not a quadrat project") as caught:
        quadrat.Project.open(foreign)
    assert caught.value.path == foreign
    assert digest(foreign) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]  # no -wal, no -shm
    with sqlite3.connect(foreign) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    connection.close()


@pytest.mark.parametrize("content", [b"Name,Row\n", b"\x00\x01binary\xff" * 10])
def test_a_file_that_is_not_sqlite_is_refused_unchanged(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "p.db"
    path.write_bytes(content)
    with pytest.raises(ProjectError, match="not a SQLite database"):
        quadrat.Project.open(path)
    assert path.read_bytes() == content
    assert "not a quadrat project" in fail("points", "-p", str(path))


def test_a_folder_as_the_project_is_a_clear_error(tmp_path: Path) -> None:
    assert "a folder" in fail("points", "-p", str(tmp_path))


# ------------------------------------------------------------------- read-only projects


def _project_with_a_source(db: Path, survey: DemoSurvey) -> None:
    with quadrat.Project.create(db) as project:
        src = project.create_source("reef", labelset=survey.labelset_csv)
        src.import_annotations(survey.annotations_csv, survey.annotated_dir)


def test_a_read_only_project_exports_and_refuses_writes(tmp_path: Path, survey: DemoSurvey) -> None:
    db = tmp_path / "p.db"
    _project_with_a_source(db, survey)
    before = digest(db)
    with quadrat.Project.open(db, read_only=True) as project:
        assert project.store.read_only
        src = project.source()
        assert src.export_annotations(tmp_path / "out.csv") > 0
        with pytest.raises(StateError, match="read-only") as caught:
            src.generate_points("m_5")
        assert caught.value.path == db
    assert digest(db) == before


def test_a_project_on_a_read_only_mount(tmp_path: Path, survey: DemoSurvey) -> None:
    """WAL needs a ``-shm`` file beside the project; a read-only mount cannot hold one."""
    if os.geteuid() != 0 or sys.platform != "linux":
        pytest.skip("mounting a file system needs root on Linux")
    mount = tmp_path / "mnt"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mount)], check=False).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        db = mount / "p.db"
        _project_with_a_source(db, survey)
        ro = subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=False)
        if ro.returncode:
            pytest.skip("cannot remount read-only")
        with quadrat.Project.open(db) as project:
            assert project.store.read_only
            assert project.source().export_annotations(tmp_path / "out.csv") > 0
            with pytest.raises(StateError, match="read-only"):
                project.source().generate_points("m_5")
        text = fail("points", "m_5", "-p", str(db))
        assert "read-only" in text
    finally:
        subprocess.run(["umount", str(mount)], check=False)


# ------------------------------------------------------------------------ atomic init


def test_init_that_fails_half_way_leaves_no_stub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quadrat.store import project as store_project

    db = tmp_path / "p.db"

    real = store_project.insert

    def insert_then_fail(_table: object) -> object:  # the tables exist, the metadata not yet
        monkeypatch.setattr(store_project, "insert", real)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_project, "insert", insert_then_fail)
    with pytest.raises(OSError):
        quadrat.Project.create(db)
    assert list(tmp_path.iterdir()) == []  # neither the project nor its temporary file
    with quadrat.Project.create(db) as project:  # init runs again cleanly
        project.create_source("reef")
    with quadrat.Project.open(db) as project:
        assert [s.name for s in project.sources] == ["reef"]


def test_init_killed_half_way_leaves_no_project_and_the_rerun_tidies_up(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    script = (
        "import os, sys\n"
        "from quadrat.store import project\n"
        "def build(path):\n"
        "    path.write_bytes(b'SQLite format 3\\x00half')\n"
        "    os.kill(os.getpid(), 9)\n"
        "project._build_empty = build\n"
        "project.Store.create(sys.argv[1])\n"
    )
    killed = subprocess.run([sys.executable, "-c", script, str(db)], check=False)
    assert killed.returncode == -9
    (left,) = tmp_path.iterdir()  # the temporary file, not a project stub
    assert left.name.startswith(".p.db.") and left.name.endswith(".init")
    assert "no project here" in fail("points", "-p", str(db), code=4)
    assert runner.invoke(app, ["init", "-p", str(db)]).exit_code == 0
    assert [p.name for p in tmp_path.iterdir()] == ["p.db"]


def test_an_unfinished_project_from_an_old_release_is_named(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    connection.close()
    with pytest.raises(ProjectError, match="stopped half-way"):
        quadrat.Project.open(db)


def test_an_empty_file_is_no_project_and_init_replaces_it(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    db.touch()
    with pytest.raises(NotFoundError):
        quadrat.Project.open(db)
    quadrat.Project.create(db).close()
    assert quadrat.Project.open(db).sources == []


# --------------------------------------------------------------- disk full, read-only out


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.ENOSPC, "disk is full"),
        (errno.EROFS, "read-only file system"),
        (errno.EDQUOT, "quota"),
    ],
)
def test_a_write_fault_names_the_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, words: str
) -> None:
    target = tmp_path / "out.csv"
    write_text(target, "old\n")

    def fsync(_fd: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    with pytest.raises(StateError, match=words) as caught:
        write_text(target, "new\n")
    assert caught.value.path == target
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    assert target.read_text() == "old\n"


def test_a_read_only_output_folder_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out" / "cover.csv"

    def mkstemp(**_kwargs: object) -> tuple[int, str]:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp)
    with pytest.raises(StateError, match="not writable") as caught:
        write_text(target, "x")
    assert caught.value.path == target


def test_a_permission_error_of_a_file_the_writer_reads_is_not_blamed_on_the_target(
    tmp_path: Path,
) -> None:
    with pytest.raises(PermissionError), atomic_file(tmp_path / "out.txt") as handle:
        handle.write(b"x")
        raise PermissionError(errno.EACCES, "Permission denied", "input.txt")
    assert list(tmp_path.iterdir()) == []


def test_disk_full_during_an_export_through_the_cli(
    tmp_path: Path, survey: DemoSurvey, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "p.db"
    _project_with_a_source(db, survey)
    out = tmp_path / "out"
    out.mkdir()

    def fsync(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    text = fail("export", "annotations", "-o", str(out / "a.csv"), "-p", str(db))
    assert "disk is full" in text and str(out / "a.csv") in text
    assert list(out.iterdir()) == []


def test_a_full_disk_under_the_project_is_a_clear_error(tmp_path: Path, survey: DemoSurvey) -> None:
    """SQLite's ``max_page_count`` stands in for a full disk: it fails with SQLITE_FULL."""
    from sqlalchemy import event

    db = tmp_path / "p.db"
    with quadrat.Project.create(db) as project:
        project.create_source("reef", labelset=survey.labelset_csv)

    def cap(connection: sqlite3.Connection, _record: object) -> None:
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count={pages + 1}")

    with quadrat.Project.open(db) as project:
        event.listen(project.store.engine, "connect", cap)
        project.store.engine.dispose()
        src = project.source()
        with pytest.raises(StateError, match="disk holding the project is full") as caught:
            src.import_annotations(survey.annotations_csv, survey.annotated_dir)
        assert caught.value.path == db
    with quadrat.Project.open(db) as project:
        assert project.source().counts()["images"] == 0


# ------------------------------------------------------------------ stale temporaries


def test_a_killed_writers_temporary_is_removed_on_the_next_write(tmp_path: Path) -> None:
    target = tmp_path / "annotations.csv"
    stale = tmp_path / ".annotations.csv.abcd1234.tmp"
    stale.write_text("half")
    other = tmp_path / ".cover.csv.abcd1234.tmp"  # another target's: not this writer's
    other.write_text("half")
    write_text(target, "done\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".cover.csv.abcd1234.tmp",
        "annotations.csv",
    ]


def test_a_live_writers_temporary_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "annotations.csv"
    with atomic_file(target, "w") as first:
        first.write("first")
        (live,) = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        write_text(target, "second")  # a second writer of the same file meanwhile
        assert live.exists()
        assert atomic.remove_stale_temporaries(tmp_path) == []
    assert target.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["annotations.csv"]


def test_an_export_killed_half_way_leaves_nothing_after_the_rerun(
    tmp_path: Path, survey: DemoSurvey
) -> None:
    db = tmp_path / "p.db"
    _project_with_a_source(db, survey)
    out = tmp_path / "out"
    out.mkdir()
    script = (
        "import os, sys, quadrat\n"
        "from quadrat.io import atomic\n"
        "atomic.os.fsync = lambda fd: os.kill(os.getpid(), 9)\n"
        "quadrat.Project.open(sys.argv[1]).source().export_annotations(sys.argv[2])\n"
    )
    killed = subprocess.run(
        [sys.executable, "-c", script, str(db), str(out / "a.csv")], check=False
    )
    assert killed.returncode == -9
    (left,) = out.iterdir()
    assert left.name.endswith(".tmp")
    result = runner.invoke(app, ["export", "annotations", "-o", str(out / "a.csv"), "-p", str(db)])
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.iterdir()] == ["a.csv"]


# ------------------------------------------------------------ bad option values, files


def _imported(tmp_path: Path, survey: DemoSurvey) -> str:
    db = tmp_path / "p.db"
    _project_with_a_source(db, survey)
    return str(db)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--dtype", "float64"], "float64"),
        (["--workers", "0"], "workers must be at least 1"),
    ],
)
def test_a_bad_extract_option_is_one_line(
    tmp_path: Path, survey: DemoSurvey, args: list[str], words: str
) -> None:
    db = _imported(tmp_path, survey)
    text = fail("extract", *args, "-p", db)
    assert words in text and args[0] in text  # the flag to change
    with quadrat.Project.open(db) as project:  # refused before anything was stored
        assert project.source().counts()["images"] > 0
        with pytest.raises(quadrat.errors.StateError, match="no stored features"):
            project.source().extractor_key()


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00binary" * 20])
def test_translate_of_an_empty_or_binary_names_file(tmp_path: Path, content: bytes) -> None:
    names = tmp_path / "names.txt"
    names.write_bytes(content)
    text = fail("dataset", "translate", str(names), "-f", "names", "-o", str(tmp_path / "o.csv"))
    assert str(names) in text
    assert not (tmp_path / "o.csv").exists()


def test_a_binary_catami_scheme_is_one_line(tmp_path: Path) -> None:
    scheme = tmp_path / "scheme.csv"
    scheme.write_bytes(b"\xff\xfe\x00binary" * 20)
    assert str(scheme) in fail("dataset", "catami", "tree", "--scheme", str(scheme))


def test_an_export_over_a_folder_names_it(tmp_path: Path, survey: DemoSurvey) -> None:
    db = _imported(tmp_path, survey)
    folder = tmp_path / "out"
    folder.mkdir()
    text = fail("export", "cover", "-o", str(folder), "-p", db)
    assert "a folder has this name" in text and str(folder) in text
    assert list(folder.iterdir()) == []
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "not a folder" in fail("export", "cover", "-o", str(blocker / "c.csv"), "-p", db)
    assert "a folder has this name" in fail("export", "cover", "-o", "", "-p", db)
    assert not [p for p in Path.cwd().iterdir() if p.name.endswith(".tmp")]


def test_a_report_folder_that_is_a_file_is_one_line(tmp_path: Path, survey: DemoSurvey) -> None:
    db = _imported(tmp_path, survey)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "file" in fail("report", "-o", str(blocker), "-p", db)
    assert blocker.read_text() == "x"


def test_init_with_a_bad_labelset_leaves_no_project(tmp_path: Path) -> None:
    bad = tmp_path / "labels.csv"
    bad.write_bytes(b"\x00\x01\x02" * 50)
    db = tmp_path / "p.db"
    assert "labels.csv" in fail("init", "-p", str(db), "--labelset", str(bad))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.csv"]
    assert runner.invoke(app, ["init", "-p", str(db)]).exit_code == 0  # and init works after


def test_init_adding_a_bad_source_keeps_the_existing_project(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    assert runner.invoke(app, ["init", "-p", str(db)]).exit_code == 0
    fail("init", "-p", str(db), "-s", "other", "--points", "m_x")
    with quadrat.Project.open(db) as project:
        assert [s.name for s in project.sources] == ["default"]


# ----------------------------------------------------------------------- skip missing


def _remove_images(survey: DemoSurvey, count: int) -> list[str]:
    gone = sorted(p.name for p in survey.annotated_dir.iterdir())[:count]
    for name in gone:
        (survey.annotated_dir / name).unlink()
    return gone


def test_skip_missing_imports_the_rest_and_lists_the_missing(
    tmp_path: Path, survey: DemoSurvey
) -> None:
    total = len(list(survey.annotated_dir.iterdir()))
    gone = _remove_images(survey, 2)
    with quadrat.Project.create(tmp_path / "p.db") as project:
        src = project.create_source("reef", labelset=survey.labelset_csv)
        with pytest.raises(quadrat.errors.ImageError, match="not in"):
            src.import_annotations(survey.annotations_csv, survey.annotated_dir)
        assert src.counts()["images"] == 0  # all or nothing by default
        summary = src.import_annotations(
            survey.annotations_csv, survey.annotated_dir, skip_missing=True
        )
        assert sorted(name for name, _ in summary.skipped) == gone
        assert all(line >= 2 for _, line in summary.skipped)
        assert summary.images == total - 2 == src.counts()["images"]


def test_skip_missing_through_the_cli_writes_the_list(tmp_path: Path, survey: DemoSurvey) -> None:
    gone = _remove_images(survey, 3)
    db = tmp_path / "p.db"
    assert runner.invoke(app, ["init", "-p", str(db), "--labelset", str(survey.labelset_csv)])
    args = ["import", str(survey.annotations_csv), "-i", str(survey.annotated_dir), "-p", str(db)]
    assert "not in" in fail(*args)
    result = runner.invoke(app, [*args, "--skip-missing"])
    assert result.exit_code == 0, result.output
    listed = tmp_path / "p-skipped-images.csv"
    assert "skipped 3 missing images" in " ".join(result.output.split())
    lines = listed.read_text().splitlines()
    assert lines[0] == "Name,Line"
    assert sorted(line.split(",")[0] for line in lines[1:]) == gone
    chosen = tmp_path / "lists" / "gone.csv"
    db2 = tmp_path / "q.db"
    assert runner.invoke(app, ["init", "-p", str(db2), "--labelset", str(survey.labelset_csv)])
    result = runner.invoke(
        app,
        [*args[:-1], str(db2), "--skip-missing", "--skipped-list", str(chosen)],
    )
    assert result.exit_code == 0, result.output
    assert chosen.read_text() == listed.read_text()
