"""QIDO-RS and WADO-RS requests to one upstream archive (PS3.18 §10.6, §10.4), over
``requests``.

``search_studies`` is a QIDO-RS ``GET {url}/studies`` with matching keys (PS3.18
§8.3.4) and ``includefield``; its DICOM JSON answer (PS3.18 Annex F) is read into
:class:`RemoteStudy` rows. ``retrieve_series`` is a WADO-RS retrieve of one series as
``multipart/related; type="application/dicom"`` (PS3.18 §8.7.3.5, ``transfer-syntax=*``:
the objects as the archive holds them), read part by part as the body streams, so a
series is never held whole in memory.

Every failure (refused connection, timeout, a 4xx/5xx, an answer that is not the DICOM
JSON or multipart asked for) raises :class:`UpstreamError`, whose message names the
archive and the problem, never a query value or a credential.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import requests

from viewer.upstream.config import Upstream

DICOM_JSON = "application/dicom+json"
#: A UID as PS3.5 §9.1 spells it (digits and dots, at most 64 characters).
UID_RE = re.compile(r"^[0-9]{1,64}(\.[0-9]{1,64}){0,63}$")
#: Retrieve any transfer syntax the archive holds (PS3.18 §8.7.3.5.2).
RETRIEVE_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
CHUNK = 256 * 1024

#: Attributes asked for beside the defaults of PS3.18 Table 10.6.3-3.
STUDY_FIELDS = (
    "00080020",  # StudyDate
    "00080030",  # StudyTime
    "00080050",  # AccessionNumber
    "00080061",  # ModalitiesInStudy
    "00081030",  # StudyDescription
    "00100010",  # PatientName
    "00100020",  # PatientID
    "00100021",  # IssuerOfPatientID
    "00100030",  # PatientBirthDate
    "0020000D",  # StudyInstanceUID
    "00201206",  # NumberOfStudyRelatedSeries
    "00201208",  # NumberOfStudyRelatedInstances
)


class UpstreamError(Exception):
    """An upstream archive did not answer as asked; ``str()`` is shown to users."""

    def __init__(self, upstream: Upstream, problem: str) -> None:
        super().__init__(f"the archive '{upstream.name}' did not answer: {problem}")
        self.upstream = upstream.name
        self.problem = problem


@dataclass(frozen=True)
class RemoteStudy:
    """One study of an upstream QIDO-RS answer (the worklist's remote row)."""

    upstream: str
    study_instance_uid: str
    patient_id: str = ""
    issuer_of_patient_id: str = ""
    patient_name: str = ""
    study_date: dt.date | None = None
    study_time: dt.time | None = None
    accession_number: str = ""
    study_description: str = ""
    modalities_in_study: str = ""
    number_of_study_related_series: int | None = None
    number_of_study_related_instances: int | None = None


def _values(item: dict[str, Any], tag: str) -> list[Any]:
    element = item.get(tag)
    if not isinstance(element, dict):
        return []
    values = element.get("Value")
    return values if isinstance(values, list) else []


def _text(item: dict[str, Any], tag: str) -> str:
    values = _values(item, tag)
    return str(values[0]).strip() if values and isinstance(values[0], str | int) else ""


def _person_name(item: dict[str, Any], tag: str) -> str:
    values = _values(item, tag)
    if values and isinstance(values[0], dict):
        return str(values[0].get("Alphabetic", "")).strip()
    return ""


def _int(item: dict[str, Any], tag: str) -> int | None:
    values = _values(item, tag)
    try:
        return int(values[0]) if values else None
    except (TypeError, ValueError):
        return None


def _date(text: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(text[:8], "%Y%m%d").date() if len(text) >= 8 else None
    except ValueError:
        return None


def _time(text: str) -> dt.time | None:
    digits = text.split(".")[0]
    try:
        if len(digits) >= 4:
            return dt.time(int(digits[:2]), int(digits[2:4]), int(digits[4:6] or 0))
    except ValueError:
        return None
    return None


def study_of(upstream: Upstream, item: Any) -> RemoteStudy | None:
    """A QIDO-RS study result as a RemoteStudy; None without a Study Instance UID."""
    if not isinstance(item, dict):
        return None
    uid = _text(item, "0020000D")
    if not uid:
        return None
    return RemoteStudy(
        upstream=upstream.name,
        study_instance_uid=uid,
        patient_id=_text(item, "00100020"),
        issuer_of_patient_id=_text(item, "00100021"),
        patient_name=_person_name(item, "00100010"),
        study_date=_date(_text(item, "00080020")),
        study_time=_time(_text(item, "00080030")),
        accession_number=_text(item, "00080050"),
        study_description=_text(item, "00081030"),
        modalities_in_study="\\".join(str(v) for v in _values(item, "00080061") if v),
        number_of_study_related_series=_int(item, "00201206"),
        number_of_study_related_instances=_int(item, "00201208"),
    )


def _get(upstream: Upstream, path: str, **kwargs: Any) -> requests.Response:
    try:
        response = requests.get(
            f"{upstream.url}{path}",
            auth=upstream.basic,
            timeout=upstream.timeout,
            allow_redirects=False,
            **kwargs,
        )
    except requests.Timeout:
        raise UpstreamError(upstream, f"no answer within {upstream.timeout:g} s") from None
    except requests.ConnectionError:
        raise UpstreamError(upstream, "the connection was refused or lost") from None
    except requests.RequestException as exc:
        raise UpstreamError(upstream, type(exc).__name__) from None
    if response.status_code >= 300:
        reason = response.reason or ""
        response.close()
        raise UpstreamError(upstream, f"HTTP {response.status_code} {reason}".strip())
    return response


def search_studies(
    upstream: Upstream, params: Iterable[tuple[str, str]], *, limit: int
) -> list[RemoteStudy]:
    """QIDO-RS Search for Studies (PS3.18 §10.6.1) with these matching keys."""
    query = [*params, ("limit", str(limit))]
    query += [("includefield", tag) for tag in STUDY_FIELDS]
    headers = {"Accept": DICOM_JSON, **upstream.headers()}
    response = _get(upstream, "/studies", params=query, headers=headers)
    if response.status_code == 204 or not response.content.strip():
        return []
    try:
        data = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        raise UpstreamError(upstream, "the search answer is not JSON") from None
    if not isinstance(data, list):
        raise UpstreamError(upstream, "the search answer is not a JSON array of studies")
    return [study for study in (study_of(upstream, item) for item in data) if study]


def search_series(upstream: Upstream, study_uid: str) -> list[tuple[str, int | None]]:
    """QIDO-RS Search for Series of one study: (Series Instance UID, instance count)."""
    headers = {"Accept": DICOM_JSON, **upstream.headers()}
    response = _get(
        upstream,
        f"/studies/{study_uid}/series",
        params=[("includefield", "0020000E"), ("includefield", "00201209")],
        headers=headers,
    )
    if response.status_code == 204 or not response.content.strip():
        return []
    try:
        data = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        raise UpstreamError(upstream, "the series search answer is not JSON") from None
    if not isinstance(data, list):
        raise UpstreamError(upstream, "the series search answer is not a JSON array")
    found: list[tuple[str, int | None]] = []
    for item in data:
        uid = _text(item, "0020000E") if isinstance(item, dict) else ""
        if not uid:
            continue
        if len(uid) > 64 or not UID_RE.match(uid):  # it goes into the retrieve's path
            raise UpstreamError(upstream, "a series search result has a malformed Series UID")
        found.append((uid, _int(item, "00201209")))
    return found


def _boundary(content_type: str) -> str:
    media, *params = content_type.split(";")
    if media.strip().lower() != "multipart/related":
        return ""
    for param in params:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "boundary":
            return value.strip().strip('"')
    return ""


def read_parts(
    chunks: Iterable[bytes], boundary: str, *, max_part_bytes: int
) -> Iterator[tuple[dict[str, str], bytes]]:
    """The parts of a ``multipart/related`` body (RFC 2046 §5.1.1) as it streams in:
    (headers with lower-case names, content); ValueError for a part larger than
    ``max_part_bytes`` or a body that ends before its closing delimiter."""
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    buffer = bytearray(b"\r\n")  # the first delimiter may open the body: no CRLF before it
    stream = iter(chunks)
    in_part = False  # before the first delimiter: the preamble, discarded
    searched = 0
    while True:
        at = buffer.find(delimiter, searched)
        if at < 0:
            if len(buffer) > max_part_bytes + 16 * 1024:
                raise ValueError(f"a part is larger than {max_part_bytes} bytes")
            searched = max(0, len(buffer) - len(delimiter))
            chunk = next(stream, None)
            if chunk is None:
                raise ValueError("the body ends before its closing boundary")
            buffer += chunk
            continue
        if in_part:
            head, separator, content = bytes(buffer[:at]).partition(b"\r\n\r\n")
            if not separator:
                raise ValueError("a part has no header end")
            headers: dict[str, str] = {}
            for line in head.decode("latin-1").split("\r\n"):
                name, colon, value = line.partition(":")
                if colon:
                    headers[name.strip().lower()] = value.strip()
            yield headers, content
        buffer = buffer[at + len(delimiter) :]
        while len(buffer) < 2:
            chunk = next(stream, None)
            if chunk is None:
                raise ValueError("the body ends inside a boundary")
            buffer += chunk
        if buffer.startswith(b"--"):
            return
        # The rest of the delimiter line (transport padding), then the part's headers.
        while b"\r\n" not in buffer:
            chunk = next(stream, None)
            if chunk is None:
                raise ValueError("the body ends inside a boundary line")
            buffer += chunk
        buffer = buffer[buffer.index(b"\r\n") + 2 :]
        # A part with no headers starts with its blank line: keep the CRLF CRLF split.
        if buffer.startswith(b"\r\n"):
            buffer[0:0] = b"\r\n"
        in_part = True
        searched = 0


def retrieve_series(
    upstream: Upstream, study_uid: str, series_uid: str, *, max_part_bytes: int
) -> Iterator[bytes]:
    """WADO-RS Retrieve Series (PS3.18 §10.4.1.1.2): each object's bytes in turn."""
    headers = {"Accept": RETRIEVE_ACCEPT, **upstream.headers()}
    response = _get(
        upstream, f"/studies/{study_uid}/series/{series_uid}", headers=headers, stream=True
    )
    with response:
        boundary = _boundary(response.headers.get("Content-Type", ""))
        if not boundary:
            raise UpstreamError(upstream, "the retrieve answer is not multipart/related")
        try:
            for headers_of_part, content in read_parts(
                response.iter_content(CHUNK), boundary, max_part_bytes=max_part_bytes
            ):
                part_type = headers_of_part.get("content-type", "application/dicom")
                if part_type.split(";")[0].strip().lower() != "application/dicom":
                    raise UpstreamError(
                        upstream, f"a retrieved part is {part_type[:64]}, not application/dicom"
                    )
                yield content
        except ValueError as exc:
            raise UpstreamError(upstream, f"the retrieve answer is malformed: {exc}") from None
        except requests.RequestException:
            raise UpstreamError(upstream, "the connection was lost during the retrieve") from None
