"""WADO-RS (PS3.18 §10.4): instances, metadata, frames and bulk data of stored objects.

* ``GET …/studies/{study}[/series/{series}[/instances/{instance}]]``:
  ``multipart/related; type="application/dicom"``, one part per stored object, streamed
  from the object store as it was stored (the default of this server, as for
  ``transfer-syntax=*``, PS3.18 §8.7.3.5). An Accept naming a transfer syntax gets it
  where that is lossless: the stored one, or Explicit VR Little Endian
  (1.2.840.10008.1.2.1) by decoding the frames through the decoder boundary
  (``viewer.services.decoding``); any other is 406, before the first byte. Each request
  is recorded once as a Data Export (PS3.15 A.5.3.4), like a file download
  (``viewer.api.files``).
* ``…/metadata``: ``application/dicom+json``, an array of each object's data set in the
  DICOM JSON Model (PS3.18 Annex F). Binary values over ``BULK_DATA_THRESHOLD`` bytes are
  BulkDataURIs (``…/instances/{uid}/bulkdata/{tag}[/{item}/{tag}…]``, tags as 8 hex
  digits, sequence items numbered from 1); Pixel Data's is the instance's frames URL
  (``…/frames/1,2,…``). The JSON of each object is kept in an LRU: a stored file never
  changes (its key is its SHA-256).
* ``…/instances/{uid}/frames/{list}``: ``multipart/related; type="application/octet-stream"``
  native frames (little-endian, PS3.18 §8.7.3.3.2) by default, or the stored compressed
  frames (PS3.5 §A.4) when the Accept asks for their media type (``image/jpeg``,
  ``image/jls``, ``image/jp2``, ``image/jpx``, ``image/x-dicom-rle``, ``image/jphc``) or
  ``transfer-syntax=*``; each part's Content-Type names its transfer syntax.
* ``…/instances/{uid}/bulkdata/{path}``: the value of a binary element, one
  ``application/octet-stream`` part; Pixel Data's path answers as the frames.

Everything goes through the gate (``viewer.access``: an object this session may not see
answers the same 404 as an unknown one). A de-identified share may see frames (unless
the object has burned-in annotation) but not files, metadata or other bulk data (403
``deidentified_share``): they hold the patient's identity.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.views.decorators.http import require_GET
from pydicom import dcmwrite
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import get_frame
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pydicom.valuerep import BYTES_VR

from viewer import access
from viewer.dicom import render
from viewer.dicom.geometry import slice_order
from viewer.dicom.io import open_stored
from viewer.dicomweb import annotation, params, views
from viewer.dicomweb.multipart import MediaRange, Multipart, Part, not_acceptable, parse_accept
from viewer.errors import NotFound, UndecodableFrame, ViewerError
from viewer.lru import Lru
from viewer.models import Instance, Series, Study
from viewer.services import audit, decoding, deidentify, rendering, storage

log = logging.getLogger(__name__)

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
OCTET_STREAM = "application/octet-stream"
BULK_DATA_THRESHOLD = 1024  # bytes: larger binary values are BulkDataURIs
CHUNK = 1 << 20
PIXEL_DATA_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})

# The media type of each compressed transfer syntax's frames (PS3.18 Table 8.7.3-5).
FRAME_MEDIA_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx",
    "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.5": "image/x-dicom-rle",
}
_MEDIA_ALIASES = {"image/dicom-rle": "image/x-dicom-rle", "image/x-jls": "image/jls"}
_ANY = ("*/*", "")
RETRIEVE_PARAMETERS = frozenset({"accept"})

# The DICOM JSON of stored objects, by SHA-256, with the BulkDataURIs relative (the
# request's base is put in front when answered): in memory, and kept on disk under
# LOUPE_CACHE_DIR so that a restarted server does not parse the files again.
_metadata_cache: Lru[str, bytes] = Lru(max_weight=64 << 20, weight=len)
METADATA_FORMAT = 1  # bump when _json_of's output changes: older files are then unused
_BULK_KEY = b'"BulkDataURI":"'


def clear_caches() -> None:
    _metadata_cache.clear()


# ---------------------------------------------------------------- negotiation


def _accepted(request: HttpRequest) -> list[MediaRange]:
    """The ``accept`` query parameter wins over the Accept header (PS3.18 §8.3.3.1)."""
    params.check_parameters(request.GET, RETRIEVE_PARAMETERS, "WADO-RS")
    return parse_accept(request.GET.get("accept") or request.headers.get("Accept") or "*/*")


def _instance_syntaxes(ranges: list[MediaRange]) -> list[str]:
    """The transfer syntaxes acceptable for ``application/dicom`` parts, best first
    ("*": as stored, the default when none is named)."""
    wanted: list[str] = []
    for r in ranges:
        if r.media in ("*/*", "multipart/*") or (
            r.media == "multipart/related" and r.type in (DICOM, "application/*", *_ANY)
        ):
            wanted.append(r.transfer_syntax or "*")
    if not wanted:
        raise not_acceptable(
            'instances are retrieved as multipart/related; type="application/dicom" '
            "(PS3.18 §10.4.1.1.3)"
        )
    return wanted


def _lossless_to_native(instance: Instance) -> bool:
    """Whether Explicit VR Little Endian can be made from this object without loss:
    it has whole-byte samples (or no pixels), which the decoders hand back unchanged."""
    return instance.number_of_frames == 0 or (instance.bits_allocated or 0) % 8 == 0


def _syntax_for(instance: Instance, wanted: list[str]) -> str:
    stored = instance.transfer_syntax_uid
    for syntax in wanted:
        if syntax in ("*", stored):
            return stored
        if syntax == ExplicitVRLittleEndian and _lossless_to_native(instance):
            return ExplicitVRLittleEndian
    raise not_acceptable(
        f"instance {instance.sop_instance_uid} is stored in {stored}; it can be retrieved "
        f"in that transfer syntax or in {ExplicitVRLittleEndian} (asked: {', '.join(wanted)[:200]})"
    )


@dataclass(frozen=True)
class FrameChoice:
    native: bool  # little-endian uncompressed bytes, else the stored compressed frames
    content_type: str


def _frame_choice(instance: Instance, ranges: list[MediaRange]) -> FrameChoice:
    """Native or stored-compressed frames, from the Accept (PS3.18 §8.7.3.5): the
    default is ``application/octet-stream`` native; ``transfer-syntax=*`` or the stored
    syntax's media type gets the frames as stored."""
    stored = instance.transfer_syntax_uid
    compressed = FRAME_MEDIA_TYPES.get(stored)
    native = FrameChoice(True, f"{OCTET_STREAM}; transfer-syntax={ExplicitVRLittleEndian}")
    as_stored = (
        FrameChoice(False, f"{compressed}; transfer-syntax={stored}") if compressed else native
    )
    for r in ranges:
        if r.media in ("*/*", "multipart/*"):
            return as_stored if r.transfer_syntax == "*" else native
        if r.media != "multipart/related":
            continue
        kind = _MEDIA_ALIASES.get(r.type, r.type)
        syntax = r.transfer_syntax
        if kind in (*_ANY, "image/*", OCTET_STREAM):
            if syntax == "*" or (syntax and syntax == stored and compressed):
                return as_stored
            if not syntax or syntax == ExplicitVRLittleEndian:
                if kind != "image/*":
                    return native
            continue
        if compressed and kind == compressed and syntax in ("", "*", stored):
            return as_stored
    raise not_acceptable(
        f"the frames of this instance are stored in {stored}; they come as "
        f'multipart/related; type="{OCTET_STREAM}" (uncompressed)'
        + (f' or type="{compressed}"; transfer-syntax={stored}' if compressed else "")
    )


