"""The worklist query: studies filtered, sorted and paginated from validated parameters."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Exists, F, OuterRef, QuerySet

from viewer.models import Series, Study, search_form

PAGE_SIZE = 50

SORTS: dict[str, list[object]] = {
    "-date": [F("study_date").desc(nulls_last=True), F("study_time").desc(nulls_last=True), "-id"],
    "date": [F("study_date").asc(nulls_last=True), F("study_time").asc(nulls_last=True), "id"],
    "name": ["patient__patient_name_search", "-id"],
    "-name": ["-patient__patient_name_search", "-id"],
    "patient_id": ["patient__patient_id", "-id"],
    "-patient_id": ["-patient__patient_id", "-id"],
    "accession": ["accession_number", "-id"],
    "-accession": ["-accession_number", "-id"],
    "modality": ["modalities_in_study", "-id"],
    "-modality": ["-modalities_in_study", "-id"],
}


@dataclass
class WorklistQuery:
    name: str = ""
    patient_id: str = ""
    accession: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    modality: str = ""
    sort: str = "-date"
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_params(cls, params: dict[str, str]) -> WorklistQuery:
        query = cls(
            name=params.get("name", "").strip()[:64],
            patient_id=params.get("patient_id", "").strip()[:64],
            accession=params.get("accession", "").strip()[:64],
            modality=params.get("modality", "").strip().upper()[:16],
        )
        for attribute in ("date_from", "date_to"):
            raw = params.get(attribute, "").strip()
            if raw:
                try:
                    setattr(query, attribute, dt.date.fromisoformat(raw))
                except ValueError:
                    query.errors.append(f"'{raw}' is not a date (use YYYY-MM-DD); filter ignored")
        sort = params.get("sort", "-date")
        if sort in SORTS:
            query.sort = sort
        else:
            query.errors.append(f"unknown sort '{sort[:32]}'; sorted by date")
        return query

    def filter_names(self) -> list[str]:
        """The filters in use, by name (for the audit trail, which keeps no values)."""
        names = ("name", "patient_id", "accession", "date_from", "date_to", "modality")
        return [name for name in names if getattr(self, name)]

    def studies(self, visible: QuerySet[Study]) -> QuerySet[Study]:
        """The matching studies among ``visible`` (``viewer.access.visible_studies``)."""
        studies = visible.select_related("patient")
        if self.name:
            studies = studies.filter(patient__patient_name_search__contains=search_form(self.name))
        if self.patient_id:
            studies = studies.filter(patient__patient_id__startswith=self.patient_id)
        if self.accession:
            studies = studies.filter(accession_number__startswith=self.accession)
        if self.date_from:
            studies = studies.filter(study_date__gte=self.date_from)
        if self.date_to:
            studies = studies.filter(study_date__lte=self.date_to)
        if self.modality:
            studies = studies.filter(
                Exists(Series.objects.filter(study=OuterRef("pk"), modality=self.modality))
            )
        return studies.order_by(*SORTS[self.sort])  # type: ignore[arg-type]
