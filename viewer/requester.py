"""Who is asking, from where, how: the requestor of an audit record (PS3.15 A.5.3).

Read from the request and its session: the user (``iss|sub`` for an OIDC user, else the
user name), the alternative user (the EHR's user ID or a share link's ID, never a token),
the client address (REMOTE_ADDR, or the last untrusted hop behind LOUPE_TRUSTED_PROXIES),
the channel the session came in by, one ID per request, and an HMAC of the session key.
The EHR launch, SSO and share links say the channel, subject and alternative user through
the session keys below (set them before ``login()``); this module is their one reader.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django.utils.crypto import salted_hmac

from viewer.models import AuditEvent

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

Channel = AuditEvent.Channel

SESSION_CHANNEL = "loupe_channel"  # one of Channel's values; absent: "direct"
SESSION_SUBJECT = "loupe_oidc_subject"  # "iss|sub" of an OIDC user
SESSION_ALTERNATIVE_USER = "loupe_alternative_user_id"  # EHR user ID, or "share-link:<id>"

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# The key of the session-hash HMAC: fixed, so that the hashes of stored audit rows stay
# comparable with new ones.
_SESSION_HASH_SALT = "viewer.services.audit.session"


def _session_value(request: HttpRequest | None, key: str) -> str:
    session = getattr(request, "session", None)
    value = session.get(key, "") if session is not None else ""
    return value if isinstance(value, str) else ""


def channel(request: HttpRequest | None) -> str:
    """How this session came in: ehr, sso, share, or direct (a log-in form, the default)."""
    value = _session_value(request, SESSION_CHANNEL)
    return value if value in Channel.values else Channel.DIRECT


def user_id(
    request: HttpRequest | None, user: AbstractBaseUser | AnonymousUser | None = None
) -> str:
    """PS3.15 UserID: ``iss|sub`` for an OIDC user, else the user name; "" for nobody."""
    user = user if user is not None else getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    return _session_value(request, SESSION_SUBJECT) or user.get_username()


def alternative_user_id(request: HttpRequest | None) -> str:
    """PS3.15 AlternativeUserID: the EHR's user ID, or ``share-link:<id>``; "" for none."""
    return _session_value(request, SESSION_ALTERNATIVE_USER)


def client_address(request: HttpRequest | None) -> str:
    """NetworkAccessPointID (type 2, an IP address): REMOTE_ADDR, or behind one of
    LOUPE_TRUSTED_PROXIES the last X-Forwarded-For hop that is not a trusted proxy."""
    if request is None:
        return ""
    address: str = request.META.get("REMOTE_ADDR") or ""
    trusted = settings.LOUPE_TRUSTED_PROXIES
    if address in trusted:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        address = next((h for h in reversed(hops) if h and h not in trusted), address)
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return ""


def request_id(request: HttpRequest | None) -> str:
    """One ID per request: a trusted proxy's X-Request-ID, else a new UUID."""
    if request is None:
        return ""
    meta = request.META
    if "loupe.request_id" not in meta:
        given = meta.get("HTTP_X_REQUEST_ID", "")
        from_proxy = meta.get("REMOTE_ADDR") in settings.LOUPE_TRUSTED_PROXIES
        meta["loupe.request_id"] = (
            given if from_proxy and _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        )
    return str(meta["loupe.request_id"])


def session_hash(request: HttpRequest | None) -> str:
    """An HMAC of the session key (keyed with SECRET_KEY): the session, never its key."""
    key = getattr(getattr(request, "session", None), "session_key", None)
    if not key:
        return ""
    return salted_hmac(_SESSION_HASH_SALT, key, algorithm="sha256").hexdigest()
