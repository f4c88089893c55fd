"""Person Names (PS3.5 §6.2 PN) as people read them: one form for every page and the viewer."""

from __future__ import annotations


def format_person_name(value: str | None) -> str:
    """``Family^Given^Middle^Prefix^Suffix`` components, groups separated by ``=``.

    Each group (alphabetic, ideographic, phonetic; PS3.5 §6.2.1.2) reads "Family, Given
    Middle"; empty components and groups are left out, prefix and suffix are not shown,
    and the groups are joined with " = ", so a Japanese name keeps all three forms.
    """
    groups = []
    for group in str(value or "").split("="):
        parts = [p.strip() for p in group.split("^")]
        family = parts[0]
        rest = " ".join(p for p in parts[1:3] if p)
        shown = f"{family}, {rest}" if family and rest else family or rest
        if shown:
            groups.append(shown)
    return " = ".join(groups)
