"""Run the ``quadrat`` CLI in a fresh process without paying its imports each time.

Why: these tests run the real command in its own process dozens of times (kill it, fill
its disk, make its project read-only), and most of each run was Python importing pandas,
scikit-learn, SQLAlchemy and quadrat (2-3 s of a 3-4 s ``quadrat train`` on an idle
machine, three times that under CI's load). A *zygote* (one ``python`` process per test
session) imports them once; every command is then a ``fork`` of it: its own process, pid
and file descriptors, stdout and stderr as pipes, the environment, argv, file size limit
and session it is given, exit status or killing signal reported as by ``subprocess``,
and ``atexit`` handlers run on a normal exit, as ``python -m quadrat`` would. What the
child runs is ``runpy.run_module("quadrat")``, or a test's boot script (``python -c``) that
patches something and then runs it; only the imports happened earlier, in the zygote.

The zygote runs no test code and holds no threads, so forking it is safe.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import IO, Any

#: What ``import``, ``extract``, ``train``, ``export`` and ``report`` import (measured with
#: ``python -X importtime``), preloaded by the zygote. A module missing here is simply
#: imported by the command itself, as usual.
PRELOAD = (
    "quadrat.cli",
    "quadrat.cli.workflow",
    "quadrat.cli.machine",
    "quadrat.cli.formats",
    "quadrat.cli.results",
    "quadrat.cli.classifiers",
    "quadrat.workflow.source",
    "quadrat.workflow.importing",
    "quadrat.workflow.extract",
    "quadrat.workflow.train",
    "quadrat.workflow.classify",
    "quadrat.workflow.cover",
    "quadrat.workflow.exports",
    "quadrat.extraction.cpu",
    "quadrat.extractors.texture",
    "quadrat.classifiers.training",
    "quadrat.classifiers.metrics",
    "quadrat.reports.summary",
    "quadrat.reports.plots",
    "quadrat.reports.quantify",
    "quadrat.reports.cover_uncertainty",
    "quadrat.store.queries",
    "quadrat.store.features",
    "quadrat.store.block_writer",
    "quadrat.io.coralnet",
)

#: The zygote (``python -c ZYGOTE``): requests on stdin, one JSON line each; for each, a
#: line ``{"pid": ...}`` once forked and ``{"code": ..., "stdout": ..., "stderr": ...}``
#: once the child ended and its pipes closed.
ZYGOTE = r"""
import atexit, builtins, importlib, json, os, resource, runpy, selectors, signal, sys
import traceback

for _name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(_name)
    except ImportError:
        pass

_reply = os.fdopen(os.dup(1), "w")
_requests = os.fdopen(os.dup(0), "rb", buffering=0)


def _exit_code(exc):
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _child(request, out_w, err_w, ready_w):
    os.close(_reply.fileno())
    os.close(_requests.fileno())
    if request["new_session"]:
        os.setsid()
    os.close(ready_w)  # the zygote reports the pid once the session exists
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    for fd in (null, out_w, err_w):
        os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    if request["fsize"] is not None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (request["fsize"], request["fsize"]))
    code = 0
    try:
        if request["boot"] is None:
            sys.argv = ["quadrat", *request["args"]]
            runpy.run_module("quadrat", run_name="__main__", alter_sys=True)
        else:
            sys.argv = ["-c", "quadrat", *request["args"]]
            exec(compile(request["boot"], "<string>", "exec"), {"__name__": "__main__"})
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


while True:
    line = _requests.readline()
    if not line:
        break
    request = json.loads(line)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    ready_r, ready_w = os.pipe()
    _reply.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(out_r)
        os.close(err_r)
        os.close(ready_r)
        _child(request, out_w, err_w, ready_w)
    os.close(out_w)
    os.close(err_w)
    os.close(ready_w)
    os.read(ready_r, 1)
    os.close(ready_r)
    _reply.write(json.dumps({"pid": pid}) + "\n")
    _reply.flush()
    chunks = {out_r: [], err_r: []}
    with selectors.DefaultSelector() as selector:
        for fd in chunks:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            for key, _ in selector.select():
                data = os.read(key.fd, 65536)
                if data:
                    chunks[key.fd].append(data)
                else:
                    selector.unregister(key.fd)
                    os.close(key.fd)
    _, status = os.waitpid(pid, 0)
    text = {fd: b"".join(parts).decode("utf-8", "replace") for fd, parts in chunks.items()}
    code = os.waitstatus_to_exitcode(status)
    end = {"code": code, "stdout": text[out_r], "stderr": text[err_r]}
    _reply.write(json.dumps(end) + "\n")
    _reply.flush()
