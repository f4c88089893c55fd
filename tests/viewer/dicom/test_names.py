"""Person Names (PS3.5 §6.2 PN) as people read them: one formatter for the pages (the
``person_name`` filter) and the viewer (the study metadata's ``patient_name_display``)."""

from __future__ import annotations

from typing import Any

import pytest
from django.template import Context, Template

from viewer.dicom.names import format_person_name
from viewer.models import Patient, Study

NAMES = [
    ("Doe^Jane", "Doe, Jane"),
    ("Doe^Jane^Quincy", "Doe, Jane Quincy"),
    ("Doe^Jane^Quincy^Dr^Jr", "Doe, Jane Quincy"),  # prefix and suffix are not shown
    ("Doe", "Doe"),
    ("^Jane", "Jane"),  # no family name
    ("Doe^^Quincy", "Doe, Quincy"),  # an empty given name
    ("Doe^Jane^^^", "Doe, Jane"),  # trailing empty components
    ("^^^^", ""),
    ("", ""),
    (" Doe ^ Jane ", "Doe, Jane"),  # padding inside components
    # PS3.5 H.3.2: alphabetic = ideographic = phonetic groups.
    ("Yamada^Tarou=山田^太郎=やまだ^たろう", "Yamada, Tarou = 山田, 太郎 = やまだ, たろう"),
    ("=山田^太郎=やまだ^たろう", "山田, 太郎 = やまだ, たろう"),  # no alphabetic group
    ("Wang^XiaoDong=王^小東=", "Wang, XiaoDong = 王, 小東"),  # an empty last group
    ("Doe^Jane==", "Doe, Jane"),
]


@pytest.mark.parametrize(("value", "shown"), NAMES)
def test_a_person_name_reads_family_comma_given_middle_per_group(value: str, shown: str) -> None:
    assert format_person_name(value) == shown


def test_no_name_reads_as_nothing() -> None:
    assert format_person_name(None) == ""


@pytest.mark.parametrize(("value", "shown"), NAMES)
def test_the_template_filter_shows_the_same(value: str, shown: str) -> None:
    template = Template("{% load dicom_format %}{{ name|person_name }}")
    assert template.render(Context({"name": value})) == shown


@pytest.mark.django_db
def test_the_viewer_metadata_carries_the_name_as_the_pages_show_it(
    logged_in_client: Any,
) -> None:
    template = Template("{% load dicom_format %}{{ name|person_name }}")
    for index, (value, shown) in enumerate(NAMES):
        patient = Patient.objects.create(patient_id=f"P{index}", patient_name=value)
        study = Study.objects.create(
            study_instance_uid=f"1.2.826.0.1.3680043.2.1143.{index}", patient=patient
        )
        metadata = logged_in_client.get(f"/api/studies/{study.study_instance_uid}").json()
        assert metadata["patient"]["patient_name"] == value  # the value as stored
        assert metadata["patient"]["patient_name_display"] == shown
        assert template.render(Context({"name": value})) == shown
