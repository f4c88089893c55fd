"""De-identified display: what a de-identified share link's pages are answered with.

A share link made with ``"deidentify": true`` (``viewer.services.sharing``) opens a session
whose every answer leaves out the patient's identity (``viewer.access.deidentified``
says whether a request is one). The attributes follow DICOM PS3.15 Annex E, the Basic
Application Level Confidentiality Profile (Table E.1-1), as far as Loupe shows them:

* removed or replaced by a neutral placeholder: (0010,0010) Patient's Name, (0010,0020)
  Patient ID, (0010,0021) Issuer of Patient ID, (0010,0030) Patient's Birth Date,
  (0010,0040) Patient's Sex, (0008,0050) Accession Number, and the names of the people
  involved (``author`` of a measurement, as (0008,1060) Name of Physician(s) Reading
  Study);
* never sent at all: the stored object itself (``GET .../file`` answers 403
  ``deidentified_share``), which holds every attribute of the table (institution,
  referring and performing physicians, operators, other patient IDs, addresses ...);
* cleaned (the profile's Clean Descriptors Option, E.3.5): (0008,1030) Study Description,
  (0008,103E) Series Description, the measurements' labels and the priors' descriptions
  keep their text with every identifier of the study's patient in it replaced by
  ``[removed]`` (:class:`Identifiers`: the name and its components, the IDs, birth date
  in the usual spellings, accession number, and the institution, station and people's
  names read from the stored headers);
* kept, as the profile's options allow: UIDs (Retain UIDs Option, E.3.9; the routes are
  made of them), study and series dates (Retain Longitudinal Temporal Information with
  Full Dates Option, E.3.6; a tumor board compares with priors by date), modality, body
  part and the geometry (Retain ... Characteristics; needed to show the images).

Images: the renderer draws no text into a rendered image, thumbnail or tile. An object
whose pixel data already carries identifying text, (0028,0301) Burned In Annotation
``YES``, is not rendered through a de-identified share at all (403
``burned_in_annotation``, :func:`check_renderable`): its pixels would show what the
headers no longer do. An object that does not say (the attribute absent) is rendered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pydicom
from django.http import HttpRequest

from viewer import access
from viewer.errors import Forbidden
from viewer.lru import Lru
from viewer.models import Instance, Study
from viewer.services import storage

PLACEHOLDER_NAME = "Anonymous"  # what the overlays and pages show for the patient
PLACEHOLDER_ID = "de-identified"
REMOVED = "[removed]"
PERSON_NOT_SHOWN = "(not shown: de-identified)"

# The identifying attributes read from a stored header, to clean the descriptions with:
# the Annex E Table E.1-1 attributes that hold names, IDs, places and dates of a person
# or an organization (those Loupe also indexes come from the database).
HEADER_IDENTIFIERS = (
    "PatientName",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "PatientID",
    "IssuerOfPatientID",
    "OtherPatientIDs",
    "PatientBirthDate",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "MedicalRecordLocator",
    "AccessionNumber",
    "StudyID",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "StationName",
    "ReferringPhysicianName",
    "ReferringPhysicianAddress",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "PhysiciansOfRecord",
    "RequestingPhysician",
    "OperatorsName",
    "ResponsiblePerson",
    "ResponsibleOrganization",
)
_HEADER_TAGS = [*HEADER_IDENTIFIERS, "OtherPatientIDsSequence", "BurnedInAnnotation"]


@dataclass(frozen=True)
class HeaderFacts:
    """What a de-identified display needs from one stored header."""

    identifiers: tuple[str, ...]
    burned_in_annotation: bool


# By storage key (the object's SHA-256: a stored object never changes).
_headers: Lru[str, HeaderFacts] = Lru(entries=8192)


def header_facts(instance: Instance) -> HeaderFacts:
    """The identifying values and the Burned In Annotation of ``instance``'s stored header
    (read without its pixel data, once per object and process)."""
    found = _headers.get(instance.storage_key)
    if found is not None:
        return found
    try:
        dataset = pydicom.dcmread(
            storage.path_for(instance.storage_key),
            stop_before_pixels=True,
            force=True,
            specific_tags=_HEADER_TAGS,
        )
    except FileNotFoundError:
        # Nothing to read: nothing to render either (the rendering route says so).
        return HeaderFacts((), False)
    values: list[str] = []
    for keyword in HEADER_IDENTIFIERS:
        values.extend(_texts(dataset.get(keyword)))
    for item in dataset.get("OtherPatientIDsSequence") or ():
        values.extend(_texts(item.get("PatientID")))
        values.extend(_texts(item.get("IssuerOfPatientID")))
    burned = str(dataset.get("BurnedInAnnotation") or "").strip().upper() == "YES"
    found = HeaderFacts(tuple(v for v in values if v), burned)
    _headers.set(instance.storage_key, found)
    return found


def _texts(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [str(v).strip() for v in value]
    return [str(value).strip()]


# -- cleaning free text ------------------------------------------------------------------


def _date_spellings(value: str) -> list[str]:
    """A DA (YYYYMMDD) as people and systems write it."""
    digits = value.replace("-", "")
    if len(digits) != 8 or not digits.isdigit():
        return [value]
    y, m, d = digits[:4], digits[4:6], digits[6:]
    return [digits, f"{y}-{m}-{d}", f"{d}.{m}.{y}", f"{m}/{d}/{y}", f"{d}/{m}/{y}"]


def _spellings(value: str) -> list[str]:
    """The forms of one identifying value a description may hold: itself, its date
    spellings, and for a person name (PS3.5 §6.2 PN) each component and group."""
    found = [value, *_date_spellings(value)]
    if "^" in value or "=" in value:
        for group in value.split("="):
            found.append(group)
            found.extend(group.split("^"))
            found.append(" ".join(p for p in group.split("^") if p))
    return [f.strip() for f in found]


class Identifiers:
    """The identifying values of one study's patient (and the people and places of the
    study), to take out of free text: each replaced by ``[removed]`` wherever it occurs,
    in any case. A value of two or three characters is replaced only as a whole word (so
    that a patient "Li" does not clean "LIVER"); one character is left alone."""

    def __init__(self, values: Iterable[str]) -> None:
        forms: set[str] = set()
        for value in values:
            forms.update(s for s in _spellings(value) if len(s) >= 2)
        self.forms = tuple(sorted(forms, key=lambda s: (-len(s), s)))
        parts = [
            re.escape(s) if len(s) >= 4 else rf"(?<![^\W_]){re.escape(s)}(?![^\W_])"
            for s in self.forms
        ]
        self._pattern = re.compile("|".join(parts), re.IGNORECASE) if parts else None

    def clean(self, text: str) -> str:
        if not text or self._pattern is None:
            return text
        return self._pattern.sub(REMOVED, text)


def identifiers_of(study: Study) -> Identifiers:
    """The identifiers of ``study``: its indexed patient and study attributes, and those of
    the stored header of one object of each of its series."""
    patient = study.patient
    values = [
        patient.patient_name,
        patient.patient_id,
        patient.issuer_of_patient_id,
        patient.issuer_of_patient_id_qualifiers.split("&", 1)[0],
        patient.patient_birth_date.strftime("%Y%m%d") if patient.patient_birth_date else "",
        study.accession_number,
        study.issuer_of_accession_number,
        study.referring_physician_name,
        *patient.other_patient_ids.values_list("patient_id", flat=True),
    ]
    for series in study.series.all():
        first = series.instances.only("storage_key").order_by("id").first()
        if first is not None:
            values.extend(header_facts(first).identifiers)
    return Identifiers(v for v in values if v)


# -- the answers ---------------------------------------------------------------------------


def patient_json() -> dict[str, Any]:
    """The ``patient`` of a study's JSON in a de-identified share (same keys)."""
    return {
        "patient_id": PLACEHOLDER_ID,
        "issuer_of_patient_id": "",
        "patient_name": PLACEHOLDER_NAME,
        "patient_name_display": PLACEHOLDER_NAME,
        "patient_birth_date": None,
        "patient_sex": "",
    }


