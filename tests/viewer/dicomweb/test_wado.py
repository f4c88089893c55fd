"""WADO-RS (PS3.18 §10.4) against a real peer: dicomweb-client talking to a live Loupe.

Studies, series and instances come back as the stored bytes; metadata as DICOM JSON with
BulkDataURIs that retrieve; frames native (compared with pydicom's decoding of the file)
and in their stored compressed form (compared with the file's own fragments); the gate,
the audit and the de-identified share apply to every resource.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from django.conf import settings
from django.test import Client
from pydicom.encaps import get_frame

from tests.conftest import client_for
from tests.factories import StoredStudy, store_files
from viewer.dicomweb import multipart, wado
from viewer.models import AuditEvent, Instance
from viewer.services import rendering

pytestmark = pytest.mark.django_db

EXPLICIT_LE = "1.2.840.10008.1.2.1"


@pytest.fixture(autouse=True)
def empty_caches() -> None:
    wado.clear_caches()
    rendering.clear_caches()


class PortKeepingSession(requests.Session):
    """dicomweb-client sets a Host header without the port (its ``self.host``) on every
    non-streamed GET; the server then builds its BulkDataURIs for port 80. Leave the
    Host header to requests, which keeps the live server's port."""

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
        headers = kwargs.get("headers")
        if headers:
            kwargs["headers"] = {k: v for k, v in headers.items() if k.lower() != "host"}
        return super().request(method, url, *args, **kwargs)


def web_client(live_server: Any, user: Any) -> DICOMwebClient:
    """dicomweb-client with the session cookie of a real log-in of ``user``."""
    logged_in = client_for(user)
    session = PortKeepingSession()
    name = settings.SESSION_COOKIE_NAME
    session.cookies.set(name, logged_in.cookies[name].value)
    return DICOMwebClient(url=f"{live_server.url}/dicom-web", session=session)


@pytest.fixture
def dicomweb(live_server: Any, radiologist: Any) -> DICOMwebClient:
    return web_client(live_server, radiologist)


def stored_file(instance: Instance) -> bytes:
    return (Path(settings.LOUPE_STORAGE_DIR) / instance.storage_key).read_bytes()


def rows(study: StoredStudy) -> list[Instance]:
    return list(
        Instance.objects.filter(series__study__study_instance_uid=study.study).order_by("id")
    )


def store_one(path: Path) -> StoredStudy:
    return store_files([path])


def base(study: StoredStudy) -> str:
    return f"/dicom-web/studies/{study.study}/series/{study.series}/instances/{study.instance}"


# ------------------------------------------------------------------ instances


def test_retrieve_study_series_and_instance_answer_the_stored_objects(
    dicomweb: DICOMwebClient, patient_a: StoredStudy
) -> None:
    stored = {row.sop_instance_uid: row for row in rows(patient_a)}
    study = dicomweb.retrieve_study(patient_a.study)
    assert sorted(ds.SOPInstanceUID for ds in study) == sorted(stored)
    series = dicomweb.retrieve_series(patient_a.study, patient_a.series)
    assert sorted(ds.SOPInstanceUID for ds in series) == sorted(stored)
    one = dicomweb.retrieve_instance(patient_a.study, patient_a.series, patient_a.instance)
    assert one.SOPInstanceUID == patient_a.instance
    assert one.file_meta.TransferSyntaxUID == stored[patient_a.instance].transfer_syntax_uid
    np.testing.assert_array_equal(
        one.pixel_array,
        pydicom.dcmread(
            Path(settings.LOUPE_STORAGE_DIR) / stored[patient_a.instance].storage_key
        ).pixel_array,
    )


