"""Every route Loupe has, asked by someone who may not see the other patient (issue 17).

The routes come from Django's URL resolver (``tests.security.routes``), so a route added
later is swept too; each is filled with patient B's real values (B's brain MR, its series
and instance, a measurement on it, a share link of it, a patient link and an audit row
about B, B's rows in the admin) and requested with every method (GET, HEAD, POST, PUT,
PATCH, DELETE; a method a view does not take is a 405), by three personas:

* nobody (no cookie, no token): a login redirect, 401, 403, 404 or 405 everywhere but the
  routes of ``PUBLIC``, each listed with the reason it answers strangers; those answer
  below 500 with no patient's data in the body;
* a clinician launched from the EHR for patient A (through the real signed launch);
* a tumor-board guest holding a share link of A's CT.

For the last two, a route that names one of B's objects must answer as for an object that
does not exist, or refuse (a login redirect, 401, 403, 404 or 405), and no answer of any
route may carry B's identifiers or UIDs; nothing answers 500. Every answer of every route
carries a Content-Security-Policy whose script-src allows no inline script. The personas
come from other client addresses than the test client's 127.0.0.1 so that the refusals
they cause do not count towards the rate limits (``viewer.ratelimit``) of other tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from pydicom.uid import generate_uid

from tests.conftest import client_for
from tests.factories import PATIENT_B, StoredStudy, register_ehr, signed_launch
from tests.security.routes import METHODS, Route, every_route, resolves_to
from tests.viewer.api.test_share_routes import body_of, measure
from viewer import apitokens
from viewer.models import AuditEvent, Instance, Patient, Series, Study

pytestmark = pytest.mark.django_db

# Routes that answer someone with no session, and why each may. They must still answer
# below 500 and show no patient's data. (A route listed here that the URL conf lacks is
# simply not swept: /healthz and /readyz come with the production profile.)
PUBLIC = {
    "healthz": "the liveness probe: says the process answers, nothing else",
    "readyz": "the readiness probe: names the component that is down, no data",
    "login/": "the sign-in page",
    "logout/": "ends whatever session the browser has; without one, back to the sign-in page",
    "oidc/authenticate/": "starts single sign-on (404 naming that it is off when it is)",
    "oidc/callback/": "the provider's answer: refused unless this browser started the sign-in",
    "admin/login/": "the admin's sign-in page",
    "admin/logout/": "the admin's sign-out: ends whatever session there is",
    "dicom-web/": "the DICOMweb conformance statement (PS3.18 §6.8): capabilities only",
    "fhir/metadata": "the FHIR CapabilityStatement: capabilities only",
    "ehrlaunch/launch": "a launch is its own credential (a signed context); without one, a "
    "page saying why it is refused",
    "ehrlaunch/smart": "the SMART EHR launch: only a registered iss is contacted",
    "ehrlaunch/smart/callback": "refused unless this browser started the SMART launch",
    "ehrlaunch/IHEInvokeImageDisplay": "IHE IID: the request is kept, the browser sent to sign in",
    "ehrlaunch/iid/continue": "refused without a signed-in session and a kept IID request",
    "ehrlaunch/popup/start": "the sign-in popup's first page: on to the sign-in page",
    "ehrlaunch/popup/done": "without a session of one's own, back to popup/start",
    "ehrlaunch/handoff": "redeems a one-time code from the popup: refused without one",
    "s/<str:token>": "a share link: the token is the credential; an unknown one is a 404",
    "s/continue/": "back from signing in for a signed-in share link: nothing without one",
}
REFUSED = {401, 403, 404, 405}
# Parameters that name one of B's objects (so the answer must be a refusal or a 404).
NAMING = {
    "study",
    "study_instance_uid",
    "series",
    "instance",
    "measurement",
    "share",
    "share_id",
    "link",
    "patient_id",
    "object_id",
    "content_type_id",
    "id",
}
SWEEP_ADDRESSES = {"nobody": "198.51.100.1", "clinician": "198.51.100.2", "guest": "198.51.100.3"}


def login_redirect(response: Any) -> bool:
    if response.status_code not in (302, 303):
        return False
    return urlsplit(response["Location"]).path in ("/login/", "/admin/login/")


def markers_of(study: StoredStudy) -> list[str]:
    """What would identify the study's patient or the study in an answer."""
    patient = Patient.objects.get(studies__study_instance_uid=study.study)
    found = [study.study, study.series, study.instance, patient.patient_id]
    family = patient.patient_name.split("^", 1)[0].strip()
    if len(family) >= 4:
        found.append(family)
    return [m for m in found if m]


