"""UID syntax per DICOM PS3.5 §9.1 "UID Encoding Rules".

A UID is a string of at most 64 characters made of numeric components separated by
``.``; each component is a run of the digits 0-9. The standard also says that the first
digit of a multi-digit component shall not be 0. Files with such leading zeros exist in
the wild (pydicom-data's dental CR, for one) and no PACS refuses them, so Loupe accepts
them; anything else outside the syntax (letters, ``/``, ``..``, spaces, NUL, empty
components, over 64 characters) is refused. Because UIDs are never used to build a path,
this check is about correctness, not about containment.
"""

from __future__ import annotations

import re

_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
MAX_UID_LENGTH = 64


def uid_problem(value: object) -> str | None:
    """Return why ``value`` is not a valid UID, or None when it is one."""
    if value is None:
        return "is missing"
    text = str(value)
    if text == "":
        return "is empty"
    if len(text) > MAX_UID_LENGTH:
        return f"is {len(text)} characters long (PS3.5 §9.1 allows 64)"
    if not _UID_RE.match(text):
        shown = text.encode("unicode_escape").decode("ascii")[:80]
        return f"'{shown}' has characters or empty components outside PS3.5 §9.1 (digits and dots)"
    return None


def is_valid_uid(value: object) -> bool:
    return uid_problem(value) is None
