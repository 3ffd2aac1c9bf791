"""A local HTTP server (127.0.0.1 only) that serves generated images and misbehaves on cue.

Download tests need the failure modes of a real image host without the internet:
``FixtureServer`` maps a path to a *script* of replies, played one per request (the last
one repeats), so "500 twice, then the image" or "slow, then fine" is one line of setup:

    with FixtureServer() as server:
        server.route("/a.jpg", [Reply.status(500), Reply.ok(jpeg_bytes(0))])
        url = server.url("/a.jpg")

Reply kinds: ``ok`` (the body), ``status`` (an error code, optional headers such as
Retry-After), ``slow`` (the body after a delay, to trip client timeouts), ``truncated``
(full Content-Length but the connection closes part-way). Unknown paths answer 404.
``server.hits[path]`` counts requests so tests can check retry behaviour.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from PIL import Image


def jpeg_bytes(seed: int, width: int = 64, height: int = 48, quality: int = 90) -> bytes:
    """A small, deterministic JPEG with photo-like (blocky, smooth) content."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(height // 8 + 1, width // 8 + 1, 3))
    pixels = np.repeat(np.repeat(small, 8, axis=0), 8, axis=1)[:height, :width]
    out = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(out, "JPEG", quality=quality)
    return out.getvalue()


@dataclass(frozen=True)
class Reply:
    """One scripted reply."""

    kind: str
    body: bytes = b""
    code: int = 200
    delay: float = 0.0
    cut: float = 0.5
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def ok(cls, body: bytes) -> Reply:
        return cls("ok", body=body)

    @classmethod
    def status(cls, code: int, headers: dict[str, str] | None = None) -> Reply:
        return cls("status", code=code, body=f"error {code}".encode(), headers=headers or {})

    @classmethod
    def slow(cls, body: bytes, delay: float) -> Reply:
        return cls("slow", body=body, delay=delay)

    @classmethod
    def truncated(cls, body: bytes, cut: float = 0.5) -> Reply:
        return cls("truncated", body=body, cut=cut)


class FixtureServer:
    """A threaded HTTP server on 127.0.0.1 with a free port, stopped on context exit."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                reply = server._next_reply(self.path)
                # The client may give up first (timeout): expected in slow-reply tests.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._answer(reply)

            def _answer(self, reply: Reply | None) -> None:
                if reply is None:
                    reply = Reply.status(404)
                if reply.kind == "slow":
                    time.sleep(reply.delay)
                code = reply.code if reply.kind == "status" else 200
                self.send_response(code)
                content_type = "text/plain" if reply.kind == "status" else "image/jpeg"
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.kind == "truncated":
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                body = reply.body
                if reply.kind == "truncated":
                    body = body[: int(len(body) * reply.cut)]
                self.wfile.write(body)
                self.wfile.flush()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, replies: list[Reply]) -> str:
        """Script ``path``'s replies; returns its URL."""
        with self._lock:
            self.routes[path] = list(replies)
        return self.url(path)

    def _next_reply(self, path: str) -> Reply | None:
        with self._lock:
            self.hits[path] += 1
            script = self.routes.get(path)
            if not script:
                return None
            return script.pop(0) if len(script) > 1 else script[0]

    def __enter__(self) -> FixtureServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def serve_fixture_survey(
    csv: str,
    n_images: int,
    *,
    delay: float = 0.0,
    failing_every: int = 0,
    size: int = 1024,
    folder: str | None = None,
) -> None:
    """Serve ``n_images`` JPEGs until interrupted, and write the table that lists them to
    ``csv``; every ``failing_every``-th image answers 404. The JPEGs are generated
    (``size`` x 3/4 ``size``) or, with ``folder``, that folder's JPEGs in turn (real photos;
    read in place, never copied). For measuring ``quadrat dataset download`` without the
    internet (see docs/datasets-download.md)."""
    from pathlib import Path

    import pandas as pd

    photos = sorted(Path(folder).glob("*.jpg")) if folder else []
    if folder and not photos:
        raise SystemExit(f"no .jpg files in {folder}")
    bodies = [p.read_bytes() for p in photos] or [
        jpeg_bytes(i, width=size, height=size * 3 // 4) for i in range(16)
    ]
    with FixtureServer() as server:
        rows = []
        for i in range(n_images):
            path = f"/bench/site{i % 4}/img{i:05d}.jpg"
            if not (failing_every and i % failing_every == failing_every - 1):
                body = bodies[i % len(bodies)]
                server.route(path, [Reply.slow(body, delay) if delay else Reply.ok(body)])
            rows.append(
                {
                    "dataset": "bench",
                    "site": f"site{i % 4}",
                    "image": f"img{i:05d}.jpg",
                    "url": server.url(path),
                }
            )
        pd.DataFrame(rows).to_csv(csv, index=False)
        print(f"serving {n_images} images on {server.url('/')}; table in {csv}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=serve_fixture_survey.__doc__)
    parser.add_argument("csv")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each reply")
    parser.add_argument("--failing-every", type=int, default=0)
    parser.add_argument("--size", type=int, default=1024, help="image width in pixels")
    parser.add_argument("--folder", help="serve this folder's JPEGs instead of generated ones")
    args = parser.parse_args()
    serve_fixture_survey(
        args.csv,
        args.images,
        delay=args.delay,
        failing_every=args.failing_every,
        size=args.size,
        folder=args.folder,
    )
