"""Reports: a study's measurements exported as a DICOM SR, stored as a new series of it.

``export_measurements`` reads the study's Measurement rows through the gate (a study this
session may not see is the same 404 as an unknown one), reads the measured images' data
sets from the object store (without their pixel data), builds a Comprehensive 3D SR
following TID 1500 (``viewer.dicom.sr``), stores it through ingest (the one way data
enters) and records the transfer in the audit trail.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import pydicom
from django.db.models import Max
from django.http import HttpRequest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from viewer import access
from viewer.dicom import sr
from viewer.errors import ViewerError
from viewer.models import Instance, Measurement, Series
from viewer.services import audit, ingest, storage

log = logging.getLogger(__name__)
logging.getLogger("highdicom").setLevel(logging.WARNING)  # it logs every module it copies


@dataclass(frozen=True)
class ExportedReport:
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    measurements: int

    def as_dict(self) -> dict[str, object]:
        return {
            "study_instance_uid": self.study_instance_uid,
            "series_instance_uid": self.series_instance_uid,
            "sop_instance_uid": self.sop_instance_uid,
            "measurements": self.measurements,
        }


def source_dataset(instance: Instance) -> Dataset:
    """The stored object's data set up to its pixel data (the SR needs its header)."""
    return pydicom.dcmread(
        io.BytesIO(storage.read(instance.storage_key)), stop_before_pixels=True, force=True
    )


def record_of(measurement: Measurement) -> sr.MeasurementRecord:
    return sr.MeasurementRecord(
        id=str(measurement.pk),
        sop_instance_uid=measurement.instance.sop_instance_uid,
        kind=measurement.kind,
        points=[(float(x), float(y)) for x, y in measurement.points],
        label=measurement.label,
        frame=measurement.frame,
        result=measurement.result,
    )


def observer_name(request: HttpRequest) -> str:
    """The person observer (TID 1003) as a PN: the user's name, else the username."""
    user = request.user
    last = getattr(user, "last_name", "") or ""
    first = getattr(user, "first_name", "") or ""
    if last or first:
        return f"{last}^{first}"
    # A username is one component (the family name); the caret says so (PS3.5 6.2.1.2).
    return f"{getattr(user, 'username', '') or 'Unknown'}^"


def export_measurements(request: HttpRequest, study_instance_uid: str) -> ExportedReport:
    """Build, store and audit the SR of every measurement of the study (oldest first)."""
    study = access.study_for(request, study_instance_uid)
    access.check_may_store(request)  # a report is stored: not for a launched clinician
    rows = list(
        Measurement.objects.filter(study=study)
        .select_related("instance")
        .order_by("created_at", "id")
    )
    if not rows:
        raise ViewerError(
            "the study has no measurements to export", code="no_measurements", status=400
        )
    sources = {
        row.instance.sop_instance_uid: source_dataset(row.instance)
        for row in {row.instance_id: row for row in rows}.values()
    }
    highest = Series.objects.filter(study=study).aggregate(n=Max("series_number"))["n"]
    series = sr.ReportSeries(
        series_instance_uid=generate_uid(),
        sop_instance_uid=generate_uid(),
        series_number=(highest or 0) + 1,
        observer_name=observer_name(request),
    )
    try:
        document = sr.build_report(sources, [record_of(row) for row in rows], series)
    except sr.ReportError as error:
        raise ViewerError(str(error), code="report_not_built", status=400) from None
    out = io.BytesIO()
    document.save_as(out, enforce_file_format=True)
    result = ingest.ingest_bytes(out.getvalue(), source="measurement-report")
    audit.record_transfer(request, [result])
    if not result.ok:
        log.error("measurement report not stored: %s", result.code)
        raise ViewerError(
            f"the report was built but not stored: {result.reason}",
            code=result.code or "report_not_stored",
            status=500,
        )
    return ExportedReport(
        study_instance_uid=study.study_instance_uid,
        series_instance_uid=series.series_instance_uid,
        sop_instance_uid=series.sop_instance_uid,
        measurements=len(rows),
    )
