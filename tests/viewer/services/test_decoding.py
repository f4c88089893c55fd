"""Objects whose compressed pixel data does not decode: refused at ingest by default,
stored and flagged where the operator keeps them, flagged when a later frame fails at
render, and never decoded again once flagged."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pydicom
import pytest
from django.test import Client

from tests.undecodable import rle_ct
from viewer.models import Instance, Study
from viewer.services import rendering, storage

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_caches() -> None:
    rendering.clear_caches()


def upload(client: Client, data: bytes) -> Any:
    return client.post("/api/instances", data=data, content_type="application/dicom")


def frame_url(data: bytes, frame: int) -> str:
    dataset = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    return (
        f"/dicom-web/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}"
        f"/instances/{dataset.SOPInstanceUID}/frames/{frame}/rendered"
    )


def test_an_object_that_does_not_decode_is_refused_and_nothing_is_kept(
    logged_in_client: Client, settings: Any
) -> None:
    response = upload(logged_in_client, rle_ct(1, frozenset({0})))
    assert response.status_code == 422
    (result,) = response.json()["results"]
    assert result["status"] == "rejected" and result["code"] == "undecodable"
    assert "not stored" in result["reason"] and "RLE Lossless" in result["reason"]
    assert Instance.objects.count() == 0 and Study.objects.count() == 0
    assert storage.all_keys() == [] and list(Path(settings.LOUPE_TEMP_DIR).iterdir()) == []


def test_a_good_compressed_object_is_stored_after_its_check(logged_in_client: Client) -> None:
    data = rle_ct(2, frozenset())
    response = upload(logged_in_client, data)
    assert response.status_code == 200
    (result,) = response.json()["results"]
    assert result["status"] == "stored" and "undecodable" not in result
    assert Instance.objects.get().undecodable == {}
    assert logged_in_client.get(frame_url(data, 2)).status_code == 200


def test_kept_objects_are_stored_flagged_shown_so_and_never_decoded_again(
    logged_in_client: Client, settings: Any
) -> None:
    settings.LOUPE_INGEST_UNDECODABLE = "keep"
    data = rle_ct(1, frozenset({0}))
    response = upload(logged_in_client, data)
    assert response.status_code == 200
    (result,) = response.json()["results"]
    assert result["status"] == "stored"
    reason = result["undecodable"]["1"]
    assert "frame 1 cannot be decoded (RLE Lossless)" in reason
    instance = Instance.objects.select_related("series__study").get()
    assert instance.undecodable == {"1": reason}
    study = instance.series.study
    assert study.number_of_undecodable_instances == 1

    # The worklist, the series page and the viewer's metadata say so.
    worklist = logged_in_client.get("/").content.decode()
    assert "1 cannot be shown" in worklist
    page = logged_in_client.get(f"/studies/{study.study_instance_uid}/").content.decode()
    assert "1 image of this study cannot be shown" in page
    metadata = logged_in_client.get(f"/api/studies/{study.study_instance_uid}").json()
    assert metadata["number_of_undecodable_instances"] == 1
    assert metadata["series"][0]["instances"][0]["undecodable"] == {"1": reason}

    # Answered from the flag: even with the stored file gone, no decoder runs.
    storage.path_for(instance.storage_key).unlink()
    answer = logged_in_client.get(frame_url(data, 1))
    assert answer.status_code == 422 and answer.json() == {"code": "undecodable", "message": reason}


def test_a_later_frame_that_fails_at_render_is_flagged_and_the_others_still_show(
    logged_in_client: Client,
) -> None:
    data = rle_ct(3, frozenset({1}))
    assert upload(logged_in_client, data).status_code == 200  # the first frame decodes
    assert logged_in_client.get(frame_url(data, 1)).status_code == 200
    failed = logged_in_client.get(frame_url(data, 2))
    assert failed.status_code == 422 and failed.json()["code"] == "undecodable"
    assert "frame 2 cannot be decoded" in failed.json()["message"]
    assert logged_in_client.get(frame_url(data, 3)).status_code == 200
    instance = Instance.objects.select_related("series__study").get()
    assert list(instance.undecodable) == ["2"]
    assert instance.series.study.number_of_undecodable_instances == 1


def test_checking_every_frame_refuses_an_object_with_one_bad_frame(
    logged_in_client: Client, settings: Any
) -> None:
    settings.LOUPE_INGEST_DECODE_CHECK = "all"
    response = upload(logged_in_client, rle_ct(3, frozenset({2})))
    assert response.status_code == 422
    assert "frame 3 cannot be decoded" in response.json()["results"][0]["reason"]
    assert Instance.objects.count() == 0


def test_with_the_check_off_a_bad_object_is_stored_and_refused_at_render(
    logged_in_client: Client, settings: Any
) -> None:
    settings.LOUPE_INGEST_DECODE_CHECK = "off"
    data = rle_ct(1, frozenset({0}))
    assert upload(logged_in_client, data).status_code == 200
    assert Instance.objects.get().undecodable == {}
    answer = logged_in_client.get(frame_url(data, 1))
    assert answer.status_code == 422 and "PanicException" in answer.json()["message"]
    assert list(Instance.objects.get().undecodable) == ["1"]


def test_replacing_a_flagged_object_with_good_bytes_clears_its_flag(
    logged_in_client: Client, settings: Any
) -> None:
    settings.LOUPE_INGEST_UNDECODABLE = "keep"
    settings.LOUPE_DUPLICATE_POLICY = "overwrite"
    bad = rle_ct(1, frozenset({0}))
    assert upload(logged_in_client, bad).status_code == 200
    dataset = pydicom.dcmread(io.BytesIO(rle_ct(1, frozenset())))
    original = pydicom.dcmread(io.BytesIO(bad), stop_before_pixels=True)
    dataset.SOPInstanceUID = original.SOPInstanceUID
    dataset.file_meta.MediaStorageSOPInstanceUID = original.SOPInstanceUID
    dataset.SeriesInstanceUID = original.SeriesInstanceUID
    good = io.BytesIO()
    dataset.save_as(good, enforce_file_format=True)
    response = upload(logged_in_client, good.getvalue())
    assert response.json()["results"][0]["status"] == "replaced"
    instance = Instance.objects.select_related("series__study").get()
    assert instance.undecodable == {}
    assert instance.series.study.number_of_undecodable_instances == 0
    assert logged_in_client.get(frame_url(bad, 1)).status_code == 200


def test_a_decoder_that_runs_out_of_time_at_ingest_asks_for_a_resend(
    logged_in_client: Client, settings: Any, shared_dicom: Path
) -> None:
    # A 2128 × 2000 JPEG 2000 frame takes about half a second to decode; the limit is 50 ms.
    settings.LOUPE_DECODER_TIMEOUT_SECONDS = 0.05
    response = upload(
        logged_in_client, (shared_dicom / "cr-monochrome1/966_fixed.dcm").read_bytes()
    )
    assert response.status_code == 503
    (result,) = response.json()["results"]
    assert result["code"] == "decoder_busy" and "send it again" in result["reason"]
    assert Instance.objects.count() == 0
