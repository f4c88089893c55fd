"""What the benchmarks share: the corpus, the servers, the client, the figures, the results.

* the corpus: ``--corpus PATH`` (the shared DICOM folder) and re-identified copies of a
  series;
* processes: CPU and memory of a process tree, CPU steal, ending and relaunching a server;
* Loupe under gunicorn (fresh data folder, migrated, the bench user, files imported),
  waiting until a restarted Loupe has settled; Orthanc and PostgreSQL come from
  ``tests.servers``;
* the client: one-shot requests, the login (session cookie and CSRF token), and
  ``send_all``, which times a batch of requests from client threads with keep-alive
  connections and reads the server's CPU around it;
* figures: nearest-rank percentiles, machine facts, the commit measured;
* results: ``BenchRun`` names a run, keeps its gunicorn log beside its results and writes
  ``bench/results/<name>-<timestamp>.json``; its exit status is 1 when a check failed.

How each benchmark uses them: bench/README.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.client import HTTPConnection, HTTPResponse
from http.cookies import SimpleCookie
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pydicom
from pydicom.uid import generate_uid

from tests.paths import PROJECT_DIR, SHARED_DICOM
from tests.servers import PG_BIN, Server, free_port, manage

RESULTS_DIR = PROJECT_DIR / "bench" / "results"
GUNICORN = Path(sys.executable).with_name("gunicorn")
HOST = "127.0.0.1"
USERNAME = "bench"
PASSWORD = "a-long-bench-password-123"
DEFAULT_WORKERS = 2
DEFAULT_THREADS = 4
SETTLED_SECONDS = 0.5  # a started Loupe has settled once its tree used no CPU this long


# --------------------------------------------------------------------------- the corpus


def argument_parser(program: str, description: str | None) -> argparse.ArgumentParser:
    """A benchmark's command line: ``python -m <program>``, its docstring as the help, and
    ``--corpus`` and ``--series``."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {program}",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_corpus_argument(parser)
    add_series_argument(parser)
    return parser


def add_corpus_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--corpus",
        type=Path,
        default=SHARED_DICOM,
        metavar="PATH",
        help="the shared DICOM corpus (default: LOUPE_SHARED_DICOM or ../shared/dicom "
        f"beside the project folder, here {SHARED_DICOM})",
    )


def series_folder(args: argparse.Namespace) -> Path:
    """``--series``, else LOUPE_BENCH_SERIES, else ``ct-series`` of the corpus."""
    chosen = getattr(args, "series", None) or os.environ.get("LOUPE_BENCH_SERIES")
    return Path(chosen) if chosen else args.corpus / "ct-series"


def add_series_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--series",
        type=Path,
        metavar="PATH",
        help="a folder of .dcm files (default: LOUPE_BENCH_SERIES, else the corpus's "
        "99-slice ct-series)",
    )


def series_files(folder: Path, program: str) -> list[Path]:
    """The .dcm files of ``folder`` in name order; exits with a message when there are none."""
    files = sorted(folder.glob("*.dcm"))
    if not files:
        sys.exit(
            f"{program}: no DICOM files in {folder}: the 99-slice CT series is needed "
            "(--corpus PATH, or --series PATH for another folder of .dcm files)"
        )
    return files


def load_series(folder: Path, program: str) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(path) for path in series_files(folder, program)]


def fresh_copy(datasets: list[pydicom.Dataset], count: int | None = None) -> list[bytes]:
    """The series (or its first ``count`` objects) re-identified with never-seen Study,
    Series and SOP Instance UIDs (the file meta kept consistent), as file bytes."""
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


def steal_percent(before: tuple[int, int], after: tuple[int, int]) -> float:
    """CPU steal between two ``cpu_ticks()`` readings, in percent of all CPU time."""
    return round(100 * (after[0] - before[0]) / max(1, after[1] - before[1]), 1)


