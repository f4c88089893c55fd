"""The EHRs allowed to launch Loupe, and the launch nonces already used.

An EHR is registered by an administrator (Django admin) with the keys its launches are
signed with, the exact origins allowed to frame Loupe for it, and how its user roles map
onto Loupe's (``viewer.access.ROLES``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import models

from viewer.roles import ROLES

ALGORITHMS = (("HS256", "HS256 (shared secret)"), ("RS256", "RS256 (EHR's public keys)"))


def _origin_list(text: str) -> list[str]:
    return [line.strip().rstrip("/") for line in text.splitlines() if line.strip()]


def validate_origins(text: str) -> None:
    for origin in _origin_list(text):
        scheme, _, rest = origin.partition("://")
        if scheme not in ("https", "http") or not rest or "/" in rest or "*" in rest:
            raise ValidationError(
                f"{origin!r} is not an origin (scheme://host[:port], no path, no wildcard)"
            )


def validate_fhir_base_url(value: str) -> None:
    """SMART ``iss``: an https URL (http only on loopback), no query, no trailing slash."""
    parts = urlsplit(value)
    secure = parts.scheme == "https" or (
        parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
    )
    if not (secure and parts.hostname) or parts.query or parts.fragment or value.endswith("/"):
        raise ValidationError(
            f"{value!r} is not a FHIR base URL (https://host/path, no query, no trailing slash)"
        )


def validate_identifier_systems(value: Any) -> None:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(v) <= 64 for k, v in value.items()
    ):
        raise ValidationError(
            'identifier systems must be an object like {"http://hospital.org/mrn": "HOSP"}'
        )


def validate_role_mapping(value: Any) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValidationError('role mapping must be an object like {"MD": "clinician"}')
    for ehr_role, role in value.items():
        if role not in ROLES:
            raise ValidationError(f"{ehr_role!r} maps to {role!r}; use one of {', '.join(ROLES)}")


class EhrSystem(models.Model):
    """An EHR that may launch Loupe with a signed context (a JWT)."""

    name = models.CharField(max_length=128)
    issuer = models.CharField(
        max_length=255, unique=True, help_text="the JWT 'iss' this EHR signs launches with"
    )
    audience = models.CharField(
        max_length=255, default="loupe", help_text="the JWT 'aud' launches must be addressed to"
    )
    algorithm = models.CharField(max_length=8, choices=ALGORITHMS, default="HS256")
    shared_secret = models.CharField(
        max_length=512, blank=True, help_text="HS256 only: at least 32 characters"
    )
    jwks = models.JSONField(
        null=True, blank=True, help_text="RS256 only: the EHR's public JSON Web Key Set"
    )
    allowed_origins = models.TextField(
        blank=True,
        validators=[validate_origins],
        help_text="one origin per line (https://ehr.example.org); only these may frame Loupe",
    )
    default_patient_issuer = models.CharField(
        max_length=64,
        blank=True,
        help_text="Issuer of Patient ID assumed when a launch names none",
    )
    role_mapping = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_role_mapping],
        help_text='EHR role -> Loupe role, e.g. {"physician": "clinician"}; for a SMART launch '
        'the role is the fhirUser resource type, e.g. {"Practitioner": "clinician"}',
    )
    active = models.BooleanField(default=True)
    # SMART App Launch (EHR launch): only these registered values are ever fetched.
    fhir_base_url = models.CharField(
        max_length=255,
        blank=True,
        validators=[validate_fhir_base_url],
        help_text="SMART: the FHIR base URL this EHR sends as iss (https://ehr.example.org/fhir)",
    )
    smart_client_id = models.CharField(
        max_length=255, blank=True, help_text="SMART: Loupe's client ID at this EHR"
    )
    smart_client_secret = models.CharField(
        max_length=512,
        blank=True,
        help_text="SMART: the client secret (confidential client); empty for a public client",
    )
    smart_server_origins = models.TextField(
        blank=True,
        validators=[validate_origins],
        help_text="SMART: origins of the EHR's authorization server (one per line) when it is "
        "not on the FHIR server's origin; its endpoints must be on one of these",
    )
    patient_identifier_systems = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_identifier_systems],
        help_text="SMART: FHIR Patient.identifier system -> DICOM Issuer of Patient ID, e.g. "
        '{"http://hospital.org/mrn": ""} when the archive stores MRNs without an issuer; '
        "urn:oid:X maps to X unless listed",
    )

    class Meta:
        verbose_name = "EHR system"
        constraints = [
            models.UniqueConstraint(
                fields=["fhir_base_url"],
                condition=~models.Q(fhir_base_url=""),
                name="ehr_fhir_base_url_unique",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def origins(self) -> list[str]:
        return _origin_list(self.allowed_origins)

    def smart_origins(self) -> list[str]:
        return _origin_list(self.smart_server_origins)

    def signs_launches(self) -> bool:
        """Whether signed launches are set up (an EHR may do SMART launches only)."""
        return bool(self.shared_secret or self.jwks)

    def clean(self) -> None:
        if self.fhir_base_url and not self.smart_client_id:
            raise ValidationError({"smart_client_id": "a SMART launch needs Loupe's client ID"})
        if self.fhir_base_url and not self.signs_launches():
            return  # SMART only: no signed-launch key to check
        if self.algorithm == "HS256" and len(self.shared_secret) < 32:
            raise ValidationError(
                {"shared_secret": "HS256 needs a secret of 32 characters or more"}
            )
        if self.algorithm == "RS256" and not (
            isinstance(self.jwks, dict) and self.jwks.get("keys")
        ):
            raise ValidationError({"jwks": 'RS256 needs a key set: {"keys": [...]}'})


class UsedLaunchNonce(models.Model):
    """A launch's ``jti``, kept until the launch would have expired: each is used once."""

    ehr = models.ForeignKey(EhrSystem, on_delete=models.CASCADE)
    nonce = models.CharField(max_length=255)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ehr", "nonce"], name="launch_nonce_used_once")
        ]

    def __str__(self) -> str:
        return f"launch nonce {self.pk}"


class SessionHandoff(models.Model):
    """A one-time code that hands a login made in a popup to the EHR frame's own session.

    Only the code's SHA-256 is stored; the code lives 60 seconds and is deleted when used."""

    code_sha256 = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey("auth.User", on_delete=models.CASCADE)
    expires_at = models.DateTimeField(db_index=True)
    channel = models.CharField(
        max_length=8, default="direct", help_text="how the popup signed in: sso or direct"
    )

    def __str__(self) -> str:
        return f"sign-in handoff {self.pk}"


class SsoIdentity(models.Model):
    """The OpenID Connect identity (``iss`` + ``sub``) behind a Loupe account made by SSO.

    This pair, not the username, is who the user is: the audit trail's UserID (DICOM PS3.15
    A.5.3.6, Active Participant *UserID*) is ``<issuer>|<subject>`` (``user_id_text``)."""

    user = models.OneToOneField("auth.User", on_delete=models.CASCADE, related_name="sso_identity")
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "SSO identity"
        verbose_name_plural = "SSO identities"
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="sso_identity_unique")
        ]

    def __str__(self) -> str:
        return self.user_id_text

    @property
    def user_id_text(self) -> str:
        return f"{self.issuer}|{self.subject}"
