"""De-identified share links (issue 15): no patient name, ID, birth date, accession or
institution in any response body the share's pages load (``viewer.services.deidentify``).

The study is patient A's chest CT from the shared corpus, stored rewritten with a name, an
ID, a birth date, an accession, an institution and other identifying attributes set (the
corpus's own headers leave the birth date and institution empty), the identifiers also
written into the study and series descriptions and into a measurement's label. A fresh
client opens the link and fetches what the viewer's page and its scripts load
(static/viewer/js/api.js: the study, priors, hanging protocols, measurements, every
rendered frame, tile and thumbnail URL the study's JSON names), the other pages of the
session, the measurement exports and the refused routes; no body holds an identifier.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from pydicom.uid import generate_uid

from tests.conftest import client_for
from tests.factories import StoredStudy, changed, corpus_files
from viewer.models import Instance
from viewer.services import deidentify, ingest

pytestmark = pytest.mark.django_db

NAME = "Quaresma^Benedita^Xavier"
PATIENT_ID = "QX-7731-PHI"
ISSUER = "ZETAMRN"
BIRTH_DATE = "19580314"
ACCESSION = "ACQ99887766"
INSTITUTION = "Zimmerwald Hospital"
ADDRESS = "Lindenweg 12, Zimmerwald"
REFERRER = "Vanterpool^Odile"
PERFORMER = "Okonkwo^Tobenna"
OPERATOR = "Fairweather^Ines"
OTHER_ID = "OPX-55501"

IDENTIFYING = {
    "PatientName": NAME,
    "PatientID": PATIENT_ID,
    "IssuerOfPatientID": ISSUER,
    "PatientBirthDate": BIRTH_DATE,
    "AccessionNumber": ACCESSION,
    "InstitutionName": INSTITUTION,
    "InstitutionAddress": ADDRESS,
    "ReferringPhysicianName": REFERRER,
    "PerformingPhysicianName": PERFORMER,
    "OperatorsName": OPERATOR,
    "OtherPatientIDs": OTHER_ID,
    # Free text that holds identifiers (cleaned: PS3.15 E.3.5 Clean Descriptors).
    "StudyDescription": f"CT CHEST for QUARESMA, {PATIENT_ID} ({ACCESSION})",
    "SeriesDescription": f"LUNG at {INSTITUTION} born 1958-03-14",
}


def phi_forms() -> list[str]:
    """Every spelling of the identifiers that must not appear: the PN as stored and as
    shown, each component, the dates in both forms; compared in lower case."""
    family, given, middle = NAME.split("^")
    forms = [
        NAME,
        f"{family}, {given}",
        f"{family}, {given} {middle}",
        family,
        given,
        middle,
        PATIENT_ID,
        ISSUER,
        BIRTH_DATE,
        f"{BIRTH_DATE[:4]}-{BIRTH_DATE[4:6]}-{BIRTH_DATE[6:]}",
        ACCESSION,
        INSTITUTION,
        ADDRESS,
        OTHER_ID,
    ]
    for person in (REFERRER, PERFORMER, OPERATOR):
        forms += [person, *person.split("^")]
    return sorted({f.lower() for f in forms})


def leaks(body: bytes) -> list[str]:
    text = body.decode("utf-8", errors="replace").lower()
    return [form for form in phi_forms() if form in text]


def store_identified(shared_dicom: Any) -> tuple[StoredStudy, str]:
    """Patient A's CT (three slices) with the identifiers set, and one more object in a
    series of its own whose pixels say they carry the identity (Burned In Annotation)."""
    first: Instance | None = None
    for path in corpus_files(shared_dicom, "ct-series", 3):
        result = ingest.ingest_bytes(changed(path.read_bytes(), **IDENTIFYING), source=path.name)
        assert result.ok, result.as_dict()
        if first is None:
            first = Instance.objects.select_related("series__study").get(
                sop_instance_uid=result.sop_instance_uid
            )
    assert first is not None
    burned_uid = generate_uid()
    burned = changed(
        corpus_files(shared_dicom, "ct-series", 1)[0].read_bytes(),
        **{
            **IDENTIFYING,
            "SeriesInstanceUID": generate_uid(),
            "SOPInstanceUID": burned_uid,
            "SeriesNumber": 99,
            "SeriesDescription": "SCREEN CAPTURE",
            "BurnedInAnnotation": "YES",
        },
    )
    assert ingest.ingest_bytes(burned, source="burned").ok
    stored = StoredStudy(
        first.series.study.study_instance_uid,
        first.series.series_instance_uid,
        first.sop_instance_uid,
    )
    return stored, burned_uid


@pytest.fixture
def identified(shared_dicom: Any) -> tuple[StoredStudy, str]:
    return store_identified(shared_dicom)


@pytest.fixture
def radiologist_client(radiologist: Any) -> Client:
    return client_for(radiologist)


def share(client: Client, study: StoredStudy, *, deidentify_it: bool) -> Client:
    """A link for ``study`` made by ``client``, opened by a fresh client (its session)."""
    created = client.post(
        "/api/shares",
        {"study_instance_uids": [study.study], "deidentify": deidentify_it},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    guest = Client()
    opened = guest.get(created.json()["url"].split("testserver", 1)[-1], HTTP_ACCEPT="text/html")
    assert opened.status_code == 302, opened.content
    assert opened.headers["Location"] == f"/viewer/{study.study}/"
    return guest


def measure(client: Client, study: StoredStudy) -> None:
    """A measurement whose label names the patient (made before the link)."""
    response = client.post(
        "/api/measurements",
        {
            "study_instance_uid": study.study,
            "series_instance_uid": study.series,
            "sop_instance_uid": study.instance,
            "kind": "length",
            "points": [[10, 10], [60, 60]],
            "label": f"nodule, Mrs Quaresma {PATIENT_ID}",
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content


def page_requests(guest: Client, study: StoredStudy) -> list[tuple[str, Any]]:
    """GET every URL the share's pages load (the viewer page, then what its scripts ask
    for: static/viewer/js/api.js and main.js), and the session's other pages; each URL
    with its response."""
    uid = study.study
    answers: list[tuple[str, Any]] = []

    def get(url: str, **headers: Any) -> Any:
        response = guest.get(url, **headers)
        answers.append((url, response))
        return response

    assert get(f"/viewer/{uid}/", HTTP_ACCEPT="text/html").status_code == 200
    metadata = get(f"/api/studies/{uid}", HTTP_ACCEPT="application/json")
    assert metadata.status_code == 200
    get(f"/api/studies/{uid}/priors", HTTP_ACCEPT="application/json")
    get(f"/api/studies/{uid}/hanging-protocols", HTTP_ACCEPT="application/json")
    get(f"/api/studies/{uid}/measurements", HTTP_ACCEPT="application/json")
    get(f"/api/studies/{uid}/measurements?format=json")
    get(f"/api/studies/{uid}/measurements?format=csv")
    get(f"/dicom-web/studies/{uid}/thumbnail")
    for series in metadata.json()["series"]:
        get(series["thumbnail"])
        for instance in series["instances"]:
            base = f"/api/studies/{uid}/series/{series['series_instance_uid']}"
            get(f"{base}/instances/{instance['sop_instance_uid']}")
            urls = instance["urls"]
            get(urls["thumbnail"])
            for frame in range(1, max(instance["number_of_frames"], 1) + 1):
                rendered = urls["rendered"].replace("{frame}", str(frame))
                get(f"{rendered}?accept=image/png")
                get(f"{rendered}?accept=image/png&window=40,400&viewport=256,256")
                for level in instance["tiles"]["levels"]:
                    tile = (
                        urls["tile"]
                        .replace("{frame}", str(frame))
                        .replace("{level}", str(level["level"]))
                        .replace("{column}", "0")
                        .replace("{row}", "0")
                    )
                    get(f"{tile}?accept=image/png")
    # The session's other pages, and an error page.
    get("/", HTTP_ACCEPT="text/html")
    get(f"/?name={NAME.split('^')[0]}", HTTP_ACCEPT="text/html")
    get(f"/studies/{uid}/", HTTP_ACCEPT="text/html")
    get("/shares/", HTTP_ACCEPT="text/html")
    get(f"/viewer/{generate_uid()}/", HTTP_ACCEPT="text/html")
    get(
        f"/api/studies/{uid}/series/{study.series}/instances/{study.instance}/file",
        HTTP_ACCEPT="application/dicom",
    )
    # The SR export is stored, so refused to every share (read-only); its refusal says so.
    report = guest.post(f"/api/studies/{uid}/measurements/sr")
    assert report.status_code == 403
    answers.append((f"POST /api/studies/{uid}/measurements/sr", report))
    return answers


def test_a_deidentified_share_carries_no_identifier_in_any_response_body(
    radiologist_client: Client, identified: tuple[StoredStudy, str]
) -> None:
    study, _ = identified
    measure(radiologist_client, study)
    guest = share(radiologist_client, study, deidentify_it=True)
    answers = page_requests(guest, study)
    assert len(answers) > 20
    for url, response in answers:
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert not leaks(body), (url, response.status_code, leaks(body))
        assert response.status_code in (200, 403, 404), (url, response.status_code)

    by_url = dict(answers)
    metadata = by_url[f"/api/studies/{study.study}"].json()
    assert metadata["deidentified"] is True
    assert metadata["patient"]["patient_name_display"] == deidentify.PLACEHOLDER_NAME
    assert metadata["patient"]["patient_birth_date"] is None
    assert metadata["accession_number"] == ""
    # The descriptions are cleaned, not dropped: what is not an identifier stays.
    assert metadata["study_description"].startswith("CT CHEST for [removed]")
    described = {s["series_description"] for s in metadata["series"]}
    assert "LUNG at [removed] born [removed]" in described
    measured = by_url[f"/api/studies/{study.study}/measurements"].json()
    assert measured[0]["label"] == "nodule, Mrs [removed] [removed]"
    assert measured[0]["author"]["username"] == ""
    assert (
        "radiologist"
        not in by_url[f"/api/studies/{study.study}/measurements?format=csv"].content.decode()
    )
    # The original object is refused, saying why.
    download = by_url[
        f"/api/studies/{study.study}/series/{study.series}/instances/{study.instance}/file"
    ]
    assert download.status_code == 403
    assert download.json()["code"] == "deidentified_share"
    assert "this share link is de-identified" in download.json()["message"]
    # The images are served (no text is drawn into them).
    rendered = [r for u, r in answers if "/rendered" in u and "SCREEN" not in u]
    assert rendered and any(r.status_code == 200 for r in rendered)
    # The worklist lists the study, anonymously; a name filter is not applied (no oracle).
    worklist = by_url["/"].content.decode()
    assert study.study in worklist and "Anonymous" in worklist
    assert study.study in by_url[f"/?name={NAME.split('^')[0]}"].content.decode()


def test_an_image_with_burned_in_annotation_is_refused_in_a_deidentified_share_only(
    radiologist_client: Client, identified: tuple[StoredStudy, str]
) -> None:
    study, burned_uid = identified
    burned = Instance.objects.select_related("series").get(sop_instance_uid=burned_uid)
    base = f"/dicom-web/studies/{study.study}/series/{burned.series.series_instance_uid}"
    routes = [
        f"{base}/thumbnail",
        f"{base}/instances/{burned_uid}/thumbnail",
        f"{base}/instances/{burned_uid}/rendered",
        f"{base}/instances/{burned_uid}/frames/1/rendered",
        f"{base}/instances/{burned_uid}/frames/1/tiles/0/0/0",
    ]
    guest = share(radiologist_client, study, deidentify_it=True)
    for route in routes:
        refused = guest.get(route)
        assert refused.status_code == 403, route
        assert refused.json()["code"] == "burned_in_annotation"
        assert "Burned In Annotation" in refused.json()["message"]
    # The other images of the study are shown.
    assert guest.get(f"/dicom-web/studies/{study.study}/thumbnail").status_code == 200
    identified_guest = share(radiologist_client, study, deidentify_it=False)
    for route in routes:
        assert identified_guest.get(route).status_code == 200, route


def test_a_share_that_is_not_deidentified_still_shows_the_identity(
    radiologist_client: Client, identified: tuple[StoredStudy, str]
) -> None:
    """The control: the same requests through an ordinary share do carry the identity
    (so the test above can fail)."""
    study, _ = identified
    measure(radiologist_client, study)
    guest = share(radiologist_client, study, deidentify_it=False)
    answers = dict(page_requests(guest, study))
    metadata = answers[f"/api/studies/{study.study}"]
    assert NAME in metadata.content.decode()
    assert metadata.json()["accession_number"] == ACCESSION
    assert metadata.json()["patient"]["patient_birth_date"] == "1958-03-14"
    assert "Quaresma, Benedita Xavier" in answers[f"/studies/{study.study}/"].content.decode()
    assert (
        PATIENT_ID
        in answers[f"/api/studies/{study.study}/measurements?format=csv"].content.decode()
    )
    download = answers[
        f"/api/studies/{study.study}/series/{study.series}/instances/{study.instance}/file"
    ]
    assert download.status_code == 200
    assert INSTITUTION.encode() in b"".join(download.streaming_content)


def test_identifiers_are_cleaned_from_free_text_in_every_spelling() -> None:
    ids = deidentify.Identifiers([NAME, PATIENT_ID, BIRTH_DATE, "Li^Wu", "X"])
    assert ids.clean("quaresma BENEDITA xavier") == "[removed]"  # the whole name at once
    assert ids.clean("Xavier, seen by Quaresma") == "[removed], seen by [removed]"
    assert ids.clean("born 14.03.1958 / 1958-03-14 / 19580314") == (
        "born [removed] / [removed] / [removed]"
    )
    assert ids.clean(f"id {PATIENT_ID.lower()}") == "id [removed]"
    # Short components only as whole words; one character never.
    assert ids.clean("LIVER Li X-ray wu") == "LIVER [removed] X-ray [removed]"
    assert deidentify.Identifiers([]).clean("kept") == "kept"
