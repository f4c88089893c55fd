"""Measurements: create, update (recomputed), delete and list; the only writer of
:class:`~viewer.models.Measurement` rows.

Every number is computed here on the server by ``viewer.dicom.measure`` from the frame's
modality values (the decoded frame of ``viewer.services.rendering``, so the frame cache
serves them: it holds *stored* values with the frame's pipeline attributes, and the
Modality LUT of PS3.3 C.11.1 is applied to the region measured, before any VOI) and its
calibrated spacing, never from a rendered image.

Who may do what, through the gate of ``viewer.access``:

* create: whoever may see the instance (the same 404 for an unknown instance and for one
  this session may not see);
* list: every measurement of a study this session may see, whoever made it;
* update and delete: the author, or an administrator (403 for anyone else who may see the
  study; a measurement of a study this session may not see is the same 404 as an unknown
  one).

Audit (``viewer.services.audit``): reading an image's values is an image access, as for
images (the gate records it, aggregated); a create, update or delete is one more
110103 row each, with action C, U or D (PS3.15 A.5.3.6).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.http import HttpRequest

from viewer import access
from viewer.dicom import measure
from viewer.dicom.geometry import IMAGER_PIXEL_SPACING
from viewer.dicom.io import open_stored
from viewer.errors import Forbidden, NotFound, UndecodableFrame, ViewerError
from viewer.lru import Lru
from viewer.models import Instance, Measurement, Study
from viewer.services import audit, rendering, storage

# Calibrations read from stored headers (only Imager Pixel Spacing needs the header:
# its magnification factor is not in the index), by the object's SHA-256.
_header_calibrations: Lru[str, measure.Calibration] = Lru(entries=4096)


class InvalidMeasurementRequest(ViewerError):
    """A measurement request whose fields are wrong (label too long, bad frame ...)."""

    status = 400
    code = "invalid_measurement"


@dataclass(frozen=True)
class Change:
    """The fields a PATCH may change; None leaves a field as it is."""

    kind: Any = None
    points: Any = None
    label: Any = None
    frame: Any = None


def calibration(instance: Instance) -> measure.Calibration:
    """The spacing measurements on ``instance`` use (``measure.calibration``): from the
    index, except for Imager Pixel Spacing, whose magnification factor is read from the
    stored header once per object."""
    if instance.spacing_attribute == IMAGER_PIXEL_SPACING:
        found = _header_calibrations.get(instance.sha256)
        if found is None:
            found = measure.calibration(open_stored(storage.read(instance.storage_key)))
            _header_calibrations.set(instance.sha256, found)
        return found
    if instance.pixel_spacing_row_mm and instance.pixel_spacing_column_mm:
        return measure.Calibration(
            instance.pixel_spacing_row_mm,
            instance.pixel_spacing_column_mm,
            instance.spacing_attribute or None,
        )
    return measure.PIXELS_ONLY


def check_frame(instance: Instance, frame: Any) -> int:
    """``frame`` (1-based) as an int that exists in ``instance``, else 400 ``no_such_frame``."""
    if not isinstance(frame, int) or isinstance(frame, bool):
        raise InvalidMeasurementRequest(
            f"frame must be a whole number from 1, not {str(frame)[:20]!r}", code="bad_frame"
        )
    frames = instance.number_of_frames
    if not 1 <= frame <= frames:
        raise InvalidMeasurementRequest(
            f"frame {frame} does not exist (the instance has {frames})", code="no_such_frame"
        )
    return frame


def check_label(label: Any) -> str:
    if label is None:
        return ""
    if not isinstance(label, str):
        raise InvalidMeasurementRequest("label must be text", code="bad_label")
    if any(ord(c) < 32 and c not in "\t\n\r" for c in label):
        raise InvalidMeasurementRequest(
            "label holds a control character (only tab and line breaks are allowed)",
            code="bad_label",
        )
    if len(label) > Measurement.MAX_LABEL:
        raise InvalidMeasurementRequest(
            f"label has {len(label)} characters; at most {Measurement.MAX_LABEL} are allowed",
            code="label_too_long",
        )
    return label


def compute(instance: Instance, frame: int, kind: Any, points: Any) -> dict[str, Any]:
    """The result of ``kind`` through ``points`` on ``frame`` (1-based) of ``instance``.

    Kinds that read pixel values decode the frame through the frame cache; the others
    need only its size and spacing."""
    rows, columns = instance.rows or 0, instance.columns or 0
    cal = calibration(instance)
    measure.validate(kind, points, rows, columns)  # bad input is refused before decoding
    known = instance.undecodable.get(str(frame))
    if known:  # a frame that cannot be shown is not measured either, not even a length
        raise UndecodableFrame(known)
    if not measure.needs_values(kind):
        return measure.measure(kind, points, measure.FrameValues(rows, columns, cal))
    decoded = rendering.decoded_frame(instance, frame - 1)
    values = measure.FrameValues(
        rows,
        columns,
        cal,
        stored=decoded.values if decoded.greyscale else None,
        view=decoded.view,
        greyscale=decoded.greyscale,
    )
    return measure.measure(kind, points, values)


def _points_json(points: Any) -> list[list[float]]:
    return [[x, y] for x, y in measure.parse_points(points)]


def create(
    request: HttpRequest,
    *,
    study_instance_uid: str,
    series_instance_uid: str,
    sop_instance_uid: str,
    kind: Any,
    points: Any,
    frame: Any = 1,
    label: Any = "",
) -> Measurement:
    """Measure and save; nothing is saved when any field is wrong (403 through a share
    link, which is read-only)."""
    access.check_may_change(request)
    for name, uid in (
        ("study_instance_uid", study_instance_uid),
        ("series_instance_uid", series_instance_uid),
        ("sop_instance_uid", sop_instance_uid),
    ):
        if not isinstance(uid, str) or not uid:
            raise InvalidMeasurementRequest(f"{name} is required", code="missing_uid")
    instance = access.instance_for(
        request, study_instance_uid, series_instance_uid, sop_instance_uid
    )
    text = check_label(label)
    number = check_frame(instance, frame)
    result = compute(instance, number, kind, points)
    study = instance.series.study
    with transaction.atomic():
        saved = Measurement.objects.create(
            study=study,
            series=instance.series,
            instance=instance,
            frame=number,
            kind=kind,
            points=_points_json(points),
            label=text,
            result=result,
            author=request.user,  # type: ignore[misc]  # authenticated: the API requires it
        )
        audit.record_instances_accessed(request, study, action=audit.Action.CREATE)
    return saved


def _visible(request: HttpRequest, measurement_id: Any) -> Measurement:
    """The measurement, if it exists in a study this session may see; else one 404."""
    try:
        key = uuid.UUID(str(measurement_id))
    except ValueError:
        key = None
    found = (
        Measurement.objects.select_related("study__patient", "series", "instance", "author")
        .filter(pk=key)
        .first()
        if key is not None
        else None
    )
    if found is None or not access.can_see(request, found.study):
        match = request.resolver_match
        audit.record_refused(
            request,
            (match.url_name or "") if match else "",
            found.study.study_instance_uid if found else "",
        )
        raise NotFound("no such measurement", code="not_found")
    return found


def _check_may_change(request: HttpRequest, measurement: Measurement) -> None:
    access.check_may_change(request)
    if measurement.author_id != request.user.pk and not access.is_administrator(request):
        raise Forbidden(
            "only the author of a measurement or an administrator may change or delete it"
        )


def get(request: HttpRequest, measurement_id: Any) -> Measurement:
    """One measurement this session may see (its study's access recorded)."""
    found = _visible(request, measurement_id)
    audit.record_instances_accessed(
        request, found.study, count=found.study.number_of_study_related_instances
    )
    return found


def update(request: HttpRequest, measurement_id: Any, change: Change) -> Measurement:
    """Change kind, points, label or frame, and compute the result again."""
    measurement = _visible(request, measurement_id)
    _check_may_change(request, measurement)
    instance = Instance.objects.select_related("series__study__patient").get(
        pk=measurement.instance_id
    )
    audit.record_instances_accessed(request, measurement.study, count=1)
    kind = measurement.kind if change.kind is None else change.kind
    points = measurement.points if change.points is None else change.points
    frame = measurement.frame if change.frame is None else check_frame(instance, change.frame)
    label = measurement.label if change.label is None else check_label(change.label)
    result = compute(instance, frame, kind, points)
    measurement.kind = kind
    measurement.points = _points_json(points)
    measurement.frame = frame
    measurement.label = label
    measurement.result = result
    with transaction.atomic():
        measurement.save()
        audit.record_instances_accessed(request, measurement.study, action=audit.Action.UPDATE)
    return measurement


def delete(request: HttpRequest, measurement_id: Any) -> None:
    measurement = _visible(request, measurement_id)
    _check_may_change(request, measurement)
    study = measurement.study
    with transaction.atomic():
        measurement.delete()
        audit.record_instances_accessed(request, study, action=audit.Action.DELETE)


def list_for_study(
    request: HttpRequest, study_instance_uid: str
) -> tuple[Study, list[Measurement]]:
    """The study (its access recorded by the gate) and all its measurements, newest first."""
    study = access.study_for(request, study_instance_uid)
    found = list(
        Measurement.objects.filter(study=study)
        .select_related("series", "instance", "author")
        .order_by("-created_at", "-id")
    )
    return study, found
