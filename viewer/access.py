"""What may the one asking see: the gate every page, image and API request passes.

The role a request acts in is its launch's, else its user's own (``viewer.roles``:
radiologists and administrators see every study, a clinician only the launched patient:
the person of the launched identity, following the cross-reference of identities,
``viewer.services.identity``; a name never widens it).
A share link's session (channel ``share``, ``viewer.services.sharing``) sees the link's
studies and nothing else, read-only (``check_may_change``). A launch narrows a session: ``bind_scope`` stores a :class:`Scope` in the session (after
``django.contrib.auth.login`` has rotated its key), and every query below applies it. An
unknown UID and a forbidden one get the same 404, so the answer never tells whether a study
exists (docs/security.md §2).

The gates also write the audit trail (``viewer.services.audit``), so that no route can
reveal a study without its record: a study, series or instance handed out is recorded as
accessed (PS3.15 A.5.3.6, aggregated per session), and a refusal as a minor failure: a
401, or a gate's 404 (a missing study and one this session may not see answer the same
404, and both are recorded, with the patient when the study exists). When the record
cannot be written the gate raises AuditUnavailable (503) and the view never runs on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import reduce, wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse

from viewer import requester
from viewer.errors import Forbidden, NotFound
from viewer.models import Instance, Patient, Series, Study
from viewer.roles import ADMINISTRATOR, CLINICIAN, RADIOLOGIST, user_role
from viewer.services import audit, identity

SESSION_SCOPE = "loupe_scope"
SHARE_CHANNEL = "share"


@dataclass(frozen=True)
class Scope:
    """What a launched session may see, stored in the session as JSON.

    ``patients`` are (Patient ID, issuer) pairs; an empty issuer matches only patients
    stored without one. ``studies`` are the Study Instance UIDs the launch asked to show
    (where the viewer lands); they do not widen what a clinician may see.
    """

    role: str
    channel: str
    patients: tuple[tuple[str, str], ...] = ()
    studies: tuple[str, ...] = ()
    source: str = ""  # the EHR's slug, the OIDC issuer or the share link's ID; never a token
    alternative_user: str = ""  # the user as the EHR knows them
    options: dict[str, str] = field(default_factory=dict)

    def as_session(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_session(cls, data: dict[str, Any]) -> Scope:
        return cls(
            role=str(data["role"]),
            channel=str(data["channel"]),
            patients=tuple((str(p[0]), str(p[1])) for p in data.get("patients", ())),
            studies=tuple(str(s) for s in data.get("studies", ())),
            source=str(data.get("source", "")),
            alternative_user=str(data.get("alternative_user", "")),
            options={str(k): str(v) for k, v in data.get("options", {}).items()},
        )


def bind_scope(request: HttpRequest, scope: Scope) -> None:
    """Store ``scope`` in the (already rotated) session of a freshly logged-in user."""
    request.session[SESSION_SCOPE] = scope.as_session()


def scope_of(request: HttpRequest) -> Scope | None:
    data = request.session.get(SESSION_SCOPE) if hasattr(request, "session") else None
    return Scope.from_session(data) if data else None


def role_of(request: HttpRequest) -> str | None:
    """The role this request acts in: the launch's role, else the user's own."""
    user = request.user
    if not user.is_authenticated:
        return None
    cached: str | bool | None = getattr(request, "_loupe_role", False)
    if cached is not False:
        return cached if isinstance(cached, str) else None
    scope = scope_of(request)
    role = scope.role if scope is not None else user_role(user)
    request._loupe_role = role  # type: ignore[attr-defined]
    return role


def channel_of(request: HttpRequest) -> str:
    """How this session came in: ehr, sso, share, or direct (a password log-in)."""
    return requester.channel(request)  # written at every log-in (ehrlaunch.session.log_in)


def is_administrator(request: HttpRequest) -> bool:
    """Administrators (and Django staff) may read the audit trail; a launch never is one."""
    if role_of(request) == ADMINISTRATOR:
        return True
    return scope_of(request) is None and bool(getattr(request.user, "is_staff", False))


def _route(request: HttpRequest) -> str:
    match = request.resolver_match
    return (match.url_name or "") if match else ""


def check_may_store(request: HttpRequest) -> None:
    """Storing images is for radiologists and administrators, never a launched clinician."""
    if role_of(request) not in (RADIOLOGIST, ADMINISTRATOR):
        raise Forbidden("this session may view images but not store them")


def share_scope(request: HttpRequest) -> Scope | None:
    """The scope of a session opened by a share link (``viewer.services.sharing``)."""
    scope = scope_of(request)
    return scope if scope is not None and scope.channel == SHARE_CHANNEL else None


def deidentified(request: HttpRequest) -> bool:
    """Whether this request's answers leave out the patient's identity: a session opened
    by a share link made with ``"deidentify": true`` (``viewer.services.deidentify`` says
    what is left out, after DICOM PS3.15 Annex E)."""
    scope = share_scope(request)
    return scope is not None and bool(scope.options.get("deidentify"))


def check_may_change(request: HttpRequest) -> None:
    """A share link is read-only: no measurement, report or anything else is written
    through it (403), whoever follows it."""
    if share_scope(request) is not None:
        raise Forbidden("a share link is read-only", code="read_only_share")


def require_user(view: Callable[..., Any]) -> Callable[..., Any]:
    """401 JSON (not a login redirect) for image and data endpoints without a session."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            audit.record_refused(request, _route(request), kwargs.get("study", ""))
            response = JsonResponse(
                {"code": "not_authenticated", "message": "log in to see images"}, status=401
            )
            # DICOMweb and FHIR clients authenticate with a bearer token (viewer.apitokens).
            machine = request.path.startswith(("/dicom-web/", "/fhir/"))
            response["WWW-Authenticate"] = (
                'Bearer realm="loupe", Session realm="loupe"'
                if machine
                else 'Session realm="loupe"'
            )
            return response
        return view(request, *args, **kwargs)

    return wrapper


