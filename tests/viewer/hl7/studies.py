"""Two studies of one person under two identities, for the HL7 tests: the corpus's current
CT of PatientID PLASTIC (no issuer), and its prior's localizer rewritten as patient
MRN-7 of issuer NORTH, a year earlier, with UIDs of its own."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydicom.uid import generate_uid

from tests.factories import changed
from viewer.models import Instance, Study
from viewer.services import ingest

CURRENT_IDENTITY = ("PLASTIC", "")
OTHER_IDENTITY = ("MRN-7", "NORTH")


@dataclass(frozen=True)
class TwoIdentities:
    current: Study  # PLASTIC, 2015-02-06
    other: Study  # MRN-7 of NORTH, 2014-01-01


def store_two_identities(shared_dicom: Path) -> TwoIdentities:
    pair = shared_dicom / "ct-prior-pair"
    current = ingest.ingest_file(pair / "study2-current-0934" / "S100_localizer" / "I10")
    assert current.ok, current.reason
    other_bytes = changed(
        (pair / "study1-prior-0928" / "S100_localizer" / "I10").read_bytes(),
        PatientID=OTHER_IDENTITY[0],
        IssuerOfPatientID=OTHER_IDENTITY[1],
        StudyInstanceUID=generate_uid(),
        SeriesInstanceUID=generate_uid(),
        SOPInstanceUID=generate_uid(),
        StudyDate="20140101",
    )
    other = ingest.ingest_bytes(other_bytes, source="other identity")
    assert other.ok, other.reason
    return TwoIdentities(
        current=Study.objects.get(patient__patient_id="PLASTIC"),
        other=Study.objects.get(patient__patient_id="MRN-7"),
    )


def stored_objects() -> list[tuple[str, str, str, int]]:
    """Every Instance row as (SOP Instance UID, storage key, study, patient row): what a
    link or merge must leave as it was."""
    return sorted(
        Instance.objects.values_list(
            "sop_instance_uid",
            "storage_key",
            "series__study__study_instance_uid",
            "series__study__patient_id",
        )
    )