# ---------------------------------------------------------------- objects


def _instances_of(queryset: QuerySet[Instance]) -> list[Instance]:
    return list(
        queryset.select_related("series__study__patient").order_by(
            "series__series_number", "series__id", "instance_number", "id"
        )
    )


def _path(instance: Instance) -> str:
    return (
        f"/dicom-web/studies/{instance.series.study.study_instance_uid}"
        f"/series/{instance.series.series_instance_uid}/instances/{instance.sop_instance_uid}"
    )


def _read(instance: Instance) -> bytes:
    try:
        return storage.read(instance.storage_key)
    except FileNotFoundError:
        raise _missing() from None


def _missing() -> ViewerError:
    return ViewerError(
        "the stored file of this instance is missing (see verify_storage)",
        code="stored_file_missing",
        status=500,
    )


def _file_chunks(instance: Instance) -> Iterator[bytes]:
    with storage.path_for(instance.storage_key).open("rb") as stream:
        while chunk := stream.read(CHUNK):
            yield chunk


def _sample_dtype(dataset: Dataset) -> np.dtype[Any]:
    bits = int(dataset.get("BitsAllocated") or 8)
    if bits == 32 and "FloatPixelData" in dataset:
        return np.dtype("<f4")
    if bits == 64:
        return np.dtype("<f8")
    signed = int(dataset.get("PixelRepresentation") or 0) == 1
    return np.dtype(f"<{'i' if signed else 'u'}{bits // 8}")


