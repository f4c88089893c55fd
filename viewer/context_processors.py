"""Template context every page needs: the role the session acts in (viewer.access)."""

from __future__ import annotations

from django.http import HttpRequest

from viewer import access, roles


def loupe_role(request: HttpRequest) -> dict[str, object]:
    role = access.role_of(request)
    return {
        "loupe_role": role,
        "loupe_may_store": role in (roles.RADIOLOGIST, roles.ADMINISTRATOR),
    }
