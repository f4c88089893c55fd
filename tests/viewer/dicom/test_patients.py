"""viewer.dicom.patients.PatientRef: Patient ID within its issuer, and a reference's
other spellings of the issuer."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from viewer.dicom.patients import PatientRef


@pytest.mark.parametrize(
    ("ref", "pairs", "text"),
    [
        (PatientRef("C3N-00247"), (("C3N-00247", ""),), "C3N-00247"),
        (PatientRef("42", "HOSP"), (("42", "HOSP"),), "42^^^HOSP"),
        (PatientRef("42", "HOSP", ("1.2.3",)), (("42", "HOSP"), ("42", "1.2.3")), "42^^^HOSP"),
    ],
)
def test_pairs_and_the_audit_form(
    ref: PatientRef, pairs: tuple[tuple[str, str], ...], text: str
) -> None:
    assert ref.pairs() == pairs
    assert str(ref) == text


def test_of_a_patient_row_or_a_study() -> None:
    patient = SimpleNamespace(patient_id="TEST_1", issuer_of_patient_id="ORTHANC")
    assert PatientRef.of(patient) == PatientRef("TEST_1", "ORTHANC")
    assert PatientRef.of(SimpleNamespace(patient=patient)) == PatientRef("TEST_1", "ORTHANC")
