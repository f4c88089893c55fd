"""STOW-RS: Store Instances (PS3.18 §10.5), ``POST /dicom-web/studies[/{study}]``.

The request is ``multipart/related; type="application/dicom"`` (PS3.18 §8.6.1.2): one
DICOM object per part. The body is read as a stream, part by part (each part spooled
to the data folder's temp dir beyond a few MB, so memory holds at most one part), under
LOUPE_STOW_MAX_MB: a Content-Length beyond it is refused with 413 before anything is
read, and reading stops (413) as soon as the stream passes it. The multipart is parsed
whole before anything is stored, so a malformed one (400) or an oversized one (413)
stores nothing. Each part is then stored through ``viewer.services.ingest``; to
``/studies/{study}`` an object of another study fails (0xA900, §10.5.1) and is not
stored.

The answer is one DICOM JSON object (``application/dicom+json``, PS3.18 §10.5.3,
PS3.18 Annex F): RetrieveURL (0008,1190) of the study, ReferencedSOPSequence (0008,1199)
of the objects stored (each with its class, instance and RetrieveURL; a re-sent identical
object is one of them: it is stored), FailedSOPSequence (0008,1198) of the others with
their Failure Reason (0008,1197) (``viewer.dimse.statuses``, PS3.18 Table 10.5.3-1), and
one ``Warning: 299`` header naming the reason of each failure. Status (§10.5.3): 200
when every object was stored, 202 when some were, 409 when none was.

Who may store: radiologists and administrators (``access.check_may_store``, the upload
API's rule); the transfer is audited (PS3.15 A.5.3.7, ``audit.record_transfer``).
Session requests keep Django's CSRF check; bearer-token requests (``request.loupe_bearer``,
set by the bearer-token middleware) carry no cookie and are exempt.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import IO, Any

import pydicom
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.http import parse_header_parameters
from django.views.decorators.csrf import csrf_exempt
from rest_framework.authentication import CSRFCheck

from viewer import access
from viewer.dimse import statuses
from viewer.errors import TooLarge, ViewerError
from viewer.models import Instance
from viewer.services import audit, ingest

CHUNK_BYTES = 256 * 1024
SPOOL_BYTES = 8 * 1024 * 1024  # a part beyond this goes to a temp file
# The parts of one request held in memory in all: the whole body is read before any part
# is stored, so past this budget parts go to temp files from their first byte.
MEMORY_BUDGET_BYTES = 64 * 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024  # a part's headers
DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"

_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class UnsupportedMediaType(ViewerError):
    status = 415
    code = "unsupported_media_type"


class MalformedMultipart(ViewerError):
    status = 400
    code = "malformed_multipart"


@dataclass
class Part:
    """One part of the body: its media type and its bytes (spooled), or, when it passed
    the per-object cap, no bytes and its size so far."""

    index: int
    media_type: str
    body: IO[bytes] | None
    size: int

    def data(self) -> bytes:
        assert self.body is not None
        self.body.seek(0)
        return self.body.read()


def check_content_type(request: HttpRequest) -> bytes:
    """The boundary of a ``multipart/related; type="application/dicom"`` body; 415 for
    any other media type (named), 400 for a multipart without a boundary."""
    raw = request.META.get("CONTENT_TYPE", "")
    media_type, params = parse_header_parameters(raw)
    if media_type != "multipart/related":
        raise UnsupportedMediaType(
            f'STOW-RS takes multipart/related; type="{DICOM}", not '
            f"'{media_type or '(no Content-Type)'}'"[:300]
        )
    kind = params.get("type", DICOM).strip().lower()
    if kind != DICOM:
        raise UnsupportedMediaType(
            f"this server stores parts of type {DICOM} only, not '{kind}'"
            f" (PS3.18 §10.5.1.2: the metadata and bulk data form is not supported)"[:300]
        )
    boundary = params.get("boundary", "")
    if not boundary or len(boundary) > 70:
        raise MalformedMultipart("the multipart/related Content-Type has no valid boundary")
    return boundary.encode("latin-1", "replace")


def declared_length(request: HttpRequest) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


def check_declared_length(request: HttpRequest) -> None:
    """413 before a byte is read when the declared length passes LOUPE_STOW_MAX_MB."""
    limit = settings.LOUPE_STOW_MAX_BYTES
    length = declared_length(request)
    if length is not None and length > limit:
        raise TooLarge(
            f"the request body is {length} bytes; the limit is {limit} (LOUPE_STOW_MAX_MB)",
            code="upload_too_large",
        )


class MultipartReader:
    """Reads ``multipart/related`` parts (RFC 2046 §5.1) from a stream, chunk by chunk.

    ``read`` is the stream's read(n); ``limit`` the most bytes read in all; each part's
    bytes go to a SpooledTemporaryFile, up to ``max_part_bytes`` (beyond it the part's
    bytes are dropped and the part is reported with ``body=None``)."""

    def __init__(
        self,
        read: Callable[[int], bytes],
        boundary: bytes,
        *,
        limit: int,
        max_part_bytes: int,
    ):
        self._read = read
        self._limit = limit
        self._max_part = max_part_bytes
        self._total = 0
        self._eof = False
        # The delimiter is CRLF "--" boundary; the body's first one has no CRLF before
        # it, so one is put in front of the stream.
        self._delimiter = b"\r\n--" + boundary
        self._buffer = bytearray(b"\r\n")
        self._in_memory = 0  # bytes of the parts read so far that stayed in memory

    def _fill(self) -> bool:
        """Read one more chunk into the buffer; False at the end of the stream."""
        if self._eof:
            return False
        chunk = self._read(CHUNK_BYTES)
        if not chunk:
            self._eof = True
            return False
        self._total += len(chunk)
        if self._total > self._limit:
            raise TooLarge(
                f"the request body exceeds {self._limit} bytes (LOUPE_STOW_MAX_MB)",
                code="upload_too_large",
            )
        self._buffer += chunk
        return True

    def _find(self, needle: bytes, start: int = 0) -> int:
        while True:
            found = self._buffer.find(needle, start)
            if found >= 0:
                return found
            start = max(0, len(self._buffer) - len(needle) + 1)
            if not self._fill():
                return -1

    def parts(self) -> Iterator[Part]:
        # The preamble, up to the first delimiter, is ignored (RFC 2046).
        found = self._find(self._delimiter)
        if found < 0:
            raise MalformedMultipart("the body holds no part: its boundary never occurs")
        del self._buffer[: found + len(self._delimiter)]
        index = 0
        while True:
            while len(self._buffer) < 2 and self._fill():
                pass
            if self._buffer[:2] == b"--":  # the close delimiter
                return
            line_end = self._find(b"\r\n")
            if line_end < 0 or self._buffer[:line_end].strip(b" \t"):
                raise MalformedMultipart("a boundary line is not followed by CRLF")
            del self._buffer[: line_end + 2]
            index += 1
            media_type = self._headers(index)
            yield self._body(index, media_type)

    def _headers(self, index: int) -> str:
        end = self._find(b"\r\n\r\n") if not self._buffer.startswith(b"\r\n") else -2
        if end == -2:  # no header at all
            del self._buffer[:2]
            return ""
        if end < 0 or end > MAX_HEADER_BYTES:
            raise MalformedMultipart(f"part {index} has no end of headers (CRLF CRLF)")
        block = bytes(self._buffer[:end])
        del self._buffer[: end + 4]
        media_type = ""
        for line in block.split(b"\r\n"):
            name, colon, value = line.partition(b":")
            if not colon or not _TOKEN.fullmatch(name.strip()):
                raise MalformedMultipart(f"part {index} has a malformed header line")
            if name.strip().lower() == b"content-type":
                media_type = parse_header_parameters(value.decode("latin-1"))[0]
        return media_type

    def _body(self, index: int, media_type: str) -> Part:
        in_memory = min(SPOOL_BYTES, max(0, MEMORY_BUDGET_BYTES - self._in_memory))
        spool: IO[bytes] | None = tempfile.SpooledTemporaryFile(  # closed by the caller
            max_size=in_memory or 1, mode="w+b", dir=str(settings.LOUPE_TEMP_DIR)
        )
        size = 0
        keep = len(self._delimiter) - 1
        while True:
            found = self._buffer.find(self._delimiter)
            if found >= 0:
                size += found
                if spool is not None and size <= self._max_part:
                    spool.write(self._buffer[:found])
                del self._buffer[: found + len(self._delimiter)]
                break
            movable = len(self._buffer) - keep
            if movable > 0:
                size += movable
                if spool is not None and size <= self._max_part:
                    spool.write(self._buffer[:movable])
                elif spool is not None:
                    spool.close()
                    spool = None
                del self._buffer[:movable]
            if not self._fill():
                if spool is not None:
                    spool.close()
                raise MalformedMultipart(
                    f"the body ends inside part {index}: its closing boundary is missing"
                )
        if spool is not None and size > self._max_part:
            spool.close()
            spool = None
        if spool is not None and size <= in_memory:
            self._in_memory += size
        return Part(index=index, media_type=media_type, body=spool, size=size)


def _uids_of(data: bytes) -> tuple[str, str]:
    """(SOP Class UID, SOP Instance UID) of a refused object, where its header can be read
    at all (the failure item names them, PS3.18 §10.5.3); ("", "") where it cannot."""
    try:
        dataset = pydicom.dcmread(
            io.BytesIO(data),
            force=True,
            stop_before_pixels=True,
            specific_tags=["SOPClassUID", "SOPInstanceUID"],
        )
        meta = getattr(dataset, "file_meta", None)
        sop_class = str(dataset.get("SOPClassUID", "") or "") or str(
            getattr(meta, "MediaStorageSOPClassUID", "") or ""
        )
        sop_instance = str(dataset.get("SOPInstanceUID", "") or "") or str(
            getattr(meta, "MediaStorageSOPInstanceUID", "") or ""
        )
        return sop_class[:64], sop_instance[:64]
    except Exception:  # a best effort on bytes already refused
        return "", ""


@dataclass
class Outcome:
    result: ingest.IngestResult
    sop_class_uid: str
    series_instance_uid: str = ""


def _store(part: Part, study: str | None) -> Outcome:
    name = f"part {part.index}"
    if part.media_type and part.media_type != DICOM:
        error = ViewerError(
            f"{name} is {part.media_type[:100]}, not {DICOM}", code="not_dicom_part", status=415
        )
        return Outcome(ingest.rejected(name, error), "")
    if part.body is None:
        limit = settings.LOUPE_MAX_INSTANCE_BYTES
        error = TooLarge(
            f"{name} is over {limit} bytes, the largest object accepted",
            code="object_too_large",
        )
        return Outcome(ingest.rejected(name, error), "")
    data = part.data()
    result = ingest.ingest_bytes(data, source=name, study_uid=study)
    if result.ok:
        return Outcome(result, "")
    sop_class, sop_instance = _uids_of(data)
    if sop_instance:
        result = ingest.IngestResult(
            source=result.source,
            status=result.status,
            sop_instance_uid=sop_instance,
            code=result.code,
            reason=result.reason,
            http_status=result.http_status,
        )
    return Outcome(result, sop_class)


def _store_all(parts: list[Part], study: str | None) -> list[Outcome]:
    """Each part through ingest, ``ingest.BATCH_OBJECTS`` at a time in one transaction
    (``ingest.batch``); a batch whose transaction fails has its stored parts reported
    as failed (``database_error``), and the next batch is still tried."""
    outcomes: list[Outcome] = []
    for start in range(0, len(parts), ingest.BATCH_OBJECTS):
        done: list[Outcome] = []
        try:
            with ingest.batch():
                for part in parts[start : start + ingest.BATCH_OBJECTS]:
                    done.append(_store(part, study))
                    if part.body is not None:
                        part.body.close()  # its memory goes now, not with the request
        except ingest.BatchFailed as failure:
            results = ingest.failed_batch([o.result for o in done], failure.error)
            done = [replace(o, result=r) for o, r in zip(done, results, strict=True)]
            failed_from = start + len(done)
            done += [  # the part that failed and those the failure left untried
                _not_tried(p, failure.error)
                for p in parts[failed_from : start + ingest.BATCH_OBJECTS]
            ]
        outcomes += done
    return outcomes


def _not_tried(part: Part, error: ViewerError) -> Outcome:
    readable = part.body is not None and not part.body.closed
    sop_class, sop_instance = _uids_of(part.data()) if readable else ("", "")
    result = ingest.rejected(f"part {part.index}", error)
    return Outcome(replace(result, sop_instance_uid=sop_instance), sop_class)


def _element(vr: str, *values: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": list(values)} if values else {"vr": vr}


def _answer(request: HttpRequest, outcomes: list[Outcome], study: str | None) -> HttpResponse:
    base = request.build_absolute_uri("/dicom-web/studies/")
    stored = [o for o in outcomes if o.result.ok]
    rows = {
        sop: (series, sop_class)
        for sop, series, sop_class in Instance.objects.filter(
            sop_instance_uid__in=[o.result.sop_instance_uid for o in stored]
        ).values_list("sop_instance_uid", "series__series_instance_uid", "sop_class_uid")
    }
    body: dict[str, Any] = {}
    studies = {o.result.study_instance_uid for o in stored}
    target = study or (next(iter(studies)) if len(studies) == 1 else None)
    if target:
        body["00081190"] = _element("UR", f"{base}{target}")
    referenced = []
    for outcome in stored:
        r = outcome.result
        series, sop_class = rows.get(r.sop_instance_uid, ("", ""))
        url = f"{base}{r.study_instance_uid}/series/{series}/instances/{r.sop_instance_uid}"
        referenced.append(
            {
                "00081150": _element("UI", *([sop_class] if sop_class else [])),
                "00081155": _element("UI", r.sop_instance_uid),
                "00081190": _element("UR", url),
            }
        )
    failed = []
    warnings = []
    for outcome in outcomes:
        r = outcome.result
        if r.ok:
            continue
        status = statuses.failure_status(r)
        failed.append(
            {
                "00081150": _element(
                    "UI", *([outcome.sop_class_uid] if outcome.sop_class_uid else [])
                ),
                "00081155": _element("UI", *([r.sop_instance_uid] if r.sop_instance_uid else [])),
                "00081197": _element("US", status),
            }
        )
        text = f"{r.source}: {r.code}: {r.reason}".replace('"', "'")
        warnings.append(f'299 loupe "{text.encode("ascii", "replace").decode()[:300]}"')
    if referenced:
        body["00081199"] = _element("SQ", *referenced)
    if failed:
        body["00081198"] = _element("SQ", *failed)
    status = 200 if not failed else 202 if referenced else 409
    response = HttpResponse(
        json.dumps(body, separators=(",", ":")).encode(), content_type=DICOM_JSON, status=status
    )
    for warning in warnings[:50]:
        response.headers.setdefault("Warning", warning)
        if response.headers["Warning"] != warning:
            response.headers["Warning"] = f"{response.headers['Warning']}, {warning}"
    return response


def _csrf_failure(request: HttpRequest) -> str | None:
    """Django's CSRF check, as DRF's SessionAuthentication applies it to session requests."""
    check = CSRFCheck(lambda request: HttpResponse())
    check.process_request(request)
    reason = check.process_view(request, lambda request: HttpResponse(), (), {})
    return str(reason) if reason else None


@access.require_user
def store(request: HttpRequest, study: str | None = None) -> HttpResponse:
    """``POST /dicom-web/studies[/{study}]``: Store Instances (PS3.18 §10.5)."""
    if not getattr(request, "loupe_bearer", False):
        reason = _csrf_failure(request)
        if reason:
            raise ViewerError(f"CSRF Failed: {reason}", code="permission_denied", status=403)
    access.check_may_store(request)
    check_declared_length(request)
    boundary = check_content_type(request)
    if declared_length(request) is None:
        # Django reads a request body up to its Content-Length only: a chunked body
        # would read as empty and be answered "no part".
        raise ViewerError(
            "send the body with a Content-Length (a chunked request body is not read)",
            code="length_required",
            status=411,
        )
    reader = MultipartReader(
        request.read,
        boundary,
        limit=settings.LOUPE_STOW_MAX_BYTES,
        max_part_bytes=settings.LOUPE_MAX_INSTANCE_BYTES,
    )
    parts: list[Part] = []
    try:
        parts.extend(reader.parts())
        if not parts:
            raise MalformedMultipart("the multipart body holds no part")
        outcomes = _store_all(parts, study)
    finally:
        for part in parts:
            if part.body is not None:
                part.body.close()
    audit.record_transfer(request, [o.result for o in outcomes])
    return _answer(request, outcomes, study)


def _same_route(route: str) -> Callable[..., HttpResponse] | None:
    """The QIDO-RS or WADO-RS view of the same URL (GET /studies is a search,
    GET /studies/{study} a retrieve): STOW-RS shares their routes and takes only POST."""
    from viewer.dicomweb import qido_urls, wado_urls

    for pattern in (*qido_urls.urlpatterns, *wado_urls.urlpatterns):
        if str(pattern.pattern) == route:
            callback: Callable[..., HttpResponse] = pattern.callback
            return callback
    return None


def by_method(route: str) -> Callable[..., HttpResponse]:
    """The view of ``route``: POST stores (this module); GET and HEAD go to the QIDO-RS
    or WADO-RS view of the same route; any other method is answered 405."""

    @csrf_exempt  # POST is checked in ``store``; GET and HEAD are safe methods
    def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        if request.method == "POST":
            return store(request, **kwargs)
        other = _same_route(route) if request.method in ("GET", "HEAD") else None
        if other is not None:
            return other(request, **kwargs)
        allowed = "GET, HEAD, POST" if _same_route(route) else "POST"
        response = HttpResponse(status=405)
        response["Allow"] = allowed
        return response

    return view
