"""Atomic writes: whole files or nothing, and no temporary files left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from quadrat.io.atomic import atomic_file, atomic_path, write_text


def test_a_finished_write_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"
    write_text(target, "old")
    with atomic_file(target, "w", encoding="utf-8") as handle:
        handle.write("new")
        assert target.read_text() == "old"  # not visible before the end
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


@pytest.mark.parametrize("opener", ["file", "path"])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, opener: str
) -> None:
    target = tmp_path / "out.csv"
    write_text(target, "a,b\n1,2\n")
    with pytest.raises(RuntimeError, match="disk on fire"):
        if opener == "file":
            with atomic_file(target, "w") as handle:
                handle.write("half")
                raise RuntimeError("disk on fire")
        else:
            with atomic_path(target) as tmp:
                tmp.write_text("half")
                raise RuntimeError("disk on fire")
    assert target.read_text() == "a,b\n1,2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


@pytest.mark.parametrize(("umask", "expected"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_files_honour_the_umask(tmp_path: Path, umask: int, expected: int) -> None:
    """Outputs are readable like any file the user creates (mkstemp alone gives 0600)."""
    import os
    import stat

    from quadrat.io.atomic import current_umask, write_bytes

    previous = os.umask(umask)
    try:
        assert current_umask() == umask
        text = write_text(tmp_path / "report.txt", "x")
        data = write_bytes(tmp_path / "image.jpg", b"x")
        with atomic_path(tmp_path / "table.parquet") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(previous)
    for path in (text, data, tmp_path / "table.parquet"):
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


def test_remove_stale_temporaries(tmp_path: Path) -> None:
    from quadrat.io.atomic import remove_stale_temporaries

    stale = tmp_path / ".a.jpg.abcd1234.tmp"
    stale.write_bytes(b"half")
    keep = tmp_path / "a.jpg"
    keep.write_bytes(b"whole")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert [p.name for p in tmp_path.iterdir()] == ["a.jpg"]
