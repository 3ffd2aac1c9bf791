"""The WebDataset shard writer and reader on their own (no network)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from quadrat.datasets.shards import (
    Sample,
    ShardWriter,
    list_shards,
    read_shard,
    remove_partial_shards,
    safe_key,
    shard_keys,
    split_member_name,
)
from quadrat.errors import InputError


def test_writer_rolls_over_and_reports_each_shard(tmp_path: Path) -> None:
    done: list[tuple[str, list[str]]] = []
    with ShardWriter(
        tmp_path, "train", max_samples=2, on_shard_done=lambda p, keys: done.append((p.name, keys))
    ) as writer:
        for i in range(5):
            writer.write(Sample(f"s{i}", {"jpg": bytes([i]) * 10, "json": b"{}"}))
    assert done == [
        ("train-000000.tar", ["s0", "s1"]),
        ("train-000001.tar", ["s2", "s3"]),
        ("train-000002.tar", ["s4"]),
    ]
    assert [p.name for p in list_shards(tmp_path, "train")] == [name for name, _ in done]
    samples = [s for shard in list_shards(tmp_path, "train") for s in read_shard(shard)]
    assert [s.key for s in samples] == [f"s{i}" for i in range(5)]
    assert samples[3].parts == {"jpg": bytes([3]) * 10, "json": b"{}"}
    assert shard_keys(tmp_path / "train-000001.tar") == ["s2", "s3"]


def test_an_error_inside_the_writer_leaves_no_shard(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), ShardWriter(tmp_path, max_samples=10) as writer:
        writer.write(Sample("a", {"txt": b"x"}))
        assert len(list(tmp_path.iterdir())) == 1  # the hidden partial file
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []


def test_partial_shards_are_invisible_and_removable(tmp_path: Path) -> None:
    (tmp_path / ".shard-000003.tar.partial").write_bytes(b"x")
    (tmp_path / ".other-000003.tar.partial").write_bytes(b"x")
    (tmp_path / "shard-3.tar").write_bytes(b"x")  # not a shard name: wrong digits
    assert list_shards(tmp_path, "shard") == []
    assert [p.name for p in remove_partial_shards(tmp_path, "shard")] == [
        ".shard-000003.tar.partial"
    ]
    assert (tmp_path / ".other-000003.tar.partial").exists()


def test_keys_and_member_names() -> None:
    assert safe_key("IMOS AUV/r2010.06__PR_1") == "IMOS_AUV_r2010_06__PR_1"
    with pytest.raises(InputError, match="cannot make a sample key"):
        safe_key("...")
    assert split_member_name("a/b.c/key.seg.png") == ("a/b.c/key", "seg.png")
    assert split_member_name("key.jpg") == ("key", "jpg")


def test_writer_refuses_keys_webdataset_would_split(tmp_path: Path) -> None:
    writer = ShardWriter(tmp_path)
    with pytest.raises(InputError, match="may not contain"):
        writer.write(Sample("a.b", {"jpg": b"x"}))
    with pytest.raises(InputError, match="no parts"):
        writer.write(Sample("a", {}))


def test_damaged_shard_is_an_input_error(tmp_path: Path) -> None:
    with ShardWriter(tmp_path) as writer:
        writer.write(Sample("a", {"bin": b"y" * 4000}))
    shard = tmp_path / "shard-000000.tar"
    shard.write_bytes(shard.read_bytes()[:1000])
    with pytest.raises(InputError, match="damaged shard"):
        list(read_shard(shard))
    with tarfile.open(tmp_path / "odd.tar", "w") as tar:
        tar.addfile(tarfile.TarInfo("noextension"))
    with pytest.raises(InputError, match="without an extension"):
        list(read_shard(tmp_path / "odd.tar"))