def require_login(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For a study's pages: the log-in redirect, with the refusal recorded."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            audit.record_refused(request, _route(request), kwargs.get("study_instance_uid", ""))
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapper


def patients_filter(patients: tuple[tuple[str, str], ...], prefix: str = "patient__") -> Q:
    """A Q matching the given (Patient ID, issuer) pairs, the issuer as (0010,0021) or as
    the Universal Entity ID of the issuer's qualifiers; matches nothing when empty."""
    if not patients:
        return Q(pk__in=[])

    def one(pid: str, issuer: str) -> Q:
        named = Q(**{f"{prefix}patient_id": pid, f"{prefix}issuer_of_patient_id": issuer})
        if not issuer:
            return named & Q(**{f"{prefix}issuer_of_patient_id_qualifiers": ""})
        return named | Q(
            **{
                f"{prefix}patient_id": pid,
                f"{prefix}issuer_of_patient_id": "",
                f"{prefix}issuer_of_patient_id_qualifiers__startswith": f"{issuer}&",
            }
        )

    return reduce(lambda a, b: a | b, (one(pid, issuer) for pid, issuer in patients))


def person_filter(patients: tuple[tuple[str, str], ...], prefix: str = "patient__") -> Q:
    """A Q matching every identity linked to the given (Patient ID, issuer) pairs (their
    persons, ``viewer.services.identity``); matches nothing when empty."""
    keys = {identity.person_key(identity.person(pair)) for pair in patients if pair[0]}
    return Q(**{f"{prefix}person_key__in": sorted(keys)}) if keys else Q(pk__in=[])


def scope_person_keys(request: HttpRequest, scope: Scope) -> frozenset[str]:
    """The person keys of the scope's patients (``viewer.services.identity``): a launch
    for one identity shows the person's studies under every identity linked to it.

    One query for the stored Patient rows of the scope's identities; an identity with no
    stored row (linked to those that have) is looked up in the cross-reference. Computed
    once per request (a link or unlink applies from the next request on)."""
    cached: frozenset[str] | None = getattr(request, "_loupe_person_keys", None)
    if cached is not None:
        return cached
    wanted = set(scope.patients)
    keys: set[str] = set()
    found: set[tuple[str, str]] = set()
    candidates = Patient.objects.filter(
        patient_id__in=sorted({pid for pid, _ in wanted if pid})
    ).only("patient_id", "issuer_of_patient_id", "issuer_of_patient_id_qualifiers", "person_key")
    for patient in candidates if wanted else ():
        names = identity.spellings(patient) & wanted
        if names:
            found |= names
            keys.add(patient.person_key or identity.person_key([identity.identity_of(patient)]))
    for pair in sorted(wanted - found):
        if pair[0]:
            keys.add(identity.person_key(identity.person(pair)))
    result = frozenset(keys)
    request._loupe_person_keys = result  # type: ignore[attr-defined]
    return result


def visible_studies(request: HttpRequest) -> QuerySet[Study]:
    """Every study this session may see (the worklist and every lookup start here): all
    for radiologists and administrators; for a launched clinician the studies of the
    launched person, under any identity linked to the launched one (never by name)."""
    role = role_of(request)
    scope = scope_of(request)
    if scope is not None and scope.channel == SHARE_CHANNEL:
        return Study.objects.filter(study_instance_uid__in=list(scope.studies))
    if role in (RADIOLOGIST, ADMINISTRATOR):
        return Study.objects.all()
    if role == CLINICIAN and scope is not None:
        keys = scope_person_keys(request, scope)
        return (
            Study.objects.filter(patient__person_key__in=sorted(keys))
            if keys
            else (Study.objects.none())
        )
    return Study.objects.none()


def can_see(request: HttpRequest, study: Study) -> bool:
    """Whether this session may see ``study`` (the per-object form of visible_studies).
    A study of a launched identity itself costs no query; one of a linked identity the
    request's one query for the scope's person keys."""
    role = role_of(request)
    scope = scope_of(request)
    if scope is not None and scope.channel == SHARE_CHANNEL:
        return study.study_instance_uid in scope.studies
    if role in (RADIOLOGIST, ADMINISTRATOR):
        return True
    if role != CLINICIAN or scope is None:
        return False
    patient = study.patient
    if identity.spellings(patient) & set(scope.patients):
        return True
    return bool(patient.person_key) and patient.person_key in scope_person_keys(request, scope)


def study_for(request: HttpRequest, study_uid: str, *, opened: str = "") -> Study:
    """The study, recorded as accessed; or, when ``opened`` names a page, as opened there."""
    found = Study.objects.select_related("patient").filter(study_instance_uid=study_uid).first()
    if found is None or not can_see(request, found):
        audit.record_refused(request, _route(request), study_uid)
        raise NotFound("no such study", code="not_found")
    if opened:
        audit.record_study_opened(request, found, view=opened)
    else:
        audit.record_instances_accessed(
            request, found, count=found.number_of_study_related_instances
        )
    return found


def series_for(request: HttpRequest, study_uid: str, series_uid: str) -> Series:
    found = (
        Series.objects.select_related("study__patient")
        .filter(series_instance_uid=series_uid, study__study_instance_uid=study_uid)
        .first()
    )
    if found is None or not can_see(request, found.study):
        audit.record_refused(request, _route(request), study_uid)
        raise NotFound("no such series", code="not_found")
    audit.record_instances_accessed(
        request, found.study, count=found.number_of_series_related_instances
    )
    return found


def instance_for(request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str) -> Instance:
    """The instance at this path, or the same 404 whether it is missing or not visible.

    One indexed lookup by SOP Instance UID (this runs for every image and tile); the
    path's series and study UIDs and the session's scope are then checked on the row.
    Its audit record costs no query once this session's access to the study is recorded."""
    found = (
        Instance.objects.select_related("series__study__patient")
        .filter(sop_instance_uid=sop_uid)
        .first()
    )
    if (
        found is None
        or found.series.series_instance_uid != series_uid
        or found.series.study.study_instance_uid != study_uid
        or not can_see(request, found.series.study)
    ):
        audit.record_refused(request, _route(request), study_uid)
        raise NotFound("no such instance", code="not_found")
    audit.record_instances_accessed(request, found.series.study, count=1)
    return found
