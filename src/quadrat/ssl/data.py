"""Unlabelled images for pretraining: a folder tree, WebDataset shards, or survey photos.

Every dataset yields ``(view0, view1, label)``: two uint8 crops from
:class:`~quadrat.ssl.augment.TwoCrops` and a class index (``-1`` when unknown), which
feeds the online linear probe. Decoding and cropping run in DataLoader worker processes;
the photometric part of the augmentation runs later on whole batches on the device.

- **folder**: every image under a directory. If all images sit in sub-folders directly
  under it (``root/<class>/*.jpg``), the folder names are labels.
- **shards**: WebDataset tars (``<prefix>-NNNNNN.tar`` holding ``<key>.jpg``,
  ``<key>.json`` and optionally ``<key>.cls``), as ``quadrat dataset download`` writes.
  Read with the stdlib :mod:`tarfile` (through :mod:`quadrat.datasets.shards`): the format
  is a plain tar, and the ``webdataset`` package would add a dependency for what
  twenty lines do, including the per-rank split DDP needs.
- **photos**: large survey photos, each decoded once per epoch and cut into
  ``patches_per_photo`` random ``patch_size`` patches (reflected at the borders, as
  :func:`quadrat.patches.crop_patches` does for annotation points).

Streams (shards, photos) split their samples over DDP ranks and worker processes so that
every rank gets exactly as many batches (uneven counts would hang DDP), shuffle the shard
or photo order per epoch and mix samples through a shuffle buffer.
"""

from __future__ import annotations

import io
import math
import random
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from quadrat.datasets.shards import read_shard, split_member_name
from quadrat.errors import ImageError, InputError
from quadrat.io.images import list_images as _list_images
from quadrat.io.images import load_rgb
from quadrat.patches import crop_patches
from quadrat.ssl.augment import TwoCrops
from quadrat.ssl.config import AugmentConfig, SSLConfig

DataKind = Literal["auto", "folder", "shards", "photos"]
SHARD_IMAGE_PARTS = ("jpg", "jpeg", "png", "webp")
Pair = tuple[torch.Tensor, torch.Tensor, int]


def _chw(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)


def list_images(root: Path) -> list[Path]:
    """Image files under ``root`` (recursively), sorted for a reproducible order."""
    return _list_images(root, recursive=True)