@dataclass
class World:
    """B's objects, as route parameters, and what would identify A and B."""

    values: dict[str, str]
    a_markers: list[str]
    b_markers: list[str]
    a_share_url: str
    patient_a: StoredStudy
    unknown: dict[str, str] = field(default_factory=dict)  # the same, naming nothing stored
    swept: list[str] = field(default_factory=list)


@pytest.fixture
def world(
    radiologist: Any, administrator: Any, patient_a: StoredStudy, patient_b: StoredStudy
) -> World:
    creator = client_for(radiologist)
    b_measurement = measure(creator, patient_b)
    shares = {}
    for name, study in (("a", patient_a), ("b", patient_b)):
        made = creator.post(
            "/api/shares", {"study_instance_uids": [study.study]}, content_type="application/json"
        )
        assert made.status_code == 201, made.content
        shares[name] = made.json()
    admin = client_for(administrator)
    linked = admin.post(
        "/api/patient-links",
        {
            "patient": {"patient_id": PATIENT_B, "issuer_of_patient_id": ""},
            "other_patient": {"patient_id": "sweep-elsewhere", "issuer_of_patient_id": "OTHER"},
        },
        content_type="application/json",
    )
    assert linked.status_code == 201, linked.content
    link = str(linked.json()["id"])
    ehr = register_ehr()
    token_row, _ = apitokens.issue(radiologist, "sweep")
    b_instance = Instance.objects.select_related("series__study__patient").get(
        sop_instance_uid=patient_b.instance
    )
    b_study = b_instance.series.study
    b_audit = AuditEvent.objects.filter(patient_id=b_study.patient.patient_id).first()
    assert b_audit is not None  # the radiologist's measurement was an access to B
    values = {
        "study": patient_b.study,
        "study_instance_uid": patient_b.study,
        "series": patient_b.series,
        "instance": patient_b.instance,
        "measurement": b_measurement,
        "frame": "1",
        "frames": "1",
        "path": "7FE00010",
        "level": "0",
        "column": "0",
        "row": "0",
        "upstream_name": "pacs",
        "endpoint": "dicomweb-wado-rs",
        "share": shares["b"]["id"],
        "share_id": shares["b"]["id"],
        "token": "Z" * 43,  # an unknown token: a real one is a credential by design
        "link": link,
        "patient_id": PATIENT_B,
        "content_type_id": str(ContentType.objects.get_for_model(Study).pk),
        "object_id": str(b_study.pk),
        "object_id:viewer.patient": str(b_study.patient.pk),
        "object_id:viewer.study": str(b_study.pk),
        "object_id:viewer.series": str(Series.objects.get(series_instance_uid=patient_b.series).pk),
        "object_id:viewer.instance": str(b_instance.pk),
        "object_id:viewer.auditevent": str(b_audit.pk),
        "object_id:viewer.patientlink": link,
        "object_id:viewer.apitoken": str(token_row.pk),
        "object_id:auth.user": str(administrator.pk),
        "object_id:ehrlaunch.ehrsystem": str(ehr.pk),
        "id": str(administrator.pk),
        "app_label": "viewer",
        "url": "viewer/nothing-here/",
        "rest": f"Patient/{PATIENT_B}",
    }
    nothing = {
        "study": generate_uid(),
        "series": generate_uid(),
        "instance": generate_uid(),
        "measurement": "999999999",
        "share": "sh_0000000000000000",
        "link": "999999999",
        "patient_id": "nobody-stored-here",
        "object_id": "999999999",
        "id": "999999999",
    }
    unknown = {
        **values,
        **nothing,
        "study_instance_uid": nothing["study"],
        "share_id": nothing["share"],
        **{key: "999999999" for key in values if key.startswith("object_id:")},
    }
    return World(
        unknown=unknown,
        values=values,
        a_markers=markers_of(patient_a),
        b_markers=markers_of(patient_b),
        a_share_url=shares["a"]["url"].split("testserver", 1)[-1],
        patient_a=patient_a,
    )


