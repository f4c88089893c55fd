from __future__ import annotations

from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request


class LoupeSessionAuthentication(SessionAuthentication):
    """Django's session, answering 401 (not 403) when nobody is logged in."""

    def authenticate_header(self, request: Request) -> str:
        return 'Session realm="loupe"'
