"""Loupe's roles, and the role a user has of their own.

Roles are Django groups of these names; a superuser is an administrator:

* ``radiologist``: every study;
* ``clinician``: only the patient(s) of the EHR launch that opened the session; a
  clinician who logs in directly, with no launch, sees nothing;
* ``administrator``: every study, plus the audit trail.

A local account (one with a usable password, made by an administrator) that is in no role
group gets ``settings.LOUPE_LOCAL_ACCOUNT_ROLE`` (radiologist unless configured). Accounts
made by single sign-on or an EHR launch have no usable password and get only the roles
their claims or their EHR's role mapping give them. What a request may see is decided in
``viewer.access`` (a launch's scope narrows a session further).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from viewer.lru import Lru

RADIOLOGIST = "radiologist"
CLINICIAN = "clinician"
ADMINISTRATOR = "administrator"
ROLES = (RADIOLOGIST, CLINICIAN, ADMINISTRATOR)

ADMINISTRATOR_GROUP = ADMINISTRATOR


ROLE_CACHE_SECONDS = 30.0
# (pk, user name, date joined) -> role group names; pks can recur, the triple does not.
_role_groups: Lru[tuple[object, ...], frozenset[str]] = Lru(
    entries=10_000, seconds=ROLE_CACHE_SECONDS
)


def _role_groups_of(user: Any) -> frozenset[str]:
    """The user's role groups, remembered per process for ROLE_CACHE_SECONDS: every image
    and tile request asks, and a group query per tile costs more than the tile's audit.
    A change of groups takes effect within that time (at once in the process that made it,
    through ``forget_roles``)."""
    key = (user.pk, user.get_username(), getattr(user, "date_joined", None))
    cached = _role_groups.get(key)
    if cached is not None:
        return cached
    names = frozenset(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
    _role_groups.set(key, names)
    return names


def forget_roles(user_pk: object = None) -> None:
    """Drop remembered role groups (one user's, or everyone's)."""
    _role_groups.forget_where(lambda key: user_pk is None or key[0] == user_pk)


def user_role(user: Any) -> str | None:
    """A user's own role, from superuser status and group membership."""
    if user.is_superuser:
        return ADMINISTRATOR
    names = _role_groups_of(user)
    for role in (ADMINISTRATOR, RADIOLOGIST, CLINICIAN):
        if role in names:
            return role
    if user.has_usable_password():
        return str(settings.LOUPE_LOCAL_ACCOUNT_ROLE) or None
    return None
