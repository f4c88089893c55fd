"""Dataset -> the fields Loupe indexes, named after the DICOM keywords in snake_case.

Text values are decoded with the data set's (0008,0005) *Specific Character Set* (pydicom
does that on access, replacing bytes that cannot be decoded), stripped of NUL bytes and
trailing padding, and cut to the column's length. Dates and times that do not follow
PS3.5 §6.2 (DA, TM) become None rather than refusing the object: they are descriptive,
not identifying.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from viewer.dicom.geometry import image_orientation, image_position, pixel_spacing
from viewer.dicom.uids import is_valid_uid
from viewer.dicom.values import frame_macro, value

# Column lengths; the models import these so the two never disagree.
LO = 64
SH = 16
CS = 16
UI = 64
PN = 324  # five components of 64 chars in up to three groups, in practice far less
LONG_TEXT = 255


@dataclass(frozen=True)
class IndexFields:
    """Everything the index needs from one instance, grouped by level."""

    patient: dict[str, Any] = field(default_factory=dict)
    study: dict[str, Any] = field(default_factory=dict)
    series: dict[str, Any] = field(default_factory=dict)
    instance: dict[str, Any] = field(default_factory=dict)
    # (0010,1002) Other Patient IDs Sequence: (Patient ID, issuer, Type of Patient ID).
    other_patient_ids: tuple[tuple[str, str, str], ...] = ()


def text(value: Any, limit: int) -> str:
    """A decoded, NUL-free, stripped string of at most ``limit`` characters."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, MultiValue)):
        value = "\\".join(str(v) for v in value)
    cleaned = str(value).replace("\x00", "").strip()
    return cleaned[:limit]


def parse_da(value: Any) -> dt.date | None:
    """PS3.5 §6.2 DA: ``YYYYMMDD`` (and the ACR-NEMA ``YYYY.MM.DD``)."""
    raw = text(value, 16).replace(".", "")
    if not re.fullmatch(r"\d{8}", raw):
        return None
    try:
        return dt.date(int(raw[0:4]), int(raw[4:6]), int(raw[6:8]))
    except ValueError:
        return None


def parse_tm(value: Any) -> dt.time | None:
    """PS3.5 §6.2 TM: ``HH[MM[SS[.F{1,6}]]]`` (colons of ACR-NEMA tolerated)."""
    raw = text(value, 32).replace(":", "")
    match = re.fullmatch(r"(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?", raw)
    if not match:
        return None
    hour, minute, second, fraction = match.groups()
    try:
        return dt.time(
            int(hour),
            int(minute or 0),
            min(int(second or 0), 59),  # leap second 60 is allowed by TM
            int((fraction or "0").ljust(6, "0")),
        )
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    if isinstance(value, (list, tuple, MultiValue)):
        value = value[0] if len(value) else None
    try:
        number = float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
    if number is None or number != number or number in (float("inf"), float("-inf")):
        return None
    return number


