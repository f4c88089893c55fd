"""The ImagingStudy search parameters (hl7.org/fhir/R4/search.html) as database filters.

Each parameter may be repeated (AND) and hold comma-separated values (OR); a token is
``code``, ``system|code`` or ``|code`` (no system), with ``\\|``, ``\\,``, ``\\$`` and
``\\\\`` escaped (R4 search §3.1.1.4.7 and §3.1.1.6). A parameter Loupe does not know, a
modifier it does not support or a value it cannot read is refused with a
:class:`~viewer.errors.ViewerError` (400) naming it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import reduce
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Q
from django.http import QueryDict

from viewer.errors import ViewerError
from viewer.fhir import resources
from viewer.models import Series

DEFAULT_COUNT = 20
MAX_COUNT = 100
CONTROL = ("_count", "_offset", "_format")
FILTERS = (
    "patient",
    "subject:identifier",
    "identifier",
    "identifier:of-type",
    "started",
    "modality",
    "_id",
)


class BadParameter(ViewerError):
    status = 400
    code = "bad_parameter"


@dataclass(frozen=True)
class Token:
    system: str | None  # None: any system; "": no system
    code: str


def _split(value: str, separator: str) -> list[str]:
    """``value`` split at every unescaped ``separator``, the escapes kept."""
    parts, current, escaped = [], "", False
    for char in value:
        if escaped:
            current += "\\" + char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current + ("\\" if escaped else ""))
    return parts


def _unescape(value: str) -> str:
    return re.sub(r"\\([\\|,$])", r"\1", value)


def tokens(name: str, value: str) -> list[Token]:
    result = []
    for item in _split(value, ","):
        parts = _split(item, "|")
        if len(parts) > 2:
            raise BadParameter(f"{name}: a token is code, system|code or |code")
        if len(parts) == 1:
            token = Token(None, _unescape(parts[0]))
        else:
            token = Token(_unescape(parts[0]), _unescape(parts[1]))
        if not token.code and not token.system:
            raise BadParameter(f"{name}: an empty value")
        result.append(token)
    return result


def _any(items: list[Q]) -> Q:
    return reduce(lambda a, b: a | b, items) if items else Q(pk__in=[])


# patient, subject:identifier


def patient_filter(value: str) -> Q:
    """``patient=<id>`` or ``Patient/<id>`` (or an absolute URL ending so): Loupe's Patient
    id, as ``ImagingStudy.subject.reference`` gives it."""
    found = []
    for item in _split(value, ","):
        text = _unescape(item)
        logical = text
        if "/" in text:
            kind, _, logical = text.rpartition("/")
            if not (kind == "Patient" or kind.endswith("/Patient")):
                raise BadParameter("patient: a reference to a Patient (Patient/<id>)")
        if not resources.FHIR_ID.fullmatch(logical):
            raise BadParameter("patient: not a FHIR id")
        number = logical.isdigit() and len(logical) <= 18
        found.append(Q(patient__pk=int(logical)) if number else Q(pk__in=[]))
    return _any(found)


def _issuer_q(system: str) -> Q:
    issuer = resources.issuer_of_system(system)
    return Q(patient__issuer_of_patient_id=issuer) | Q(
        patient__issuer_of_patient_id_qualifiers__startswith=f"{issuer}&"
    )


def subject_identifier_filter(value: str) -> Q:
    """``subject:identifier=system|value``: the patient's (0010,0020) Patient ID within the
    issuer the system names (``resources.issuer_of_system``); ``|value`` a patient stored
    with no issuer; ``value`` any issuer; ``system|`` every patient of that issuer."""
    found = []
    for token in tokens("subject:identifier", value):
        match = Q(patient__patient_id=token.code) if token.code else Q()
        if token.system == "":
            match &= Q(
                patient__issuer_of_patient_id="", patient__issuer_of_patient_id_qualifiers=""
            )
        elif token.system is not None:
            match &= _issuer_q(token.system)
        found.append(match)
    return _any(found)


# identifier, _id


def identifier_filter(value: str) -> Q:
    """``identifier``: ``urn:dicom:uid|urn:oid:<uid>`` (or the value alone) for the study;
    the accession number as ``system|value`` (system from the issuer of the accession
    number), ``|value`` (one without issuer) or ``value`` (any issuer)."""
    found = []
    for token in tokens("identifier", value):
        if token.system == resources.DICOM_UID:
            if not token.code.startswith(resources.OID):
                raise BadParameter("identifier: a urn:dicom:uid value is urn:oid:<UID>")
            found.append(Q(study_instance_uid=token.code[len(resources.OID) :]))
            continue
        match = Q(accession_number=token.code) if token.code else Q()
        if token.system is None and token.code.startswith(resources.OID):
            found.append(Q(study_instance_uid=token.code[len(resources.OID) :]) | match)
            continue
        if token.system == "":
            match &= Q(issuer_of_accession_number="")
        elif token.system is not None:
            match &= Q(issuer_of_accession_number=resources.issuer_of_system(token.system))
            match &= ~Q(accession_number="")
        found.append(match)
    return _any(found)


def of_type_filter(value: str) -> Q:
    """``identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|ACSN|<value>``
    (R4 search §3.1.1.4.7): the accession number, whatever its issuer."""
    found = []
    for item in _split(value, ","):
        parts = [_unescape(p) for p in _split(item, "|")]
        if len(parts) != 3 or not parts[2]:
            raise BadParameter("identifier:of-type: the value is type-system|type-code|value")
        if parts[0] == resources.V2_0203 and parts[1] == "ACSN":
            found.append(Q(accession_number=parts[2]))
    return _any(found)


def id_filter(value: str) -> Q:
    return _any([Q(study_instance_uid=_unescape(item)) for item in _split(value, ",")])


# modality


def modality_filter(value: str) -> Q:
    """``modality=[DCM system|]<code>``: a study with a series of that modality."""
    codes = []
    for token in tokens("modality", value):
        if token.system not in (None, resources.DCM):
            continue  # Loupe's modalities are all DCM codes: another system matches none
        if not token.code:
            return Q(pk__in=Series.objects.exclude(modality="").values("study_id"))
        codes.append(token.code)
    if not codes:
        return Q(pk__in=[])
    return Q(pk__in=Series.objects.filter(modality__in=codes).values("study_id"))


# started


_DATE = re.compile(
    r"(?P<year>\d{4})(-(?P<month>\d{2})(-(?P<day>\d{2})"
    r"(T(?P<hour>\d{2}):(?P<minute>\d{2})(:(?P<second>\d{2})(\.\d+)?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le")


def _months_later(moment: datetime, months: int) -> datetime:
    total = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=total // 12, month=total % 12 + 1)


def date_range(name: str, text: str) -> tuple[datetime, datetime]:
    """The half-open range [low, high) a (partial) FHIR date or dateTime denotes, in the
    server's time zone (naive); a value with a zone is converted to it first."""
    found = _DATE.fullmatch(text)
    if found is None:
        raise BadParameter(f"{name}: {text!r} is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD …)")
    parts = found.groupdict()
    try:
        low = datetime(
            int(parts["year"]),
            int(parts["month"] or 1),
            int(parts["day"] or 1),
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            int(parts["second"] or 0),
        )
    except ValueError:
        raise BadParameter(f"{name}: {text!r} is not a valid date") from None
    if parts["second"]:
        high = low + timedelta(seconds=1)
    elif parts["minute"]:
        high = low + timedelta(minutes=1)
    elif parts["day"]:
        high = low + timedelta(days=1)
    elif parts["month"]:
        high = _months_later(low, 1)
    else:
        high = _months_later(low, 12)
    zone = parts["zone"]
    if zone:
        offset = (
            timedelta(0)
            if zone == "Z"
            else (1 if zone[0] == "+" else -1)
            * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        )
        local = ZoneInfo(settings.TIME_ZONE)

        def convert(moment: datetime) -> datetime:
            return (
                (moment - offset)
                .replace(tzinfo=ZoneInfo("UTC"))
                .astimezone(local)
                .replace(tzinfo=None)
            )

        low, high = convert(low), convert(high)
    return low, high


