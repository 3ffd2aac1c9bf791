"""The forked CLI (tests/reliability/_warm_cli.py) behaves as ``python -m quadrat`` would:
its own process, exit status, killing signal, pipes, environment and file size limit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.reliability._warm_cli import WarmCLI

ENV = {**os.environ, "QUADRAT_NO_PROGRESS": "1", "COLUMNS": "200", "NO_COLOR": "1"}


def test_a_forked_command_ends_as_the_real_one(warm_cli: WarmCLI, tmp_path: Path) -> None:
    args = ["train", "-p", str(tmp_path / "missing.db")]
    real = subprocess.run(
        [sys.executable, "-m", "quadrat", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
        check=False,
    )
    forked = warm_cli.run(args, ENV, timeout=300)
    assert real.returncode != 0
    assert (forked.returncode, forked.stdout, forked.stderr) == (
        real.returncode,
        real.stdout,
        real.stderr,
    )


def test_boot_scripts_signals_limits_and_sessions(warm_cli: WarmCLI, tmp_path: Path) -> None:
    shown = warm_cli.run(
        [],
        {**ENV, "WARM_TEST": "seen"},
        boot="import os, sys; print(sys.argv, os.getpid(), os.environ['WARM_TEST'])",
        timeout=60,
    )
    argv, pid, value = shown.stdout.rsplit(" ", 2)
    assert (shown.returncode, argv, value.strip()) == (
        0,
        "['-c', 'quadrat']",
        "seen",
    )  # as python -c BOOT quadrat
    assert int(pid) not in (os.getpid(), warm_cli.process.pid)

    killed = warm_cli.run(
        [], ENV, boot="import os, signal; os.kill(os.getpid(), signal.SIGKILL)", timeout=60
    )
    assert killed.returncode == -signal.SIGKILL

    exited = warm_cli.run([], ENV, boot="raise SystemExit('no such thing')", timeout=60)
    assert (exited.returncode, exited.stderr) == (1, "no such thing\n")

    big = tmp_path / "big"
    limited = warm_cli.run(
        [], ENV, boot=f"open({str(big)!r}, 'wb').write(b'x' * 100_000)", fsize=4096, timeout=60
    )
    assert limited.returncode == 1 and "File too large" in limited.stderr
    assert big.stat().st_size == 4096

    slow = warm_cli.start([], ENV, boot="import time; time.sleep(60)", new_session=True)
    assert slow.poll() is None and os.getpgid(slow.pid) == slow.pid
    time.sleep(0.1)
    os.killpg(slow.pid, signal.SIGKILL)
    assert slow.wait(timeout=60).returncode == -signal.SIGKILL
