"""What the audit trail costs a request, in process, on a fresh SQLite database.

Run from the project folder::

    .venv/bin/python -m bench.audit [--requests N]

Sets up a temporary data folder, migrates, imports three slices of the shared CT series
and logs a user in with Django's test client (no server, no network), then times:

* ``record_instances_accessed`` when this process has the key already (the path of every
  tile after the first), when the row exists but the process has forgotten the key (a
  second worker: insert-or-ignore), and when it writes a new row (a new session);
* a tile request (rendered bytes cached) with its audit recorded, and the number of
  database queries it makes, against the same request whose audit row is already known.

Prints medians in microseconds; writes nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
SHARED_DICOM = Path(os.environ.get("LOUPE_SHARED_DICOM", PROJECT_DIR.parent / "shared" / "dicom"))


def median_us(action: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audit", description=__doc__)
    parser.add_argument("--requests", type=int, default=500, help="timed calls per case")
    args = parser.parse_args(argv)
    os.environ["LOUPE_DATA_DIR"] = tempfile.mkdtemp(prefix="loupe-bench-audit-")
    os.environ.setdefault("LOUPE_DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(PROJECT_DIR))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.cached_db import SessionStore
    from django.core.management import call_command
    from django.db import connection
    from django.http import HttpRequest
    from django.test import Client, RequestFactory
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    from viewer.models import AuditEvent, Instance, Study
    from viewer.services import audit, ingest

    setup_test_environment()
    call_command("migrate", verbosity=0)
    for path in sorted((SHARED_DICOM / "ct-series").glob("*.dcm"))[:3]:
        assert ingest.ingest_file(path).ok
    study = Study.objects.select_related("patient").get()
    user = get_user_model().objects.create_user("bench", password="a-long-bench-password")
    n = args.requests

    def request_with_new_session() -> HttpRequest:
        request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1")
        request.session = SessionStore()
        request.session.save()
        request.user = user
        return request

    remembered = request_with_new_session()
    audit.record_instances_accessed(remembered, study)
    known = median_us(lambda: audit.record_instances_accessed(remembered, study), n)

    def forgotten() -> None:
        audit.recent_keys.clear()
        audit.record_instances_accessed(remembered, study)

    ignored = median_us(forgotten, n)
    sessions = [request_with_new_session() for _ in range(n)]
    new_rows = median_us(lambda: audit.record_instances_accessed(sessions.pop(), study), n)

    client = Client()
    client.force_login(user)
    instance = Instance.objects.select_related("series__study").first()
    assert instance is not None
    tile = (
        f"/dicom-web/studies/{study.study_instance_uid}/series/"
        f"{instance.series.series_instance_uid}/instances/{instance.sop_instance_uid}"
        "/frames/1/tiles/0/0/0"
    )
    assert client.get(tile).status_code == 200
    with CaptureQueriesContext(connection) as context:
        client.get(tile)
    queries = list(context.captured_queries)
    tile_known = median_us(lambda: client.get(tile), n)

    def tile_forgotten() -> None:
        audit.recent_keys.clear()
        client.get(tile)

    tile_ignored = median_us(tile_forgotten, n)
    print(f"audit rows written: {AuditEvent.objects.count()}; {n} calls per case; medians:")
    print(f"  record, key remembered by this process : {known:8.1f} us (no query)")
    print(f"  record, row exists, key forgotten      : {ignored:8.1f} us (insert-or-ignore)")
    print(f"  record, new row (new session)          : {new_rows:8.1f} us (insert)")
    print(f"  tile request, audit key remembered     : {tile_known:8.1f} us")
    print(f"  tile request, insert-or-ignore         : {tile_ignored:8.1f} us")
    audit_queries = [q for q in queries if "viewer_auditevent" in q["sql"]]
    print(f"  queries in a remembered tile request   : {len(queries)} ({len(audit_queries)} audit)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
