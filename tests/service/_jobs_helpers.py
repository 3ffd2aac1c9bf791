"""Helpers of the jobs tests (test_fetch, test_jobs, test_restart): a loopback server over
a folder, with redirects, slow bodies and bodies of no stated size; process trees."""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _Handler(SimpleHTTPRequestHandler):
    """Files of a folder, plus ``/redirect?to=URL``, ``/drip`` (a byte every 0.1 s for
    about 20 s) and ``/unsized?n=BYTES`` (a body with no Content-Length)."""

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parts.query)
        if parts.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", query["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if parts.path == "/drip":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "200")
            self.end_headers()
            try:
                for _ in range(200):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass
            return
        if parts.path == "/unsized":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Connection", "close")
            self.end_headers()
            with suppress(OSError):
                self.wfile.write(b"\0" * int(query["n"][0]))
            self.close_connection = True
            return
        super().do_GET()


@dataclass
class FolderServer:
    """A loopback HTTP server over ``folder``; ``url(name)`` is a file's URL."""

    folder: Path
    port: int = 0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"


@contextmanager
def folder_server(folder: Path) -> Iterator[FolderServer]:
    """Serve ``folder`` on 127.0.0.1 (a free port) until the block ends."""

    def handler(*args: object, **kwargs: object) -> _Handler:
        return _Handler(*args, directory=str(folder), **kwargs)  # type: ignore[arg-type]

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield FolderServer(folder, httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children...), from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
