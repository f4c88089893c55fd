"""Ingest throughput: Loupe (SQLite, PostgreSQL) against Debian's Orthanc 1.10.

    .venv/bin/python -m bench.ingest [--corpus PATH] [--series PATH] [--rounds N] [--quick]
                                     [--multipart] [--workers N] [--threads N] [--peers ...]

The 99-slice CT series, re-identified per round and concurrency, is uploaded to Orthanc
(``POST /instances``), Loupe on SQLite and on PostgreSQL (``POST /api/instances``, raw
``application/dicom`` bodies) and a bare gunicorn reference, from 1 and 4 client threads
with the very same client code; each round of Loupe on PostgreSQL at one client is
followed by a round of ``bench.ingest_inprocess`` (ingest without HTTP). Prints
instances/s, latency, server CPU per instance, the ratios to Orthanc and where Loupe's
CPU per object goes; writes ``bench/results/ingest-<timestamp>.json``. What it measures
and how, the gunicorn configuration and its A/B: bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.harness import (
    DEFAULT_THREADS,
    DEFAULT_WORKERS,
    PROJECT_DIR,
    BenchRun,
    Gunicorn,
    Request,
    Run,
    argument_parser,
    checks_lines,
    fresh_copy,
    gunicorn_config,
    load_series,
    login,
    loupe_env,
    machine_facts,
    merged_statuses,
    percentile,
    request_once,
    send_all,
    series_folder,
    serve,
    start_loupe,
)
from tests.servers import (
    Server,
    create_database,
    manage,
    orthanc_available,
    postgres_available,
    start_orthanc,
    start_postgres,
)

PROGRAM = "bench.ingest"
CONCURRENCIES = (1, 4)
WARMUP_OBJECTS = 12
WARMUP_CONCURRENCY = 4
PEER_NAMES = ("orthanc", "loupe-sqlite", "loupe-postgres", "gunicorn-bare")
GUNICORN_NOTE = (
    "gthread -w 2 --threads 4 (the README's deployment line) chosen by an interleaved A/B "
    "against sync -w 2 and gthread -w 2/3/4 with 2/4/8 threads (bench/README.md): "
    "best or within noise of the best on both databases; keeps connections alive"
)


# --------------------------------------------------------------------------- peers


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


def orthanc_peer(server: Server) -> Peer:
    def count() -> int:
        _, _, body = request_once(server.port, "GET", "/statistics")
        return int(json.loads(body)["CountInstances"])

    return Peer(
        "orthanc", server.port, "/instances", {}, orthanc_accepted, count, [server.process.pid]
    )


def loupe_peer(name: str, server: Gunicorn, extra_pids: list[int]) -> Peer:
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
    )


def bare_peer(server: Gunicorn) -> Peer:
    return Peer(
        "gunicorn-bare",
        server.port,
        "/",
        {},
        loupe_accepted,
        lambda: 0,
        [server.process.pid],
        stores=False,
    )


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


def multipart_body(payload: bytes, name: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        "Content-Type: application/dicom\r\n\r\n"
    ).encode()
    return head + payload + f"\r\n--{boundary}--\r\n".encode(), boundary


def upload(peer: Peer, payloads: list[bytes], concurrency: int) -> Run:
    """POST every payload once to ``peer`` from ``concurrency`` client threads; an answer
    is wrong unless it says the object was stored as new."""
    requests = []
    for index, payload in enumerate(payloads):
        headers = {"Accept": "application/json", **peer.headers}
        if peer.multipart:
            body, boundary = multipart_body(payload, f"{index:06d}.dcm")
            headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        else:
            body = payload
            headers["Content-Type"] = "application/dicom"
        requests.append(Request("POST", peer.path, body, headers))

    def check(index: int, status: int, body: bytes) -> str | None:
        try:
            if peer.accepted(json.loads(body)):
                return None
        except ValueError:
            pass
        return f"{status} {body[:300]!r}"

    return send_all(
        peer.port,
        requests,
        concurrency=concurrency,
        cpu_pids=peer.cpu_pids,
        check=check,
        keep_problems=5,
        timeout=300,
    )


class InProcess:
    """``bench.ingest_inprocess`` (Loupe's ingest without HTTP, one thread) in a process
    of its own on a fresh database of the bench's PostgreSQL cluster: ``round()`` times
    one round of the series there and returns its figures per object."""

    def __init__(self, postgres: Server, series: Path, log: Path) -> None:
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
                        "--series",
                        str(series),
                        "--warmup",
                        str(WARMUP_OBJECTS),
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


# --------------------------------------------------------------------------- steps


@dataclass
class Payloads:
    warmup: list[bytes]
    raw: dict[tuple[int, int], list[bytes]]  # (round, concurrency) -> one copy of the series
    multipart: dict[tuple[int, int], list[bytes]]
    series_size: int


def prepare_payloads(bench: BenchRun, series: Path, rounds: int, multipart: bool) -> Payloads:
    """A fresh copy of the series per round and concurrency (and per multipart peer),
    so that no peer ever sees a duplicate and all get the same bytes; 12 for warm-up."""
    datasets = load_series(series, PROGRAM)
    print(f"preparing payloads: {rounds} round(s) x {len(CONCURRENCIES)} concurrencies ...")
    keys = [(r, c) for r in range(rounds) for c in CONCURRENCIES]
    payloads = Payloads(
        fresh_copy(datasets, WARMUP_OBJECTS),
        {key: fresh_copy(datasets) for key in keys},
        {key: fresh_copy(datasets) for key in keys} if multipart else {},
        len(datasets),
    )
    print(f"  {len(payloads.raw)} copies of {payloads.series_size} objects, {bench.seconds()} s")
    return payloads


@dataclass
class Peers:
    peers: list[Peer]
    facts: dict[str, Any]
    without_http: InProcess | None


def start_peers(stack: ExitStack, args: argparse.Namespace, wanted: list[str], log: Path) -> Peers:
    """Every wanted peer with fresh storage, each stopped by ``stack``; Orthanc always
    runs (the machine facts name its version)."""
    peers: list[Peer] = []
    orthanc = start_orthanc(dicomweb=False)
    stack.callback(orthanc.stop)
    facts = machine_facts(orthanc)
    if "orthanc" in wanted:
        peers.append(orthanc_peer(orthanc))
    if "loupe-sqlite" in wanted:
        sqlite_loupe = start_loupe("sqlite", workers=args.workers, threads=args.threads, log=log)
        stack.callback(sqlite_loupe.stop)
        peers.append(loupe_peer("loupe-sqlite", sqlite_loupe, []))
    without_http = None
    if "loupe-postgres" in wanted:
        postgres = start_postgres()
        stack.callback(postgres.stop)
        url = create_database(postgres, "loupe_bench")
        pg_loupe = start_loupe(
            "postgres", database_url=url, workers=args.workers, threads=args.threads, log=log
        )
        stack.callback(pg_loupe.stop)
        peers.append(loupe_peer("loupe-postgres", pg_loupe, [postgres.process.pid]))
        without_http = InProcess(postgres, series_folder(args), log)
        stack.callback(without_http.stop)
    if "gunicorn-bare" in wanted:
        bare = start_bare(workers=args.workers, threads=args.threads, log=log)
        stack.callback(bare.stop)
        peers.append(bare_peer(bare))
    if args.multipart:
        peers += [
            replace(peer, name=f"{peer.name}-multipart", multipart=True)
            for peer in peers
            if peer.name.startswith("loupe")
        ]
    return Peers(peers, facts, without_http)


def warm_up(peers: list[Peer], warmup: list[bytes]) -> None:
    print(f"warm-up: {WARMUP_OBJECTS} objects at concurrency {WARMUP_CONCURRENCY} per peer")
    failures: list[str] = []
    for peer in peers:
        if peer.multipart:
            continue  # shares its server with the raw-body peer, already warm
        warm = upload(peer, warmup, WARMUP_CONCURRENCY)
        if warm.rejected or warm.problems:
            failures.append(f"{peer.name}: {warm.problems}")
    if failures:
        raise RuntimeError(f"warm-up failed: {failures}")


def timed_rounds(found: Peers, payloads: Payloads, rounds: int) -> dict[str, list[Run]]:
    """Each round, concurrency and peer (the peer order rotating each round, so that
    drift favours none); the no-HTTP round right after Loupe on PostgreSQL at one client."""
    runs: dict[str, list[Run]] = {}
    peers = found.peers
    for r in range(rounds):
        for c in CONCURRENCIES:
            order = peers[r % len(peers) :] + peers[: r % len(peers)]
            for peer in order:
                data = (payloads.multipart if peer.multipart else payloads.raw)[(r, c)]
                run = upload(peer, data, c)
                runs.setdefault(f"{peer.name}@{c}", []).append(run)
                problems = f"  PROBLEMS: {run.problems[:2]}" if run.problems or run.rejected else ""
                print(
                    f"  round {r + 1} conc {c} {peer.name:<24} "
                    f"{run.per_second:7.1f} inst/s  {run.seconds:6.2f} s{problems}"
                )
                if found.without_http is not None and peer.name == "loupe-postgres" and c == 1:
                    figures = found.without_http.round()  # right after, in the same phase
                    print(
                        f"  round {r + 1} conc 1 {'(ingest without HTTP)':<24} "
                        f"{figures['instances_per_second']:7.1f} inst/s"
                    )
    return runs


def stored_counts(
    peers: list[Peer], rounds: int, series_size: int
) -> tuple[dict[str, int], dict[str, int]]:
    """(instances each storing peer holds, instances it should hold)."""
    per_server = len(CONCURRENCIES) * rounds * series_size
    stored_by = [peer for peer in peers if peer.stores and not peer.multipart]
    expected = {peer.name: WARMUP_OBJECTS + per_server for peer in stored_by}
    for peer in peers:
        if peer.multipart:
            expected[peer.name.removesuffix("-multipart")] += per_server
    return {peer.name: peer.count() for peer in stored_by}, expected


# --------------------------------------------------------------------------- figures


def summarize(runs: list[Run]) -> dict[str, Any]:
    latencies = [value for run in runs for value in run.latencies_ms]
    objects = sum(len(run.latencies_ms) for run in runs)
    return {
        "instances_per_second_rounds": [round(run.per_second, 2) for run in runs],
        "instances_per_second_median": round(statistics.median(run.per_second for run in runs), 2),
        "latency_ms_median": round(statistics.median(latencies), 1),
        "latency_ms_p95": round(percentile(latencies, 0.95), 1),
        "server_cpu_ms_per_instance": round(
            1000 * sum(run.server_cpu_s for run in runs) / objects, 1
        ),
        "statuses": merged_statuses(runs),
        "cpu_steal_percent": round(
            100 * sum(run.steal_ticks for run in runs) / max(1, sum(r.total_ticks for r in runs)),
            1,
        ),
        "not_accepted": sum(run.rejected for run in runs),
        "errors": [problem for run in runs for problem in run.problems][:10],
    }


def compare_to_orthanc(
    results: dict[str, dict[str, Any]], runs: dict[str, list[Run]], peers: list[Peer]
) -> None:
    """Add to each row its ratio to Orthanc at the same concurrency: of the medians, and
    per round (rounds timed back to back, which cancels slow drift of the machine)."""
    for concurrency in CONCURRENCIES:
        base = runs.get(f"orthanc@{concurrency}")
        if not base:
            continue
        orthanc_median = results[f"orthanc@{concurrency}"]["instances_per_second_median"]
        for peer in peers:
            key = f"{peer.name}@{concurrency}"
            ratios = [
                run.per_second / orthanc.per_second
                for run, orthanc in zip(runs[key], base, strict=True)
            ]
            results[key]["vs_orthanc"] = round(
                results[key]["instances_per_second_median"] / orthanc_median, 3
            )
            results[key]["vs_orthanc_per_round"] = [round(r, 3) for r in ratios]
            results[key]["vs_orthanc_per_round_median"] = round(statistics.median(ratios), 3)


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


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argument_parser(PROGRAM, __doc__)
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
        default=",".join(PEER_NAMES),
        help=f"comma-separated subset of {','.join(PEER_NAMES)} "
        "(the last: Loupe's gunicorn configuration answering without storing, a reference)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds = 1
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def failed_checks(
    results: dict[str, dict[str, Any]], counts: dict[str, int], expected: dict[str, int]
) -> list[str]:
    """Every response 200 and stored as new; every peer holding what it was sent."""
    checks: list[str] = []
    for key, row in results.items():
        if set(row["statuses"]) != {"200"} or row["not_accepted"] or row["errors"]:
            checks.append(f"{key}: statuses {row['statuses']}, errors {row['errors'][:3]}")
    for name, count in counts.items():
        if count != expected[name]:
            checks.append(f"{name}: {count} instances stored, expected {expected[name]}")
    return checks


def print_report(
    args: argparse.Namespace,
    heading: str,
    facts: dict[str, Any],
    steal: float,
    report: str,
    cpu_breakdown: str | None,
) -> None:
    default = (args.workers, args.threads) == (DEFAULT_WORKERS, DEFAULT_THREADS)
    config = gunicorn_config(args.workers, args.threads)
    print()
    print(heading)
    print(
        f"machine: nproc {facts['nproc']}, {facts['cpu_model']}, Python {facts['python']}, "
        f"Orthanc {facts['orthanc']}, {facts['postgres']}, SQLite {facts['sqlite']}, "
        f"temp fs {facts['temp_filesystem']}"
    )
    print(f"Loupe: {config}: {GUNICORN_NOTE if default else 'not the default'}")
    print(f"CPU steal during the timed runs: {steal} %")
    print()
    print(report)
    print()
    if cpu_breakdown is not None:
        print(cpu_breakdown)
        print()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wanted = [name.strip() for name in args.peers.split(",") if name.strip()]
    for reason in (
        orthanc_available(),
        postgres_available() if "loupe-postgres" in wanted else None,
    ):
        if reason:
            sys.exit(f"{PROGRAM}: {reason}")
    series = series_folder(args)
    bench = BenchRun("ingest")
    payloads = prepare_payloads(bench, series, args.rounds, args.multipart)
    config = gunicorn_config(args.workers, args.threads)
    with ExitStack() as stack:
        found = start_peers(stack, args, wanted, bench.log)
        print(f"machine: {json.dumps(found.facts)}")
        print(f"Loupe served by {config}")
        warm_up(found.peers, payloads.warmup)
        runs = timed_rounds(found, payloads, args.rounds)
        counts, expected = stored_counts(found.peers, args.rounds, payloads.series_size)
        inprocess = found.without_http.summary() if found.without_http is not None else None

    results = {key: summarize(value) for key, value in runs.items()}
    compare_to_orthanc(results, runs, found.peers)
    every_run = [run for value in runs.values() for run in value]
    steal = round(
        100 * sum(r.steal_ticks for r in every_run) / max(1, sum(r.total_ticks for r in every_run)),
        1,
    )
    checks = failed_checks(results, counts, expected)
    report = table(results, [peer.name for peer in found.peers], args.rounds)
    bodies = "raw application/dicom" + (" and multipart/form-data" if args.multipart else "")
    print_report(
        args,
        f"Ingest of the {payloads.series_size}-slice CT series ({series}), {bodies} bodies",
        found.facts,
        steal,
        report,
        breakdown(results, inprocess) if inprocess is not None else None,
    )
    print(f"instances stored: {counts} (expected {expected})")
    print("\n".join(checks_lines(checks, "all responses 200, every object stored as new")))
    return bench.finish(
        {
            "series": str(series),
            "objects_per_round": payloads.series_size,
            "rounds": args.rounds,
            "concurrencies": list(CONCURRENCIES),
            "warmup_objects": WARMUP_OBJECTS,
            "loupe_server": config,
            "loupe_server_note": GUNICORN_NOTE,
            "machine": found.facts,
            "results": results,
            "per_round_seconds": {
                key: [round(run.seconds, 3) for run in value] for key, value in runs.items()
            },
            "cpu_steal_percent": steal,
            "instances_stored": counts,
            "instances_expected": expected,
            "ingest_without_http": inprocess,
            "table": report,
        },
        checks,
    )


if __name__ == "__main__":
    sys.exit(main())