def test_the_parts_are_the_stored_bytes_and_the_retrieval_is_one_export(
    logged_in_client: Client, patient_a: StoredStudy
) -> None:
    response = logged_in_client.get(
        f"/dicom-web/studies/{patient_a.study}",
        HTTP_ACCEPT='multipart/related; type="application/dicom"',
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith('multipart/related; type="application/dicom"')
    parts = multipart.split(response.getvalue(), response["Content-Type"])
    expected = {stored_file(row) for row in rows(patient_a)}
    assert {content for _, content in parts} == expected and len(parts) == 3
    for headers, _ in parts:
        assert headers["content-type"].startswith("application/dicom; transfer-syntax=")
    exports = AuditEvent.objects.filter(event_id="110106", study_uids=[patient_a.study])
    assert exports.count() == 1


def test_a_lossless_transcode_to_explicit_little_endian_keeps_the_pixels(
    dicomweb: DICOMwebClient, shared_dicom: Path
) -> None:
    source = shared_dicom / "compressed/siemens-mr-same-image/9.dcm"  # J2K lossless
    study = store_one(source)
    got = dicomweb.retrieve_instance(
        study.study, study.series, study.instance, media_types=(("application/dicom", EXPLICIT_LE),)
    )
    assert got.file_meta.TransferSyntaxUID == EXPLICIT_LE
    original = pydicom.dcmread(source)
    np.testing.assert_array_equal(got.pixel_array, original.pixel_array)
    assert got.SOPInstanceUID == original.SOPInstanceUID


def test_a_transfer_syntax_that_cannot_be_made_losslessly_is_406(
    logged_in_client: Client, patient_a: StoredStudy
) -> None:
    response = logged_in_client.get(
        base(patient_a),
        HTTP_ACCEPT='multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50',
    )
    assert response.status_code == 406
    assert response.json()["code"] == "not_acceptable"
    assert "1.2.840.10008.1.2.4.50" in response.json()["message"]
    bare = logged_in_client.get(base(patient_a), HTTP_ACCEPT="text/html")
    assert bare.status_code == 406


# ------------------------------------------------------------------ metadata


def test_metadata_at_every_level_with_bulk_data_uris_that_retrieve(
    dicomweb: DICOMwebClient, patient_a: StoredStudy
) -> None:
    study = dicomweb.retrieve_study_metadata(patient_a.study)
    assert len(study) == 3
    assert {m["00080018"]["Value"][0] for m in study} == {
        r.sop_instance_uid for r in rows(patient_a)
    }
    assert all(m["0020000D"]["Value"] == [patient_a.study] for m in study)
    series = dicomweb.retrieve_series_metadata(patient_a.study, patient_a.series)
    assert len(series) == 3
    [one] = [
        dicomweb.retrieve_instance_metadata(patient_a.study, patient_a.series, patient_a.instance)
    ]
    assert one["00080060"] == {"vr": "CS", "Value": ["CT"]}
    pixel = one["7FE00010"]
    assert "InlineBinary" not in pixel and pixel["BulkDataURI"].endswith(
        f"{base(patient_a)}/frames/1"
    )
    [frame] = dicomweb.retrieve_bulkdata(pixel["BulkDataURI"])
    row = Instance.objects.get(sop_instance_uid=patient_a.instance)
    assert (
        frame
        == pydicom.dcmread(Path(settings.LOUPE_STORAGE_DIR) / row.storage_key).pixel_array.tobytes()
    )
    # Pixel Data's own bulk data path answers the same bytes.
    [again] = dicomweb.retrieve_bulkdata(
        f"{dicomweb.base_url}{base(patient_a)[len('/dicom-web') :]}/bulkdata/7FE00010"
    )
    assert again == frame


def test_a_binary_value_over_the_threshold_is_a_bulk_data_uri(
    dicomweb: DICOMwebClient, shared_dicom: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = shared_dicom / "us-rgb-multiframe/US_palette_color_OBXXXX1A.dcm"
    study = store_one(source)
    original = pydicom.dcmread(source)
    inline = dicomweb.retrieve_instance_metadata(study.study, study.series, study.instance)
    assert base64.b64decode(inline["00281201"]["InlineBinary"]) == (
        original.RedPaletteColorLookupTableData
    )  # 512 bytes: under the threshold, inline
    wado.clear_caches()
    monkeypatch.setattr(wado, "BULK_DATA_THRESHOLD", 256)
    meta = dicomweb.retrieve_instance_metadata(study.study, study.series, study.instance)
    lut = meta["00281201"]  # Red Palette Color Lookup Table Data
    assert "BulkDataURI" in lut and lut["BulkDataURI"].endswith("/bulkdata/00281201")
    [value] = dicomweb.retrieve_bulkdata(lut["BulkDataURI"])
    assert value == original.RedPaletteColorLookupTableData


def test_metadata_is_cached_per_stored_object(
    logged_in_client: Client, patient_a: StoredStudy
) -> None:
    url = f"{base(patient_a)}/metadata"
    first = logged_in_client.get(url, HTTP_ACCEPT="application/dicom+json")
    assert first.status_code == 200 and first["Content-Type"] == "application/dicom+json"
    assert len(wado._metadata_cache) == 1
    assert logged_in_client.get(url).content == first.content


def test_metadata_kept_on_disk_answers_after_a_restart_on_each_host(
    logged_in_client: Client, patient_a: StoredStudy
) -> None:
    url = f"{base(patient_a)}/metadata"
    first = logged_in_client.get(url, HTTP_ACCEPT="application/dicom+json").json()
    row = Instance.objects.get(sop_instance_uid=patient_a.instance)
    kept = wado._metadata_file(row.sha256)
    assert kept.is_file()
    # A restart: the memory cache is empty and the stored file is not read again (it
    # is moved away here to show it), yet the answer is the same.
    wado.clear_caches()
    stored = Path(settings.LOUPE_STORAGE_DIR) / row.storage_key
    moved = stored.with_name(stored.name + ".away")
    stored.rename(moved)
    try:
        again = logged_in_client.get(url, HTTP_ACCEPT="application/dicom+json").json()
    finally:
        moved.rename(stored)
    assert again == first
    # The BulkDataURIs are made for the host asked, from the same kept JSON.
    wado.clear_caches()
    other = logged_in_client.get(url, HTTP_ACCEPT="application/dicom+json", HTTP_HOST="127.0.0.1")
    pixel_uri = other.json()[0]["7FE00010"]["BulkDataURI"]
    assert pixel_uri == f"http://127.0.0.1{base(patient_a)}/frames/1"
    assert first[0]["7FE00010"]["BulkDataURI"] == f"http://testserver{base(patient_a)}/frames/1"


def test_a_kept_metadata_file_cut_short_is_made_again(
    logged_in_client: Client, patient_a: StoredStudy
) -> None:
    url = f"{base(patient_a)}/metadata"
    first = logged_in_client.get(url, HTTP_ACCEPT="application/dicom+json").content
    kept = wado._metadata_file(Instance.objects.get(sop_instance_uid=patient_a.instance).sha256)
    kept.write_bytes(kept.read_bytes()[:100])  # as a crash in the middle of writing it
    wado.clear_caches()
    assert logged_in_client.get(url, HTTP_ACCEPT="application/dicom+json").content == first
    assert kept.read_bytes().endswith(b"}")


# ------------------------------------------------------------------ frames


def test_native_frames_are_the_decoded_pixels(dicomweb: DICOMwebClient, shared_dicom: Path) -> None:
    source = shared_dicom / "us-rgb-multiframe/MR_enhanced_10frames_emri_small.dcm"
    study = store_one(source)
    frames = dicomweb.retrieve_instance_frames(study.study, study.series, study.instance, [1, 3])
    pixels = pydicom.dcmread(source).pixel_array
    assert frames == [pixels[0].tobytes(), pixels[2].tobytes()]


def test_native_frames_of_a_compressed_object_are_decoded(
    dicomweb: DICOMwebClient, shared_dicom: Path
) -> None:
    source = shared_dicom / "compressed/siemens-mr-same-image/7.dcm"  # JPEG-LS lossless
    study = store_one(source)
    [frame] = dicomweb.retrieve_instance_frames(
        study.study,
        study.series,
        study.instance,
        [1],
        media_types=(("application/octet-stream", EXPLICIT_LE),),
    )
    uncompressed = pydicom.dcmread(shared_dicom / "compressed/siemens-mr-same-image/1.dcm")
    assert frame == uncompressed.pixel_array.astype("<u2").tobytes()


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("US_ATL_jpeg_baseline_YBR422.dcm", "image/jpeg"),
        ("CR_WG04_RG2_JPLY_jpeg_extended_12bit.dcm", "image/jpeg"),
        ("MR_jpeg_lossless_process14_nonSV1.dcm", "image/jpeg"),
        ("CT_WG04_CT1_JLSN_jpegls_nearlossless.dcm", "image/jls"),
        ("CT_WG04_CT1_J2KI_jpeg2000_lossy.dcm", "image/jp2"),
        ("CT_WG04_CT1_RLE_fragments.dcm", "image/x-dicom-rle"),
    ],
)
def test_compressed_frames_are_the_stored_fragments(
    dicomweb: DICOMwebClient, shared_dicom: Path, name: str, media_type: str
) -> None:
    source = shared_dicom / "compressed" / name
    original = pydicom.dcmread(source)
    syntax = str(original.file_meta.TransferSyntaxUID)
    study = store_one(source)
    expected = get_frame(original.PixelData, 0, number_of_frames=1)
    [frame] = dicomweb.retrieve_instance_frames(
        study.study, study.series, study.instance, [1], media_types=((media_type, syntax),)
    )
    assert frame == expected
    [any_syntax] = dicomweb.retrieve_instance_frames(
        study.study,
        study.series,
        study.instance,
        [1],
        media_types=(("application/octet-stream", "*"),),
    )
    assert any_syntax == expected


