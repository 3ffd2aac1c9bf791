"""WebDataset-style tar shards: write them atomically, list and read them back.

The convention (the one the ``webdataset`` package reads) is a plain, uncompressed tar in
which consecutive members sharing a *key* form one sample: ``<key>.jpg`` (the image bytes),
``<key>.json`` (its metadata) and optionally ``<key>.cls`` (an integer class as text).
Shards are named ``<prefix>-000000.tar``, ``<prefix>-000001.tar``, ... and hold at most a
fixed number of samples.

The standard library's :mod:`tarfile` writes exactly this format, so no extra dependency is
needed. A shard is written under a hidden temporary name and renamed when it is complete,
so a reader (or a resumed download) never sees half a shard: after a crash only the
temporary file is left, which :func:`remove_partial_shards` deletes.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quadrat.errors import InputError

SHARD_DIGITS = 6
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]+")
# A fixed mtime keeps shards byte-identical across runs with the same content.
_MTIME = 0


def shard_name(prefix: str, index: int) -> str:
    """``prefix-000003.tar``: zero-padded so shards sort and brace-expand in order."""
    return f"{prefix}-{index:0{SHARD_DIGITS}d}.tar"


def _shard_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(prefix)}-(\d{{{SHARD_DIGITS}}})\.tar$")


def list_shards(directory: str | Path, prefix: str) -> list[Path]:
    """Completed shards in ``directory`` (temporary files excluded), in index order."""
    pattern = _shard_pattern(prefix)
    root = Path(directory)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_file() and pattern.match(p.name)]
    return sorted(found, key=lambda p: p.name)


def shard_index(path: Path, prefix: str) -> int:
    """The number in a shard's name."""
    match = _shard_pattern(prefix).match(path.name)
    if match is None:
        raise InputError(f"not a shard name: {path.name!r}", path=path, value=path.name)
    return int(match.group(1))


def _partial_name(prefix: str, index: int) -> str:
    # Hidden and without the .tar suffix, so globs such as prefix-*.tar never match it.
    return f".{shard_name(prefix, index)}.partial"


def remove_partial_shards(directory: str | Path, prefix: str) -> list[Path]:
    """Delete shards left half-written by a killed run; return what was deleted."""
    root = Path(directory)
    if not root.is_dir():
        return []
    pattern = re.compile(rf"^\.{re.escape(prefix)}-\d{{{SHARD_DIGITS}}}\.tar\.partial$")
    removed = [p for p in root.iterdir() if pattern.match(p.name)]
    for path in removed:
        path.unlink()
    return removed


def safe_key(text: str) -> str:
    """A sample key without dots or slashes (WebDataset splits key from extension at the
    first dot of the member's basename, so a dot inside a key would break the sample)."""
    key = _KEY_UNSAFE.sub("_", text).strip("_")
    if not key:
        raise InputError(f"cannot make a sample key from {text!r}", value=text)
    return key


@dataclass
class Sample:
    """One sample: its key and ``extension -> bytes`` (e.g. ``jpg``, ``json``, ``cls``)."""

    key: str
    parts: dict[str, bytes] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        """The decoded ``.json`` part (empty if the sample has none)."""
        raw = self.parts.get("json")
        return {} if raw is None else dict(json.loads(raw))


