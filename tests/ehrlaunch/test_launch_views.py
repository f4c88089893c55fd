"""A signed EHR launch over HTTP: the session it opens, what that session may see, the
embedding policy, and what a clinician sees when a launch is refused.

Personas: a clinician launched for patient A (the 99-slice CT's patient, C3N-00247), a
radiologist, and a clinician who logs in directly. Patient B is the MR series' patient.
"""

from __future__ import annotations

import html
import time
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from ehrlaunch.models import EhrSystem
from tests.factories import StoredStudy, register_ehr, signed_launch
from viewer.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def ehr() -> EhrSystem:
    return register_ehr()


def launched(client: Client, token: str) -> Any:
    return client.get("/ehrlaunch/launch", {"launch": token}, HTTP_ACCEPT="text/html")


def test_a_launch_opens_the_study_with_no_login(
    client: Client, ehr: EhrSystem, patient_a: StoredStudy
) -> None:
    response = launched(client, signed_launch(patient_a.study))
    assert response.status_code == 303
    assert response["Location"] == f"/viewer/{patient_a.study}/"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Cache-Control"] == "no-store"
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert client.session["_auth_user_id"]
    user = User.objects.get(username=f"ehr{ehr.pk}:dr-17")
    assert not user.has_usable_password()


def test_a_session_launched_for_patient_a_sees_only_patient_a_everywhere(
    client: Client, ehr: EhrSystem, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    launched(client, signed_launch(patient_a.study))
    for route in patient_a.routes():
        assert client.get(route).status_code == 200, route
    for route in patient_b.routes():
        response = client.get(route)
        assert response.status_code == 404, route
    # The same 404 for patient B's study as for a study that does not exist at all.
    unknown = client.get("/api/studies/1.2.3.4.5.6.7")
    forbidden = client.get(f"/api/studies/{patient_b.study}")
    assert unknown.json() == forbidden.json() == {"code": "not_found", "message": "no such study"}
    worklist = client.get("/").content.decode()
    assert patient_a.study in worklist and patient_b.study not in worklist
    assert 'href="/upload/"' not in worklist
    # A launched clinician views; she does not store.
    assert client.post("/api/instances", b"x", content_type="application/dicom").status_code == 403


def test_a_radiologist_launch_sees_every_study(
    client: Client, ehr: EhrSystem, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    launched(client, signed_launch(patient_a.study, role="RAD"))
    for study in (patient_a, patient_b):
        assert {client.get(route).status_code for route in study.routes()} == {200}


def test_a_new_launch_replaces_the_earlier_patient(
    client: Client, ehr: EhrSystem, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    launched(client, signed_launch(patient_a.study))
    response = launched(client, signed_launch(patient_b.study, patient="crlab"))
    assert response["Location"] == f"/viewer/{patient_b.study}/"
    assert client.get(f"/api/studies/{patient_b.study}").status_code == 200
    assert client.get(f"/api/studies/{patient_a.study}").status_code == 404


def test_a_launch_without_a_study_lands_on_the_patients_worklist(
    client: Client, ehr: EhrSystem, patient_a: StoredStudy
) -> None:
    response = launched(client, signed_launch())
    assert response["Location"] == "/"
    worklist = client.get("/").content.decode()
    assert patient_a.study in worklist  # the launched patient's studies, ready to open


def test_a_launch_may_come_as_a_form_post(
    client: Client, ehr: EhrSystem, patient_a: StoredStudy
) -> None:
    checked = Client(enforce_csrf_checks=True)  # cross-site from the EHR: no CSRF token
    response = checked.post("/ehrlaunch/launch", {"launch": signed_launch(patient_a.study)})
    assert response.status_code == 303
    assert response["Location"] == f"/viewer/{patient_a.study}/"
    assert response["Referrer-Policy"] == "no-referrer"
    assert checked.get(response["Location"]).status_code == 200
    assert checked.get(f"/api/studies/{patient_a.study}").status_code == 200


@pytest.mark.parametrize(
    ("overrides", "status", "says"),
    [
        ({"exp": int(time.time()) - 60, "iat": int(time.time()) - 180}, 401, "has expired"),
        ({"aud": "other-app"}, 403, "addressed to another application"),
        ({"iss": "https://unknown.example"}, 403, "not registered with Loupe"),
        ({"role": "porter"}, 403, "no Loupe role"),
    ],
)
def test_refused_launches_say_what_happened_and_show_no_patient(
    client: Client,
    ehr: EhrSystem,
    patient_a: StoredStudy,
    overrides: dict[str, Any],
    status: int,
    says: str,
) -> None:
    response = launched(client, signed_launch(patient_a.study, **overrides))
    assert response.status_code == status
    html = response.content.decode()
    assert says in html
    assert "open the images again from the patient" in html or "administrator" in html
    assert "C3N-00247" not in html and patient_a.study not in html
    assert "_auth_user_id" not in client.session
    assert client.get(f"/api/studies/{patient_a.study}").status_code == 401


def test_a_tampered_launch_is_refused(
    client: Client, ehr: EhrSystem, patient_a: StoredStudy
) -> None:
    header, _, signature = signed_launch(patient_a.study).split(".")
    payload = signed_launch(patient_a.study, role="RAD").split(".")[1]
    response = launched(client, f"{header}.{payload}.{signature}")
    assert response.status_code == 403
    assert "signature does not match" in response.content.decode()


def test_a_replayed_launch_is_refused_and_ends_the_session(
    client: Client, ehr: EhrSystem, patient_a: StoredStudy
) -> None:
    token = signed_launch(patient_a.study)
    assert launched(client, token).status_code == 303
    response = launched(client, token)
    assert response.status_code == 403
    assert "already used" in response.content.decode()
    assert client.get(f"/api/studies/{patient_a.study}").status_code == 401


def test_a_launch_whose_study_belongs_to_another_patient_is_refused(
    client: Client, ehr: EhrSystem, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    response = launched(client, signed_launch(patient_b.study))  # patient A, B's study
    assert response.status_code == 403
    assert "belongs to another patient" in response.content.decode()
    assert client.get(f"/api/studies/{patient_b.study}").status_code == 401
    # Refused before anyone was logged in: no login record, no account for the EHR user.
    assert not AuditEvent.objects.filter(event_id="110114", outcome=0).exists()
    assert not User.objects.filter(username__startswith=f"ehr{ehr.pk}:").exists()


def test_embedding_policy_names_the_registered_ehrs_on_embeddable_pages_only(
    client: Client, ehr: EhrSystem, patient_a: StoredStudy
) -> None:
    launched(client, signed_launch(patient_a.study))
    viewer = client.get(f"/viewer/{patient_a.study}/")
    policy = viewer["Content-Security-Policy"]
    assert "frame-ancestors https://ehr.example.org https://ehr2.example.org" in policy
    assert "X-Frame-Options" not in viewer
    for page in ("/login/", "/upload/", "/admin/login/"):
        response = Client().get(page)
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"], page
        assert response["X-Frame-Options"] == "DENY", page


def test_without_a_registered_ehr_nothing_may_frame_loupe(
    logged_in_client: Client, patient_a: StoredStudy
) -> None:
    viewer = logged_in_client.get(f"/viewer/{patient_a.study}/")
    assert "frame-ancestors 'none'" in viewer["Content-Security-Policy"]
    assert viewer["X-Frame-Options"] == "DENY"


def test_session_and_csrf_cookies_work_in_a_third_party_frame(
    client: Client, ehr: EhrSystem, patient_a: StoredStudy
) -> None:
    response = launched(client, signed_launch(patient_a.study))
    cookie = response.cookies["sessionid"].OutputString()
    for attribute in ("SameSite=None", "Secure", "HttpOnly", "Partitioned"):
        assert attribute in cookie
    page = client.get(f"/viewer/{patient_a.study}/")
    csrf = client.get("/login/").cookies.get("csrftoken") or page.cookies.get("csrftoken")
    assert csrf is not None and "Partitioned" in csrf.OutputString()


def test_a_clinician_who_logs_in_directly_sees_nothing(
    client: Client, django_user_model: Any, patient_a: StoredStudy
) -> None:
    user = django_user_model.objects.create_user("clin", password="a-long-test-password")
    user.groups.add(Group.objects.get_or_create(name="clinician")[0])
    client.force_login(user)
    page = client.get("/").content.decode()
    assert "Open Loupe from the patient" in page and patient_a.study not in page
    assert client.get(f"/api/studies/{patient_a.study}").status_code == 404


def test_an_sso_account_without_a_role_sees_nothing(
    client: Client, django_user_model: Any, patient_a: StoredStudy
) -> None:
    user = django_user_model.objects.create_user("nobody")
    user.set_unusable_password()
    user.save()
    client.force_login(user)
    assert "no role in Loupe" in client.get("/").content.decode()
    assert client.get(f"/dicom-web/studies/{patient_a.study}/thumbnail").status_code == 404


# --- IHE Invoke Image Display ---------------------------------------------------------------


def test_iid_study_request_opens_the_viewer_for_a_radiologist(
    logged_in_client: Client, patient_a: StoredStudy
) -> None:
    response = logged_in_client.get(
        "/ehrlaunch/IHEInvokeImageDisplay", {"requestType": "STUDY", "studyUID": patient_a.study}
    )
    assert response.status_code == 303 and response["Location"] == "/ehrlaunch/iid/continue"
    landing = logged_in_client.get(response["Location"])
    assert landing.status_code == 303 and landing["Location"] == f"/viewer/{patient_a.study}/"


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"keyImagesOnly": "true"}, "Key-image selection is not available in Loupe"),
        ({"viewerType": "IHE_BIR"}, "The viewer type 'IHE_BIR' is not available"),
    ],
)
def test_iid_options_loupe_does_not_offer_are_said_on_the_page(
    logged_in_client: Client, patient_a: StoredStudy, options: dict[str, str], said: str
) -> None:
    response = logged_in_client.get(
        "/ehrlaunch/IHEInvokeImageDisplay",
        {"requestType": "STUDY", "studyUID": patient_a.study, **options},
    )
    page = logged_in_client.get(response["Location"])
    assert page.status_code == 200  # the page, not a redirect: the notice must be read
    text = html.unescape(page.content.decode())
    assert said in text and f"/viewer/{patient_a.study}/" in text


