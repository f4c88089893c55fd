"""SMART App Launch, EHR launch (HL7 SMART App Launch 2.x, "app-launch"): iss + launch ->
discovery -> authorize (PKCE S256) -> token with ``patient`` and ``fhirContext`` -> a
:class:`~ehrlaunch.context.LaunchContext`, opened like a signed launch.

* ``client``: the HTTP client, which calls registered origins only;
* ``flow``: begin and complete, the pending launch in the session, the ID token;
* ``fhir``: the FHIR Patient and ImagingStudy -> DICOM Patient ID, issuer, Study UIDs.

The study's ImagingStudy ``subject`` must be the launch's patient.
"""

from ehrlaunch.smart.client import ehr_for_iss
from ehrlaunch.smart.fhir import imaging_study_ids, patient_ref_from_fhir, study_uid_from_fhir
from ehrlaunch.smart.flow import SESSION_SMART, begin, complete, redirect_uri

__all__ = [
    "SESSION_SMART",
    "begin",
    "complete",
    "ehr_for_iss",
    "imaging_study_ids",
    "patient_ref_from_fhir",
    "redirect_uri",
    "study_uid_from_fhir",
]
