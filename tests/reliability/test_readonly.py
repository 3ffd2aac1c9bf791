"""A project on a read-only file system, through the real CLI: exports and reports work,
import, extract and train are one clear error, and the file is byte for byte unchanged.

As root, ``chmod a-w`` stops nothing, so the project is put where the kernel itself
refuses writes, by the first of these that this machine allows:

- ``mount``: a tmpfs holding the project, remounted read-only (root with CAP_SYS_ADMIN);
- ``userns``: ``unshare -rm``, a user and mount namespace in which the project's folder
  is bind-mounted read-only over itself (no privileges where user namespaces are on);
- ``simulated``: the folder and file made read-only with chmod, and the command run with
  ``os.access`` reporting them unwritable, as the kernel does on a read-only mount (for
  root, in a container that allows neither of the above). SQLite then opens the project
  with ``mode=ro``/``immutable=1`` and refuses writes itself.

Every case also runs ``simulated``, so CI always checks the behaviour; none is skipped.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import quadrat
from quadrat.demo import DemoSurvey
from tests.reliability._warm_cli import WarmCLI

pytestmark = pytest.mark.slow  # each case runs the CLI

HANG_SECONDS = 300

#: Runs the CLI with ``os.access`` saying "not writable" under $QUADRAT_TEST_READ_ONLY.
SIMULATED = r"""
import os, runpy, sys

folder = os.path.realpath(os.environ["QUADRAT_TEST_READ_ONLY"])
real_access = os.access


def access(path, mode, *args, **kwargs):
    if mode & os.W_OK:
        try:
            where = os.path.realpath(os.fspath(path))
        except TypeError:
            where = ""
        if where == folder or where.startswith(folder + os.sep):
            return False
    return real_access(path, mode, *args, **kwargs)


