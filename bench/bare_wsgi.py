"""A WSGI app that reads each request body and answers as Loupe does for one stored
object, without storing anything: bench.ingest serves it with Loupe's gunicorn
configuration as the ``gunicorn-bare`` reference row, the HTTP server's share of every
ingest request (no Django, no session, no DICOM, no disk)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

ANSWER = b'{"summary":{"stored":1},"results":[{"source":"body","status":"stored"}]}'


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    environ["wsgi.input"].read(length)
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(ANSWER)))]
    )
    return [ANSWER]
