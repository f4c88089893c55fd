"""``manage.py issue_api_token <username> [--name N] [--expires-days D] [--role R]``.

Issues an API token for a service account and prints it once, alone on standard output
(so that a script can capture it); Loupe keeps only its SHA-256 (``viewer.apitokens``).
With ``--role`` a missing account is made as a service account: no usable password, in
that role's group (``viewer.roles``). What the token may see is what the account's role
allows: radiologist or administrator every study; clinician nothing (no launch).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from viewer import apitokens
from viewer.roles import ROLES


class Command(BaseCommand):
    help = "Issue an API token (Authorization: Bearer) for a service account; printed once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="the service account (a Loupe user)")
        parser.add_argument("--name", default="", help="what the token is for")
        parser.add_argument(
            "--expires-days", type=int, default=None, help="days until it expires (default never)"
        )
        parser.add_argument(
            "--role",
            choices=ROLES,
            default=None,
            help="make the account if missing: no password, in this role's group",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username: str = options["username"]
        days: int | None = options["expires_days"]
        if days is not None and days < 1:
            raise CommandError("--expires-days must be 1 or more")
        role: str | None = options["role"]
        user = User.objects.filter(username=username).first()
        if user is None and role is None:
            raise CommandError(
                f"no user {username!r}: create it first, or pass --role to make it "
                "a service account"
            )
        if role is not None:
            if user is None:
                self.stderr.write(f"making service account {username!r} (no password, {role})")
            user = apitokens.service_account(username, role)
        assert user is not None
        if not user.is_active:
            raise CommandError(f"user {username!r} is disabled")
        expires_at = timezone.now() + timedelta(days=days) if days is not None else None
        row, token = apitokens.issue(
            user, options["name"] or "issued by manage.py", expires_at=expires_at
        )
        self.stderr.write(
            f"API token {row.prefix}… for {username!r}"
            + (f", expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ", no expiry")
            + ": shown once, keep it secret"
        )
        self.stdout.write(token)
