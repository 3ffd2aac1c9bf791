"""Benchmark: ``quadrat serve`` under load from CoralNet-style API clients (issue 13).

On each database backend (SQLite, PostgreSQL) it builds a project with a trained texture
``lr`` classifier, serves generated JPEGs from a loopback ``http.server`` (127.0.0.1 only),
starts a real server subprocess (``python -m quadrat.service --allow-private-urls
--workers N``), and runs ``--clients`` client threads, each one user (so the per-user
throttle applies per client) doing what CoralNet-Toolbox's API client does: get a token,
deploy batches of at most 100 images with up to 200 points each, keep at most 5 jobs
active, poll each job's status, read the result when the status answers 303; a 429 waits
``Retry-After`` (throttled) or one poll interval (5 jobs active) and tries again.

The same images and points then go through the in-process path the service's workers
take, without the service: the JPEG bytes decoded (``quadrat.service.fetch.decode``) and
``quadrat.workflow.deploy.classify_points`` called per image, in as many processes as the
server has workers, once before and once after the service (the machine's load drifts;
the two bracket it). That is the fair comparison: ``quadrat classify`` (``Source.classify``)
only scores features already extracted and stored, while a deploy job decodes, crops,
extracts and scores, so ``Source.classify`` alone would time a different job.

Prints one JSON object (see ``what`` in it for what each number times). Loopback only;
bounded by the counts and by ``--max-seconds``, after which the run ends cleanly with what
was measured (jobs still running are counted as ``unfinished``, not lost). Every server,
worker and PostgreSQL cluster started here is stopped in ``finally`` blocks.

    python benchmarks/serve_load.py                          # 20 clients x 100 images, both
    python benchmarks/serve_load.py --quick --database sqlite
    python benchmarks/serve_load.py --clients 4 --images-per-client 50 --workers 2

One file of about 900 lines on purpose: benchmarks are single scripts run by path (the
in-process comparison's spawned processes import this file by name), and each part
(options, servers, clients, comparison) is short.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

REPO = Path(__file__).resolve().parent.parent
MEDIA_TYPE = "application/vnd.api+json"
PASSWORD = "serve-load benchmark password"
#: Errors kept verbatim in the report (the count covers all).
MAX_ERRORS_KEPT = 20


# ------------------------------------------------------------------ options


@dataclass(frozen=True)
class Options:
    clients: int
    images_per_client: int
    batch_images: int
    points_per_image: int
    max_active_jobs: int
    workers: int
    poll_seconds: float
    max_seconds: float
    databases: tuple[str, ...]
    pool_images: int
    baseline_images: int
    quick: bool


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=None, help="clients, one user each (20)")
    parser.add_argument(
        "--images-per-client", type=int, default=None, help="images each client deploys (100)"
    )
    parser.add_argument(
        "--batch-images", type=int, default=None, help="images per deploy request (100; max 100)"
    )
    parser.add_argument("--points", type=int, default=200, help="points per image (max 200)")
    parser.add_argument("--max-active-jobs", type=int, default=5, help="per client (CoralNet: 5)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--poll-seconds", type=float, default=None, help="between status polls")
    parser.add_argument("--max-seconds", type=float, default=None, help="bound on the whole run")
    parser.add_argument(
        "--database", choices=("sqlite", "postgresql", "both"), default="both", help="backends"
    )
    parser.add_argument(
        "--pool-images", type=int, default=10, help="distinct generated JPEGs (served by URL)"
    )
    parser.add_argument(
        "--baseline-images",
        type=int,
        default=200,
        help="request images the in-process comparison classifies (the first N; 0: all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short run: 4 clients x 10 images, batches of 5, poll 2.5 s, 600 s bound",
    )
    args = parser.parse_args(argv)
    quick = bool(args.quick)

    def pick(value: Any, full: Any, short: Any) -> Any:
        return value if value is not None else (short if quick else full)

    options = Options(
        clients=pick(args.clients, 20, 4),
        images_per_client=pick(args.images_per_client, 100, 10),
        batch_images=pick(args.batch_images, 100, 5),
        points_per_image=args.points,
        max_active_jobs=args.max_active_jobs,
        workers=args.workers,
        poll_seconds=pick(args.poll_seconds, 5.0, 2.5),
        max_seconds=pick(args.max_seconds, 3600.0, 600.0),
        databases=("sqlite", "postgresql") if args.database == "both" else (args.database,),
        pool_images=args.pool_images,
        baseline_images=args.baseline_images,
        quick=quick,
    )
    for name in ("clients", "images_per_client", "batch_images", "points_per_image", "workers"):
        if getattr(options, name) < 1:
            parser.error(f"{name} must be 1 or more")
    if options.batch_images > 100 or options.points_per_image > 200:
        parser.error("CoralNet's limits: at most 100 images a request and 200 points an image")
    return options


# ------------------------------------------------------------------ helpers


def quantiles(values: list[float]) -> dict[str, float | int | None]:
    """n, p50, p95 and max of ``values`` (None when there are none)."""
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "p50": round(statistics.median(ordered), 2),
        "p95": round(p95, 2),
        "max": round(ordered[-1], 2),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Deadline:
    """The run's time bound: ``left()`` seconds, ``passed`` once it is over."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.end


