"""QIDO-RS: search for studies, series and instances (PS3.18 §10.6, query parameters
§8.3.4), answered from the index alone as DICOM JSON (PS3.18 Annex F).

Resources: ``/studies``, ``/studies/{study}/series``, ``/series``,
``/studies/{study}/series/{series}/instances``, ``/studies/{study}/instances`` and
``/instances``. The answer is ``application/dicom+json`` (``application/json`` and
``*/*`` are taken for it; anything else is 406), a JSON array, ``[]`` with 200 when
nothing matches (CP-2473: 204 carries no body, and clients read both).

Matching (PS3.4 C.2.2.2, PS3.18 §8.3.4.1): an attribute is named by keyword or by tag
(``PatientName=`` or ``00100010=``); an empty value or ``*`` is universal matching;
UIDs match a list (comma or backslash separated) and never a wildcard; ``*`` and ``?``
are wildcards in text and person names; DA and TM take a single value or a range
(``20200101-20201231``, ``-20201231``, ``20200101-``; a TM value of lower precision
covers its whole hour, minute or second); StudyDate and StudyTime match independently
(combined date-time matching is not offered). Person names match case-insensitively
as a whole (trailing empty components and the ideographic and phonetic groups aside);
other values case-sensitively. ``fuzzymatching=true``: every word of a person name
query (split at ``^``, spaces and ``=``) must begin a component of the name,
case-insensitively, so ``joh do`` finds ``DOE^JOHN``; text attributes (descriptions,
IDs) then match case-insensitively too. Attributes of a higher level narrow a lower
level's search (``/series?PatientID=``), and of a lower level a higher one's
(``/studies?Modality=CT``: the studies with such a series).

Sequence matching (PS3.4 C.2.2.2.6) on the one sequence Loupe indexes, the series'
(0040,0275) Request Attributes Sequence, through its items' (0040,0009) Scheduled
Procedure Step ID and (0040,1001) Requested Procedure ID
(``RequestAttributesSequence.ScheduledProcedureStepID=`` or ``00400275.00400009=``): a
series matches if any of its items' values does, with ``*`` and ``?`` as for other
text. (0040,0244) and (0040,0245) Performed Procedure Step Start Date and Time match as
StudyDate and StudyTime do, each on its own.

Returned (PS3.18 Table 10.6.3-3/-4/-5): each level's default attributes, those matched
on, those asked with ``includefield`` (repeated or comma separated; ``all`` = every
attribute Loupe indexes at the levels shown; an attribute Loupe does not index is left
out), and the computed (0008,0005) ``ISO_IR 192``, (0008,1190) Retrieve URL (absolute,
from the request) and (0008,0056) Instance Availability ``ONLINE``. The series'
Performed Procedure Step Start Date and Time and Request Attributes Sequence (both IDs in
each item) are "present if known" (Table 10.6.3-4): left out of a row without a value,
unless matched on or asked for. A search of ``/series`` also returns the study's
attributes, of ``/instances`` the study's and the series', of ``/studies/{study}/instances``
the series'. ``limit`` and ``offset`` page the answer in SQL; at most :data:`MAX_RESULTS`
come at once, and a ``Warning: 299`` header says when more can be requested (§8.3.4.4).

Refused with 400 and a message naming the problem: an unknown keyword or tag, an
attribute Loupe does not index (such as (0008,0201) Timezone Offset From UTC, and any
sequence path but the two Request Attributes items: no column holds them, and a search
never opens the stored files), a value that is not of its VR (a Request Attributes ID
is one SH value: no backslash), a backwards range, a bad ``limit``, ``offset`` or
``fuzzymatching``.

Scope and audit: only the studies this session may see (``viewer.access``); a path's
study or series that it may not see is the same 404 as an unknown one (and recorded
by the gate). Every search is recorded as an A.5.3.10 Query with the *names* of its
matching attributes, never their values. In a de-identified share the patient's
identifiers are replaced or left out and the descriptions cleaned
(``viewer.services.deidentify``), and matching on them is refused.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.urls import reverse
from django.views.decorators.http import require_safe
from pydicom.datadict import keyword_for_tag, tag_for_keyword

from viewer import access
from viewer.dicomweb import dicomjson
from viewer.dicomweb.dicomjson import BY_KEYWORD, RANK, Attribute
from viewer.errors import ViewerError
from viewer.models import Instance, Series, Study
from viewer.services import audit, deidentify

MEDIA_TYPE = "application/dicom+json"
MAX_RESULTS = 1000  # per answer; more are paged with offset (Warning 299)
_ACCEPTED = {MEDIA_TYPE, "application/json", "application/*", "*/*"}
_CONTROL = {"includefield", "fuzzymatching", "limit", "offset", "accept"}
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_TAG = re.compile(r"[0-9A-Fa-f]{8}")
_DA = re.compile(r"(\d{4})(\d{2})(\d{2})")
_TM = re.compile(r"(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?")
# PS3.18 Table 10.6.1-5 names (0040,0275) "Request Attribute Sequence"; its keyword is
# RequestAttributesSequence.
_ALIASES = {"RequestAttributeSequence": "RequestAttributesSequence"}
# In a de-identified share, matching on these would tell them (a match is an oracle).
_DEIDENTIFIED_UNMATCHABLE = {"StudyDescription", "SeriesDescription"}

# The path from a search level's model to each level's row, for a filter on it.
_PATHS: dict[tuple[str, str], str] = {
    ("study", "patient"): "patient__",
    ("study", "study"): "",
    ("series", "patient"): "study__patient__",
    ("series", "study"): "study__",
    ("series", "series"): "",
    ("instance", "patient"): "series__study__patient__",
    ("instance", "study"): "series__study__",
    ("instance", "series"): "series__",
    ("instance", "instance"): "",
}


class BadQuery(ViewerError):
    code = "bad_query_parameter"


class NotAcceptable(ViewerError):
    status = 406
    code = "not_acceptable"


@dataclass
class Query:
    """A search's validated query parameters."""

    level: str  # study, series, instance
    matches: list[tuple[Attribute, str]] = field(default_factory=list)
    named: list[Attribute] = field(default_factory=list)  # matched, universal ones too
    include: set[str] = field(default_factory=set)
    include_all: bool = False
    fuzzy: bool = False
    limit: int = MAX_RESULTS
    offset: int = 0
    capped: bool = False  # a limit above MAX_RESULTS was lowered to it

    def filter_names(self) -> list[str]:
        return sorted({a.keyword for a in self.named})


