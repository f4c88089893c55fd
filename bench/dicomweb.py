"""DICOMweb and DIMSE against Orthanc 1.10 with its DICOMweb plugin, in one run.

    .venv/bin/python -m bench.dicomweb [--quick] [--studies 10000] [--rounds 3]

Both archives hold the same ``--studies`` tiny studies (pydicom's CT_small re-identified,
16×16 pixels) and the 99-slice CT; then, peers interleaved (the order rotates each round):

(1) QIDO-RS study search (PS3.18 §10.6): by PatientID, by PatientName wildcard, by a
    StudyDate range, and every study with ``limit=25``: latency medians, Loupe/Orthanc;
(2) WADO-RS series metadata of the CT (PS3.18 §10.4.1.1.2): the first request ever
    (after a restart; Loupe makes the DICOM JSON from the files and keeps it), cold (the
    first request after each later restart) and warm medians;
(3) WADO-RS retrieval of the CT series, ``multipart/related; type="application/dicom"``:
    median seconds and MB/s;
(4) ingest of fresh copies of the CT: STOW-RS (PS3.18 §10.5) in batches of 50 instances
    (Loupe's ``POST /dicom-web/studies`` with an API token, Orthanc's plugin) and C-STORE
    over one association with dcmtk's ``storescu`` (Loupe's ``manage.py storescp``,
    Orthanc's DICOM port): server CPU ms per object (the server's process tree) and
    instances/s.

Writes ``bench/results/dicomweb-<timestamp>.json``; what is measured and how:
bench/README.md.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from bench.harness import (
    HOST,
    USERNAME,
    BenchRun,
    Gunicorn,
    Request,
    Run,
    argument_parser,
    checks_lines,
    cpu_ticks,
    decoders_per_worker,
    end,
    fresh_copy,
    load_series,
    machine_facts,
    multipart_related,
    percentile,
    process_tree_cpu,
    relaunch,
    send_all,
    series_files,
    series_folder,
    start_loupe,
    start_orthanc_dicom,
    steal_percent,
    wait_until_settled,
)
from tests.servers import Server, free_port, manage

LOUPE, ORTHANC = "loupe", "orthanc"
FAMILY = ["SMITH", "GARCIA", "MULLER", "NGUYEN", "KOWALSKI", "ROSSI", "TANAKA", "OKAFOR", "DUBOIS"]
GIVEN = ["ANNA", "MARIA", "JOHN", "LI", "AHMED", "SOFIA", "PAUL", "YUKI", "OLGA", "MARTIN"]
FIRST_DATE = dt.date(2005, 1, 1)
QUERIES = {
    "PatientID": "PatientID=BENCH00123",
    # A prefix wildcard with a few hundred results (223 at 10,000 studies): under the
    # 1,000 results Loupe answers per request (more are paged with offset).
    "PatientName wildcard": "PatientName=SMITH^A*",
    "StudyDate range (1 month)": "StudyDate=20150301-20150331",
    "all studies, limit=25": "limit=25",
}
DICOM_JSON = "application/dicom+json"
MULTIPART_DICOM = 'multipart/related; type="application/dicom"'
STOW_BATCH = 50


# --------------------------------------------------------------------------- the data


def tiny_studies(folder: Path, count: int) -> list[Path]:
    """``count`` one-instance studies written to ``folder``: CT_small with its pixels cut
    to 16×16, each with new UIDs, its own patient (``BENCH<n>``, names from FAMILY and
    GIVEN), accession number and a date spread over 20 years."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))  # type: ignore[arg-type]
    ds.Rows = ds.Columns = 16
    ds.PixelData = bytes(16 * 16 * 2)
    for keyword in ("OtherPatientIDs", "OtherPatientIDsSequence"):
        if keyword in ds:
            delattr(ds, keyword)
    paths = []
    for n in range(count):
        sop = generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = (
            generate_uid(),
            generate_uid(),
            sop,
        )
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.PatientID = f"BENCH{n:05d}"
        ds.PatientName = f"{FAMILY[n % 9]}^{GIVEN[n % 10]}{n % 97}"
        ds.AccessionNumber = f"ACC{n:08d}"
        ds.StudyID = str(n)
        ds.StudyDate = (FIRST_DATE + dt.timedelta(days=(n * 7919) % 7300)).strftime("%Y%m%d")
        ds.StudyTime = f"{n % 24:02d}{n % 60:02d}00"
        path = folder / f"{n:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def expected_counts(count: int) -> dict[str, int]:
    """How many of the tiny studies each query matches (the CT's patient matches none)."""
    names = sum(1 for n in range(count) if n % 9 == 0 and GIVEN[n % 10].startswith("A"))
    dates = 0
    for n in range(count):
        day = FIRST_DATE + dt.timedelta(days=(n * 7919) % 7300)
        dates += dt.date(2015, 3, 1) <= day <= dt.date(2015, 3, 31)
    return {
        "PatientID": 1 if count > 123 else 0,
        "PatientName wildcard": names,
        "StudyDate range (1 month)": dates,
        "all studies, limit=25": 25,
    }


