"""Worklist latency at 100,000 studies, on PostgreSQL and on SQLite.

    .venv/bin/python -m bench.worklist [--studies 100000] [--repeat 15]

Fills a fresh database with synthetic studies through the ORM's bulk_create, then times
the worklist page (query and template, in process through Django's test client) for the
searches a radiologist makes: medians and p95 over repeated requests, and whether
PostgreSQL's query plans use an index. Writes ``bench/results/worklist-<timestamp>.json``.
The data and the queries: bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.harness import BenchRun, checks_lines, loupe_env, machine_facts
from tests.servers import create_database, manage, postgres_available, start_postgres

QUERIES = {
    "default page (newest first)": {},
    "page 50": {"page": "50"},
    "name contains 'smith'": {"name": "smith"},
    "name prefix 'garcia ma'": {"name": "garcia ma"},
    "patient ID prefix": {"patient_id": "PID0012"},
    "accession prefix": {"accession": "ACC00777"},
    "date range (1 month)": {"date_from": "2015-03-01", "date_to": "2015-03-31"},
    "modality MR": {"modality": "MR"},
    "sort by name": {"sort": "name"},
}
FAMILY = ["SMITH", "GARCIA", "MÜLLER", "NGUYEN", "KOWALSKI", "ROSSI", "TANAKA", "OKAFOR", "DUBOIS"]
GIVEN = ["ANNA", "MARIA", "JOHN", "LI", "AHMED", "SOFIA", "PAUL", "YUKI", "OLGA", "MARTIN"]
MODALITIES = ["CT", "MR", "CR", "US", "MG"]
INDEXED = ("name contains 'smith'", "accession prefix", "default page (newest first)")


def fill(count: int) -> None:
    from viewer.models import Patient, Series, Study, search_form

    batch = 5000
    start = dt.date(2005, 1, 1)
    for offset in range(0, count, batch):
        n_range = range(offset, min(offset + batch, count))
        patients = [
            Patient(
                patient_id=f"PID{n:07d}",
                issuer_of_patient_id="BENCH",
                patient_name=f"{FAMILY[n % 9]}^{GIVEN[n % 10]}{n % 97}",
                patient_name_search=search_form(f"{FAMILY[n % 9]}^{GIVEN[n % 10]}{n % 97}"),
            )
            for n in n_range
        ]
        Patient.objects.bulk_create(patients)
        studies = [
            Study(
                study_instance_uid=f"1.2.826.0.1.3680043.10.{n}",
                patient=patient,
                accession_number=f"ACC{n:08d}",
                study_date=start + dt.timedelta(days=(n * 7919) % 7300),
                study_time=dt.time((n % 24), n % 60),
                study_description="CT CHEST" if n % 2 else "MR BRAIN",
                modalities_in_study=MODALITIES[n % 5],
                number_of_study_related_series=1,
                number_of_study_related_instances=100,
            )
            for n, patient in zip(n_range, patients, strict=True)
        ]
        Study.objects.bulk_create(studies)
        Series.objects.bulk_create(
            Series(
                series_instance_uid=f"1.2.826.0.1.3680043.10.{n}.1",
                study=study,
                modality=MODALITIES[n % 5],
            )
            for n, study in zip(n_range, studies, strict=True)
        )


def measure(repeat: int) -> dict[str, dict[str, Any]]:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    from bench.harness import percentile

    user = User.objects.create_user("bench", password="a-long-bench-password")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    results: dict[str, dict[str, Any]] = {}
    for label, params in QUERIES.items():
        client.get("/", params)  # warm-up
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            response = client.get("/", params)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        results[label] = {
            "median_ms": statistics.median(times),
            "p95_ms": percentile(times, 0.95),
            "times_ms": [round(value, 3) for value in times],
        }
    if connection.vendor == "postgresql":
        from viewer.models import Study
        from viewer.worklist import WorklistQuery

        for label in INDEXED:
            query = WorklistQuery.from_params(QUERIES[label]).studies(Study.objects.all())[:50]
            plan = query.explain()
            results[label]["index_scan"] = "Index" in plan or "Bitmap" in plan
    return results


def child(count: int, repeat: int) -> None:
    """Fill the database of this (Django) process and time the queries: one JSON line.
    ``bench.worklist`` runs it through ``manage.py shell``."""
    started = time.perf_counter()
    fill(count)
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(json.dumps({"fill_s": time.perf_counter() - started, "results": measure(repeat)}))


def run_child(env: dict[str, str], count: int, repeat: int) -> dict[str, Any]:
    """``child`` in a Loupe process of its own with ``env``, on a migrated database."""
    manage(env, "migrate", "--noinput", "-v0")
    out = manage(
        env,
        "shell",
        "-c",
        f"from bench.worklist import child; child({count:d}, {repeat:d})",
        timeout=3600,
    )
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def table(runs: dict[str, dict[str, Any]]) -> str:
    lines = [f"{'query':<30} " + " ".join(f"{name + ' median / p95 ms':>32}" for name in runs)]
    for label in QUERIES:
        cells = []
        for run in runs.values():
            row = run["results"][label]
            cells.append(f"{row['median_ms']:>18.1f} / {row['p95_ms']:>7.1f}")
        lines.append(f"{label:<30} " + " ".join(f"{c:>32}" for c in cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.worklist",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--studies", type=int, default=100_000, help="studies in each database")
    parser.add_argument("--repeat", type=int, default=15, help="timed requests per query")
    args = parser.parse_args(argv)
    reason = postgres_available()
    if reason:
        sys.exit(f"bench.worklist: {reason}")
    bench = BenchRun("worklist")
    runs: dict[str, dict[str, Any]] = {}
    with ExitStack() as stack:
        server = start_postgres()
        stack.callback(server.stop)
        pg_root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        sqlite_root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        pg_env = loupe_env(pg_root, create_database(server, "worklist"))
        runs["PostgreSQL 15"] = run_child(pg_env, args.studies, args.repeat)
        runs["SQLite"] = run_child(loupe_env(sqlite_root, None), args.studies, args.repeat)

    report = table(runs)
    plans = runs["PostgreSQL 15"]["results"]
    indexed = {label: bool(plans[label].get("index_scan")) for label in INDEXED}
    print(f"Worklist page latency at {args.studies:,} studies, {args.repeat} requests each")
    print(report)
    for name, run in runs.items():
        print(f"{name}: filled in {run['fill_s']:.0f} s")
    print(
        "PostgreSQL plan uses an index: "
        + "; ".join(f"{label} {'yes' if used else 'NO'}" for label, used in indexed.items())
    )
    checks: list[str] = []  # a request that is not answered 200 ends its child with an error
    print("\n".join(checks_lines(checks, "every request answered 200")))
    return bench.finish(
        {
            "studies": args.studies,
            "repeat": args.repeat,
            "machine": machine_facts(None),
            "runs": runs,
            "table": report,
        },
        checks,
    )


if __name__ == "__main__":
    sys.exit(main())
