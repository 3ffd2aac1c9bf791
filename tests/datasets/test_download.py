"""Image download into shards or a folder tree, against a local scripted HTTP server."""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import cast

import pandas as pd
import pytest
from PIL import Image

from quadrat.datasets.download import (
    DownloadOptions,
    Verify,
    backoff_delay,
    download_images,
    prepare_table,
    read_manifest,
)
from quadrat.datasets.shards import list_shards, read_shard, shard_keys
from quadrat.errors import ConflictError, CsvFormatError, FetchError, InputError
from quadrat.io.tables import read_table
from tests.data.http.data import FixtureServer, Reply, jpeg_bytes

# Generous timeouts and retries: a loaded CI machine must not turn a loopback reply into a
# failure. Only test_timeouts_are_retried trips a timeout, on purpose.
FAST = DownloadOptions(workers=3, timeout=10, retries=2, backoff=0.01, max_backoff=0.05)


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    with FixtureServer() as running:
        yield running


def table_for(
    server: FixtureServer, scripts: dict[str, list[Reply]], *, dataset: str = "ds", site: str = "s1"
) -> pd.DataFrame:
    rows = []
    for name, replies in scripts.items():
        rows.append(
            {
                "dataset": dataset,
                "site": site,
                "image": name,
                "url": server.route(f"/{dataset}/{name}", replies),
                "depth": 21.5,
            }
        )
    return pd.DataFrame(rows)


def images(n: int) -> dict[str, bytes]:
    return {f"img{i:02d}.jpg": jpeg_bytes(i) for i in range(n)}


def all_samples(out: Path) -> list[tuple[str, dict[str, bytes]]]:
    return [(s.key, s.parts) for shard in list_shards(out, "shard") for s in read_shard(shard)]


# --------------------------------------------------------------------------- shards


def test_shards_hold_every_image_once_with_metadata(server: FixtureServer, tmp_path: Path) -> None:
    bodies = images(5)
    table = table_for(server, {name: [Reply.ok(body)] for name, body in bodies.items()})
    summary = download_images(table, tmp_path, shard_size=2, options=FAST)

    assert (summary.total, summary.downloaded, summary.failed, summary.skipped) == (5, 5, 0, 0)
    shards = list_shards(tmp_path, "shard")
    assert [p.name for p in shards] == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    assert [len(shard_keys(p)) for p in shards] == [2, 2, 1]
    samples = all_samples(tmp_path)
    assert sorted(k for k, _ in samples) == [f"ds__s1__img{i:02d}" for i in range(5)]
    for key, parts in samples:
        assert set(parts) == {"jpg", "json"}
        meta = json.loads(parts["json"])
        assert meta["key"] == key
        assert parts["jpg"] == bodies[meta["image"]]  # stored untouched
        assert meta["sha256"] == hashlib.sha256(parts["jpg"]).hexdigest()
        assert (meta["width"], meta["height"], meta["depth"]) == (64, 48, 21.5)
    manifest = read_manifest(tmp_path)
    assert set(manifest["status"]) == {"ok"}
    assert manifest["shard"].isin([p.name for p in shards]).all()
    assert (manifest["sha256"] == manifest["source_sha256"]).all()
    assert pd.read_csv(tmp_path / "failures.csv").empty
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files


def test_tar_members_follow_webdataset_convention(server: FixtureServer, tmp_path: Path) -> None:
    table = table_for(server, {"a.b.jpg": [Reply.ok(jpeg_bytes(1))]})
    table["cls"] = [7]
    download_images(table, tmp_path, options=FAST)
    with tarfile.open(tmp_path / "shard-000000.tar") as tar:
        names = tar.getnames()
    # One key (dots in the image name are replaced: WebDataset splits at the first dot).
    assert names == ["ds__s1__a_b.cls", "ds__s1__a_b.jpg", "ds__s1__a_b.json"]
    (sample,) = read_shard(tmp_path / "shard-000000.tar")
    assert sample.parts["cls"] == b"7"


