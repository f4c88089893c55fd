"""One error hierarchy for Loupe.

Every problem that a client can cause is a :class:`ViewerError` subclass carrying a
machine-readable ``code``, an HTTP ``status`` and a ``message`` that names the problem.
The DICOM layer raises them for bad input; one handler (``viewer.api.exceptions``)
turns them into JSON responses. Nothing else catches broadly.

This module imports nothing from Django so that ``viewer.dicom`` can use it.
"""

from __future__ import annotations


class ViewerError(Exception):
    """Base class: a problem with a request or its data, reported to the client."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class InvalidDicom(ViewerError):
    """The bytes are not a DICOM object Loupe can store (PS3.10 / PS3.5 violations)."""

    status = 400
    code = "invalid_dicom"


class TooLarge(ViewerError):
    """A size cap was exceeded (object, upload, archive member, decompression ratio)."""

    status = 413
    code = "too_large"


class Conflict(ViewerError):
    """The same SOP Instance UID is already stored with different bytes."""

    status = 409
    code = "conflict"


class InvalidArchive(ViewerError):
    """A zip archive or DICOMDIR that cannot be read safely."""

    status = 400
    code = "invalid_archive"


class NotFound(ViewerError):
    status = 404
    code = "not_found"


class Forbidden(ViewerError):
    """The session is known but its role may not do this (e.g. a clinician storing)."""

    status = 403
    code = "forbidden"


class UnrenderableFrame(ViewerError):
    """Stored, but the frame cannot be turned into an image (corrupt codestream,
    dimensions beyond the frame cap, an unsupported encoding)."""

    status = 422
    code = "unrenderable"


class UndecodableFrame(UnrenderableFrame):
    """The decoder could not turn a frame's stored bytes into pixels (a corrupt or
    unsupported codestream, a decoder that crashed or ran past its limits).

    ``lasting`` is False only where a retry might succeed (the decoder ran out of wall-clock
    time, which load can cause); otherwise the same bytes fail the same way, and the
    failure is remembered in the index instead of being tried again on every request.
    """

    code = "undecodable"

    def __init__(self, message: str, *, lasting: bool = True):
        super().__init__(message)
        self.lasting = lasting


class AuditUnavailable(ViewerError):
    """The audit record of a request could not be written, so the request is refused
    (fail closed: no patient data leaves without its record, PS3.15 A.5)."""

    status = 503
    code = "audit_unavailable"