# --------------------------------------------------------------------------- the peers


class Peers:
    """Loupe (gunicorn, SQLite, an API token of a radiologist service account) and
    Orthanc with its DICOMweb plugin and DICOM server; each one's HTTP prefix, headers,
    root PID and restart."""

    def __init__(self, loupe: Gunicorn, orthanc: Server, token: str, log: Path) -> None:
        self.loupe, self.orthanc, self.token, self.log = loupe, orthanc, token, log

    def port(self, peer: str) -> int:
        return self.loupe.port if peer == LOUPE else self.orthanc.port

    def pid(self, peer: str) -> int:
        return self.loupe.process.pid if peer == LOUPE else self.orthanc.process.pid

    def headers(self, peer: str, accept: str) -> dict[str, str]:
        auth = {"Authorization": f"Bearer {self.token}"} if peer == LOUPE else {}
        return {"Accept": accept, **auth}

    def restart(self, peer: str) -> None:
        """A new server on the same port and storage, settled before it is asked."""
        if peer == LOUPE:
            end(self.loupe.process)
            process = relaunch(
                self.loupe.process, self.loupe.port, self.loupe.env, self.log, "/login/"
            )
            self.loupe.process = process
            wait_until_settled(process.pid, 2, decoders_per_worker(self.loupe.env))
        else:
            end(self.orthanc.process)
            self.orthanc.process = relaunch(
                self.orthanc.process,
                self.orthanc.port,
                None,
                self.orthanc.root / "orthanc.log",
                "/system",
            )


def order(round_index: int) -> list[str]:
    return [LOUPE, ORTHANC] if round_index % 2 == 0 else [ORTHANC, LOUPE]


def check_json_list(expected: int | None) -> Callable[[int, int, bytes], str | None]:
    def check(index: int, status: int, body: bytes) -> str | None:
        if status != 200:
            return f"status {status}: {body[:200]!r}"
        try:
            found = len(json.loads(body))
        except ValueError:
            return "not JSON"
        if expected is not None and found != expected:
            return f"{found} results, {expected} expected"
        return None

    return check


def check_multipart(objects: int) -> Callable[[int, int, bytes], str | None]:
    def check(index: int, status: int, body: bytes) -> str | None:
        if status != 200:
            return f"status {status}: {body[:200]!r}"
        found = body.count(b"DICM")
        return None if found >= objects else f"{found} DICOM parts, {objects} expected"

    return check


def check_stow(objects: int) -> Callable[[int, int, bytes], str | None]:
    def check(index: int, status: int, body: bytes) -> str | None:
        if status != 200:
            return f"status {status}: {body[:300]!r}"
        answer = json.loads(body)
        stored = len(answer.get("00081199", {}).get("Value", []))
        failed = answer.get("00081198", {}).get("Value", [])
        if failed or stored != objects:
            return f"{stored} stored, {len(failed)} failed, {objects} expected"
        return None

    return check