def test_compressed_frames_name_their_transfer_syntax(
    logged_in_client: Client, shared_dicom: Path
) -> None:
    source = shared_dicom / "us-rgb-multiframe/XA_96frames_jpeg_HasFragmentSequence.dcm"
    study = store_one(source)
    response = logged_in_client.get(
        f"{base(study)}/frames/2,96",
        HTTP_ACCEPT='multipart/related; type="image/jpeg"; transfer-syntax=1.2.840.10008.1.2.4.50',
    )
    assert response.status_code == 200
    parts = multipart.split(response.content, response["Content-Type"])
    original = pydicom.dcmread(source)
    assert [content for _, content in parts] == [
        get_frame(original.PixelData, i, number_of_frames=96) for i in (1, 95)
    ]
    assert {h["content-type"] for h, _ in parts} == {
        "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50"
    }
    other = logged_in_client.get(
        f"{base(study)}/frames/1", HTTP_ACCEPT='multipart/related; type="image/jp2"'
    )
    assert other.status_code == 406 and "1.2.840.10008.1.2.4.50" in other.json()["message"]


@pytest.mark.parametrize(
    ("frames", "status", "code"),
    [("4", 404, "no_such_frame"), ("0", 404, "no_such_frame"), ("1,x", 400, "bad_frame_list")],
)
def test_a_bad_frame_list_is_refused_naming_it(
    logged_in_client: Client, patient_a: StoredStudy, frames: str, status: int, code: str
) -> None:
    response = logged_in_client.get(f"{base(patient_a)}/frames/{frames}")
    assert response.status_code == status
    assert response.json()["code"] == code