def test_webdataset_package_reads_the_shards(server: FixtureServer, tmp_path: Path) -> None:
    wds = pytest.importorskip("webdataset")
    bodies = images(3)
    table = table_for(server, {name: [Reply.ok(body)] for name, body in bodies.items()})
    download_images(table, tmp_path, shard_size=2, options=FAST)
    urls = [str(p) for p in list_shards(tmp_path, "shard")]
    seen = {}
    for sample in wds.WebDataset(urls, shardshuffle=False):
        seen[sample["__key__"]] = (sample["jpg"], json.loads(sample["json"]))
    assert len(seen) == 3
    for body, meta in seen.values():
        assert body == bodies[meta["image"]]


# --------------------------------------------------------------------------- failures, retries


def test_retries_5xx_then_succeeds(server: FixtureServer, tmp_path: Path) -> None:
    table = table_for(
        server, {"a.jpg": [Reply.status(500), Reply.status(503), Reply.ok(jpeg_bytes(0))]}
    )
    summary = download_images(table, tmp_path, options=FAST)
    assert summary.downloaded == 1
    assert server.hits["/ds/a.jpg"] == 3
    assert read_manifest(tmp_path)["attempts"].tolist() == [3]


def test_404_is_not_retried_and_is_logged(server: FixtureServer, tmp_path: Path) -> None:
    table = table_for(
        server, {"ok.jpg": [Reply.ok(jpeg_bytes(0))], "gone.jpg": [Reply.status(404)]}
    )
    summary = download_images(table, tmp_path, options=FAST)
    assert (summary.downloaded, summary.failed) == (1, 1)
    assert server.hits["/ds/gone.jpg"] == 1
    failures = pd.read_csv(tmp_path / "failures.csv")
    assert failures["url"].tolist() == [server.url("/ds/gone.jpg")]
    assert failures["http_status"].tolist() == [404]
    assert failures["attempts"].tolist() == [1]
    assert "HTTP 404" in failures["error"].iloc[0]


def test_server_errors_give_up_after_the_retries(server: FixtureServer, tmp_path: Path) -> None:
    table = table_for(server, {"a.jpg": [Reply.status(502)]})
    summary = download_images(table, tmp_path, options=FAST)
    assert summary.failed == 1
    assert server.hits["/ds/a.jpg"] == FAST.retries + 1
    assert list_shards(tmp_path, "shard") == []


def test_timeouts_are_retried(server: FixtureServer, tmp_path: Path) -> None:
    table = table_for(
        server,
        {
            "slow-once.jpg": [Reply.slow(jpeg_bytes(0), delay=20.0), Reply.ok(jpeg_bytes(0))],
            "always-slow.jpg": [Reply.slow(jpeg_bytes(1), delay=20.0)],
        },
    )
    # 2 s: ample for the prompt reply on a loaded machine, far below the 20 s stall.
    options = DownloadOptions(workers=2, timeout=2, retries=1, backoff=0.01, max_backoff=0.02)
    summary = download_images(table, tmp_path, options=options)
    assert (summary.downloaded, summary.failed) == (1, 1)
    failures = pd.read_csv(tmp_path / "failures.csv")
    assert failures["url"].str.endswith("always-slow.jpg").all()
    assert failures["error"].str.contains("timed out").all()
    assert failures["attempts"].tolist() == [2]


def test_truncated_bodies_are_retried(server: FixtureServer, tmp_path: Path) -> None:
    body = jpeg_bytes(3)
    table = table_for(
        server,
        {
            "cut-once.jpg": [Reply.truncated(body), Reply.ok(body)],
            "always-cut.jpg": [Reply.truncated(body, cut=0.3)],
        },
    )
    summary = download_images(table, tmp_path, options=FAST)
    assert (summary.downloaded, summary.failed) == (1, 1)
    manifest = read_manifest(tmp_path).set_index("image")
    assert manifest.loc["cut-once.jpg", "attempts"] == 2
    assert "truncated" in manifest.loc["always-cut.jpg", "error"]
    assert manifest.loc["always-cut.jpg", "attempts"] == FAST.retries + 1