def _values(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        return list(value)
    return [value]


def window_presets(dataset: Dataset) -> list[dict[str, Any]]:
    """Every VOI preset in the header, in header order (PS3.3 C.11.2).

    Window presets pair (0028,1050) *Window Center* with (0028,1051) *Window Width* and
    (0028,1055) *Window Center & Width Explanation* by position; for enhanced objects
    they come from the Frame VOI LUT functional group. VOI LUTs from (0028,3010) *VOI LUT
    Sequence* are listed after them with their (0028,3003) *LUT Explanation*.
    """
    source: Dataset = dataset
    if "WindowCenter" not in dataset:
        source = frame_macro(dataset, "FrameVOILUTSequence") or dataset
    centers = _values(value(source, "WindowCenter"))
    widths = _values(value(source, "WindowWidth"))
    explanations = _values(value(source, "WindowCenterWidthExplanation"))
    function = text(value(source, "VOILUTFunction"), CS) or "LINEAR"
    presets: list[dict[str, Any]] = []
    for i, (center_value, width_value) in enumerate(zip(centers, widths, strict=False)):
        center, width = _float(center_value), _float(width_value)
        if center is None or width is None or width <= 0:
            continue
        explanation = text(explanations[i], LO) if i < len(explanations) else ""
        presets.append(
            {
                "kind": "window",
                "center": center,
                "width": width,
                "function": function,
                "explanation": explanation,
            }
        )
    for i, item in enumerate(value(dataset, "VOILUTSequence") or []):
        presets.append(
            {"kind": "lut", "index": i, "explanation": text(value(item, "LUTExplanation"), LO)}
        )
    return presets


def _issuer_of_accession(dataset: Dataset) -> str:
    items = value(dataset, "IssuerOfAccessionNumberSequence")
    if not items:
        return ""
    item = items[0]
    return text(value(item, "LocalNamespaceEntityID") or value(item, "UniversalEntityID"), LO)


# At most this many (0010,1002) Other Patient IDs Sequence items are indexed per object.
MAX_OTHER_PATIENT_IDS = 50
# LO (PS3.5 6.2): no backslash and no control characters (ESC aside, refused here too).
_NOT_LO = re.compile(r"[\\\x00-\x1f\x7f]")


def _lo(raw: Any) -> str | None:
    """An identifying LO value, stripped; None when it is not one (multi-valued, a
    backslash or control character, longer than 64 characters): an identifier is never
    cut short, as a shortened one could name someone else."""
    if raw is None:
        return ""
    if isinstance(raw, (list, tuple, MultiValue)):
        return None
    cleaned = str(raw).replace("\x00", "").strip()
    if len(cleaned) > LO or _NOT_LO.search(cleaned):
        return None
    return cleaned


def issuer_qualifiers(holder: Dataset) -> str:
    """(0010,0024) Issuer of Patient ID Qualifiers Sequence, its first item's
    (0040,0032) Universal Entity ID and (0040,0033) Universal Entity ID Type, as
    ``UniversalEntityID&UniversalEntityIDType`` (the HD form of HL7 v2); "" when absent
    or when the ID is not usable (empty, longer than 128 characters, holding ``&``)
    (PS3.3 C.7.1.1, Table 10-18)."""
    items = value(holder, "IssuerOfPatientIDQualifiersSequence")
    if not items:
        return ""
    item = items[0]
    universal = text(value(item, "UniversalEntityID"), 10 * UI)
    if not universal or len(universal) > 2 * UI or "&" in universal:
        return ""
    kind = text(value(item, "UniversalEntityIDType"), CS).replace("&", "")
    return f"{universal}&{kind}"


def other_patient_ids(dataset: Dataset, own: tuple[str, str]) -> tuple[tuple[str, str, str], ...]:
    """The items of (0010,1002) Other Patient IDs Sequence as (Patient ID, issuer, Type of
    Patient ID): the issuer is (0010,0021) Issuer of Patient ID, else its qualifiers'
    Universal Entity ID. At most MAX_OTHER_PATIENT_IDS items are read; items without a
    usable Patient ID, repeats and the patient's own identity ``own`` are left out."""
    items = value(dataset, "OtherPatientIDsSequence")
    if not items:
        return ()
    found: dict[tuple[str, str], str] = {}
    for item in list(items)[:MAX_OTHER_PATIENT_IDS]:
        patient_id = _lo(value(item, "PatientID"))
        issuer = _lo(value(item, "IssuerOfPatientID"))
        if issuer == "":
            universal = issuer_qualifiers(item).split("&", 1)[0]
            issuer = universal if len(universal) <= LO else None
        if not patient_id or issuer is None or (patient_id, issuer) == own:
            continue
        found.setdefault((patient_id, issuer), text(value(item, "TypeOfPatientID"), CS))
    return tuple((pid, issuer, kind) for (pid, issuer), kind in found.items())


# At most this many (0040,0275) Request Attributes Sequence items are indexed per series.
MAX_REQUEST_ATTRIBUTES = 16
# SH (PS3.5 6.2): at most 16 characters, no backslash, no control characters.
_NOT_SH = re.compile(r"[\\\x00-\x1f\x7f]")


def _request_id(raw: Any) -> str:
    """An identifier of a Request Attributes item (SH), stripped; "" when it is not one
    (multi-valued, a backslash or control character, longer than 16 characters): it is
    never cut short, as a shortened one could name another request."""
    if raw is None or isinstance(raw, (list, tuple, MultiValue)):
        return ""
    cleaned = str(raw).replace("\x00", "").strip()
    if len(cleaned) > SH or _NOT_SH.search(cleaned):
        return ""
    return cleaned


def request_attributes(dataset: Dataset) -> tuple[tuple[str, str], ...]:
    """The items of (0040,0275) *Request Attributes Sequence* (PS3.3 10.6, the Request
    Attributes Macro) as ((0040,0009) *Scheduled Procedure Step ID*, (0040,1001)
    *Requested Procedure ID*), "" where an item has no usable value. Items with neither,
    and repeats, are left out; at most MAX_REQUEST_ATTRIBUTES are read, and no more than
    fit the index columns (each ID list joined with backslashes in LONG_TEXT characters)."""
    items = value(dataset, "RequestAttributesSequence")
    if not items:
        return ()
    found: list[tuple[str, str]] = []
    lengths = [-1, -1]  # the joined length of each column so far
    for item in list(items)[:MAX_REQUEST_ATTRIBUTES]:
        pair = (
            _request_id(value(item, "ScheduledProcedureStepID")),
            _request_id(value(item, "RequestedProcedureID")),
        )
        if pair == ("", "") or pair in found:
            continue
        if any(lengths[i] + 1 + len(pair[i]) > LONG_TEXT for i in (0, 1)):
            break
        lengths = [lengths[i] + 1 + len(pair[i]) for i in (0, 1)]
        found.append(pair)
    return tuple(found)


def index_fields(
    dataset: Dataset, *, number_of_frames: int, transfer_syntax_uid: str
) -> IndexFields:
    """Extract the index fields of one validated instance.

    The series fields are those of the series' first stored instance: ingest creates the
    Series row from them and does not merge a later instance's values into it, so a
    (0040,0244)/(0040,0245) Performed Procedure Step Start Date/Time or a Request
    Attributes item found only on a later instance of the series is not indexed.
    """
    spacing = pixel_spacing(dataset)
    presets = window_presets(dataset)
    first = next((p for p in presets if p["kind"] == "window"), None)
    frame_of_reference = text(value(dataset, "FrameOfReferenceUID"), UI)
    patient_id = text(value(dataset, "PatientID"), LO)
    issuer = text(value(dataset, "IssuerOfPatientID"), LO)
    qualifiers = issuer_qualifiers(dataset)
    requests = request_attributes(dataset)
    patient = {
        "patient_id": patient_id,
        "issuer_of_patient_id": issuer,
        "issuer_of_patient_id_qualifiers": qualifiers,
        "patient_name": text(value(dataset, "PatientName"), PN),
        "patient_birth_date": parse_da(value(dataset, "PatientBirthDate")),
        "patient_sex": text(value(dataset, "PatientSex"), CS),
    }
    study = {
        "study_instance_uid": str(value(dataset, "StudyInstanceUID")),
        "accession_number": text(value(dataset, "AccessionNumber"), LO),
        "issuer_of_accession_number": _issuer_of_accession(dataset),
        "study_date": parse_da(value(dataset, "StudyDate")),
        "study_time": parse_tm(value(dataset, "StudyTime")),
        "study_description": text(value(dataset, "StudyDescription"), LONG_TEXT),
        "study_id": text(value(dataset, "StudyID"), SH),
        "referring_physician_name": text(value(dataset, "ReferringPhysicianName"), PN),
    }
    series = {
        "series_instance_uid": str(value(dataset, "SeriesInstanceUID")),
        "modality": text(value(dataset, "Modality"), CS).upper(),
        "series_number": _int(value(dataset, "SeriesNumber")),
        "series_description": text(value(dataset, "SeriesDescription"), LONG_TEXT),
        "body_part_examined": text(value(dataset, "BodyPartExamined"), CS),
        "frame_of_reference_uid": frame_of_reference if is_valid_uid(frame_of_reference) else "",
        "series_date": parse_da(value(dataset, "SeriesDate")),
        "series_time": parse_tm(value(dataset, "SeriesTime")),
        "performed_procedure_step_start_date": parse_da(
            value(dataset, "PerformedProcedureStepStartDate")
        ),
        "performed_procedure_step_start_time": parse_tm(
            value(dataset, "PerformedProcedureStepStartTime")
        ),
        # The nth value of each list is of the nth item (see viewer.models.Series).
        "scheduled_procedure_step_ids": "\\".join(sps for sps, _ in requests),
        "requested_procedure_ids": "\\".join(rp for _, rp in requests),
    }
    instance = {
        "sop_instance_uid": str(value(dataset, "SOPInstanceUID")),
        "sop_class_uid": str(value(dataset, "SOPClassUID")),
        "instance_number": _int(value(dataset, "InstanceNumber")),
        "number_of_frames": number_of_frames,
        "rows": _int(value(dataset, "Rows")),
        "columns": _int(value(dataset, "Columns")),
        "samples_per_pixel": _int(value(dataset, "SamplesPerPixel")),
        "bits_allocated": _int(value(dataset, "BitsAllocated")),
        "bits_stored": _int(value(dataset, "BitsStored")),
        "pixel_representation": _int(value(dataset, "PixelRepresentation")),
        "photometric_interpretation": text(value(dataset, "PhotometricInterpretation"), CS),
        "transfer_syntax_uid": transfer_syntax_uid,
        "spacing_attribute": spacing.attribute if spacing else "",
        "pixel_spacing_row_mm": spacing.row_mm if spacing else None,
        "pixel_spacing_column_mm": spacing.column_mm if spacing else None,
        "image_position_patient": image_position(dataset),
        "image_orientation_patient": image_orientation(dataset),
        "slice_location": _float(value(dataset, "SliceLocation")),
        "slice_thickness": _float(value(dataset, "SliceThickness")),
        "rescale_slope": _float(value(dataset, "RescaleSlope")),
        "rescale_intercept": _float(value(dataset, "RescaleIntercept")),
        "window_center": first["center"] if first else None,
        "window_width": first["width"] if first else None,
        "window_presets": presets,
        "frame_time_ms": _float(value(dataset, "FrameTime")),
        "recommended_display_frame_rate": _float(value(dataset, "RecommendedDisplayFrameRate")),
        "cine_rate": _float(value(dataset, "CineRate")),
    }
    own = (patient_id, issuer or qualifiers.split("&", 1)[0])
    return IndexFields(
        patient=patient,
        study=study,
        series=series,
        instance=instance,
        other_patient_ids=other_patient_ids(dataset, own),
    )
