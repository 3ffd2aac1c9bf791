"""``kill -9`` during import, extract, train and export, then the same command again.

Each case runs the real ``quadrat`` command in its own process (forked from one that
imported quadrat already: tests/reliability/_warm_cli.py) on a copy of a small project
and kills it with SIGKILL part-way, at one of four points:

- ``before-commit``/``after-commit`` (or ``first-write``/``fsync`` for an export, which
  writes no database rows): a hook installed before the CLI starts kills the process
  from inside, just before or just after its first transaction that writes rows is
  committed (for ``extract``, its first feature blocks), or after half of the export's
  first chunk reached its temporary file, or once the whole temporary file is written
  but not yet renamed. Deterministic: the kill lands where it is meant to.
- ``signal-first``/``signal-second``: the test itself sends SIGKILL when it sees the
  process write (the project's ``-wal`` file grows, the export's temporary file appears),
  the first or the second time. Real timing; on a slow or busy machine the process may
  finish before the signal, and the case still checks the rerun.

After the kill the project must open, hold either its state before the command or the
state an uninterrupted run gives (an extraction: whole feature blocks of some images,
each as the uninterrupted run stores it), and the export destination must hold the
complete file or nothing. Then the same command, run again, must end where an
uninterrupted run ends, with no temporary files left. No case checks how fast anything is.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import quadrat
from quadrat.demo import DemoSurvey
from quadrat.io.atomic import TEMPORARY_NAME
from tests.reliability._warm_cli import WarmCLI

pytestmark = pytest.mark.slow  # 16 cases, each two or three runs of the CLI

#: Longest a command may run in these tests before it counts as hung (not a speed check).
HANG_SECONDS = 300.0

#: Installed before the CLI runs (``python -c BOOT quadrat ARGS...``); ``QUADRAT_TEST_KILL``
#: says where the process kills itself with SIGKILL.
BOOT = r"""
import os, runpy, signal, sys, threading

where, _, nth = os.environ["QUADRAT_TEST_KILL"].partition(":")


def die():
    os.kill(os.getpid(), signal.SIGKILL)