# -- parsing ---------------------------------------------------------------------------


def _resolve(name: str) -> Attribute | None:
    """The attribute ``name`` (a keyword or eight hex digits, or a sequence path of them)
    names: an Attribute Loupe indexes, None for a DICOM attribute it does not; 400 for a
    name that is neither and for a sequence path Loupe does not index."""
    if "." in name:
        item = _item_attribute(name)
        if item is None:
            raise BadQuery(
                f"sequence matching ({name[:128]}) is not supported: Loupe indexes no "
                "sequence attributes but the items of (0040,0275) Request Attributes "
                "Sequence, RequestAttributesSequence.ScheduledProcedureStepID and "
                "RequestAttributesSequence.RequestedProcedureID",
                code="unsupported_matching_key",
            )
        return item
    found = _resolve_known(name)
    if found is None:
        raise BadQuery(
            f"unknown attribute '{name[:64]}': name an attribute by its DICOM keyword or its "
            "tag as eight hex digits (PS3.18 §8.3.4.1)",
            code="unknown_attribute",
        )
    return BY_KEYWORD.get(found)


def _item_attribute(path: str) -> Attribute | None:
    """The item attribute a sequence path (``Sequence.Item``, keywords or tags) names,
    None for a path of DICOM attributes Loupe does not index; 400 for a part that is not
    a DICOM attribute."""
    keywords = []
    for part in path.split("."):
        keyword = _resolve_known(part)
        if keyword is None:
            raise BadQuery(f"unknown attribute '{part[:64]}' in '{path[:128]}'")
        keywords.append(keyword)
    if len(keywords) != 2:
        return None
    return dicomjson.ITEM_ATTRIBUTES.get((keywords[0], keywords[1]))