def ask(client: Client, method: str, url: str) -> tuple[int, Any, bytes]:
    """One request; the answer's status, the response and its body (an event stream is
    closed unread: it only opens for a live link this session may follow)."""
    if method in ("POST", "PUT", "PATCH"):
        response = client.generic(method, url, b"{}", content_type="application/json")
    else:
        response = client.generic(method, url, HTTP_ACCEPT="*/*")
    if response.streaming and "event-stream" in response.get("Content-Type", ""):
        response.close()
        return response.status_code, response, b""
    return response.status_code, response, body_of(response)


def leaked(body: bytes, markers: list[str], url: str) -> list[str]:
    """The markers in ``body``, but for those the request itself carried in its URL."""
    text = body.decode("utf-8", errors="replace")
    return [m for m in markers if m in text and m not in url]


def policy_problem(response: Any) -> str | None:
    policy = response.get("Content-Security-Policy", "")
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.split()}
    scripts = directives.get("script-src", directives.get("default-src"))
    if not scripts:
        return f"no script-src in its policy ({policy!r})"
    if "'unsafe-inline'" in scripts or "'unsafe-eval'" in scripts:
        return f"its policy lets inline script run ({policy!r})"
    return None


def sweep(
    world: World,
    client: Client,
    *,
    judge: Callable[[Route, str, str, int, Any, bytes], str | None],
    restore: Callable[[], None] = lambda: None,
    still_in: Callable[[], bool] = lambda: True,
) -> list[str]:
    """Every route with every method; the problems ``judge`` found (as lines), and any
    answer without a Content-Security-Policy that forbids inline script."""
    problems = []
    for route in every_route():
        url = route.url(world.values)
        assert resolves_to(route, url), (route.template, url)
        world.swept.append(route.template)
        for method in METHODS:
            status, response, body = ask(client, method, url)
            problem = judge(route, method, url, status, response, body) or policy_problem(response)
            if problem:
                problems.append(f"{method} {url} ({route.template}): {problem}")
            if not still_in():  # a logout, a refused launch: the persona starts again
                restore()
    return problems


def test_with_no_credentials_every_route_refuses_or_is_public_without_data(
    world: World,
) -> None:
    nobody = Client(REMOTE_ADDR=SWEEP_ADDRESSES["nobody"])
    everyone = world.a_markers + world.b_markers

    def judge(
        route: Route, method: str, url: str, status: int, response: Any, body: bytes
    ) -> str | None:
        if status >= 500:
            return f"answered {status}"
        if leaked(body, everyone, url):
            return f"{status} shows {leaked(body, everyone, url)}"
        if route.template in PUBLIC or status in REFUSED or login_redirect(response):
            return None
        return f"answered {status} to nobody (not a login redirect, 401, 403, 404 or 405)"

    problems = sweep(world, nobody, judge=judge)
    assert not problems, "\n".join(problems)
    assert len(world.swept) >= 140, len(world.swept)
    public_swept = [t for t in world.swept if t in PUBLIC]
    assert len(public_swept) >= 15, public_swept


