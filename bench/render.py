"""Rendering speed: Loupe's rendered resources and tiles against Debian's Orthanc 1.10,
and the cost of Loupe's decoder isolation against decoding in the server process.

    .venv/bin/python -m bench.render [--corpus PATH] [--series PATH] [--radiograph PATH]
                                     [--quick] [--rounds N] [--cold-trials N]
                                     [--isolation-trials N] [--frame-cache-mb MB]
                                     [--only peers|isolation]

On the 99-slice CT series and a 2446×2010 MONOCHROME1 radiograph of the corpus, against
Orthanc's native and DICOMweb rendered routes: (a) one slice, one client, new window and
repeated request; (b) images/s from 4 clients; (c) cold renders after restarts; (d) the
radiograph's fit-to-screen tile against Orthanc's full render; (e) peak memory. (f), with
a Loupe of its own: cold and cached renders with the decoder processes against decoding
in the worker, on the CT (native, RLE, JPEG 2000) and compressed files of the corpus.
Prints the tables with their targets; writes ``bench/results/render-<timestamp>.json``.
Each part, how it is timed and the targets: bench/README.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from PIL import Image
from pydicom.uid import JPEG2000, JPEG2000Lossless, RLELossless, generate_uid

from bench.harness import (
    DEFAULT_THREADS,
    DEFAULT_WORKERS,
    SETTLED_SECONDS,
    BenchRun,
    Gunicorn,
    PeakMemory,
    Request,
    Run,
    argument_parser,
    checks_lines,
    cpu_ticks,
    decoder_processes,
    decoders_per_worker,
    end,
    gunicorn_config,
    login,
    machine_facts,
    merged_statuses,
    percentile,
    prime_workers,
    relaunch,
    request_once,
    send_all,
    series_files,
    series_folder,
    start_loupe,
    steal_percent,
    upload_to_orthanc,
    wait_until_settled,
)
from tests.servers import Server, orthanc_available, start_orthanc

PROGRAM = "bench.render"
RADIOGRAPH = "cr-monochrome1/Monochrome1-Jpeg.dcm"  # in the corpus
CORPUS_FILES = (  # (f): RLE and JPEG 2000 objects of the corpus
    "compressed/CT_WG04_CT1_RLE_fragments.dcm",
    "compressed/CT_WG04_CT1_J2KI_jpeg2000_lossy.dcm",
    "compressed/siemens-mr-same-image/4.dcm",
    "compressed/siemens-mr-same-image/9.dcm",
    "cr-monochrome1/966_fixed.dcm",
    "cr-monochrome1/RG1_J2KI.dcm",
    "cr-monochrome1/RG3_J2KR.dcm",
)
# (f): the CT series transcoded at start: folder name -> (transfer syntax, label)
TRANSCODED = {"rle": (RLELossless, "RLE lossless"), "j2k": (JPEG2000Lossless, "J2K lossless")}
CODECS = ("pydicom", "pylibjpeg", "pylibjpeg-rle", "pylibjpeg-openjpeg", "simplejpeg")
CACHED_SET = "ct-j2k"  # (f): the cached renders are of this set's middle slice
ISOLATED, IN_PROCESS = "isolated", "in-process"
CONFIGS = (ISOLATED, IN_PROCESS)
COLD_TARGET = "<=1.3x"  # (f): isolated / in-process, cold
CACHED_TARGET = "<=1.1x"  # (f): isolated / in-process, cached ("no change", within noise)
PARTS = ("peers", "isolation")
GUNICORN_CONFIG = gunicorn_config(DEFAULT_WORKERS, DEFAULT_THREADS)
PEERS = ("loupe", "orthanc", "orthanc-dicomweb")
LOUPE, ORTHANC, DICOMWEB = PEERS
SCREEN = 1024  # (d): the fit-to-screen level is the first whose image fits SCREEN×SCREEN
CT_WINDOW = (40.0, 400.0)  # (a2), (c): a soft-tissue window
CR_WINDOW = (114.516, 255.0623)  # (d): the radiograph's own header window
DEFAULT_FRAME_CACHE_MB = 512  # Loupe's default (config/settings.py)
RSS_ALLOWANCE_MB = 300  # (e): peak RSS <= frame cache cap + this
SAMPLE_SECONDS = 0.2  # (e): memory sampled this often
PSS_EVERY = 5  # (e): PSS in every 5th sample (1 s)


@dataclass(frozen=True)
class Inputs:
    """The files a run reads, in place: the CT series, the radiograph, the corpus files."""

    series: Path
    ct_files: list[Path]
    radiograph: Path
    corpus_files: list[Path]


def inputs(args: argparse.Namespace, parts: tuple[str, ...]) -> Inputs:
    """The files of ``args`` (``--radiograph``, else LOUPE_BENCH_RADIOGRAPH, else the
    corpus's); exits naming what is missing."""
    series = series_folder(args)
    radiograph = Path(
        args.radiograph or os.environ.get("LOUPE_BENCH_RADIOGRAPH") or args.corpus / RADIOGRAPH
    )
    found = Inputs(
        series,
        series_files(series, PROGRAM),
        radiograph,
        [args.corpus / name for name in CORPUS_FILES],
    )
    wanted = [
        *([found.radiograph] if "peers" in parts else []),
        *(found.corpus_files if "isolation" in parts else []),
    ]
    missing = [str(path) for path in wanted if not path.exists()]
    if missing:
        sys.exit(
            f"{PROGRAM}: needs the radiograph (--radiograph) and the compressed files of the "
            f"corpus (--corpus); missing: {', '.join(missing)}"
        )
    return found


# --------------------------------------------------------------------------- test data


@dataclass(frozen=True)
class DicomObject:
    path: Path
    study: str
    series: str
    sop: str
    rows: int
    columns: int
    orthanc_id: str = ""

    @property
    def dicomweb(self) -> str:
        return f"/dicom-web/studies/{self.study}/series/{self.series}/instances/{self.sop}"


def read_objects(paths: list[Path]) -> list[DicomObject]:
    objects = []
    for path in paths:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        objects.append(
            DicomObject(
                path,
                str(ds.StudyInstanceUID),
                str(ds.SeriesInstanceUID),
                str(ds.SOPInstanceUID),
                int(ds.Rows),
                int(ds.Columns),
            )
        )
    return objects


class Windows:
    """A sequence of (centre, width) that never repeats; ``take(n)`` hands out the next n."""

    def __init__(self, nth: Callable[[int], tuple[float, float]]):
        self._nth = nth
        self._next = itertools.count()

    def take(self, count: int) -> list[tuple[float, float]]:
        return [self._nth(next(self._next)) for _ in range(count)]


# CT: centres -600..600 HU (37 steps around a prime cycle of 1201), width + 1 each cycle.
CT_WINDOWS = Windows(lambda i: (-600.0 + (i * 37) % 1201, 350.0 + i // 1201))
# Radiograph (8-bit stored values): centres 40..202, width + 1 each cycle of 163.
CR_WINDOWS = Windows(lambda i: (40.0 + (i * 11) % 163, 180.0 + i // 163))


def render_path(peer: str, obj: DicomObject, window: tuple[float, float]) -> str:
    """The full-size rendered resource of ``obj`` with a linear window, on ``peer``."""
    center, width = window
    if peer == ORTHANC:
        return (
            f"/instances/{obj.orthanc_id}/rendered?window-center={center:g}&window-width={width:g}"
        )
    # Commas unescaped: the DICOMweb plugin 1.7 does not decode %2C.
    return f"{obj.dicomweb}/rendered?window={center:g},{width:g},linear"


def tile_path(obj: DicomObject, level: int, window: tuple[float, float]) -> str:
    center, width = window
    return f"{obj.dicomweb}/frames/1/tiles/{level}/0/0?window={center:g},{width:g},linear"


# --------------------------------------------------------------------------- servers


class Servers:
    """The running Orthanc (None in a run without it) and Loupe; restarts replace the
    processes, not the storage. ``stop()`` ends whichever processes are current."""

    def __init__(self, orthanc: Server | None, log: Path):
        self._orthanc = orthanc
        self._loupe: Gunicorn | None = None
        self.log = log
        self.headers: dict[str, str] = {}
        self.before_stop: Callable[[], None] = lambda: None

    @property
    def loupe(self) -> Gunicorn:
        assert self._loupe is not None, "Loupe has not been started"
        return self._loupe

    @property
    def orthanc(self) -> Server:
        assert self._orthanc is not None, "Orthanc has not been started"
        return self._orthanc

    def use_loupe(self, server: Gunicorn) -> float:
        """Take ``server`` over (it is stopped with the rest from now on), wait until it
        has settled (``wait_until_settled``) and log in; the seconds the wait took."""
        self._loupe = server
        waited = wait_until_settled(
            server.process.pid, DEFAULT_WORKERS, decoders_per_worker(server.env)
        )
        prime_workers(server.port)
        self.headers = {**login(server.port), "Accept": "image/png"}
        return waited

    def restart_loupe(self, env: dict[str, str] | None = None) -> float:
        """A new gunicorn master and workers on the same port and data, with ``env``
        (the current environment when None); the seconds ``use_loupe`` waited."""
        self.before_stop()
        end(self.loupe.process)
        env = self.loupe.env if env is None else env
        process = relaunch(self.loupe.process, self.loupe.port, env, self.log, "/login/")
        return self.use_loupe(replace(self.loupe, process=process, env=env))

    def restart_orthanc(self) -> None:
        self.before_stop()
        end(self.orthanc.process)
        process = relaunch(
            self.orthanc.process,
            self.orthanc.port,
            None,
            self.orthanc.root / "orthanc.log",
            "/system",
        )
        self._orthanc = replace(self.orthanc, process=process)

    def stop(self) -> None:
        try:
            if self._loupe is not None:
                self._loupe.stop()
        finally:
            if self._orthanc is not None:
                self._orthanc.stop()

    def root_pid(self, peer: str) -> int:
        return self.loupe.process.pid if peer == LOUPE else self.orthanc.process.pid

    def port(self, peer: str) -> int:
        return self.loupe.port if peer == LOUPE else self.orthanc.port

    def peer_headers(self, peer: str) -> dict[str, str]:
        return self.headers if peer == LOUPE else {"Accept": "image/png"}


def start_render_loupe(
    log: Path, paths: list[Path], objects: int, frame_cache_mb: int, name: str = "render"
) -> Gunicorn:
    """A fresh Loupe with ``paths`` imported, its frame cache at ``frame_cache_mb`` and
    rendered bytes in local memory (per process: a restart really is cold)."""
    return start_loupe(
        name,
        log=log,
        imports=paths,
        objects=objects,
        settings={"LOUPE_FRAME_CACHE_MB": str(frame_cache_mb), "LOUPE_REDIS_URL": None},
    )


# --------------------------------------------------------------------------- requests


def png_problem(body: bytes, size: tuple[int, int]) -> str | None:
    """None when ``body`` is a PNG of ``size`` (width, height) that decodes."""
    try:
        with Image.open(BytesIO(body)) as image:
            if image.format != "PNG":
                return f"not a PNG ({image.format})"
            if image.size != size:
                return f"{image.size[0]}×{image.size[1]}, expected {size[0]}×{size[1]}"
            image.load()
    except Exception as exc:  # Pillow raises many types for broken files
        return f"undecodable: {type(exc).__name__}: {exc}"
    return None


def fetch_all(
    servers: Servers,
    peer: str,
    paths: list[str],
    size: tuple[int, int] | list[tuple[int, int]],
    concurrency: int = 1,
) -> Run:
    """GET every path once from ``concurrency`` threads (``send_all``); every answer must
    be a PNG of ``size`` (width, height), or of ``size[i]`` for ``paths[i]`` where it is a
    list. With one thread, the latencies are in the order of ``paths``."""
    headers = servers.peer_headers(peer)

    def check(index: int, status: int, body: bytes) -> str | None:
        if status != 200:
            return f"{status} {body[:200]!r}".strip()
        return png_problem(body, size[index] if isinstance(size, list) else size)

    return send_all(
        servers.port(peer),
        [Request("GET", path, headers=headers) for path in paths],
        concurrency=concurrency,
        cpu_pids=[servers.root_pid(peer)],
        check=check,
    )


# --------------------------------------------------------------------------- statistics


def summarize(runs: list[Run]) -> dict[str, Any]:
    latencies = [value for run in runs for value in run.latencies_ms]
    sizes = [value for run in runs for value in run.sizes]
    images = max(1, len(latencies))
    return {
        "requests": len(latencies),
        "latency_ms_median": round(statistics.median(latencies), 2) if latencies else None,
        "latency_ms_p95": round(percentile(latencies, 0.95), 2) if latencies else None,
        # First request of each run, and each run's duration: median over the runs.
        "latency_ms_first": round(
            statistics.median(run.latencies_ms[0] for run in runs if run.latencies_ms), 2
        )
        if latencies
        else None,
        "seconds_median": round(statistics.median(run.seconds for run in runs), 3),
        "images_per_second_median": round(statistics.median(run.per_second for run in runs), 2),
        "images_per_second_rounds": [round(run.per_second, 2) for run in runs],
        "seconds_total": round(sum(run.seconds for run in runs), 3),
        "size_bytes_median": int(statistics.median(sizes)) if sizes else None,
        "server_cpu_ms_per_image": round(1000 * sum(r.server_cpu_s for r in runs) / images, 2),
        "statuses": merged_statuses(runs),
        "problems": [problem for run in runs for problem in run.problems][:10],
    }


def round_ratios(runs: dict[str, list[Run]], peer: str, base: str, key: str) -> list[float]:
    """Loupe/Orthanc per round (rounds were timed back to back), for drift."""
    values: Callable[[Run], float] = (
        (lambda run: run.per_second)
        if key == "ips"
        else (lambda run: statistics.median(run.latencies_ms))
    )
    return [
        round(values(a) / values(b), 3)
        for a, b in zip(runs.get(peer, []), runs.get(base, []), strict=False)
        if values(b)
    ]


def agreement(a: bytes, b: bytes) -> dict[str, float]:
    """How far two PNGs of the same request are apart, in grey levels."""
    try:
        with Image.open(BytesIO(a)) as first, Image.open(BytesIO(b)) as second:
            x = np.asarray(first.convert("L"), dtype=np.int16)
            y = np.asarray(second.convert("L"), dtype=np.int16)
    except Exception:  # a broken answer is reported by the checks already
        x, y = np.zeros(1, dtype=np.int16), np.zeros(2, dtype=np.int16)
    if x.shape != y.shape:
        return {"max_abs": float("nan"), "mean_abs": float("nan"), "over_1_percent": 100.0}
    diff = np.abs(x - y)
    return {
        "max_abs": float(diff.max()),
        "mean_abs": round(float(diff.mean()), 4),
        "over_1_percent": round(100 * float((diff > 1).mean()), 3),
    }


# --------------------------------------------------------------------------- the bench


@dataclass
class Plan:
    rounds: int
    a_requests: int
    b_passes: int
    b_warmup_passes: int
    d_loupe: int
    d_orthanc: int
    cold_trials: int
    isolation_trials: int


def plan(args: argparse.Namespace) -> Plan:
    if args.quick:
        return Plan(
            1,
            a_requests=30,
            b_passes=1,
            b_warmup_passes=2,
            d_loupe=10,
            d_orthanc=3,
            cold_trials=1,
            isolation_trials=1,
        )
    return Plan(
        args.rounds,
        a_requests=40,
        b_passes=2,
        b_warmup_passes=3,
        d_loupe=20,
        d_orthanc=6,
        cold_trials=args.cold_trials,
        isolation_trials=args.isolation_trials,
    )


def rotated(round_index: int) -> list[str]:
    shift = round_index % len(PEERS)
    return list(PEERS[shift:] + PEERS[:shift])


def measure(
    servers: Servers,
    ct: list[DicomObject],
    radiograph: DicomObject,
    p: Plan,
    say: Callable[[str], None],
) -> tuple[dict[str, list[Run]], list[str], dict[str, Any]]:
    """All timed parts; returns the runs by key, warm-up problems and facts found on the way."""
    runs: dict[str, list[Run]] = {}
    warm_problems: list[str] = []
    facts: dict[str, Any] = {}
    ct_size = (ct[0].columns, ct[0].rows)
    middle = ct[len(ct) // 2]

    def keep(key: str, run: Run) -> Run:
        runs.setdefault(key, []).append(run)
        return run

    def warm(run: Run, what: str) -> None:
        warm_problems.extend(f"warm-up {what}: {problem}" for problem in run.problems)

    # (a) one slice, one client
    say(f"(a) slice {middle.path.name}: warm-up, then {p.rounds} round(s) per peer")
    for peer in PEERS:
        # Two clients, so that both workers decode the slice and render the
        # repeated request once (each worker has its own caches).
        paths = [render_path(peer, middle, w) for w in CT_WINDOWS.take(12)]
        paths += [render_path(peer, middle, CT_WINDOW)] * 6
        warm(fetch_all(servers, peer, paths, ct_size, concurrency=2), f"(a) {peer}")
    for r in range(p.rounds):
        windows = CT_WINDOWS.take(p.a_requests)
        for peer in rotated(r):
            new = keep(
                f"a1/{peer}",
                fetch_all(servers, peer, [render_path(peer, middle, w) for w in windows], ct_size),
            )
            same = keep(
                f"a2/{peer}",
                fetch_all(
                    servers, peer, [render_path(peer, middle, CT_WINDOW)] * p.a_requests, ct_size
                ),
            )
            say(
                f"  round {r + 1} {peer:<17} a1 {statistics.median(new.latencies_ms):7.2f} ms"
                f"  a2 {statistics.median(same.latencies_ms):7.2f} ms"
            )
    firsts = {peer: runs[f"a2/{peer}"][0].first_body for peer in PEERS}
    facts["pixel_agreement_window_40_400"] = {
        f"{LOUPE} vs {peer}": agreement(firsts[LOUPE], firsts[peer]) for peer in (ORTHANC, DICOMWEB)
    }

    # (b) 4 clients over the series
    say(f"(b) 4 clients: warm-up {p.b_warmup_passes} passes, then {p.rounds} round(s)")
    for peer in PEERS:
        windows = CT_WINDOWS.take(p.b_warmup_passes * len(ct))
        paths = [render_path(peer, ct[i % len(ct)], w) for i, w in enumerate(windows)]
        warm(fetch_all(servers, peer, paths, ct_size, concurrency=4), f"(b) {peer}")
    for r in range(p.rounds):
        windows = CT_WINDOWS.take(p.b_passes * len(ct))
        for peer in rotated(r):
            paths = [render_path(peer, ct[i % len(ct)], w) for i, w in enumerate(windows)]
            run = keep(f"b/{peer}", fetch_all(servers, peer, paths, ct_size, concurrency=4))
            say(f"  round {r + 1} {peer:<17} {run.per_second:7.1f} images/s")

    # (c) and (d) cold, after restarts
    cr_size = (radiograph.columns, radiograph.rows)
    fit: dict[str, int] = {}
    tile_size = (0, 0)

    def d_paths(peer: str, windows: list[tuple[float, float]]) -> list[str]:
        if peer == LOUPE:
            return [tile_path(radiograph, fit["level"], w) for w in windows]
        return [render_path(peer, radiograph, w) for w in windows]

    def d_size(peer: str) -> tuple[int, int]:
        return tile_size if peer == LOUPE else cr_size

    for t in range(p.cold_trials):
        say(f"(c) trial {t + 1}: restarting Loupe and Orthanc")
        servers.restart_loupe()
        servers.restart_orthanc()
        # What a viewer asks first: the pyramid, to pick the level (not timed).
        status, _, body = request_once(
            servers.loupe.port,
            "GET",
            f"/api/studies/{radiograph.study}/series/{radiograph.series}"
            f"/instances/{radiograph.sop}",
            headers={**servers.headers, "Accept": "application/json"},
        )
        if status != 200:
            raise RuntimeError(f"Loupe's instance metadata: {status} {body[:300]!r}")
        tiles = json.loads(body)["tiles"]
        fit = next(lv for lv in tiles["levels"] if lv["width"] <= SCREEN and lv["height"] <= SCREEN)
        tile_size = (min(tiles["size"], fit["width"]), min(tiles["size"], fit["height"]))
        facts["radiograph_fit_level"] = fit
        facts["radiograph_tile_size"] = tiles["size"]
        # Loupe and native Orthanc alternate in going first; DICOMweb gets its own restart.
        for peer in [*([LOUPE, ORTHANC] if t % 2 == 0 else [ORTHANC, LOUPE]), DICOMWEB]:
            if peer == DICOMWEB:
                servers.restart_orthanc()
            paths = [render_path(peer, obj, CT_WINDOW) for obj in ct]
            run = keep(f"c/{peer}", fetch_all(servers, peer, paths, ct_size))
            cold = keep(
                f"d-cold/{peer}",
                fetch_all(servers, peer, d_paths(peer, [CR_WINDOW]), d_size(peer)),
            )
            say(
                f"  {peer:<17} (c) pass {run.seconds:6.2f} s, median "
                f"{statistics.median(run.latencies_ms):6.1f} ms;"
                f"  (d) cold {cold.latencies_ms[0]:7.1f} ms"
            )

    # (d) warm
    say("(d) warm")
    for peer in PEERS:
        count = p.d_loupe if peer == LOUPE else p.d_orthanc
        paths = d_paths(peer, CR_WINDOWS.take(6)) + d_paths(peer, [CR_WINDOW]) * 4
        warm(fetch_all(servers, peer, paths, d_size(peer), concurrency=2), f"(d) {peer}")
        same = keep(
            f"d-same/{peer}",
            fetch_all(servers, peer, d_paths(peer, [CR_WINDOW]) * count, d_size(peer)),
        )
        new = keep(
            f"d-new/{peer}",
            fetch_all(servers, peer, d_paths(peer, CR_WINDOWS.take(count)), d_size(peer)),
        )
        say(
            f"  {peer:<17} same {statistics.median(same.latencies_ms):8.1f} ms"
            f"  new window {statistics.median(new.latencies_ms):8.1f} ms"
        )
    return runs, warm_problems, facts


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Row:
    label: str
    key: str  # a prefix of the runs' keys ("a1", "b", …)
    stat: str  # a field of summarize()
    scale: float = 1.0
    target: str = ""  # "<=0.5x", ">=2x" (ratio to Orthanc) or "" (none)


ROWS = (
    Row("(a1) CT PNG, new window: median ms", "a1", "latency_ms_median", target="<=0.5x"),
    Row("(a1)   p95 ms", "a1", "latency_ms_p95"),
    Row("(a1)   server CPU ms/image", "a1", "server_cpu_ms_per_image"),
    Row("(a2) CT PNG, same request: median ms", "a2", "latency_ms_median", target="<=0.5x"),
    Row("(a2)   p95 ms", "a2", "latency_ms_p95"),
    Row("(a)  PNG size KB (a1 median)", "a1", "size_bytes_median", 1 / 1024),
    Row("(b)  4 clients, new windows: images/s", "b", "images_per_second_median", target=">=2x"),
    Row("(b)   latency median ms", "b", "latency_ms_median"),
    Row("(b)   latency p95 ms", "b", "latency_ms_p95"),
    Row("(b)   server CPU ms/image", "b", "server_cpu_ms_per_image"),
    Row("(c)  cold, 99 slices: median ms", "c", "latency_ms_median", target="<=1x"),
    Row("(c)   p95 ms", "c", "latency_ms_p95", target="<=1x"),
    Row("(c)   total s (one pass)", "c", "seconds_median", target="<=1x"),
    Row("(c)   first request ms", "c", "latency_ms_first"),
    Row("(d)  cold: tile vs full render ms", "d-cold", "latency_ms_median", target="<=0.25x"),
    Row("(d)  warm, same request: median ms", "d-same", "latency_ms_median", target="<=0.25x"),
    Row("(d)  warm, new window: median ms", "d-new", "latency_ms_median", target="<=0.25x"),
    Row("(d)   PNG size KB (median)", "d-same", "size_bytes_median", 1 / 1024),
)


def meets(ratio: float, target: str) -> bool:
    limit = float(target.lstrip("<>=").rstrip("x"))
    return ratio >= limit if target.startswith(">=") else ratio <= limit


def table(
    results: dict[str, dict[str, Any]], memory: dict[str, Any], cap_mb: int
) -> tuple[str, list[dict[str, Any]]]:
    """The printed table, and its rows as data (values, ratios, target, met)."""
    header = (
        f"{'measure':<40} {'Loupe':>9} {'Orthanc':>9} {'Orth.DW':>9} "
        f"{'L/O':>6} {'L/DW':>6} {'target':>9} {'met':>4}"
    )
    lines, data = [header, "-" * len(header)], []
    for row in ROWS:
        values = {}
        for peer in PEERS:
            value = results.get(f"{row.key}/{peer}", {}).get(row.stat)
            values[peer] = None if value is None else value * row.scale
        loupe = values[LOUPE]
        ratios = {
            peer: (loupe / values[peer] if loupe is not None and values[peer] else None)
            for peer in (ORTHANC, DICOMWEB)
        }
        met = None
        if row.target and all(r is not None for r in ratios.values()):
            met = all(meets(r, row.target) for r in ratios.values() if r is not None)
        cells = [f"{v:9.1f}" if v is not None else f"{'-':>9}" for v in values.values()]
        ratio_cells = [f"{r:6.2f}" if r is not None else f"{'-':>6}" for r in ratios.values()]
        verdict = "" if met is None else ("yes" if met else "NO")
        lines.append(
            f"{row.label:<40} {' '.join(cells)} {' '.join(ratio_cells)} "
            f"{row.target:>9} {verdict:>4}"
        )
        data.append(
            {
                "measure": row.label.strip(),
                "values": values,
                "ratio_to_orthanc": ratios[ORTHANC],
                "ratio_to_orthanc_dicomweb": ratios[DICOMWEB],
                "target": row.target,
                "met": met,
            }
        )
    limit = cap_mb + RSS_ALLOWANCE_MB
    loupe_mb, orthanc_mb = memory["peak_hwm_mb"][LOUPE], memory["peak_hwm_mb"][ORTHANC]
    rss_met = loupe_mb <= limit
    target = f"<={limit}MB"
    lines.append(
        f"{'(e)  peak RSS MB (sum of VmHWM)':<40} {loupe_mb:9.1f} {orthanc_mb:9.1f} "
        f"{'(same)':>9} {'-':>6} {'-':>6} {target:>9} {'yes' if rss_met else 'NO':>4}"
    )
    data.append(
        {
            "measure": "(e) peak RSS MB (sum of VmHWM)",
            "values": {LOUPE: loupe_mb, ORTHANC: orthanc_mb},
            "target": target,
            "met": rss_met,
        }
    )
    loupe_pss, orthanc_pss = (
        memory["peak_sampled_pss_mb"][LOUPE],
        memory["peak_sampled_pss_mb"][ORTHANC],
    )
    pss_met = loupe_pss <= limit
    lines.append(
        f"{'(e)  peak PSS MB (sum, sampled)':<40} {loupe_pss:9.1f} {orthanc_pss:9.1f} "
        f"{'(same)':>9} {'-':>6} {'-':>6} {target:>9} {'yes' if pss_met else 'NO':>4}"
    )
    data.append(
        {
            "measure": "(e) peak PSS MB (sum, sampled)",
            "values": {LOUPE: loupe_pss, ORTHANC: orthanc_pss},
            "target": target,
            "met": pss_met,
        }
    )
    return "\n".join(lines), data


# --------------------------------------------------------------------------- (f) isolation


@dataclass(frozen=True)
class ObjectSet:
    """Objects of (f), each rendered once per restart: ``key`` names its runs."""

    key: str
    label: str
    objects: list[DicomObject]
    window: tuple[float, float] | None  # None: each object's own default VOI

    def paths(self) -> list[str]:
        if self.window is None:
            return [f"{obj.dicomweb}/rendered" for obj in self.objects]
        return [render_path(LOUPE, obj, self.window) for obj in self.objects]

    def sizes(self) -> list[tuple[int, int]]:
        return [(obj.columns, obj.rows) for obj in self.objects]


def transcode_series(files: list[Path], folder: Path) -> tuple[dict[str, list[Path]], list[str]]:
    """The CT series compressed with pydicom's ``Dataset.compress`` into ``folder/<name>``
    for each of TRANSCODED (RLE Lossless with pylibjpeg-rle, JPEG 2000 Lossless with
    pylibjpeg-openjpeg): one new series of the CT's study each, new Series and SOP
    Instance UIDs. Also the problems found: the middle slice must decode to the original
    values (both are lossless)."""
    written: dict[str, list[Path]] = {}
    problems: list[str] = []
    middle = len(files) // 2
    for number, (name, (syntax, _)) in enumerate(TRANSCODED.items(), start=1):
        target = folder / name
        target.mkdir()
        series_uid = generate_uid()
        written[name] = []
        for index, path in enumerate(files):
            ds = pydicom.dcmread(path)
            original = ds.pixel_array if index == middle else None
            ds.compress(syntax, encoding_plugin="pylibjpeg", generate_instance_uid=False)
            ds.SeriesInstanceUID = series_uid
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.SeriesNumber = 9000 + number
            ds.SeriesDescription = f"{ds.get('SeriesDescription', '')} ({syntax.name})".strip()
            if original is not None and not np.array_equal(original, ds.pixel_array):
                problems.append(f"{name}: {path.name} does not decode to its original values")
            out = target / path.name
            ds.save_as(out, enforce_file_format=True)
            written[name].append(out)
    return written, problems


SYNTAX_LABELS: dict[str, str] = {
    RLELossless: "RLE",
    JPEG2000Lossless: "J2K lossless",
    JPEG2000: "J2K",
}


def corpus_label(path: Path) -> str:
    """File name (with its folder where the name alone says little), syntax, columns×rows."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    syntax = SYNTAX_LABELS.get(str(ds.file_meta.TransferSyntaxUID), "?")
    name = path.name if len(path.stem) > 2 else f"{path.parent.name[:10]}…/{path.name}"
    return f"{name} ({syntax}, {ds.Columns}×{ds.Rows})"


def configuration(env: dict[str, str]) -> str:
    return IN_PROCESS if env.get("LOUPE_DECODER_PROCESSES") == "0" else ISOLATED


def measure_isolation(
    servers: Servers,
    sets: list[ObjectSet],
    cached: DicomObject,
    envs: dict[str, dict[str, str]],
    p: Plan,
    say: Callable[[str], None],
    sample: Callable[[], None],
) -> tuple[dict[str, list[Run]], list[str], dict[str, Any]]:
    """(f): per trial and object set, a restart in each configuration (which goes first
    alternates) and one cold pass over the set; after the set named CACHED_SET, the
    cached renders of ``cached``. ``sample()`` after each pass, never during one. The
    runs by key, problems, facts."""
    runs: dict[str, list[Run]] = {}
    problems: list[str] = []
    settle: dict[str, list[float]] = {config: [] for config in CONFIGS}
    size = (cached.columns, cached.rows)

    def keep(key: str, run: Run) -> Run:
        runs.setdefault(key, []).append(run)
        return run

    def cached_renders(config: str) -> tuple[Run, Run]:
        """Like (a): a warm-up from 4 clients (both workers decode the slice and render
        the repeated request), then a new window per request and one request repeated."""
        paths = [render_path(LOUPE, cached, w) for w in CT_WINDOWS.take(16)]
        paths += [render_path(LOUPE, cached, CT_WINDOW)] * 8
        warm = fetch_all(servers, LOUPE, paths, size, concurrency=4)
        problems.extend(f"warm-up (f) {config}: {problem}" for problem in warm.problems)
        new_paths = [render_path(LOUPE, cached, w) for w in CT_WINDOWS.take(p.a_requests)]
        new = keep(f"f-a1/{config}", fetch_all(servers, LOUPE, new_paths, size))
        same_paths = [render_path(LOUPE, cached, CT_WINDOW)] * p.a_requests
        same = keep(f"f-a2/{config}", fetch_all(servers, LOUPE, same_paths, size))
        return new, same

    for t in range(p.isolation_trials):
        say(f"(f) trial {t + 1}: a restart per object set and configuration")
        for s, found in enumerate(sets):
            order = CONFIGS if (t + s) % 2 == 0 else CONFIGS[::-1]
            for config in order:
                settle[config].append(round(servers.restart_loupe(envs[config]), 3))
                master = servers.loupe.process.pid
                before = decoder_processes(master)
                run = keep(
                    f"f-{found.key}/{config}",
                    fetch_all(servers, LOUPE, found.paths(), found.sizes()),
                )
                after = decoder_processes(master)
                sample()
                if before != after:
                    problems.append(
                        f"f-{found.key}/{config} trial {t + 1}: decoder processes changed while "
                        f"timed ({before} -> {after})"
                    )
                line = (
                    f"  {found.key:<8} {config:<10} pass {run.seconds:6.2f} s, median "
                    f"{statistics.median(run.latencies_ms or [0.0]):7.1f} ms, first "
                    f"{(run.latencies_ms or [0.0])[0]:7.1f} ms"
                )
                if found.key == CACHED_SET:
                    new, same = cached_renders(config)
                    sample()
                    line += (
                        f";  cached: new window {statistics.median(new.latencies_ms):5.2f} ms,"
                        f" same {statistics.median(same.latencies_ms):5.2f} ms"
                    )
                say(line)
    return runs, problems, {"settle_seconds": settle}


def isolation_rows(sets: list[ObjectSet]) -> list[Row]:
    rows = []
    for found in sets:
        key = f"f-{found.key}"
        rows += [
            Row(f"(f) cold {found.label}: median ms", key, "latency_ms_median", target=COLD_TARGET),
            Row("(f)   p95 ms", key, "latency_ms_p95", target=COLD_TARGET),
            Row("(f)   total s (one pass)", key, "seconds_median", target=COLD_TARGET),
            Row("(f)   first request ms", key, "latency_ms_first"),
            Row("(f)   server CPU ms/image", key, "server_cpu_ms_per_image"),
        ]
    rows += [
        Row(
            "(f) cached, same request: median ms", "f-a2", "latency_ms_median", target=CACHED_TARGET
        ),
        Row("(f)   p95 ms", "f-a2", "latency_ms_p95"),
        Row("(f) cached, new window: median ms", "f-a1", "latency_ms_median", target=CACHED_TARGET),
        Row("(f)   p95 ms", "f-a1", "latency_ms_p95"),
        Row("(f)   server CPU ms/image", "f-a1", "server_cpu_ms_per_image"),
    ]
    return rows


def per_object(runs: list[Run], count: int) -> list[list[float]]:
    """Latency of each of ``count`` objects over one-client runs that answered them all."""
    complete = [run.latencies_ms for run in runs if len(run.latencies_ms) == count]
    return [[latencies[i] for latencies in complete] for i in range(count)]


def isolation_table(
    results: dict[str, dict[str, Any]],
    rows: list[Row],
    corpus: ObjectSet,
    corpus_runs: dict[str, list[Run]],
    memory: dict[str, Any],
) -> tuple[str, list[dict[str, Any]]]:
    """(f)'s printed table and its rows as data: isolated, in-process, their ratio."""
    width = 60
    header = (
        f"{'measure':<{width}} {'isolated':>9} {'in-proc':>9} {'I/P':>6} {'target':>7} {'met':>4}"
    )
    lines, data = [header, "-" * len(header)], []

    def add(label: str, values: dict[str, float | None], target: str = "") -> None:
        iso, inproc = values[ISOLATED], values[IN_PROCESS]
        ratio = iso / inproc if iso is not None and inproc else None
        met = meets(ratio, target) if target and ratio is not None else None
        cells = " ".join(f"{v:9.1f}" if v is not None else f"{'-':>9}" for v in (iso, inproc))
        ratio_cell = f"{ratio:6.2f}" if ratio is not None else f"{'-':>6}"
        verdict = "" if met is None else ("yes" if met else "NO")
        lines.append(f"{label:<{width}} {cells} {ratio_cell} {target:>7} {verdict:>4}")
        data.append(
            {
                "measure": label.strip(),
                "values": values,
                "ratio_isolated_to_in_process": None if ratio is None else round(ratio, 3),
                "target": target,
                "met": met,
            }
        )

    for row in rows:
        values: dict[str, float | None] = {}
        for config in CONFIGS:
            value = results.get(f"{row.key}/{config}", {}).get(row.stat)
            values[config] = None if value is None else value * row.scale
        add(row.label, values, row.target)
        if row.key == f"f-{corpus.key}" and row.stat == "server_cpu_ms_per_image":
            lines.append("(f)   per file, median of the trials (ms):")
            files = {
                config: per_object(corpus_runs.get(config, []), len(corpus.objects))
                for config in CONFIGS
            }
            for i, obj in enumerate(corpus.objects):
                medians: dict[str, float | None] = {
                    config: statistics.median(files[config][i]) if files[config][i] else None
                    for config in CONFIGS
                }
                add(f"(f)     {corpus_label(obj.path)}", medians)
    for label, key in (
        ("(f) peak memory MB, sum of VmHWM", "peak_hwm_mb"),
        ("(f) peak memory MB, sum of PSS (sampled)", "peak_sampled_pss_mb"),
        ("(f)   processes in the gunicorn tree", "processes_max"),
    ):
        add(label, {config: memory[key].get(config) for config in CONFIGS})
    return "\n".join(lines), data


@dataclass
class Section:
    """A part's printed table, its notes, its JSON, the problems it found and the lines
    printed above its table."""

    table: str
    notes: list[str]
    payload: dict[str, Any]
    problems: list[str]
    heading: list[str] = field(default_factory=list)


def isolation_sets(
    ct_files: list[Path], transcoded: dict[str, list[Path]], corpus_files: list[Path]
) -> list[ObjectSet]:
    return [
        ObjectSet("ct", f"CT {len(ct_files)}, native", read_objects(ct_files), CT_WINDOW),
        *(
            ObjectSet(
                f"ct-{name}",
                f"CT {len(files)}, {TRANSCODED[name][1]}",
                read_objects(files),
                CT_WINDOW,
            )
            for name, files in transcoded.items()
        ),
        ObjectSet("corpus", f"corpus, {len(corpus_files)} files", read_objects(corpus_files), None),
    ]


def isolation_notes(
    p: Plan,
    decoders: int,
    settle: dict[str, list[float]],
    per_trial: dict[str, list[float]],
    steal: float,
    load: dict[str, tuple[float, float, float]],
) -> list[str]:
    return [
        f"(f): Loupe with its decoder pool (LOUPE_DECODER_PROCESSES unset: {decoders} "
        "decoder processes per gunicorn worker) against LOUPE_DECODER_PROCESSES=0 (compressed "
        "frames decoded in the worker itself), same data folder, database and gunicorn "
        f"command line; {p.isolation_trials} trial(s), each a restart per object set and "
        "configuration, which of the two goes first alternating; one client, each object once "
        "per restart; I/P = isolated / in-process; median and p95 over all requests of the "
        "trials, total = median pass, first = median of the first request after each restart.",
        "(f) restarts: a new gunicorn master and workers, rendered bytes in local memory; timing "
        "starts once every worker has its decoder processes forked and the tree has used no CPU "
        f"for {SETTLED_SECONDS} s (waited after /login/ first answered, median: isolated "
        f"{statistics.median(settle[ISOLATED] or [0.0]):.2f} s, in-process "
        f"{statistics.median(settle[IN_PROCESS] or [0.0]):.2f} s), then a few GET /login/ and "
        "the login: the first request pays neither the forkserver's start nor the "
        "application's import, but does pay its worker's first database query and each "
        "decoder process's first call.",
        f"(f) cached: the middle slice of the J2K lossless CT right after its cold pass: a "
        f"warm-up from 4 clients, then {p.a_requests} requests with a new window each "
        "(decoded-frame cache hit) and the same request repeated (rendered-bytes cache hit); "
        f"target {CACHED_TARGET}: no change beyond noise.",
        "(f) memory: peaks of the summed VmHWM (which counts a page shared by forks in every "
        "process) and of the summed PSS (smaps_rollup: a shared page divided among the "
        "processes mapping it) over each configuration's gunicorn trees, read after every "
        "pass and before every restart, never while timed.",
        "(f) isolated/in-process per trial (median of each pass): "
        + "; ".join(f"{key} {ratios}" for key, ratios in per_trial.items())
        + ".",
        f"(f) CPU steal {steal} %; load average before {load['before'][0]:.2f}, after "
        f"{load['after'][0]:.2f} (1 min).",
    ]


def isolation_part(
    args: argparse.Namespace,
    p: Plan,
    found: Inputs,
    transcoded: dict[str, list[Path]],
    log: Path,
    say: Callable[[str], None],
) -> Section:
    """(f) with a Loupe of its own, on the CT, its transcoded copies and the corpus files."""
    ct_files = found.ct_files
    paths = [found.series, *(files[0].parent for files in transcoded.values())]
    paths += found.corpus_files
    count = len(ct_files) + sum(map(len, transcoded.values())) + len(found.corpus_files)
    say(f"(f) importing {count} objects into a Loupe of its own ...")
    servers = Servers(None, log)
    peak = PeakMemory(lambda: {configuration(servers.loupe.env): servers.loupe.process.pid})
    load: dict[str, tuple[float, float, float]] = {}
    with ExitStack() as stack:
        stack.callback(servers.stop)
        servers.use_loupe(
            start_render_loupe(log, paths, count, args.frame_cache_mb, name="isolation")
        )
        env = servers.loupe.env
        isolated = {k: v for k, v in env.items() if k != "LOUPE_DECODER_PROCESSES"}
        envs = {ISOLATED: isolated, IN_PROCESS: {**isolated, "LOUPE_DECODER_PROCESSES": "0"}}
        decoders = decoders_per_worker(isolated)
        sets = isolation_sets(ct_files, transcoded, found.corpus_files)
        cached = next(s for s in sets if s.key == CACHED_SET).objects[len(ct_files) // 2]
        # Memory is read between passes only (VmHWM keeps the peak), never while timed.
        servers.before_stop = peak.sample
        load["before"] = os.getloadavg()
        ticks = cpu_ticks()
        runs, problems, facts = measure_isolation(servers, sets, cached, envs, p, say, peak.sample)
        steal = steal_percent(ticks, cpu_ticks())
        load["after"] = os.getloadavg()
    memory = peak.report()
    results = {key: summarize(value) for key, value in runs.items()}
    problems += failed_responses(results)
    corpus = sets[-1]
    corpus_runs = {config: runs.get(f"f-{corpus.key}/{config}", []) for config in CONFIGS}
    report, data = isolation_table(results, isolation_rows(sets), corpus, corpus_runs, memory)
    per_trial = {
        key: round_ratios(runs, f"{key}/{ISOLATED}", f"{key}/{IN_PROCESS}", "latency")
        for key in [f"f-{found.key}" for found in sets] + ["f-a1", "f-a2"]
    }
    settle = facts["settle_seconds"]
    notes = isolation_notes(p, decoders, settle, per_trial, steal, load)
    payload = {
        "configurations": {
            ISOLATED: f"LOUPE_DECODER_PROCESSES unset (default {decoders})",
            IN_PROCESS: "LOUPE_DECODER_PROCESSES=0",
        },
        "sets": {
            found.key: {
                "label": found.label,
                "objects": [
                    str(obj.path) if found.key == "corpus" else obj.path.name
                    for obj in found.objects
                ],
                "window": found.window,
            }
            for found in sets
        },
        "cached_object": cached.path.name,
        "codecs": {name: version(name) for name in CODECS},
        "results": results,
        "rows": data,
        "per_trial_ratios": per_trial,
        "settle_seconds": settle,
        "memory": memory,
        "cpu_steal_percent": steal,
        "load_average": load,
        "table": report,
        "notes": notes,
    }
    return Section(report, notes, payload, problems)


def failed_responses(results: dict[str, dict[str, Any]]) -> list[str]:
    return [
        f"{key}: statuses {row['statuses']}, {row['problems'][:3]}"
        for key, row in results.items()
        if set(row["statuses"]) != {"200"} or row["problems"]
    ]


# --------------------------------------------------------------------------- (a)–(e) peers


@dataclass
class PeersRun:
    """What (a)–(e) measured: the runs by key, the problems of the warm-ups, the facts
    found on the way, the memory peaks, CPU steal, the machine and the objects."""

    runs: dict[str, list[Run]]
    warm_problems: list[str]
    found: dict[str, Any]
    memory: dict[str, Any]
    steal: float
    machine: dict[str, Any]
    ct: list[DicomObject]
    radiograph: DicomObject


def run_peers(
    args: argparse.Namespace, p: Plan, found: Inputs, log: Path, say: Callable[[str], None]
) -> PeersRun:
    """Orthanc (the files uploaded) and Loupe (the files imported), then (a)–(d) with the
    memory of both sampled throughout (e)."""
    started = time.monotonic()
    ct = read_objects(found.ct_files)
    radiograph = read_objects([found.radiograph])[0]
    with ExitStack() as stack:
        servers = Servers(start_orthanc(dicomweb=True), log)
        stack.callback(servers.stop)
        machine = machine_facts(servers.orthanc)
        say(f"machine: {json.dumps(machine)}")
        say(f"uploading {len(ct) + 1} objects to Orthanc, importing them into Loupe ...")
        objects = [*ct, radiograph]
        ids = upload_to_orthanc(servers.orthanc, [obj.path for obj in objects])
        stored = [replace(obj, orthanc_id=id) for obj, id in zip(objects, ids, strict=True)]
        ct, radiograph = stored[:-1], stored[-1]
        servers.use_loupe(
            start_render_loupe(
                log, [found.series, found.radiograph], len(ct) + 1, args.frame_cache_mb
            )
        )
        peak = PeakMemory(
            lambda: {LOUPE: servers.loupe.process.pid, ORTHANC: servers.orthanc.process.pid},
            every=SAMPLE_SECONDS,
            pss_every=PSS_EVERY,
        )
        servers.before_stop = peak.sample
        peak.start()
        stack.callback(peak.stop)
        say(
            f"ready after {time.monotonic() - started:.1f} s; Loupe: {GUNICORN_CONFIG}, "
            f"LOUPE_FRAME_CACHE_MB={args.frame_cache_mb}"
        )
        ticks = cpu_ticks()
        runs, warm_problems, facts = measure(servers, ct, radiograph, p, say)
        steal = steal_percent(ticks, cpu_ticks())
        peak.stop()
    return PeersRun(runs, warm_problems, facts, peak.report(), steal, machine, ct, radiograph)


def peers_notes(
    args: argparse.Namespace, p: Plan, measured: PeersRun, per_round: dict[str, list[float]]
) -> list[str]:
    ct, radiograph, memory = measured.ct, measured.radiograph, measured.memory
    fit = measured.found["radiograph_fit_level"]
    agree = measured.found["pixel_agreement_window_40_400"]
    return [
        f"Times in ms per request at the client (median, nearest-rank p95); (a), (b): after "
        f"warm-up, {p.rounds} round(s) with the peer order rotated; (a) {p.a_requests} requests "
        f"per round and peer, one client; (b) {p.b_passes} pass(es) over the {len(ct)} slices "
        "per round, 4 client threads, images/s = median over rounds.",
        "(a1): every request a window not asked before, so no rendered-bytes cache helps; "
        "Loupe's decoded-frame cache is warm for the slice (decoded by both workers during "
        "warm-up). (a2): the same request repeated (Loupe: rendered-bytes cache hit).",
        "Both servers keep the client's connection alive (Loupe: gunicorn gthread workers).",
        f"(c): first render of each slice after restarting both servers (Orthanc again before "
        f"its DICOMweb route), one client, window 40/400, {p.cold_trials} trial(s) (a restart "
        "each): median and p95 over all their requests, total = median pass time; the first "
        "peer alternates between Loupe and Orthanc; Loupe timed once its workers have loaded "
        "the application and forked their decoder processes and its tree has been idle for "
        f"{SETTLED_SECONDS} s; OS page cache not dropped.",
        f"(d): Loupe's tile (0,0) of level {fit['level']} ({fit['width']}×{fit['height']}, "
        f"the first level fitting {SCREEN}×{SCREEN}) against Orthanc's full "
        f"{radiograph.columns}×{radiograph.rows} render, PNG; cold = the first request for "
        f"the image after each restart of (c), median of {p.cold_trials}; warm: after a "
        "warm-up by 2 clients, the same request repeated, or a new window each request "
        f"({p.d_loupe} requests on Loupe, {p.d_orthanc} on each Orthanc route).",
        f"(e): peak of the summed VmHWM of Loupe's gunicorn tree (master, workers, and per "
        "worker its resource tracker, forkserver and decoder processes: "
        f"{memory['processes_max'][LOUPE]} processes at most) and of Orthanc, sampled every "
        f"{SAMPLE_SECONDS} s over the whole run; VmHWM counts a page shared by forked "
        "processes once in each, PSS (smaps_rollup, sampled every "
        f"{PSS_EVERY * SAMPLE_SECONDS:g} s) divides it among them; LOUPE_FRAME_CACHE_MB="
        f"{args.frame_cache_mb} per process; target = cap + {RSS_ALLOWANCE_MB} MB. Peak of "
        f"the summed VmRSS samples: Loupe {memory['peak_sampled_rss_mb'][LOUPE]} MB, Orthanc "
        f"{memory['peak_sampled_rss_mb'][ORTHANC]} MB.",
        "met: the target holds against both Orthanc routes. Loupe/Orthanc per round (a, b) "
        "or cold trial (c: median, d: cold), native | DICOMweb: "
        + "; ".join(
            f"{part} {per_round[f'{part}/{ORTHANC}']} | {per_round[f'{part}/{DICOMWEB}']}"
            for part in ("a1", "a2", "b", "c", "d-cold")
        )
        + ".",
        f"Pixels, slice {ct[len(ct) // 2].path.name} at 40/400: Loupe vs Orthanc max |diff| "
        f"{agree[f'{LOUPE} vs {ORTHANC}']['max_abs']:g}, vs DICOMweb "
        f"{agree[f'{LOUPE} vs {DICOMWEB}']['max_abs']:g} grey levels.",
    ]


def peers_part(
    args: argparse.Namespace, p: Plan, found: Inputs, log: Path, say: Callable[[str], None]
) -> tuple[Section, dict[str, Any]]:
    """(a)–(e) against Orthanc; the machine facts beside."""
    started = time.monotonic()
    measured = run_peers(args, p, found, log, say)
    runs = measured.runs
    results = {key: summarize(value) for key, value in runs.items()}
    per_round = {
        f"{part}/{peer}": round_ratios(runs, f"{part}/{LOUPE}", f"{part}/{peer}", metric)
        for part, metric in (
            ("a1", "latency"),
            ("a2", "latency"),
            ("b", "ips"),
            ("c", "latency"),
            ("d-cold", "latency"),
        )
        for peer in (ORTHANC, DICOMWEB)
    }
    checks = measured.warm_problems + failed_responses(results)
    report, rows = table(results, measured.memory, args.frame_cache_mb)
    notes = peers_notes(args, p, measured, per_round)
    payload = {
        "series": str(found.series),
        "radiograph": str(found.radiograph),
        "loupe_server": GUNICORN_CONFIG,
        "loupe_frame_cache_mb": args.frame_cache_mb,
        "cpu_steal_percent": measured.steal,
        "results": results,
        "per_round_ratios": per_round,
        "rows": rows,
        "memory": measured.memory,
        "radiograph_fit_level": measured.found["radiograph_fit_level"],
        "pixel_agreement_window_40_400": measured.found["pixel_agreement_window_40_400"],
        "notes": notes,
        "table": report,
        "peers_wall_seconds": round(time.monotonic() - started, 1),
    }
    machine, ct, radiograph = measured.machine, measured.ct, measured.radiograph
    heading = [
        f"Rendering: {len(ct)}-slice CT series ({found.series}) and radiograph "
        f"{found.radiograph.name} ({radiograph.columns}×{radiograph.rows})",
        f"machine: nproc {machine['nproc']}, {machine['cpu_model']}, Python {machine['python']}, "
        f"Orthanc {machine['orthanc']} + DICOMweb plugin; Loupe {GUNICORN_CONFIG}, "
        f"LOUPE_FRAME_CACHE_MB={args.frame_cache_mb}; CPU steal {measured.steal} %",
    ]
    return Section(report, notes, payload, checks, heading), machine


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argument_parser(PROGRAM, __doc__)
    parser.add_argument(
        "--radiograph",
        type=Path,
        metavar="PATH",
        help=f"the radiograph of (d) (default: LOUPE_BENCH_RADIOGRAPH, else {RADIOGRAPH} "
        "of the corpus)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of (a), (b)")
    parser.add_argument(
        "--cold-trials", type=int, default=3, help="restarts for (c) and (d) cold (default 3)"
    )
    parser.add_argument("--quick", action="store_true", help="one round, fewer requests")
    parser.add_argument(
        "--frame-cache-mb",
        type=int,
        default=DEFAULT_FRAME_CACHE_MB,
        help=f"LOUPE_FRAME_CACHE_MB for the server (default {DEFAULT_FRAME_CACHE_MB})",
    )
    parser.add_argument(
        "--isolation-trials",
        type=int,
        default=3,
        help="restarts per object set and configuration in (f) (default 3; 1 with --quick)",
    )
    parser.add_argument(
        "--only",
        choices=PARTS,
        help="peers: (a)-(e) against Orthanc only; isolation: (f) only (no Orthanc)",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.cold_trials < 1 or args.isolation_trials < 1:
        parser.error("--rounds, --cold-trials and --isolation-trials must be at least 1")
    return args


def say(text: str) -> None:
    print(text, flush=True)


def transcode(stack: ExitStack, ct_files: list[Path]) -> tuple[dict[str, list[Path]], list[str]]:
    """(f)'s copies of the CT, in a temporary folder that ``stack`` removes."""
    folder = Path(tempfile.mkdtemp(prefix="loupe-bench-transcoded-"))
    stack.callback(shutil.rmtree, folder, ignore_errors=True)
    say(f"transcoding the {len(ct_files)}-slice CT to {', '.join(TRANSCODED)} in {folder} ...")
    return transcode_series(ct_files, folder)


def section_text(part: Section, passed: str, label: str = "checks") -> str:
    return "\n".join(
        [
            *part.heading,
            "",
            part.table,
            "",
            *(f"* {note}" for note in part.notes),
            "",
            *checks_lines(part.problems, passed, label),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    parts = PARTS if args.only is None else (args.only,)
    reason = orthanc_available() if "peers" in parts else None
    if reason:
        sys.exit(f"{PROGRAM}: {reason}")
    found = inputs(args, parts)
    p = plan(args)
    bench = BenchRun("render")
    payload: dict[str, Any] = {"quick": args.quick, "parts": list(parts), "plan": vars(p)}
    sections: list[str] = []
    checks: list[str] = []
    with ExitStack() as stack:
        transcoded: dict[str, list[Path]] = {}
        if "isolation" in parts:
            begun = time.monotonic()
            transcoded, problems = transcode(stack, found.ct_files)
            checks += problems
            payload["transcoding_seconds"] = round(time.monotonic() - begun, 1)
        machine = machine_facts(None)
        if "peers" in parts:
            peers, machine = peers_part(args, p, found, bench.log, say)
            sections.append(
                section_text(peers, "every response 200 and a PNG of the expected size")
            )
            payload.update(peers.payload)
            checks += peers.problems
        payload["machine"] = machine
        if "isolation" in parts:
            isolation = isolation_part(args, p, found, transcoded, bench.log, say)
            isolation.heading = [
                f"Decoder isolation (f): Loupe {GUNICORN_CONFIG}, "
                f"LOUPE_FRAME_CACHE_MB={args.frame_cache_mb}; nproc {machine['nproc']}, "
                f"{machine['cpu_model']}"
            ]
            passed = (
                "every response 200 and a PNG of the expected size, no decoder forked while timed"
            )
            sections.append(section_text(isolation, passed, "checks (f)"))
            payload["isolation"] = isolation.payload
            checks += isolation.problems

    for section in sections:
        print()
        print(section)
    return bench.finish(payload, checks)


if __name__ == "__main__":
    sys.exit(main())
