"""Markup and script in every text tag show as text on every page and stay data in every
answer, under a Content-Security-Policy that allows no inline script (issue 17; the
checklist's #13 and #14).

The study is ``payload_study`` (tests/security/conftest.py: a real CT slice whose every
text attribute holds a payload naming itself), stored through ingest; a measurement on it
is labelled with a payload too. Every page that shows it is fetched the way its users
would (a radiologist's worklist, study and viewer pages; the share-link guest's; the
administrator's admin and audit pages; the IHE IID study list; pages that echo query
parameters) and parsed with ``html.parser``: no element or attribute of a payload may
exist (no inline or foreign script, no event-handler attribute, no ``javascript:`` link,
no svg, iframe or payload image), and the payloads a page shows must be in its text,
character for character. The JSON answers (the API, QIDO-RS, WADO-RS metadata, FHIR, the
audit API) must parse, say JSON in their Content-Type with ``nosniff``, and hold the
payloads as strings. Every response carries a policy whose ``script-src`` has neither
``'unsafe-inline'`` nor ``'unsafe-eval'``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from django.test import Client

from tests.conftest import client_for
from tests.security.conftest import LABEL, NAMED, PayloadStudy, label_measurement
from tests.viewer.api.test_share_routes import body_of
from viewer.models import AuditEvent, Instance, Patient

pytestmark = pytest.mark.django_db

# Elements no page of Loupe has of its own: one in a page came from data. (The admin's
# theme icons are inline svg with a class; a payload's svg has none.)
FOREIGN_ELEMENTS = {"iframe", "object", "embed", "frame", "frameset", "math", "base"}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "poster"}
JSON_TYPES = ("application/json", "application/dicom+json", "application/fhir+json")


class Markup(HTMLParser):
    """What a browser would build from a page: its elements, attributes and text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.text: list[str] = []
        self._script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in FOREIGN_ELEMENTS or (tag == "svg" and not attributes.get("class")):
            self.problems.append(f"a <{tag}> element {attributes}")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"an event handler {name}={value!r} on <{tag}>")
            if name in URL_ATTRIBUTES and (value or "").strip().lower().startswith(
                ("javascript:", "data:text/html", "vbscript:")
            ):
                self.problems.append(f"<{tag} {name}={value!r}>")
        if tag == "img" and (attributes.get("src") or "").strip() in ("x", ""):
            self.problems.append(f"an image from data: {attributes}")
        if tag == "script":
            self._script = attributes
            source = attributes.get("src")
            if source is not None and (not source.startswith("/") or source.startswith("//")):
                self.problems.append(f"a script from another origin {source!r}")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "script":
            self._script = None

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            kind = (self._script.get("type") or "").lower()
            if self._script.get("src") is None and data.strip() and kind != "application/json":
                self.problems.append(f"an inline script {data[:80]!r}")
            return
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        if "script" in data.lower() or "alert(" in data:
            self.problems.append(f"a comment holding markup {data[:80]!r}")


def parsed(response: Any) -> Markup:
    page = Markup()
    page.feed(body_of(response).decode("utf-8"))
    page.close()
    return page


def script_policy(response: Any) -> list[str]:
    """The script-src of the response's policy (default-src where it has none)."""
    header = response.get("Content-Security-Policy", "")
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives.get("script-src", directives.get("default-src", []))


def check_policy(url: str, response: Any) -> None:
    assert response.get("Content-Security-Policy"), f"{url}: no Content-Security-Policy"
    sources = script_policy(response)
    assert sources, f"{url}: the policy restricts no script"
    for bad in ("'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"):
        assert bad not in sources, f"{url}: script-src allows {bad}"
    assert response.get("X-Content-Type-Options") == "nosniff", url


def check_page(url: str, response: Any, shows: tuple[str, ...] = ()) -> str:
    """A page: HTML, its policy, no payload as markup, the ``shows`` payloads as text."""
    assert response.status_code == 200, (url, response.status_code)
    assert response["Content-Type"].startswith("text/html"), url
    check_policy(url, response)
    page = parsed(response)
    assert not page.problems, (url, page.problems)
    text = "".join(page.text)
    for keyword in shows:
        assert NAMED[keyword] in text, f"{url}: the {keyword} payload is not shown as text"
    return text


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def check_json(url: str, response: Any, holds: tuple[str, ...] = ()) -> Any:
    """A JSON answer: parses, says JSON, nosniff, the ``holds`` payloads as strings."""
    assert response.status_code == 200, (url, response.status_code, body_of(response)[:300])
    assert response["Content-Type"].split(";")[0].strip() in JSON_TYPES, (
        url,
        response["Content-Type"],
    )
    check_policy(url, response)
    document = json.loads(body_of(response))
    strings = list(strings_in(document))
    for payload in holds:
        assert any(payload in s for s in strings), f"{url}: {payload!r} is not a string in it"
    return document