def _decoded(instance: Instance, dataset: Dataset, index: int) -> np.ndarray[Any, Any]:
    """Frame ``index`` (0-based) decoded through the decoder boundary, remembering a
    frame that does not decode (``viewer.services.decoding``)."""
    known = instance.undecodable.get(str(index + 1))
    if known:
        raise UndecodableFrame(known)
    try:
        return decoding.decode(dataset, index)
    except UndecodableFrame as failure:
        if failure.lasting:
            decoding.flag_undecodable(instance, index, failure.message)
        raise


def _native_frame(instance: Instance, dataset: Dataset, index: int) -> bytes:
    """Frame ``index``'s uncompressed little-endian bytes: sliced from native little
    endian Pixel Data as stored, else decoded (colour comes back as RGB)."""
    syntax = UID(str(dataset.file_meta.TransferSyntaxUID))
    bits = int(dataset.get("BitsAllocated") or 8)
    if syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian) and bits % 8 == 0:
        size = int(dataset.Rows) * int(dataset.Columns) * int(dataset.get("SamplesPerPixel") or 1)
        size *= bits // 8
        raw = dataset.PixelData
        if len(raw) >= (index + 1) * size:
            if int(dataset.get("PlanarConfiguration") or 0) == 0:
                return bytes(raw[index * size : (index + 1) * size])
    array = _decoded(instance, dataset, index)
    return np.ascontiguousarray(array).astype(_sample_dtype(dataset), copy=False).tobytes()


def _compressed_frame(dataset: Dataset, index: int) -> bytes:
    """Frame ``index``'s compressed bytes, its fragments joined (PS3.5 §A.4)."""
    frames = max(int(dataset.get("NumberOfFrames") or 1), 1)
    extended = None
    if "ExtendedOffsetTable" in dataset and "ExtendedOffsetTableLengths" in dataset:
        extended = (dataset.ExtendedOffsetTable, dataset.ExtendedOffsetTableLengths)
    try:
        return bytes(
            get_frame(dataset.PixelData, index, extended_offsets=extended, number_of_frames=frames)
        )
    except (ValueError, KeyError) as exc:
        raise UndecodableFrame(
            f"frame {index + 1}'s fragments cannot be found: {' '.join(str(exc).split())[:160]}"
        ) from None


def _transcoded(instance: Instance, syntax: str) -> bytes:
    """The object as a PS3.10 file in ``syntax``: the stored one (a bare data set given
    its file meta), or Explicit VR Little Endian, every frame decoded (losslessly: the
    decoder's stored values; decoded colour is RGB)."""
    dataset = open_stored(_read(instance))
    stored = UID(str(dataset.file_meta.TransferSyntaxUID))
    if syntax == stored:
        return _part10(dataset, stored)
    if "PixelData" in dataset and instance.number_of_frames > 0:
        frames = [_native_frame(instance, dataset, i) for i in range(instance.number_of_frames)]
        samples = int(dataset.get("SamplesPerPixel") or 1)
        if samples == 3 and (stored.is_encapsulated or dataset.PhotometricInterpretation != "RGB"):
            if str(dataset.PhotometricInterpretation).startswith("YBR"):
                dataset.PhotometricInterpretation = "RGB"
            dataset.PlanarConfiguration = 0
        for keyword in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
            if keyword in dataset:
                del dataset[keyword]
        data = b"".join(frames)
        dataset.PixelData = data + (b"\0" if len(data) % 2 else b"")
        dataset["PixelData"].VR = "OW" if int(dataset.get("BitsAllocated") or 8) > 8 else "OB"
        dataset["PixelData"].is_undefined_length = False
    return _part10(dataset, ExplicitVRLittleEndian)


