"""The admin's pages of the archive's index. They show patient data, so each is audited
as any other access: a list is a Query (PS3.15 A.5.3.10, the search's presence but not
its words, and how many rows matched), an object's page or history an Instances Accessed
record (A.5.3.6) of its patient and studies."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Model
from django.http import HttpRequest, HttpResponse

from viewer import apitokens, requester
from viewer.dicom.patients import PatientRef
from viewer.errors import ViewerError
from viewer.models import (
    ApiToken,
    AuditEvent,
    HangingProtocol,
    Instance,
    Patient,
    PatientLink,
    Series,
    Study,
)
from viewer.services import audit, hanging, identity


class AuditedAdmin(admin.ModelAdmin):
    """Records who saw which patient's rows, page by page."""

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            filters = [f"admin:{self.model._meta.model_name}"]
            filters += ["search"] if request.GET.get("q") else []
            filters += sorted(
                k for k in request.GET if k not in ("q", "o", "p", "_changelist_filters")
            )
            audit.record_query(request, filters=filters, count=changelist.result_count)
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        self._record_opened(request, object_id, "change")
        return super().change_view(request, object_id, form_url, extra_context)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: Any = None
    ) -> HttpResponse:
        self._record_opened(request, object_id, "history")
        return super().history_view(request, object_id, extra_context)

    def _record_opened(self, request: HttpRequest, object_id: str, page: str) -> None:
        found = self.get_object(request, object_id)
        if found is None:
            return  # the admin answers its own "does not exist" page
        patient, studies = self.patient_and_studies(found)
        audit.record_patient_opened(
            request, patient, studies, view=f"admin:{self.model._meta.model_name}:{page}"
        )

    def patient_and_studies(self, found: Model) -> tuple[PatientRef, list[str]]:
        study = self.study_of(found)
        return PatientRef.of(study), [study.study_instance_uid]

    def study_of(self, found: Model) -> Study:
        raise NotImplementedError


@admin.register(Patient)
class PatientAdmin(AuditedAdmin):
    list_display = ("patient_id", "issuer_of_patient_id", "patient_name", "patient_birth_date")
    search_fields = ("patient_id", "patient_name_search")

    def patient_and_studies(self, found: Model) -> tuple[PatientRef, list[str]]:
        assert isinstance(found, Patient)
        studies = found.studies.values_list("study_instance_uid", flat=True)
        return PatientRef(found.patient_id, found.issuer_of_patient_id), list(studies)


@admin.register(Study)
class StudyAdmin(AuditedAdmin):
    list_display = ("study_date", "accession_number", "study_description", "modalities_in_study")
    search_fields = ("study_instance_uid", "accession_number")
    raw_id_fields = ("patient",)

    def study_of(self, found: Model) -> Study:
        assert isinstance(found, Study)
        return found


@admin.register(Series)
class SeriesAdmin(AuditedAdmin):
    list_display = ("series_instance_uid", "modality", "series_number", "series_description")
    raw_id_fields = ("study",)

    def study_of(self, found: Model) -> Study:
        assert isinstance(found, Series)
        return found.study


@admin.register(Instance)
class InstanceAdmin(AuditedAdmin):
    list_display = ("sop_instance_uid", "instance_number", "rows", "columns", "number_of_frames")
    raw_id_fields = ("series",)
    readonly_fields = ("sha256", "storage_key", "size_bytes", "undecodable")

    def study_of(self, found: Model) -> Study:
        assert isinstance(found, Instance)
        return found.series.study


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


class HangingProtocolForm(forms.ModelForm):
    """The JSON fields checked by ``viewer.services.hanging``'s validator, each error on
    its field with the message naming the part at fault (``viewports[1].series: ...``)."""

    class Meta:
        model = HangingProtocol
        fields = (
            "name",
            "description",
            "priority",
            "enabled",
            "match",
            "layout",
            "viewports",
            "sync",
        )

    def _checked(self, name: str, check: Any, *args: Any) -> Any:
        value = self.cleaned_data.get(name)
        try:
            check(value, *args)
        except hanging.InvalidProtocol as exc:
            raise forms.ValidationError(exc.message) from None
        return value

    def clean_match(self) -> Any:
        return self._checked("match", hanging.validate_match)

    def clean_layout(self) -> Any:
        return self._checked("layout", hanging.validate_layout)

    def clean_sync(self) -> Any:
        return self._checked("sync", hanging.validate_sync)

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if "viewports" in cleaned and "layout" in cleaned:
            try:
                hanging.validate_viewports(cleaned["viewports"], cleaned["layout"])
            except hanging.InvalidProtocol as exc:
                self.add_error("viewports", exc.message)
        return cleaned


