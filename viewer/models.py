"""The archive's index: Patient (with its OtherPatientId rows), Study, Series, Instance;
the cross-reference of patient identities, PatientLink; measurements on its images,
Measurement; hanging protocols, HangingProtocol; tumor-board share links, ShareLink and
their ShareVisitor rows; and the audit trail, AuditEvent.

Field names are the DICOM keywords in snake_case. Index rows are written only by
``viewer.services.ingest`` (and an instance's ``undecodable`` flag by
``viewer.services.decoding``); Measurement rows only by ``viewer.services.measurements``;
every Instance row has its file in the content-addressed
store under ``storage_key`` (see ``viewer.services.storage``). Audit rows are written only
by ``viewer.services.audit`` and never change.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.utils import timezone

from viewer.dicom.index import CS, LO, LONG_TEXT, PN, SH, UI


class Patient(models.Model):
    """A patient, identified by (0010,0020) Patient ID within (0010,0021) its issuer and,
    where sent, (0010,0024) Issuer of Patient ID Qualifiers (PS3.3 C.7.1.1).

    ``issuer_of_patient_id_qualifiers`` is the qualifiers' Universal Entity ID and its
    type as ``UniversalEntityID&UniversalEntityIDType`` (the HD form of HL7 v2), "" where
    none was sent. ``person_key`` is derived, never read from a file: the key of the person
    this identity belongs to in the cross-reference of identities (PatientLink and the
    indexed Other Patient IDs; ``viewer.services.identity``). Two rows with the same key
    are one person; a name never gives anyone a key.
    """

    patient_id = models.CharField(max_length=LO, blank=True, db_index=True)
    issuer_of_patient_id = models.CharField(max_length=LO, blank=True)
    issuer_of_patient_id_qualifiers = models.CharField(max_length=2 * UI + 16, blank=True)
    person_key = models.CharField(max_length=255, blank=True, db_index=True, editable=False)
    patient_name = models.CharField(max_length=PN, blank=True)
    patient_name_search = models.CharField(max_length=PN, blank=True, editable=False)
    patient_birth_date = models.DateField(null=True, blank=True)
    patient_sex = models.CharField(max_length=CS, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["patient_id", "issuer_of_patient_id", "issuer_of_patient_id_qualifiers"],
                name="unique_patient_per_issuer",
            )
        ]
        indexes = [models.Index(fields=["patient_name_search"], name="patient_name_search_idx")]

    def __str__(self) -> str:
        return f"Patient {self.pk}"

    def save(self, *args: object, **kwargs: object) -> None:
        self.patient_name_search = search_form(self.patient_name)
        super().save(*args, **kwargs)  # type: ignore[arg-type]


def search_form(name: str) -> str:
    """Lower-case, with PN component (^) and group (=) separators as spaces, for search."""
    return " ".join(name.replace("^", " ").replace("=", " ").lower().split())


class OtherPatientId(models.Model):
    """One item of a patient's (0010,1002) Other Patient IDs Sequence: (0010,0020) Patient
    ID, (0010,0021) Issuer of Patient ID and (0010,0022) Type of Patient ID, as indexed from
    the patient's stored objects (PS3.3 C.7.1.1). Written only by ``viewer.services.ingest``."""

    # The Patient row whose objects carry this item (named so: patient_id is the keyword).
    patient_record = models.ForeignKey(
        Patient, on_delete=models.CASCADE, related_name="other_patient_ids"
    )
    patient_id = models.CharField(max_length=LO)
    issuer_of_patient_id = models.CharField(max_length=LO, blank=True)
    type_of_patient_id = models.CharField(max_length=CS, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["patient_record", "patient_id", "issuer_of_patient_id"],
                name="unique_other_patient_id",
            )
        ]
        indexes = [
            models.Index(fields=["patient_id", "issuer_of_patient_id"], name="other_patient_id_idx")
        ]

    def __str__(self) -> str:
        return f"Other Patient ID {self.pk}"