class ShardWriter:
    """Write samples into numbered shards of at most ``max_samples`` each.

    ``on_shard_done(path, keys)`` is called after each shard is renamed into place, which is
    where the caller records progress (the manifest) so a resumed run skips those keys.
    """

    def __init__(
        self,
        directory: str | Path,
        prefix: str = "shard",
        *,
        max_samples: int = 1000,
        start_index: int = 0,
        on_shard_done: Callable[[Path, list[str]], None] | None = None,
    ) -> None:
        if max_samples < 1:
            raise InputError(
                f"a shard must hold at least one sample, not {max_samples}", value=max_samples
            )
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.max_samples = max_samples
        self.next_index = start_index
        self.on_shard_done = on_shard_done
        self._tar: tarfile.TarFile | None = None
        self._partial: Path | None = None
        self._keys: list[str] = []
        self.written: list[Path] = []

    @property
    def current_shard(self) -> str:
        """Name the open (or next) shard will have once complete."""
        return shard_name(self.prefix, self.next_index)

    def write(self, sample: Sample) -> str:
        """Add one sample; returns the name of the shard it goes into."""
        if not sample.parts:
            raise InputError(f"sample {sample.key!r} has no parts", value=sample.key)
        if "." in sample.key or "/" in sample.key:
            raise InputError(
                f"a sample key may not contain '.' or '/': {sample.key!r}", value=sample.key
            )
        if self._tar is None:
            self._open()
        assert self._tar is not None
        name = self.current_shard
        # Sorted extensions keep every sample's members in one deterministic order.
        for extension in sorted(sample.parts):
            data = sample.parts[extension]
            info = tarfile.TarInfo(f"{sample.key}.{extension}")
            info.size = len(data)
            info.mtime = _MTIME
            info.mode = 0o644
            self._tar.addfile(info, io.BytesIO(data))
        self._keys.append(sample.key)
        if len(self._keys) >= self.max_samples:
            self.flush()
        return name

    def _open(self) -> None:
        self._partial = self.directory / _partial_name(self.prefix, self.next_index)
        # PAX (tarfile's default) allows member names longer than ustar's 100 bytes.
        self._tar = tarfile.open(self._partial, "w")  # noqa: SIM115 (closed in flush/abort)

    def flush(self) -> Path | None:
        """Close the open shard and rename it into place (no-op when none is open)."""
        if self._tar is None or self._partial is None:
            return None
        self._tar.close()
        with open(self._partial, "rb+") as handle:
            os.fsync(handle.fileno())
        final = self.directory / self.current_shard
        os.replace(self._partial, final)
        keys, self._keys = self._keys, []
        self._tar, self._partial = None, None
        self.next_index += 1
        self.written.append(final)
        if self.on_shard_done is not None:
            self.on_shard_done(final, keys)
        return final

    def abort(self) -> None:
        """Drop the open shard (its samples will be fetched again on resume)."""
        if self._tar is not None:
            self._tar.close()
        if self._partial is not None:
            self._partial.unlink(missing_ok=True)
        self._tar, self._partial, self._keys = None, None, []

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.flush()
        else:
            self.abort()


def split_member_name(name: str) -> tuple[str, str]:
    """``dir/abc.seg.png`` -> (``dir/abc``, ``seg.png``): WebDataset's key/extension rule."""
    directory, slash, base = name.rpartition("/")
    stem, _, extension = base.partition(".")
    return f"{directory}{slash}{stem}", extension


def read_shard(path: str | Path) -> Iterator[Sample]:
    """The samples of one shard, in order; a damaged tar raises :class:`InputError`."""
    path = Path(path)
    current: Sample | None = None
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                stem, extension = split_member_name(member.name)
                if not extension:
                    raise InputError(
                        f"tar member without an extension: {member.name!r}",
                        path=path,
                        value=member.name,
                    )
                handle = tar.extractfile(member)
                data = handle.read() if handle is not None else b""
                if current is None or current.key != stem:
                    if current is not None:
                        yield current
                    current = Sample(stem)
                current.parts[extension] = data
    except (tarfile.TarError, EOFError) as exc:
        raise InputError(f"damaged shard ({exc})", path=path) from exc
    if current is not None:
        yield current


def shard_keys(path: str | Path) -> list[str]:
    """Sample keys in a shard, reading headers only (tar lets us skip over the data)."""
    path = Path(path)
    keys: list[str] = []
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                key = split_member_name(member.name)[0]
                if not keys or keys[-1] != key:
                    keys.append(key)
    except (tarfile.TarError, EOFError) as exc:
        raise InputError(f"damaged shard ({exc})", path=path) from exc
    return keys
