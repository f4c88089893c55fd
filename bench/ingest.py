"""Ingest throughput: Loupe (SQLite, PostgreSQL) against Debian's Orthanc 1.10.

Run from the project folder::

    .venv/bin/python -m bench.ingest [--rounds N] [--quick] [--multipart]

What one run does:

* reads the 99-slice CT series from /work/shared/dicom/ct-series (read-only, never
  copied into the project) and makes, in memory, one copy per (round, concurrency) with
  fresh Study/Series/SOP Instance UIDs (file meta kept consistent), so no peer ever sees
  the duplicate path and every peer receives the very same bytes for a given round and
  concurrency; a separate 12-object copy is used for the warm-up;
* starts three peers on 127.0.0.1, each with fresh storage: Orthanc (``POST /instances``),
  Loupe on SQLite and Loupe on PostgreSQL (a fresh cluster from ``tests.servers``), both
  Loupes served by gunicorn and fed through ``POST /api/instances`` with a raw
  ``application/dicom`` body (the way Orthanc receives it), session-authenticated;
* starts a fourth, reference peer, ``gunicorn-bare``: Loupe's gunicorn configuration
  serving ``bench/bare_wsgi.py``, which reads each body and answers without storing, so
  that every run shows the HTTP server's own share of a request beside Orthanc's whole;
* warms each peer up, then for every round, concurrency 1 and 4, and peer (the peer order
  rotates each round, so drift does not favour one of them) uploads the 99 objects from
  1 or 4 client threads, each with its own ``http.client.HTTPConnection`` (keep-alive
  where the server offers it); the client code is identical for all peers;
* checks that every response was 200 and accepted the object as new, and that every peer
  ends with the expected number of instances (Orthanc: ``/statistics``; Loupe: rows
  counted through ``manage.py shell`` with the peer's environment);
* right after each round of Loupe on PostgreSQL at one client, times a round of
  ``bench.ingest_inprocess`` (a process of its own on the same cluster): Loupe's ingest
  called directly, without HTTP, one object after another, with its parse and hash
  timed apart. With it the bench prints where a stored object's server CPU goes:
  Orthanc's whole, Loupe's whole, the HTTP server alone, ingest without HTTP, and the
  rest by difference (Django's request path, session, audit record, thread switches).
  Timed in a block after the HTTP rounds instead, ingest cost 30 to 60 % more than on a
  quiet machine: interleaving keeps it in the same phase as the HTTP rounds;
* prints instances/s (median over rounds, and each round), per-request latency (median,
  p95), the server CPU time per instance and the Loupe/Orthanc ratio (ratio of the
  medians, and the median of the per-round ratios, which cancels slow drift of the
  machine), the CPU steal time seen during the timed runs, and writes everything as JSON
  to ``bench/results/ingest-<timestamp>.json`` (gunicorn warnings, if any, go next to it).

Orthanc is Debian's 1.10 as ``tests.servers.start_orthanc`` configures it (built-in
SQLite index, no storage compression), without the DICOMweb plugin, which ``POST
/instances`` does not use. Every server the bench starts is stopped at the end, also on
error, by the PID it was given.

What each peer makes durable before it answers (strace of a 99-object run): Orthanc
fdatasyncs each stored file (written in place under its UUID) but neither its folder nor,
per instance, its SQLite index (WAL, synced at checkpoints: 6 fdatasyncs for 99 objects);
Loupe fsyncs the temp file (on a worker thread, while the request thread hashes and
parses), links it under its key in one of 256 folders made when the store was, fsyncs
that folder, and commits its row with PostgreSQL's synchronous_commit on (SQLite: WAL
with synchronous FULL, which syncs the WAL at every commit).

Gunicorn configuration: ``-w 2 --threads 4`` (gthread, keep-alive; the README's
deployment line), chosen by an interleaved A/B on this 2-core VM after the ingest work of
issue 2 (6 rounds each, Orthanc in the same rounds; median inst/s and the median of the
per-round ratios to Orthanc):

    config                     PostgreSQL c1   c4           SQLite c1      c4
    sync -w 2                  112 (0.62)  184 (0.53)   158 (0.73)  279 (0.64)
    gthread -w 2 --threads 2   120 (0.65)  186 (0.58)   161 (0.74)  247 (0.54)
    gthread -w 2 --threads 4   111 (0.60)  204 (0.61)   182 (0.85)  277 (0.61)
    gthread -w 2 --threads 8   110 (0.60)  201 (0.57)   180 (0.85)  249 (0.56)
    gthread -w 3 --threads 4   117 (0.64)  212 (0.63)   164 (0.73)  248 (0.55)
    gthread -w 4 --threads 4   122 (0.65)  196 (0.60)   157 (0.71)  292 (0.64)

The configurations are within noise of each other on PostgreSQL; -w 2 --threads 4 is
best or close to it on both databases. Threads overlap a request's fsync and commit
waits with another's parsing (ingest is no longer CPU-bound in Python alone: ~25 % of the
two cores idle with sync -w 2 at 4 clients, perf), and keep-alive spares a connection per
request (a bare gunicorn app reading the same bodies: ~1.2 ms CPU per request with sync
workers, which close the connection, ~0.9 ms with gthread).

Re-checked after the storage and session changes of the following session (4 rounds,
PostgreSQL only, no Orthanc in the run): sync -w 2 162 / 257 inst/s, gthread -w 2
--threads 4 144 / 240, sync -w 4 153 / 262 (c1 / c4): still within noise of each other.

Noise: this is a shared VM; whole-run throughput drifted by up to ±30 % between runs of
the same configuration, hence the interleaving and the per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.client import HTTPConnection, HTTPResponse
from http.cookies import SimpleCookie
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pydicom
from pydicom.uid import generate_uid

from tests.servers import (
    Server,
    create_database,
    free_port,
    manage,
    orthanc_available,
    postgres_available,
    start_orthanc,
    start_postgres,
)

PROJECT_DIR = Path(__file__).resolve().parent.parent
RESULTS_DIR = PROJECT_DIR / "bench" / "results"
SERIES_DIR = Path(os.environ.get("LOUPE_BENCH_SERIES", "/work/shared/dicom/ct-series"))
GUNICORN = PROJECT_DIR / ".venv" / "bin" / "gunicorn"
HOST = "127.0.0.1"
CONCURRENCIES = (1, 4)
WARMUP_OBJECTS = 12
WARMUP_CONCURRENCY = 4
USERNAME = "bench"
PASSWORD = "a-long-bench-password-123"
DEFAULT_WORKERS = 2
DEFAULT_THREADS = 4
GUNICORN_NOTE = (
    "gthread -w 2 --threads 4 (the README's deployment line) chosen by an interleaved A/B "
    "against sync -w 2 and gthread -w 2/3/4 with 2/4/8 threads (see the module docstring): "
    "best or within noise of the best on both databases; keeps connections alive"
)


# --------------------------------------------------------------------------- test data


def load_series(folder: Path) -> list[pydicom.Dataset]:
    files = sorted(folder.glob("*.dcm"))
    if not files:
        sys.exit(
            f"bench.ingest: no DICOM files in {folder}: the 99-slice CT series is needed "
            "(set LOUPE_BENCH_SERIES to another folder of .dcm files to use it instead)"
        )
    return [pydicom.dcmread(path) for path in files]


def fresh_copy(datasets: list[pydicom.Dataset], count: int | None = None) -> list[bytes]:
    """The series (or its first ``count`` objects) re-identified with never-seen UIDs."""
    study_uid, series_uid = generate_uid(), generate_uid()
    payloads = []
    for ds in datasets[:count]:
        sop_uid = generate_uid()
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = sop_uid
        ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
        buffer = BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        payloads.append(buffer.getvalue())
    return payloads


# --------------------------------------------------------------------------- processes


def cpu_ticks() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return values[7] if len(values) > 7 else 0, sum(values[:8])


def process_tree_cpu(root_pid: int) -> float:
    """CPU seconds (user + system) of ``root_pid`` and its live descendants, plus the
    children it has already reaped; approximate, for the CPU-per-instance column."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
        times[pid] = (utime + stime + (cutime + cstime if pid == root_pid else 0)) / tick
    total, todo, seen = 0.0, [root_pid], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += times.get(pid, 0.0)
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return total


