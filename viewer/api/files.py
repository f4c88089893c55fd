"""``GET /api/studies/{study}/series/{series}/instances/{sop}/file``: the stored Part 10
object, as it was stored, for download.

Same session authentication as every API view (``viewer.api.views``). The instance goes
through the gate (``viewer.access.instance_for``: an instance this session may not see
answers the same 404 as an unknown one), and the download is recorded as a Data Export
(PS3.15 A.5.3.4) before the first byte leaves. The file name is the SOP Instance UID
only, never a name or an ID of the patient. A de-identified share link's session gets 403
``deidentified_share`` instead: the object holds the patient's identity
(``viewer.services.deidentify``).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.http import FileResponse
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from viewer import access
from viewer.errors import ViewerError
from viewer.services import audit, deidentify, storage

DICOM_MEDIA_TYPE = "application/dicom"


class FileNegotiation(BaseContentNegotiation):
    """A download is a file whatever the client's Accept says (``application/dicom``,
    ``*/*``, a browser's ``text/html``); its errors are JSON."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, str(renderer.media_type)


class InstanceFileView(APIView):
    """The stored object as ``application/dicom``, an attachment named ``<SOP UID>.dcm``,
    streamed from the object store."""

    renderer_classes = [JSONRenderer]
    content_negotiation_class = FileNegotiation

    def get(self, request: Request, study: str, series: str, instance: str) -> FileResponse:
        found = access.instance_for(request, study, series, instance)
        deidentify.check_may_download(request)  # 403 in a de-identified share
        try:
            stream = storage.path_for(found.storage_key).open("rb")
        except FileNotFoundError:
            raise ViewerError(
                "the stored file of this instance is missing (see verify_storage)",
                code="stored_file_missing",
                status=500,
            ) from None
        try:
            audit.record_export(
                request, found.series.study, outcome=audit.Outcome.SUCCESS, kind="download", count=1
            )
        except BaseException:
            stream.close()
            raise
        return FileResponse(
            stream,
            as_attachment=True,
            filename=f"{found.sop_instance_uid}.dcm",
            content_type=DICOM_MEDIA_TYPE,
        )


instance_file = InstanceFileView.as_view()