def _resolve_known(name: str) -> str | None:
    """The keyword of the DICOM attribute ``name`` names, or None."""
    if _TAG.fullmatch(name):
        keyword = keyword_for_tag(int(name, 16))
        return keyword or None
    name = _ALIASES.get(name, name)
    return name if tag_for_keyword(name) is not None else None


def _count(params: QueryDict, name: str) -> int:
    raw = params.get(name, "")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise BadQuery(f"{name} must be a whole number from 0 to 999999999 (got '{raw[:20]}')")
    return int(raw)


def parse(params: QueryDict, level: str, *, deidentified: bool = False) -> Query:
    """Validate a search's query parameters (400 naming the first bad one)."""
    query = Query(level)
    for name in params:
        values = params.getlist(name)
        if name == "includefield":
            _parse_includes(query, values)
        elif name == "fuzzymatching":
            flag = params.get(name, "").lower()
            if flag not in ("true", "false"):
                raise BadQuery(f"fuzzymatching must be true or false (got '{flag[:20]}')")
            query.fuzzy = flag == "true"
        elif name in ("limit", "offset"):
            setattr(query, name, _count(params, name))
        elif name == "accept":
            continue
        else:
            _parse_match(query, name, values, deidentified)
    if query.limit > MAX_RESULTS:
        query.limit, query.capped = MAX_RESULTS, True
    return query


def _parse_includes(query: Query, values: list[str]) -> None:
    for value in values:
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            if part == "all":
                query.include_all = True
                continue
            if "." in part:  # a sequence's item attribute: the sequence is returned, if indexed
                item = _item_attribute(part)
                if item is not None:
                    query.include.add(item.sequence)
                continue
            found = _resolve(part)
            if found is not None:  # one Loupe does not index is left out of the answer
                query.include.add(found.keyword)


def _parse_match(query: Query, name: str, values: list[str], deidentified: bool) -> None:
    found = _resolve(name)
    keyword = _resolve_known(name) or name
    if found is None:
        if keyword in dicomjson.ITEM_OF:
            sequence = dicomjson.ITEM_OF[keyword]
            raise BadQuery(
                f"matching on {keyword} is not supported on its own: it is matched as an "
                f"item of {sequence} ({sequence}.{keyword}=)",
                code="unsupported_matching_key",
            )
        named = (
            " (PS3.18 §10.6.1.2.1 lets a search name it; Loupe does not index it yet)"
            if keyword in dicomjson.NOT_INDEXED
            else ""
        )
        raise BadQuery(
            f"matching on {keyword} is not supported: Loupe does not index it{named}",
            code="unsupported_matching_key",
        )
    if not found.matchable:
        raise BadQuery(
            f"{keyword} is returned but cannot be matched on", code="unsupported_matching_key"
        )
    if deidentified and (found.identifying or keyword in _DEIDENTIFIED_UNMATCHABLE):
        raise BadQuery(
            f"matching on {keyword} is not available in a de-identified share",
            code="deidentified_share",
        )
    if len(values) > 1 and found.vr != "UI":
        raise BadQuery(f"{keyword} is given more than once")
    value = "\\".join(v.strip() for v in values) if found.vr == "UI" else values[0].strip()
    if found.vr == "SQ" and value not in ("", "*"):
        raise BadQuery(
            f"{keyword} is a sequence: match on an attribute of its items "
            f"({keyword}.ScheduledProcedureStepID=, {keyword}.RequestedProcedureID=)",
            code="unsupported_matching_key",
        )
    query.named.append(found)
    if value in ("", "*") or (found.vr == "UI" and not _uids(value)):
        return  # universal matching: every row, and the attribute is returned
    _validate(found, value)
    query.matches.append((found, value))


def _validate(attribute: Attribute, value: str) -> None:
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise BadQuery(f"{attribute.keyword}: the value holds a control character")
    if attribute.vr == "UI":
        for uid in _uids(value):
            if not _UID.fullmatch(uid) or len(uid) > 64:
                raise BadQuery(
                    f"{attribute.keyword}: '{uid[:70]}' is not a UID (UIDs are matched as a "
                    "list separated by commas or backslashes, never with wildcards)"
                )
    elif attribute.vr in ("DA", "TM"):
        _range(attribute, value)
    elif attribute.vr == "IS":
        if not re.fullmatch(r"[+-]?\d{1,10}", value):
            raise BadQuery(f"{attribute.keyword}: '{value[:20]}' is not a whole number")
    elif len(value) > 256:
        raise BadQuery(f"{attribute.keyword}: the value is longer than 256 characters")
    elif attribute.multiple and "\\" in value:
        raise BadQuery(
            f"{attribute.keyword}: one value, without a backslash (a series matches if any "
            "of its items' values matches it)"
        )


