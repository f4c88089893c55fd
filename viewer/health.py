"""``GET /healthz`` and ``GET /readyz``: what a load balancer or an orchestrator asks.

* ``/healthz`` answers when the process answers: ``200 {"status": "ok"}``. It reads
  nothing (no database, no cache, no file), so a slow database never makes a node look
  dead and get restarted for it.
* ``/readyz`` says whether this node can serve: the database answers a trivial query,
  the cache (Django's default cache: Redis when LOUPE_REDIS_URL is set, else this
  process's memory) stores and gives back a key, and the storage folders (the objects
  folder and the temp folder) exist and take a new file. ``200 {"status": "ready",
  "checks": {...}}`` when all three are ``"ok"``, else ``503`` with
  ``"status": "not ready"`` and each failing check saying what failed in a few words
  (``"cache": "unreachable: ConnectionError"``): the exception's class, never its
  message or a traceback, which could name hosts, users or paths. The details go to the
  operations log (``viewer.health``, a warning).

Both are public (no session is needed, none is opened, nothing is audited: they hold no
patient data) and ``Cache-Control: no-store``. They answer GET and HEAD only.

Each check runs in a thread of its own and is given LOUPE_READYZ_TIMEOUT_SECONDS (2 s)
in all: a database or a network share that hangs instead of refusing makes that check
answer ``"timeout"`` rather than holding the request (and a gunicorn thread) for as long
as the kernel waits. A check still running from an earlier request is not started
again: it answers ``"timeout"`` until it ends, so a hung dependency holds at most one
thread per check per process. The database check closes its connection afterwards, so
each probe also shows that a new connection can be made.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_safe

log = logging.getLogger(__name__)

OK = "ok"
CHECK_KEY_PREFIX = "loupe:readyz:"


class CheckFailed(Exception):
    """A check's own finding (not an exception raised by a dependency): its words."""


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    return _no_store(JsonResponse({"status": "ok"}))


# -- the checks ------------------------------------------------------------------------


def check_database() -> None:
    """A trivial query on a connection of this thread, closed afterwards."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            row = cursor.fetchone()
        if row is None or row[0] != 1:
            raise CheckFailed("wrong answer to SELECT 1")
    finally:
        connection.close()


def check_cache() -> None:
    """Set a key of this check's own in the default cache and read it back. A cache
    that fails open (``viewer.cache``) is asked whether Redis answers first: its calls
    would otherwise succeed as misses with Redis away."""
    cache = caches["default"]
    unreachable = getattr(cache, "unreachable", None)
    problem = unreachable() if unreachable is not None else None
    if problem:
        raise CheckFailed(f"unreachable: {problem}")
    key = f"{CHECK_KEY_PREFIX}{secrets.token_hex(8)}"
    value = secrets.token_hex(8)
    cache.set(key, value, timeout=30)
    try:
        if cache.get(key) != value:
            raise CheckFailed("a value set was not read back")
    finally:
        cache.delete(key)


def _writable(folder: Path, name: str) -> None:
    if not folder.is_dir():
        raise CheckFailed(f"{name} missing")
    try:
        handle, path = tempfile.mkstemp(prefix=".readyz-", dir=folder)
    except OSError as exc:
        raise CheckFailed(f"{name} not writable: {_os_error(exc)}") from exc
    try:
        os.write(handle, b"readyz")  # a full disk refuses a byte, not always a name
    except OSError as exc:
        raise CheckFailed(f"{name} not writable: {_os_error(exc)}") from exc
    finally:
        os.close(handle)
        os.unlink(path)


def check_storage() -> None:
    """The objects folder and the temp folder exist and take a new file."""
    _writable(Path(settings.LOUPE_STORAGE_DIR), "objects folder")
    _writable(Path(settings.LOUPE_TEMP_DIR), "temp folder")


def _os_error(exc: OSError) -> str:
    code = errno.errorcode.get(exc.errno or 0)
    return f"{type(exc).__name__} [{code}]" if code else type(exc).__name__


CHECKS: dict[str, tuple[Callable[[], None], str]] = {
    # name: (check, the word for an exception it raises)
    "database": (check_database, "unreachable"),
    "cache": (check_cache, "unreachable"),
    "storage": (check_storage, "failed"),
}


# -- running them, bounded in time -----------------------------------------------------

_pool = ThreadPoolExecutor(max_workers=len(CHECKS), thread_name_prefix="loupe-readyz")
_running: dict[str, Future[None]] = {}
_running_lock = threading.Lock()


def _verdict(name: str, future: Future[None]) -> str:
    error = future.exception(timeout=0)
    if error is None:
        return OK
    if isinstance(error, CheckFailed):
        words = str(error)
    else:
        words = f"{CHECKS[name][1]}: {type(error).__name__}"
    log.warning("readyz: %s check: %s (%s: %s)", name, words, type(error).__name__, error)
    return words


def run_checks(timeout: float) -> dict[str, str]:
    """Every check's verdict, ``"ok"`` or what failed, within about ``timeout`` seconds."""
    started: dict[str, Future[None]] = {}
    verdicts: dict[str, str] = {}
    with _running_lock:
        for name, (check, _) in CHECKS.items():
            earlier = _running.get(name)
            if earlier is not None and not earlier.done():
                verdicts[name] = "timeout (an earlier check is still running)"
                continue
            started[name] = _running[name] = _pool.submit(check)
    finished, _ = wait(started.values(), timeout=timeout)
    for name, future in started.items():
        if future in finished:
            verdicts[name] = _verdict(name, future)
        else:
            log.warning("readyz: %s check did not answer within %g s", name, timeout)
            verdicts[name] = f"timeout after {timeout:g} s"
    return {name: verdicts[name] for name in CHECKS}


@require_safe
def readyz(request: HttpRequest) -> HttpResponse:
    checks = run_checks(settings.LOUPE_READYZ_TIMEOUT_SECONDS)
    ready = all(verdict == OK for verdict in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    return _no_store(JsonResponse(body, status=200 if ready else 503))
