"""``GET /api/studies/<uid>/priors`` on real data: the ct-prior-pair (same day, the time
decides) and the demo phantom pair (a year apart, CHEST CT)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.conftest import client_for
from tests.factories import StoredStudy, changed, store_files
from viewer.demo import phantom
from viewer.models import AuditEvent, Study
from viewer.services import ingest

pytestmark = pytest.mark.django_db

PRIOR_UID = "1.3.46.670589.33.1.27492712521914879309.27169771283235650014"
CURRENT_UID = "1.3.46.670589.33.1.15053592413351079234.27718218421047494460"


def url(study: str) -> str:
    return f"/api/studies/{study}/priors"


@pytest.fixture
def prior_pair(shared_dicom: Path) -> tuple[str, str]:
    base = shared_dicom / "ct-prior-pair"
    store_files(sorted((base / "study1-prior-0928" / "S201_std_brain_5mm").iterdir())[:2])
    store_files(sorted((base / "study2-current-0934" / "S201_stereotaxis_tilt").iterdir())[:2])
    return PRIOR_UID, CURRENT_UID


@pytest.fixture
def phantom_pair(tmp_path: Path) -> dict[str, str]:
    paths = phantom.write_phantom(tmp_path / "phantom")
    by_key: dict[str, str] = {}
    for key in ("current", "prior"):
        stored = store_files([p for p in paths if p.parent.name == key][:2])
        by_key[key] = stored.study
    return by_key


def test_the_prior_pairs_earlier_study_is_the_relevant_prior(
    logged_in_client: Client, prior_pair: tuple[str, str]
) -> None:
    prior, current = prior_pair
    response = logged_in_client.get(url(current))
    assert response.status_code == 200
    (answer,) = response.json()
    assert answer == {
        "study_instance_uid": prior,
        "study_date": "2015-02-06",
        "study_time": "09:28:15",
        "modalities": ["CT"],
        "body_part": answer["body_part"],
        "body_parts": answer["body_parts"],
        "description": Study.objects.get(study_instance_uid=prior).study_description,
        "number_of_instances": 2,
        "relevant": True,
        "linked": False,
        "patient": {"patient_id": "PLASTIC", "issuer_of_patient_id": ""},
    }
    assert logged_in_client.get(url(prior)).json() == []  # 09:34 is later than 09:28
    assert AuditEvent.objects.filter(event_id="110112", detail__filters=["priors"]).exists()


def test_the_phantoms_prior_is_found_and_chosen(
    logged_in_client: Client, phantom_pair: dict[str, str]
) -> None:
    (answer,) = logged_in_client.get(url(phantom_pair["current"])).json()
    assert answer["study_instance_uid"] == phantom_pair["prior"]
    assert (answer["study_date"], answer["study_time"]) == ("2025-03-15", "09:30:00")
    assert (answer["body_part"], answer["body_parts"], answer["modalities"]) == (
        "CHEST",
        ["CHEST"],
        ["CT"],
    )
    assert answer["relevant"] is True and answer["linked"] is False
    assert answer["patient"] == {
        "patient_id": phantom.PATIENT_ID,
        "issuer_of_patient_id": phantom.ISSUER_OF_PATIENT_ID,
    }


def _copy_of(study_dir: Path, n: int, **values: Any) -> str:
    """The first file of ``study_dir`` as a study of its own (UIDs ending in ``n``)."""
    root = "1.2.826.0.1.3680043.8.498.88"
    data = changed(
        sorted(study_dir.iterdir())[0].read_bytes(),
        StudyInstanceUID=f"{root}.{n}.1",
        SeriesInstanceUID=f"{root}.{n}.2",
        SOPInstanceUID=f"{root}.{n}.3",
        **values,
    )
    assert ingest.ingest_bytes(data, source="test").ok
    return f"{root}.{n}.1"


def test_another_issuers_patient_and_a_namesake_are_no_priors(
    logged_in_client: Client, phantom_pair: dict[str, str], tmp_path: Path
) -> None:
    prior_dir = tmp_path / "phantom" / "prior"
    _copy_of(prior_dir, 1, IssuerOfPatientID="ANOTHER-HOSPITAL", StudyDate="20240101")
    _copy_of(prior_dir, 2, PatientID="SOMEONE-ELSE", StudyDate="20240101")  # same name
    answer = logged_in_client.get(url(phantom_pair["current"])).json()
    assert [a["study_instance_uid"] for a in answer] == [phantom_pair["prior"]]


def test_a_linked_identitys_study_is_a_prior_until_unlinked(
    logged_in_client: Client,
    administrator: Any,
    phantom_pair: dict[str, str],
    tmp_path: Path,
) -> None:
    other = _copy_of(
        tmp_path / "phantom" / "prior",
        3,
        PatientID="MRN-42",
        IssuerOfPatientID="CITY",
        StudyDate="20250901",
    )
    body = {
        "patient": {
            "patient_id": phantom.PATIENT_ID,
            "issuer_of_patient_id": phantom.ISSUER_OF_PATIENT_ID,
        },
        "other_patient": {"patient_id": "MRN-42", "issuer_of_patient_id": "CITY"},
    }
    admin = client_for(administrator)
    assert (
        admin.post("/api/patient-links", body, content_type="application/json").status_code == 201
    )

    answer = logged_in_client.get(url(phantom_pair["current"])).json()
    assert [(a["study_instance_uid"], a["relevant"], a["linked"]) for a in answer] == [
        (other, True, True),
        (phantom_pair["prior"], False, False),
    ]
    assert answer[0]["patient"] == {"patient_id": "MRN-42", "issuer_of_patient_id": "CITY"}

    assert (
        admin.delete("/api/patient-links", body, content_type="application/json").status_code == 204
    )
    answer = logged_in_client.get(url(phantom_pair["current"])).json()
    assert [a["study_instance_uid"] for a in answer] == [phantom_pair["prior"]]


def test_a_clinician_sees_only_priors_in_scope_and_no_unseen_study(
    clinician_for_patient_a: Client, patient_a: StoredStudy, prior_pair: tuple[str, str]
) -> None:
    assert clinician_for_patient_a.get(url(patient_a.study)).json() == []
    assert clinician_for_patient_a.get(url(prior_pair[1])).status_code == 404
    assert Client().get(url(patient_a.study)).status_code == 401
    assert clinician_for_patient_a.get(url("1.2.3.4.404")).status_code == 404