def _uids(value: str) -> list[str]:
    return [u.strip() for u in re.split(r"[,\\]", value) if u.strip()]


def _parse_da(text: str) -> dt.date:
    match = _DA.fullmatch(text)
    if not match:
        raise ValueError(text)
    return dt.date(*(int(g) for g in match.groups()))


def _parse_tm(text: str, *, end: bool) -> dt.time:
    """A TM value; ``end`` takes the last moment of its precision (``10`` = 10:59:59.999999)."""
    match = _TM.fullmatch(text)
    if not match:
        raise ValueError(text)
    hour, minute, second, fraction = match.groups()
    micro = int((fraction or "0").ljust(6, "0"))
    if end:
        micro += 10 ** (6 - len(fraction)) - 1 if fraction else 999_999
    return dt.time(
        int(hour),
        int(minute) if minute else (59 if end else 0),
        min(int(second), 59) if second else (59 if end else 0),
        micro,
    )


def _range(attribute: Attribute, value: str) -> tuple[Any, Any]:
    """``value`` as (start, end) of its VR, either open (None)."""
    forms = "YYYYMMDD" if attribute.vr == "DA" else "HHMMSS.FFFFFF (or HH, HHMM, HHMMSS)"
    parts = value.split("-")
    if len(parts) > 2 or parts == ["", ""]:
        raise BadQuery(
            f"{attribute.keyword}: '{value[:40]}' is not a value or a range of {forms} "
            "(start-end, -end or start-)",
            code="bad_range",
        )
    first, last = parts[0], parts[-1]
    start: Any
    end: Any
    try:
        if attribute.vr == "DA":
            start = _parse_da(first) if first else None
            end = _parse_da(last) if last else None
        else:
            start = _parse_tm(first, end=False) if first else None
            end = _parse_tm(last, end=True) if last else None
    except ValueError:
        raise BadQuery(
            f"{attribute.keyword}: '{value[:40]}' is not a value or a range of {forms}",
            code="bad_range",
        ) from None
    if start is not None and end is not None and start > end:
        raise BadQuery(
            f"{attribute.keyword}: the range '{value[:40]}' ends before it starts",
            code="bad_range",
        )
    return start, end


# -- matching ------------------------------------------------------------------------------


def _escape(text: str) -> str:
    """``text`` with regex metacharacters escaped the same for Python's re (SQLite) and
    PostgreSQL's advanced regular expressions; ``*`` and ``?`` become wildcards."""
    out = []
    for char in text:
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char in r".^$+()[]{}|\-":
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def _text_q(path: str, value: str, *, case_insensitive: bool) -> Q:
    if "*" in value or "?" in value:
        lookup = "iregex" if case_insensitive else "regex"
        return Q(**{f"{path}__{lookup}": f"^{_escape(value)}$"})
    return Q(**{f"{path}__{'iexact' if case_insensitive else 'exact'}": value})


def _any_value_q(path: str, value: str, *, case_insensitive: bool) -> Q:
    """A column of backslash-separated values: any one of them matches ``value``
    (wildcards as for text, never across a backslash)."""
    pattern = "".join(
        "[^\\\\]*" if char == "*" else "[^\\\\]" if char == "?" else _escape(char) for char in value
    )
    lookup = "iregex" if case_insensitive else "regex"
    return Q(**{f"{path}__{lookup}": rf"(^|\\){pattern}(\\|$)"})


def _person_name_q(path: str, value: str, *, fuzzy: bool) -> Q:
    """PN matching, case-insensitive (``iregex``: Unicode case folding on both databases)."""
    if fuzzy:
        words = [w for w in re.split(r"[\^\s=,]+", value) if w]
        q = Q()
        for word in words:
            q &= Q(**{f"{path}__iregex": rf"(^|[\^= ]){_escape(word)}"})
        return q
    group = r"(=.*)?$" if "=" not in value else "$"
    return Q(**{f"{path}__iregex": rf"^({_escape(value)})\^*{group}"})