# ------------------------------------------------------------------ rendered


def test_rendered_and_thumbnail_through_dicomweb_client(
    dicomweb: DICOMwebClient, patient_a: StoredStudy
) -> None:
    jpeg = dicomweb.retrieve_instance_rendered(
        patient_a.study, patient_a.series, patient_a.instance
    )
    assert jpeg[:2] == b"\xff\xd8"
    png = dicomweb.retrieve_instance_rendered(
        patient_a.study, patient_a.series, patient_a.instance, media_types=("image/png",)
    )
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------ who may see what


def test_another_patients_study_is_404_for_a_launched_clinician(
    clinician_for_patient_a: Client, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    for url in (
        f"/dicom-web/studies/{patient_b.study}",
        f"/dicom-web/studies/{patient_b.study}/metadata",
        f"{base(patient_b)}/metadata",
        f"{base(patient_b)}/frames/1",
        f"{base(patient_b)}/bulkdata/7FE00010",
    ):
        response = clinician_for_patient_a.get(url)
        assert response.status_code == 404, url
    assert clinician_for_patient_a.get(f"{base(patient_a)}/metadata").status_code == 200


def test_without_a_session_every_resource_is_401(client: Client, patient_a: StoredStudy) -> None:
    for url in (
        f"/dicom-web/studies/{patient_a.study}",
        f"/dicom-web/studies/{patient_a.study}/series/{patient_a.series}/metadata",
        f"{base(patient_a)}/frames/1",
    ):
        assert client.get(url).status_code == 401, url


def test_a_deidentified_share_gets_frames_but_not_files_or_metadata(
    radiologist: Any, patient_a: StoredStudy
) -> None:
    maker = client_for(radiologist)
    created = maker.post(
        "/api/shares",
        {"study_instance_uids": [patient_a.study], "deidentify": True},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    guest = Client()
    opened = guest.get(created.json()["url"].split("testserver", 1)[-1], HTTP_ACCEPT="text/html")
    assert opened.status_code == 302
    for url in (
        f"/dicom-web/studies/{patient_a.study}",
        f"/dicom-web/studies/{patient_a.study}/metadata",
        f"{base(patient_a)}/bulkdata/00100010",
    ):
        response = guest.get(url)
        assert response.status_code == 403, url
        assert response.json()["code"] == "deidentified_share"
    assert guest.get(f"{base(patient_a)}/frames/1").status_code == 200


def test_a_rendered_series_and_study_are_one_part_per_image_in_slice_order(
    logged_in_client: Client, patient_a: StoredStudy
) -> None:
    accept = 'multipart/related; type="image/png"'
    series = logged_in_client.get(
        f"/dicom-web/studies/{patient_a.study}/series/{patient_a.series}/rendered",
        HTTP_ACCEPT=accept,
    )
    assert series.status_code == 200
    assert series["Content-Type"].startswith('multipart/related; type="image/png"')
    parts = multipart.split(series.content, series["Content-Type"])
    assert len(parts) == 3
    for headers, content in parts:
        single = logged_in_client.get(headers["content-location"], HTTP_ACCEPT="image/png")
        assert single.status_code == 200 and content == single.content
    study = logged_in_client.get(
        f"/dicom-web/studies/{patient_a.study}/rendered", HTTP_ACCEPT=accept
    )
    assert [c for _, c in multipart.split(study.content, study["Content-Type"])] == [
        c for _, c in parts
    ]
    jpeg = logged_in_client.get(f"/dicom-web/studies/{patient_a.study}/rendered")
    assert jpeg["Content-Type"].startswith('multipart/related; type="image/jpeg"')


# ------------------------------------------------------------------ annotation


def png_pixels(response: Any) -> np.ndarray:
    from io import BytesIO

    from PIL import Image

    assert response.status_code == 200, response.content[:300]
    return np.asarray(Image.open(BytesIO(response.content)))


def test_annotation_draws_text_only_where_and_when_asked(
    logged_in_client: Client, patient_a: StoredStudy
) -> None:
    url = f"{base(patient_a)}/rendered"
    plain = png_pixels(logged_in_client.get(url, HTTP_ACCEPT="image/png"))
    patient = png_pixels(
        logged_in_client.get(url, {"annotation": "patient"}, HTTP_ACCEPT="image/png")
    )
    technique = png_pixels(
        logged_in_client.get(url, {"annotation": "technique"}, HTTP_ACCEPT="image/png")
    )
    both = png_pixels(
        logged_in_client.get(url, {"annotation": "patient,technique"}, HTTP_ACCEPT="image/png")
    )
    height = plain.shape[0]
    top, bottom = slice(0, height // 3), slice(2 * height // 3, height)
    middle = slice(height // 3, 2 * height // 3)
    # patient: the top left changes, nothing else; technique: the bottom left only.
    assert (patient[top] != plain[top]).any() and (patient[middle] == plain[middle]).all()
    assert (patient[bottom] == plain[bottom]).all()
    assert (technique[bottom] != plain[bottom]).any() and (technique[top] == plain[top]).all()
    assert (both[top] == patient[top]).all() and (both[bottom] == technique[bottom]).all()
    # Nothing is burned in by default, and the plain render is not the annotated one cached.
    again = png_pixels(logged_in_client.get(url, HTTP_ACCEPT="image/png"))
    assert (again == plain).all()
    bad = logged_in_client.get(url, {"annotation": "everything"})
    assert bad.status_code == 400 and bad.json()["code"] == "bad_annotation"


def test_annotation_text_comes_from_the_header(shared_dicom: Path) -> None:
    from viewer.dicomweb import annotation

    dataset = pydicom.dcmread(sorted((shared_dicom / "ct-series").glob("*.dcm"))[0])
    lines = annotation.patient_lines(dataset)
    assert f"ID {dataset.PatientID}" in lines
    technique = annotation.technique_lines(dataset, 0, 1)
    assert technique[0].startswith("CT")
    assert any(f"{dataset.KVP} kVp" in line for line in technique)


def test_a_deidentified_share_may_not_burn_in_the_patient(
    radiologist: Any, patient_a: StoredStudy
) -> None:
    maker = client_for(radiologist)
    created = maker.post(
        "/api/shares",
        {"study_instance_uids": [patient_a.study], "deidentify": True},
        content_type="application/json",
    )
    guest = Client()
    guest.get(created.json()["url"].split("testserver", 1)[-1], HTTP_ACCEPT="text/html")
    url = f"{base(patient_a)}/rendered"
    refused = guest.get(url, {"annotation": "patient"})
    assert refused.status_code == 403 and refused.json()["code"] == "deidentified_share"
    assert guest.get(url, {"annotation": "technique"}).status_code == 200


def test_a_stored_bare_data_set_is_sent_as_a_part10_file(
    dicomweb: DICOMwebClient, shared_dicom: Path
) -> None:
    source = shared_dicom / "odd-cases/MR_no_preamble_no_meta_implicitVR.dcm"
    study = store_one(source)
    got = dicomweb.retrieve_instance(study.study, study.series, study.instance)
    assert got.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    assert got.file_meta.MediaStorageSOPInstanceUID == study.instance
    original = pydicom.dcmread(source, force=True)
    original.file_meta = pydicom.dataset.FileMetaDataset()
    original.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    np.testing.assert_array_equal(got.pixel_array, original.pixel_array)


@pytest.mark.parametrize("name", ["2.dcm", "3.dcm", "4.dcm"])  # ImplLE, ExplBE, RLE
def test_native_frames_are_little_endian_whatever_the_stored_syntax(
    dicomweb: DICOMwebClient, shared_dicom: Path, name: str
) -> None:
    folder = shared_dicom / "compressed/siemens-mr-same-image"
    study = store_one(folder / name)
    [frame] = dicomweb.retrieve_instance_frames(study.study, study.series, study.instance, [1])
    assert frame == pydicom.dcmread(folder / "1.dcm").pixel_array.astype("<u2").tobytes()


def test_bulk_data_of_a_big_endian_object_is_little_endian(
    dicomweb: DICOMwebClient, shared_dicom: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = shared_dicom / "odd-cases/US_palette16_big_endian_ALOKA.dcm"
    study = store_one(source)
    monkeypatch.setattr(wado, "BULK_DATA_THRESHOLD", 16)
    meta = dicomweb.retrieve_instance_metadata(study.study, study.series, study.instance)
    original = pydicom.dcmread(source)
    tag = next(t for t in ("00281221", "00281201") if t in meta and "BulkDataURI" in meta[t])
    [value] = dicomweb.retrieve_bulkdata(meta[tag]["BulkDataURI"])
    raw = original[int(tag, 16)].value
    assert value == np.frombuffer(raw, dtype=">u2").astype("<u2").tobytes()


@pytest.mark.parametrize(
    "name",
    [
        "compressed/US_ATL_jpeg_baseline_YBR422.dcm",
        "us-rgb-multiframe/Issue16_US_34frames_jpeg.dcm",
        "compressed/OT_deflated_image_dfl.dcm",
    ],
)
def test_decompressing_to_explicit_little_endian_gives_the_decoded_pixels(
    dicomweb: DICOMwebClient, shared_dicom: Path, name: str
) -> None:
    source = shared_dicom / name
    study = store_one(source)
    got = dicomweb.retrieve_instance(
        study.study, study.series, study.instance, media_types=(("application/dicom", EXPLICIT_LE),)
    )
    original = pydicom.dcmread(source)
    assert got.file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert got.get("NumberOfFrames", 1) == original.get("NumberOfFrames", 1)
    if original.SamplesPerPixel == 3:
        assert got.PhotometricInterpretation == "RGB"
    np.testing.assert_array_equal(got.pixel_array, original.pixel_array)


def test_a_viewer_asking_for_any_transfer_syntax_gets_frames_as_stored(
    logged_in_client: Client, shared_dicom: Path, patient_a: StoredStudy
) -> None:
    """What zero-footprint viewers send (OHIF, unquoted type): compressed frames stay
    compressed, native ones are native."""
    accept = "multipart/related; type=application/octet-stream; transfer-syntax=*"
    native = logged_in_client.get(f"{base(patient_a)}/frames/1", HTTP_ACCEPT=accept)
    [(headers, _)] = multipart.split(native.content, native["Content-Type"])
    assert headers["content-type"] == f"application/octet-stream; transfer-syntax={EXPLICIT_LE}"
    source = shared_dicom / "compressed/siemens-mr-same-image/7.dcm"  # JPEG-LS lossless
    original = pydicom.dcmread(source)
    study = store_one(source)
    response = logged_in_client.get(f"{base(study)}/frames/1", HTTP_ACCEPT=accept)
    [(headers, content)] = multipart.split(response.content, response["Content-Type"])
    assert headers["content-type"] == "image/jls; transfer-syntax=1.2.840.10008.1.2.4.80"
    assert content == get_frame(original.PixelData, 0, number_of_frames=1)