def test_429_honours_retry_after(server: FixtureServer, tmp_path: Path) -> None:
    table = table_for(
        server, {"a.jpg": [Reply.status(429, {"Retry-After": "0"}), Reply.ok(jpeg_bytes(0))]}
    )
    assert download_images(table, tmp_path, options=FAST).downloaded == 1
    assert server.hits["/ds/a.jpg"] == 2


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    options = DownloadOptions(backoff=1.0, max_backoff=5.0)
    rng = random.Random(0)
    delays = [backoff_delay(n, options, None, rng) for n in range(5)]
    for n, delay in enumerate(delays):
        ceiling = min(5.0, 2.0**n)
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(d, 6) for d in delays}) == 5  # jittered, not constant
    assert backoff_delay(0, options, 3.0, rng) == 3.0
    assert backoff_delay(0, options, 60.0, rng) == 5.0  # capped


def test_retry_after_as_http_date(server: FixtureServer, tmp_path: Path) -> None:
    soon = format_datetime(datetime.now(UTC) - timedelta(seconds=5), usegmt=True)
    table = table_for(
        server, {"a.jpg": [Reply.status(503, {"Retry-After": soon}), Reply.ok(jpeg_bytes(0))]}
    )
    assert download_images(table, tmp_path, options=FAST).downloaded == 1


def test_a_body_that_is_not_an_image_fails_without_retry(
    server: FixtureServer, tmp_path: Path
) -> None:
    table = table_for(server, {"page.jpg": [Reply.ok(b"<html>login</html>")]})
    download_images(table, tmp_path, options=FAST)
    failures = pd.read_csv(tmp_path / "failures.csv")
    assert failures["error"].tolist() == ["not an image"]
    assert server.hits["/ds/page.jpg"] == 1


def test_checksum_column_is_verified(server: FixtureServer, tmp_path: Path) -> None:
    good, other = jpeg_bytes(0), jpeg_bytes(1)
    table = table_for(server, {"good.jpg": [Reply.ok(good)], "bad.jpg": [Reply.ok(good)]})
    table["sha256"] = [hashlib.sha256(good).hexdigest(), hashlib.sha256(other).hexdigest()]
    summary = download_images(table, tmp_path, options=FAST)
    assert (summary.downloaded, summary.failed) == (1, 1)
    failures = pd.read_csv(tmp_path / "failures.csv")
    assert failures["url"].str.endswith("bad.jpg").all()
    assert failures["error"].str.startswith("sha256 mismatch").all()


