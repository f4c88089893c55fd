"""viewer.auth_backends: the session user is the user Django's ModelBackend would give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.backends import ModelBackend
from django.test import Client
from pydicom.data import get_testdata_file

from viewer.auth_backends import SessionUserBackend

pytestmark = pytest.mark.django_db


def fields_of(user: Any) -> dict[str, Any]:
    return {f.attname: getattr(user, f.attname) for f in user._meta.concrete_fields}


def test_the_session_user_equals_the_orm_user(django_user_model: Any) -> None:
    user = django_user_model.objects.create_user(
        "someone", "someone@example.org", "a-long-test-password", first_name="Ana"
    )
    user.is_staff = True
    user.save()
    ours = SessionUserBackend().get_user(user.pk)
    theirs = ModelBackend().get_user(user.pk)
    assert ours is not None and theirs is not None
    assert fields_of(ours) == fields_of(theirs)
    assert {type(v) for v in fields_of(ours).values()} == {
        type(v) for v in fields_of(theirs).values()
    }
    assert ours._state.db == "default" and not ours._state.adding
    assert ours.is_authenticated and ours.has_usable_password()


def test_missing_and_inactive_users_are_nobody(django_user_model: Any) -> None:
    user = django_user_model.objects.create_user("gone", password="a-long-test-password")
    user.is_active = False
    user.save()
    assert SessionUserBackend().get_user(user.pk) is None
    assert SessionUserBackend().get_user(user.pk + 1000) is None


def test_a_password_change_elsewhere_ends_the_session(radiologist: Any) -> None:
    client = Client()
    assert client.login(username="radiologist", password="a-long-test-password")
    path = get_testdata_file("CT_small.dcm")
    assert path is not None
    data = Path(path).read_bytes()
    ok = client.post("/api/instances", data=data, content_type="application/dicom")
    assert ok.status_code == 200
    radiologist.set_password("another-long-test-password")
    radiologist.save()
    again = client.post("/api/instances", data=data, content_type="application/dicom")
    assert again.status_code == 401