class FolderImages(Dataset[Pair]):
    """Every image under a folder; labels from ``root/<class>/`` folder names when present."""

    def __init__(self, root: str | Path, crops: TwoCrops, *, labels: bool = True) -> None:
        self.root = Path(root)
        self.crops = crops
        self.paths = list_images(self.root)
        if not self.paths:
            raise InputError("no images found (jpg, png, tif, ...)", path=self.root)
        parents = {p.parent for p in self.paths}
        by_class = labels and len(parents) > 1 and all(p.parent == self.root for p in parents)
        self.classes: list[str] = sorted(p.name for p in parents) if by_class else []
        index = {name: i for i, name in enumerate(self.classes)}
        self.labels = [index.get(p.parent.name, -1) if by_class else -1 for p in self.paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Pair:
        view0, view1 = self.crops(_chw(load_rgb(self.paths[i])))
        return view0, view1, self.labels[i]


class _Stream(IterableDataset[Pair]):
    """Shared machinery: which slot (rank, worker) this is, per-epoch seeds, shuffling."""

    def __init__(self, crops: TwoCrops, *, seed: int, shuffle_buffer: int) -> None:
        self.crops = crops
        self.seed = seed
        self.shuffle_buffer = max(1, shuffle_buffer)
        self._epoch = 0  # only advances in-process (num_workers=0)

    @staticmethod
    def slot() -> tuple[int, int]:
        """(this reader's index, number of readers) over all DDP ranks and workers."""
        rank, world = (dist.get_rank(), dist.get_world_size()) if _distributed() else (0, 1)
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return rank * workers + worker, world * workers

    def epoch_seed(self) -> int:
        """A seed shared by every reader of this epoch and new each epoch.

        DataLoader draws one base seed per epoch (shared across DDP ranks) and gives worker
        ``i`` ``base + i``; without workers a local epoch counter stands in.
        """
        info = get_worker_info()
        if info is not None:
            return int(info.seed - info.id)
        self._epoch += 1
        return self.seed * 1_000_003 + self._epoch

    def shuffled(self, samples: Iterator[Pair], rng: random.Random) -> Iterator[Pair]:
        """Reservoir-style shuffle buffer: hold ``shuffle_buffer`` samples, emit at random."""
        buffer: list[Pair] = []
        for sample in samples:
            buffer.append(sample)
            if len(buffer) >= self.shuffle_buffer:
                yield buffer.pop(rng.randrange(len(buffer)))
        rng.shuffle(buffer)
        yield from buffer


class ShardImages(_Stream):
    """Images from WebDataset tar shards, split sample by sample over ranks and workers."""

    def __init__(
        self,
        shards: list[Path],
        crops: TwoCrops,
        *,
        seed: int = 0,
        shuffle_buffer: int = 1000,
        min_side: int = 0,
    ) -> None:
        super().__init__(crops, seed=seed, shuffle_buffer=shuffle_buffer)
        self.min_side = min_side
        if not shards:
            raise InputError("no shards given")
        self.shards = list(shards)
        self.counts, labels = zip(*(_scan_shard(p) for p in self.shards), strict=True)
        self.total = sum(self.counts)
        if self.total == 0:
            raise InputError("the shards hold no images", path=self.shards[0].parent)
        known = [c for shard_labels in labels for c in shard_labels if c >= 0]
        self.num_classes = max(known) + 1 if known else 0

    def __len__(self) -> int:
        """Samples per DDP rank (what Lightning divides into batches for the schedule)."""
        world = dist.get_world_size() if _distributed() else 1
        return self.total // world

    def __iter__(self) -> Iterator[Pair]:
        slot, slots = self.slot()
        seed = self.epoch_seed()
        order = list(range(len(self.shards)))
        random.Random(seed).shuffle(order)
        usable = self.total - self.total % slots  # every slot gets the same count
        rng = random.Random(seed * 31 + slot)
        return self.shuffled(self._read(order, slot, slots, usable), rng)

    def _read(self, order: list[int], slot: int, slots: int, usable: int) -> Iterator[Pair]:
        index = 0
        for shard_number in order:
            path = self.shards[shard_number]
            for sample in read_shard(path):
                part = next((p for p in SHARD_IMAGE_PARTS if p in sample.parts), None)
                if part is None:
                    continue
                if index >= usable:
                    return
                mine = index % slots == slot
                index += 1
                if not mine:
                    continue
                image = decode(sample.parts[part], path, sample.key, self.min_side)
                label = _label(sample.parts.get("cls"), path, sample.key)
                view0, view1 = self.crops(image)
                yield view0, view1, label


class PhotoPatches(_Stream):
    """Random patches from large photos: each photo decoded once an epoch, cut ``k`` times."""

    def __init__(
        self,
        photos: list[Path],
        crops: TwoCrops,
        *,
        patches_per_photo: int = 16,
        patch_size: int = 448,
        seed: int = 0,
        shuffle_buffer: int = 1000,
    ) -> None:
        super().__init__(crops, seed=seed, shuffle_buffer=shuffle_buffer)
        if not photos:
            raise InputError("no photos given")
        if patches_per_photo < 1 or patch_size < 1:
            raise InputError(
                "patches_per_photo and patch_size must be at least 1",
                value=(patches_per_photo, patch_size),
            )
        self.photos = list(photos)
        self.patches_per_photo = patches_per_photo
        self.patch_size = patch_size
        self.num_classes = 0

    def __len__(self) -> int:
        world = dist.get_world_size() if _distributed() else 1
        return len(self.photos) // world * self.patches_per_photo

    def __iter__(self) -> Iterator[Pair]:
        slot, slots = self.slot()
        seed = self.epoch_seed()
        order = list(range(len(self.photos)))
        random.Random(seed).shuffle(order)
        if len(order) < slots:
            raise InputError(
                f"{len(order)} photos for {slots} readers (ranks x workers): use fewer workers",
                path=self.photos[0].parent,
            )
        usable = order[: len(order) - len(order) % slots]
        mine = usable[slot::slots]
        rng = random.Random(seed * 31 + slot)
        return self.shuffled(self._cut(mine, rng), rng)

    def _cut(self, photos: list[int], rng: random.Random) -> Iterator[Pair]:
        generator = np.random.default_rng(rng.getrandbits(64))
        for number in photos:
            image = load_rgb(self.photos[number])
            height, width = image.shape[:2]
            rows = generator.integers(0, height, self.patches_per_photo)
            cols = generator.integers(0, width, self.patches_per_photo)
            for patch in crop_patches(image, rows, cols, size=self.patch_size):
                view0, view1 = self.crops(_chw(patch))
                yield view0, view1, -1


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def draft_side(config: AugmentConfig) -> int:
    """The shorter side a decoded image needs so that even the smallest random crop
    (area ``crop_scale[0]``, aspect 3:4) still has ``image_size`` pixels across."""
    return math.ceil(config.image_size / math.sqrt(config.crop_scale[0] * 3 / 4))


def decode(data: bytes, shard: Path, key: str, min_side: int = 0) -> torch.Tensor:
    """Decode with Pillow (libjpeg-turbo; torchvision's decoders are deprecated since 0.29).

    ``min_side``: let JPEG decode at 1/2, 1/4 or 1/8 scale (DCT scaling, several times
    faster) as long as both sides stay at least this long, so no crop loses resolution.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            if min_side > 0:
                image.draft("RGB", (min_side, min_side))
            rgb = np.array(ImageOps.exif_transpose(image).convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"sample {key!r}: cannot decode image ({exc})", path=shard) from exc
    return _chw(rgb)


def _label(data: bytes | None, shard: Path, key: str) -> int:
    if data is None:
        return -1
    try:
        return int(data.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(
            f"sample {key!r}: .cls is not an integer", path=shard, value=data[:20]
        ) from exc


def _scan_shard(path: Path) -> tuple[int, list[int]]:
    """(images in a shard, its ``.cls`` labels), reading headers and the tiny .cls members."""
    images, labels = 0, []
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                key, part = split_member_name(member.name)
                if part in SHARD_IMAGE_PARTS:
                    images += 1
                elif part == "cls":
                    handle = tar.extractfile(member)
                    labels.append(_label(handle.read() if handle else None, path, key))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InputError(f"not a readable tar shard ({exc})", path=path) from exc
    return images, labels


def find_shards(path: Path) -> list[Path]:
    """One ``.tar`` file, or every ``.tar`` in a directory (sorted)."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.glob("*.tar") if p.is_file() and not p.name.startswith("."))


def detect_kind(path: Path) -> Literal["folder", "shards"]:
    """Shards if ``path`` is a ``.tar`` or a folder holding tars; otherwise a folder of images."""
    if path.is_file():
        return "shards" if path.suffix == ".tar" else "folder"
    return "shards" if find_shards(path) else "folder"


def make_dataset(
    path: str | Path, config: SSLConfig, kind: DataKind = "auto"
) -> FolderImages | ShardImages | PhotoPatches:
    """The dataset for ``path``; ``kind='photos'`` must be asked for (photos look like a folder)."""
    path = Path(path)
    if not path.exists():
        raise InputError("data not found", path=path)
    crops = TwoCrops(config.augment)
    if kind == "auto":
        kind = detect_kind(path)
    data = config.data
    if kind == "shards":
        return ShardImages(
            find_shards(path),
            crops,
            seed=config.seed,
            shuffle_buffer=data.shuffle_buffer,
            min_side=draft_side(config.augment),
        )
    if not path.is_dir():
        raise InputError("expected a folder of images", path=path)
    if kind == "photos":
        photos = list_images(path)
        if not photos:
            raise InputError("no photos found (jpg, png, tif, ...)", path=path)
        return PhotoPatches(
            photos,
            crops,
            patches_per_photo=data.patches_per_photo,
            patch_size=data.patch_size,
            seed=config.seed,
            shuffle_buffer=data.shuffle_buffer,
        )
    return FolderImages(path, crops, labels=data.labels)


def num_classes(dataset: FolderImages | ShardImages | PhotoPatches) -> int:
    """Classes the online probe should predict (0: no labels, no probe)."""
    if isinstance(dataset, FolderImages):
        return len(dataset.classes)
    return dataset.num_classes


def make_loader(
    dataset: FolderImages | ShardImages | PhotoPatches, config: SSLConfig
) -> DataLoader[Pair]:
    """Batches of ``batch_size`` per device from ``num_workers`` processes; last partial
    batch dropped (batch-statistics losses need full batches)."""
    workers = config.data.num_workers
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=isinstance(dataset, FolderImages),
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        drop_last=True,
        persistent_workers=False,
        prefetch_factor=4 if workers > 0 else None,
    )
