"""install.sh stops with a clear error instead of installing into an interpreter that
cannot run pyspacer (it used to fall back to a bare system python3, then fail with
ModuleNotFoundError: No module named 'PIL')."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("install.sh")

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _run(python: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": python}
    return subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "target")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_missing_interpreter_is_named_and_nothing_is_installed(tmp_path: Path) -> None:
    done = _run(str(tmp_path / "no-such-python"), tmp_path)
    assert done.returncode == 2
    assert "no-such-python does not exist" in done.stderr
    assert "--venv" in done.stderr  # the way out: pyspacer's own virtualenv
    assert not (tmp_path / "target").exists()


def test_interpreter_without_pillow_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexit 1\n")  # every import fails, as PIL on a bare python3
    fake.chmod(0o755)
    done = _run(str(fake), tmp_path)
    assert done.returncode == 2
    assert "lacks one of Pillow" in done.stderr
    assert not (tmp_path / "target").exists()
