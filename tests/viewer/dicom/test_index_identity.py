"""viewer.dicom.index, the patient's identity: (0010,0024) Issuer of Patient ID Qualifiers
and (0010,1002) Other Patient IDs Sequence, read from real files re-written."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from tests.factories import changed
from viewer.dicom.index import MAX_OTHER_PATIENT_IDS, IndexFields, index_fields

LOCALIZER = Path("ct-prior-pair") / "study1-prior-0928" / "S100_localizer" / "I10"


def _qualifiers(universal: str, kind: str = "ISO") -> Sequence:
    item = Dataset()
    item.UniversalEntityID = universal
    item.UniversalEntityIDType = kind
    return Sequence([item])


def _other(patient_id: str, issuer: str = "", kind: str = "TEXT", **extra: object) -> Dataset:
    item = Dataset()
    item.PatientID = patient_id
    if issuer:
        item.IssuerOfPatientID = issuer
    item.TypeOfPatientID = kind
    for keyword, value in extra.items():
        setattr(item, keyword, value)
    return item


def _fields(shared_dicom: Path, **values: object) -> IndexFields:
    data = changed((shared_dicom / LOCALIZER).read_bytes(), **values)
    dataset = pydicom.dcmread(io.BytesIO(data))
    return index_fields(dataset, number_of_frames=1, transfer_syntax_uid="1.2.840.10008.1.2.1")


def test_a_file_without_qualifiers_or_other_ids_has_none(shared_dicom: Path) -> None:
    fields = _fields(shared_dicom)
    assert fields.patient["patient_id"] == "PLASTIC"
    assert fields.patient["issuer_of_patient_id_qualifiers"] == ""
    assert fields.other_patient_ids == ()


def test_the_qualifiers_first_item_is_kept_in_hd_form(shared_dicom: Path) -> None:
    fields = _fields(
        shared_dicom, IssuerOfPatientIDQualifiersSequence=_qualifiers("1.2.3.4", "ISO")
    )
    assert fields.patient["issuer_of_patient_id_qualifiers"] == "1.2.3.4&ISO"


def test_unusable_qualifiers_are_left_out(shared_dicom: Path) -> None:
    assert (
        _fields(shared_dicom, IssuerOfPatientIDQualifiersSequence=_qualifiers("a&b")).patient[
            "issuer_of_patient_id_qualifiers"
        ]
        == ""
    )
    assert (
        _fields(shared_dicom, IssuerOfPatientIDQualifiersSequence=_qualifiers("9" * 200)).patient[
            "issuer_of_patient_id_qualifiers"
        ]
        == ""
    )


def test_other_patient_ids_are_indexed_with_their_issuers(shared_dicom: Path) -> None:
    items = [
        _other("MRN-7", "HOSP", "TEXT"),
        _other("NO-ISSUER"),
        _other("U-1", IssuerOfPatientIDQualifiersSequence=_qualifiers("2.16.840.1")),
        _other("MRN-7", "HOSP"),  # a repeat
        _other("PLASTIC"),  # the patient's own identity
        _other("BAD\\ID", "HOSP"),
        _other("X" * 65, "HOSP"),
        _other("", "HOSP"),
    ]
    fields = _fields(shared_dicom, OtherPatientIDsSequence=Sequence(items))
    assert fields.other_patient_ids == (
        ("MRN-7", "HOSP", "TEXT"),
        ("NO-ISSUER", "", "TEXT"),
        ("U-1", "2.16.840.1", "TEXT"),
    )


def test_other_patient_ids_are_bounded(shared_dicom: Path) -> None:
    items = [_other(f"ID-{i}", "HOSP") for i in range(MAX_OTHER_PATIENT_IDS + 20)]
    fields = _fields(shared_dicom, OtherPatientIDsSequence=Sequence(items))
    assert len(fields.other_patient_ids) == MAX_OTHER_PATIENT_IDS