class PatientLink(models.Model):
    """A cross-reference of two identities of one person (an enterprise patient index).

    An identity is (0010,0020) Patient ID within (0010,0021) its issuer ("" = none); it need
    not be stored yet (a link may come before the images). ``kind`` says how it came:
    ``link`` (HL7 ADT A24, the admin, the API) or ``merge`` (ADT A40: the ``other`` identity
    was merged into the first). A link never changes a stored object; removing it (ADT A37,
    DELETE) separates the identities again. The pair is stored in a canonical order, so a
    link is one row whichever way it is named. Written only by ``viewer.services.identity``,
    which also writes the audit record of who linked what.
    """

    class Kind(models.TextChoices):
        LINK = "link", "Link"
        MERGE = "merge", "Merge"

    class Source(models.TextChoices):
        ADMIN = "admin", "Admin"
        API = "api", "API"
        HL7 = "hl7", "HL7 v2 ADT"

    patient_id = models.CharField(max_length=LO)
    issuer_of_patient_id = models.CharField(max_length=LO, blank=True)
    other_patient_id = models.CharField(max_length=LO)
    other_issuer_of_patient_id = models.CharField(max_length=LO, blank=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.LINK)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.ADMIN)
    # Who linked them: a user's ID, or "hl7:<sending application>"; a reference such as the
    # HL7 message control ID (MSH-10).
    created_by = models.CharField(max_length=255, blank=True)
    reference = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "patient_id",
                    "issuer_of_patient_id",
                    "other_patient_id",
                    "other_issuer_of_patient_id",
                ],
                name="unique_patient_link",
            )
        ]
        indexes = [
            models.Index(fields=["patient_id", "issuer_of_patient_id"], name="patient_link_a_idx"),
            models.Index(
                fields=["other_patient_id", "other_issuer_of_patient_id"],
                name="patient_link_b_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Patient link {self.pk}"


class Study(models.Model):
    study_instance_uid = models.CharField(max_length=UI, unique=True)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="studies")
    accession_number = models.CharField(max_length=LO, blank=True, db_index=True)
    issuer_of_accession_number = models.CharField(max_length=LO, blank=True)
    study_date = models.DateField(null=True, blank=True)
    study_time = models.TimeField(null=True, blank=True)
    study_description = models.CharField(max_length=LONG_TEXT, blank=True)
    study_id = models.CharField(max_length=SH, blank=True)
    referring_physician_name = models.CharField(max_length=PN, blank=True)
    modalities_in_study = models.CharField(max_length=LONG_TEXT, blank=True)
    number_of_study_related_series = models.PositiveIntegerField(default=0)
    number_of_study_related_instances = models.PositiveIntegerField(default=0)
    # Instances of the study whose pixel data is known not to decode (Instance.undecodable).
    number_of_undecodable_instances = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "studies"
        indexes = [
            # SQLite sorts NULLs last in DESC order already; on PostgreSQL migration 0002
            # adds the NULLS LAST twin that the worklist's default order walks.
            models.Index(fields=["-study_date", "-study_time", "-id"], name="study_date_idx"),
            models.Index(fields=["patient", "-study_date"], name="study_patient_date_idx"),
        ]

    def __str__(self) -> str:
        return self.study_instance_uid


class Series(models.Model):
    """A series, as indexed from its first stored instance (``viewer.dicom.index``).

    ``scheduled_procedure_step_ids`` and ``requested_procedure_ids`` hold the items of
    (0040,0275) Request Attributes Sequence: (0040,0009) Scheduled Procedure Step ID and
    (0040,1001) Requested Procedure ID, each list's values separated by backslashes (an
    SH value holds none), the nth value of each list from the nth item ("" where the item
    has none); both "" = no items. Series stored before migration 0012 have none indexed.
    """

    series_instance_uid = models.CharField(max_length=UI, unique=True)
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="series")
    modality = models.CharField(max_length=CS, blank=True)
    series_number = models.IntegerField(null=True, blank=True)
    series_description = models.CharField(max_length=LONG_TEXT, blank=True)
    body_part_examined = models.CharField(max_length=CS, blank=True)
    frame_of_reference_uid = models.CharField(max_length=UI, blank=True)
    series_date = models.DateField(null=True, blank=True)
    series_time = models.TimeField(null=True, blank=True)
    performed_procedure_step_start_date = models.DateField(null=True, blank=True)
    performed_procedure_step_start_time = models.TimeField(null=True, blank=True)
    scheduled_procedure_step_ids = models.CharField(max_length=LONG_TEXT, blank=True)
    requested_procedure_ids = models.CharField(max_length=LONG_TEXT, blank=True)
    number_of_series_related_instances = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "series"
        indexes = [models.Index(fields=["modality", "study"], name="series_modality_study_idx")]

    def __str__(self) -> str:
        return self.series_instance_uid

    def request_attributes(self) -> list[tuple[str, str]]:
        """The indexed (0040,0275) Request Attributes items as (Scheduled Procedure Step
        ID, Requested Procedure ID), "" where an item has none."""
        if not self.scheduled_procedure_step_ids and not self.requested_procedure_ids:
            return []
        return list(
            itertools.zip_longest(
                self.scheduled_procedure_step_ids.split("\\"),
                self.requested_procedure_ids.split("\\"),
                fillvalue="",
            )
        )


