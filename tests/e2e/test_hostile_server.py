"""Corrupt images against the real server: Loupe under its gunicorn configuration, as one
node and as two nodes behind nginx on PostgreSQL and Redis (README "Deploying").

Objects whose compressed pixel data was damaged (random bytes of their fragments
overwritten, seeded, from real files of every compressed transfer syntax of the corpus,
and RLE frames that make pylibjpeg-rle panic) are imported unchecked
(LOUPE_INGEST_DECODE_CHECK=off, as objects stored before the check existed), and more of
them are uploaded to the running server, which checks them. Then every rendered image,
tile and thumbnail of them is requested while another client scrolls a good CT series.

What must hold: every answer is a 200 (damage the decoder did not notice) or a 4xx with
a JSON message; no 5xx, no connection reset, no request that does not finish; the
gunicorn master's workers are the ones it started (no worker died or was restarted, by
their PIDs and the master's log); the scrolling client saw only 200s.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
import pytest
import requests

from tests.conftest import require
from tests.servers import (
    Server,
    manage,
    nginx_available,
    node_env,
    postgres_available,
    redis_available,
    start_loupe,
    start_nodes_behind_nginx,
    start_postgres,
    start_redis,
)
from tests.undecodable import rle_ct, with_pixel_bytes_changed

PASSWORD = "a-long-test-password"
TIMEOUT = 60  # seconds for any one request: beyond it, the request hung

# Encapsulated files of the corpus, one per transfer syntax and photometric where it has one.
DAMAGED_SOURCES = (
    "compressed/CT_WG04_CT1_RLE_fragments.dcm",
    "compressed/CT_WG04_CT1_J2KI_jpeg2000_lossy.dcm",
    "compressed/CT_WG04_CT1_JLSN_jpegls_nearlossless.dcm",
    "compressed/MR_jpeg_lossless_process14_nonSV1.dcm",
    "compressed/CR_WG04_RG2_JPLY_jpeg_extended_12bit.dcm",
    "compressed/US_ATL_jpeg_baseline_YBR422.dcm",
    "compressed/US_Acuson_jpeg_extended_YBR.dcm",
    "compressed/US_GE_LOGIQe_jpeg2000_lossy_YBR_ICT.dcm",
    "compressed/siemens-mr-same-image/4.dcm",
    "compressed/siemens-mr-same-image/5.dcm",
    "compressed/siemens-mr-same-image/7.dcm",
    "compressed/siemens-mr-same-image/9.dcm",
    "cr-monochrome1/Monochrome1-Jpeg.dcm",
    "cr-monochrome1/RG3_J2KR.dcm",
    "us-rgb-multiframe/US_Mindray_YBR_FULL_RLE_planar1.dcm",
    "ct-prior-pair-mini/TEST_1_study_1234.dcm",
)


@dataclass
class Loupe:
    """The server under attack: one node, or two nodes behind nginx (``url`` is nginx's,
    HTTPS verified against ``verify``); ``nodes`` are the gunicorn masters to watch."""

    nodes: list[Server]
    session: requests.Session
    url: str
    verify: str | bool = True

    def get(self, path: str, **params: str) -> requests.Response:
        return self.session.get(f"{self.url}{path}", params=params, timeout=TIMEOUT)


def worker_pids(master: int) -> set[int]:
    return {int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()}


def sign_in(url: str, verify: str | bool = True) -> requests.Session:
    session = requests.Session()
    session.verify = verify
    session.trust_env = (
        False  # else REQUESTS_CA_BUNDLE overrides ``verify`` (and loopback needs no proxy)
    )
    session.headers["Origin"] = url  # over HTTPS Django's CSRF check wants it
    page = session.get(f"{url}/login/", timeout=TIMEOUT)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token is not None
    answer = session.post(
        f"{url}/login/",
        data={"username": "radiologist", "password": PASSWORD, "csrfmiddlewaretoken": token[1]},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert answer.status_code == 302, answer.text[:300]
    name = "__Host-csrftoken" if url.startswith("https:") else "csrftoken"
    session.headers["X-CSRFToken"] = session.cookies[name] or ""
    return session


def write_damaged(folder: Path, shared_dicom: Path, seeds: range) -> list[Path]:
    folder.mkdir()
    paths = []
    for source in DAMAGED_SOURCES:
        for seed in seeds:
            path = folder / f"{Path(source).stem}-{seed}.dcm"
            path.write_bytes(with_pixel_bytes_changed(shared_dicom / source, seed=seed))
            paths.append(path)
    for frames, bad in ((1, frozenset({0})), (3, frozenset({1})), (4, frozenset({0, 3}))):
        path = folder / f"rle-overrun-{frames}-{len(paths)}.dcm"
        path.write_bytes(rle_ct(frames, bad))
        paths.append(path)
    return paths


def load(env: dict[str, str], tmp_path: Path, shared_dicom: Path) -> None:
    """The radiologist, 30 good CT slices, and the damaged objects stored unchecked."""
    manage(
        env,
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        f"User.objects.create_user('radiologist', password={PASSWORD!r})",
    )
    good = sorted((shared_dicom / "ct-series").glob("*.dcm"))[:30]
    manage(env, "import_dicom", *map(str, good), "--no-progress")
    stored = write_damaged(tmp_path / "stored", shared_dicom, range(3))
    manage(
        {**env, "LOUPE_INGEST_DECODE_CHECK": "off"},
        "import_dicom",
        str(tmp_path / "stored"),
        "--no-progress",
    )
    assert stored


def one_node(tmp_path: Path, shared_dicom: Path, stack: contextlib.ExitStack) -> Loupe:
    env = {
        **os.environ,
        "LOUPE_DATA_DIR": str(tmp_path / "data"),
        "LOUPE_SECRET_KEY": "hostile-input-test-" + "k" * 40,
        "LOUPE_EMBED": "0",  # plain http on loopback: cookies without Secure
        "LOUPE_LOG_LEVEL": "WARNING",
    }
    env.pop("DATABASE_URL", None)
    env.pop("LOUPE_REDIS_URL", None)
    manage(env, "migrate", "-v0")
    load(env, tmp_path, shared_dicom)
    server = start_loupe(env, tmp_path / "server")
    stack.callback(server.stop)
    return Loupe([server], sign_in(server.url), server.url)


def two_nodes(tmp_path: Path, shared_dicom: Path, stack: contextlib.ExitStack) -> Loupe:
    """README "Deploying": PostgreSQL, Redis, two nodes sharing them and the data folder,
    nginx in front with a self-signed certificate."""
    for missing in (postgres_available(), redis_available(), nginx_available()):
        require(missing)
    postgres = start_postgres()
    stack.callback(postgres.stop)
    redis = start_redis()
    stack.callback(redis.stop)
    env = node_env(postgres, redis, "hostile", tmp_path / "data", "hostile-input-" + "k" * 40)
    load(env, tmp_path, shared_dicom)
    nodes, nginx, certificate = start_nodes_behind_nginx(env, tmp_path, stack)
    return Loupe(nodes, sign_in(nginx.url, str(certificate)), nginx.url, str(certificate))


@pytest.fixture(params=["one node", "two nodes behind nginx"])
def loupe(request: Any, tmp_path: Path, shared_dicom: Path) -> Iterator[Loupe]:
    with contextlib.ExitStack() as stack:
        start = one_node if request.param == "one node" else two_nodes
        yield start(tmp_path, shared_dicom, stack)


@dataclass
class Tally:
    statuses: dict[int, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def answer(self, what: str, call: Any) -> requests.Response | None:
        started = time.monotonic()
        try:
            response: requests.Response = call()
        except requests.RequestException as exc:  # reset, refused, timed out
            self.problems.append(f"{what}: {type(exc).__name__}: {exc}")
            return None
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        if response.status_code >= 500:
            self.problems.append(f"{what}: {response.status_code} {response.text[:200]}")
        elif response.status_code >= 400:
            body = response.json() if "json" in response.headers.get("Content-Type", "") else {}
            # An error ({"code", "message"}), or an upload's results, each with its reason.
            said = body.get("message") or [r.get("reason") for r in body.get("results", [])]
            if not said or not all(said):
                self.problems.append(f"{what}: {response.status_code} without a message")
        if time.monotonic() - started > TIMEOUT:
            self.problems.append(f"{what}: took {time.monotonic() - started:.0f} s")
        return response


def resources(path: Path) -> list[str]:
    dataset = pydicom.dcmread(path, stop_before_pixels=True)
    base = (
        f"/dicom-web/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}"
        f"/instances/{dataset.SOPInstanceUID}"
    )
    frames = int(dataset.get("NumberOfFrames") or 1)
    return [
        *(f"{base}/frames/{n}/rendered" for n in range(1, frames + 1)),
        f"{base}/frames/{frames}/tiles/0/0/0",
        f"{base}/thumbnail",
        f"/dicom-web/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}/thumbnail",
    ]


def test_corrupt_images_cost_only_their_own_requests(
    loupe: Loupe, tmp_path: Path, shared_dicom: Path
) -> None:
    workers = {node.process.pid: worker_pids(node.process.pid) for node in loupe.nodes}
    assert all(len(pids) == 2 for pids in workers.values()), workers

    # Another radiologist scrolls the good CT series the whole time.
    study = loupe.get(
        "/api/studies/1.3.6.1.4.1.14519.5.2.1.7085.2626.258626612405225511766549337110"
    )
    assert study.status_code == 200
    slices = [
        i["urls"]["rendered"].replace("{frame}", "1")
        for i in study.json()["series"][0]["instances"]
    ]
    scroller, done = Tally(), threading.Event()

    def scroll() -> None:
        session = sign_in(loupe.url, loupe.verify)
        step = 0
        while not done.is_set():
            path = slices[step % len(slices)]
            window = f"{-600 + (step * 37) % 1200},{400 + step}"
            answer = scroller.answer(
                path,
                lambda path=path, window=window: session.get(
                    f"{loupe.url}{path}", params={"window": window}, timeout=TIMEOUT
                ),
            )
            if answer is not None and answer.status_code != 200:
                scroller.problems.append(f"{path}: {answer.status_code}")
            step += 1

    thread = threading.Thread(target=scroll, daemon=True)
    thread.start()
    try:
        attack = Tally()
        # Objects stored unchecked: their images, tiles and thumbnails.
        stored = sorted((tmp_path / "stored").iterdir())
        for path in stored:
            for resource in resources(path):
                attack.answer(resource, lambda resource=resource: loupe.get(resource))
        # The same again: answered from the flags now, without a decoder.
        for path in stored[:10]:
            for resource in resources(path):
                attack.answer(resource, lambda resource=resource: loupe.get(resource))
        # New damaged objects uploaded to the running server, which checks them.
        uploads = write_damaged(tmp_path / "uploaded", shared_dicom, range(3, 5))
        refused = 0
        for path in uploads:
            answer = attack.answer(
                path.name,
                lambda path=path: loupe.session.post(
                    f"{loupe.url}/api/instances",
                    data=path.read_bytes(),
                    headers={"Content-Type": "application/dicom"},
                    timeout=TIMEOUT,
                ),
            )
            if answer is not None and answer.status_code == 422:
                assert answer.json()["results"][0]["code"] == "undecodable"
                refused += 1
    finally:
        done.set()
        thread.join(timeout=TIMEOUT)

    assert attack.problems == [], attack.problems[:10]
    assert set(attack.statuses) <= {200, 404, 422}, attack.statuses
    assert attack.statuses.get(422, 0) >= len(stored)  # most damage is found, and said
    assert refused >= len(uploads) // 2
    assert scroller.problems == [] and scroller.statuses.get(200, 0) > 20, scroller.statuses

    # No worker died on any node: the same PIDs, and no master had to boot another.
    for node in loupe.nodes:
        check_node(node, workers[node.process.pid])
    # The decoder processes that failed were replaced, and their failures logged.
    logs = [Path(node.extra["log"]).read_text() for node in loupe.nodes]
    assert any("flagged undecodable" in log for log in logs)


def check_node(node: Server, workers: set[int]) -> None:
    assert worker_pids(node.process.pid) == workers
    log = Path(node.extra["log"]).read_text()
    assert log.count("Booting worker") == 2, log[-3000:]
    for sign in (
        "WORKER TIMEOUT",
        "was sent",
        "Worker exiting",
        "Traceback",
        "Internal Server Error",
    ):
        assert sign not in log, log[-3000:]
