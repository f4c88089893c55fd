"""What the audit trail costs a request, in process, on a fresh SQLite database.

    .venv/bin/python -m bench.audit [--corpus PATH] [--series PATH] [--requests N]

Three slices of the CT series imported into a temporary data folder, a user logged in
with Django's test client (no server, no network); medians in microseconds of
``record_instances_accessed`` (key remembered, row there but key forgotten, new row) and
of a cached tile request with its audit recorded, and the queries such a request makes.
Writes ``bench/results/audit-<timestamp>.json``. The cases: bench/README.md.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench.harness import (
    BenchRun,
    argument_parser,
    checks_lines,
    series_files,
    series_folder,
)

PROGRAM = "bench.audit"
SLICES = 3


def median_us(action: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples)


def record_cases(study: Any, user: Any, n: int) -> dict[str, float]:
    """``record_instances_accessed`` with the key remembered by this process, with the
    row there but the key forgotten (a second worker: insert-or-ignore), and for a new
    session (a new row)."""
    from django.contrib.sessions.backends.cached_db import SessionStore
    from django.http import HttpRequest
    from django.test import RequestFactory

    from viewer.services import audit

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
    return {"record_known_us": known, "record_ignored_us": ignored, "record_new_row_us": new_rows}


def tile_cases(study: Any, user: Any, n: int) -> dict[str, Any]:
    """A tile request whose rendered bytes are cached, with the audit key remembered and
    forgotten; the queries of one remembered request."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from viewer.models import Instance
    from viewer.services import audit

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

    return {
        "tile_known_us": tile_known,
        "tile_ignored_us": median_us(tile_forgotten, n),
        "tile_queries": len(queries),
        "tile_audit_queries": len([q for q in queries if "viewer_auditevent" in q["sql"]]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argument_parser(PROGRAM, __doc__)
    parser.add_argument("--requests", type=int, default=500, help="timed calls per case")
    args = parser.parse_args(argv)
    files = series_files(series_folder(args), PROGRAM)[:SLICES]
    bench = BenchRun("audit")
    data_dir = tempfile.mkdtemp(prefix="loupe-bench-audit-")
    os.environ["LOUPE_DATA_DIR"] = data_dir
    os.environ.setdefault("LOUPE_DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    try:
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.test.utils import setup_test_environment

        from viewer.models import AuditEvent, Study
        from viewer.services import ingest

        setup_test_environment()
        call_command("migrate", verbosity=0)
        for path in files:
            assert ingest.ingest_file(path).ok
        study = Study.objects.select_related("patient").get()
        user = get_user_model().objects.create_user("bench", password="a-long-bench-password")
        n = args.requests
        figures = {**record_cases(study, user, n), **tile_cases(study, user, n)}
        rows = AuditEvent.objects.count()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

    print(f"audit rows written: {rows}; {n} calls per case; medians:")
    print(
        f"  record, key remembered by this process : {figures['record_known_us']:8.1f} us (no query)"
    )
    print(
        f"  record, row exists, key forgotten      : {figures['record_ignored_us']:8.1f} us (insert-or-ignore)"
    )
    print(
        f"  record, new row (new session)          : {figures['record_new_row_us']:8.1f} us (insert)"
    )
    print(f"  tile request, audit key remembered     : {figures['tile_known_us']:8.1f} us")
    print(f"  tile request, insert-or-ignore         : {figures['tile_ignored_us']:8.1f} us")
    print(
        f"  queries in a remembered tile request   : {figures['tile_queries']} "
        f"({figures['tile_audit_queries']} audit)"
    )
    checks: list[str] = []
    print("\n".join(checks_lines(checks, "every tile answered 200")))
    return bench.finish(
        {
            "series": str(files[0].parent),
            "objects": len(files),
            "requests_per_case": n,
            "audit_rows": rows,
            "figures": figures,
        },
        checks,
    )


if __name__ == "__main__":
    sys.exit(main())