def study_json(body: dict[str, Any], ids: Identifiers) -> dict[str, Any]:
    """``viewer.api.serializers.study_json``'s answer, de-identified."""
    body = {**body, "accession_number": "", "deidentified": True, "patient": patient_json()}
    body["study_description"] = ids.clean(body.get("study_description") or "")
    body["series"] = [
        {**s, "series_description": ids.clean(s.get("series_description") or "")}
        for s in body.get("series", [])
    ]
    return body


def prior_json(body: dict[str, Any], ids: Identifiers) -> dict[str, Any]:
    """One prior of ``GET /api/studies/<uid>/priors``, de-identified."""
    return {
        **body,
        "description": ids.clean(body.get("description") or ""),
        "patient": {"patient_id": PLACEHOLDER_ID, "issuer_of_patient_id": ""},
    }


def measurement_json(body: dict[str, Any], ids: Identifiers) -> dict[str, Any]:
    """One measurement (JSON, and the rows of its exports), de-identified: its label
    cleaned, its author (the reader, PS3.15 Annex E (0008,1060)) not named."""
    return {
        **body,
        "label": ids.clean(body.get("label") or ""),
        "author": {"username": "", "display": PERSON_NOT_SHOWN},
    }


@dataclass(frozen=True)
class StudyDisplay:
    """What the study and worklist pages show of a study in a de-identified share."""

    study_description: str
    series_descriptions: dict[int, str]


def study_display(study: Study) -> StudyDisplay:
    ids = identifiers_of(study)
    return StudyDisplay(
        ids.clean(study.study_description),
        {s.pk: ids.clean(s.series_description) for s in study.series.all()},
    )


# -- images ---------------------------------------------------------------------------------


class BurnedInAnnotation(Forbidden):
    code = "burned_in_annotation"


class DeidentifiedShare(Forbidden):
    code = "deidentified_share"


def check_renderable(request: HttpRequest, instance: Instance) -> None:
    """In a de-identified share, refuse (403) an image whose pixels carry identifying
    text: (0028,0301) Burned In Annotation YES."""
    if access.deidentified(request) and header_facts(instance).burned_in_annotation:
        raise BurnedInAnnotation(
            "this share link is de-identified, and this image has burned-in annotation "
            "((0028,0301) Burned In Annotation is YES): its pixels may show the patient's "
            "identity, so it is not shown through this link"
        )


def check_may_download(request: HttpRequest) -> None:
    """The stored object holds every identifying attribute: never through a
    de-identified share (403)."""
    if access.deidentified(request):
        raise DeidentifiedShare(
            "this share link is de-identified: the original DICOM file, which holds the "
            "patient's identity, cannot be downloaded through it"
        )