@pytest.fixture
def measured(radiologist: Any, payload_study: PayloadStudy) -> dict[str, Any]:
    """The payload study with a length measurement labelled with a payload."""
    client = client_for(radiologist)
    response = label_measurement(client, payload_study, LABEL, [[5, 5], [40, 40]])
    return {"client": client, "measurement": str(response.json()["id"])}


def test_the_radiologists_pages_show_every_payload_as_text(
    measured: dict[str, Any], payload_study: PayloadStudy
) -> None:
    client: Client = measured["client"]
    uid = payload_study.study
    listed = ("PatientName", "PatientID", "StudyDescription", "AccessionNumber")
    check_page("/", client.get("/"), shows=listed)
    check_page(
        f"/studies/{uid}/",
        client.get(f"/studies/{uid}/"),
        shows=(*listed, "SeriesDescription", "BodyPartExamined"),
    )
    check_page(f"/viewer/{uid}/", client.get(f"/viewer/{uid}/"))
    check_page("/upload/", client.get("/upload/"))


def test_query_parameters_echoed_on_pages_stay_text(
    measured: dict[str, Any], payload_study: PayloadStudy
) -> None:
    client: Client = measured["client"]
    hostile = NAMED["PatientID"]
    query = urlencode(
        {
            "name": NAMED["PatientName"],
            "patient_id": hostile,
            "accession": NAMED["AccessionNumber"],
            "modality": '"><svg onload=1>',
            "sort": hostile,
            "date_from": hostile,
            "page": hostile,
        }
    )
    response = client.get(f"/?{query}")
    check_page("/?<payloads>", response)
    # A page that names what it could not find, with the request's own path in it.
    for url in (f"/viewer/{quote(hostile, safe='')}/", f"/studies/{quote(hostile, safe='')}/"):
        answer = client.get(url, HTTP_ACCEPT="text/html")
        assert answer.status_code in (400, 404), url
        check_policy(url, answer)
        assert not parsed(answer).problems, url
    login = Client().get(f"/login/?{urlencode({'next': 'javascript:alert(1)'})}")
    check_page("/login/?next=javascript:", login)


def test_share_pages_show_the_payloads_as_text(
    measured: dict[str, Any], payload_study: PayloadStudy
) -> None:
    creator: Client = measured["client"]
    made = creator.post(
        "/api/shares",
        {"study_instance_uids": [payload_study.study], "live": True},
        content_type="application/json",
    )
    assert made.status_code == 201, made.content
    check_page("/shares/", creator.get("/shares/"))
    guest = Client()
    opened = guest.get(made.json()["url"].split("testserver", 1)[-1], HTTP_ACCEPT="text/html")
    assert opened.status_code == 302
    landing = opened["Location"]
    check_page(landing, guest.get(landing))
    uid = payload_study.study
    check_page(f"/studies/{uid}/", guest.get(f"/studies/{uid}/"), shows=("SeriesDescription",))
    worklist = guest.get("/")
    if worklist.status_code == 200:  # a share session's worklist lists the link's studies
        check_page("/ (share)", worklist)
    check_json(
        f"/api/studies/{uid}/measurements (share)",
        guest.get(f"/api/studies/{uid}/measurements"),
        holds=(LABEL,),
    )


def test_admin_and_audit_pages_show_the_payloads_as_text(
    administrator: Any, measured: dict[str, Any], payload_study: PayloadStudy
) -> None:
    admin = client_for(administrator)
    instance = Instance.objects.select_related("series__study__patient").get(
        sop_instance_uid=payload_study.instance
    )
    series = instance.series
    study = series.study
    patient: Patient = study.patient
    pages = [
        "/admin/",
        "/admin/viewer/patient/",
        f"/admin/viewer/patient/?{urlencode({'q': NAMED['PatientName']})}",
        f"/admin/viewer/patient/{patient.pk}/change/",
        "/admin/viewer/study/",
        f"/admin/viewer/study/?{urlencode({'q': NAMED['AccessionNumber']})}",
        f"/admin/viewer/study/{study.pk}/change/",
        "/admin/viewer/series/",
        f"/admin/viewer/series/{series.pk}/change/",
        "/admin/viewer/instance/",
        f"/admin/viewer/instance/{instance.pk}/change/",
        f"/admin/viewer/patient/{patient.pk}/history/",
        "/admin/viewer/auditevent/",
        f"/admin/viewer/auditevent/?{urlencode({'q': NAMED['PatientID']})}",
    ]
    events = AuditEvent.objects.filter(patient_id=patient.patient_id)
    assert events.exists()  # the measurement was an access to the payload patient
    pages += [f"/admin/viewer/auditevent/{event.pk}/change/" for event in events[:5]]
    shown = ""
    for url in pages:
        shown += check_page(url, admin.get(url))
    # The patient's name and ID are in the changelists as text.
    assert NAMED["PatientName"] in shown and NAMED["PatientID"] in shown
    trail = f"/api/audit/patients/{quote(patient.patient_id, safe='')}"
    check_json(trail, admin.get(trail), holds=(NAMED["PatientID"],))
    fhir_trail = f"{trail}?format=fhir"
    check_json(fhir_trail, admin.get(fhir_trail), holds=(NAMED["PatientID"],))