@dataclass
class Gunicorn:
    process: subprocess.Popen[bytes]
    root: Path
    port: int
    env: dict[str, str]

    def stop(self) -> None:
        """SIGTERM to the master (it stops its workers); SIGKILL to its process group
        (the master's own PID, it was started in a new session) if it does not exit."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


def loupe_env(root: Path, database_url: str | None) -> dict[str, str]:
    """The environment of a Loupe process with its data folder under ``root`` and its
    database at ``database_url`` (SQLite in the data folder when None)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOUPE_SECRET_KEY": secrets.token_urlsafe(50),
        "LOUPE_DATA_DIR": str(root / "data"),
        "LOUPE_ALLOWED_HOSTS": HOST,
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    else:
        env.pop("DATABASE_URL", None)
    return env


def start_loupe(
    name: str, database_url: str | None, *, workers: int, threads: int, log: Path
) -> Gunicorn:
    """Migrate a fresh Loupe (data folder under /tmp), add the bench user, serve it."""
    root = Path(tempfile.mkdtemp(prefix=f"loupe-bench-{name}-"))
    env = loupe_env(root, database_url)
    try:
        manage(env, "migrate", "--noinput", "-v0")
        manage(
            env,
            "shell",
            "-c",
            "from django.contrib.auth.models import User; "
            f"User.objects.create_user({USERNAME!r}, 'bench@example.org', {PASSWORD!r})",
        )
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return serve(name, "config.wsgi", root, env, workers=workers, threads=threads, log=log)


