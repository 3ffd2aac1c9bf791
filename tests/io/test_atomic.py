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