def _part10(dataset: Dataset, syntax: UID) -> bytes:
    meta = FileMetaDataset(dataset.file_meta)
    meta.TransferSyntaxUID = syntax
    meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.file_meta = meta
    out = BytesIO()
    dcmwrite(out, dataset, enforce_file_format=True)
    return out.getvalue()


def _retrieve(request: HttpRequest, study: Study, instances: list[Instance]) -> HttpResponseBase:
    deidentify.check_may_download(request)  # 403 in a de-identified share
    wanted = _instance_syntaxes(_accepted(request))
    if not instances:
        raise NotFound("nothing is stored here", code="not_found")
    plan = [(instance, _syntax_for(instance, wanted)) for instance in instances]
    part10 = {instance.pk: _is_part10(instance) for instance, _ in plan}
    audit.record_export(
        request, study, outcome=audit.Outcome.SUCCESS, kind="download", count=len(plan)
    )

    def parts() -> Iterator[Part]:
        for instance, syntax in plan:
            chunks: Iterable[bytes] = (
                _file_chunks(instance)
                if syntax == instance.transfer_syntax_uid and part10[instance.pk]
                else _transcoded_chunks(instance, syntax)
            )
            yield Part(f"{DICOM}; transfer-syntax={syntax}", chunks, _path(instance))

    body = Multipart(DICOM)
    response = StreamingHttpResponse(body.stream(parts()), content_type=body.content_type)
    response["Cache-Control"] = "private, no-store"
    return response


def _is_part10(instance: Instance) -> bool:
    """Whether the stored file is a PS3.10 file (preamble, "DICM", meta); ingest also
    accepts bare data sets, which are sent with a file meta made for them."""
    try:
        with storage.path_for(instance.storage_key).open("rb") as stream:
            head = stream.read(132)
    except FileNotFoundError:
        raise _missing() from None
    return len(head) == 132 and head[128:] == b"DICM"


def _transcoded_chunks(instance: Instance, syntax: str) -> Iterator[bytes]:
    yield _transcoded(instance, syntax)


@require_GET
@access.require_user
def retrieve_study(request: HttpRequest, study: str) -> HttpResponseBase:
    found = access.study_for(request, study)
    return _retrieve(request, found, _instances_of(Instance.objects.filter(series__study=found)))


@require_GET
@access.require_user
def retrieve_series(request: HttpRequest, study: str, series: str) -> HttpResponseBase:
    found: Series = access.series_for(request, study, series)
    return _retrieve(request, found.study, _instances_of(found.instances.all()))


@require_GET
@access.require_user
def retrieve_instance(
    request: HttpRequest, study: str, series: str, instance: str
) -> HttpResponseBase:
    found = access.instance_for(request, study, series, instance)
    return _retrieve(request, found.series.study, [found])


# ---------------------------------------------------------------- metadata


def _tag_text(tag: int) -> str:
    return f"{tag:08X}"


