"""viewer.services.identity: the cross-reference of patient identities, on real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.factories import changed, store_files
from viewer.errors import ViewerError
from viewer.models import AuditEvent, Patient, PatientLink, Study
from viewer.services import identity, ingest

pytestmark = pytest.mark.django_db

PLASTIC = ("PLASTIC", "")


def _store_ct(shared_dicom: Path, **values: str) -> str:
    """The prior-pair's first localizer, re-written with ``values``; its study UID."""
    source = shared_dicom / "ct-prior-pair" / "study1-prior-0928" / "S100_localizer" / "I10"
    result = ingest.ingest_bytes(changed(source.read_bytes(), **values), source="test")
    assert result.ok, result.as_dict()
    return result.study_instance_uid


def _store_prior_pair(shared_dicom: Path) -> None:
    base = shared_dicom / "ct-prior-pair"
    store_files([base / "study1-prior-0928" / "S100_localizer" / "I10"])
    store_files([base / "study2-current-0934" / "S100_localizer" / "I10"])


def test_a_stored_patient_is_its_own_person_keyed_by_its_identity(shared_dicom: Path) -> None:
    _store_prior_pair(shared_dicom)
    patient = Patient.objects.get(patient_id="PLASTIC")
    assert identity.identity_of(patient) == PLASTIC
    assert identity.person(PLASTIC) == frozenset({PLASTIC})
    assert patient.person_key == json.dumps(["PLASTIC", ""]) == identity.person_key([PLASTIC])


def test_link_joins_two_identities_and_records_who_linked_them(shared_dicom: Path) -> None:
    _store_prior_pair(shared_dicom)
    _store_ct(
        shared_dicom,
        PatientID="MRN-7",
        IssuerOfPatientID="HOSP",
        StudyInstanceUID="1.2.826.0.1.3680043.8.498.1",
        SeriesInstanceUID="1.2.826.0.1.3680043.8.498.2",
        SOPInstanceUID="1.2.826.0.1.3680043.8.498.3",
    )
    studies_before = list(Study.objects.order_by("pk").values())

    row = identity.link(
        ("MRN-7", "HOSP"), PLASTIC, source="api", user_id="admin", client_address="10.0.0.9"
    )

    assert (row.patient_id, row.issuer_of_patient_id) == ("MRN-7", "HOSP")  # canonical order
    assert identity.person(PLASTIC) == frozenset({PLASTIC, ("MRN-7", "HOSP")})
    keys = set(Patient.objects.values_list("person_key", flat=True))
    assert keys == {identity.person_key([PLASTIC, ("MRN-7", "HOSP")])}
    assert list(Study.objects.order_by("pk").values()) == studies_before
    events = AuditEvent.objects.filter(event_id=AuditEvent.EventId.PATIENT_RECORD)
    assert {(e.patient_id, e.issuer_of_patient_id) for e in events} == {PLASTIC, ("MRN-7", "HOSP")}
    assert {e.action for e in events} == {"C"}
    assert {e.user_id for e in events} == {"admin"}
    assert {e.client_address for e in events} == {"10.0.0.9"}
    assert {e.detail["other_patient"] for e in events} == {"PLASTIC", "MRN-7^^^HOSP"}
    assert all(e.detail["source"] == "api" for e in events)

    again = identity.link(PLASTIC, ("MRN-7", "HOSP"), source="hl7", user_id="hl7:ADT")
    assert again.pk == row.pk and again.source == "api"  # idempotent, unchanged
    assert events.count() == 2


def test_unlink_separates_them_again_and_is_recorded(shared_dicom: Path) -> None:
    _store_prior_pair(shared_dicom)
    identity.link(PLASTIC, ("MRN-7", "HOSP"), kind="merge", source="hl7", user_id="hl7:ADT")
    assert Patient.objects.get().person_key == identity.person_key([PLASTIC, ("MRN-7", "HOSP")])

    assert identity.unlink(("MRN-7", "HOSP"), PLASTIC, source="api", user_id="admin") is True
    assert identity.unlink(("MRN-7", "HOSP"), PLASTIC, source="api", user_id="admin") is False

    assert not PatientLink.objects.exists()
    assert identity.person(PLASTIC) == frozenset({PLASTIC})
    assert Patient.objects.get().person_key == identity.person_key([PLASTIC])
    actions = list(
        AuditEvent.objects.filter(event_id=AuditEvent.EventId.PATIENT_RECORD)
        .order_by("recorded_at")
        .values_list("action", flat=True)
    )
    assert sorted(actions) == ["D", "D", "U", "U"]


def test_a_link_made_before_the_images_keys_them_when_they_arrive(shared_dicom: Path) -> None:
    identity.link(PLASTIC, ("MRN-7", "HOSP"), source="admin", user_id="admin")
    _store_prior_pair(shared_dicom)
    assert Patient.objects.get().person_key == identity.person_key([PLASTIC, ("MRN-7", "HOSP")])


def test_links_are_followed_transitively_and_cycles_end() -> None:
    a, b, c = ("A", "X"), ("B", "X"), ("C", "Y")
    identity.link(a, b, source="api", user_id="u")
    identity.link(b, c, source="api", user_id="u")
    identity.link(c, a, source="api", user_id="u")
    assert identity.person(a) == identity.person(c) == frozenset({a, b, c})
    identity.unlink(a, b, source="api", user_id="u")
    assert identity.person(b) == frozenset({a, b, c})  # still through C
    identity.unlink(b, c, source="api", user_id="u")
    assert identity.person(b) == frozenset({b})


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (("P", "X"), ("P", "X"), "itself"),
        (("", "X"), ("P", "X"), "empty"),
        (("P", "X"), ("P\\Q", "X"), "backslash"),
        (("P" * 65, "X"), ("P", "X"), "longer"),
    ],
)
def test_bad_links_are_refused(a: tuple[str, str], b: tuple[str, str], message: str) -> None:
    with pytest.raises(ViewerError) as caught:
        identity.link(a, b, source="api", user_id="u")
    assert caught.value.code == "bad_patient_link" and caught.value.status == 400
    assert message in caught.value.message
    assert not PatientLink.objects.exists()


def test_a_person_beyond_the_cap_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identity, "MAX_PERSON_IDENTITIES", 3)
    identity.link(("A", ""), ("B", ""), source="api", user_id="u")
    identity.link(("B", ""), ("C", ""), source="api", user_id="u")
    with pytest.raises(ViewerError) as caught:
        identity.link(("C", ""), ("D", ""), source="api", user_id="u")
    assert caught.value.code == "person_too_large"
    assert PatientLink.objects.count() == 2  # rolled back
