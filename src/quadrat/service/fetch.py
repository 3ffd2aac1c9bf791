"""The pixels a deploy request names: by http(s) URL, by path under a folder, or uploaded.

A URL comes from a client, and the server fetches it from inside its own network, so a
URL is a way to make the server reach places the client cannot (server-side request
forgery). What this module allows:

- ``http://`` and ``https://`` only; a redirect is followed only to ``http(s)`` and its
  target is checked again like the first URL (at most :data:`MAX_REDIRECTS`).
- Every address the host name resolves to must be public: loopback, private, link-local,
  multicast, reserved and unspecified addresses are refused unless the server allows
  them (``ServiceSettings.allow_private_urls``, for tests and closed labs). The check is
  made on the resolved addresses and the connection goes to a checked address, so a DNS
  answer that changes between check and connect (rebinding) gains nothing.
- A total deadline (``Limits.download_seconds``, enforced by a watchdog that closes the
  socket, not only per read), a byte cap (the smaller of ``Limits.download_bytes`` and
  ``Limits.image_file_bytes``) and a pixel cap (``Limits.pixels_per_image``, checked on
  the header before any pixel is decoded).
- No proxies from the environment (a proxy would connect on our behalf, unchecked).

The download itself is :func:`quadrat.datasets.download.http.fetch_once` (its error
mapping, content-type check and capped read) with a guarded opener. A name without a
scheme is a path under ``ServiceSettings.image_folder``
(:func:`quadrat.io.paths.resolve_under`); ``upload:<sha256>`` names bytes a client
uploaded with its request (:mod:`quadrat.service.uploads`).
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import ipaddress
import re
import socket
import ssl
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from io import BytesIO
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from quadrat.errors import FetchError, ImageError, InputError, LimitError, NotFoundError
from quadrat.limits import Limits
from quadrat.service.uploads import UPLOAD_PREFIX, upload_path

if TYPE_CHECKING:
    from quadrat.service.settings import ServiceSettings

#: Redirects followed for one image.
MAX_REDIRECTS = 5
_SCHEMES = ("http", "https")


# ----------------------------------------------------------------------------- addresses


def address_problem(address: str) -> str | None:
    """Why a server must not connect to ``address`` on a client's behalf (None: public)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "a reserved address"  # shared (carrier-grade NAT), documentation, ...
    return None