def _json_of(dataset: Dataset, base: str, frames: int, prefix: str = "") -> dict[str, Any]:
    """The DICOM JSON Model of ``dataset`` (PS3.18 §F.2), nested sequences walked here so
    that each BulkDataURI names its element's path."""
    out: dict[str, Any] = {}
    for tag in dataset.keys():
        if tag.element == 0:  # group lengths are left out (PS3.18 §F.2.1)
            continue
        try:
            element = dataset[tag]
        except Exception as exc:  # a value pydicom cannot read: left out, the rest shown
            log.info("metadata: element %s left out: %s", _tag_text(tag), type(exc).__name__)
            continue
        path = f"{prefix}{_tag_text(tag)}"
        if element.VR == "SQ":
            items = [
                _json_of(item, base, frames, f"{path}/{number}/")
                for number, item in enumerate(element.value or (), start=1)
            ]
            out[_tag_text(tag)] = {"vr": "SQ", **({"Value": items} if items else {})}
            continue

        def bulk(found: DataElement, path: str = path) -> str:
            if found.tag in PIXEL_DATA_TAGS and not prefix:
                listed = ",".join(str(n) for n in range(1, max(frames, 1) + 1))
                return f"{base}/frames/{listed}"
            return f"{base}/bulkdata/{path}"

        try:
            out[_tag_text(tag)] = element.to_json_dict(bulk, BULK_DATA_THRESHOLD)
        except Exception as exc:  # an invalid value: left out, as pydicom's suppress option
            log.info("metadata: element %s left out: %s", _tag_text(tag), type(exc).__name__)
    return out


def _metadata_bytes(request: HttpRequest, instance: Instance) -> bytes:
    """The instance's DICOM JSON with absolute BulkDataURIs on this request's host.

    ``"BulkDataURI":"`` occurs in the JSON only as a key (a quote inside a value is
    escaped), so the base goes in front of each relative URI by one replace."""
    base = json.dumps(request.build_absolute_uri(_path(instance)))[1:-1].encode()
    return _relative_metadata(instance).replace(_BULK_KEY, _BULK_KEY + base)


def _metadata_file(sha256: str) -> Path:
    folder = f"dicom-json-v{METADATA_FORMAT}-t{BULK_DATA_THRESHOLD}"
    return Path(settings.LOUPE_CACHE_DIR) / folder / sha256[:2] / f"{sha256}.json"


def _relative_metadata(instance: Instance) -> bytes:
    """The instance's DICOM JSON, BulkDataURIs relative to the instance's URL: from
    memory, else from the cache file, else made from the stored file and kept in both.

    The file is derived data, written whole under a temporary name and renamed; one
    that does not read as a JSON object (cut short by a crash) is made again."""
    found = _metadata_cache.get(instance.sha256)
    if found is not None:
        return found
    path = _metadata_file(instance.sha256)
    try:
        content = path.read_bytes()
    except OSError:
        content = b""
    if not (content.startswith(b"{") and content.endswith(b"}")):
        dataset = open_stored(_read(instance))
        made = _json_of(dataset, "", instance.number_of_frames)
        content = json.dumps(made, separators=(",", ":")).encode()
        _keep(path, content)
    _metadata_cache.set(instance.sha256, content)
    return content