def _at_or_after(moment: datetime) -> Q:
    """The study's start (date and time; a date alone: its midnight) is at or after."""
    day, clock = moment.date(), moment.time()
    timed = Q(study_time__isnull=False) & (
        Q(study_date__gt=day) | Q(study_date=day, study_time__gte=clock)
    )
    first_day = day if clock == time(0) else day + timedelta(days=1)
    untimed = Q(study_time__isnull=True, study_date__gte=first_day)
    return timed | untimed


def _before(moment: datetime) -> Q:
    return Q(study_date__isnull=False) & ~_at_or_after(moment)


def _ends_after(moment: datetime) -> Q:
    """The study's range ends after ``moment``: a timed study is a point (its second), a
    study with a date alone spans its day."""
    day, clock = moment.date(), moment.time()
    timed = Q(study_time__isnull=False) & (
        Q(study_date__gt=day) | Q(study_date=day, study_time__gte=clock)
    )
    # date + 1 day > moment  <=>  date > moment - 1 day
    untimed = Q(study_time__isnull=True) & _day_after(moment - timedelta(days=1))
    return timed | untimed


def _day_after(moment: datetime) -> Q:
    """A date (as midnight) strictly after ``moment``."""
    day = moment.date()
    return Q(study_date__gt=day)


def _contained(low: datetime, high: datetime) -> Q:
    """The study's range lies within [low, high)."""
    timed = Q(study_time__isnull=False) & _at_or_after(low) & _before(high)
    # [date, date + 1 day) within [low, high): low <= date (midnight) and date + 1 <= high
    start_ok = Q(study_date__gte=low.date() if low.time() == time(0) else low.date() + timedelta(1))
    last = high - timedelta(days=1)  # date <= high - 1 day
    end_ok = Q(study_date__lte=last.date())
    untimed = Q(study_time__isnull=True) & start_ok & end_ok
    return Q(study_date__isnull=False) & (timed | untimed)


