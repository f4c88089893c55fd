"""Template filters that format DICOM values for people. Output is auto-escaped."""

from __future__ import annotations

from django import template

from viewer.dicom.names import format_person_name

register = template.Library()


@register.filter
def person_name(value: str) -> str:
    """(0010,0010) and other PN values as people read them (``format_person_name``)."""
    return format_person_name(value)


@register.filter
def modalities(value: str) -> str:
    return ", ".join(v for v in str(value or "").split("\\") if v)