@dataclass(frozen=True)
class Workload:
    """The images (JPEG bytes, served by URL) and each request image's points."""

    pool: list[bytes]
    #: Per request image: (index into pool, points as (row, column)).
    images: list[tuple[int, list[tuple[int, int]]]]


def make_workload(options: Options, survey_new: list[Path]) -> Workload:
    """``clients x images_per_client`` request images cycling over the generated JPEGs."""
    import numpy as np
    from PIL import Image

    pool = [p.read_bytes() for p in survey_new[: options.pool_images]]
    sizes = []
    for p in survey_new[: options.pool_images]:
        with Image.open(p) as im:
            sizes.append((im.height, im.width))
    rng = np.random.default_rng(0)
    images = []
    for i in range(options.clients * options.images_per_client):
        k = i % len(pool)
        height, width = sizes[k]
        rows = rng.integers(0, height, options.points_per_image).tolist()
        cols = rng.integers(0, width, options.points_per_image).tolist()
        images.append((k, list(zip(rows, cols, strict=True))))
    return Workload(pool, images)


# ------------------------------------------------------------------ project, users, servers


def build_project(location: str, survey: Any) -> int:
    """A project at ``location``: source ``reef``, a texture ``lr`` classifier; its id."""
    import quadrat

    with quadrat.Project.create(location) as project:
        src = project.create_source("reef", labelset=survey.labelset_csv)
        src.import_annotations(survey.annotations_csv, survey.annotated_dir)
        src.extract("texture")
        outcome = src.train(kind="lr", seed=0)
        if not outcome.trained or outcome.classifier_id is None:
            raise RuntimeError(f"training did nothing: {outcome.message}")
        return int(outcome.classifier_id)


def add_users(location: str, count: int) -> list[str]:
    """``count`` viewer users (``load-0``...), one per client."""
    from quadrat.service import accounts
    from quadrat.store.project import Store

    store = Store.open(location)
    try:
        names = [f"load-{i}" for i in range(count)]
        for name in names:
            accounts.add_user(store, name, PASSWORD, role="viewer")
        return names
    finally:
        store.close()