os.access = access
sys.argv = sys.argv[1:]
runpy.run_module("quadrat", run_name="__main__", alter_sys=True)
"""

#: In a new user and mount namespace: the folder ($1) bind-mounted read-only over itself.
USERNS = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'


def _env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "QUADRAT_NO_PROGRESS": "1",
        "COLUMNS": "200",
        "NO_COLOR": "1",
        **extra,
    }


def _run(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, env=_env(**env), timeout=HANG_SECONDS, check=False
    )


@dataclass
class ReadOnlyProject:
    """A project file on a file system that refuses writes, and how to run quadrat on it."""

    db: Path
    how: str  # "mount", "userns" or "simulated"
    #: Runs a command in a fresh process forked from one that imported quadrat (not in a
    #: new namespace: ``userns`` runs ``python -m quadrat`` under ``unshare``).
    warm: WarmCLI

    def quadrat(self, *args: str) -> subprocess.CompletedProcess[str]:
        cli = [sys.executable, "-m", "quadrat", *args]
        if self.how == "userns":
            return _run(["unshare", "-rm", "sh", "-c", USERNS, "sh", str(self.db.parent), *cli])
        if self.how == "simulated":  # python -c SIMULATED quadrat ARGS
            return self.warm.run(
                list(args),
                _env(QUADRAT_TEST_READ_ONLY=str(self.db.parent)),
                boot=SIMULATED,
                timeout=HANG_SECONDS,
            )
        return self.warm.run(list(args), _env(), timeout=HANG_SECONDS)

    def listing(self) -> list[str]:
        return sorted(p.name for p in self.db.parent.iterdir())

    def unchanged(self, digest_before: str, listing_before: list[str]) -> None:
        """The project's bytes are as they were, and nothing was written beside it.

        Simulated, the folder is still writable to SQLite (root), which may leave an
        empty ``-wal`` and a ``-shm`` index there: no data, and not on a real mount.
        """
        assert digest(self.db) == digest_before
        extra = sorted(set(self.listing()) - set(listing_before))
        if self.how == "simulated":
            allowed = {f"{self.db.name}-wal", f"{self.db.name}-shm"}
            assert set(extra) <= allowed, extra
            wal = self.db.with_name(f"{self.db.name}-wal")
            assert not wal.exists() or wal.stat().st_size == 0
        else:
            assert extra == []


def _try_mount(folder: Path, db: Path) -> bool:
    """The project on a tmpfs at ``folder``, remounted read-only; False if not allowed."""
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode:
        return False
    shutil.copyfile(db, folder / "p.db")
    remounted = subprocess.run(
        ["mount", "-o", "remount,ro", str(folder)], capture_output=True, check=False
    )
    if remounted.returncode == 0:
        return True
    subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)
    return False


def _userns_works(folder: Path) -> bool:
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return False
    probe = folder / ".probe"
    result = subprocess.run(
        ["unshare", "-rm", "sh", "-c", USERNS, "sh", str(folder), "touch", str(probe)],
        capture_output=True,
        check=False,
    )
    written = probe.exists()
    probe.unlink(missing_ok=True)
    # the command ran (the namespace worked) and its write was refused
    return b"Read-only file system" in result.stderr and not written


def _chmod_read_only(folder: Path) -> None:
    """``folder`` and its files without write permission (what ``simulated`` adds to)."""
    for path in (*folder.iterdir(), folder):
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


MakeReadOnly = Callable[[Path], ReadOnlyProject]


@pytest.fixture(params=["mount-else-userns-else-simulated", "simulated"])
def read_only(
    request: pytest.FixtureRequest, tmp_path: Path, warm_cli: WarmCLI
) -> Iterator[MakeReadOnly]:
    """``read_only(stage)``: a copy of the project ``stage`` on a read-only file system."""
    folder = tmp_path / "ro"
    folder.mkdir()
    wanted = str(request.param)

    def make(stage: Path) -> ReadOnlyProject:
        db = folder / "p.db"
        if wanted != "simulated" and _try_mount(folder, stage):
            return ReadOnlyProject(db, "mount", warm_cli)
        shutil.copyfile(stage, db)
        if wanted != "simulated" and _userns_works(folder):
            return ReadOnlyProject(db, "userns", warm_cli)
        _chmod_read_only(folder)
        return ReadOnlyProject(db, "simulated", warm_cli)

    try:
        yield make
    finally:
        if os.path.ismount(folder):
            subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)
        folder.chmod(0o755)  # writable again, so that pytest can remove it


# --------------------------------------------------------------------------- projects


@pytest.fixture(scope="module")
def stages(
    survey_template: DemoSurvey, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The project before each step: labelled, imported, extracted, trained."""
    root = tmp_path_factory.mktemp("readonly-stages")
    db = root / "work.db"
    made: dict[str, Path] = {}
    with quadrat.Project.create(db) as project:
        project.create_source("reef", labelset=survey_template.labelset_csv)
    for stage in ("labelled", "imported", "extracted", "trained"):
        with quadrat.Project.open(db) as project:
            src = project.source()
            if stage == "imported":
                src.import_annotations(
                    survey_template.annotations_csv, survey_template.annotated_dir
                )
            elif stage == "extracted":
                src.extract("texture", workers=1)
            elif stage == "trained":
                src.train(force=True)
        made[stage] = root / f"{stage}.db"
        shutil.copyfile(db, made[stage])
    return made


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("kind", ["annotations", "cover", "labelset"])
def test_export_from_a_read_only_project(
    read_only: MakeReadOnly,
    stages: dict[str, Path],
    tmp_path: Path,
    kind: str,
) -> None:
    project = read_only(stages["trained"])
    before, listing = digest(project.db), project.listing()
    out = tmp_path / "out" / f"{kind}.csv"
    result = project.quadrat("export", kind, "-o", str(out), "-p", str(project.db))
    assert result.returncode == 0, (project.how, result.stderr)
    with quadrat.Project.open(stages["trained"], read_only=True) as reference:
        expected = tmp_path / "expected.csv"
        getattr(reference.source(), f"export_{kind}")(expected)
    assert out.read_bytes() == expected.read_bytes()
    project.unchanged(before, listing)


def test_report_from_a_read_only_project(
    read_only: MakeReadOnly,
    stages: dict[str, Path],
    tmp_path: Path,
) -> None:
    project = read_only(stages["trained"])
    before, listing = digest(project.db), project.listing()
    out = tmp_path / "report"
    result = project.quadrat("report", "-o", str(out), "-p", str(project.db))
    assert result.returncode == 0, (project.how, result.stderr)
    assert "classifier 1" in result.stdout
    assert {"metrics.json", "cover.csv"} <= {p.name for p in out.iterdir()}
    project.unchanged(before, listing)


# --------------------------------------------------------------------------- writing


def _args(step: str, db: Path, survey: DemoSurvey) -> list[str]:
    return {
        "import": ["import", str(survey.annotations_csv), "-i", str(survey.annotated_dir)],
        "extract": ["extract", "-e", "texture", "--device", "cpu"],
        "train": ["train", "--force"],
    }[step] + ["-p", str(db)]


@pytest.mark.parametrize(
    ("step", "stage"), [("import", "labelled"), ("extract", "imported"), ("train", "extracted")]
)
def test_writing_to_a_read_only_project_is_one_error(
    read_only: MakeReadOnly,
    stages: dict[str, Path],
    survey_template: DemoSurvey,
    step: str,
    stage: str,
) -> None:
    project = read_only(stages[stage])
    before, listing = digest(project.db), project.listing()
    result = project.quadrat(*_args(step, project.db, survey_template))
    assert result.returncode == 1, (project.how, result.stdout, result.stderr)  # StateError
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {project.db}: the project is read-only"), lines[0]
    project.unchanged(before, listing)
