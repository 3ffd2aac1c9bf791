"""A worker's heartbeat pid counts as alive only while its process runs: a zombie (exited,
not yet reaped, as after ``kill -9`` of its server) does not hold its job."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("huey")

from quadrat.service.queue import _pid_alive


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_zombie_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        assert _pid_alive(os.getpid())
        deadline = time.monotonic() + 60
        while Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child never exited"
            time.sleep(0.05)
        assert not _pid_alive(child.pid)  # exited, not reaped: a zombie
    finally:
        child.wait()
    assert not _pid_alive(child.pid)  # reaped: gone