def test_the_iid_study_list_shows_the_payloads_as_text(
    measured: dict[str, Any], payload_study: PayloadStudy
) -> None:
    client: Client = measured["client"]
    asked = client.get(
        "/ehrlaunch/IHEInvokeImageDisplay",
        {"requestType": "PATIENT", "patientID": NAMED["PatientID"], "keyImagesOnly": "true"},
    )
    assert asked.status_code == 303, asked.content[:300]
    listed = client.get(asked["Location"])
    check_page("/ehrlaunch/iid/continue", listed, shows=("StudyDescription",))


def test_json_answers_hold_the_payloads_as_strings(
    measured: dict[str, Any], payload_study: PayloadStudy
) -> None:
    client: Client = measured["client"]
    s, se, i = payload_study.study, payload_study.series, payload_study.instance
    named = NAMED
    check_json(
        f"/api/studies/{s}",
        client.get(f"/api/studies/{s}"),
        holds=(named["PatientName"], named["PatientID"], named["StudyDescription"]),
    )
    check_json(
        "/api/studies/…/instances/…",
        client.get(f"/api/studies/{s}/series/{se}/instances/{i}"),
    )
    check_json(
        f"/api/studies/{s}/measurements",
        client.get(f"/api/studies/{s}/measurements"),
        holds=(LABEL,),
    )
    check_json(
        "/api/measurements/<id>",
        client.get(f"/api/measurements/{measured['measurement']}"),
        holds=(LABEL,),
    )
    check_json(f"/api/studies/{s}/priors", client.get(f"/api/studies/{s}/priors"))
    check_json(
        f"/api/studies/{s}/hanging-protocols", client.get(f"/api/studies/{s}/hanging-protocols")
    )
    dicomweb = [
        (f"/dicom-web/studies?StudyInstanceUID={s}", (named["PatientID"], named["PatientName"])),
        (f"/dicom-web/studies/{s}/series", (named["SeriesDescription"],)),
        (f"/dicom-web/studies/{s}/instances", ()),
        (f"/dicom-web/studies/{s}/metadata", (named["InstitutionName"], named["ProtocolName"])),
        (f"/dicom-web/studies/{s}/series/{se}/instances/{i}/metadata", (named["OperatorsName"],)),
    ]
    for url, holds in dicomweb:
        check_json(url, client.get(url, HTTP_ACCEPT="application/dicom+json"), holds=holds)
    check_json(
        f"/fhir/ImagingStudy/{s}",
        client.get(f"/fhir/ImagingStudy/{s}", HTTP_ACCEPT="application/fhir+json"),
        holds=(named["StudyDescription"],),
    )
    check_json(
        "/fhir/ImagingStudy",
        client.get("/fhir/ImagingStudy", HTTP_ACCEPT="application/fhir+json"),
    )


def test_every_html_response_has_a_policy_without_inline_script(
    measured: dict[str, Any], payload_study: PayloadStudy
) -> None:
    """Beyond the pages above: the sign-in, error and launch pages, anyone's."""
    nobody = Client()
    for url in ("/login/", "/ehrlaunch/launch", "/s/" + "Q" * 43, "/viewer/1.2.3/", "/dicom-web/"):
        response = nobody.get(url, HTTP_ACCEPT="text/html")
        assert response.status_code < 500, url
        check_policy(url, response)
        if response["Content-Type"].startswith("text/html"):
            assert not parsed(response).problems, url


def test_the_checker_finds_every_payload_that_became_markup() -> None:
    """The parser above is the test's eye: each payload written into a page unescaped (as
    a template with ``|safe`` would) is found, and escaped it is text."""
    from django.utils.html import escape

    for keyword, payload in NAMED.items():
        if keyword in ("StudyID",):  # text in any context: no markup to find
            continue
        raw, escaped = Markup(), Markup()
        raw.feed(f'<p>{payload}</p><input value="{payload}"><a href="{payload}">x</a>')
        escaped.feed(f'<p>{escape(payload)}</p><input value="{escape(payload)}">')
        assert raw.problems, keyword
        assert not escaped.problems, keyword
        assert payload in "".join(escaped.text), keyword