class Instance(models.Model):
    sop_instance_uid = models.CharField(max_length=UI, unique=True)
    series = models.ForeignKey(Series, on_delete=models.PROTECT, related_name="instances")
    sop_class_uid = models.CharField(max_length=UI)
    instance_number = models.IntegerField(null=True, blank=True)
    number_of_frames = models.PositiveIntegerField(default=0)
    rows = models.PositiveIntegerField(null=True, blank=True)
    columns = models.PositiveIntegerField(null=True, blank=True)
    samples_per_pixel = models.PositiveSmallIntegerField(null=True, blank=True)
    bits_allocated = models.PositiveSmallIntegerField(null=True, blank=True)
    bits_stored = models.PositiveSmallIntegerField(null=True, blank=True)
    pixel_representation = models.PositiveSmallIntegerField(null=True, blank=True)
    photometric_interpretation = models.CharField(max_length=CS, blank=True)
    transfer_syntax_uid = models.CharField(max_length=UI)
    # Which attribute the spacing came from: PixelSpacing, ImagerPixelSpacing,
    # NominalScannedPixelSpacing, SequenceOfUltrasoundRegions, or "" (pixels only).
    spacing_attribute = models.CharField(max_length=32, blank=True)
    pixel_spacing_row_mm = models.FloatField(null=True, blank=True)
    pixel_spacing_column_mm = models.FloatField(null=True, blank=True)
    image_position_patient = models.JSONField(null=True, blank=True)
    image_orientation_patient = models.JSONField(null=True, blank=True)
    slice_location = models.FloatField(null=True, blank=True)
    slice_thickness = models.FloatField(null=True, blank=True)
    rescale_slope = models.FloatField(null=True, blank=True)
    rescale_intercept = models.FloatField(null=True, blank=True)
    window_center = models.FloatField(null=True, blank=True)
    window_width = models.FloatField(null=True, blank=True)
    window_presets = models.JSONField(default=list, blank=True)
    # Cine: (0018,1063) Frame Time in ms, (0008,2144) Recommended Display Frame Rate, and
    # (0018,0040) Cine Rate, in frames per second.
    frame_time_ms = models.FloatField(null=True, blank=True)
    recommended_display_frame_rate = models.FloatField(null=True, blank=True)
    cine_rate = models.FloatField(null=True, blank=True)
    # Frames known not to decode: frame number (1-based, as text) -> the reason. Set by
    # ingest's check (LOUPE_INGEST_UNDECODABLE=keep) or by a failed render; {} = none known.
    undecodable = models.JSONField(default=dict, blank=True)
    storage_key = models.CharField(max_length=128)
    sha256 = models.CharField(max_length=64, db_index=True)
    size_bytes = models.PositiveBigIntegerField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["series", "instance_number"], name="instance_series_num_idx")
        ]

    def __str__(self) -> str:
        return self.sop_instance_uid


