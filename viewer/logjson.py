"""The operations log: one JSON object per line (LOUPE_LOG_FORMAT=json), secrets scrubbed.

Three pieces, wired by ``settings.LOGGING`` (Django's loggers) and ``config/gunicorn.py``
(gunicorn's error and access logs, through :class:`GunicornLogger`):

* :class:`ScrubSecrets`, a filter on every handler, in both formats: before any handler
  writes a record it replaces, in the message, the exception text and the stack,

  - query strings of paths and URLs (``/ehrlaunch/launch?launch=…`` becomes
    ``/ehrlaunch/launch?[redacted]``): IID launches carry patient IDs and accession
    numbers there, and launches and OAuth callbacks carry codes and tokens;
  - bearer and basic credentials (``Authorization: Bearer …``, ``Bearer <token>``);
  - the values of ``token=``, ``access_token=``, ``id_token=``, ``refresh_token=``,
    ``code=``, ``launch=``, ``state=``, ``client_secret=``, ``password=`` and the session
    and CSRF cookies (``sessionid=``, ``__Host-sessionid=``, ``csrftoken=``), also as
    JSON members (``"access_token": "…"``);
  - share-link tokens in paths (``/s/<token>``, a live credential for days);
  - patient IDs in the audit API's paths (``viewer.log_redaction``);

  each with ``[redacted]``.
* :class:`JsonFormatter`: ``{"time", "level", "logger", "message", "pid"}``, plus
  ``request_id`` and ``path`` (the path only, scrubbed as above) for records made while
  Django handles a request, ``status`` where Django gives one, ``http`` (method, path,
  status, bytes, duration) for gunicorn's access lines, and ``exc_info`` (the traceback
  as one JSON string: its newlines are escaped, so the record stays one line). ``time``
  is ISO 8601 in UTC with milliseconds. The request ID is the one the audit trail records
  for the same request (``viewer.requester.request_id``: a trusted proxy's X-Request-ID,
  else a new one), so a log line leads to its audit rows.
* Which request a record belongs to is known from Django's ``request_started`` and
  ``request_finished`` signals (connected when this module is imported, which the
  logging configuration does at start-up), kept per thread in a context variable.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

from django.core.exceptions import AppRegistryNotReady
from django.core.signals import request_finished, request_started
from django.http import HttpRequest
from gunicorn import glogging

from config.environment import env_choice
from viewer.log_redaction import PATIENT_PATH

REDACTED = "[redacted]"

# -- scrubbing -------------------------------------------------------------------------

# A path (or URL) followed by a query string: the query goes, the path stays.
_QUERY = re.compile(r"((?:[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/?#\"'<>]+)?/[^\s?#\"'<>]*)\?[^\s#\"'<>]+")
# Bearer tokens anywhere ("Bearer <token>"); basic credentials after "Authorization".
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]{8,}=*")
_BASIC = re.compile(r"(?i)\b(authorization[\"']?\s*[:=]\s*[\"']?basic\s+)[A-Za-z0-9+/]+=*")
_REDACTED_NAMES = (
    r"access_token|id_token|refresh_token|token|code|launch|state|client_secret|password"
    r"|(?:__Host-)?sessionid|(?:__Host-)?csrftoken|csrfmiddlewaretoken"
)
_KEY_VALUE = re.compile(rf"(?i)(?<![\w-])({_REDACTED_NAMES})=[^&\s\"';,]+")
_JSON_MEMBER = re.compile(rf"(?i)([\"']({_REDACTED_NAMES})[\"']\s*:\s*[\"'])[^\"']*")
_AUTHORIZATION = re.compile(
    r"(?i)\b(authorization[\"']?\s*[:=]\s*[\"']?)(?!bearer\b|basic\b)[^\s\"',;}]+"
)
_SHARE_PATH = re.compile(r"(/s/)(?!continue/)[^\s?#\"'/<>]+")


def scrub(text: str) -> str:
    """``text`` with every secret and query string this module knows replaced."""
    if not text:
        return text
    text = _QUERY.sub(rf"\1?{REDACTED}", text)
    text = _BEARER.sub(rf"\1{REDACTED}", text)
    text = _BASIC.sub(rf"\1{REDACTED}", text)
    text = _AUTHORIZATION.sub(rf"\1{REDACTED}", text)
    text = _KEY_VALUE.sub(rf"\1={REDACTED}", text)
    text = _JSON_MEMBER.sub(rf"\1{REDACTED}", text)
    text = _SHARE_PATH.sub(rf"\1{REDACTED}", text)
    return PATIENT_PATH.sub(rf"\1{REDACTED}", text)


_exception_text = logging.Formatter()


class ScrubSecrets(logging.Filter):
    """Rewrites a record in place so that no handler, in any format, writes a secret:
    the message is rendered and scrubbed (``args`` emptied), and the exception and stack
    texts are rendered here and scrubbed (formatters use the rendered ``exc_text``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, Mapping) and record.name == "gunicorn.access":
            record.__dict__["loupe_http"] = _access_fields(record.args)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format: logged as its parts, scrubbed
            message = f"{record.msg!s} {record.args!r}"
        record.msg = scrub(message)
        record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = _exception_text.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


