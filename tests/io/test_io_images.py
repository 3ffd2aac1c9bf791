"""quadrat.io.images: header facts, hashing, decoding every mode, truncation, EXIF, limits."""

from __future__ import annotations

import hashlib
import io
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from quadrat.errors import ImageError, LimitError, PointOutsideImageError
from quadrat.io import images
from quadrat.io.images import ImageInfo, check_complete, load_rgb, read_image_info
from quadrat.patches import crop_patches
from tests.data.images import data as images_data


def _no_warnings(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return func(*args, **kwargs)


# ---------------------------------------------------------------- read_image_info


def test_read_image_info_header_and_hash(image_fixtures):
    path = image_fixtures["rgb"]
    info = read_image_info(path)
    assert isinstance(info, ImageInfo)
    assert (info.width, info.height, info.mode, info.exif_orientation) == (320, 240, "RGB", 1)
    assert info.sha256 == hashlib.sha256(Path(path).read_bytes()).hexdigest()
    assert info.path == Path(path)


@pytest.mark.parametrize(
    ("name", "mode", "orientation"),
    [
        ("rotated", "RGB", 6),
        ("flipped", "RGB", 3),
        ("grey", "L", 1),
        ("grey16", "I;16", 1),
        ("palette", "P", 1),
        ("rgba", "RGBA", 1),
        ("cmyk", "CMYK", 1),
    ],
)
def test_read_image_info_modes(image_fixtures, name, mode, orientation):
    info = read_image_info(image_fixtures[name])
    assert (info.width, info.height) == (320, 240)
    assert info.mode == mode
    assert info.exif_orientation == orientation


def test_read_image_info_does_not_decode_truncated(image_fixtures):
    # Header only: a truncated file still reports its size; load_rgb is where it fails.
    info = read_image_info(image_fixtures["truncated"])
    assert (info.width, info.height) == (320, 240)


def test_hash_differs_for_resaved_copy(image_fixtures, tmp_path):
    copy = tmp_path / "copy.jpg"
    Image.open(image_fixtures["rgb"]).save(copy, quality=70)
    assert read_image_info(copy).sha256 != read_image_info(image_fixtures["rgb"]).sha256


@pytest.mark.parametrize("kind", ["missing", "not_image", "directory"])
def test_read_image_info_errors_name_the_file(image_fixtures, tmp_path, kind):
    path = {
        "missing": tmp_path / "nope.jpg",
        "not_image": image_fixtures["not_image"],
        "directory": tmp_path,
    }[kind]
    with pytest.raises(ImageError) as err:
        read_image_info(path)
    assert str(path) in str(err.value)
    assert err.value.path == Path(path)


# ---------------------------------------------------------------- load_rgb


def test_load_rgb_shape_dtype_and_content(image_fixtures, coralnet_module):
    images_mod = images_data
    arr = _no_warnings(load_rgb, image_fixtures["rgb"])
    assert arr.shape == (240, 320, 3) and arr.dtype == np.uint8
    expected = images_mod.rgb_array(0)
    error = np.abs(arr.astype(int) - expected).mean()  # JPEG of the same pixels
    other = np.abs(arr.astype(int) - images_mod.rgb_array(1)).mean()
    assert error < 20 and other > 3 * error


def test_load_rgb_matches_pillow_convert_for_rgb(image_fixtures):
    arr = load_rgb(image_fixtures["rgb"])
    assert np.array_equal(arr, np.asarray(Image.open(image_fixtures["rgb"]).convert("RGB")))


def test_load_rgb_grey_l_and_16bit(image_fixtures):
    grey = np.asarray(Image.open(image_fixtures["grey"]))
    for name in ("grey", "grey16"):
        arr = _no_warnings(load_rgb, image_fixtures[name])
        assert arr.shape == (240, 320, 3) and arr.dtype == np.uint8
        for ch in range(3):
            assert np.array_equal(arr[:, :, ch], grey), name  # 16-bit scaled, not clipped


def test_load_rgb_palette_with_transparency(image_fixtures):
    arr = _no_warnings(load_rgb, image_fixtures["palette"])
    indices = np.asarray(Image.open(image_fixtures["palette"]))
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [250, 250, 250]], np.uint8)
    assert np.array_equal(arr, colours[indices])


def test_load_rgb_rgba_and_la_drop_alpha(image_fixtures, coralnet_module):
    images_mod = images_data
    arr = _no_warnings(load_rgb, image_fixtures["rgba"])
    assert np.array_equal(arr, images_mod.rgb_array(5))  # PNG is lossless
    la = _no_warnings(load_rgb, image_fixtures["la"])
    grey = np.asarray(Image.open(image_fixtures["grey"]))
    assert np.array_equal(la[:, :, 1], grey)


