"""Turn a verified launch into a Loupe session bound to its context.

``django.contrib.auth.login`` rotates the session key (no fixation), then the launch's
:class:`viewer.access.Scope` is stored in the session; from then on every route answers
only for what the scope allows (``viewer.access``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from django.contrib.auth import SESSION_KEY, login
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from ehrlaunch import accounts
from ehrlaunch.context import LaunchContext
from ehrlaunch.errors import LaunchRefused
from ehrlaunch.iid import IidRequest
from ehrlaunch.models import SessionHandoff
from viewer import requester
from viewer.access import (
    SESSION_SCOPE,
    Scope,
    bind_scope,
    patients_filter,
    visible_studies,
)
from viewer.models import AuditEvent, Series, Study

HANDOFF_LIFETIME = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class OpenedLaunch:
    """A launch turned into a session: who, in which scope, and where they land."""

    user: User
    scope: Scope
    landing: Study | None


def open_launch_session(request: HttpRequest, context: LaunchContext) -> OpenedLaunch:
    """Check the launch against the archive, then log the EHR's user in and bind the
    session to the launch.

    A launch whose study or accession belongs to another patient than the one it names
    is refused before anyone is logged in: the EHR's context is inconsistent."""
    scope = Scope(
        role=context.role,
        channel="ehr",
        patients=context.patient.pairs(),
        studies=context.study_uids,
        source=context.ehr.issuer,
        alternative_user=context.user,
    )
    landing = _landing_study(context)
    if landing is not None and (
        landing.patient.patient_id,
        landing.patient.issuer_of_patient_id,
    ) not in set(scope.patients):
        raise LaunchRefused(
            "the launch's study belongs to another patient than the one it names",
            code="launch_patient_mismatch",
            status=403,
        )
    user = accounts.for_launch(context)
    log_in(request, user, channel="ehr", alternative_user=context.user)
    bind_scope(request, scope)
    return OpenedLaunch(user, scope, landing)


def log_in(
    request: HttpRequest,
    user: User,
    *,
    channel: str,
    alternative_user: str = "",
    subject: str = "",
    backend: str = "django.contrib.auth.backends.ModelBackend",
) -> None:
    """``login()`` (which rotates the session key) with how the user came in, so that the
    login's audit record (written by the user_logged_in signal) names the channel, the EHR's
    user (``alternative_user``) and an SSO user's ``iss|sub`` (``subject``).

    Another user's session is flushed first: a login never inherits an earlier one."""
    if request.session.get(SESSION_KEY) not in (None, str(user.pk)):
        request.session.flush()
    request.session[requester.SESSION_CHANNEL] = channel
    request.session[requester.SESSION_ALTERNATIVE_USER] = alternative_user
    if subject:
        request.session[requester.SESSION_SUBJECT] = subject
    else:
        request.session.pop(requester.SESSION_SUBJECT, None)
    login(request, user, backend=backend)


def _landing_study(context: LaunchContext) -> Study | None:
    studies = Study.objects.select_related("patient")
    if context.study_uids:
        return (
            studies.filter(study_instance_uid__in=context.study_uids)
            .order_by("-study_date")
            .first()
        )
    if context.accession_numbers:
        return (
            studies.filter(accession_number__in=context.accession_numbers)
            .filter(patients_filter(context.patient.pairs()))
            .order_by("-study_date")
            .first()
        )
    return None


def iid_studies(request: HttpRequest, iid: IidRequest) -> QuerySet[Study]:
    """The studies an IID request names, among those this session may see (RAD-106)."""
    studies = visible_studies(request).select_related("patient")
    if iid.request_type == "STUDY":
        if iid.study_uids:
            return studies.filter(study_instance_uid__in=iid.study_uids).order_by("-study_date")
        return studies.filter(accession_number__in=iid.accession_numbers).order_by("-study_date")
    assert iid.patient is not None
    studies = studies.filter(patients_filter(iid.patient.pairs()))
    if iid.lower_datetime:
        studies = studies.filter(study_date__gte=iid.lower_datetime.date())
    if iid.upper_datetime:
        studies = studies.filter(study_date__lte=iid.upper_datetime.date())
    if iid.modalities:
        studies = studies.filter(
            pk__in=Series.objects.filter(modality__in=iid.modalities).values("study_id")
        )
    studies = studies.order_by("-study_date", "-study_time", "-id")
    if iid.most_recent_results:
        studies = studies[: iid.most_recent_results]
    return studies


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def create_handoff(user: User, channel: str = "direct") -> str:
    """A one-time code (60 s) that hands a login made in a popup to the EHR's frame.

    ``channel`` is how the popup signed in (``sso`` or ``direct``); the frame's session
    gets the same, so the audit trail says how the user came in."""
    code = secrets.token_urlsafe(32)
    SessionHandoff.objects.filter(expires_at__lt=timezone.now()).delete()
    SessionHandoff.objects.create(
        code_sha256=_digest(code),
        user_id=user.pk,
        expires_at=timezone.now() + HANDOFF_LIFETIME,
        channel=channel if channel in ("sso", "direct") else "direct",
    )
    return code


def redeem_handoff(request: HttpRequest, code: str) -> None:
    """Log the frame's own session in as the popup's user; each code works once."""
    with transaction.atomic():
        handoff = (
            SessionHandoff.objects.select_for_update()
            .select_related("user")
            .filter(code_sha256=_digest(code or ""), expires_at__gte=timezone.now())
            .first()
        )
        if handoff is None:
            raise LaunchRefused(
                "the sign-in code is unknown, expired or already used",
                code="handoff_invalid",
                status=403,
                advice="Sign in again.",
            )
        user, channel = handoff.user, handoff.channel
        handoff.delete()
    log_in(
        request,
        user,
        channel=channel if channel in AuditEvent.Channel.values else AuditEvent.Channel.DIRECT,
        subject=accounts.sso_user_id(user) or "",
    )
    request.session.pop(SESSION_SCOPE, None)  # the popup's login carries no launch
