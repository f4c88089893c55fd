"""Worklist latency at 100,000 studies, on PostgreSQL and on SQLite.

Fills a fresh database with N synthetic studies (one patient, one series each, names and
IDs varied, dates over 20 years, five modalities) through the ORM's bulk_create, then
times the worklist page (query + template, in-process through Django's test client) for
the searches a radiologist makes. Prints medians and p95 over repeated requests, and the
PostgreSQL query plans' index use.

    .venv/bin/python -m bench.worklist [--studies 100000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
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


def measure(repeat: int) -> dict[str, dict[str, float]]:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    user = User.objects.create_user("bench", password="a-long-bench-password")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    results: dict[str, dict[str, float]] = {}
    for label, params in QUERIES.items():
        client.get("/", params)  # warm-up
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            response = client.get("/", params)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        times.sort()
        results[label] = {
            "median_ms": statistics.median(times),
            "p95_ms": times[max(0, int(len(times) * 0.95) - 1)],
        }
    if connection.vendor == "postgresql":
        from viewer.models import Study
        from viewer.worklist import WorklistQuery

        for label in ("name contains 'smith'", "accession prefix", "default page (newest first)"):
            query = WorklistQuery.from_params(QUERIES[label]).studies(Study.objects.all())[:50]
            plan = query.explain()
            results[label]["index_scan"] = float("Index" in plan or "Bitmap" in plan)
    return results


def child(count: int, repeat: int) -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    fill(count)
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(json.dumps({"fill_s": time.perf_counter() - started, "results": measure(repeat)}))


def run_child(env: dict[str, str], count: int, repeat: int) -> dict[str, object]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.worklist",
            "--child",
            "--studies",
            str(count),
            "--repeat",
            str(repeat),
        ],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{done.stderr[-3000:]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.studies, args.repeat)
        return

    sys.path.insert(0, str(PROJECT))
    from tests.servers import create_database, start_postgres

    base = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOUPE_SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
    }
    runs: dict[str, dict[str, object]] = {}
    server = start_postgres()
    try:
        with tempfile.TemporaryDirectory() as pg_data, tempfile.TemporaryDirectory() as sq_data:
            pg_env = {
                **base,
                "LOUPE_DATA_DIR": pg_data,
                "DATABASE_URL": create_database(server, "wl"),
            }
            runs["PostgreSQL 15"] = run_child(pg_env, args.studies, args.repeat)
            sq_env = {**base, "LOUPE_DATA_DIR": sq_data}
            sq_env.pop("DATABASE_URL", None)
            runs["SQLite"] = run_child(sq_env, args.studies, args.repeat)
    finally:
        server.stop()

    print(f"Worklist page latency at {args.studies:,} studies, {args.repeat} requests each")
    print(f"{'query':<30} " + " ".join(f"{name + ' median / p95 ms':>32}" for name in runs))
    for label in QUERIES:
        cells = []
        for run in runs.values():
            row = run["results"][label]  # type: ignore[index]
            cells.append(f"{row['median_ms']:>18.1f} / {row['p95_ms']:>7.1f}")
        print(f"{label:<30} " + " ".join(f"{c:>32}" for c in cells))
    for name, run in runs.items():
        print(f"{name}: filled in {run['fill_s']:.0f} s")


if __name__ == "__main__":
    main()
