"""Template context every page needs: the role the session acts in (viewer.access)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from viewer import access, roles


def loupe_role(request: HttpRequest) -> dict[str, object]:
    role = access.role_of(request)
    share = access.share_scope(request)
    return {
        "loupe_role": role,
        "loupe_may_store": role in (roles.RADIOLOGIST, roles.ADMINISTRATOR),
        # A share link's session: read-only, perhaps de-identified (viewer.services.sharing).
        "loupe_share": share.source if share is not None else "",
        "loupe_deidentified": access.deidentified(request),
        "loupe_share_live": bool(share is not None and share.options.get("live")),
        "loupe_may_share": role in (roles.RADIOLOGIST, roles.ADMINISTRATOR)
        or (role == roles.CLINICIAN and access.scope_of(request) is not None),
        # Upstream archives to ask for remote priors (viewer.services.upstream): never in a
        # share session.
        "loupe_upstream": bool(settings.LOUPE_UPSTREAM_DICOMWEB) and share is None,
    }