def test_refused_connection_is_retried_then_logged(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.jpg"
    table = pd.DataFrame([{"dataset": "d", "site": "s", "image": "x.jpg", "url": url}])
    summary = download_images(table, tmp_path, options=FAST)
    assert summary.failed == 1
    failures = pd.read_csv(tmp_path / "failures.csv")
    assert failures["url"].tolist() == [url]
    assert failures["error"].str.contains("refused").all()
    assert failures["attempts"].tolist() == [FAST.retries + 1]


# --------------------------------------------------------------------------- resize, tree


def test_resize_shrinks_the_shortest_side_and_keeps_jpeg(
    server: FixtureServer, tmp_path: Path
) -> None:
    big, small = jpeg_bytes(0, width=96, height=64), jpeg_bytes(1, width=40, height=30)
    table = table_for(server, {"big.jpg": [Reply.ok(big)], "small.jpg": [Reply.ok(small)]})
    options = DownloadOptions(workers=2, timeout=10, retries=0, resize=32)
    download_images(table, tmp_path, options=options)
    manifest = read_manifest(tmp_path).set_index("image")
    assert tuple(manifest.loc["big.jpg", ["width", "height"]]) == (48, 32)
    assert tuple(manifest.loc["small.jpg", ["width", "height"]]) == (40, 30)  # never enlarged
    assert manifest.loc["big.jpg", "source_sha256"] == hashlib.sha256(big).hexdigest()
    assert manifest.loc["small.jpg", "sha256"] == hashlib.sha256(small).hexdigest()
    for _, parts in all_samples(tmp_path):
        with Image.open(io.BytesIO(parts["jpg"])) as im:
            assert im.format == "JPEG"
            assert min(im.size) <= 32 or im.size == (40, 30)


def test_tree_layout_writes_dataset_site_image(server: FixtureServer, tmp_path: Path) -> None:
    bodies = images(3)
    table = table_for(
        server,
        {name: [Reply.ok(body)] for name, body in bodies.items()},
        dataset="auv",
        site="r2010",
    )
    summary = download_images(table, tmp_path, layout="tree", options=FAST)
    assert summary.downloaded == 3
    for name, body in bodies.items():
        assert (tmp_path / "auv" / "r2010" / name).read_bytes() == body
    manifest = read_manifest(tmp_path)
    assert sorted(manifest["shard"]) == [f"auv/r2010/{name}" for name in sorted(bodies)]
    # Rerun: nothing fetched again, manifest unchanged.
    hits = sum(server.hits.values())
    again = download_images(table, tmp_path, layout="tree", options=FAST)
    assert (again.skipped, again.downloaded) == (3, 0)
    assert sum(server.hits.values()) == hits


def test_tree_resume_rebuilds_records_of_files_without_manifest(
    server: FixtureServer, tmp_path: Path
) -> None:
    bodies = images(2)
    table = table_for(server, {name: [Reply.ok(body)] for name, body in bodies.items()})
    download_images(table, tmp_path, layout="tree", options=FAST)
    (tmp_path / "manifest.parquet").unlink()
    stale = tmp_path / "ds" / "s1" / ".img00.jpg.k9x2ab_q.tmp"  # a kill during a write
    stale.write_bytes(b"half")
    again = download_images(table, tmp_path, layout="tree", options=FAST)
    assert again.skipped == 2
    assert not stale.exists()
    manifest = read_manifest(tmp_path).set_index("image")
    for name, body in bodies.items():
        assert manifest.loc[name, "sha256"] == hashlib.sha256(body).hexdigest()


# --------------------------------------------------------------------------- resume


class InterruptedRunError(Exception):
    """Stands in for a crash or Ctrl-C in the middle of a run."""


def test_interrupted_run_resumes_with_every_image_exactly_once(
    server: FixtureServer, tmp_path: Path
) -> None:
    bodies = images(11)
    table = table_for(server, {name: [Reply.ok(body)] for name, body in bodies.items()})

    def stop_after_seven(_: str, done: int, total: int) -> None:
        if done >= 7:
            raise InterruptedRunError

    with pytest.raises(InterruptedRunError):
        download_images(table, tmp_path, shard_size=3, options=FAST, progress=stop_after_seven)
    kept = list_shards(tmp_path, "shard")
    assert [p.name for p in kept] == ["shard-000000.tar", "shard-000001.tar"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no half shard
    assert len(read_manifest(tmp_path)) == 6

    summary = download_images(table, tmp_path, shard_size=3, options=FAST)
    assert (summary.skipped, summary.downloaded) == (6, 5)
    keys = Counter(k for k, _ in all_samples(tmp_path))
    assert sorted(keys) == sorted(f"ds__s1__{Path(n).stem}" for n in bodies)
    assert set(keys.values()) == {1}
    for key, parts in all_samples(tmp_path):
        assert parts["jpg"] == bodies[json.loads(parts["json"])["image"]], key
    manifest = read_manifest(tmp_path)
    assert len(manifest) == 11 and set(manifest["status"]) == {"ok"}


def test_resume_after_kill_ignores_partial_shard_and_recovers_unrecorded_one(
    server: FixtureServer, tmp_path: Path
) -> None:
    bodies = images(4)
    table = table_for(server, {name: [Reply.ok(body)] for name, body in bodies.items()})
    download_images(table, tmp_path, shard_size=2, options=FAST)
    # What SIGKILL can leave: a half-written temporary shard, and a renamed shard whose
    # manifest update never happened (killed between the two steps).
    (tmp_path / ".shard-000002.tar.partial").write_bytes(b"half a tar")
    (tmp_path / ".manifest.parquet.k9x2ab_q.tmp").write_bytes(b"half a manifest")
    manifest = read_manifest(tmp_path)
    recorded = set(shard_keys(tmp_path / "shard-000000.tar"))
    manifest[manifest["key"].isin(recorded)].to_parquet(tmp_path / "manifest.parquet")
    hits = sum(server.hits.values())

    summary = download_images(table, tmp_path, shard_size=2, options=FAST)
    assert (summary.skipped, summary.downloaded) == (4, 0)
    assert sum(server.hits.values()) == hits
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    rebuilt = read_manifest(tmp_path).set_index("image")
    assert len(rebuilt) == 4
    for name, body in bodies.items():
        assert rebuilt.loc[name, "sha256"] == hashlib.sha256(body).hexdigest()


def test_failed_images_are_retried_on_the_next_run(server: FixtureServer, tmp_path: Path) -> None:
    table = table_for(server, {"late.jpg": [Reply.status(404), Reply.ok(jpeg_bytes(0))]})
    assert download_images(table, tmp_path, options=FAST).failed == 1
    summary = download_images(table, tmp_path, options=FAST)
    assert (summary.downloaded, summary.failed) == (1, 0)
    assert pd.read_csv(tmp_path / "failures.csv").empty
    assert read_manifest(tmp_path)["shard"].tolist() == ["shard-000000.tar"]


# --------------------------------------------------------------------------- the table


def test_table_errors_name_file_line_and_value(tmp_path: Path) -> None:
    base = {"dataset": "d", "site": "s", "image": "a.jpg", "url": "http://127.0.0.1/a.jpg"}
    with pytest.raises(CsvFormatError, match=r"missing column.*url"):
        prepare_table(pd.DataFrame([{k: v for k, v in base.items() if k != "url"}]))
    csv = tmp_path / "media.csv"
    pd.DataFrame([base, {**base, "image": "b.jpg", "url": "file:///etc/passwd"}]).to_csv(
        csv, index=False
    )
    with pytest.raises(InputError, match=r"media.csv, line 3: only http\(s\)"):
        prepare_table(read_table(csv), source=csv)
    with pytest.raises(InputError, match="different URLs"):
        prepare_table(pd.DataFrame([base, {**base, "url": "http://127.0.0.1/other.jpg"}]))
    with pytest.raises(InputError, match="plain file or folder name"):
        prepare_table(pd.DataFrame([{**base, "site": "../up"}]))
    with pytest.raises(CsvFormatError, match="empty 'url'"):
        prepare_table(pd.DataFrame([{**base, "url": None}]))
    with pytest.raises(InputError, match="same sample key"):
        prepare_table(pd.DataFrame([base, {**base, "image": "a.png", "url": "http://h/a.png"}]))
    with pytest.raises(InputError, match="64 hexadecimal"):
        prepare_table(pd.DataFrame([{**base, "sha256": "abc"}]))


def test_point_rows_collapse_to_one_image_and_columns_can_be_mapped() -> None:
    rows = [
        {"campaign": "T2010", "deployment": "r1", "media": m, "path_best": f"http://h/{m}"}
        for m in ("PR_1", "PR_1", "PR_2")
    ]
    frame = prepare_table(
        pd.DataFrame(rows),
        columns={"dataset": "campaign", "site": "deployment", "image": "media", "url": "path_best"},
    )
    assert frame["key"].tolist() == ["T2010__r1__PR_1", "T2010__r1__PR_2"]
    with pytest.raises(CsvFormatError, match="no column 'nope'"):
        prepare_table(pd.DataFrame(rows), columns={"url": "nope"})


def test_bad_options_are_rejected_by_parameter_name() -> None:
    """Library messages name the parameter (``param=``), never a command-line flag."""
    cases = [
        (lambda: DownloadOptions(workers=0), "workers"),
        (lambda: DownloadOptions(resize=0), "resize"),
        (lambda: DownloadOptions(timeout=0), "timeout"),
        (lambda: download_images(pd.DataFrame(), "unused", shard_size=0), "shard_size"),
    ]
    for build, param in cases:
        with pytest.raises(InputError, match=rf"^{param} ") as err:
            build()
        assert err.value.param == param
        assert "--" not in str(err.value)


def test_fetch_image_raises_the_one_fetch_error(server: FixtureServer) -> None:
    from quadrat.datasets.download import fetch_image

    url = server.route("/gone.jpg", [Reply.status(404)])
    with pytest.raises(FetchError, match="HTTP 404") as err:
        fetch_image(url, FAST)
    assert err.value.http_status == 404 and not err.value.retryable


# --------------------------------------------------------------------------- real data


SQUIDLE = "squidle-tasmania-kelp"
SQUIDLE_COLUMNS = {
    "dataset": "point.media.deployment.campaign.key",
    "site": "point.media.deployment.key",
    "image": "point.media.key",
    "url": "point.media.path_best",
}


@pytest.mark.shared_data
def test_squidle_export_downloads_from_a_local_mirror(
    shared_data: Path, server: FixtureServer, tmp_path: Path
) -> None:
    """The real point export (1500 points, 300 images): its URLs rewritten to 127.0.0.1
    (the real host is never contacted); a third of the images are served, the rest 404,
    and the failure log must name exactly those."""
    (csv,) = (shared_data / SQUIDLE).glob("annotations-*.csv")
    table = read_table(csv)
    frame = prepare_table(table, source=csv, columns=SQUIDLE_COLUMNS)
    assert len(frame) == 300
    paths = frame["url"].map(lambda u: "/" + u.split("/", 3)[3])
    served = set(paths.iloc[::3])
    for i, path in enumerate(sorted(served)):
        server.route(path, [Reply.ok(jpeg_bytes(i, width=32, height=24))])
    table = table.copy()
    table["point.media.path_best"] = table["point.media.path_best"].map(
        lambda u: server.url("/" + u.split("/", 3)[3])
    )
    options = DownloadOptions(workers=8, timeout=30, retries=2, backoff=0.01, max_backoff=0.05)
    summary = download_images(
        table, tmp_path, shard_size=64, options=options, source=csv, columns=SQUIDLE_COLUMNS
    )
    assert (summary.total, summary.downloaded, summary.failed) == (300, 100, 200)
    failures = pd.read_csv(tmp_path / "failures.csv")
    failed_paths = {"/" + u.split("/", 3)[3] for u in failures["url"]}
    assert failed_paths == set(paths) - served
    assert (failures["http_status"] == 404).all()
    samples = all_samples(tmp_path)
    assert len(samples) == 100
    meta = json.loads(samples[0][1]["json"])
    assert meta["dataset"] == "Tasmania201006" and meta["point.pose.dep"] > 20


def test_manifest_on_disk_only_ever_lists_finished_work(
    server: FixtureServer, tmp_path: Path
) -> None:
    """Checked after every image: a reader (or a kill) never sees a manifest row whose shard
    is not complete, even when failures trigger a save while a shard is still open."""
    scripts = {f"ok{i}.jpg": [Reply.ok(jpeg_bytes(i))] for i in range(5)}
    scripts |= {f"gone{i}.jpg": [Reply.status(404)] for i in range(6)}
    table = table_for(server, scripts)
    checks = []

    def check(_: str, done: int, total: int) -> None:
        manifest = read_manifest(tmp_path)
        assert set(manifest["status"]) <= {"ok", "failed"}
        ok = manifest[manifest["status"] == "ok"]
        assert all((tmp_path / shard).is_file() for shard in ok["shard"])
        checks.append(len(manifest))

    download_images(table, tmp_path, shard_size=3, options=FAST, progress=check)
    assert len(checks) == 12 and checks[-1] > 0
    assert len(read_manifest(tmp_path)) == 11


def test_resize_bakes_exif_orientation_into_the_pixels(
    server: FixtureServer, tmp_path: Path
) -> None:
    im = Image.open(io.BytesIO(jpeg_bytes(0, width=96, height=64)))
    exif = Image.Exif()
    exif[0x0112] = 6  # a viewer shows it rotated 90 degrees: 64 wide, 96 high
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", quality=90, exif=exif.tobytes())
    table = table_for(server, {"rot.jpg": [Reply.ok(buffer.getvalue())]})
    download_images(table, tmp_path, options=DownloadOptions(timeout=10, retries=0, resize=32))
    ((_, parts),) = all_samples(tmp_path)
    with Image.open(io.BytesIO(parts["jpg"])) as small:
        assert small.size == (32, 48)
        assert small.getexif().get(0x0112) in (None, 1)


def test_tree_files_get_ordinary_permissions(server: FixtureServer, tmp_path: Path) -> None:
    import os

    table = table_for(server, {"a.jpg": [Reply.ok(jpeg_bytes(0))]})
    download_images(table, tmp_path, layout="tree", options=FAST)
    umask = os.umask(0)
    os.umask(umask)
    for path in (tmp_path / "ds" / "s1" / "a.jpg", tmp_path / "manifest.parquet"):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("verify", ["decode", "header"])
def test_a_cut_jpeg_with_matching_length_is_caught(
    server: FixtureServer, tmp_path: Path, verify: str
) -> None:
    """The server sends a JPEG cut in half *as if whole* (no Content-Length mismatch): only
    the image check can tell, in either verify mode."""
    body = jpeg_bytes(5)
    table = table_for(
        server, {"cut.jpg": [Reply.ok(body[: len(body) // 2])], "whole.jpg": [Reply.ok(body)]}
    )
    options = DownloadOptions(timeout=10, retries=1, backoff=0.01, verify=cast(Verify, verify))
    summary = download_images(table, tmp_path, options=options)
    assert (summary.downloaded, summary.failed) == (1, 1)
    failures = pd.read_csv(tmp_path / "failures.csv")
    assert failures["url"].str.endswith("cut.jpg").all()
    assert failures["error"].str.startswith("undecodable image").all()
    assert failures["attempts"].tolist() == [2]  # retried: the next reply may be whole


def test_header_verification_skips_the_pixel_decode(
    server: FixtureServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import ImageFile

    def no_decoding(self: object) -> None:
        raise AssertionError("decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    table = table_for(server, {"a.jpg": [Reply.ok(jpeg_bytes(0))]})
    options = DownloadOptions(timeout=10, retries=0, verify="header")
    summary = download_images(table, tmp_path, options=options)
    assert summary.downloaded == 1
    assert read_manifest(tmp_path)[["width", "height"]].values.tolist() == [[64, 48]]


def test_end_markers() -> None:
    from quadrat.datasets.download import has_end_marker

    body = jpeg_bytes(0)
    assert has_end_marker(body, "JPEG") and has_end_marker(body + b"\0\0", "JPEG")
    assert not has_end_marker(body[:-10], "JPEG")
    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, "PNG")
    assert has_end_marker(png.getvalue(), "PNG") and not has_end_marker(png.getvalue()[:-4], "PNG")
    assert not has_end_marker(b"BM....", "BMP")  # no marker to check: caller decodes


def test_a_second_concurrent_run_on_the_same_folder_is_refused(
    server: FixtureServer, tmp_path: Path
) -> None:
    from quadrat.datasets.download import output_lock

    table = table_for(server, {"a.jpg": [Reply.ok(jpeg_bytes(0))]})
    with output_lock(tmp_path), pytest.raises(ConflictError, match="another download is writing"):
        download_images(table, tmp_path, options=FAST)
    assert download_images(table, tmp_path, options=FAST).downloaded == 1  # lock released


@pytest.mark.shared_data
def test_metadata_reader_output_downloads_and_keeps_file_lines(shared_data: Path) -> None:
    """The Squidle+ reader's table (one row per image, ``source_line`` kept) is accepted as
    is, and a bad URL is reported at its line in the original point export."""
    from quadrat.datasets.readers import read_squidle

    (csv,) = (shared_data / SQUIDLE).glob("annotations-*.csv")
    table = read_squidle(csv)
    frame = prepare_table(table, source=csv)
    assert len(frame) == 300 and frame["key"].is_unique
    assert frame["key"].iloc[0].startswith("Tasmania201006__r20100604_230524_lanterns_14_shallow__")
    broken = table.copy()
    broken.loc[1, "url"] = "ftp://example/x.jpg"
    line = int(broken.loc[1, "source_line"])
    with pytest.raises(InputError, match=rf"line {line}: only http\(s\)"):
        prepare_table(broken, source=csv)