def start_bare(*, workers: int, threads: int, log: Path) -> Gunicorn:
    """gunicorn, configured as Loupe's, serving bench/bare_wsgi.py (reads, answers,
    keeps nothing): the HTTP server's own cost per request, for the reference row."""
    root = Path(tempfile.mkdtemp(prefix="loupe-bench-bare-"))
    return serve(
        "bare",
        "bench.bare_wsgi",
        root,
        dict(os.environ),
        workers=workers,
        threads=threads,
        log=log,
        ready_path="/",
    )


def serve(
    name: str,
    app: str,
    root: Path,
    env: dict[str, str],
    *,
    workers: int,
    threads: int,
    log: Path,
    ready_path: str = "/login/",
) -> Gunicorn:
    """gunicorn serving the WSGI module ``app`` on a free loopback port, once
    ``GET ready_path`` answers 200 (gthread when ``threads`` > 1)."""
    port = free_port()
    # No control socket: two masters would share ~/.gunicorn/gunicorn.ctl otherwise.
    command = [
        str(GUNICORN),
        app,
        "-b",
        f"{HOST}:{port}",
        "-w",
        str(workers),
        "--no-control-socket",
        "--log-level",
        "warning",
    ]
    if threads > 1:
        command += ["-k", "gthread", "--threads", str(threads)]
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Gunicorn(process, root, port, env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            server.stop()
            raise RuntimeError(f"gunicorn for {name} exited during start-up: see {log}")
        try:
            status, _, _ = request_once(port, "GET", ready_path)
            if status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"gunicorn for {name} did not answer within 60 s: see {log}")


# --------------------------------------------------------------------------- HTTP


def request_once(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, HTTPResponse, bytes]:
    conn = HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response, response.read()
    finally:
        conn.close()


def _cookies(response: HTTPResponse, jar: SimpleCookie) -> None:
    for value in response.headers.get_all("Set-Cookie") or []:
        # Python < 3.14 does not know the Partitioned attribute (CHIPS) and would drop the
        # whole cookie; the bench is no browser, so the attribute does not matter here.
        jar.load(value.replace("; Partitioned", ""))


def login(port: int) -> dict[str, str]:
    """Log in through the form and return the headers an authenticated POST needs."""
    jar: SimpleCookie = SimpleCookie()
    status, response, body = request_once(port, "GET", "/login/")
    _cookies(response, jar)
    match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    if status != 200 or match is None or "csrftoken" not in jar:
        raise RuntimeError(f"GET /login/ gave {status} without a CSRF token")
    form = urlencode(
        {
            "username": USERNAME,
            "password": PASSWORD,
            "csrfmiddlewaretoken": match.group(1).decode(),
        }
    ).encode()
    status, response, _ = request_once(
        port,
        "POST",
        "/login/",
        body=form,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={jar['csrftoken'].value}",
        },
    )
    _cookies(response, jar)  # the session, and the CSRF token rotated at login
    if status != 302 or "sessionid" not in jar:
        raise RuntimeError(f"POST /login/ gave {status} (expected 302 with a session)")
    csrf = jar["csrftoken"].value
    return {"Cookie": f"csrftoken={csrf}; sessionid={jar['sessionid'].value}", "X-CSRFToken": csrf}


@dataclass
class Peer:
    name: str
    port: int
    path: str
    headers: dict[str, str]
    accepted: Callable[[Any], bool]  # the parsed JSON answer says "stored as new"
    count: Callable[[], int]
    cpu_pids: list[int]
    multipart: bool = False
    stores: bool = True  # False for the gunicorn-bare reference, which keeps nothing


def orthanc_accepted(answer: Any) -> bool:
    return isinstance(answer, dict) and answer.get("Status") == "Success"