def _access_fields(atoms: Mapping[str, Any]) -> dict[str, Any]:
    """gunicorn's access atoms, the safe ones: never the query string (``q``, ``r``), the
    Referer or the user agent."""

    def atom(name: str) -> Any:
        value = atoms.get(name)
        return None if value in (None, "-") else value

    duration = atom("M")
    size = atom("B")
    status = atom("s")
    return {
        "method": atom("m"),
        "path": scrub(str(atom("U") or "")),
        "status": int(status) if str(status).isdigit() else status,
        "bytes": size if isinstance(size, int) else None,
        "duration_ms": duration if isinstance(duration, int) else None,
        "client": atom("h"),
    }


# -- which request a record belongs to -------------------------------------------------

_current_environ: ContextVar[MutableMapping[str, Any] | None] = ContextVar(
    "loupe_log_environ", default=None
)


def _request_started(
    sender: Any, environ: MutableMapping[str, Any] | None = None, **_: Any
) -> None:
    _current_environ.set(environ)


def _request_finished(sender: Any, **_: Any) -> None:
    _current_environ.set(None)


request_started.connect(_request_started, dispatch_uid="viewer.logjson.request_started")
request_finished.connect(_request_finished, dispatch_uid="viewer.logjson.request_finished")


def _request_meta(record: logging.LogRecord) -> MutableMapping[str, Any] | None:
    """The WSGI environ (which is ``request.META``) of the request ``record`` was made in."""
    request = getattr(record, "request", None)  # django.request sets it (django.server: a socket)
    if isinstance(request, HttpRequest):
        return cast(MutableMapping[str, Any], request.META)
    return _current_environ.get()


def _request_id(meta: MutableMapping[str, Any]) -> str | None:
    try:
        from viewer import requester
    except AppRegistryNotReady:  # a record made while Django starts: no request yet
        return None
    # requester reads and keeps the ID in request.META, the environ itself.
    return requester.request_id(cast(HttpRequest, SimpleNamespace(META=meta)))


# -- JSON ------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (see the module's docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),  # again, for a handler without the filter
            "pid": record.process,
        }
        meta = _request_meta(record)
        if meta is not None:
            request_id = _request_id(meta)
            if request_id:
                entry["request_id"] = request_id
            entry["path"] = scrub(str(meta.get("PATH_INFO", "")))
        status = getattr(record, "status_code", None)
        if isinstance(status, int):
            entry["status"] = status
        http = getattr(record, "loupe_http", None)
        if isinstance(http, dict):
            entry["http"] = http
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


# -- gunicorn --------------------------------------------------------------------------


def log_format() -> str:
    """LOUPE_LOG_FORMAT: ``text`` (the default) or ``json``."""
    return env_choice("LOUPE_LOG_FORMAT", "text", ("text", "json"))


class GunicornLogger(glogging.Logger):
    """gunicorn's logger (``logger_class`` in config/gunicorn.py): its error and access
    handlers scrub secrets (:class:`ScrubSecrets`) and, with LOUPE_LOG_FORMAT=json, write
    JSON lines (:class:`JsonFormatter`). The access line stays path-only
    (``access_log_format``); its JSON form adds the ``http`` fields."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        json_lines = log_format() == "json"
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                if not any(isinstance(f, ScrubSecrets) for f in handler.filters):
                    handler.addFilter(ScrubSecrets())
                if json_lines:
                    handler.setFormatter(JsonFormatter())
