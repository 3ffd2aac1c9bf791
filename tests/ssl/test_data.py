from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pytest
import torch

from quadrat.errors import InputError
from quadrat.ssl.augment import TwoCrops
from quadrat.ssl.data import (
    FolderImages,
    PhotoPatches,
    ShardImages,
    _Stream,
    make_dataset,
    make_loader,
    num_classes,
)
from tests.data.ssl.data import CLASSES, make_folder_tree
from tests.ssl.conftest import tiny_config


def test_folder_tree_gives_labelled_pairs(ssl_inputs: dict[str, Path]) -> None:
    dataset = make_dataset(ssl_inputs["folder"], tiny_config())
    assert isinstance(dataset, FolderImages)
    assert dataset.classes == list(CLASSES) and num_classes(dataset) == 3
    view0, view1, label = dataset[len(dataset) - 1]
    assert view0.shape == view1.shape == (3, 32, 32) and view0.dtype == torch.uint8
    assert label == 2


def test_flat_folder_has_no_labels(tmp_path: Path) -> None:
    make_folder_tree(tmp_path / "tree", per_class=2)
    flat = tmp_path / "tree" / "coral"
    dataset = make_dataset(flat, tiny_config())
    assert num_classes(dataset) == 0 and dataset[0][2] == -1


def test_shards_stream_every_image_once_with_labels(ssl_inputs: dict[str, Path]) -> None:
    dataset = make_dataset(ssl_inputs["shards"], tiny_config())
    assert isinstance(dataset, ShardImages)
    assert (dataset.total, len(dataset), num_classes(dataset)) == (24, 24, 3)
    labels = sorted(label for _, _, label in dataset)
    assert labels == sorted(i % 3 for i in range(24))
    views, _, targets = next(iter(make_loader(dataset, tiny_config())))
    assert views.shape == (6, 3, 32, 32) and targets.shape == (6,)


def test_stream_readers_split_samples_evenly(
    ssl_inputs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three readers (ranks x workers) get disjoint, equal shares of one epoch's samples."""
    dataset = make_dataset(ssl_inputs["shards"], tiny_config())
    assert isinstance(dataset, ShardImages)
    dataset.crops = lambda image: (image, image)  # type: ignore[assignment]
    monkeypatch.setattr(_Stream, "epoch_seed", lambda self: 7)
    shares = []
    for slot in range(3):
        monkeypatch.setattr(_Stream, "slot", staticmethod(lambda slot=slot: (slot, 3)))
        shares.append({hashlib.sha1(v0.numpy().tobytes()).hexdigest() for v0, _, _ in dataset})
    assert [len(share) for share in shares] == [8, 8, 8]
    assert len(set().union(*shares)) == 24  # disjoint, and together every sample


def test_photos_are_cut_into_random_patches(ssl_inputs: dict[str, Path]) -> None:
    dataset = make_dataset(ssl_inputs["photos"], tiny_config(), kind="photos")
    assert isinstance(dataset, PhotoPatches)
    pairs = list(dataset)
    assert len(pairs) == len(dataset) == 3 * 6
    assert all(v0.shape == (3, 32, 32) and label == -1 for v0, _, label in pairs)


def test_bad_inputs_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="data not found"):
        make_dataset(tmp_path / "missing", tiny_config())
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images found"):
        make_dataset(tmp_path / "empty", tiny_config())
    broken = tmp_path / "broken-000000.tar"
    broken.write_bytes(b"not a tar at all" * 40)
    with pytest.raises(InputError, match=r"broken-000000\.tar"):
        make_dataset(broken, tiny_config())


def test_undecodable_shard_image_names_shard_and_key(tmp_path: Path) -> None:
    import io

    path = tmp_path / "bad-000000.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("s00001.jpg")
        info.size = 10
        tar.addfile(info, io.BytesIO(b"0123456789"))
    dataset = make_dataset(path, tiny_config())
    assert isinstance(dataset, ShardImages)
    with pytest.raises(InputError, match=r"bad-000000\.tar: sample 's00001'"):
        list(dataset)


@pytest.mark.shared_data
def test_real_patch_folder_and_survey_photos(shared_data: Path) -> None:
    patches = make_dataset(shared_data / "seattle-rov-patches" / "patches", tiny_config())
    assert num_classes(patches) == 25 and len(patches) == 934
    view0, _, label = patches[0]
    assert view0.shape == (3, 32, 32) and label == 0
    photos = sorted((shared_data / "moorea-lter-2008" / "images").glob("*.jpg"))[:1]
    crops = PhotoPatches(
        photos, TwoCrops(tiny_config().augment), patches_per_photo=4, patch_size=224
    )
    assert [v0.shape for v0, _, _ in crops] == [(3, 32, 32)] * 4


def test_jpeg_decodes_reduced_only_as_far_as_the_smallest_crop_allows() -> None:
    from quadrat.ssl.config import AugmentConfig
    from quadrat.ssl.data import decode, draft_side
    from tests.data.ssl.data import image_array, jpeg_bytes

    assert draft_side(AugmentConfig()) == 818  # 224 px across a 10% crop at aspect 3:4
    data = jpeg_bytes(image_array(0, (300, 400)))
    assert decode(data, Path("s.tar"), "k").shape == (3, 300, 400)
    assert decode(data, Path("s.tar"), "k", min_side=100).shape == (3, 150, 200)
    assert decode(data, Path("s.tar"), "k", min_side=160).shape == (3, 300, 400)