def loupe_accepted(answer: Any) -> bool:
    return isinstance(answer, dict) and answer.get("summary", {}).get("stored") == 1


def multipart_body(payload: bytes, name: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        "Content-Type: application/dicom\r\n\r\n"
    ).encode()
    return head + payload + f"\r\n--{boundary}--\r\n".encode(), boundary


@dataclass
class Run:
    seconds: float
    latencies_ms: list[float]
    statuses: dict[str, int]
    not_accepted: int
    errors: list[str]
    server_cpu_s: float
    steal_ticks: int = 0
    total_ticks: int = 0

    @property
    def instances_per_second(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0


def upload(peer: Peer, payloads: list[bytes], concurrency: int) -> Run:
    """Send every payload once from ``concurrency`` threads, each with its own connection."""
    lock = threading.Lock()
    position = iter(range(len(payloads)))
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors: list[str] = []
    not_accepted = 0
    barrier = threading.Barrier(concurrency + 1)

    def worker() -> None:
        nonlocal not_accepted
        conn = HTTPConnection(HOST, peer.port, timeout=300)
        conn.connect()
        barrier.wait()
        try:
            while True:
                with lock:
                    index = next(position, None)
                if index is None:
                    return
                headers = {"Accept": "application/json", **peer.headers}
                if peer.multipart:
                    body, boundary = multipart_body(payloads[index], f"{index:06d}.dcm")
                    headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
                else:
                    body = payloads[index]
                    headers["Content-Type"] = "application/dicom"
                started = time.perf_counter()
                try:
                    conn.request("POST", peer.path, body=body, headers=headers)
                    response = conn.getresponse()
                    answer = response.read()
                except OSError as exc:  # count it and go on with a new connection
                    conn.close()
                    with lock:
                        errors.append(f"object {index}: {type(exc).__name__}: {exc}")
                    continue
                elapsed = (time.perf_counter() - started) * 1000
                try:
                    ok = peer.accepted(json.loads(answer))
                except ValueError:
                    ok = False
                with lock:
                    latencies.append(elapsed)
                    key = str(response.status)
                    statuses[key] = statuses.get(key, 0) + 1
                    if not ok:
                        not_accepted += 1
                        if len(errors) < 5:
                            errors.append(f"object {index}: {response.status} {answer[:300]!r}")
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    cpu_before = sum(process_tree_cpu(pid) for pid in peer.cpu_pids)
    steal_before, total_before = cpu_ticks()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    steal_after, total_after = cpu_ticks()
    cpu = sum(process_tree_cpu(pid) for pid in peer.cpu_pids) - cpu_before
    return Run(
        seconds,
        latencies,
        statuses,
        not_accepted,
        errors,
        cpu,
        steal_after - steal_before,
        total_after - total_before,
    )


# --------------------------------------------------------------------------- peers


def orthanc_peer(server: Server) -> Peer:
    def count() -> int:
        _, _, body = request_once(server.port, "GET", "/statistics")
        return int(json.loads(body)["CountInstances"])

    return Peer(
        "orthanc", server.port, "/instances", {}, orthanc_accepted, count, [server.process.pid]
    )


def loupe_peer(name: str, server: Gunicorn, extra_pids: list[int], *, multipart: bool) -> Peer:
    def count() -> int:
        out = manage(
            server.env,
            "shell",
            "-c",
            "from viewer.models import Instance; print(Instance.objects.count())",
        )
        return int(out.strip().splitlines()[-1])

    return Peer(
        name,
        server.port,
        "/api/instances",
        login(server.port),
        loupe_accepted,
        count,
        [server.process.pid, *extra_pids],
        multipart,
    )


class InProcess:
    """``bench.ingest_inprocess`` (Loupe's ingest without HTTP, one thread) in a process
    of its own on a fresh database of the bench's PostgreSQL cluster: ``round()`` times
    one round of the series there and returns its figures per object."""

    def __init__(self, postgres: Server, log: Path) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="loupe-bench-inprocess-"))
        self.rounds: list[dict[str, float]] = []
        try:
            env = loupe_env(self.root, create_database(postgres, "loupe_inprocess"))
            manage(env, "migrate", "--noinput", "-v0")
            with open(log, "ab") as errors:
                self.process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "bench.ingest_inprocess",
                        "--postgres-pid",
                        str(postgres.process.pid),
                    ],
                    cwd=PROJECT_DIR,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    text=True,
                )
            if self._line("start-up") != "ready":
                raise RuntimeError("bench.ingest_inprocess did not start: see the log")
        except BaseException:
            self.stop()
            raise

    def _line(self, what: str) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line:
            raise RuntimeError(f"bench.ingest_inprocess ended during {what}: see the log")
        return line

    def round(self) -> dict[str, float]:
        assert self.process.stdin is not None
        self.process.stdin.write("round\n")
        self.process.stdin.flush()
        figures: dict[str, float] = json.loads(self._line("a round"))
        self.rounds.append(figures)
        return figures

    def summary(self) -> dict[str, Any]:
        medians: dict[str, Any] = {
            key: round(statistics.median(row[key] for row in self.rounds), 2)
            for key in self.rounds[0]
        }
        return {**medians, "rounds": self.rounds}

    def stop(self) -> None:
        process = getattr(self, "process", None)
        if process is not None and process.poll() is None:
            assert process.stdin is not None
            process.stdin.close()  # end of input: it exits
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