class Measurement(models.Model):
    """A measurement drawn on one frame of an instance (length, angle, ROI, probe, arrow).

    ``points`` are image coordinates ``[[x, y], ...]`` in pixels, (column, row) with (0, 0)
    the top-left corner of the top-left pixel (SCOORD, PS3.3 C.18.6.1.1; see
    ``viewer.dicom.measure``); ``frame`` is 1-based; ``result`` is what
    ``viewer.dicom.measure.measure`` computed from the modality values and the calibrated
    spacing, recomputed at every change. Written only by ``viewer.services.measurements``.
    """

    class Kind(models.TextChoices):
        LENGTH = "length", "Length"
        ANGLE = "angle", "Angle"
        ELLIPSE = "ellipse", "Ellipse ROI"
        RECTANGLE = "rectangle", "Rectangle ROI"
        POLYGON = "polygon", "Polygon ROI"
        POINT = "point", "Point probe"
        ARROW = "arrow", "Arrow"

    MAX_LABEL = 1000

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The image it was drawn on: a measurement goes with its image.
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="measurements")
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="measurements")
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="measurements")
    frame = models.PositiveIntegerField(default=1)  # 1-based
    kind = models.CharField(max_length=16, choices=Kind.choices)
    points = models.JSONField(default=list)
    label = models.CharField(max_length=MAX_LABEL, blank=True)
    result = models.JSONField(default=dict)
    # Who measured it: a signed number keeps its author.
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="measurements"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["study", "-created_at"], name="measurement_study_idx"),
            models.Index(fields=["instance", "frame"], name="measurement_instance_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(frame__gte=1), name="measurement_frame_1"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.pk}"


class HangingProtocol(models.Model):
    """A declarative hanging protocol: which studies it fits (``match``), and then the
    layout, which series of which study (current or the n-th prior) in which viewport with
    which initial window, and whether the viewports are linked. The JSON shapes are
    validated by ``viewer.services.hanging`` (and documented in the README); the shipped
    set is in ``viewer/hanging_protocols/`` and loaded by ``manage.py
    load_hanging_protocols``. Higher ``priority`` wins among the protocols that match.
    """

    name = models.CharField(max_length=128, unique=True)
    description = models.TextField(blank=True)
    priority = models.IntegerField(default=0)
    enabled = models.BooleanField(default=True)
    match = models.JSONField(default=dict, blank=True)
    layout = models.CharField(max_length=8, default="1x1")
    viewports = models.JSONField(default=list, blank=True)
    sync = models.JSONField(default=dict, blank=True)
    # Where it came from: "shipped", "file" (load_hanging_protocols) or "admin".
    source = models.CharField(max_length=16, default="admin")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-priority", "name"]

    def __str__(self) -> str:
        return self.name


class ShareLink(models.Model):
    """A tumor board's link to some studies: a capability URL, read-only, expiring,
    revocable. Written only by ``viewer.services.sharing``.

    The token (256 random bits) is handed out once and never stored: ``token_sha256`` is
    its SHA-256, the only way in. ``id`` is the public name of the link (in the API, the
    audit trail, the manage page); it opens nothing. ``study_uids`` is the whole scope.
    ``audience`` "anyone-with-link": a visitor needs no account (they act as the link's
    ``guest`` account, which has no password and no role of its own); "signed-in": a
    visitor signs in first. A live link carries the presenter's view (``live_state``,
    ``live_version`` bumped at every change) for the followers' event streams.
    """

    class Audience(models.TextChoices):
        ANYONE = "anyone-with-link", "Anyone with the link"
        SIGNED_IN = "signed-in", "Signed-in users"

    id = models.CharField(primary_key=True, max_length=24, editable=False)
    token_sha256 = models.CharField(max_length=64, unique=True, editable=False)
    study_uids = models.JSONField(default=list)
    view = models.JSONField(default=dict, blank=True)
    audience = models.CharField(max_length=16, choices=Audience.choices, default=Audience.ANYONE)
    deidentify = models.BooleanField(default=False)
    live = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="share_links"
    )
    created_by_user_id = models.CharField(max_length=255, blank=True)  # as the audit names them
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by_user_id = models.CharField(max_length=255, blank=True)
    guest = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="guest_of_share",
    )
    open_count = models.PositiveIntegerField(default=0)
    first_opened_at = models.DateTimeField(null=True, blank=True)
    last_opened_at = models.DateTimeField(null=True, blank=True)
    # Live: who presents (a user's pk and display name) and what they show.
    presenter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="presenting",
    )
    live_state = models.JSONField(default=dict, blank=True)
    live_version = models.PositiveBigIntegerField(default=0)
    live_updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["created_by", "-created_at"], name="share_creator_idx"),
        ]

    def __str__(self) -> str:
        return f"share link {self.pk}"


