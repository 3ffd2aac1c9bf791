"""A throwaway PostgreSQL cluster for the tests (``initdb`` + ``pg_ctl`` in a temp folder).

Used by the ``postgres_server`` fixture (tests/conftest.py) when
``QUADRAT_TEST_POSTGRES_URL`` is not set (CI sets it: ``.ci/run`` starts one cluster for
the whole run). The cluster listens on 127.0.0.1 only, on a free port, trusts local
connections (nothing else can reach it), and skips fsync: its data are thrown away.

``initdb`` refuses to run as root, so as root (CI, containers) the cluster runs as the
``postgres`` user when there is one, else ``nobody``, in a folder that user owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

#: Settings for a cluster whose data are thrown away: no waiting for the disk.
FAST = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


def find_bin() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: on PATH, else Debian's /usr/lib/postgresql."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> str | None:
    """The user to run PostgreSQL as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root and there is neither a postgres nor a nobody user")


class Cluster:
    """``start()`` a cluster and get its superuser URL; ``stop()`` removes everything."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.user = _run_as()
        self.root = Path(tempfile.mkdtemp(prefix="quadrat-pg-"))
        self.data = self.root / "data"
        self.port = 0
        self.started = False

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        return subprocess.run(
            list(args),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.root,
            env={**os.environ, "LC_ALL": "C", "PGTZ": "UTC"},
            **kwargs,  # type: ignore[call-overload]
        )

    def start(self) -> str:
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        done = self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "--locale=C",
            "-E",
            "UTF8",
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr[-2000:]}")
        error = ""
        for _ in range(5):  # another process may take the free port first
            self.port = free_port()
            options = f"-h 127.0.0.1 -p {self.port} -k {self.root} {FAST}"
            done = self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.root / "log"),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            )
            if done.returncode == 0:
                self.started = True
                return self.url
            log = self.root / "log"
            error = done.stderr + (log.read_text(errors="replace")[-2000:] if log.exists() else "")
            time.sleep(0.2)
        raise RuntimeError(f"pg_ctl start failed: {error}")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        if self.started:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)