def test_load_rgb_cmyk_uses_pillow_conversion(image_fixtures):
    arr = _no_warnings(load_rgb, image_fixtures["cmyk"])
    expected = np.asarray(Image.open(image_fixtures["cmyk"]).convert("RGB"))
    assert arr.shape == (240, 320, 3)
    assert np.array_equal(arr, expected)


def test_load_rgb_ignores_exif_orientation_and_warns_once(image_fixtures, tmp_path):
    path = tmp_path / "rotated_once.jpg"
    shutil.copy(image_fixtures["rotated"], path)
    with pytest.warns(UserWarning, match="EXIF orientation is 6") as record:
        arr = load_rgb(path)
    assert str(path) in str(record[0].message)
    assert arr.shape == (240, 320, 3)  # stored pixels: not transposed to 320 rows
    stored = np.asarray(Image.open(path).convert("RGB"))
    assert np.array_equal(arr, stored)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_rgb(path)  # second time: no warning for the same file


def test_truncated_jpeg_is_detected(image_fixtures):
    path = image_fixtures["truncated"]
    with pytest.raises(ImageError, match="truncated") as err:
        load_rgb(path)
    assert str(path) in str(err.value)


def test_truncated_jpeg_allowed_loads_like_pyspacer(image_fixtures):
    with pytest.warns(UserWarning, match="truncated"):
        arr = load_rgb(image_fixtures["truncated"], allow_truncated=True)
    assert arr.shape == (240, 320, 3)
    full = load_rgb(image_fixtures["rgb"])
    assert np.array_equal(arr[:40], full[:40])  # the top of the image decoded normally
    assert not np.array_equal(arr, full)


def test_allow_truncated_restores_pillow_flag(image_fixtures):
    from PIL import ImageFile

    with pytest.warns(UserWarning):
        load_rgb(image_fixtures["truncated"], allow_truncated=True)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("fraction", [0.2, 0.45, 0.6, 0.8, 0.95, 0.99])
def test_truncation_detected_at_many_cut_points(tmp_path, progressive, fraction):
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(
        buf, "JPEG", quality=90, progressive=progressive
    )
    data = buf.getvalue()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ImageError, match="truncated"):
        load_rgb(path)


def test_truncated_png_is_detected(tmp_path, coralnet_module):
    images_mod = images_data
    buf = io.BytesIO()
    Image.fromarray(images_mod.rgb_array(3)).save(buf, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError) as err:
        load_rgb(path)
    assert str(path) in str(err.value)


def test_decompression_bomb_refused(image_fixtures, monkeypatch):
    monkeypatch.setenv("QUADRAT_MAX_PIXELS_PER_IMAGE", str(320 * 240 - 1))
    with pytest.raises(LimitError, match="over the limit pixels_per_image") as err:
        load_rgb(image_fixtures["rgb"])
    assert str(image_fixtures["rgb"]) in str(err.value)
    assert "QUADRAT_MAX_PIXELS_PER_IMAGE" in str(err.value)


def test_limit_is_pyspacers():
    assert images.MAX_PIXELS == 100_000_000


@pytest.mark.parametrize("kind", ["missing", "not_image"])
def test_load_rgb_errors_name_the_file(image_fixtures, tmp_path, kind):
    path = tmp_path / "nope.png" if kind == "missing" else image_fixtures["not_image"]
    with pytest.raises(ImageError) as err:
        load_rgb(path)
    assert str(path) in str(err.value)


# ---------------------------------------------------------------- real data


@pytest.mark.shared_data
def test_moorea_images_and_patches(shared_data):
    from quadrat.io.coralnet import read_annotations_csv

    folder = shared_data / "moorea-lter-2008"
    annotations = read_annotations_csv(folder / "annotations.csv")
    name = "mcr_lter1_fringingreef_pole1-2_qu1_20080415.jpg"
    info = read_image_info(folder / "images" / name)
    assert (info.width, info.height) == (1880, 1956)
    assert info.exif_orientation == 1
    image = load_rgb(folder / "images" / name)
    assert image.shape == (1956, 1880, 3)
    points = annotations[annotations["image"] == name]
    patches = crop_patches(image, points["row"], points["column"])
    assert patches.shape == (200, 224, 224, 3)
    padded = np.pad(image, ((224, 224), (224, 224), (0, 0)), mode="reflect")
    for k, (r, c) in enumerate(zip(points["row"], points["column"], strict=True)):
        assert np.array_equal(patches[k], padded[r + 112 : r + 336, c + 112 : c + 336])


