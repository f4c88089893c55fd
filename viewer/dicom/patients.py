"""Who a patient is to DICOM: (0010,0020) Patient ID within (0010,0021) Issuer of Patient ID
(PS3.3 C.7.1.1). A name never identifies anyone.

A reference from outside DICOM may name its issuer in more than one spelling: an HL7 CX's
assigning authority is an HD of a namespace ID and a universal ID (``ID^^^HOSP&1.2.3&ISO``),
and a stored patient's Issuer of Patient ID may hold either. Such a reference keeps the
other spellings as ``other_issuers``; ``pairs()`` lists every (Patient ID, issuer) it may be
stored under. A stored patient's issuer is its (0010,0021) Issuer of Patient ID, else the
(0040,0032) Universal Entity ID of its (0010,0024) Issuer of Patient ID Qualifiers ("" where
neither was sent); where it has both, the Universal Entity ID is its other spelling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PatientRef:
    patient_id: str
    issuer: str = ""
    other_issuers: tuple[str, ...] = ()

    @classmethod
    def of(cls, holder: Any) -> PatientRef:
        """The patient of a stored Patient row, or of a Study (its ``patient``)."""
        patient = getattr(holder, "patient", holder)
        qualifiers = getattr(patient, "issuer_of_patient_id_qualifiers", "") or ""
        universal = qualifiers.split("&", 1)[0]
        if not patient.issuer_of_patient_id:
            return cls(patient.patient_id, universal)
        others = (universal,) if universal and universal != patient.issuer_of_patient_id else ()
        return cls(patient.patient_id, patient.issuer_of_patient_id, others)

    @property
    def issuers(self) -> tuple[str, ...]:
        """Every spelling of the issuer, the first one first; () where it names none."""
        return tuple(i for i in (self.issuer, *self.other_issuers) if i)

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """The (Patient ID, Issuer of Patient ID) pairs this reference may be stored under."""
        return tuple((self.patient_id, issuer) for issuer in self.issuers or ("",))

    def __str__(self) -> str:
        """The participant object ID of PS3.15 A.5.3.6: PatientID^^^issuer."""
        return f"{self.patient_id}^^^{self.issuer}" if self.issuer else self.patient_id