def breakdown(results: dict[str, dict[str, Any]], inprocess: dict[str, Any]) -> str:
    """Server CPU per stored object: Orthanc's whole, Loupe's whole over HTTP, and the
    parts of Loupe's measured apart (the HTTP server alone, ingest without HTTP)."""

    def cpu(name: str, concurrency: int) -> float | None:
        row = results.get(f"{name}@{concurrency}")
        return row["server_cpu_ms_per_instance"] if row else None

    def cells(values: list[float | None]) -> str:
        return "".join(f"{v:>7.1f}" if v is not None else f"{'-':>7}" for v in values)

    same = [inprocess["total_ms"] for _ in CONCURRENCIES]
    rest: list[float | None] = []
    for c in CONCURRENCIES:
        loupe, bare = cpu("loupe-postgres", c), cpu("gunicorn-bare", c)
        rest.append(
            loupe - bare - inprocess["total_ms"] if loupe is not None and bare is not None else None
        )
    label = 66
    head = "".join(f"{'c' + str(c):>7}" for c in CONCURRENCIES)
    lines = [
        "Server CPU per stored object, ms (Loupe on PostgreSQL, its processes included):",
        f"{'':<{label}}{head}",
        f"{'  Orthanc, everything':<{label}}{cells([cpu('orthanc', c) for c in CONCURRENCIES])}",
        f"{'  Loupe over HTTP, everything':<{label}}"
        f"{cells([cpu('loupe-postgres', c) for c in CONCURRENCIES])}",
        f"{'    the HTTP server alone (gunicorn-bare)':<{label}}"
        f"{cells([cpu('gunicorn-bare', c) for c in CONCURRENCIES])}",
        f"{'    ingest_bytes without HTTP, one thread':<{label}}{cells(same)}",
        f"{'      parse, checks and index fields (pydicom)':<{label}}"
        f"{inprocess['parse_validate_index_ms']:>7.1f}",
        f"{'      SHA-256':<{label}}{inprocess['sha256_ms']:>7.1f}",
        f"{'      PostgreSQL processes':<{label}}{inprocess['postgres_ms']:>7.1f}",
        f"{'    the rest, by difference: Django, session, audit, threads':<{label}}{cells(rest)}",
        f"Without HTTP, Loupe ingests {inprocess['instances_per_second']:.0f} inst/s on one "
        "thread (bench.ingest_inprocess, each round timed right after Loupe's HTTP round "
        "at one client; medians over rounds). Its figures are per object on one thread, "
        "shown under both concurrencies.",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- facts, stats


def machine_facts(orthanc: Server | None) -> dict[str, Any]:
    """The machine and the software versions; Orthanc's from its ``/system`` (empty when
    ``orthanc`` is None: a run without it)."""
    system: dict[str, Any] = {}
    if orthanc is not None:
        _, _, body = request_once(orthanc.port, "GET", "/system")
        system = json.loads(body)
    cpu_model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    memory_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kb = int(line.split()[1])
    postgres = subprocess.run(
        ["/usr/lib/postgresql/15/bin/postgres", "--version"], capture_output=True, text=True
    ).stdout.strip()
    filesystem = subprocess.run(
        ["df", "--output=fstype", tempfile.gettempdir()], capture_output=True, text=True
    ).stdout.split()[-1:]
    import django
    import gunicorn

    return {
        "nproc": int(subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip() or 0),
        "cpu_model": cpu_model,
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "temp_filesystem": filesystem[0] if filesystem else "",
        "python": platform.python_version(),
        "django": django.get_version(),
        "pydicom": pydicom.__version__,
        "gunicorn": gunicorn.__version__,
        "sqlite": sqlite3.sqlite_version,
        "postgres": postgres,
        "orthanc": system.get("Version", ""),
        "orthanc_database_backend": (system.get("DatabaseBackendPlugin") or "built-in SQLite")
        if system
        else "",
    }


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)] if ordered else float("nan")