class ShareVisitor(models.Model):
    """One browser session that opened a share link: when, from where, and (live) whether
    it follows the presenter now. ``session_sha256`` is a hash of the session key (never
    the key); ``id`` is the public name a presenter hands presenting over to."""

    id = models.CharField(primary_key=True, max_length=24, editable=False)
    share = models.ForeignKey(ShareLink, on_delete=models.CASCADE, related_name="visitors")
    session_sha256 = models.CharField(max_length=64)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    display_name = models.CharField(max_length=255, blank=True)
    signed_in = models.BooleanField(default=False)
    client_address = models.CharField(max_length=64, blank=True)
    opened_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    following = models.BooleanField(default=True)
    streaming_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["share", "session_sha256"], name="unique_share_visitor")
        ]

    def __str__(self) -> str:
        return f"visitor {self.pk} of {self.share_id}"


class AppendOnlyError(Exception):
    """An attempt to change or delete an audit record (a programming error, not a client's)."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("audit events are append-only: they cannot be updated")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("audit events are append-only: they cannot be deleted")


class AuditEvent(models.Model):
    """One audit record, with the fields of a DICOM PS3.15 A.5.3 audit message.

    ``event_id`` is the EventID (A.5.3.6 DICOM Instances Accessed, A.5.3.12 User
    Authentication, ...), ``event_type`` its EventTypeCode where the message has one,
    ``action`` the EventActionCode and ``outcome`` the EventOutcomeIndicator (A.5.1). The
    requestor is ``user_id`` / ``alternative_user_id`` at ``client_address`` (an IP: network
    access point type 2); the participant objects are one patient (``patient_id`` with its
    issuer: PatientID^^^issuer) and its studies. Channel, request id, session hash and
    aggregation key are Loupe's own. No names, no tokens, no raw session keys.

    Append-only: ``save()`` of an existing row and ``delete()`` raise AppendOnlyError, and
    database triggers (migration 0003) refuse UPDATE and DELETE from any client.
    """

    class EventId(models.TextChoices):
        # PS3.16 CID 400 Audit Event ID (scheme DCM).
        APPLICATION_ACTIVITY = "110100", "Application Activity"
        AUDIT_LOG_USED = "110101", "Audit Log Used"
        INSTANCES_ACCESSED = "110103", "DICOM Instances Accessed"
        INSTANCES_TRANSFERRED = "110104", "DICOM Instances Transferred"
        EXPORT = "110106", "Export"
        PATIENT_RECORD = "110110", "Patient Record"
        QUERY = "110112", "Query"
        USER_AUTHENTICATION = "110114", "User Authentication"

    class EventType(models.TextChoices):
        # PS3.16 CID 401 Audit Event Type Code (scheme DCM).
        NONE = "", "-"
        APPLICATION_START = "110120", "Application Start"
        LOGIN = "110122", "Login"
        LOGOUT = "110123", "Logout"

    class Action(models.TextChoices):
        CREATE = "C", "Create"
        READ = "R", "Read"
        UPDATE = "U", "Update"
        DELETE = "D", "Delete"
        EXECUTE = "E", "Execute"

    class Outcome(models.IntegerChoices):
        SUCCESS = 0, "Success"
        MINOR_FAILURE = 4, "Minor failure"
        SERIOUS_FAILURE = 8, "Serious failure"
        MAJOR_FAILURE = 12, "Major failure"

    class Channel(models.TextChoices):
        EHR = "ehr", "EHR launch"
        SSO = "sso", "Single sign-on"
        SHARE = "share", "Share link"
        DIRECT = "direct", "Direct log-in"
        API = "api", "Bearer token (API token or OIDC access token)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event_id = models.CharField(max_length=8, choices=EventId.choices)
    event_type = models.CharField(max_length=8, choices=EventType.choices, blank=True)
    action = models.CharField(max_length=1, choices=Action.choices)
    recorded_at = models.DateTimeField(default=timezone.now)
    outcome = models.PositiveSmallIntegerField(choices=Outcome.choices)
    user_id = models.CharField(max_length=255, blank=True)
    alternative_user_id = models.CharField(max_length=255, blank=True)
    client_address = models.CharField(max_length=64, blank=True)
    patient_id = models.CharField(max_length=LO, blank=True)
    issuer_of_patient_id = models.CharField(max_length=LO, blank=True)
    study_uids = models.JSONField(default=list, blank=True)
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.DIRECT)
    request_id = models.CharField(max_length=64, blank=True)
    session_hash = models.CharField(max_length=64, blank=True)
    # One row per aggregated activity (image access: user, patient, study, session,
    # outcome); NULL for events recorded one row each.
    aggregation_key = models.CharField(max_length=64, null=True, blank=True, unique=True)
    instance_count = models.PositiveIntegerField(default=0)
    detail = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(
                fields=["patient_id", "issuer_of_patient_id", "-recorded_at"],
                name="audit_patient_idx",
            ),
            models.Index(fields=["-recorded_at"], name="audit_recorded_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(outcome__in=[0, 4, 8, 12]), name="audit_outcome_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(action__in=["C", "R", "U", "D", "E"]), name="audit_action_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_id_display()} {self.recorded_at:%Y-%m-%d %H:%M:%S}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("audit events are append-only: a recorded event cannot change")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("audit events are append-only: they cannot be deleted")


class ApiToken(models.Model):
    """An API token of a service account, for machine clients of DICOMweb and FHIR
    (``Authorization: Bearer <token>``, ``viewer.apitokens``).

    Only the token's SHA-256 hash is stored (``token_hash``); ``prefix`` is its first
    characters, shown in the admin to tell tokens apart. The token itself is shown once,
    when it is issued (the admin's add form, ``manage.py issue_api_token``). The service
    account is a Django user with no usable password; what the token may see is what that
    user's role allows (``viewer.roles``). ``last_used_at`` is updated at most once a minute.
    """

    PREFIX_LENGTH = 8

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What the token is for (a client, a script)")
    prefix = models.CharField(max_length=16, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_active(self, now: Any = None) -> bool:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now


class UpstreamCacheEntry(models.Model):
    """A study fetched from an upstream DICOMweb archive on demand
    (``viewer.services.upstream``): the fetch's progress, then an entry of the bounded
    cache (LOUPE_UPSTREAM_CACHE_MB), the least recently used evicted first.

    ``bytes`` counts only the objects this fetch stored (``UpstreamCachedInstance``);
    an object that was already held, or came in through upload, import, STOW-RS or
    C-STORE, is local and never evicted. ``message`` says why a fetch failed (no PHI).
    """

    class State(models.TextChoices):
        FETCHING = "fetching", "Fetching"
        CACHED = "cached", "Cached"
        FAILED = "failed", "Failed"

    upstream = models.CharField(max_length=32)
    study_instance_uid = models.CharField(max_length=64, unique=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.FETCHING)
    instances_total = models.PositiveIntegerField(default=0)
    instances_fetched = models.PositiveIntegerField(default=0)
    instances_failed = models.PositiveIntegerField(default=0)
    message = models.CharField(max_length=300, blank=True)
    bytes = models.PositiveBigIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    last_used_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name_plural = "upstream cache entries"

    def __str__(self) -> str:
        return f"{self.upstream}: {self.study_instance_uid}"


class UpstreamCachedInstance(models.Model):
    """An object a fetch from upstream stored (it was not held before): the cache may
    remove it, while its row still holds these bytes (``sha256``)."""

    entry = models.ForeignKey(
        UpstreamCacheEntry, on_delete=models.CASCADE, related_name="cached_instances"
    )
    sop_instance_uid = models.CharField(max_length=64, unique=True)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField()

    def __str__(self) -> str:
        return self.sop_instance_uid
