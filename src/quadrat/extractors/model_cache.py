"""On-disk cache of converted OpenVINO networks, one entry per weights and versions.

Why: converting a PyTorch network to OpenVINO costs seconds and imports torch and timm
(about 650 MB and several seconds before the first patch); a cached entry loads in well
under a second without either. An entry is OpenVINO IR (``model.xml`` + ``model.bin``:
a graph description and raw weights, data only, nothing executed on load) and
``meta.json`` (what it was built from, the extractor config and key, the files' SHA-256).

An entry's name is the SHA-256 of its *recipe*: the extractor name, the weights file's
SHA-256 (or the seed of random weights), the input size, the numeric mode of the IR and
the versions of quadrat, OpenVINO, torch and timm. New weights or any new version give a
new entry; nothing is ever reused across them.

Writes are atomic (a temporary folder in the cache root, renamed into place when
complete); a missing, truncated or altered entry (hash mismatch, unreadable JSON,
OpenVINO refusing the IR) is deleted with a warning and rebuilt; a cache that cannot be
written (read-only, disk full) warns once and extraction goes on without it. Importing
this module imports neither torch nor OpenVINO.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from quadrat.errors import CacheEntryError

#: Bumped when the layout of an entry or the conversion changes.
CACHE_FORMAT = 1
#: Environment variable naming the cache root (default ``$XDG_CACHE_HOME/quadrat/openvino``,
#: else ``~/.cache/quadrat/openvino``); ``off`` (or ``0``) disables the cache.
CACHE_ENV = "QUADRAT_MODEL_CACHE"
#: Largest ``meta.json`` read (bytes); an entry's metadata is a few KB.
MAX_META_BYTES = 1 << 20
#: Temporary folders of killed writers older than this (seconds) are removed.
STALE_TEMPORARY_S = 3600.0
_HASH_CHUNK = 1 << 20


def default_root() -> Path | None:
    """The cache root from ``$QUADRAT_MODEL_CACHE`` or the XDG default; ``None`` when off."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env.lower() in ("off", "0", "false", "no"):
        return None
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "quadrat" / "openvino"


def resolve_root(model_cache: str | Path | bool | None) -> Path | None:
    """``model_cache`` of ``create_extractor``: a folder, False (off), None/True (default)."""
    if model_cache is False:
        return None
    if model_cache is None or model_cache is True:
        return default_root()
    return Path(model_cache).expanduser()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, streamed (weights files reach hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def package_version(name: str) -> str:
    """An installed distribution's version without importing it ("" when absent)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""


def versions() -> dict[str, str]:
    """Versions whose change may change a converted network."""
    return {
        "cache_format": str(CACHE_FORMAT),
        "quadrat": package_version("quadrat"),
        "openvino": package_version("openvino"),
        "torch": package_version("torch"),
        "timm": package_version("timm"),
        "torchvision": package_version("torchvision"),
    }


@dataclass(frozen=True)
class Recipe:
    """What an IR is built from; its digest names the entry."""

    name: str  # extractor name as asked (a backbone file: "file:" + its SHA-256)
    weights: str  # "sha256:<hex>" or "random:<seed>"
    input_size: int
    ir_mode: str  # "f32" (bf16 is a compile-time hint and shares the f32 IR), "int8:<calib>"
    versions: dict[str, str] = field(default_factory=lambda: versions())

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "weights": self.weights,
            "input_size": self.input_size,
            "ir_mode": self.ir_mode,
            "versions": dict(sorted(self.versions.items())),
        }

    @property
    def digest(self) -> str:
        text = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    """A verified cache entry: where its IR lies and what it describes."""

    folder: Path
    config: dict[str, Any]  # ExtractorConfig fields
    weights_tag: str

    @property
    def xml(self) -> Path:
        return self.folder / "model.xml"

    @property
    def bin(self) -> Path:
        return self.folder / "model.bin"


class ModelCache:
    """The cache under ``root``; every method swallows I/O trouble into warnings."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, recipe: Recipe) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in recipe.name)[:40]
        return self.root / f"{safe}-{recipe.digest[:24]}"

    def load(self, recipe: Recipe) -> Entry | None:
        """The verified entry of ``recipe``, or None (absent; a bad one is deleted, warned)."""
        folder = self.folder(recipe)
        if not folder.exists():
            return None
        try:
            return self._verify(folder, recipe)
        except CacheEntryError as exc:
            self.discard(folder, str(exc))
            return None

    def _verify(self, folder: Path, recipe: Recipe) -> Entry:
        meta_path = folder / "meta.json"
        try:
            if meta_path.stat().st_size > MAX_META_BYTES:
                raise CacheEntryError(f"meta.json larger than {MAX_META_BYTES} bytes")
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CacheEntryError(f"meta.json unreadable ({exc})") from exc
        if not isinstance(meta, dict) or meta.get("recipe") != recipe.as_dict():
            raise CacheEntryError("meta.json does not describe this network")
        files = meta.get("files")
        config = meta.get("config")
        tag = meta.get("weights_tag")
        if not isinstance(files, dict) or not isinstance(config, dict) or not isinstance(tag, str):
            raise CacheEntryError("meta.json lacks files, config or weights_tag")
        for name in ("model.xml", "model.bin"):
            try:
                actual = file_sha256(folder / name)
            except OSError as exc:
                raise CacheEntryError(f"{name} unreadable ({exc})") from exc
            if actual != files.get(name):
                raise CacheEntryError(f"{name} does not match its recorded SHA-256")
        return Entry(folder, config, tag)

    def discard(self, folder: Path, reason: str) -> None:
        warnings.warn(
            f"OpenVINO model cache entry {folder} is not usable ({reason}); rebuilding it",
            RuntimeWarning,
            stacklevel=3,
        )
        shutil.rmtree(folder, ignore_errors=True)

    def store(
        self, recipe: Recipe, model: Any, config: dict[str, Any], weights_tag: str
    ) -> Entry | None:
        """Write ``model`` (an ``openvino.Model``) as ``recipe``'s entry; None if it cannot be."""
        import openvino as ov

        final = self.folder(recipe)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._remove_stale_temporaries()
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        except OSError as exc:
            self._warn_unwritable(exc)
            return None
        try:
            ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)
            meta = {
                "recipe": recipe.as_dict(),
                "config": config,
                "weights_tag": weights_tag,
                "files": {n: file_sha256(tmp / n) for n in ("model.xml", "model.bin")},
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
            for name in ("model.xml", "model.bin", "meta.json"):
                with open(tmp / name, "rb") as handle:
                    os.fsync(handle.fileno())
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.exists():
                    raise
                # Another process finished the same entry first: theirs is as good.
                shutil.rmtree(tmp, ignore_errors=True)
        except (OSError, RuntimeError) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            self._warn_unwritable(exc)
            return None
        return Entry(final, config, weights_tag)

    def _warn_unwritable(self, exc: BaseException) -> None:
        warnings.warn(
            f"cannot write the OpenVINO model cache in {self.root} ({exc}); "
            f"continuing without it (set {CACHE_ENV} to another folder, or to off)",
            RuntimeWarning,
            stacklevel=3,
        )

    def _remove_stale_temporaries(self) -> None:
        cutoff = time.time() - STALE_TEMPORARY_S
        for path in self.root.glob(".tmp-*"):
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    shutil.rmtree(path, ignore_errors=True)


__all__ = [
    "CACHE_ENV",
    "CACHE_FORMAT",
    "Entry",
    "ModelCache",
    "Recipe",
    "default_root",
    "file_sha256",
    "resolve_root",
    "versions",
]
