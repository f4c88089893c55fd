"""The personas against every route that shows a study: who sees patient A's and
patient B's images (ARCHITECTURE.md's radiologist, administrator, a clinician launched for
patient A, an outsider; the guest with a share link joins when sharing lands)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.conftest import client_for
from tests.factories import StoredStudy

pytestmark = pytest.mark.django_db


def statuses(client: Client, study: StoredStudy) -> set[int]:
    return {client.get(route).status_code for route in study.routes()}


def test_radiologists_and_administrators_see_every_study(
    radiologist: Any, administrator: Any, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    for user in (radiologist, administrator):
        client = client_for(user)
        assert statuses(client, patient_a) == {200}
        assert statuses(client, patient_b) == {200}


def test_a_clinician_launched_for_patient_a_sees_a_and_nothing_of_b(
    clinician_for_patient_a: Client, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    assert statuses(clinician_for_patient_a, patient_a) == {200}
    assert statuses(clinician_for_patient_a, patient_b) == {404}  # the same as an unknown UID


def test_an_outsider_and_an_anonymous_client_see_nothing(
    outsider: Any, patient_a: StoredStudy
) -> None:
    assert statuses(client_for(outsider), patient_a) == {404}
    anonymous = {Client().get(route).status_code for route in patient_a.routes()}
    assert anonymous <= {302, 401}


def _identity(study: StoredStudy) -> tuple[str, str]:
    from viewer.models import Study
    from viewer.services import identity

    return identity.identity_of(Study.objects.get(study_instance_uid=study.study).patient)


def test_a_link_widens_the_launched_clinicians_scope_and_unlinking_narrows_it(
    clinician_for_patient_a: Client, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    from viewer.services import identity

    a, b = _identity(patient_a), _identity(patient_b)
    identity.link(a, b, source="api", user_id="administrator")
    assert statuses(clinician_for_patient_a, patient_b) == {200}

    identity.unlink(b, a, source="api", user_id="administrator")
    assert statuses(clinician_for_patient_a, patient_b) == {404}
    assert statuses(clinician_for_patient_a, patient_a) == {200}


def test_a_link_to_an_identity_with_no_images_yet_reaches_through_it(
    clinician_for_patient_a: Client, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    from viewer.services import identity

    middle = ("EMPI-1", "ENTERPRISE")  # stored nowhere: the enterprise's own number
    identity.link(_identity(patient_a), middle, source="hl7", user_id="hl7:ADT")
    identity.link(middle, _identity(patient_b), source="hl7", user_id="hl7:ADT")
    assert statuses(clinician_for_patient_a, patient_b) == {200}


def test_a_shared_name_never_widens_a_scope(
    clinician_for_patient_a: Client, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    from viewer.models import Patient, Study

    name = Study.objects.get(study_instance_uid=patient_a.study).patient.patient_name
    Patient.objects.filter(studies__study_instance_uid=patient_b.study).update(patient_name=name)
    assert statuses(clinician_for_patient_a, patient_b) == {404}