@pytest.mark.shared_data
def test_moorea_resized_image_points_still_inside(shared_data):
    """The 800x800 downscaled copy: its points were rescaled too, so they fit the image and
    bounds validation cannot flag it (only content checks can); a point beyond it does."""
    from quadrat.io.coralnet import read_annotations_csv

    folder = shared_data / "moorea-lter-2008"
    name = "mcr_lter1_fringingreef_pole4-5_qu2_20080415.jpg"
    annotations = read_annotations_csv(folder / "annotations.csv")
    points = annotations[annotations["image"] == name]
    image = load_rgb(folder / "images" / name)
    assert image.shape[:2] == (800, 800)
    assert crop_patches(image, points["row"], points["column"]).shape == (200, 224, 224, 3)
    with pytest.raises(PointOutsideImageError, match="outside the 800x800 image"):
        crop_patches(image, [1865], [10])


# ---------------------------------------------------------------- check_complete


@pytest.mark.parametrize("name", ["rgb", "rotated", "grey16", "palette", "cmyk"])
def test_check_complete_accepts_whole_files(image_fixtures, name):
    assert _no_warnings(check_complete, image_fixtures[name]) is None


@pytest.mark.parametrize("name", ["truncated", "not_image"])
def test_check_complete_rejects_broken_files(image_fixtures, name):
    with pytest.raises(ImageError) as err:
        check_complete(image_fixtures[name])
    assert str(image_fixtures[name]) in str(err.value)


def test_check_complete_missing_file(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        check_complete(tmp_path / "gone.jpg")


# ---------------------------------------------------------------- list_images / read_bytes


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_list_images_one_suffix_set_sorted_hidden_skipped(tmp_path: Path) -> None:
    for name in ("b.JPG", "a.png", "c.webp", "d.bmp", "e.tiff", "notes.txt", ".hidden.jpg"):
        _touch(tmp_path / name)
    _touch(tmp_path / "sub" / "f.jpeg")
    _touch(tmp_path / ".thumbs" / "g.jpg")
    (tmp_path / "folder.jpg").mkdir()
    flat = images.list_images(tmp_path)
    assert [p.name for p in flat] == ["a.png", "b.JPG", "c.webp", "d.bmp", "e.tiff"]
    deep = images.list_images(tmp_path, recursive=True)
    assert [p.relative_to(tmp_path).as_posix() for p in deep] == [
        "a.png",
        "b.JPG",
        "c.webp",
        "d.bmp",
        "e.tiff",
        "sub/f.jpeg",
    ]
    assert {".jpg", ".webp", ".bmp"} <= images.IMAGE_SUFFIXES


def test_list_images_missing_folder(tmp_path: Path) -> None:
    from quadrat.errors import NotFoundError

    with pytest.raises(NotFoundError, match="folder not found"):
        images.list_images(tmp_path / "nope")


def test_read_bytes_writable_and_limited(tmp_path: Path) -> None:
    from quadrat.errors import LimitError

    path = _touch(tmp_path / "a.jpg", b"12345")
    data = images.read_bytes(path)
    assert isinstance(data, bytearray) and bytes(data) == b"12345"
    with pytest.raises(LimitError, match="limit of 4"):
        images.read_bytes(path, limit=4)
    with pytest.raises(ImageError, match="not found"):
        images.read_bytes(tmp_path / "missing.jpg")
    with pytest.raises(ImageError, match="not a regular file"):
        images.read_bytes(tmp_path)


def test_thumbnail_is_upright_small_and_like_the_image(image_fixtures, tmp_path):
    from quadrat.io.images import load_thumbnail

    thumb = load_thumbnail(image_fixtures["rgb"], 160)
    assert thumb.shape == (120, 160, 3) and thumb.dtype == np.uint8
    full = np.asarray(Image.open(image_fixtures["rgb"]).convert("RGB").resize((160, 120)))
    assert np.abs(thumb.astype(int) - full.astype(int)).mean() < 12  # the same picture
    # EXIF orientation 6: stored 320x240, shown upright as 240 wide and 320 tall.
    rotated = load_thumbnail(image_fixtures["rotated"], 160)
    assert rotated.shape == (160, 120, 3)
    # A large JPEG is decoded at a reduced scale, and the limits still apply.
    big = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000), (10, 200, 30)).save(big, quality=90)
    small = load_thumbnail(big, 160)
    assert small.shape == (120, 160, 3)
    assert np.abs(small.astype(int) - [10, 200, 30]).max() < 8


def test_thumbnail_respects_limits_and_names_the_file(image_fixtures, tmp_path, monkeypatch):
    from quadrat.io.images import load_thumbnail

    monkeypatch.setenv("QUADRAT_MAX_PIXELS_PER_IMAGE", str(320 * 240 - 1))
    with pytest.raises(LimitError, match="pixels_per_image"):
        load_thumbnail(image_fixtures["rgb"], 160)
    monkeypatch.delenv("QUADRAT_MAX_PIXELS_PER_IMAGE")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(ImageError) as err:
        load_thumbnail(broken, 160)
    assert str(broken) in str(err.value)