def _condition(attribute: Attribute, value: str, prefix: str, fuzzy: bool) -> Q:
    """A filter on the row of ``attribute``'s level reached through ``prefix``."""
    path = f"{prefix}{attribute.field}"
    if attribute.keyword == "ModalitiesInStudy":
        return _modalities_q(prefix, value)
    if attribute.multiple:
        return _any_value_q(path, value, case_insensitive=fuzzy)
    if attribute.vr == "UI":
        uids = _uids(value)
        return Q(**{f"{path}__in": uids}) if len(uids) > 1 else Q(**{path: uids[0]})
    if attribute.vr in ("DA", "TM"):
        start, end = _range(attribute, value)
        q = Q()
        if start is not None:
            q &= Q(**{f"{path}__gte": start})
        if end is not None:
            q &= Q(**{f"{path}__lte": end})
        return q
    if attribute.vr == "IS":
        return Q(**{path: int(value)})
    if attribute.vr == "PN":
        return _person_name_q(path, value, fuzzy=fuzzy)
    if attribute.vr == "CS" and ("\\" in value or "," in value):
        # Several values, any of which matches (a CS value holds no comma or backslash).
        return Q(**{f"{path}__in": [v.strip() for v in re.split(r"[\\,]", value) if v.strip()]})
    return _text_q(path, value, case_insensitive=fuzzy)


def _modalities_q(prefix: str, value: str) -> Q:
    """(0008,0061) Modalities in Study: the studies with a series of any of the values."""
    wanted = Q()
    for modality in (m.strip() for m in re.split(r"[\\,]", value)):
        if modality:
            wanted |= _text_q("modality", modality, case_insensitive=False)
    return Q(Exists(Series.objects.filter(wanted, study=OuterRef(f"{prefix}id"))))


def _filter(query: Query) -> Q:
    """Every matching attribute of ``query`` as one filter on its level's model."""
    q = Q()
    for attribute, value in query.matches:
        if RANK[attribute.level] <= RANK[query.level]:
            q &= _condition(attribute, value, _PATHS[(query.level, attribute.level)], query.fuzzy)
            continue
        # A lower level's attribute: the rows with such a child.
        if attribute.level == "series":
            inner: QuerySet[Any] = Series.objects.filter(
                _condition(attribute, value, "", query.fuzzy)
            )
            q &= Q(pk__in=inner.values("study_id"))
        else:
            inner = Instance.objects.filter(_condition(attribute, value, "", query.fuzzy))
            up = "series__study_id" if query.level == "study" else "series_id"
            q &= Q(pk__in=inner.values(up))
    return q


# -- answering ------------------------------------------------------------------------------


def _accept(request: HttpRequest) -> None:
    """406 unless the ``accept`` parameter or the Accept header takes DICOM JSON."""
    offered = request.GET.get("accept") or request.headers.get("Accept") or "*/*"
    for part in offered.split(","):
        fields = [f.strip() for f in part.split(";")]
        quality = 1.0
        for extra in fields[1:]:
            if extra.startswith("q="):
                try:
                    quality = float(extra[2:])
                except ValueError:
                    quality = 0.0
        if fields[0].lower() in _ACCEPTED and quality > 0:
            return
    raise NotAcceptable(
        f"cannot answer a search in {offered[:80]}: QIDO-RS answers in {MEDIA_TYPE}"
    )


