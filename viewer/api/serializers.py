"""JSON shapes of the viewer API: what the browser needs to hang and measure images.

Numbers a user reads (spacing, positions, presets) come from the index, never from a
rendered image. Spacing says which attribute it came from; ``null`` means pixels only.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import reverse

from viewer.dicom.geometry import slice_order
from viewer.dicom.names import format_person_name
from viewer.dicom.render import pyramid
from viewer.models import AuditEvent, Instance, Series, Study


def instance_json(instance: Instance) -> dict[str, Any]:
    series = instance.series
    study = series.study
    base = reverse(
        "instance-rendered",
        kwargs={
            "study": study.study_instance_uid,
            "series": series.series_instance_uid,
            "instance": instance.sop_instance_uid,
        },
    ).removesuffix("/rendered")
    spacing = None
    if instance.pixel_spacing_row_mm and instance.pixel_spacing_column_mm:
        spacing = {
            "row_mm": instance.pixel_spacing_row_mm,
            "column_mm": instance.pixel_spacing_column_mm,
            "attribute": instance.spacing_attribute,
        }
    tile_size = settings.LOUPE_TILE_SIZE
    levels = (
        [
            {
                "level": lv.level,
                "width": lv.width,
                "height": lv.height,
                "columns": lv.columns,
                "rows": lv.rows,
            }
            for lv in pyramid(instance.columns, instance.rows, tile_size)
        ]
        if instance.rows and instance.columns and instance.number_of_frames
        else []
    )
    frame_rate = instance.recommended_display_frame_rate or instance.cine_rate
    if not frame_rate and instance.frame_time_ms:
        frame_rate = 1000.0 / instance.frame_time_ms
    return {
        "sop_instance_uid": instance.sop_instance_uid,
        "sop_class_uid": instance.sop_class_uid,
        "instance_number": instance.instance_number,
        "number_of_frames": instance.number_of_frames,
        "rows": instance.rows,
        "columns": instance.columns,
        "photometric_interpretation": instance.photometric_interpretation,
        "bits_stored": instance.bits_stored,
        "pixel_spacing": spacing,
        "image_position_patient": instance.image_position_patient,
        "image_orientation_patient": instance.image_orientation_patient,
        "slice_location": instance.slice_location,
        "slice_thickness": instance.slice_thickness,
        "rescale_slope": instance.rescale_slope,
        "rescale_intercept": instance.rescale_intercept,
        "presets": instance.window_presets,
        "frame_time_ms": instance.frame_time_ms,
        "frame_rate": frame_rate,
        "tiles": {"size": tile_size, "levels": levels},
        # Frames known not to decode: frame number -> the reason ({} = none known).
        "undecodable": instance.undecodable,
        "urls": {
            "rendered": f"{base}/frames/{{frame}}/rendered",
            "tile": f"{base}/frames/{{frame}}/tiles/{{level}}/{{column}}/{{row}}",
            "thumbnail": f"{base}/thumbnail",
        },
    }


def series_json(series: Series, instances: list[Instance]) -> dict[str, Any]:
    return {
        "series_instance_uid": series.series_instance_uid,
        "series_number": series.series_number,
        "series_description": series.series_description,
        "modality": series.modality,
        "body_part_examined": series.body_part_examined,
        "frame_of_reference_uid": series.frame_of_reference_uid,
        "number_of_instances": len(instances),
        "thumbnail": reverse(
            "series-thumbnail",
            kwargs={"study": series.study.study_instance_uid, "series": series.series_instance_uid},
        ),
        # Ordered along the slice normal where the geometry allows (see geometry.slice_order).
        "instances": [instance_json(i) for i in slice_order(instances)],
    }


def study_json(study: Study) -> dict[str, Any]:
    patient = study.patient
    series_list = list(study.series.order_by("series_number", "id"))
    instances = (
        Instance.objects.filter(series__study=study).select_related("series__study").order_by("id")
    )
    by_series: dict[int, list[Instance]] = {s.pk: [] for s in series_list}
    for instance in instances:
        by_series[instance.series_id].append(instance)
    return {
        "study_instance_uid": study.study_instance_uid,
        "study_date": study.study_date,
        "study_time": study.study_time,
        "study_description": study.study_description,
        "accession_number": study.accession_number,
        "modalities_in_study": [m for m in study.modalities_in_study.split("\\") if m],
        "number_of_undecodable_instances": study.number_of_undecodable_instances,
        "patient": {
            "patient_id": patient.patient_id,
            "issuer_of_patient_id": patient.issuer_of_patient_id,
            "patient_name": patient.patient_name,
            # The name as every page shows it (PS3.5 §6.2 PN, formatted on the server).
            "patient_name_display": format_person_name(patient.patient_name),
            "patient_birth_date": patient.patient_birth_date,
            "patient_sex": patient.patient_sex,
        },
        "series": [series_json(s, by_series[s.pk]) for s in series_list],
    }


def audit_event_json(event: AuditEvent) -> dict[str, Any]:
    """One audit record (PS3.15 A.5.3 fields); its session hash and aggregation key are not shown."""
    return {
        "id": str(event.id),
        "event": {"code": event.event_id, "display": event.get_event_id_display()},
        "event_type": (
            {"code": event.event_type, "display": event.get_event_type_display()}
            if event.event_type
            else None
        ),
        "action": event.action,
        "recorded": event.recorded_at.isoformat().replace("+00:00", "Z"),
        "outcome": event.outcome,
        "user_id": event.user_id,
        "alternative_user_id": event.alternative_user_id,
        "client_address": event.client_address,
        "patient": {"id": event.patient_id, "issuer": event.issuer_of_patient_id},
        "study_uids": event.study_uids,
        "channel": event.channel,
        "request_id": event.request_id,
        "instance_count": event.instance_count,
        "detail": event.detail,
    }
