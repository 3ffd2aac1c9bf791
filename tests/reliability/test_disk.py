"""A full disk under the real CLI: export, report, import and extract fail in one line.

The disk really fills. Where this process may mount (root with CAP_SYS_ADMIN, as on a
developer's machine) the output folder or the project sits on a small ``tmpfs`` filled
to the last few kilobytes, and writes fail with ENOSPC. Where it may not (a CI container),
or as the second variant of each case, the command runs with a file size limit
(``RLIMIT_FSIZE``, ``ulimit -f``, SIGXFSZ ignored), and writes past it fail with EFBIG:
a full disk as far as the command can tell. No case is skipped for lack of privileges.
Each command runs in its own process, forked from one that imported quadrat already
(tests/reliability/_warm_cli.py), the limit set in it before the command starts.

Each case checks: a non-zero exit status, one ``error:`` line naming the file, no
traceback, the project as it was (or, for an extraction, whole feature blocks only) and
no partial or temporary file left; then the same command with room succeeds.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import quadrat
from quadrat.demo import make_demo_survey
from quadrat.io.atomic import TEMPORARY_NAME
from tests.reliability._warm_cli import WarmCLI

pytestmark = pytest.mark.slow  # each case runs the CLI two or three times

#: SQLite maps a ``-shm`` file of 32 KiB beside a project it reads: the room left on the
#: small disk must hold it, or even reading fails (cleanly, but not the case meant here).
ROOM = 40 * 1024
HANG_SECONDS = 300


def can_mount_tmpfs(where: Path, size: int) -> bool:
    """Mount a ``tmpfs`` of ``size`` bytes on ``where``; False where this is not allowed."""
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


@dataclass
class SmallDisk:
    """A folder whose writes fail past ``room`` bytes: a full tmpfs, or a file size limit."""

    root: Path
    kind: str  # "tmpfs" or "fsize"
    #: Runs each command in a fresh process (forked from one that imported quadrat).
    cli: WarmCLI
    room: int | None = None

    def fill(self, room: int = ROOM) -> None:
        """Leave about ``room`` bytes to write (call once what must be there is there)."""
        self.room = room
        if self.kind != "tmpfs":
            return
        stat = os.statvfs(self.root)
        free = stat.f_bavail * stat.f_frsize
        with open(self.root / "filler", "wb") as filler:
            filler.truncate(0)
            filler.write(b"\0" * max(0, free - room))

    def empty(self) -> None:
        """Room again: remove the filler, lift the limit."""
        self.room = None
        (self.root / "filler").unlink(missing_ok=True)

    def quadrat(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``python -m quadrat ARGS`` in a new process; with the file size limit (SIGXFSZ
        ignored: EFBIG instead of a killing signal) while the disk is "full"."""
        limited = self.kind == "fsize" and self.room is not None
        return self.cli.run(
            list(args),
            {**os.environ, "QUADRAT_NO_PROGRESS": "1", "COLUMNS": "200", "NO_COLOR": "1"},
            timeout=HANG_SECONDS,
            fsize=self.room if limited else None,
        )

    def files(self) -> list[str]:
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())


@pytest.fixture(params=["tmpfs-else-fsize", "fsize"])
def disk(request: pytest.FixtureRequest, tmp_path: Path, warm_cli: WarmCLI) -> Iterator[SmallDisk]:
    """A small disk: a real tmpfs where one can be mounted, else a file size limit."""
    root = tmp_path / "disk"
    root.mkdir()
    if request.param == "fsize" or not can_mount_tmpfs(root, 8 * 1024 * 1024):
        yield SmallDisk(root, "fsize", warm_cli)
        return
    try:
        yield SmallDisk(root, "tmpfs", warm_cli)
    finally:
        subprocess.run(["umount", "-l", str(root)], capture_output=True, check=False)


# --------------------------------------------------------------------------- projects


@pytest.fixture(scope="module")
def stages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A survey of 20 images with 60 points each (exports of about 60 KB) and projects
    holding it imported and trained; plus the files of a report made with room."""
    root = tmp_path_factory.mktemp("disk-stages")
    survey = make_demo_survey(
        root / "survey", n_annotated=20, n_new=0, points_per_image=60, size=(240, 320), seed=0
    )
    made = {
        "root": survey.root,
        "labelset": survey.labelset_csv,
        "csv": survey.annotations_csv,
        "images": survey.annotated_dir,
    }
    db = root / "work.db"
    with quadrat.Project.create(db) as project:
        project.create_source("reef", labelset=survey.labelset_csv)
    shutil.copyfile(db, root / "labelled.db")
    with quadrat.Project.open(db) as project:
        project.source().import_annotations(survey.annotations_csv, survey.annotated_dir)
    shutil.copyfile(db, root / "imported.db")
    with quadrat.Project.open(db) as project:
        src = project.source()
        src.extract("texture", workers=1)
        src.train(force=True)
        src.report(root / "report")
    shutil.copyfile(db, root / "trained.db")
    made.update(
        {stage: root / f"{stage}.db" for stage in ("labelled", "imported", "trained")},
        report=root / "report",
    )
    return made


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def counts(db: Path) -> dict[str, int]:
    with quadrat.Project.open(db, read_only=True) as project:
        return project.source().counts()


def one_error_line(result: subprocess.CompletedProcess[str], names: Path) -> str:
    """The command failed in one ``error:`` line that names ``names``; that line."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    (line,) = lines
    assert line.startswith("error:") and str(names) in line, line
    return line


