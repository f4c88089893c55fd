"""The Loupe accounts that stand for users signed in elsewhere, and their roles.

* An EHR's user: one account per registered EHR and EHR user ID (``ehr<pk>:<user>``),
  made on the first launch, with no usable password; its role comes from each launch.
* A single sign-on user: one account per OpenID issuer and subject
  (:class:`~ehrlaunch.models.SsoIdentity`), made at the first sign-in with no usable
  password; at every sign-in its name, e-mail and role groups are set from the claims
  (``ehrlaunch.auth.sso_profile``). Claims never make a superuser or staff member.

These are the only places where ``ehrlaunch`` writes users and their groups.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group, User
from django.db import transaction
from django.utils import timezone

from ehrlaunch.context import LaunchContext
from ehrlaunch.models import SsoIdentity
from viewer.roles import ROLES


@dataclass(frozen=True)
class Profile:
    """What an identity provider says of a user at sign-in."""

    first_name: str = ""
    last_name: str = ""
    email: str = ""
    roles: frozenset[str] = frozenset()


def for_launch(context: LaunchContext) -> User:
    """The Loupe account standing for this EHR user (made on first launch, no password)."""
    username = f"ehr{context.ehr.pk}:{context.user}"[:150]
    user, created = User.objects.get_or_create(username=username)
    if created or (context.user_name and user.first_name != context.user_name[:150]):
        user.set_unusable_password()
        user.first_name = context.user_name[:150]
        user.save()
    return user


def create_sso_user(username: str, issuer: str, subject: str, profile: Profile) -> User:
    """A new account for the SSO identity (issuer, subject), then set as ``profile`` says."""
    with transaction.atomic():
        user = User(username=username)
        user.set_unusable_password()
        user.save()
        SsoIdentity.objects.create(user=user, issuer=issuer, subject=subject)
    return update_sso_user(user, profile)


def update_sso_user(user: User, profile: Profile) -> User:
    """An SSO account's name, e-mail and role groups as the provider says now."""
    user.first_name, user.last_name, user.email = (
        profile.first_name,
        profile.last_name,
        profile.email,
    )
    if user.has_usable_password():  # an SSO account never signs in with a password
        user.set_unusable_password()
    user.save()
    set_roles(user, profile.roles)
    SsoIdentity.objects.filter(user=user).update(last_login_at=timezone.now())
    return user


def set_roles(user: User, roles: Iterable[str]) -> None:
    """Make ``user``'s role groups exactly ``roles`` (other groups are left alone)."""
    wanted = set(roles)
    stale = user.groups.filter(name__in=ROLES).exclude(name__in=wanted)
    if stale:
        user.groups.remove(*stale)
    for role in sorted(wanted):
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)


def sso_user_id(user: Any) -> str | None:
    """``<issuer>|<subject>`` for an account made by SSO (the audit's UserID), else None."""
    pk = getattr(user, "pk", None)
    identity = SsoIdentity.objects.filter(user_id=pk).first() if pk is not None else None
    return identity.user_id_text if identity else None
