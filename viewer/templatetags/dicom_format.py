"""Template filters that format DICOM values for people. Output is auto-escaped."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def person_name(value: str) -> str:
    """PS3.5 §6.2.1 PN ``Family^Given^Middle^Prefix^Suffix``, groups separated by ``=``.

    Each group (alphabetic, ideographic, phonetic) is shown as "Family, Given Middle";
    the groups are joined with " = ", so a Japanese name keeps all three forms.
    """
    groups = []
    for group in str(value or "").split("="):
        parts = [p.strip() for p in group.split("^")]
        family = parts[0] if parts else ""
        rest = " ".join(p for p in parts[1:3] if p)
        shown = f"{family}, {rest}" if family and rest else family or rest
        if shown:
            groups.append(shown)
    return " = ".join(groups)


@register.filter
def modalities(value: str) -> str:
    return ", ".join(v for v in str(value or "").split("\\") if v)