def test_iid_diagnostic_quality_is_met_and_opens_the_viewer(
    logged_in_client: Client, patient_a: StoredStudy
) -> None:
    response = logged_in_client.get(
        "/ehrlaunch/IHEInvokeImageDisplay",
        {"requestType": "STUDY", "studyUID": patient_a.study, "diagnosticQuality": "true"},
    )
    landing = logged_in_client.get(response["Location"])
    assert landing.status_code == 303 and landing["Location"] == f"/viewer/{patient_a.study}/"


def test_iid_patient_request_lists_the_patients_studies_without_the_id_in_the_url(
    logged_in_client: Client, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    response = logged_in_client.get(
        "/ehrlaunch/IHEInvokeImageDisplay",
        {"requestType": "PATIENT", "patientID": "crlab", "modalitiesInStudy": "MR"},
    )
    assert "crlab" not in response["Location"]
    landing = logged_in_client.get(response["Location"])
    assert landing["Location"] == f"/viewer/{patient_b.study}/"
    none = logged_in_client.get(
        "/ehrlaunch/IHEInvokeImageDisplay",
        {"requestType": "PATIENT", "patientID": "crlab", "modalitiesInStudy": "CT"},
    )
    assert "No images found" in logged_in_client.get(none["Location"]).content.decode()


def test_iid_does_not_widen_a_launched_clinicians_scope(
    client: Client, ehr: EhrSystem, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    launched(client, signed_launch(patient_a.study))
    response = client.get(
        "/ehrlaunch/IHEInvokeImageDisplay", {"requestType": "STUDY", "studyUID": patient_b.study}
    )
    page = client.get(response["Location"]).content.decode()
    assert "No images found" in page and patient_b.study not in page


def test_iid_without_a_session_asks_for_login_outside_frames_and_a_popup_inside(
    client: Client, ehr: EhrSystem, patient_a: StoredStudy
) -> None:
    params = {"requestType": "PATIENT", "patientID": "C3N-00247"}
    top = client.get("/ehrlaunch/IHEInvokeImageDisplay", params)
    assert top.status_code == 303
    assert top["Location"].startswith("/login/?next=") and "C3N" not in top["Location"]
    framed = client.get("/ehrlaunch/IHEInvokeImageDisplay", params, HTTP_SEC_FETCH_DEST="iframe")
    assert framed.status_code == 200
    assert 'id="signin"' in framed.content.decode()
    assert "X-Frame-Options" not in framed
    assert "frame-ancestors https://ehr.example.org" in framed["Content-Security-Policy"]


def test_iid_bad_parameters_get_a_page_naming_them(client: Client) -> None:
    response = client.get(
        "/ehrlaunch/IHEInvokeImageDisplay", {"requestType": "STUDY", "studyUID": "../etc"}
    )
    assert response.status_code == 400
    assert "studyUID holds an invalid UID" in response.content.decode()


def test_the_popup_handoff_code_works_once(
    client: Client, logged_in_client: Client, radiologist: Any
) -> None:
    done = logged_in_client.get("/ehrlaunch/popup/done")
    code = done.content.decode().split('data-code="')[1].split('"')[0]
    assert len(code) >= 40
    frame = Client(enforce_csrf_checks=False)
    assert frame.post("/ehrlaunch/handoff", {"code": code}).status_code == 204
    assert frame.session["_auth_user_id"] == str(radiologist.pk)
    again = Client().post("/ehrlaunch/handoff", {"code": code})
    assert again.status_code == 403 and "already used" in again.content.decode()


# --- the audit trail of launches ------------------------------------------------------------


def test_a_launch_is_audited_with_the_ehr_user_and_no_token(
    client: Client, ehr: EhrSystem, patient_a: StoredStudy
) -> None:
    from viewer.models import AuditEvent

    token = signed_launch(patient_a.study)
    launched(client, token)
    client.get(f"/api/studies/{patient_a.study}")
    start = AuditEvent.objects.get(event_id="110100")
    assert start.outcome == 0 and start.channel == "ehr"
    assert start.user_id == f"ehr{ehr.pk}:dr-17" and start.alternative_user_id == "dr-17"
    assert (start.patient_id, start.study_uids) == ("C3N-00247", [patient_a.study])
    login = AuditEvent.objects.get(event_id="110114")
    assert login.channel == "ehr" and login.outcome == 0
    access = AuditEvent.objects.get(event_id="110103")
    assert access.channel == "ehr" and access.alternative_user_id == "dr-17"
    for row in AuditEvent.objects.all():
        assert token not in str(row.__dict__)


def test_a_refused_launch_is_audited_without_trusting_its_claims(
    client: Client, ehr: EhrSystem, patient_a: StoredStudy
) -> None:
    from viewer.models import AuditEvent

    launched(client, signed_launch(patient_a.study, aud="elsewhere"))
    row = AuditEvent.objects.get(event_id="110100")
    assert row.outcome == 4 and row.detail == {"refused": "launch_wrong_audience"}
    assert row.patient_id == "" and row.user_id == ""


def test_a_change_of_role_group_takes_effect_at_once(
    logged_in_client: Client, radiologist: Any, patient_a: StoredStudy
) -> None:
    """Roles are remembered per process for a few seconds; a group change forgets them."""
    assert logged_in_client.get(f"/api/studies/{patient_a.study}").status_code == 200
    radiologist.groups.add(Group.objects.get_or_create(name="clinician")[0])
    assert logged_in_client.get(f"/api/studies/{patient_a.study}").status_code == 404
    radiologist.groups.clear()
    assert logged_in_client.get(f"/api/studies/{patient_a.study}").status_code == 200