def process_tree_cpu(root_pid: int) -> float:
    """CPU seconds (user + system) of ``root_pid`` and its live descendants, plus the
    children it has already reaped; approximate, for CPU-per-request columns."""
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


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def process_tree(root: int) -> list[int]:
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo += children(pid)
    return pids


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _pss_kb(pid: int) -> int:
    """Proportional set size: each page's size divided by the number of processes that
    map it, so that pages shared by forked processes are counted once in a sum."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


@dataclass
class PeakMemory:
    """Peak of the summed VmHWM (and of the summed VmRSS and PSS samples) of each named
    process tree; ``roots()`` gives the current root PIDs (a restart replaces them).
    ``start()`` samples from a thread every ``every`` seconds, PSS every ``pss_every``-th
    sample (smaps_rollup costs the kernel ~0.7 ms per process); ``sample()`` reads once."""

    roots: Callable[[], dict[str, int]]
    every: float = 0.2
    pss_every: int = 5
    hwm_kb: dict[str, int] = field(default_factory=dict)
    rss_kb: dict[str, int] = field(default_factory=dict)
    pss_kb: dict[str, int] = field(default_factory=dict)
    processes: dict[str, int] = field(default_factory=dict)
    per_process_hwm_kb: dict[str, dict[int, int]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sample(self, pss: bool = True) -> None:
        with self._lock:
            for name, root in self.roots().items():
                hwm = {pid: _status_kb(pid, "VmHWM") for pid in process_tree(root)}
                rss = sum(_status_kb(pid, "VmRSS") for pid in hwm)
                self.hwm_kb[name] = max(self.hwm_kb.get(name, 0), sum(hwm.values()))
                self.rss_kb[name] = max(self.rss_kb.get(name, 0), rss)
                self.processes[name] = max(self.processes.get(name, 0), len(hwm))
                if pss:
                    total = sum(_pss_kb(pid) for pid in hwm)
                    self.pss_kb[name] = max(self.pss_kb.get(name, 0), total)
                known = self.per_process_hwm_kb.setdefault(name, {})
                for pid, kb in hwm.items():
                    known[pid] = max(known.get(pid, 0), kb)

    def run(self) -> None:
        for count in itertools.count(1):
            if self._stop.wait(self.every):
                return
            self.sample(pss=count % self.pss_every == 0)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
        self.sample()

    def report(self) -> dict[str, Any]:
        """The peaks in MB, for the results."""

        def mb(kb: int) -> float:
            return round(kb / 1024, 1)

        return {
            "peak_hwm_mb": {name: mb(kb) for name, kb in self.hwm_kb.items()},
            "peak_sampled_rss_mb": {name: mb(kb) for name, kb in self.rss_kb.items()},
            "peak_sampled_pss_mb": {name: mb(kb) for name, kb in self.pss_kb.items()},
            "processes_max": dict(self.processes),
            "per_process_hwm_mb": {
                name: {str(pid): mb(kb) for pid, kb in sorted(found.items())}
                for name, found in self.per_process_hwm_kb.items()
            },
        }


def end(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM by PID, SIGKILL by PID if it has not exited after 30 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_for(process: subprocess.Popen[bytes], port: int, ready: str, what: str, log: Path) -> None:
    """Wait until ``GET ready`` on ``port`` answers 200; ends ``process`` (by PID) and
    raises if it exits first or does not answer within 60 s."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited during start-up: see {log}")
        try:
            if request_once(port, "GET", ready)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    end(process)
    raise RuntimeError(f"{what} did not answer within 60 s: see {log}")


