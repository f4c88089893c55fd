from django.contrib import admin

from viewer.models import Instance, Patient, Series, Study


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