"""


@dataclass
class Running:
    """A command forked by the zygote: its pid, and its end once :meth:`poll` saw it."""

    pid: int
    args: list[str]
    zygote: WarmCLI
    result: subprocess.CompletedProcess[str] | None = None

    def poll(self) -> int | None:
        """Its exit status (negative: the killing signal), None while it runs."""
        if self.result is None:
            self.result = self.zygote._finished(self, timeout=0.0)
        return None if self.result is None else self.result.returncode

    def wait(self, timeout: float) -> subprocess.CompletedProcess[str]:
        if self.result is None:
            self.result = self.zygote._finished(self, timeout=timeout)
        if self.result is None:
            os.kill(self.pid, signal.SIGKILL)
            self.result = self.zygote._finished(self, timeout=60.0)
            raise subprocess.TimeoutExpired(["quadrat", *self.args], timeout)
        return self.result


class WarmCLI:
    """The zygote process; :meth:`run` and :meth:`start` run one command at a time."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE, json.dumps(PRELOAD)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            bufsize=0,
        )
        self._buffer = b""  # read from the zygote, not yet a whole line
        self._running: Running | None = None

    def _send(self, request: dict[str, Any]) -> None:
        stdin: IO[bytes] | None = self.process.stdin
        assert stdin is not None
        stdin.write(json.dumps(request).encode() + b"\n")
        stdin.flush()

    def _line(self, timeout: float) -> dict[str, Any] | None:
        """The zygote's next line, None if none came within ``timeout`` seconds."""
        stdout: IO[bytes] | None = self.process.stdout
        assert stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return None
            data = os.read(stdout.fileno(), 1 << 20)
            if not data:
                raise RuntimeError(f"the CLI zygote exited ({self.process.wait()})")
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        value: dict[str, Any] = json.loads(line)
        return value

    def start(
        self,
        args: list[str],
        env: dict[str, str],
        *,
        boot: str | None = None,
        fsize: int | None = None,
        new_session: bool = False,
    ) -> Running:
        """Fork ``quadrat ARGS`` (or ``python -c BOOT quadrat ARGS``) with ``env``;
        ``fsize``: a file size limit (``ulimit -f``, SIGXFSZ ignored)."""
        if self._running is not None:  # a test failed half-way: end what it left running
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._running.pid, signal.SIGKILL)
            self._running.wait(timeout=60.0)
        self._send(
            {"args": args, "env": env, "boot": boot, "fsize": fsize, "new_session": new_session}
        )
        started = self._line(timeout=120.0)
        assert started is not None, "the CLI zygote did not fork in 120 s"
        self._running = Running(int(started["pid"]), args, self)
        return self._running

    def _finished(
        self, running: Running, timeout: float
    ) -> subprocess.CompletedProcess[str] | None:
        assert self._running is running
        end = self._line(timeout)
        if end is None:
            return None
        self._running = None
        return subprocess.CompletedProcess(
            ["quadrat", *running.args], int(end["code"]), str(end["stdout"]), str(end["stderr"])
        )

    def run(
        self,
        args: list[str],
        env: dict[str, str],
        *,
        timeout: float,
        boot: str | None = None,
        fsize: int | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """``subprocess.run([python, -m, quadrat, *args], capture_output=True, text=True)``."""
        return self.start(args, env, boot=boot, fsize=fsize).wait(timeout)

    def close(self) -> None:
        if self._running is not None and self._running.result is None:
            os.kill(self._running.pid, signal.SIGKILL)
        stdin = self.process.stdin
        if stdin is not None:
            stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