@dataclass
class _Answer:
    """What the JSON of each row is made from."""

    request: HttpRequest
    query: Query
    shown: tuple[str, ...]  # the levels whose attributes each row carries
    deidentified: bool
    studies_url: str
    _identifiers: dict[int, deidentify.Identifiers] = field(default_factory=dict)

    def keywords(self) -> list[Attribute]:
        defaults = {k for level in self.shown for k in dicomjson.DEFAULT_RETURN[level]}
        return [BY_KEYWORD[k] for k in defaults | self._asked()]

    def _asked(self) -> set[str]:
        """The attributes returned because the query names them (matched on, also
        universally, or asked with includefield), and the unique keys."""
        rank = RANK[self.query.level]
        asked = {a.sequence or a.keyword for a in self.query.named if RANK[a.level] <= rank}
        asked |= {k for k in self.query.include if RANK[BY_KEYWORD[k].level] <= rank}
        if self.query.include_all:
            asked |= {
                a.keyword
                for a in dicomjson.ATTRIBUTES
                if dicomjson.ROW_LEVEL[a.level] in self.shown
            }
        asked.add("StudyInstanceUID")
        if rank >= RANK["series"]:
            asked.add("SeriesInstanceUID")
        return asked

    @cached_property
    def _if_known(self) -> frozenset[str]:
        """The default attributes left out of a row that has no value for them."""
        return dicomjson.IF_KNOWN - self._asked()

    def identifiers(self, study: Study) -> deidentify.Identifiers:
        if study.pk not in self._identifiers:
            self._identifiers[study.pk] = deidentify.identifiers_of(study)
        return self._identifiers[study.pk]

    def row(
        self,
        attributes: Iterable[Attribute],
        study: Study,
        series: Series | None = None,
        instance: Instance | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for attribute in attributes:
            values = dicomjson.column_values(
                attribute, dicomjson.row_of(attribute, study, series, instance)
            )
            if self.deidentified:
                values = self._deidentified(attribute, values, study)
            if not values and attribute.keyword in self._if_known:
                continue
            body[attribute.tag] = dicomjson.element(attribute.vr, values)
        body[dicomjson.SPECIFIC_CHARACTER_SET[1]] = dicomjson.element("CS", [dicomjson.UTF8])
        url = f"{self.studies_url}/{study.study_instance_uid}"
        if series is not None:
            url += f"/series/{series.series_instance_uid}"
        if instance is not None:
            url += f"/instances/{instance.sop_instance_uid}"
        body[dicomjson.RETRIEVE_URL[1]] = dicomjson.element("UR", [url])
        if self.query.level in ("study", "instance"):
            body[dicomjson.INSTANCE_AVAILABILITY[1]] = dicomjson.element("CS", ["ONLINE"])
        return dict(sorted(body.items()))

    def _deidentified(self, attribute: Attribute, values: list[Any], study: Study) -> list[Any]:
        """PS3.15 Annex E as ``viewer.services.deidentify`` applies it to Loupe's pages."""
        if attribute.keyword == "PatientName":
            return [{"Alphabetic": deidentify.PLACEHOLDER_NAME}]
        if attribute.keyword == "PatientID":
            return [deidentify.PLACEHOLDER_ID]
        if attribute.identifying:
            return []
        if attribute.keyword in ("StudyDescription", "SeriesDescription") and values:
            return [self.identifiers(study).clean(str(values[0]))]
        return values


def _page(rows: QuerySet[Any], query: Query) -> tuple[list[Any], bool]:
    """The rows of the asked page (LIMIT/OFFSET in SQL), and whether more follow."""
    if query.limit == 0:
        return [], rows[query.offset : query.offset + 1].exists()
    found = list(rows[query.offset : query.offset + query.limit + 1])
    return found[: query.limit], len(found) > query.limit


def _respond(
    request: HttpRequest, query: Query, results: list[dict[str, Any]], more: bool
) -> HttpResponse:
    audit.record_query(request, filters=query.filter_names(), count=len(results))
    response = HttpResponse(json.dumps(results), content_type=MEDIA_TYPE)
    if more:
        # PS3.18 §8.3.4.4: more results than sent can be requested (with offset).
        response["Warning"] = (
            f'299 {request.get_host()} "There are additional results that can be requested'
            + (f" (at most {MAX_RESULTS} per request)" if query.capped else "")
            + '"'
        )
    response["Cache-Control"] = "no-store"
    response["Vary"] = "Accept, Cookie, Authorization"
    return response


def _visible_or_all(request: HttpRequest) -> QuerySet[Study] | None:
    """The visible studies, or None when that is every study (no filter needed)."""
    visible = access.visible_studies(request)
    return None if not visible.query.where else visible


def _answer(request: HttpRequest, level: str, shown: tuple[str, ...]) -> _Answer:
    deidentified = access.deidentified(request)
    query = parse(request.GET, level, deidentified=deidentified)
    return _Answer(
        request,
        query,
        shown,
        deidentified,
        request.build_absolute_uri(reverse("qido-studies")),
    )


def _search_studies(request: HttpRequest) -> HttpResponse:
    _accept(request)
    answer = _answer(request, "study", ("study",))
    query = answer.query
    visible = access.visible_studies(request)
    rows = (
        visible.filter(_filter(query))
        .select_related("patient")
        .order_by(
            F("study_date").desc(nulls_last=True), F("study_time").desc(nulls_last=True), "-id"
        )
    )
    found, more = _page(rows, query)
    attributes = answer.keywords()
    return _respond(request, query, [answer.row(attributes, s) for s in found], more)


def _series_rows(base: QuerySet[Series], answer: _Answer) -> tuple[list[Series], bool]:
    rows = (
        base.filter(_filter(answer.query))
        .select_related("study__patient")
        .order_by("study_id", F("series_number").asc(nulls_last=True), "id")
    )
    return _page(rows, answer.query)


def _instance_rows(base: QuerySet[Instance], answer: _Answer) -> tuple[list[Instance], bool]:
    rows = (
        base.filter(_filter(answer.query))
        .select_related("series__study__patient")
        .order_by("series_id", F("instance_number").asc(nulls_last=True), "id")
    )
    return _page(rows, answer.query)


def _series_answer(request: HttpRequest, base: QuerySet[Series], answer: _Answer) -> HttpResponse:
    found, more = _series_rows(base, answer)
    attributes = answer.keywords()
    results = [answer.row(attributes, s.study, s) for s in found]
    return _respond(request, answer.query, results, more)


def _instance_answer(
    request: HttpRequest, base: QuerySet[Instance], answer: _Answer
) -> HttpResponse:
    found, more = _instance_rows(base, answer)
    attributes = answer.keywords()
    results = [answer.row(attributes, i.series.study, i.series, i) for i in found]
    return _respond(request, answer.query, results, more)


# -- views ----------------------------------------------------------------------------------


@require_safe
@access.require_user
def search_studies(request: HttpRequest) -> HttpResponse:
    """GET /dicom-web/studies (SearchForStudies)."""
    return _search_studies(request)


@require_safe
@access.require_user
def search_series(request: HttpRequest) -> HttpResponse:
    """GET /dicom-web/series: every visible study's series, with the study's attributes."""
    _accept(request)
    answer = _answer(request, "series", ("study", "series"))
    visible = _visible_or_all(request)
    base = Series.objects.all() if visible is None else Series.objects.filter(study__in=visible)
    return _series_answer(request, base, answer)


@require_safe
@access.require_user
def search_study_series(request: HttpRequest, study: str) -> HttpResponse:
    """GET /dicom-web/studies/{study}/series."""
    _accept(request)
    answer = _answer(request, "series", ("series",))
    found = access.study_for(request, study)
    return _series_answer(request, Series.objects.filter(study=found), answer)


@require_safe
@access.require_user
def search_instances(request: HttpRequest) -> HttpResponse:
    """GET /dicom-web/instances: with the study's and the series' attributes."""
    _accept(request)
    answer = _answer(request, "instance", ("study", "series", "instance"))
    visible = _visible_or_all(request)
    base = (
        Instance.objects.all()
        if visible is None
        else Instance.objects.filter(series__study__in=visible)
    )
    return _instance_answer(request, base, answer)


@require_safe
@access.require_user
def search_study_instances(request: HttpRequest, study: str) -> HttpResponse:
    """GET /dicom-web/studies/{study}/instances: with the series' attributes."""
    _accept(request)
    answer = _answer(request, "instance", ("series", "instance"))
    found = access.study_for(request, study)
    return _instance_answer(request, Instance.objects.filter(series__study=found), answer)


@require_safe
@access.require_user
def search_series_instances(request: HttpRequest, study: str, series: str) -> HttpResponse:
    """GET /dicom-web/studies/{study}/series/{series}/instances."""
    _accept(request)
    answer = _answer(request, "instance", ("instance",))
    found = access.series_for(request, study, series)
    return _instance_answer(request, Instance.objects.filter(series=found), answer)