def summarize(runs: list[Run]) -> dict[str, Any]:
    latencies = [value for run in runs for value in run.latencies_ms]
    objects = sum(len(run.latencies_ms) for run in runs)
    return {
        "instances_per_second_rounds": [round(run.instances_per_second, 2) for run in runs],
        "instances_per_second_median": round(
            statistics.median(run.instances_per_second for run in runs), 2
        ),
        "latency_ms_median": round(statistics.median(latencies), 1),
        "latency_ms_p95": round(percentile(latencies, 0.95), 1),
        "server_cpu_ms_per_instance": round(
            1000 * sum(run.server_cpu_s for run in runs) / objects, 1
        ),
        "statuses": _merge(run.statuses for run in runs),
        "cpu_steal_percent": round(
            100 * sum(run.steal_ticks for run in runs) / max(1, sum(r.total_ticks for r in runs)),
            1,
        ),
        "not_accepted": sum(run.not_accepted for run in runs),
        "errors": [error for run in runs for error in run.errors][:10],
    }


def _merge(dicts: Iterator[dict[str, int]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for item in dicts:
        for key, value in item.items():
            merged[key] = merged.get(key, 0) + value
    return merged


def table(results: dict[str, dict[str, Any]], names: list[str], rounds: int) -> str:
    header = (
        f"{'peer':<24} {'conc':>4} {'inst/s':>8} {'rounds':<24} {'lat med':>8} "
        f"{'lat p95':>8} {'CPU ms/inst':>11} {'vs Orthanc':>10} {'per-round':>9}"
    )
    lines = [header, "-" * len(header)]
    for concurrency in CONCURRENCIES:
        for name in names:
            row = results.get(f"{name}@{concurrency}")
            if row is None:
                continue
            ips = row["instances_per_second_median"]
            ratio = f"{row['vs_orthanc']:.2f}" if "vs_orthanc" in row else "-"
            per_ratio = (
                f"{row['vs_orthanc_per_round_median']:.2f}"
                if "vs_orthanc_per_round_median" in row
                else "-"
            )
            per_round = " / ".join(f"{v:.1f}" for v in row["instances_per_second_rounds"])
            lines.append(
                f"{name:<24} {concurrency:>4} {ips:>8.1f} {per_round:<24} "
                f"{row['latency_ms_median']:>8.1f} {row['latency_ms_p95']:>8.1f} "
                f"{row['server_cpu_ms_per_instance']:>11.1f} {ratio:>10} {per_ratio:>9}"
            )
        lines.append("")
    lines.append(
        f"inst/s: median over {rounds} round(s) of 99 objects; latency in ms per request "
        "(all rounds); CPU ms/inst: server process tree user+system CPU (Loupe on "
        "PostgreSQL includes the postgres processes); vs Orthanc: ratio of the median "
        "inst/s at the same concurrency; per-round: median of the ratios of rounds timed "
        "back to back. gunicorn-bare: Loupe's gunicorn configuration serving an app that "
        "reads each body and answers without storing (the HTTP server's share of a request)."
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


@contextmanager
def stopping(server: Server | Gunicorn | InProcess) -> Iterator[None]:
    try:
        yield
    finally:
        server.stop()


def write_results(
    name: str, stamp: str, payload: dict[str, Any], *, log: Path, started: float, checks: list[str]
) -> int:
    """Write ``payload`` to bench/results/<name>-<stamp>.json, drop an empty server log,
    and return the exit status (1 when a check failed)."""
    output = RESULTS_DIR / f"{name}-{stamp}.json"
    output.write_text(json.dumps(payload, indent=2))
    if log.exists() and log.stat().st_size == 0:
        log.unlink()
    print(f"results: {output.relative_to(PROJECT_DIR)} ({time.monotonic() - started:.0f} s)")
    return 1 if checks else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3)")
    parser.add_argument("--quick", action="store_true", help="one round")
    parser.add_argument(
        "--multipart",
        action="store_true",
        help="also time Loupe with multipart/form-data (one file per request)",
    )
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="gunicorn -w")
    parser.add_argument(
        "--threads", type=int, default=DEFAULT_THREADS, help="gunicorn --threads (>1: gthread)"
    )
    parser.add_argument(
        "--peers",
        default="orthanc,loupe-sqlite,loupe-postgres,gunicorn-bare",
        help="comma-separated subset of orthanc,loupe-sqlite,loupe-postgres,gunicorn-bare "
        "(the last: Loupe's gunicorn configuration answering without storing, a reference)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds = 1
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wanted = [name.strip() for name in args.peers.split(",") if name.strip()]
    for reason in (
        orthanc_available(),
        postgres_available() if "loupe-postgres" in wanted else None,
    ):
        if reason:
            sys.exit(f"bench.ingest: {reason}")
    datasets = load_series(SERIES_DIR)
    series_size = len(datasets)
    started = time.monotonic()
    print(f"preparing payloads: {args.rounds} round(s) x {len(CONCURRENCIES)} concurrencies ...")
    warmup = fresh_copy(datasets, WARMUP_OBJECTS)
    payloads = {(r, c): fresh_copy(datasets) for r in range(args.rounds) for c in CONCURRENCIES}
    multipart_payloads = (
        {(r, c): fresh_copy(datasets) for r in range(args.rounds) for c in CONCURRENCIES}
        if args.multipart
        else {}
    )
    del datasets
    print(f"  {len(payloads)} copies of {series_size} objects, {time.monotonic() - started:.1f} s")

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    log = RESULTS_DIR / f"ingest-{stamp}.gunicorn.log"
    gunicorn_config = f"gunicorn -w {args.workers}" + (
        f" -k gthread --threads {args.threads}" if args.threads > 1 else " (sync)"
    )
    peers: list[Peer] = []
    runs: dict[str, list[Run]] = {}
    with ExitStack() as stack:
        orthanc = start_orthanc(dicomweb=False)
        stack.enter_context(stopping(orthanc))
        facts = machine_facts(orthanc)
        if "orthanc" in wanted:
            peers.append(orthanc_peer(orthanc))
        if "loupe-sqlite" in wanted:
            sqlite_loupe = start_loupe(
                "sqlite", None, workers=args.workers, threads=args.threads, log=log
            )
            stack.enter_context(stopping(sqlite_loupe))
            peers.append(loupe_peer("loupe-sqlite", sqlite_loupe, [], multipart=False))
        if "loupe-postgres" in wanted:
            postgres = start_postgres()
            stack.enter_context(stopping(postgres))
            url = create_database(postgres, "loupe_bench")
            pg_loupe = start_loupe(
                "postgres", url, workers=args.workers, threads=args.threads, log=log
            )
            stack.enter_context(stopping(pg_loupe))
            peers.append(
                loupe_peer("loupe-postgres", pg_loupe, [postgres.process.pid], multipart=False)
            )
        without_http: InProcess | None = None
        if "loupe-postgres" in wanted:
            without_http = InProcess(postgres, log)
            stack.enter_context(stopping(without_http))
        if "gunicorn-bare" in wanted:
            bare = start_bare(workers=args.workers, threads=args.threads, log=log)
            stack.enter_context(stopping(bare))
            peers.append(
                Peer(
                    "gunicorn-bare",
                    bare.port,
                    "/",
                    {},
                    loupe_accepted,
                    lambda: 0,
                    [bare.process.pid],
                    stores=False,
                )
            )
        if args.multipart:
            extra = [
                Peer(**{**vars(peer), "name": f"{peer.name}-multipart", "multipart": True})
                for peer in peers
                if peer.name.startswith("loupe")
            ]
            peers += extra

        print(f"machine: {json.dumps(facts)}")
        print(f"Loupe served by {gunicorn_config}")
        print(f"warm-up: {WARMUP_OBJECTS} objects at concurrency {WARMUP_CONCURRENCY} per peer")
        warm_failures: list[str] = []
        for peer in peers:
            if peer.multipart:
                continue  # shares its server with the raw-body peer, already warm
            warm = upload(peer, warmup, WARMUP_CONCURRENCY)
            if warm.not_accepted or warm.errors:
                warm_failures.append(f"{peer.name}: {warm.errors}")
        if warm_failures:
            raise RuntimeError(f"warm-up failed: {warm_failures}")

        for r in range(args.rounds):
            for c in CONCURRENCIES:
                order = peers[r % len(peers) :] + peers[: r % len(peers)]
                for peer in order:
                    data = (multipart_payloads if peer.multipart else payloads)[(r, c)]
                    run = upload(peer, data, c)
                    runs.setdefault(f"{peer.name}@{c}", []).append(run)
                    print(
                        f"  round {r + 1} conc {c} {peer.name:<24} "
                        f"{run.instances_per_second:7.1f} inst/s  {run.seconds:6.2f} s"
                        + (
                            f"  PROBLEMS: {run.errors[:2]}"
                            if run.errors or run.not_accepted
                            else ""
                        )
                    )
                    if without_http is not None and peer.name == "loupe-postgres" and c == 1:
                        figures = without_http.round()  # right after, in the same phase
                        print(
                            f"  round {r + 1} conc 1 {'(ingest without HTTP)':<24} "
                            f"{figures['instances_per_second']:7.1f} inst/s"
                        )

        per_server = len(CONCURRENCIES) * args.rounds * series_size
        stored_by = [peer for peer in peers if peer.stores and not peer.multipart]
        expected = {peer.name: WARMUP_OBJECTS + per_server for peer in stored_by}
        for peer in peers:
            if peer.multipart:
                expected[peer.name.removesuffix("-multipart")] += per_server
        counts = {peer.name: peer.count() for peer in stored_by}
        inprocess = without_http.summary() if without_http is not None else None

    results = {key: summarize(value) for key, value in runs.items()}
    for concurrency in CONCURRENCIES:
        base = runs.get(f"orthanc@{concurrency}")
        if not base:
            continue
        for peer in peers:
            key = f"{peer.name}@{concurrency}"
            ratios = [
                run.instances_per_second / orthanc.instances_per_second
                for run, orthanc in zip(runs[key], base, strict=True)
            ]
            results[key]["vs_orthanc"] = round(
                results[key]["instances_per_second_median"]
                / results[f"orthanc@{concurrency}"]["instances_per_second_median"],
                3,
            )
            results[key]["vs_orthanc_per_round"] = [round(r, 3) for r in ratios]
            results[key]["vs_orthanc_per_round_median"] = round(statistics.median(ratios), 3)
    steal = sum(run.steal_ticks for value in runs.values() for run in value)
    ticks = sum(run.total_ticks for value in runs.values() for run in value)
    steal_percent = round(100 * steal / max(1, ticks), 1)
    names = [peer.name for peer in peers]
    checks: list[str] = []
    for key, row in results.items():
        if set(row["statuses"]) != {"200"} or row["not_accepted"] or row["errors"]:
            checks.append(f"{key}: statuses {row['statuses']}, errors {row['errors'][:3]}")
    for name, count in counts.items():
        if count != expected[name]:
            checks.append(f"{name}: {count} instances stored, expected {expected[name]}")

    report = table(results, names, args.rounds)
    print()
    bodies = "raw application/dicom" + (" and multipart/form-data" if args.multipart else "")
    print(f"Ingest of the {series_size}-slice CT series ({SERIES_DIR}), {bodies} bodies")
    print(
        f"machine: nproc {facts['nproc']}, {facts['cpu_model']}, Python {facts['python']}, "
        f"Orthanc {facts['orthanc']}, {facts['postgres']}, SQLite {facts['sqlite']}, "
        f"temp fs {facts['temp_filesystem']}"
    )
    default = (args.workers, args.threads) == (DEFAULT_WORKERS, DEFAULT_THREADS)
    print(f"Loupe: {gunicorn_config}: {GUNICORN_NOTE if default else 'not the default'}")
    print(f"CPU steal during the timed runs: {steal_percent} %")
    print()
    print(report)
    print()
    if inprocess is not None:
        print(breakdown(results, inprocess))
        print()
    print(f"instances stored: {counts} (expected {expected})")
    print(
        "checks: " + ("all responses 200, every object stored as new" if not checks else "FAILED")
    )
    for problem in checks:
        print(f"  {problem}")

    return write_results(
        "ingest",
        stamp,
        {
            "benchmark": "ingest",
            "timestamp": stamp,
            "series": str(SERIES_DIR),
            "objects_per_round": series_size,
            "rounds": args.rounds,
            "concurrencies": list(CONCURRENCIES),
            "warmup_objects": WARMUP_OBJECTS,
            "loupe_server": gunicorn_config,
            "loupe_server_note": GUNICORN_NOTE,
            "machine": facts,
            "results": results,
            "per_round_seconds": {
                key: [round(run.seconds, 3) for run in value] for key, value in runs.items()
            },
            "cpu_steal_percent": steal_percent,
            "instances_stored": counts,
            "instances_expected": expected,
            "ingest_without_http": inprocess,
            "checks_passed": not checks,
            "problems": checks,
            "wall_seconds": round(time.monotonic() - started, 1),
            "table": report,
        },
        log=log,
        started=started,
        checks=checks,
    )


if __name__ == "__main__":
    sys.exit(main())