@contextlib.contextmanager
def image_server(pool: list[bytes]) -> Iterator[str]:
    """``http://127.0.0.1:PORT``: ``/img/N.jpg`` is ``pool[N % len(pool)]``."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            match = re.fullmatch(r"/img/(\d+)\.jpg", self.path)
            if match is None:
                self.send_error(404)
                return
            data = pool[int(match.group(1)) % len(pool)]
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def live_server(location: str, workers: int, log: Path, deadline: Deadline) -> Iterator[str]:
    """``python -m quadrat.service`` on loopback with ``workers``; stopped on the way out."""
    import requests

    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "quadrat.service",
                "--database",
                location,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--allow-private-urls",
                "--workers",
                str(workers),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        ready_by = time.monotonic() + min(120.0, deadline.left())
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}: {tail(log)}")
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{base}/api/user/nobody/", timeout=5).status_code == 403:
                    break
            if time.monotonic() > ready_by:
                raise RuntimeError(f"server did not answer in time: {tail(log)}")
            time.sleep(0.2)
        yield base
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def tail(log: Path, chars: int = 1500) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else ""


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database: on ``QUADRAT_TEST_POSTGRES_URL``, else a throwaway cluster."""
    import uuid

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    cluster = None
    given = os.environ.get("QUADRAT_TEST_POSTGRES_URL")
    try:
        if given:
            server_url = given
        else:
            if str(REPO) not in sys.path:
                sys.path.insert(0, str(REPO))
            from tests.postgres import Cluster, find_bin

            bindir = find_bin()
            if bindir is None:
                raise RuntimeError("no initdb/pg_ctl and QUADRAT_TEST_POSTGRES_URL is not set")
            cluster = Cluster(bindir)
            server_url = cluster.start()
        name = f"quadrat_load_{uuid.uuid4().hex[:12]}"
        admin = create_engine(server_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
            try:
                yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
            finally:
                with admin.connect() as connection:
                    connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            admin.dispose()
    finally:
        if cluster is not None:
            cluster.stop()


# ------------------------------------------------------------------ clients


@dataclass
class Tally:
    """What all clients saw; appended to under ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    submitted: int = 0
    finished: int = 0
    unfinished: int = 0
    lost: int = 0
    images_done: int = 0
    images_failed: int = 0
    points_classified: int = 0
    throttled_429: int = 0
    jobs_active_429: int = 0
    poll_ms: list[float] = field(default_factory=list)
    job_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    error_count: int = 0

    def error(self, text: str) -> None:
        with self.lock:
            self.error_count += 1
            if len(self.errors) < MAX_ERRORS_KEPT:
                self.errors.append(text[:300])


class TimeBoundReachedError(Exception):
    """The time bound passed while a client waited."""


def run_client(
    index: int,
    user: str,
    base: str,
    classifier_id: int,
    images: list[tuple[str, list[tuple[int, int]]]],
    options: Options,
    tally: Tally,
    deadline: Deadline,
) -> None:
    """One CoralNet-Toolbox-like client: token, deploy batches, <= 5 active, poll, result."""
    import requests

    session = requests.Session()
    headers = {"Content-Type": MEDIA_TYPE}

    def sleep(seconds: float) -> None:
        if seconds >= deadline.left():
            time.sleep(deadline.left())
            raise TimeBoundReachedError
        time.sleep(seconds)

    def call(method: str, url: str, **kwargs: Any) -> tuple[requests.Response, float]:
        """One request (and its seconds); a 429 waits as the server says, then again."""
        while True:
            if deadline.passed:
                raise TimeBoundReachedError
            started = time.perf_counter()
            reply = session.request(method, url, timeout=60, **kwargs)
            took = time.perf_counter() - started
            if reply.status_code != 429:
                return reply, took
            if "Retry-After" in reply.headers:  # throttled: the server says how long
                with tally.lock:
                    tally.throttled_429 += 1
                sleep(float(reply.headers["Retry-After"]) + 0.1)
            else:  # 5 jobs active: wait for one to finish
                with tally.lock:
                    tally.jobs_active_429 += 1
                sleep(options.poll_seconds)

    batches = [
        images[i : i + options.batch_images] for i in range(0, len(images), options.batch_images)
    ]
    waiting: dict[str, tuple[list[tuple[str, list[tuple[int, int]]]], float]] = {}
    try:
        reply, _ = call(
            "POST",
            f"{base}/api/token_auth/",
            data=json.dumps({"username": user, "password": PASSWORD}),
            headers=headers,
        )
        if reply.status_code != 200:
            tally.error(f"client {index}: token {reply.status_code} {reply.text}")
            return
        session.headers["Authorization"] = f"Token {reply.json()['token']}"
        while batches or waiting:
            while batches and len(waiting) < options.max_active_jobs:
                batch = batches[0]
                body = {
                    "data": [
                        {
                            "type": "image",
                            "attributes": {
                                "url": url,
                                "points": [{"row": r, "column": c} for r, c in points],
                            },
                        }
                        for url, points in batch
                    ]
                }
                reply, _ = call(
                    "POST",
                    f"{base}/api/classifier/{classifier_id}/deploy/",
                    data=json.dumps(body),
                    headers=headers,
                )
                if reply.status_code != 202:
                    tally.error(f"client {index}: deploy {reply.status_code} {reply.text}")
                    batches.pop(0)
                    continue
                batches.pop(0)
                waiting[urljoin(base, reply.headers["Location"])] = (batch, time.monotonic())
                with tally.lock:
                    tally.submitted += 1
            sleep(options.poll_seconds)
            for status_url in list(waiting):
                reply, took = call("GET", status_url, allow_redirects=False)
                with tally.lock:
                    tally.poll_ms.append(took * 1000)
                if reply.status_code == 200:
                    attributes = reply.json()["data"][0]["attributes"]
                    if attributes.get("status") not in ("Pending", "In Progress"):
                        tally.error(f"client {index}: odd status {attributes}")
                    continue
                batch, submitted_at = waiting.pop(status_url)
                if reply.status_code != 303:
                    tally.error(f"client {index}: status {reply.status_code} {reply.text}")
                    with tally.lock:
                        tally.lost += 1
                    continue
                result, _ = call("GET", urljoin(base, reply.headers["Location"]))
                record_result(index, result, batch, submitted_at, tally)
    except TimeBoundReachedError:
        pass
    except Exception as exc:  # a client's crash is an error in the report, not the run's end
        tally.error(f"client {index}: {type(exc).__name__}: {exc}")
    finally:
        settle(index, session, waiting, tally)
        session.close()


def record_result(
    index: int,
    reply: Any,
    batch: list[tuple[str, list[tuple[int, int]]]],
    submitted_at: float,
    tally: Tally,
) -> None:
    """Check a finished job's result (images in request order) and count it."""
    if reply.status_code != 200:
        tally.error(f"client {index}: result {reply.status_code} {reply.text}")
        with tally.lock:
            tally.lost += 1
        return
    data = reply.json()["data"]
    urls = [item["attributes"]["url"] for item in data]
    if urls != [url for url, _ in batch]:
        tally.error(f"client {index}: result has {len(data)} images, not the {len(batch)} sent")
        with tally.lock:
            tally.lost += 1
        return
    done = failed = points = 0
    for item in data:
        attributes = item["attributes"]
        if "errors" in attributes:
            failed += 1
            tally.error(f"client {index}: image failed: {attributes['errors'][0]}")
        else:
            done += 1
            points += len(attributes["points"])
    with tally.lock:
        tally.finished += 1
        tally.images_done += done
        tally.images_failed += failed
        tally.points_classified += points
        tally.job_s.append(time.monotonic() - submitted_at)


def settle(index: int, session: Any, waiting: dict[str, Any], tally: Tally) -> None:
    """Jobs still waiting when a client stops: unfinished if the server still has them."""
    for status_url in waiting:
        try:
            reply = session.get(status_url, allow_redirects=False, timeout=30)
            known = reply.status_code in (200, 303, 429)
        except Exception as exc:
            tally.error(f"client {index}: last status: {type(exc).__name__}: {exc}")
            known = False
        with tally.lock:
            if known:
                tally.unfinished += 1
            else:
                tally.lost += 1
    waiting.clear()


def warm_up(
    base: str,
    user: str,
    classifier_id: int,
    images_base: str,
    workload: Workload,
    options: Options,
    deadline: Deadline,
) -> float:
    """One 1-image job per worker, waited for: workers load the classifier before the clock.

    The in-process comparison loads it before its clock too; both then time steady work.
    """
    import requests

    started = time.perf_counter()
    headers = {"Content-Type": MEDIA_TYPE}
    with requests.Session() as session:
        reply = session.post(
            f"{base}/api/token_auth/",
            data=json.dumps({"username": user, "password": PASSWORD}),
            headers=headers,
            timeout=60,
        )
        reply.raise_for_status()
        session.headers["Authorization"] = f"Token {reply.json()['token']}"
        k, points = workload.images[0]
        body = {
            "data": [
                {
                    "type": "image",
                    "attributes": {
                        "url": f"{images_base}/img/{k}.jpg",
                        "points": [{"row": r, "column": c} for r, c in points[:10]],
                    },
                }
            ]
        }
        status_urls = []
        for _ in range(min(options.workers, options.max_active_jobs)):
            reply = session.post(
                f"{base}/api/classifier/{classifier_id}/deploy/",
                data=json.dumps(body),
                headers=headers,
                timeout=60,
            )
            if reply.status_code != 202:
                raise RuntimeError(f"warm-up deploy: {reply.status_code} {reply.text}")
            status_urls.append(urljoin(base, reply.headers["Location"]))
        while status_urls and not deadline.passed:
            time.sleep(0.5)
            reply = session.get(status_urls[0], allow_redirects=False, timeout=60)
            if reply.status_code == 429:
                time.sleep(float(reply.headers.get("Retry-After", 1)))
            elif reply.status_code != 200:
                status_urls.pop(0)
    return round(time.perf_counter() - started, 2)


def run_service(
    location: str,
    classifier_id: int,
    workload: Workload,
    options: Options,
    deadline: Deadline,
    workdir: Path,
) -> dict[str, Any]:
    """The clients against a live server; the service's numbers."""
    users = add_users(location, options.clients + 1)
    warm_user, users = users[-1], users[:-1]
    tally = Tally()
    with (
        image_server(workload.pool) as images_base,
        live_server(location, options.workers, workdir / "server.log", deadline) as base,
    ):
        warmup_s = warm_up(base, warm_user, classifier_id, images_base, workload, options, deadline)
        per_client = options.images_per_client
        threads = []
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        for i, user in enumerate(users):
            mine = [
                (f"{images_base}/img/{k}.jpg", points)
                for k, points in workload.images[i * per_client : (i + 1) * per_client]
            ]
            thread = threading.Thread(
                target=run_client,
                args=(i, user, base, classifier_id, mine, options, tally, deadline),
                daemon=True,
            )
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join(timeout=deadline.left() + 120)
        seconds = time.perf_counter() - started
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    own_cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (
        cpu_before.ru_utime + cpu_before.ru_stime
    )
    return {
        "points": tally.points_classified,
        "images": tally.images_done,
        "images_failed": tally.images_failed,
        "seconds": round(seconds, 2),
        "points_per_s": round(tally.points_classified / seconds, 1) if seconds else None,
        "warmup_s": warmup_s,
        "load_generator_cpu_s": round(own_cpu, 2),
        "status_poll_ms": quantiles(tally.poll_ms),
        "job_s": quantiles(tally.job_s),
        "jobs": {
            "submitted": tally.submitted,
            "finished": tally.finished,
            "unfinished": tally.unfinished,
            "lost": tally.lost,
        },
        "http_429": {"throttled": tally.throttled_429, "jobs_active": tally.jobs_active_429},
        "error_count": tally.error_count,
        "errors": tally.errors,
        "stopped_by_time_bound": deadline.passed,
    }


# ------------------------------------------------------------------ in-process comparison

_WORKER: dict[str, Any] = {}


def _baseline_init(location: str, classifier_id: int, processes: int) -> None:
    """A comparison process: the service worker's thread share, the classifier loaded."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    share = str(max(1, (cores or 1) // max(1, processes)))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, share)
    from quadrat.store.project import Store
    from quadrat.workflow.deploy import load_classifier

    store = Store.open(location)
    load_classifier(store, classifier_id)
    _WORKER.update(store=store, classifier_id=classifier_id)


def _baseline_ready() -> int:
    return os.getpid()


def _baseline_chunk(chunk: list[tuple[bytes, list[tuple[int, int]]]]) -> int:
    """Decode and classify each image as a deploy job does; the points classified."""
    from quadrat.limits import Limits
    from quadrat.service.fetch import decode
    from quadrat.workflow.deploy import classify_points

    limits = Limits.from_env()
    points = 0
    for data, image_points in chunk:
        pixels = decode(data, limits)
        result = classify_points(_WORKER["store"], _WORKER["classifier_id"], pixels, image_points)
        points += len(result)
    return points


def run_inprocess(
    location: str, classifier_id: int, workload: Workload, options: Options, deadline: Deadline
) -> dict[str, Any]:
    """The same images and points through decode + classify_points, ``workers`` processes."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    chosen = workload.images[: options.baseline_images or None]
    items = [(workload.pool[k], points) for k, points in chosen]
    chunks = [items[i : i + 10] for i in range(0, len(items), 10)]
    with ProcessPoolExecutor(
        options.workers,
        mp_context=context,
        initializer=_baseline_init,
        initargs=(location, classifier_id, options.workers),
    ) as pool:
        # Start every process and load the classifier before the clock starts (the
        # service's workers are started before the clients, too).
        ready = [pool.submit(_baseline_ready) for _ in range(options.workers * 2)]
        wait(ready, timeout=max(1.0, deadline.left()))
        started = time.perf_counter()
        futures = [pool.submit(_baseline_chunk, chunk) for chunk in chunks]
        done, pending = wait(futures, timeout=max(0.0, deadline.left()))
        seconds = time.perf_counter() - started
        for future in pending:
            future.cancel()
        points = sum(f.result() for f in done)
        images = sum(len(chunk) for chunk, f in zip(chunks, futures, strict=True) if f in done)
    return {
        "points": points,
        "images": images,
        "seconds": round(seconds, 2),
        "points_per_s": round(points / seconds, 1) if seconds else None,
        "processes": options.workers,
        "stopped_by_time_bound": bool(pending),
    }


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The comparison's runs summed (points over seconds), each run kept under ``runs``."""
    points = sum(r["points"] for r in runs)
    seconds = sum(r["seconds"] for r in runs)
    return {
        "points": points,
        "images": sum(r["images"] for r in runs),
        "seconds": round(seconds, 2),
        "points_per_s": round(points / seconds, 1) if seconds else None,
        "processes": runs[0]["processes"],
        "runs": [{"points_per_s": r["points_per_s"], "seconds": r["seconds"]} for r in runs],
        "stopped_by_time_bound": any(r["stopped_by_time_bound"] for r in runs),
    }


# ------------------------------------------------------------------ one backend, the run


def run_backend(
    database: str, survey: Any, workload: Workload | None, options: Options, deadline: Deadline
) -> tuple[dict[str, Any], Workload | None]:
    """Build, serve, load and compare on one backend; its part of the report."""
    workdir = Path(tempfile.mkdtemp(prefix=f"quadrat-load-{database}-"))
    try:
        with contextlib.ExitStack() as stack:
            if database == "sqlite":
                location = str(workdir / "project.db")
            else:
                location = stack.enter_context(postgres_database())
            classifier_id = build_project(location, survey)
            if workload is None:
                workload = make_workload(options, sorted(survey.new_dir.glob("*.jpg")))
            if deadline.passed:
                return {"database": database, "skipped": "time bound passed"}, workload
            # The comparison runs before and after the service and their sum is used: on a
            # shared machine the load drifts, and bracketing the service evens it out.
            before = run_inprocess(location, classifier_id, workload, options, deadline)
            service = run_service(location, classifier_id, workload, options, deadline, workdir)
            runs = [before]
            if not deadline.passed:
                runs.append(run_inprocess(location, classifier_id, workload, options, deadline))
            inprocess = combine(runs)
        report: dict[str, Any] = {"database": database, "service": service}
        report["inprocess"] = inprocess
        if service.get("points_per_s") and inprocess.get("points_per_s"):
            ratio = service["points_per_s"] / inprocess["points_per_s"]
            report["overhead_percent"] = round(100 * (1 - ratio), 1)
        else:
            report["overhead_percent"] = None
        return report, workload
    except Exception as exc:
        return {
            "database": database,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc()[-2000:],
        }, workload
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


WHAT = {
    "service.points_per_s": (
        "points classified (in finished jobs' results) / seconds from starting the clients to "
        "the last client done: token, deploy, polls, result reads, the server fetching each "
        "image over loopback HTTP, decoding, extracting, scoring and storing"
    ),
    "inprocess.points_per_s": (
        "the same images and points (the first --baseline-images of them), JPEG bytes "
        "already in memory: decode (quadrat.service.fetch.decode) + "
        "quadrat.workflow.deploy.classify_points per image, in as many processes as the "
        "server has workers (classifier loaded before the clock); run once before and once "
        "after the service (runs), points and seconds summed. "
        "Source.classify (quadrat classify) only scores stored features, so it is not the "
        "same work as a deploy job"
    ),
    "overhead_percent": "100 * (1 - service.points_per_s / inprocess.points_per_s)",
    "service.status_poll_ms": (
        "latency of each GET /api/deploy_job/N/status/ (redirect not followed), excluding 429s"
    ),
    "service.warmup_s": (
        "before the clock: one 1-image job per worker (workers load the classifier), untimed"
    ),
    "service.load_generator_cpu_s": (
        "CPU seconds this script (client threads, image server) used while the clients ran: "
        "cores the service did not have"
    ),
    "service.job_s": "seconds from a job's 202 to the client reading its result",
    "service.jobs": (
        "submitted: 202s; finished: results read with every image in request order; "
        "unfinished: still Pending/In Progress when the time bound stopped the run; "
        "lost: a 202 job later unknown, or a result missing images (must be 0)"
    ),
    "service.http_429": "throttled (60/min per user: waited Retry-After), jobs_active (5 active)",
}


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    deadline = Deadline(options.max_seconds)
    started = time.perf_counter()
    load_start = os.getloadavg()
    report: dict[str, Any] = {
        "benchmark": "serve_load",
        "settings": {
            "clients": options.clients,
            "images_per_client": options.images_per_client,
            "batch_images": options.batch_images,
            "points_per_image": options.points_per_image,
            "max_active_jobs": options.max_active_jobs,
            "workers": options.workers,
            "poll_seconds": options.poll_seconds,
            "max_seconds": options.max_seconds,
            "quick": options.quick,
            "classifier": "texture features, lr",
            "images": "generated 480x640 JPEGs (quadrat.demo), served from 127.0.0.1",
        },
        "what": WHAT,
        "results": {},
    }
    from quadrat.demo import make_demo_survey

    root = Path(tempfile.mkdtemp(prefix="quadrat-load-survey-"))
    try:
        survey = make_demo_survey(
            root, n_annotated=20, n_new=options.pool_images, points_per_image=20, seed=0
        )
        workload: Workload | None = None
        for database in options.databases:
            if deadline.passed:
                report["results"][database] = {"database": database, "skipped": "time bound"}
                continue
            report["results"][database], workload = run_backend(
                database, survey, workload, options, deadline
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report["machine"] = {
        "cpus": os.cpu_count(),
        "load_avg_at_start": [round(x, 2) for x in load_start],
        "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    report["stopped_by_time_bound"] = deadline.passed
    print(json.dumps(report, indent=2))
    failed = any("error" in r for r in report["results"].values())
    lost = any(
        r.get("service", {}).get("jobs", {}).get("lost", 0) for r in report["results"].values()
    )
    return 1 if failed or lost else 0


if __name__ == "__main__":
    sys.exit(main())
