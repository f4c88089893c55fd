"""The DICOM JSON model (PS3.18 Annex F) of what Loupe indexes: the attributes QIDO-RS
matches on and returns, each with its tag, VR, level and where its value lives.

Every attribute here is read from the index (``viewer.models``), never from a stored
file: a search answers from the database alone. Levels follow the Study Root
information model (PS3.4 C.6.2): ``patient`` attributes belong to the study level.
Values are encoded as PS3.18 F.2 says: PN as ``{"Alphabetic", "Ideographic",
"Phonetic"}`` (the component groups of PS3.5 §6.2), IS/DS/US as JSON numbers, DA as
``YYYYMMDD``, TM as ``HHMMSS[.FFFFFF]``, SQ as a list of items (each a DICOM JSON
object), an empty value as an attribute with its VR and no ``Value`` (F.2.5).

One sequence is indexed: (0040,0275) Request Attributes Sequence, returned with its
items' (0040,0009) Scheduled Procedure Step ID and (0040,1001) Requested Procedure ID,
and matched on through those two (:data:`ITEM_ATTRIBUTES`, named
``RequestAttributesSequence.ScheduledProcedureStepID`` or ``00400275.00400009``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from viewer.models import Instance, Patient, Series, Study

# (0008,0005) Specific Character Set of every answer: JSON is UTF-8 (PS3.18 F.2).
UTF8 = "ISO_IR 192"

LEVELS = ("study", "series", "instance")
# The model level an attribute's row is at ("patient" rows hang off the study).
ROW_LEVEL = {"patient": "study", "study": "study", "series": "series", "instance": "instance"}
RANK = {"patient": 0, "study": 0, "series": 1, "instance": 2}


@dataclass(frozen=True)
class Attribute:
    """One attribute Loupe answers for. ``field`` is the column on the level's model
    (Patient, Study, Series or Instance); ``values`` computes the value from the row where
    it is not one column; ``matchable`` says whether a search may match on it."""

    keyword: str
    tag: str  # eight upper-case hex digits, as DICOM JSON names attributes
    vr: str
    level: str  # patient, study, series, instance
    field: str = ""
    matchable: bool = True
    values: Callable[[Any], list[Any]] | None = None
    identifying: bool = False  # left out or replaced in a de-identified share
    # An item attribute of a sequence: the sequence's keyword (what an answer returns).
    sequence: str = ""
    # The column holds several values separated by backslashes; any of them may match.
    multiple: bool = False


def _date(value: dt.date | None) -> list[Any]:
    return [value.strftime("%Y%m%d")] if value else []


def _time(value: dt.time | None) -> list[Any]:
    if value is None:
        return []
    text = value.strftime("%H%M%S")
    return [f"{text}.{value.microsecond:06d}" if value.microsecond else text]


def person_name(value: str) -> list[Any]:
    """PS3.18 F.2.2: a PN value as its component groups (alphabetic, ideographic,
    phonetic), as indexed (the groups separated by ``=``)."""
    if not value:
        return []
    groups = value.split("=")
    names = ("Alphabetic", "Ideographic", "Phonetic")
    return [{name: group for name, group in zip(names, groups, strict=False) if group}]


def _text(value: str) -> list[Any]:
    return [value] if value else []


def _number(value: float | int | None) -> list[Any]:
    return [] if value is None else [value]


def column_values(attribute: Attribute, row: Any) -> list[Any]:
    """The JSON values of ``attribute`` on ``row`` (a model instance of its level)."""
    if attribute.values is not None:
        return attribute.values(row)
    value = getattr(row, attribute.field)
    if attribute.vr == "DA":
        return _date(value)
    if attribute.vr == "TM":
        return _time(value)
    if attribute.vr == "PN":
        return person_name(value)
    if attribute.vr in ("IS", "DS", "US", "UL", "SS"):
        return _number(value)
    return _text(value)


def _modalities(study: Study) -> list[Any]:
    return [m for m in study.modalities_in_study.split("\\") if m]


def _spacing(instance: Instance) -> list[Any]:
    if instance.spacing_attribute != "PixelSpacing" or instance.pixel_spacing_row_mm is None:
        return []
    return [instance.pixel_spacing_row_mm, instance.pixel_spacing_column_mm]


def _vector(name: str) -> Callable[[Any], list[Any]]:
    def values(instance: Instance) -> list[Any]:
        found = getattr(instance, name)
        return [float(v) for v in found] if isinstance(found, list) else []

    return values


def _frames(instance: Instance) -> list[Any]:
    return [instance.number_of_frames] if instance.number_of_frames > 0 else []


def _request_attributes(series: Series) -> list[Any]:
    """(0040,0275) Request Attributes Sequence: one item per indexed item, with its
    (0040,0009) Scheduled Procedure Step ID and (0040,1001) Requested Procedure ID (Type R
    in PS3.18 Table 10.6.3-4: present, empty where the item has none)."""
    return [
        {
            "00400009": element("SH", _text(scheduled)),
            "00401001": element("SH", _text(requested)),
        }
        for scheduled, requested in series.request_attributes()
    ]


_A = Attribute
ATTRIBUTES: tuple[Attribute, ...] = (
    # Patient (Study Root: answered and matched at the study level).
    _A("PatientName", "00100010", "PN", "patient", "patient_name", identifying=True),
    _A("PatientID", "00100020", "LO", "patient", "patient_id", identifying=True),
    _A("IssuerOfPatientID", "00100021", "LO", "patient", "issuer_of_patient_id", identifying=True),
    _A("PatientBirthDate", "00100030", "DA", "patient", "patient_birth_date", identifying=True),
    _A("PatientSex", "00100040", "CS", "patient", "patient_sex", identifying=True),
    # Study.
    _A("StudyInstanceUID", "0020000D", "UI", "study", "study_instance_uid"),
    _A("StudyDate", "00080020", "DA", "study", "study_date"),
    _A("StudyTime", "00080030", "TM", "study", "study_time"),
    _A("AccessionNumber", "00080050", "SH", "study", "accession_number", identifying=True),
    _A("StudyID", "00200010", "SH", "study", "study_id", identifying=True),
    _A("StudyDescription", "00081030", "LO", "study", "study_description"),
    _A(
        "ReferringPhysicianName",
        "00080090",
        "PN",
        "study",
        "referring_physician_name",
        identifying=True,
    ),
    _A("ModalitiesInStudy", "00080061", "CS", "study", values=_modalities),
    _A(
        "NumberOfStudyRelatedSeries",
        "00201206",
        "IS",
        "study",
        "number_of_study_related_series",
        matchable=False,
    ),
    _A(
        "NumberOfStudyRelatedInstances",
        "00201208",
        "IS",
        "study",
        "number_of_study_related_instances",
        matchable=False,
    ),
    # Series.
    _A("SeriesInstanceUID", "0020000E", "UI", "series", "series_instance_uid"),
    _A("Modality", "00080060", "CS", "series", "modality"),
    _A("SeriesNumber", "00200011", "IS", "series", "series_number"),
    _A("SeriesDescription", "0008103E", "LO", "series", "series_description"),
    _A("BodyPartExamined", "00180015", "CS", "series", "body_part_examined"),
    _A("SeriesDate", "00080021", "DA", "series", "series_date"),
    _A("SeriesTime", "00080031", "TM", "series", "series_time"),
    _A("FrameOfReferenceUID", "00200052", "UI", "series", "frame_of_reference_uid"),
    _A(
        "PerformedProcedureStepStartDate",
        "00400244",
        "DA",
        "series",
        "performed_procedure_step_start_date",
    ),
    _A(
        "PerformedProcedureStepStartTime",
        "00400245",
        "TM",
        "series",
        "performed_procedure_step_start_time",
    ),
    # Matched on through its items (ITEM_ATTRIBUTES); the sequence itself only universally.
    _A(
        "RequestAttributesSequence",
        "00400275",
        "SQ",
        "series",
        values=_request_attributes,
        identifying=True,
    ),
    _A(
        "NumberOfSeriesRelatedInstances",
        "00201209",
        "IS",
        "series",
        "number_of_series_related_instances",
        matchable=False,
    ),
    # Instance.
    _A("SOPInstanceUID", "00080018", "UI", "instance", "sop_instance_uid"),
    _A("SOPClassUID", "00080016", "UI", "instance", "sop_class_uid"),
    _A("InstanceNumber", "00200013", "IS", "instance", "instance_number"),
    _A("Rows", "00280010", "US", "instance", "rows", matchable=False),
    _A("Columns", "00280011", "US", "instance", "columns", matchable=False),
    _A("BitsAllocated", "00280100", "US", "instance", "bits_allocated", matchable=False),
    _A("BitsStored", "00280101", "US", "instance", "bits_stored", matchable=False),
    _A("SamplesPerPixel", "00280002", "US", "instance", "samples_per_pixel", matchable=False),
    _A(
        "PixelRepresentation",
        "00280103",
        "US",
        "instance",
        "pixel_representation",
        matchable=False,
    ),
    _A(
        "PhotometricInterpretation",
        "00280004",
        "CS",
        "instance",
        "photometric_interpretation",
        matchable=False,
    ),
    _A("NumberOfFrames", "00280008", "IS", "instance", values=_frames, matchable=False),
    _A("PixelSpacing", "00280030", "DS", "instance", values=_spacing, matchable=False),
    _A(
        "ImagePositionPatient",
        "00200032",
        "DS",
        "instance",
        values=_vector("image_position_patient"),
        matchable=False,
    ),
    _A(
        "ImageOrientationPatient",
        "00200037",
        "DS",
        "instance",
        values=_vector("image_orientation_patient"),
        matchable=False,
    ),
    _A("SliceLocation", "00201041", "DS", "instance", "slice_location", matchable=False),
    _A("SliceThickness", "00180050", "DS", "instance", "slice_thickness", matchable=False),
    _A("WindowCenter", "00281050", "DS", "instance", "window_center", matchable=False),
    _A("WindowWidth", "00281051", "DS", "instance", "window_width", matchable=False),
    _A("RescaleIntercept", "00281052", "DS", "instance", "rescale_intercept", matchable=False),
    _A("RescaleSlope", "00281053", "DS", "instance", "rescale_slope", matchable=False),
    _A(
        "AvailableTransferSyntaxUID",
        "00083002",
        "UI",
        "instance",
        "transfer_syntax_uid",
        matchable=False,
    ),
)
BY_KEYWORD = {a.keyword: a for a in ATTRIBUTES}
BY_TAG = {a.tag: a for a in ATTRIBUTES}

# The item attributes of a sequence a search may match on, by (sequence, item) keyword:
# PS3.18 Table 10.6.1-5's (0040,0275) Request Attributes Sequence > (0040,0009) Scheduled
# Procedure Step ID and > (0040,1001) Requested Procedure ID. Each column holds the
# values of every indexed item (viewer.models.Series); a query value matches if any
# does. The IDs of an order are identifying, as (0008,0050) Accession Number is.
ITEM_ATTRIBUTES: dict[tuple[str, str], Attribute] = {
    ("RequestAttributesSequence", "ScheduledProcedureStepID"): _A(
        "RequestAttributesSequence.ScheduledProcedureStepID",
        "00400275.00400009",
        "SH",
        "series",
        "scheduled_procedure_step_ids",
        identifying=True,
        sequence="RequestAttributesSequence",
        multiple=True,
    ),
    ("RequestAttributesSequence", "RequestedProcedureID"): _A(
        "RequestAttributesSequence.RequestedProcedureID",
        "00400275.00401001",
        "SH",
        "series",
        "requested_procedure_ids",
        identifying=True,
        sequence="RequestAttributesSequence",
        multiple=True,
    ),
}
# The item keyword -> its sequence's keyword (a search naming the item alone is told).
ITEM_OF = {item: sequence for sequence, item in ITEM_ATTRIBUTES}

# Return attributes computed from the answer, not read from a column.
SPECIFIC_CHARACTER_SET = ("SpecificCharacterSet", "00080005", "CS")
RETRIEVE_URL = ("RetrieveURL", "00081190", "UR")
INSTANCE_AVAILABILITY = ("InstanceAvailability", "00080056", "CS")

# Attributes PS3.18 §10.6.1.2.1 lets every search name that Loupe does not index (no
# column holds them, and a search never opens the stored files): a search on one is
# refused. (Every required matching key of Table 10.6.1-5 is indexed.)
NOT_INDEXED = frozenset({"TimezoneOffsetFromUTC"})

# The default return attributes of each level (PS3.18 Table 10.6.3-3, -4, -5; the
# computed ones are added by the search), plus (0008,1030) Study Description, which
# viewers list studies by.
DEFAULT_RETURN: dict[str, tuple[str, ...]] = {
    "study": (
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "ModalitiesInStudy",
        "ReferringPhysicianName",
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyID",
        "StudyDescription",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
    ),
    "series": (
        "Modality",
        "SeriesDescription",
        "SeriesNumber",
        "SeriesInstanceUID",
        "NumberOfSeriesRelatedInstances",
        "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartTime",
        "RequestAttributesSequence",
    ),
    "instance": (
        "SOPClassUID",
        "SOPInstanceUID",
        "InstanceNumber",
        "Rows",
        "Columns",
        "BitsAllocated",
        "NumberOfFrames",
    ),
}


# Default return attributes of Table 10.6.3-4 that are "present if known" (Type C) and
# that Loupe may not know (a series stored before they were indexed, an object without
# them): left out of a row without a value, unless matched on or asked with includefield.
IF_KNOWN = frozenset(
    {
        "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartTime",
        "RequestAttributesSequence",
    }
)


def element(vr: str, values: list[Any]) -> dict[str, Any]:
    """One DICOM JSON attribute (PS3.18 F.2.2): its VR, and ``Value`` unless empty."""
    return {"vr": vr, "Value": values} if values else {"vr": vr}


def row_of(
    attribute: Attribute, study: Study, series: Series | None, instance: Instance | None
) -> Any:
    """The row ``attribute`` is read from, given the answer's study, series and instance."""
    if attribute.level == "patient":
        patient: Patient = study.patient
        return patient
    if attribute.level == "study":
        return study
    if attribute.level == "series":
        return series
    return instance