def _starts_before(moment: datetime) -> Q:
    return _before(moment)


def _compare(prefix: str, low: datetime, high: datetime) -> Q:
    if prefix == "eq":
        return _contained(low, high)
    if prefix == "ne":
        return Q(study_date__isnull=False) & ~_contained(low, high)
    if prefix == "gt":
        return _ends_after(high)
    if prefix == "lt":
        return _starts_before(low)
    if prefix == "ge":
        return _ends_after(high) | _contained(low, high)
    return _starts_before(low) | _contained(low, high)  # le


def started_filter(value: str) -> Q:
    """``started=[prefix]<date>``: the prefixes of R4 search §3.1.1.4.2 over the study's
    range (a timed study is the second it started, a study with a date alone its day):
    eq the search range contains it, ne not, gt it ends after the search range, lt it
    starts before it, ge gt or eq, le lt or eq. A study with no date matches none."""
    found = []
    for item in _split(value, ","):
        text = _unescape(item)
        prefix = text[:2] if text[:2].isalpha() else "eq"
        if text[:2].isalpha() and prefix not in PREFIXES:
            raise BadParameter(f"started: the prefix {prefix!r} is not supported ({PREFIXES})")
        low, high = date_range("started", text[2:] if text[:2].isalpha() else text)
        found.append(_compare(prefix, low, high))
    return _any(found)


FILTER_BUILDERS: dict[str, Callable[[str], Q]] = {
    "patient": patient_filter,
    "subject:identifier": subject_identifier_filter,
    "identifier": identifier_filter,
    "identifier:of-type": of_type_filter,
    "started": started_filter,
    "modality": modality_filter,
    "_id": id_filter,
}


@dataclass(frozen=True)
class Search:
    filters: Q
    names: tuple[str, ...]
    count: int
    offset: int


def _number(query: QueryDict, name: str, default: int) -> int:
    values = query.getlist(name)
    if not values:
        return default
    if len(values) > 1:
        raise BadParameter(f"{name}: given more than once")
    if not re.fullmatch(r"\d{1,9}", values[0]):
        raise BadParameter(f"{name}: {values[0]!r} is not a non-negative integer")
    return int(values[0])


def parse(query: QueryDict) -> Search:
    """The search a query string asks for; a BadParameter (400) names the first problem."""
    filters = Q()
    names = []
    for name in query:
        if name in CONTROL:
            continue
        builder = FILTER_BUILDERS.get(name)
        if builder is None:
            base = name.split(":", 1)[0]
            if base in ("patient", "subject", "identifier", "started", "modality", "_id"):
                raise BadParameter(
                    f"{name}: this parameter with this modifier (or none) is not supported "
                    f"({', '.join(FILTERS)})",
                    code="bad_modifier",
                )
            raise BadParameter(
                f"{name}: not a supported ImagingStudy search parameter "
                f"({', '.join(FILTERS + CONTROL)})",
                code="unknown_parameter",
            )
        for value in query.getlist(name):
            filters &= builder(value)
        names.append(name)
    count = min(_number(query, "_count", DEFAULT_COUNT), MAX_COUNT)
    return Search(filters, tuple(sorted(set(names))), count, _number(query, "_offset", 0))