@admin.register(HangingProtocol)
class HangingProtocolAdmin(admin.ModelAdmin):
    """Hanging protocols (no patient data, so not audited as the index is). A protocol
    saved here is marked ``source`` "admin"; ``load_hanging_protocols`` upserts by name."""

    form = HangingProtocolForm
    list_display = ("name", "priority", "enabled", "layout", "source", "updated_at")
    list_filter = ("enabled", "source", "layout")
    search_fields = ("name", "description")
    readonly_fields = ("source", "updated_at")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        obj.source = "admin"
        super().save_model(request, obj, form, change)


class PatientLinkForm(forms.ModelForm):
    """Two identities of one person: each Patient ID within its issuer, cleaned and
    checked by ``viewer.services.identity`` (an error names the field at fault)."""

    class Meta:
        model = PatientLink
        fields = (
            "patient_id",
            "issuer_of_patient_id",
            "other_patient_id",
            "other_issuer_of_patient_id",
            "kind",
            "reference",
        )

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        pairs = (
            ("patient", "patient_id", "issuer_of_patient_id"),
            ("other_patient", "other_patient_id", "other_issuer_of_patient_id"),
        )
        found: list[identity.Identity] = []
        for name, pid, issuer in pairs:
            if pid not in cleaned:
                return cleaned  # the field's own error is shown already
            try:
                found.append(identity.clean((cleaned[pid], cleaned.get(issuer, "")), name))
            except ViewerError as exc:
                self.add_error(pid, exc.message)
                return cleaned
        if found[0] == found[1]:
            self.add_error("other_patient_id", "a patient cannot be linked to itself")
        return cleaned


@admin.register(PatientLink)
class PatientLinkAdmin(admin.ModelAdmin):
    """The cross-reference of identities (an enterprise patient index). Adding and
    deleting go through ``viewer.services.identity`` (the person keys recomputed, a Patient
    Record event naming the administrator); a link is never edited (delete it and add
    another). Patient IDs are patient data, so the list is audited as a Query and a link's
    page as both patients' records opened."""

    form = PatientLinkForm
    list_display = (
        "patient_id",
        "issuer_of_patient_id",
        "other_patient_id",
        "other_issuer_of_patient_id",
        "kind",
        "source",
        "created_by",
        "created_at",
    )
    list_filter = ("kind", "source")
    search_fields = ("=patient_id", "=other_patient_id")
    ordering = ("-created_at",)
    actions = None

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else ("source", "created_by", "created_at")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _who(self, request: HttpRequest) -> dict[str, Any]:
        return {
            "source": PatientLink.Source.ADMIN,
            "user_id": requester.user_id(request),
            "client_address": requester.client_address(request),
            "channel": requester.channel(request),
            "request": request,
        }

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        row, _ = identity.link_or_existing(
            (obj.patient_id, obj.issuer_of_patient_id),
            (obj.other_patient_id, obj.other_issuer_of_patient_id),
            kind=obj.kind,
            reference=obj.reference,
            **self._who(request),
        )
        # The admin's message and redirect name the stored row (an existing link, if any).
        for field in row._meta.concrete_fields:
            setattr(obj, field.attname, getattr(row, field.attname))

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        identity.unlink(
            (obj.patient_id, obj.issuer_of_patient_id),
            (obj.other_patient_id, obj.other_issuer_of_patient_id),
            **self._who(request),
        )

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            filters = ["admin:patientlink"] + (["search"] if request.GET.get("q") else [])
            audit.record_query(request, filters=filters, count=changelist.result_count)
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        found = self.get_object(request, object_id)
        if found is not None:
            for pid, issuer in (
                (found.patient_id, found.issuer_of_patient_id),
                (found.other_patient_id, found.other_issuer_of_patient_id),
            ):
                studies = Study.objects.filter(
                    patient__patient_id=pid, patient__issuer_of_patient_id=issuer
                ).values_list("study_instance_uid", flat=True)
                audit.record_patient_opened(
                    request, PatientRef(pid, issuer), list(studies), view="admin:patientlink"
                )
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """API tokens of service accounts (``viewer.apitokens``). Adding one issues a new token
    and shows it once, in a message; only its hash is kept. "Revoke" ends a token."""

    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "expires_at")
    list_filter = ("revoked_at",)
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke_tokens"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["user", "name", "expires_at"]
        return ["user", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return (*self.readonly_fields, "user") if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        row, token = apitokens.issue(obj.user, obj.name, expires_at=obj.expires_at)
        obj.pk, obj.prefix, obj.token_hash = row.pk, row.prefix, row.token_hash
        obj._state.adding = False
        messages.warning(
            request,
            f"The API token for {obj.user.get_username()} is {token} — copy it now: it is "
            "shown only this once (Loupe keeps only its hash). Send it as "
            "'Authorization: Bearer <token>'.",
        )

    @admin.action(description="Revoke the selected tokens")
    def revoke_tokens(self, request: HttpRequest, queryset: Any) -> None:
        for row in queryset:
            apitokens.revoke(row)
        self.message_user(request, f"{len(queryset)} token(s) revoked.")
