"""Sign-in pages: the login page (password or SSO), the OIDC start and callback, logout.

The OIDC views are mozilla-django-oidc's with Loupe's answers: a refusal is the launch
error page with what happened and what to do (never a bare 400 or a redirect loop), the
session key is rotated at every login, the session is marked ``sso`` (viewer.access
``channel_of``) and carries no launch scope.

Every page of the sign-in popup (``ehrlaunch.views.popup_start`` → login → provider →
callback → ``popup_done``) sends ``Cross-Origin-Opener-Policy: unsafe-none``: Django's
default ``same-origin`` would put the popup in a browsing context group of its own, and
the EHR frame that opened it (whose top-level page is the EHR's) would never get its
one-time code back (docs/security.md §4).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.views.decorators.http import require_POST
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from ehrlaunch import accounts, session
from ehrlaunch.errors import ASK_AGAIN, LaunchRefused
from ehrlaunch.views import keep_opener, refused
from viewer import ratelimit
from viewer.access import SESSION_SCOPE, channel_of

TRY_AGAIN = "Start the sign-in again from Loupe's login page."
PROVIDER_ERRORS = {
    "access_denied": "the identity provider denied the sign-in",
    "login_required": "the identity provider needs you to sign in",
    "interaction_required": "the identity provider needs you to sign in",
    "consent_required": "the identity provider needs your consent",
    "invalid_request": "the identity provider rejected the sign-in request",
    "invalid_scope": "the identity provider rejected the requested scopes",
    "unauthorized_client": "Loupe is not allowed to sign users in at this identity provider",
    "server_error": "the identity provider failed",
    "temporarily_unavailable": "the identity provider is temporarily unavailable",
}


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


def sso_off(request: HttpRequest) -> HttpResponse:
    return refused(
        request,
        LaunchRefused(
            "single sign-on is not configured on this Loupe",
            code="sso_not_configured",
            status=404,
            advice="Sign in with your Loupe user name and password.",
        ),
    )


class LoginView(auth_views.LoginView):
    """Django's password login, plus a "Sign in with single sign-on" button when configured."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context_data(**kwargs)
        context["sso_enabled"] = settings.LOUPE_OIDC_ENABLED
        query = {"next": context.get("next")} if context.get("next") else {}
        context["sso_url"] = f"{reverse('oidc_authentication_init')}?{urlencode(query)}".rstrip("?")
        return context

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return keep_opener(super().dispatch(request, *args, **kwargs))

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """A sign-in attempt: 429 once this address, or this user name from anywhere, has
        failed too often (``viewer.ratelimit``), before the password is even checked."""
        account = request.POST.get("username", "")
        for limit, value in ((ratelimit.LOGIN, None), (ratelimit.LOGIN_ACCOUNT, account)):
            if (refused := ratelimit.limited(request, limit, value)) is not None:
                return refused
        response: HttpResponse = super().post(request, *args, **kwargs)
        return response

    def form_invalid(self, form: Any) -> HttpResponse:
        ratelimit.count(self.request, ratelimit.LOGIN)
        ratelimit.count(self.request, ratelimit.LOGIN_ACCOUNT, self.request.POST.get("username"))
        response: HttpResponse = super().form_invalid(form)
        return response


class SsoStartView(OIDCAuthenticationRequestView):
    """``/oidc/authenticate/``: state, nonce and PKCE verifier into the session, then the
    browser goes to the provider's authorization endpoint."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.LOUPE_OIDC_ENABLED:
            return sso_off(request)
        # Each start writes a state into a session: counted, so a script cannot fill the
        # session store (viewer.ratelimit).
        if (refused := ratelimit.limited(request, ratelimit.SSO_START)) is not None:
            return keep_opener(refused)
        ratelimit.count(request, ratelimit.SSO_START)
        return keep_opener(_no_store(super().get(request)))


class SsoCallbackView(OIDCAuthenticationCallbackView):
    """``/oidc/callback/``: the provider's answer. The state must be one this browser
    session started (then it is used up); the code is exchanged with its PKCE verifier and
    the ID token checked with its nonce (``ehrlaunch.auth``)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.LOUPE_OIDC_ENABLED:
            return sso_off(request)
        state = request.GET.get("state", "")
        states = request.session.get("oidc_states")
        known = isinstance(states, dict) and bool(state) and state in states
        error = request.GET.get("error", "")
        if error:
            if known:
                del request.session["oidc_states"][state]
                request.session.modified = True
            message = PROVIDER_ERRORS.get(error, "the identity provider did not sign you in")
            return self._refuse(LaunchRefused(message, code="sso_provider_refused", status=403))
        if not request.GET.get("code") or not state:
            return self._refuse(
                LaunchRefused(
                    "the sign-in response lacks its code or state", code="sso_bad_response"
                )
            )
        if not known:
            return self._refuse(
                LaunchRefused(
                    "the sign-in response does not belong to a sign-in started in this browser "
                    "(unknown state): it was already used, or it comes from elsewhere",
                    code="sso_state_mismatch",
                    status=403,
                )
            )
        try:
            response = super().get(request)
        except LaunchRefused as refusal:
            return self._refuse(refusal)
        return keep_opener(_no_store(response))

    def _refuse(self, error: LaunchRefused) -> HttpResponse:
        if error.advice == ASK_AGAIN:  # the launch default; this is a direct sign-in
            error.advice = TRY_AGAIN
        return keep_opener(refused(self.request, error))

    def login_success(self) -> HttpResponse:
        # Always log in, even when this user already is: login() rotates the session key.
        # The login's audit record (user_logged_in signal) names channel sso and iss|sub.
        session.log_in(
            self.request,
            self.user,
            channel="sso",
            subject=accounts.sso_user_id(self.user) or "",
            backend=getattr(self.user, "backend", "ehrlaunch.auth.LoupeOIDCBackend"),
        )
        self.request.session.pop(SESSION_SCOPE, None)
        return HttpResponseRedirect(self.success_url)

    def login_failure(self) -> HttpResponse:
        user = getattr(self, "user", None)
        if user is not None and not user.is_active:
            message = "this account is disabled in Loupe"
        else:
            message = "single sign-on did not complete"
        return self._refuse(LaunchRefused(message, code="sso_failed", status=403))


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    """End the Loupe session on the server; after SSO, also at the provider when it offers
    RP-initiated logout (``LOUPE_OIDC_END_SESSION_ENDPOINT``), by client ID (no ID token in
    the URL), returning to the login page.

    The way to the provider is a page that follows a link, not a redirect: the logout form's
    page has ``form-action 'self'``, which also forbids redirects to other origins."""
    was_sso = request.user.is_authenticated and channel_of(request) == "sso"
    auth.logout(request)  # flushes the session row: the cookie is worthless from now on
    endpoint = settings.LOUPE_OIDC_END_SESSION_ENDPOINT
    if was_sso and settings.LOUPE_OIDC_ENABLED and endpoint:
        query = urlencode(
            {
                "client_id": settings.OIDC_RP_CLIENT_ID,
                "post_logout_redirect_uri": request.build_absolute_uri(reverse("login")),
            }
        )
        return _no_store(
            render(request, "ehrlaunch/signed_out.html", {"provider_logout": f"{endpoint}?{query}"})
        )
    return _no_store(HttpResponseRedirect(resolve_url(settings.LOGOUT_REDIRECT_URL)))