def relaunch(
    process: subprocess.Popen[bytes], port: int, env: dict[str, str] | None, log: Path, ready: str
) -> subprocess.Popen[bytes]:
    """Run the command ``process`` ran (it has ended) again, on the same port with
    ``env`` (this process's environment when None), once ``GET ready`` answers 200."""
    with open(log, "ab") as out:
        started = subprocess.Popen(
            process.args,
            cwd=PROJECT_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_for(started, port, ready, repr(process.args), log)
    return started


# --------------------------------------------------------------------------- Loupe


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


def gunicorn_config(workers: int = DEFAULT_WORKERS, threads: int = DEFAULT_THREADS) -> str:
    return f"gunicorn -w {workers}" + (
        f" -k gthread --threads {threads}" if threads > 1 else " (sync)"
    )


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


def import_files(env: dict[str, str], paths: Sequence[Path], objects: int) -> None:
    """``manage.py import_dicom`` of ``paths``; raises unless all ``objects`` are stored."""
    out = manage(env, "import_dicom", *map(str, paths), "--no-progress")
    summary = out.strip().splitlines()[-1]
    if f"{objects} object(s): {objects} stored" not in summary:
        raise RuntimeError(f"import_dicom: {summary}")


def start_loupe(
    name: str,
    *,
    log: Path,
    database_url: str | None = None,
    workers: int = DEFAULT_WORKERS,
    threads: int = DEFAULT_THREADS,
    imports: Sequence[Path] = (),
    objects: int = 0,
    settings: dict[str, str | None] | None = None,
) -> Gunicorn:
    """A fresh Loupe (data folder under /tmp, database at ``database_url`` or SQLite),
    migrated, with the bench user and ``imports`` imported (``objects`` of them, all
    stored), served by gunicorn; ``settings`` are set in its environment (None: removed)."""
    root = Path(tempfile.mkdtemp(prefix=f"loupe-bench-{name}-"))
    env = loupe_env(root, database_url)
    for key, value in (settings or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    try:
        manage(env, "migrate", "--noinput", "-v0")
        manage(
            env,
            "shell",
            "-c",
            "from django.contrib.auth.models import User; "
            f"User.objects.create_user({USERNAME!r}, 'bench@example.org', {PASSWORD!r})",
        )
        if imports:
            import_files(env, imports, objects)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return serve(name, "config.wsgi", root, env, workers=workers, threads=threads, log=log)


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
    ``GET ready_path`` answers 200 (gthread when ``threads`` > 1; warnings only, no
    access log)."""
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
    try:
        wait_for(process, port, ready_path, f"gunicorn for {name}", log)
    except BaseException:
        server.stop()
        raise
    return server


_default_decoders: dict[str, int] = {}  # the settings' default, asked once


def decoders_per_worker(env: dict[str, str]) -> int:
    """LOUPE_DECODER_PROCESSES as a Loupe with ``env`` reads it (the settings' default,
    asked once, where ``env`` does not set it)."""
    if "LOUPE_DECODER_PROCESSES" in env:
        return int(env["LOUPE_DECODER_PROCESSES"])
    if "default" not in _default_decoders:
        out = manage(
            env,
            "shell",
            "-c",
            "from django.conf import settings; print(settings.LOUPE_DECODER_PROCESSES)",
        )
        _default_decoders["default"] = int(out.split()[-1])
    return _default_decoders["default"]


def decoder_processes(master: int) -> dict[int, list[int]]:
    """Each gunicorn worker of ``master`` -> the PIDs of its decoder processes: the
    children of its ``multiprocessing`` forkserver (``viewer/dicom/decoder_pool.py``)."""
    found: dict[int, list[int]] = {}
    for worker in children(master):
        found[worker] = []
        for child in children(worker):
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"multiprocessing.forkserver" in command:
                found[worker] += children(child)
    return found


def wait_until_settled(master: int, workers: int, decoders: int, timeout: float = 60.0) -> float:
    """Wait until gunicorn ``master`` has ``workers`` workers, each with ``decoders``
    decoder processes forked (their pool started by ``config/wsgi.py`` once the
    application is loaded), and no process of its tree has used CPU for
    ``SETTLED_SECONDS``: the application is loaded and the pools are up. The seconds
    waited."""
    started = time.monotonic()
    deadline = started + timeout
    quiet_since: float | None = None
    last_cpu = -1.0
    while time.monotonic() < deadline:
        found = decoder_processes(master)
        ready = len(found) == workers and all(len(pids) >= decoders for pids in found.values())
        cpu = process_tree_cpu(master)
        now = time.monotonic()
        if not ready or cpu != last_cpu or quiet_since is None:
            quiet_since = now if ready else None
        elif now - quiet_since >= SETTLED_SECONDS:
            return now - started
        last_cpu = cpu
        time.sleep(0.05)
    raise RuntimeError(
        f"gunicorn {master} did not settle within {timeout:g} s "
        f"({workers} workers with {decoders} decoder processes each expected)"
    )


def prime_workers(port: int) -> None:
    """A few concurrent ``GET /login/``, so that the worker threads have answered once."""

    def get() -> None:
        try:
            request_once(port, "GET", "/login/")
        except OSError:
            pass  # the login that follows fails loudly if the server is really gone

    threads = [threading.Thread(target=get) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# --------------------------------------------------------------------------- Orthanc


def upload_to_orthanc(server: Server, paths: Sequence[Path]) -> list[str]:
    """``POST /instances`` of each file, one after another; Orthanc's ID of each."""
    conn = HTTPConnection(HOST, server.port, timeout=60)
    ids = []
    try:
        for path in paths:
            conn.request("POST", "/instances", body=path.read_bytes())
            response = conn.getresponse()
            answer = json.loads(response.read())
            if response.status != 200 or answer.get("Status") not in ("Success", "AlreadyStored"):
                raise RuntimeError(f"Orthanc refused {path}: {response.status} {answer}")
            ids.append(answer["ID"])
    finally:
        conn.close()
    return ids


def start_orthanc_dicom() -> Server:
    """Debian's Orthanc as ``tests.servers.start_orthanc`` configures it (loopback, fresh
    storage, the DICOMweb plugin), with its DICOM server on as well: a free loopback
    port, AE title ``ORTHANC``, any calling AE accepted for C-ECHO and C-STORE (the called
    AE title not checked). ``extra["dicom_port"]`` is that port."""
    from tests.servers import ORTHANC_BIN, ORTHANC_DICOMWEB

    root = Path(tempfile.mkdtemp(prefix="loupe-bench-orthanc-"))
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "LoupeBenchOrthanc",
        "StorageDirectory": str(root / "storage"),
        "IndexDirectory": str(root / "index"),
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpServerEnabled": True,
        "Plugins": [str(ORTHANC_DICOMWEB)] if ORTHANC_DICOMWEB.exists() else [],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "StorageCompression": False,
        "HttpThreadsCount": 50,
        "DicomServerEnabled": True,
        "DicomAet": "ORTHANC",
        "DicomPort": dicom_port,
        "DicomCheckCalledAet": False,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
    }
    (root / "orthanc.json").write_text(json.dumps(config))
    log = root / "orthanc.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(ORTHANC_BIN), str(root / "orthanc.json")], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for(process, http_port, "/system", "Orthanc", log)
    except BaseException:
        end(process)
        shutil.rmtree(root, ignore_errors=True)
        raise
    return Server(
        process, root, http_port, f"http://{HOST}:{http_port}", {"dicom_port": str(dicom_port)}
    )


def multipart_related(parts: Sequence[bytes], part_type: str = "application/dicom") -> Request:
    """``POST`` body and Content-Type of a STOW-RS request (PS3.18 §10.5): ``parts`` as
    one ``multipart/related; type="<part_type>"`` body; the path is left empty."""
    boundary = "loupe-bench-" + secrets.token_hex(8)
    chunks = []
    for part in parts:
        chunks += [f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode(), part, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    content_type = f'multipart/related; type="{part_type}"; boundary={boundary}'
    return Request("POST", "", b"".join(chunks), {"Content-Type": content_type})


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
    """Log the bench user in through the form; the headers an authenticated request
    needs (session and CSRF cookies, the CSRF header)."""
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


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Run:
    """One timed batch of requests: wall seconds, each answered request's latency (in
    the order the answers came; with one client, the order of the requests), the answers'
    sizes and statuses, the problems found, the server tree's CPU and the machine's CPU
    ticks (steal, total) over the batch."""

    seconds: float
    latencies_ms: list[float]
    sizes: list[int]
    statuses: dict[str, int]
    problems: list[str]
    rejected: int  # answers that ``check`` found wrong
    server_cpu_s: float
    steal_ticks: int
    total_ticks: int
    first_body: bytes = b""  # the answer to the first request

    @property
    def per_second(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0


def send_all(
    port: int,
    requests: Sequence[Request],
    *,
    concurrency: int = 1,
    cpu_pids: Sequence[int] = (),
    check: Callable[[int, int, bytes], str | None] | None = None,
    keep_problems: int = 10,
    timeout: float = 120,
) -> Run:
    """Send every request once from ``concurrency`` threads, each with its own
    connection (opened before the clock starts, kept alive where the server offers it;
    after a failed exchange the next request reconnects). The server CPU is the CPU of
    the trees of ``cpu_pids`` over the batch. After the clock stops, ``check(index,
    status, body)`` names what is wrong with each answer (None: nothing); the first
    ``keep_problems`` of those are kept, beside every request that got no answer."""
    lock = threading.Lock()
    position = iter(range(len(requests)))
    latencies: list[float] = []
    answers: list[tuple[int, int, bytes]] = []  # (index, status, body)
    problems: list[str] = []
    barrier = threading.Barrier(concurrency + 1)

    def client() -> None:
        conn = HTTPConnection(HOST, port, timeout=timeout)
        try:
            conn.connect()
        except OSError:
            pass  # the first request connects again, and reports what goes wrong
        barrier.wait()
        try:
            while True:
                with lock:
                    index = next(position, None)
                if index is None:
                    return
                request = requests[index]
                started = time.perf_counter()
                try:
                    conn.request(
                        request.method, request.path, body=request.body, headers=request.headers
                    )
                    response = conn.getresponse()
                    body = response.read()
                except OSError as exc:  # count it and go on with a new connection
                    conn.close()
                    with lock:
                        problems.append(f"{request.path} #{index}: {type(exc).__name__}: {exc}")
                    continue
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.append(elapsed)
                    answers.append((index, response.status, body))
        finally:
            conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    cpu_before = sum(process_tree_cpu(pid) for pid in cpu_pids)
    ticks_before = cpu_ticks()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    ticks_after = cpu_ticks()
    cpu = sum(process_tree_cpu(pid) for pid in cpu_pids) - cpu_before
    statuses: dict[str, int] = {}
    rejected = 0
    for index, status, body in answers:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        problem = check(index, status, body) if check is not None else None
        if problem:
            rejected += 1
            if rejected <= keep_problems:
                problems.append(f"{requests[index].path} #{index}: {problem}")
    first = min(answers, key=lambda answer: answer[0])[2] if answers else b""
    return Run(
        seconds,
        latencies,
        [len(body) for _, _, body in answers],
        statuses,
        problems,
        rejected,
        cpu,
        ticks_after[0] - ticks_before[0],
        ticks_after[1] - ticks_before[1],
        first,
    )


def merged_statuses(runs: Sequence[Run]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for run in runs:
        for key, count in run.statuses.items():
            merged[key] = merged.get(key, 0) + count
    return merged


# --------------------------------------------------------------------------- figures


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)] if ordered else float("nan")


def machine_facts(orthanc: Server | None = None) -> dict[str, Any]:
    """The machine and the software versions; Orthanc's from its ``/system`` (left out
    when ``orthanc`` is None: a run without it)."""
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
    try:
        postgres = subprocess.run(
            [str(PG_BIN / "postgres"), "--version"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        postgres = ""
    filesystem = subprocess.run(
        ["df", "--output=fstype", tempfile.gettempdir()], capture_output=True, text=True
    ).stdout.split()[-1:]
    import django
    import gunicorn

    facts: dict[str, Any] = {
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
    }
    if orthanc is not None:
        facts["orthanc"] = system.get("Version", "")
        facts["orthanc_database_backend"] = system.get("DatabaseBackendPlugin") or "built-in SQLite"
    return facts


def code_state() -> dict[str, Any]:
    """The commit measured, and the files of the server's code that differ from it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=PROJECT_DIR, capture_output=True, text=True)
        return done.stdout.strip()

    changed = git("status", "--porcelain", "--", "viewer", "config")
    return {"commit": git("rev-parse", "HEAD"), "uncommitted": changed.splitlines()}


# --------------------------------------------------------------------------- results


def checks_lines(checks: Sequence[str], passed: str, label: str = "checks") -> list[str]:
    """``label: passed`` when no check failed, else ``label: FAILED`` and the problems."""
    if not checks:
        return [f"{label}: {passed}"]
    return [f"{label}: FAILED", *(f"  {problem}" for problem in checks[:20])]


class BenchRun:
    """One run of benchmark ``name``: its timestamp, its clock, and the log its servers
    write to (``bench/results/<name>-<timestamp>.gunicorn.log``, removed when empty)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = time.monotonic()
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        self.log = RESULTS_DIR / f"{name}-{self.stamp}.gunicorn.log"

    def seconds(self) -> float:
        return round(time.monotonic() - self.started, 1)

    def finish(self, payload: dict[str, Any], checks: Sequence[str]) -> int:
        """Write ``payload`` with the run's name, timestamp, commit, checks and wall time
        to ``bench/results/<name>-<timestamp>.json``; the exit status (1 when a check
        failed)."""
        output = RESULTS_DIR / f"{self.name}-{self.stamp}.json"
        document = {
            "benchmark": self.name,
            "timestamp": self.stamp,
            "code": code_state(),
            **payload,
            "checks_passed": not checks,
            "problems": list(checks),
            "wall_seconds": self.seconds(),
        }
        output.write_text(json.dumps(document, indent=2))
        if self.log.exists() and self.log.stat().st_size == 0:
            self.log.unlink()
        print(f"results: {output.relative_to(PROJECT_DIR)} ({self.seconds():.0f} s)")
        return 1 if checks else 0