def says_full(line: str, disk: SmallDisk) -> None:
    words = "full" if disk.kind == "tmpfs" else "size limit"
    assert words in line and "nothing was written" in line, line


def no_temporaries(folder: Path) -> None:
    left = [p for p in folder.rglob("*") if TEMPORARY_NAME.match(p.name)]
    left += [p for p in folder.rglob("*") if p.name.endswith((".init", "-journal"))]
    assert left == []


# --------------------------------------------------------------------------- outputs


def test_export_to_a_full_disk(tmp_path: Path, disk: SmallDisk, stages: dict[str, Path]) -> None:
    db = tmp_path / "p.db"
    shutil.copyfile(stages["imported"], db)
    before = digest(db)
    target = disk.root / "out" / "annotations.csv"
    disk.fill()
    result = disk.quadrat("export", "annotations", "-o", str(target), "-p", str(db))
    says_full(one_error_line(result, target), disk)
    assert not target.exists()
    no_temporaries(disk.root)
    assert digest(db) == before
    disk.empty()
    assert disk.quadrat("export", "annotations", "-o", str(target), "-p", str(db)).returncode == 0
    assert target.stat().st_size > ROOM  # a file that could not have fitted
    assert disk.files() == ["out/annotations.csv"]


def test_report_to_a_full_disk(tmp_path: Path, disk: SmallDisk, stages: dict[str, Path]) -> None:
    db = tmp_path / "p.db"
    shutil.copyfile(stages["trained"], db)
    before = digest(db)
    out = disk.root / "report"
    disk.fill()
    result = disk.quadrat("report", "-o", str(out), "-p", str(db))
    says_full(one_error_line(result, out), disk)
    no_temporaries(disk.root)
    reference = stages["report"]
    for left in out.iterdir() if out.exists() else []:  # complete files only
        assert left.read_bytes() == (reference / left.name).read_bytes(), left.name
    assert digest(db) == before
    disk.empty()
    assert disk.quadrat("report", "-o", str(out), "-p", str(db)).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in reference.iterdir())


# --------------------------------------------------------------------------- the project


def _project_on(disk: SmallDisk, stage: Path) -> Path:
    db = disk.root / "p.db"
    shutil.copyfile(stage, db)
    return db


def _project_files(disk: SmallDisk) -> list[str]:
    return [name for name in disk.files() if name != "filler"]


def test_import_into_a_project_on_a_full_disk(disk: SmallDisk, stages: dict[str, Path]) -> None:
    db = _project_on(disk, stages["labelled"])
    before = digest(db)
    args = ("import", str(stages["csv"]), "-i", str(stages["images"]), "-p", str(db))
    disk.fill()
    says_full(one_error_line(disk.quadrat(*args), db), disk)
    assert _project_files(disk) == ["p.db"]  # no -wal, -shm or journal left behind
    assert digest(db) == before
    assert counts(db)["images"] == 0
    disk.empty()
    result = disk.quadrat(*args)
    assert result.returncode == 0, result.stderr
    assert counts(db)["points"] == 20 * 60


def test_extract_into_a_project_on_a_full_disk(disk: SmallDisk, stages: dict[str, Path]) -> None:
    from quadrat.store import queries

    db = _project_on(disk, stages["imported"])
    before = counts(db)
    args = ("extract", "-e", "texture", "--device", "cpu", "-p", str(db))
    disk.fill()
    says_full(one_error_line(disk.quadrat(*args), db), disk)
    assert _project_files(disk) == ["p.db"]
    with quadrat.Project.open(db, read_only=True) as project, project.store.session() as session:
        src_id = project.source().id
        points = queries.point_counts(session, src_id)
        for key, _name in queries.stored_extractors(session, src_id):
            sizes = queries.stored_block_sizes(session, src_id, key)
            assert all(points[i] == n for i, n in sizes.items())  # whole blocks, if any
    assert counts(db) == before
    disk.empty()
    result = disk.quadrat(*args)
    assert result.returncode == 0, result.stderr
    with quadrat.Project.open(db, read_only=True) as project, project.store.session() as session:
        src_id = project.source().id
        (key,) = [k for k, _ in queries.stored_extractors(session, src_id)]
        assert queries.stored_block_sizes(session, src_id, key) == queries.point_counts(
            session, src_id
        )