def _keep(path: Path, content: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        temporary.write_bytes(content)
        os.replace(temporary, path)
    except OSError as exc:  # a cache: the answer does not depend on it
        log.warning("metadata cache: cannot write: %s", exc.strerror)


def _metadata(request: HttpRequest, instances: list[Instance]) -> HttpResponse:
    deidentify.check_may_download(request)  # the header is the patient's identity
    params.check_parameters(request.GET, RETRIEVE_PARAMETERS, "metadata")
    offered = request.GET.get("accept") or request.headers.get("Accept") or "*/*"
    if not any(
        r.media in (DICOM_JSON, "application/json", "application/*", "*/*")
        for r in parse_accept(offered)
    ):
        raise not_acceptable(f"metadata is answered as {DICOM_JSON} (PS3.18 §10.4.1.1.3)")
    if not instances:
        raise NotFound("nothing is stored here", code="not_found")
    body = b"[" + b",".join(_metadata_bytes(request, i) for i in instances) + b"]"
    response = HttpResponse(body, content_type=DICOM_JSON)
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@access.require_user
def study_metadata(request: HttpRequest, study: str) -> HttpResponse:
    found = access.study_for(request, study)
    return _metadata(request, _instances_of(Instance.objects.filter(series__study=found)))


@require_GET
@access.require_user
def series_metadata(request: HttpRequest, study: str, series: str) -> HttpResponse:
    found = access.series_for(request, study, series)
    return _metadata(request, _instances_of(found.instances.all()))


@require_GET
@access.require_user
def instance_metadata(request: HttpRequest, study: str, series: str, instance: str) -> HttpResponse:
    return _metadata(request, [access.instance_for(request, study, series, instance)])


# ---------------------------------------------------------------- frames, bulk data


def parse_frame_list(text: str, instance: Instance) -> list[int]:
    """``1,3`` -> [1, 3] (1-based, PS3.18 §10.4.1.1.2); 400 for what is not a list of
    numbers, 404 naming a frame the instance does not have."""
    numbers: list[int] = []
    for part in text.split(",")[:10000]:
        part = part.strip()
        if not part.isdigit():
            raise ViewerError(
                f"frames take a comma-separated list of frame numbers, not '{part[:20]}'",
                code="bad_frame_list",
            )
        numbers.append(int(part))
    if instance.number_of_frames < 1:
        raise NotFound("this instance has no frames (no Pixel Data)", code="no_pixel_data")
    for number in numbers:
        if not 1 <= number <= instance.number_of_frames:
            raise NotFound(
                f"frame {number} does not exist (the instance has {instance.number_of_frames})",
                code="no_such_frame",
            )
    return numbers


def _frames_response(request: HttpRequest, instance: Instance, numbers: list[int]) -> HttpResponse:
    deidentify.check_renderable(request, instance)  # burned-in annotation, de-identified share
    choice = _frame_choice(instance, _accepted(request))
    dataset = open_stored(_read(instance))
    # Every frame is made before the first byte, so that a frame that does not decode is
    # a clear 422 rather than a cut-off body.
    contents = [
        _native_frame(instance, dataset, n - 1)
        if choice.native
        else _compressed_frame(dataset, n - 1)
        for n in numbers
    ]
    base = _path(instance)
    body = Multipart(choice.content_type.split(";")[0])
    response = HttpResponse(
        b"".join(
            body.stream(
                Part(choice.content_type, [content], f"{base}/frames/{n}")
                for n, content in zip(numbers, contents, strict=True)
            )
        ),
        content_type=body.content_type,
    )
    response["Cache-Control"] = "private, max-age=86400"
    response["Vary"] = "Accept, Cookie"
    return response


@require_GET
@access.require_user
def frames(
    request: HttpRequest, study: str, series: str, instance: str, frames: str
) -> HttpResponse:
    found = access.instance_for(request, study, series, instance)
    return _frames_response(request, found, parse_frame_list(frames, found))


def _element_at(dataset: Dataset, path: str) -> DataElement:
    """The element at a bulk data path: ``tag[/item/tag…]`` (8 hex digits, items from 1)."""
    segments = path.strip("/").split("/")
    if len(segments) % 2 == 0 or len(segments) > 31:
        raise NotFound("not a bulk data path", code="no_such_bulkdata")
    current = dataset
    for position in range(0, len(segments), 2):
        text = segments[position]
        try:
            tag = int(text, 16) if len(text) == 8 else -1
        except ValueError:
            tag = -1
        if tag < 0 or tag not in current:
            raise NotFound(f"no element {text[:8]} here", code="no_such_bulkdata")
        element = current[tag]
        if position == len(segments) - 1:
            return element
        item = segments[position + 1]
        if element.VR != "SQ" or not item.isdigit() or not 1 <= int(item) <= len(element.value):
            raise NotFound(f"no item {item[:8]} in {text}", code="no_such_bulkdata")
        current = element.value[int(item) - 1]
    raise NotFound("not a bulk data path", code="no_such_bulkdata")


_WORD_SIZES = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def _little_endian(element: DataElement, dataset: Dataset) -> bytes:
    """A binary value's bytes, in little endian (PS3.18 §8.7.3.3.2) whatever the
    object's transfer syntax: words of an Explicit VR Big Endian object are swapped."""
    value = element.value if isinstance(element.value, bytes) else b""
    size = _WORD_SIZES.get(str(element.VR), 1)
    little = dataset.original_encoding[1] is not False
    if little or size == 1 or len(value) % size:
        return value
    return np.frombuffer(value, dtype=f">u{size}").astype(f"<u{size}").tobytes()


@require_GET
@access.require_user
def bulkdata(
    request: HttpRequest, study: str, series: str, instance: str, path: str
) -> HttpResponse:
    found = access.instance_for(request, study, series, instance)
    if path.strip("/").upper() in {_tag_text(t) for t in PIXEL_DATA_TAGS}:
        numbers = list(range(1, found.number_of_frames + 1))
        if not numbers:
            raise NotFound("this instance has no Pixel Data", code="no_pixel_data")
        return _frames_response(request, found, numbers)
    deidentify.check_may_download(request)
    params.check_parameters(request.GET, RETRIEVE_PARAMETERS, "bulkdata")
    if not any(
        r.media in ("*/*", "multipart/*")
        or (r.media == "multipart/related" and r.type in (OCTET_STREAM, *_ANY))
        for r in _accepted(request)
    ):
        raise not_acceptable(f'bulk data comes as multipart/related; type="{OCTET_STREAM}"')
    dataset = open_stored(_read(found))
    element = _element_at(dataset, path)
    if element.VR not in BYTES_VR and element.VR not in ("OB or OW", "US or OW"):
        raise NotFound(
            f"{_tag_text(int(element.tag))} is not a binary element (its value is in the metadata)",
            code="no_such_bulkdata",
        )
    value = _little_endian(element, dataset)
    body = Multipart(OCTET_STREAM)
    return HttpResponse(
        b"".join(body.stream([Part(OCTET_STREAM, [value])])), content_type=body.content_type
    )


# ---------------------------------------------------------------- rendered study, series


def _rendered_media_type(request: HttpRequest) -> str:
    """A rendered study or series is ``multipart/related; type="<image type>"``: the
    image type from the ``accept`` parameter, or from the Accept header's multipart
    ``type`` or its bare image types (PS3.18 §8.3.3.1, §8.7.4)."""
    if request.GET.get("accept"):
        return params.choose_media_type(request.GET["accept"], None)
    offered = request.headers.get("Accept") or "*/*"
    simple = [
        f"{r.type if r.media == 'multipart/related' else r.media};q={r.quality}"
        for r in parse_accept(offered)
        if r.media != "multipart/related" or r.type
    ]
    return params.choose_media_type(",".join(simple) or "*/*", None)


def _rendered_many(request: HttpRequest, instances: list[Instance]) -> HttpResponse:
    query = request.GET
    params.check_parameters(query, params.RENDERED_PARAMETERS, "rendered")
    kinds = annotation.parse_annotation(query)
    media_type = _rendered_media_type(request)
    by_series: dict[int, list[Instance]] = {}
    for instance in instances:
        if instance.number_of_frames > 0:
            by_series.setdefault(instance.series_id, []).append(instance)
    images = [i for group in by_series.values() for i in slice_order(group)]
    if not images:
        raise ViewerError("nothing here has pixel data to show", code="no_pixel_data", status=404)
    contents: list[tuple[Instance, bytes]] = []
    for instance in images:
        render_request = rendering.RenderRequest(
            frame=0,
            media_type=media_type,
            quality=params.parse_quality(query),
            greyscale=params.parse_greyscale(query),
            viewport=render.parse_viewport(query["viewport"]) if query.get("viewport") else None,
        )
        answered = views._respond(request, instance, render_request, kinds)
        contents.append((instance, answered.content))
    body = Multipart(media_type)
    response = HttpResponse(
        b"".join(
            body.stream(
                Part(media_type, [content], f"{_path(instance)}/rendered")
                for instance, content in contents
            )
        ),
        content_type=body.content_type,
    )
    response["Cache-Control"] = "private, max-age=86400"
    response["Vary"] = "Accept, Cookie"
    return response


@require_GET
@access.require_user
def study_rendered(request: HttpRequest, study: str) -> HttpResponse:
    found = access.study_for(request, study)
    return _rendered_many(request, _instances_of(Instance.objects.filter(series__study=found)))


@require_GET
@access.require_user
def series_rendered(request: HttpRequest, study: str, series: str) -> HttpResponse:
    found = access.series_for(request, study, series)
    return _rendered_many(request, _instances_of(found.instances.all()))