def other_patient_judge(
    world: World, client: Client
) -> Callable[[Route, str, str, int, Any, bytes], str | None]:
    """Below 500, nothing of B; a route naming B's object refuses, or answers with the
    4xx it gives for an object that does not exist (a check of the body before the
    lookup, the same for every object: no oracle)."""

    def judge(
        route: Route, method: str, url: str, status: int, response: Any, body: bytes
    ) -> str | None:
        if status >= 500:
            return f"answered {status}"
        shown = leaked(body, world.b_markers, url)
        if shown:
            return f"{status} shows patient B's {shown}"
        if not route.parameters & NAMING or route.template in PUBLIC:
            return None
        if status in REFUSED or login_redirect(response):
            return None
        nothing, _, _ = ask(client, method, route.url(world.unknown))
        if 400 <= status < 500 and status == nothing:
            return None
        return f"answered {status} for one of patient B's objects ({nothing} for none)"

    return judge


def test_a_clinician_launched_for_patient_a_gets_nothing_of_patient_b_anywhere(
    world: World,
) -> None:
    clinician = Client(REMOTE_ADDR=SWEEP_ADDRESSES["clinician"])

    def launch() -> None:
        response = clinician.get(
            "/ehrlaunch/launch",
            {"launch": signed_launch(world.patient_a.study)},
            HTTP_ACCEPT="text/html",
        )
        assert response.status_code == 303, response.content[:300]

    def still_in() -> bool:
        session = clinician.session
        return bool(session.get("_auth_user_id") and session.get("loupe_scope"))

    launch()
    # The persona is what the fixture says: A's study answers, B's is a 404.
    assert clinician.get(f"/api/studies/{world.patient_a.study}").status_code == 200
    assert clinician.get(f"/api/studies/{world.values['study']}").status_code == 404
    problems = sweep(
        world,
        clinician,
        judge=other_patient_judge(world, clinician),
        restore=launch,
        still_in=still_in,
    )
    assert not problems, "\n".join(problems)


def test_a_share_guest_for_study_a_gets_nothing_of_patient_b_anywhere(world: World) -> None:
    guest = Client(REMOTE_ADDR=SWEEP_ADDRESSES["guest"])

    def open_link() -> None:
        response = guest.get(world.a_share_url, HTTP_ACCEPT="text/html")
        assert response.status_code == 302, response.content[:300]

    def still_in() -> bool:
        session = guest.session
        return bool(session.get("_auth_user_id") and session.get("loupe_scope"))

    open_link()
    assert guest.get(f"/api/studies/{world.patient_a.study}").status_code == 200
    problems = sweep(
        world,
        guest,
        judge=other_patient_judge(world, guest),
        restore=open_link,
        still_in=still_in,
    )
    assert not problems, "\n".join(problems)


def test_static_files_are_public_and_stored_objects_are_never_served_as_files(
    world: World, settings: Any
) -> None:
    nobody = Client(REMOTE_ADDR=SWEEP_ADDRESSES["nobody"])
    script = nobody.get("/static/viewer/js/main.js")
    assert script.status_code == 200
    assert not leaked(body_of(script), world.a_markers + world.b_markers, "")
    stored = next(p for p in settings.LOUPE_STORAGE_DIR.rglob("*") if p.is_file())
    relative = stored.relative_to(settings.LOUPE_STORAGE_DIR.parent).as_posix()
    for url in (
        f"/{relative}",
        f"/static/{relative}",
        f"/static/../{relative}",
        f"/media/{relative}",
        "/static/../config/settings.py",
        "/static/%2e%2e/config/settings.py",
    ):
        response = nobody.get(url)
        assert response.status_code in (301, 302, 404), (url, response.status_code)
        assert b"DICM" not in body_of(response), url


def test_the_public_list_names_only_routes_that_exist() -> None:
    templates = {r.template for r in every_route()}
    missing = set(PUBLIC) - templates - {"healthz", "readyz"}
    assert not missing, missing
