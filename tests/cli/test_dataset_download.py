"""``quadrat dataset download`` end to end against a local HTTP server (127.0.0.1 only)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from tests.data.http.data import FixtureServer, Reply, jpeg_bytes
from typer.testing import CliRunner

from quadrat.cli import app
from quadrat.datasets.download import read_manifest
from quadrat.datasets.shards import list_shards, read_shard

runner = CliRunner()
FAST = ["--workers", "3", "--timeout", "10", "--retries", "1"]  # generous: loopback under load


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    with FixtureServer() as running:
        yield running


def invoke(*args: str | Path, code: int = 0) -> str:
    result = runner.invoke(app, ["dataset", "download", *map(str, args)])
    assert result.exit_code == code, result.output + repr(result.exception)
    assert "Traceback" not in result.output
    return " ".join(result.output.split())  # rich wraps long lines


def media_csv(server: FixtureServer, path: Path, n: int, *, missing: int = 0) -> Path:
    rows = []
    for i in range(n + missing):
        name = f"img{i:02d}.jpg"
        url = server.url(f"/survey/{name}")
        if i < n:
            server.route(f"/survey/{name}", [Reply.ok(jpeg_bytes(i, width=96, height=64))])
        rows.append({"dataset": "survey", "site": f"site{i % 2}", "image": name, "url": url})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_download_to_shards_with_summary(server: FixtureServer, tmp_path: Path) -> None:
    table = media_csv(server, tmp_path / "media.csv", 5, missing=1)
    out = tmp_path / "out"
    text = invoke(table, "-o", out, "--shard-size", "2", *FAST)
    assert "downloaded │ 5" in text and "failed │ 1" in text
    assert "warning: 1 image(s) failed" in text and "failures.csv" in text
    assert [p.name for p in list_shards(out, "shard")] == [
        "shard-000000.tar",
        "shard-000001.tar",
        "shard-000002.tar",
    ]
    failures = pd.read_csv(out / "failures.csv")
    assert failures["url"].tolist() == [server.url("/survey/img05.jpg")]
    # Rerun = resume: nothing new downloaded, the failure tried again.
    text = invoke(table, "-o", out, "--shard-size", "2", *FAST)
    assert "already done │ 5" in text and "downloaded │ 0" in text
    assert server.hits["/survey/img00.jpg"] == 1


def test_tree_layout_with_resize(server: FixtureServer, tmp_path: Path) -> None:
    table = media_csv(server, tmp_path / "media.csv", 3)
    out = tmp_path / "tree"
    invoke(table, "-o", out, "--tree", "--resize", "32", *FAST)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg"))
    assert files == ["survey/site0/img00.jpg", "survey/site0/img02.jpg", "survey/site1/img01.jpg"]
    manifest = read_manifest(out)
    assert set(zip(manifest["width"], manifest["height"], strict=True)) == {(48, 32)}


def test_column_mapping_and_defaults(server: FixtureServer, tmp_path: Path) -> None:
    """A Squidle+-style media list: only ``key`` and ``path_best``."""
    url = server.route("/m/PR_1.jpg", [Reply.ok(jpeg_bytes(0))])
    table = tmp_path / "media.csv"
    pd.DataFrame({"key": ["PR_1"], "path_best": [url]}).to_csv(table)  # with an index column
    out = tmp_path / "out"
    invoke(table, "-o", out, "-c", "url=path_best", "--dataset", "auv", *FAST)
    ((key, parts),) = [(s.key, s.parts) for s in read_shard(out / "shard-000000.tar")]
    assert key == "auv__auv__PR_1"
    meta = json.loads(parts["json"])
    assert (meta["dataset"], meta["site"], meta["image"], meta["key"]) == (
        "auv",
        "auv",
        "PR_1.jpg",
        "auv__auv__PR_1",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-c", "url"], "--column takes NAME=COLUMN"),
        (["-c", "url=nope"], "no column 'nope'"),
        (["--workers", "0"], "workers must be at least 1, not 0 (see --workers)"),
        (["--shard-size", "0"], "shard_size must be at least 1, not 0 (see --shard-size)"),
        (["--verify", "pixels"], "verify must be decode or header, not 'pixels' (see --verify)"),
        (["--timeout", "0"], "timeout must be positive, not 0.0 (see --timeout)"),
    ],
)
def test_bad_options_are_one_red_line(
    server: FixtureServer, tmp_path: Path, args: list[str], message: str
) -> None:
    table = media_csv(server, tmp_path / "media.csv", 1)
    result = runner.invoke(
        app, ["dataset", "download", str(table), "-o", str(tmp_path / "o"), *args]
    )
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert text.startswith("error:") and message in text, text


def test_bad_table_names_file_and_line(tmp_path: Path) -> None:
    table = tmp_path / "media.csv"
    pd.DataFrame(
        {
            "dataset": ["d", "d"],
            "site": ["s", "s"],
            "image": ["a.jpg", "b.jpg"],
            "url": ["http://127.0.0.1:9/a.jpg", "ftp://x/b.jpg"],
        }
    ).to_csv(table, index=False)
    text = invoke(table, "-o", tmp_path / "o", code=1)
    assert text.startswith("error:") and "media.csv, line 3" in text and "ftp://x/b.jpg" in text
    text = invoke(tmp_path / "absent.csv", "-o", tmp_path / "o", code=4)  # NotFoundError
    assert "absent.csv: table not found" in text


KILLABLE = textwrap.dedent(
    """
    import sys
    import pandas as pd
    from quadrat.datasets.download import DownloadOptions, download_images
    table = pd.read_csv(sys.argv[1])
    download_images(table, sys.argv[2], shard_size=2,
                    options=DownloadOptions(workers=1, timeout=5, retries=0))
    """
)


@pytest.mark.slow
def test_sigkill_then_resume_every_image_exactly_once(
    server: FixtureServer, tmp_path: Path
) -> None:
    """A real SIGKILL mid-run (no cleanup code runs), then a rerun completes the set."""
    rows = []
    for i in range(12):
        body = jpeg_bytes(i)
        url = server.route(f"/k/{i}.jpg", [Reply.slow(body, delay=0.15)])
        rows.append({"dataset": "d", "site": "s", "image": f"{i}.jpg", "url": url})
    table = tmp_path / "media.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLABLE, str(table), str(out)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while len(list_shards(out, "shard")) < 2 and proc.poll() is None:
        assert time.monotonic() < deadline, "no shard appeared in 60 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list_shards(out, "shard"))
    if done_before >= 6:
        pytest.skip("the run finished before it could be killed")
    assert proc.returncode == -signal.SIGKILL

    text = invoke(table, "-o", out, "--shard-size", "2", *FAST)
    assert f"already done │ {2 * done_before}" in text
    keys = Counter(s.key for shard in list_shards(out, "shard") for s in read_shard(shard))
    assert sorted(keys) == sorted(f"d__s__{i}" for i in range(12))
    assert set(keys.values()) == {1}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert len(read_manifest(out)) == 12


@pytest.mark.shared_data
def test_squidle_media_list_failure_log(
    shared_data: Path, server: FixtureServer, tmp_path: Path
) -> None:
    """The real Squidle+ media list (300 images). Its S3 host is never contacted: the URLs
    are rewritten to 127.0.0.1 (same paths) in a temporary copy; 30 are served, and every
    other URL must appear in the failure log with its 404."""
    media = pd.read_csv(shared_data / "squidle-tasmania-kelp" / "test_media.csv", index_col=0)
    paths = media["path_best"].map(lambda u: "/" + u.split("/", 3)[3])
    for i, path in enumerate(paths.iloc[:30]):
        server.route(path, [Reply.ok(jpeg_bytes(i, width=32, height=24))])
    media["path_best"] = paths.map(server.url)
    local = tmp_path / "test_media_local.csv"
    media.to_csv(local)
    out = tmp_path / "out"
    text = invoke(local, "-o", out, "-c", "url=path_best", "--dataset", "Tasmania201006", *FAST)
    assert "images in table │ 300" in text and "downloaded │ 30" in text and "failed │ 270" in text
    failures = pd.read_csv(out / "failures.csv")
    assert sorted(failures["url"]) == sorted(media["path_best"].iloc[30:])
    assert (failures["http_status"] == 404).all()