if where in ("before-commit", "after-commit"):
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

    WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")
    state = {"commits": 0, "armed": None}

    @event.listens_for(Engine, "before_cursor_execute")
    def mark(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith(WRITES):
            conn.info["wrote"] = True

    @event.listens_for(Engine, "rollback")
    def rollback(conn):
        conn.info.pop("wrote", None)

    @event.listens_for(Engine, "commit")  # before the database commits
    def commit(conn):
        if not conn.info.pop("wrote", False):
            return
        state["commits"] += 1
        if state["commits"] == int(nth):
            if where == "before-commit":
                die()
            state["armed"] = threading.get_ident()

    def after(*_args):  # after the database committed, on the committing thread
        if state["armed"] == threading.get_ident():
            die()

    event.listen(Session, "after_commit", after)
    event.listen(Engine, "checkin", after)
elif where == "fsync":  # the temporary file is complete, not yet renamed
    from quadrat.io import atomic

    atomic.os.fsync = lambda fd: die()
elif where == "first-write":  # half of the first chunk reached the temporary file
    import builtins
    from quadrat.io import atomic

    class Half:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.handle.__exit__(*exc)

        def write(self, data):
            self.handle.write(data[: max(1, len(data) // 2)])
            self.handle.flush()
            os.fsync(self.handle.fileno())
            die()

        def __getattr__(self, name):
            return getattr(self.handle, name)

    def half_open(file, mode="r", *args, **kwargs):
        handle = builtins.open(file, mode, *args, **kwargs)
        return Half(handle) if "w" in mode else handle

    atomic.open = half_open
else:
    raise SystemExit(f"unknown kill point {where!r}")

sys.argv = sys.argv[1:]
runpy.run_module("quadrat", run_name="__main__", alter_sys=True)
"""

HOOKS = {
    "import": ("before-commit:1", "after-commit:1"),
    "extract": ("before-commit:2", "after-commit:2"),  # the 1st records the extractor
    "train": ("before-commit:1", "after-commit:1"),
    "export": ("first-write", "fsync"),
}
SIGNALS = ("signal-first", "signal-second")


@dataclass(frozen=True)
class Step:
    """A command to kill: the stage its project starts from and how it is called."""

    name: str
    stage: str
    args: Callable[[Path, Path, DemoSurvey], list[str]]
    #: Exit status of the rerun when the killed run had already finished its work.
    done_code: int


STEPS = {
    step.name: step
    for step in (
        Step(
            "import",
            "labelled",
            lambda db, _out, s: [
                "import",
                str(s.annotations_csv),
                "-i",
                str(s.annotated_dir),
                "-p",
                str(db),
            ],
            done_code=5,  # already imported
        ),
        Step(
            "extract",
            "imported",
            lambda db, _out, _s: [
                "extract",
                *("-e", "texture", "--device", "cpu"),  # no torch needed
                *("--batch-size", "1", "--workers", "1"),  # committed image by image
                *("-p", str(db)),
            ],
            done_code=3,  # nothing to do
        ),
        Step("train", "extracted", lambda db, _out, _s: ["train", "-p", str(db)], done_code=3),
        Step(
            "export",
            "extracted",
            lambda db, out, _s: ["export", "annotations", "-o", str(out / "a.csv"), "-p", str(db)],
            done_code=0,
        ),
    )
}


def _env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "QUADRAT_NO_PROGRESS": "1",
        "COLUMNS": "200",
        "NO_COLOR": "1",
        "OMP_NUM_THREADS": "1",
        **extra,
    }


def _quadrat(cli: WarmCLI, args: list[str]) -> subprocess.CompletedProcess[str]:
    """``python -m quadrat ARGS`` in a new process (forked from one that imported quadrat)."""
    return cli.run(args, _env(), timeout=HANG_SECONDS)


# --------------------------------------------------------------------------- state


def snapshot(db: Path, out: Path) -> dict[str, Any]:
    """What the project and the export folder hold, in a form to compare."""
    from quadrat.store import queries
    from quadrat.store.features import load_features

    state: dict[str, Any] = {}
    with quadrat.Project.open(db) as project:
        src = project.source("reef")
        state["counts"] = src.counts()
        table = src.annotations()
        columns = [c for c in ("image", "row", "column", "label", "status") if c in table]
        state["annotations"] = sorted(
            tuple(str(v) for v in row) for row in table[columns].itertuples(index=False)
        )
        features: dict[int, bytes] = {}
        with project.store.session() as session:
            points = queries.point_counts(session, src.id)
            for key, _name in queries.stored_extractors(session, src.id):
                sizes = queries.stored_block_sizes(session, src.id, key)
                # whole blocks only: a block holds every point of its image
                assert all(points.get(i) == n for i, n in sizes.items()), (key, sizes, points)
                matrix = load_features(session, key, source_id=src.id, dtype="stored")
                features.update(
                    (int(p), row.tobytes())
                    for p, row in zip(matrix.point_ids, matrix.features, strict=True)
                )
        state["features"] = features
        state["classifiers"] = [
            (c.kind, c.extractor_key, c.accepted, c.n_images, c.n_train, c.n_val, c.accuracy)
            for c in src.classifiers()
        ]
    export = out / "a.csv"
    state["export"] = export.read_bytes() if export.exists() else None
    return state


def _copy_project(db: Path, to: Path) -> Path:
    """A copy of a (killed) project with its ``-wal``, to inspect without touching it."""
    to.mkdir()
    for suffix in ("", "-wal"):
        part = db.with_name(db.name + suffix)
        if part.exists():
            shutil.copyfile(part, to / part.name)
    return to / db.name


@pytest.fixture(scope="module")
def stages(
    survey_template: DemoSurvey, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The project before each step: labelled (labelset only), imported, extracted."""
    root = tmp_path_factory.mktemp("kill-stages")
    made: dict[str, Path] = {}
    db = root / "work.db"
    with quadrat.Project.create(db) as project:
        src = project.create_source("reef", labelset=survey_template.labelset_csv)
    for stage in ("labelled", "imported", "extracted"):
        with quadrat.Project.open(db) as project:
            src = project.source("reef")
            if stage == "imported":
                src.import_annotations(
                    survey_template.annotations_csv, survey_template.annotated_dir
                )
            elif stage == "extracted":
                src.extract("texture", workers=1)
        assert not db.with_name(db.name + "-wal").exists()  # closed: one file holds it all
        made[stage] = root / f"{stage}.db"
        shutil.copyfile(db, made[stage])
    return made


@pytest.fixture(scope="module")
def references(
    stages: dict[str, Path],
    survey_template: DemoSurvey,
    tmp_path_factory: pytest.TempPathFactory,
    warm_cli: WarmCLI,
) -> Callable[[str], tuple[dict[str, Any], dict[str, Any]]]:
    """``(before, after)`` of an uninterrupted run of a step, made on first use."""
    made: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}

    def reference(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        if name not in made:
            step = STEPS[name]
            work = tmp_path_factory.mktemp(f"kill-reference-{name}")
            db, out = work / "p.db", work / "out"
            out.mkdir()
            shutil.copyfile(stages[step.stage], db)
            before = snapshot(db, out)
            result = _quadrat(warm_cli, step.args(db, out, survey_template))
            assert result.returncode == 0, result.stderr
            made[name] = (before, snapshot(db, out))
        return made[name]

    return reference


# --------------------------------------------------------------------------- killing


def _kill_from_inside(cli: WarmCLI, args: list[str], where: str) -> int:
    """``python -c BOOT quadrat ARGS``: the command kills itself at ``where``."""
    proc = cli.run(args, _env(QUADRAT_TEST_KILL=where), boot=BOOT, timeout=HANG_SECONDS)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode


def _writes_seen(db: Path, out: Path) -> int:
    """A number that grows as the process writes: the ``-wal`` size, the export's files."""
    wal = db.with_name(db.name + "-wal")
    try:
        size = wal.stat().st_size
    except FileNotFoundError:
        size = 0
    written = 0
    for entry in out.iterdir():
        try:
            written += 1 + entry.stat().st_size
        except FileNotFoundError:  # renamed meanwhile
            continue
    return size + written


def _kill_from_outside(cli: WarmCLI, args: list[str], db: Path, out: Path, which: str) -> int:
    """Start the command; SIGKILL it when it is seen writing the first or second time."""
    wanted = 1 if which == "signal-first" else 2
    proc = cli.start(args, _env(), new_session=True)
    seen, last = 0, _writes_seen(db, out)
    deadline = time.monotonic() + HANG_SECONDS
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            now = _writes_seen(db, out)
            if now != last:
                seen, last = seen + 1, now
                if seen >= wanted:
                    os.killpg(proc.pid, signal.SIGKILL)
                    break
            time.sleep(0.001)
        done = proc.wait(timeout=HANG_SECONDS)
    finally:
        if proc.poll() is None:  # pragma: no cover - hung: do not leave it running
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode


def _check_killed_state(
    name: str, state: dict[str, Any], before: dict[str, Any], after: dict[str, Any]
) -> None:
    """The killed run left the state before it, or the finished one; an extraction may
    also have stored some images' blocks, each whole and as the finished run stores it."""
    if name != "extract":
        assert state in (before, after), {k: state[k] == after[k] for k in state}
        return
    assert {k: v for k, v in state.items() if k != "features"} == {
        k: v for k, v in before.items() if k != "features"
    }
    for point, data in state["features"].items():
        assert after["features"][point] == data, point


CASES = [(name, where) for name in STEPS for where in (*HOOKS[name], *SIGNALS)]


@pytest.mark.parametrize(("name", "where"), CASES, ids=[f"{n}-{w}" for n, w in CASES])
def test_kill_9_then_rerun(
    name: str,
    where: str,
    tmp_path: Path,
    stages: dict[str, Path],
    references: Callable[[str], tuple[dict[str, Any], dict[str, Any]]],
    survey_template: DemoSurvey,
    warm_cli: WarmCLI,
) -> None:
    step = STEPS[name]
    before, after = references(name)
    work = tmp_path / "project"
    work.mkdir()
    db, out = work / "p.db", tmp_path / "out"
    out.mkdir()
    shutil.copyfile(stages[step.stage], db)
    args = step.args(db, out, survey_template)

    if where.startswith("signal"):
        code = _kill_from_outside(warm_cli, args, db, out, where)
        assert code in (0, -signal.SIGKILL), code
    else:
        assert _kill_from_inside(warm_cli, args, where) == -signal.SIGKILL

    # The project opens (on a copy: the rerun must meet the state the kill left).
    killed = snapshot(_copy_project(db, tmp_path / "inspect"), out)
    _check_killed_state(name, killed, before, after)
    for entry in out.iterdir():  # the complete export, or temporary files
        assert entry.name == "a.csv" or TEMPORARY_NAME.match(entry.name), entry

    rerun = _quadrat(warm_cli, args)
    finished = killed == after
    expected = step.done_code if finished else 0
    assert rerun.returncode == expected, (finished, rerun.stdout, rerun.stderr)
    assert "Traceback" not in rerun.stderr, rerun.stderr
    if rerun.returncode:
        lines = rerun.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(("error:", "nothing to do:")), lines
    assert snapshot(db, out) == after
    assert [p.name for p in out.iterdir()] == (["a.csv"] if name == "export" else [])
    assert [p.name for p in work.iterdir()] == ["p.db"]  # no -wal, -shm or temporaries
