from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from viewer.models import AuditEvent, Instance, Patient, Series, Study


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ("patient_id", "issuer_of_patient_id", "patient_name", "patient_birth_date")
    search_fields = ("patient_id", "patient_name_search")


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ("study_date", "accession_number", "study_description", "modalities_in_study")
    search_fields = ("study_instance_uid", "accession_number")
    raw_id_fields = ("patient",)


@admin.register(Series)
class SeriesAdmin(admin.ModelAdmin):
    list_display = ("series_instance_uid", "modality", "series_number", "series_description")
    raw_id_fields = ("study",)


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
    list_display = ("sop_instance_uid", "instance_number", "rows", "columns", "number_of_frames")
    raw_id_fields = ("series",)
    readonly_fields = ("sha256", "storage_key", "size_bytes")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Who saw this patient: the audit trail, read-only (append-only in the database)."""

    list_display = (
        "recorded_at",
        "event_id",
        "event_type",
        "action",
        "outcome",
        "user_id",
        "patient_id",
        "issuer_of_patient_id",
        "channel",
        "client_address",
    )
    list_filter = ("event_id", "outcome", "channel")
    search_fields = ("=patient_id", "user_id")
    date_hierarchy = "recorded_at"
    ordering = ("-recorded_at",)
    actions = None
    exclude = ("session_hash", "aggregation_key")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