def resolve_checked(host: str, port: int, *, allow_private: bool) -> list[tuple[Any, ...]]:
    """``getaddrinfo`` for a TCP connection, refused when any address is not public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError(f"cannot resolve host {host!r}: {exc.strerror}", value=host) from exc
    if not allow_private:
        for *_, sockaddr in infos:
            problem = address_problem(str(sockaddr[0]))
            if problem is not None:
                raise FetchError(
                    f"host {host!r} resolves to {sockaddr[0]}, {problem}; the server does not "
                    "fetch from private networks (setting allow_private_urls)",
                    value=host,
                )
    return infos


class _Fetch:
    """One fetch's state: its policy, deadline and open sockets (for the watchdog)."""

    def __init__(self, allow_private: bool, deadline: float) -> None:
        self.allow_private = allow_private
        self.deadline = deadline
        self.stop_at = time.monotonic() + deadline
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def remaining(self) -> float:
        left = self.stop_at - time.monotonic()
        if left <= 0:
            raise self.timeout_error()
        return left

    def timeout_error(self) -> FetchError:
        return FetchError(f"not complete after the total deadline of {self.deadline:g} s")

    def connect(self, host: str, port: int) -> socket.socket:
        last: OSError | None = None
        for family, kind, proto, _, sockaddr in resolve_checked(
            host, port, allow_private=self.allow_private
        ):
            sock = socket.socket(family, kind, proto)
            with self._lock:
                self._sockets.append(sock)
                if self.expired:
                    raise self.timeout_error()
            try:
                sock.settimeout(self.remaining())
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                last = exc
                sock.close()
        raise last if last is not None else OSError(f"no address for {host!r}")

    def expire(self) -> None:
        """The watchdog: past the deadline, cut every socket so no read can go on."""
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class _GuardedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, fetch: _Fetch, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fetch = fetch

    def connect(self) -> None:
        self.sock = self._fetch.connect(self.host, self.port)


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, fetch: _Fetch, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fetch = fetch

    def connect(self) -> None:
        sock = self._fetch.connect(self.host, self.port)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, fetch: _Fetch) -> None:
        super().__init__()
        self._fetch = fetch

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_GuardedHTTPConnection, fetch=self._fetch), req)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, fetch: _Fetch) -> None:
        super().__init__(context=_ssl_context())
        self._fetch = fetch

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(
            functools.partial(_GuardedHTTPSConnection, fetch=self._fetch),
            req,
            context=_ssl_context(),
        )


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects to http(s) only, and few of them (the target's address is checked on connect)."""

    max_redirections = MAX_REDIRECTS

    def http_error_302(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Any
    ) -> Any:
        target = headers.get("location") or headers.get("uri")
        if target:
            self._check(urllib.parse.urljoin(req.full_url, target))
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    @staticmethod
    def _check(newurl: str) -> None:
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in _SCHEMES:
            raise FetchError(
                f"redirected to {newurl!r}; only http and https URLs are followed",
                value=newurl,
            )

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        self._check(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def download(url: str, *, allow_private: bool, limits: Limits) -> bytes:
    """The bytes at an http(s) URL, under the rules in the module docstring."""
    from quadrat.datasets.download.http import fetch_once
    from quadrat.datasets.download.options import DownloadOptions

    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in _SCHEMES:
        raise FetchError(f"only http and https URLs can be fetched, not {scheme!r}", value=url)
    deadline = float(limits.download_seconds)
    fetch = _Fetch(allow_private, deadline)
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.UnknownHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
        _CheckedRedirects(),
        _GuardedHTTPHandler(fetch),
        _GuardedHTTPSHandler(fetch),
    ):
        opener.add_handler(handler)
    options = DownloadOptions(
        timeout=deadline,
        retries=0,
        deadline=deadline,
        max_bytes=min(int(limits.download_bytes), int(limits.image_file_bytes)),
        user_agent="quadrat-serve",
    )
    watchdog = threading.Timer(deadline, fetch.expire)
    watchdog.daemon = True
    watchdog.start()
    try:
        return fetch_once(url, options, opener=opener)
    except FetchError:
        if fetch.expired:
            raise fetch.timeout_error() from None
        raise
    finally:
        watchdog.cancel()


# ----------------------------------------------------------------------------- decoding


def check_header(data: bytes | Path, limits: Limits) -> tuple[int, int]:
    """Width and height from the header; refuses a file or image over the limits."""
    size = data.stat().st_size if isinstance(data, Path) else len(data)
    limits.check("image_file_bytes", size, what="image file is too large (bytes)")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(data if isinstance(data, Path) else BytesIO(data)) as im:
            width, height = im.size
    except Image.DecompressionBombError as exc:
        raise LimitError(
            f"image too large to decode safely ({exc}); over the limit pixels_per_image",
            param="limits",
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageError("not an image that can be decoded") from exc
    except OSError as exc:
        raise ImageError(f"cannot read image: {exc}") from exc
    limits.check("pixels_per_image", width * height, what=f"image has {width}x{height} pixels")
    return int(width), int(height)


def decode(data: bytes | Path, limits: Limits) -> np.ndarray:
    """(H, W, 3) uint8 RGB pixels as stored, after the header checks of :func:`check_header`.

    Decoding is :func:`quadrat.io.images.load_rgb` (its mode conversions and truncation
    check); bytes go through a temporary file for it.
    """
    from quadrat.io.images import load_rgb

    check_header(data, limits)
    if isinstance(data, Path):
        return _load(load_rgb, data)
    with tempfile.TemporaryDirectory(prefix="quadrat-deploy-") as folder:
        path = Path(folder) / "image"
        path.write_bytes(data)
        return _load(load_rgb, path)


def _load(load_rgb: Any, path: Path) -> np.ndarray:
    try:
        return np.asarray(load_rgb(path))
    except ImageError as exc:
        raise ImageError(exc.message) from exc  # without the temporary file's name


# ----------------------------------------------------------------------------- entry point


def has_scheme(url: str) -> bool:
    """Whether ``url`` names a scheme (``http:``, ``file:``...), not a relative path."""
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", url))


def load_image(url: str, settings: ServiceSettings) -> np.ndarray:
    """The RGB pixels a deploy request's ``url`` names (see the module docstring)."""
    limits = settings.limits
    if url.startswith(UPLOAD_PREFIX):
        return decode(upload_path(settings, url), limits)
    if not has_scheme(url):
        if settings.image_folder is None:
            raise InputError(
                f"{url!r} is not an http(s) URL, and this server has no image folder",
                value=url,
                param="url",
            )
        from quadrat.io.paths import resolve_under

        path = resolve_under(settings.image_folder, url, param="url")
        if not path.is_file():
            raise NotFoundError("no such image in the image folder", value=url, param="url")
        return decode(path, limits)
    data = download(url, allow_private=settings.allow_private_urls, limits=limits)
    return decode(data, limits)


__all__ = [
    "MAX_REDIRECTS",
    "address_problem",
    "check_header",
    "decode",
    "download",
    "has_scheme",
    "load_image",
    "resolve_checked",
]