def storescp(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``manage.py storescp`` on a free loopback port, once it accepts connections."""
    port = free_port()
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "storescp", "--port", str(port), "--ae-title", "LOUPE"],
            cwd=Path(__file__).resolve().parent.parent,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"manage.py storescp exited during start-up: see {log}")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.2)
    end(process)
    raise RuntimeError(f"manage.py storescp did not listen within 60 s: see {log}")


def c_store(port: int, called: str, files: list[Path], pid: int) -> tuple[float, float, str]:
    """dcmtk ``storescu`` of ``files`` over one association: (seconds, server CPU
    seconds of ``pid``'s tree, the problem or "")."""
    command = ["storescu", "-aet", "BENCH", "-aec", called, "-R", HOST, str(port)]
    command += [str(path) for path in files]
    cpu = process_tree_cpu(pid)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - started
    cpu = process_tree_cpu(pid) - cpu
    problem = ""
    if done.returncode != 0 or "E:" in done.stderr:
        problem = f"storescu to {called}: exit {done.returncode}: {done.stderr.strip()[:300]}"
    return seconds, cpu, problem


# --------------------------------------------------------------------------- the parts


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(loupe: float, orthanc: float) -> float:
    return round(loupe / orthanc, 2) if orthanc else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argument_parser("bench.dicomweb", __doc__)
    parser.add_argument(
        "--quick", action="store_true", help="1 round, 1,000 studies, fewer requests"
    )
    parser.add_argument("--studies", type=int, default=None, help="tiny studies (10000)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (3)")
    args = parser.parse_args(argv)
    studies = args.studies or (1000 if args.quick else 10000)
    rounds = args.rounds or (1 if args.quick else 3)
    qido_repeat = 5 if args.quick else 20
    warm_repeat = 3 if args.quick else 10
    cold_trials = 1 if args.quick else 3
    stow_batches = 2 if args.quick else 4
    series = series_files(series_folder(args), "bench.dicomweb")
    datasets = load_series(series_folder(args), "bench.dicomweb")
    first = datasets[0]
    ct_study, ct_series = first.StudyInstanceUID, first.SeriesInstanceUID
    ct_path = f"/dicom-web/studies/{ct_study}/series/{ct_series}"
    run = BenchRun("dicomweb")
    problems: list[str] = []
    figures: dict[str, Any] = {}
    ticks = cpu_ticks()
    with ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="loupe-bench-dicomweb-"))
        stack.callback(shutil.rmtree, work, True)
        tiny = work / "tiny"
        tiny.mkdir()
        started = time.perf_counter()
        paths = tiny_studies(tiny, studies)
        made_s = time.perf_counter() - started
        print(f"{studies} tiny studies made in {made_s:.0f} s; loading both archives …")

        orthanc = start_orthanc_dicom()
        stack.callback(orthanc.stop)
        loaded: dict[str, Any] = {}

        def load_loupe() -> None:
            began = time.perf_counter()
            try:
                loaded["loupe"] = start_loupe(
                    "dicomweb", log=run.log, imports=[tiny, *series], objects=studies + len(series)
                )
            except BaseException as exc:  # reported by the main thread
                loaded["error"] = exc
            loaded["loupe_s"] = time.perf_counter() - began

        loader = threading.Thread(target=load_loupe)
        loader.start()
        began = time.perf_counter()
        upload = send_all(
            orthanc.port,
            [Request("POST", "/instances", p.read_bytes()) for p in [*paths, *series]],
            concurrency=4,
            check=lambda i, status, body: None if status == 200 else f"status {status}",
        )
        orthanc_load_s = time.perf_counter() - began
        loader.join()
        if "error" in loaded:
            raise loaded["error"]
        loupe: Gunicorn = loaded["loupe"]
        stack.callback(loupe.stop)
        problems += upload.problems
        figures["load_s"] = {
            "loupe": round(loaded["loupe_s"], 1),
            "orthanc": round(orthanc_load_s, 1),
        }
        print(
            f"loaded: Loupe {loaded['loupe_s']:.0f} s (import_dicom), Orthanc {orthanc_load_s:.0f} s"
        )
        token = manage(loupe.env, "issue_api_token", USERNAME, "--role", "radiologist").split()[-1]
        peers = Peers(loupe, orthanc, token, run.log)

        # (1) QIDO-RS ---------------------------------------------------------------
        expected = expected_counts(studies)
        qido: dict[str, dict[str, list[float]]] = {q: {LOUPE: [], ORTHANC: []} for q in QUERIES}
        for peer in (LOUPE, ORTHANC):  # warm-up: each query once
            for name, query in QUERIES.items():
                warm = send_all(
                    peers.port(peer),
                    [
                        Request(
                            "GET",
                            f"/dicom-web/studies?{query}",
                            None,
                            peers.headers(peer, DICOM_JSON),
                        )
                    ],
                    check=check_json_list(expected[name]),
                )
                problems += [f"{peer} {name}: {p}" for p in warm.problems]
        for r in range(rounds):
            for peer in order(r):
                for name, query in QUERIES.items():
                    request = Request(
                        "GET", f"/dicom-web/studies?{query}", None, peers.headers(peer, DICOM_JSON)
                    )
                    timed = send_all(
                        peers.port(peer),
                        [request] * qido_repeat,
                        check=check_json_list(expected[name]),
                    )
                    problems += [f"{peer} {name}: {p}" for p in timed.problems]
                    qido[name][peer] += timed.latencies_ms
        figures["qido_ms"] = {
            name: {
                peer: {"median": round(median(v), 2), "p95": round(percentile(v, 0.95), 2)}
                for peer, v in by_peer.items()
            }
            | {"results": expected[name]}
            for name, by_peer in qido.items()
        }
        print("(1) QIDO-RS done")

        # (2) metadata, cold and warm -------------------------------------------------
        def metadata(peer: str, count: int) -> Run:
            request = Request("GET", f"{ct_path}/metadata", None, peers.headers(peer, DICOM_JSON))
            done = send_all(peers.port(peer), [request] * count, check=check_json_list(len(series)))
            problems.extend(f"{peer} metadata: {p}" for p in done.problems)
            return done

        # The very first request for the series, after a restart: Loupe makes its DICOM
        # JSON from the files (and keeps it); later restarts find it kept.
        first_ms: dict[str, float] = {}
        for peer in (LOUPE, ORTHANC):
            peers.restart(peer)
            first_ms[peer] = metadata(peer, 1).latencies_ms[0]
        cold: dict[str, list[float]] = {LOUPE: [], ORTHANC: []}
        for trial in range(cold_trials):
            for peer in order(trial):
                peers.restart(peer)
                cold[peer] += metadata(peer, 1).latencies_ms
        warm_ms: dict[str, list[float]] = {LOUPE: [], ORTHANC: []}
        metadata_bytes: dict[str, int] = {}
        for peer in (LOUPE, ORTHANC):
            metadata_bytes[peer] = metadata(peer, 2).sizes[0]
        for r in range(rounds):
            for peer in order(r):
                warm_ms[peer] += metadata(peer, warm_repeat).latencies_ms
        figures["metadata_ms"] = {
            peer: {
                "first": round(first_ms[peer], 1),
                "cold_median": round(median(cold[peer]), 1),
                "warm_median": round(median(warm_ms[peer]), 1),
                "warm_p95": round(percentile(warm_ms[peer], 0.95), 1),
                "bytes": metadata_bytes[peer],
            }
            for peer in (LOUPE, ORTHANC)
        }
        print("(2) metadata done")

        # (3) retrieval of the series -------------------------------------------------
        retrieve: dict[str, list[float]] = {LOUPE: [], ORTHANC: []}
        retrieve_bytes: dict[str, int] = {}
        for peer in (LOUPE, ORTHANC):  # warm-up
            send_all(
                peers.port(peer),
                [Request("GET", ct_path, None, peers.headers(peer, MULTIPART_DICOM))],
            )
        for r in range(rounds):
            for peer in order(r):
                request = Request("GET", ct_path, None, peers.headers(peer, MULTIPART_DICOM))
                done = send_all(
                    peers.port(peer),
                    [request] * max(1, warm_repeat // 3),
                    check=check_multipart(len(series)),
                )
                problems += [f"{peer} retrieve: {p}" for p in done.problems]
                retrieve[peer] += [ms / 1000 for ms in done.latencies_ms]
                retrieve_bytes[peer] = max(done.sizes)
        figures["retrieve"] = {
            peer: {
                "median_s": round(median(retrieve[peer]), 3),
                "mb_per_s": round(retrieve_bytes[peer] / 1e6 / median(retrieve[peer]), 1),
                "bytes": retrieve_bytes[peer],
            }
            for peer in (LOUPE, ORTHANC)
        }
        print("(3) retrieval done")

        # (4) ingest: STOW-RS and C-STORE -------------------------------------------------
        scp, scp_port = storescp(loupe.env, run.log)
        stack.callback(end, scp)
        dimse = {
            LOUPE: (scp_port, "LOUPE", scp.pid),
            ORTHANC: (int(orthanc.extra["dicom_port"]), "ORTHANC", 0),
        }

        def stow(peer: str, bodies: list[Request], objects: int) -> Run:
            requests = [
                Request(
                    "POST",
                    "/dicom-web/studies",
                    b.body,
                    {**b.headers, **peers.headers(peer, DICOM_JSON)},
                )
                for b in bodies
            ]
            done = send_all(
                peers.port(peer), requests, cpu_pids=[peers.pid(peer)], check=check_stow(objects)
            )
            problems.extend(f"{peer} STOW-RS: {p}" for p in done.problems)
            return done

        def write_copy(folder: Path, count: int | None = None) -> list[Path]:
            folder.mkdir()
            files = []
            for i, payload in enumerate(fresh_copy(datasets, count)):
                files.append(folder / f"{i:03d}.dcm")
                files[-1].write_bytes(payload)
            return files

        warm_stow = [multipart_related(fresh_copy(datasets, 10))]
        warm_files = write_copy(work / "warm", 12)
        for peer in (LOUPE, ORTHANC):
            stow(peer, warm_stow, 10)
            port, called, pid = dimse[peer]
            problems += [
                p for p in [c_store(port, called, warm_files, pid or peers.pid(peer))[2]] if p
            ]
        ingest: dict[str, dict[str, list[float]]] = {
            key: {LOUPE: [], ORTHANC: []}
            for key in ("stow_cpu", "stow_rate", "cstore_cpu", "cstore_rate")
        }
        stored = studies + len(series) + 10 + 12
        for r in range(rounds):
            bodies = [
                multipart_related(fresh_copy(datasets, STOW_BATCH)) for _ in range(stow_batches)
            ]
            files = write_copy(work / f"round{r}")
            for peer in order(r):
                done = stow(peer, bodies, STOW_BATCH)
                objects = STOW_BATCH * stow_batches
                ingest["stow_cpu"][peer].append(1000 * done.server_cpu_s / objects)
                ingest["stow_rate"][peer].append(objects / done.seconds)
                port, called, pid = dimse[peer]
                seconds, cpu, problem = c_store(port, called, files, pid or peers.pid(peer))
                if problem:
                    problems.append(problem)
                ingest["cstore_cpu"][peer].append(1000 * cpu / len(files))
                ingest["cstore_rate"][peer].append(len(files) / seconds)
            stored += STOW_BATCH * stow_batches + len(files)
        figures["ingest"] = {
            key: {peer: round(median(v), 2) for peer, v in by_peer.items()}
            | {"rounds": {peer: [round(x, 2) for x in v] for peer, v in by_peer.items()}}
            for key, by_peer in ingest.items()
        }
        print("(4) ingest done")

        # the stored counts ---------------------------------------------------------
        _, _, body = _get(orthanc.port, "/statistics")
        orthanc_count = json.loads(body)["CountInstances"]
        out = manage(
            loupe.env,
            "shell",
            "-c",
            "from viewer.models import Instance; print(Instance.objects.count())",
        )
        loupe_count = int(out.split()[-1])
        for peer, count in ((LOUPE, loupe_count), (ORTHANC, orthanc_count)):
            if count != stored:
                problems.append(f"{peer} holds {count} instances, {stored} expected")
        facts = machine_facts(orthanc)
    steal = steal_percent(ticks, cpu_ticks())
    report = table(figures, studies)
    print(
        f"DICOMweb and DIMSE: Loupe vs Orthanc {facts.get('orthanc', '')} (DICOMweb plugin), "
        f"{studies:,} studies, {rounds} round(s)"
    )
    print(report)
    import os

    load = os.getloadavg()
    print(f"CPU steal {steal} %, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(
        "\n".join(
            checks_lines(
                problems, "every answer 200 with the expected results; every object stored"
            )
        )
    )
    return run.finish(
        {
            "options": {"studies": studies, "rounds": rounds, "quick": args.quick},
            "machine": facts,
            "figures": figures,
            "table": report,
            "steal_percent": steal,
            "load_average": list(load),
        },
        problems,
    )


def _get(port: int, path: str) -> tuple[int, Any, bytes]:
    from bench.harness import request_once

    return request_once(port, "GET", path)


def table(figures: dict[str, Any], studies: int) -> str:
    rows = [("measure", "Loupe", "Orthanc", "Loupe/Orthanc", "target")]
    for name, by_peer in figures["qido_ms"].items():
        lo, orth = by_peer[LOUPE]["median"], by_peer[ORTHANC]["median"]
        rows.append(
            (
                f"QIDO {name} ({by_peer['results']} results), median ms",
                f"{lo:.1f}",
                f"{orth:.1f}",
                f"{ratio(lo, orth):.2f}",
                "< 1",
            )
        )
    meta = figures["metadata_ms"]
    for key, label in (
        ("first", "first request ever, ms"),
        ("cold_median", "cold (after a restart), median ms"),
        ("warm_median", "warm, median ms"),
    ):
        lo, orth = meta[LOUPE][key], meta[ORTHANC][key]
        rows.append(
            (
                f"series metadata (99 slices) {label}",
                f"{lo:.1f}",
                f"{orth:.1f}",
                f"{ratio(lo, orth):.2f}",
                "< 1",
            )
        )
    ret = figures["retrieve"]
    rows.append(
        (
            "series retrieve (multipart), median s",
            f"{ret[LOUPE]['median_s']:.2f}",
            f"{ret[ORTHANC]['median_s']:.2f}",
            f"{ratio(ret[LOUPE]['median_s'], ret[ORTHANC]['median_s']):.2f}",
            "",
        )
    )
    rows.append(
        (
            "series retrieve, MB/s",
            f"{ret[LOUPE]['mb_per_s']:.0f}",
            f"{ret[ORTHANC]['mb_per_s']:.0f}",
            f"{ratio(ret[LOUPE]['mb_per_s'], ret[ORTHANC]['mb_per_s']):.2f}",
            "",
        )
    )
    ing = figures["ingest"]
    for key, label, target in (
        ("stow_cpu", "STOW-RS (batches of 50) server CPU ms/object", "≤ 1"),
        ("stow_rate", "STOW-RS instances/s", "≥ 1"),
        ("cstore_cpu", "C-STORE (one association) server CPU ms/object", "≤ 1"),
        ("cstore_rate", "C-STORE instances/s", "≥ 1"),
    ):
        lo, orth = ing[key][LOUPE], ing[key][ORTHANC]
        rows.append((label, f"{lo:.1f}", f"{orth:.1f}", f"{ratio(lo, orth):.2f}", target))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
