"""The rendered resources, tiles, thumbnails and metadata over HTTP."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.test import Client
from PIL import Image

from viewer.dicom import pixels as px
from viewer.dicom.io import open_stored
from viewer.lru import Lru
from viewer.models import Instance, Study
from viewer.services import ingest, rendering, storage

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_caches() -> None:
    rendering.clear_caches()


def store(path: Path) -> Instance:
    result = ingest.ingest_file(path)
    assert result.ok, result
    return Instance.objects.select_related("series__study").get(
        sop_instance_uid=result.sop_instance_uid
    )


def base(instance: Instance) -> str:
    series = instance.series
    return (
        f"/dicom-web/studies/{series.study.study_instance_uid}/series/{series.series_instance_uid}"
        f"/instances/{instance.sop_instance_uid}"
    )


def image_of(response: Any) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(response.content)))


@pytest.fixture
def ct(shared_dicom: Path) -> Instance:
    return store(sorted((shared_dicom / "ct-series").glob("*.dcm"))[50])


def test_rendered_png_equals_the_pipeline_for_the_asked_window(
    logged_in_client: Client, ct: Instance, shared_dicom: Path
) -> None:
    response = logged_in_client.get(
        f"{base(ct)}/rendered", {"window": "40,400"}, HTTP_ACCEPT="image/png"
    )
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    dataset = open_stored(sorted((shared_dicom / "ct-series").glob("*.dcm"))[50].read_bytes())
    expected, _ = px.greyscale_to_display(
        px.decode_frame(dataset, 0, max_frame_bytes=1 << 30, decoders=None),
        px.frame_view(dataset, 0),
        px.GreyscaleRequest(window=px.Window(40, 400)),
    )
    assert np.array_equal(image_of(response), expected)
    other = logged_in_client.get(
        f"{base(ct)}/frames/1/rendered", {"window": "-600,1500,linear-exact", "accept": "image/png"}
    )
    assert other.status_code == 200
    assert not np.array_equal(image_of(other), expected)


def test_accept_negotiation(logged_in_client: Client, ct: Instance) -> None:
    url = f"{base(ct)}/rendered"
    assert logged_in_client.get(url)["Content-Type"] == "image/jpeg"  # PS3.18 default
    assert (
        logged_in_client.get(url, HTTP_ACCEPT="image/webp, image/png;q=0.5")["Content-Type"]
        == "image/webp"
    )
    assert (
        logged_in_client.get(url, HTTP_ACCEPT="image/png;q=0.9, image/jpeg;q=0.4")["Content-Type"]
        == "image/png"
    )
    assert (
        logged_in_client.get(url, {"accept": "image/png"}, HTTP_ACCEPT="image/jpeg")["Content-Type"]
        == "image/png"
    )
    refused = logged_in_client.get(url, HTTP_ACCEPT="application/pdf")
    assert refused.status_code == 406 and refused.json()["code"] == "not_acceptable"


def test_etag_answers_304_and_browsers_may_cache(logged_in_client: Client, ct: Instance) -> None:
    url = f"{base(ct)}/rendered"
    first = logged_in_client.get(url, {"window": "40,400"}, HTTP_ACCEPT="image/png")
    etag = first["ETag"]
    assert (
        etag.startswith('"')
        and "private" in first["Cache-Control"]
        and "max-age" in first["Cache-Control"]
    )
    again = logged_in_client.get(
        url, {"window": "40,400"}, HTTP_ACCEPT="image/png", HTTP_IF_NONE_MATCH=etag
    )
    assert again.status_code == 304 and again.content == b""
    changed = logged_in_client.get(
        url, {"window": "41,400"}, HTTP_ACCEPT="image/png", HTTP_IF_NONE_MATCH=etag
    )
    assert changed.status_code == 200 and changed["ETag"] != etag


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"window": "40"}, "bad_window"),
        ({"window": "a,b"}, "bad_window"),
        ({"window": "40,0"}, "bad_window"),
        ({"window": "40,400,cubic"}, "bad_window"),
        ({"window": "nan,400"}, "bad_window"),
        ({"viewport": "0,10"}, "bad_viewport"),
        ({"viewport": "100000,10"}, "bad_viewport"),
        ({"viewport": "10,10,1,2"}, "bad_viewport"),
        ({"viewport": "64,64,9000,9000,10,10"}, "bad_viewport"),
        ({"quality": "0"}, "bad_quality"),
        ({"quality": "best"}, "bad_quality"),
        ({"preset": "9"}, "bad_window"),
    ],
)
def test_bad_parameters_get_400_naming_the_problem(
    logged_in_client: Client, ct: Instance, query: dict[str, str], code: str
) -> None:
    response = logged_in_client.get(f"{base(ct)}/rendered", query)
    assert response.status_code == 400
    assert response.json()["code"] == code and response.json()["message"]


def test_viewport_scales_to_fit_and_crops(logged_in_client: Client, ct: Instance) -> None:
    scaled = logged_in_client.get(
        f"{base(ct)}/rendered", {"viewport": "128,64", "accept": "image/png"}
    )
    assert image_of(scaled).shape == (64, 64)
    crop = logged_in_client.get(
        f"{base(ct)}/rendered", {"viewport": "100,100,100,200,100,50", "accept": "image/png"}
    )
    assert image_of(crop).shape == (50, 100)
    full = image_of(logged_in_client.get(f"{base(ct)}/rendered", {"accept": "image/png"}))
    assert np.array_equal(image_of(crop), full[200:250, 100:200])


def test_tiles_cover_the_image_and_match_the_full_render(
    logged_in_client: Client, shared_dicom: Path
) -> None:
    radiograph = store(shared_dicom / "cr-monochrome1" / "Monochrome1-Jpeg.dcm")
    metadata = logged_in_client.get(
        f"/api/studies/{radiograph.series.study.study_instance_uid}/series/"
        f"{radiograph.series.series_instance_uid}/instances/{radiograph.sop_instance_uid}"
    ).json()
    tiles = metadata["tiles"]
    assert (
        tiles["size"] == 256
        and tiles["levels"][0]["width"] == 2010
        and tiles["levels"][0]["height"] == 2446
    )
    top = tiles["levels"][-1]
    assert top["columns"] == top["rows"] == 1
    full = image_of(logged_in_client.get(f"{base(radiograph)}/rendered", {"accept": "image/png"}))
    level0 = tiles["levels"][0]
    right, bottom = level0["columns"] - 1, level0["rows"] - 1
    corner = logged_in_client.get(
        f"{base(radiograph)}/frames/1/tiles/0/{right}/{bottom}", {"accept": "image/png"}
    )
    assert corner.status_code == 200
    assert np.array_equal(image_of(corner), full[bottom * 256 :, right * 256 :])
    first = image_of(
        logged_in_client.get(f"{base(radiograph)}/frames/1/tiles/0/0/0", {"accept": "image/png"})
    )
    assert np.array_equal(first, full[:256, :256])
    outside = logged_in_client.get(f"{base(radiograph)}/frames/1/tiles/0/{right + 1}/0")
    assert outside.status_code == 404 and outside.json()["code"] == "no_such_tile"
    assert logged_in_client.get(f"{base(radiograph)}/frames/1/tiles/99/0/0").status_code == 404
    overview = image_of(
        logged_in_client.get(
            f"{base(radiograph)}/frames/1/tiles/{top['level']}/0/0", {"accept": "image/png"}
        )
    )
    assert overview.shape == (top["height"], top["width"])


def test_multiframe_frames_and_missing_frames(logged_in_client: Client, shared_dicom: Path) -> None:
    cine = store(shared_dicom / "us-rgb-multiframe" / "MR_enhanced_10frames_emri_small.dcm")
    images = [
        image_of(logged_in_client.get(f"{base(cine)}/frames/{n}/rendered", {"accept": "image/png"}))
        for n in (1, 10)
    ]
    assert not np.array_equal(images[0], images[1])
    missing = logged_in_client.get(f"{base(cine)}/frames/11/rendered")
    assert missing.status_code == 404 and missing.json()["code"] == "no_such_frame"
    assert logged_in_client.get(f"{base(cine)}/frames/0/rendered").status_code == 404


def test_colour_and_thumbnails(logged_in_client: Client, shared_dicom: Path) -> None:
    us = store(shared_dicom / "us-rgb-multiframe" / "US_palette_color_OBXXXX1A.dcm")
    rgb = image_of(logged_in_client.get(f"{base(us)}/rendered", {"accept": "image/png"}))
    assert rgb.ndim == 3 and rgb.shape[2] == 3
    series, study = us.series, us.series.study
    for url in (
        f"{base(us)}/thumbnail",
        f"/dicom-web/studies/{study.study_instance_uid}/series/{series.series_instance_uid}/thumbnail",
        f"/dicom-web/studies/{study.study_instance_uid}/thumbnail",
    ):
        response = logged_in_client.get(url)
        assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
        assert max(image_of(response).shape[:2]) == 128


@pytest.mark.parametrize(
    "path",
    [
        "malformed/NM_WG04_JPLY_bad_SOS.dcm",
        "malformed/NM_j2k_with_embedded_sequence_delimiter.dcm",
        "malformed/jpeg_ts_but_raw_payload_genFile.dcm",
    ],
)
def test_stored_but_undecodable_files_answer_422_with_the_reason(
    logged_in_client: Client, shared_dicom: Path, path: str, settings: Any
) -> None:
    settings.LOUPE_INGEST_DECODE_CHECK = "off"  # stored unchecked: the renderer finds the damage
    instance = store(shared_dicom / path)
    assert instance.undecodable == {}
    for url in (
        f"{base(instance)}/rendered",
        f"{base(instance)}/frames/1/tiles/0/0/0",
        f"{base(instance)}/thumbnail",
    ):
        response = logged_in_client.get(url)
        assert response.status_code == 422, url
        body = response.json()
        assert body["code"] == "undecodable" and "cannot be decoded" in body["message"]
    # The first failure is remembered: the index holds the reason, the study counts it,
    # and the file is not read again (a request answers from the flag).
    instance.refresh_from_db()
    assert list(instance.undecodable) == ["1"] and "cannot be decoded" in instance.undecodable["1"]
    assert Study.objects.get(pk=instance.series.study_id).number_of_undecodable_instances == 1
    storage.path_for(instance.storage_key).unlink()
    response = logged_in_client.get(f"{base(instance)}/rendered", {"window": "1,2"})
    assert response.status_code == 422 and response.json()["message"] == instance.undecodable["1"]


def test_no_pixel_data_and_frame_cap_answer_422(
    logged_in_client: Client, shared_dicom: Path, settings: Any
) -> None:
    header_only = store(shared_dicom / "charset" / "chrKoreanMulti.dcm")
    response = logged_in_client.get(f"{base(header_only)}/rendered")
    assert response.status_code == 422 and response.json()["code"] == "no_pixel_data"
    big = store(shared_dicom / "cr-monochrome1" / "Monochrome1-Jpeg.dcm")
    settings.LOUPE_MAX_FRAME_BYTES = 1024 * 1024
    capped = logged_in_client.get(f"{base(big)}/rendered")
    assert capped.status_code == 422 and capped.json()["code"] == "frame_too_large"


def test_unknown_paths_are_404_and_anonymous_is_401(logged_in_client: Client, ct: Instance) -> None:
    url = f"{base(ct)}/rendered"
    wrong_series = url.replace(ct.series.series_instance_uid, "1.2.3.4")
    assert logged_in_client.get(wrong_series).status_code == 404
    assert logged_in_client.get(url.replace(ct.sop_instance_uid, "1.2.3.4")).status_code == 404
    anonymous = Client().get(url)
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "not_authenticated"


def test_study_metadata_orders_slices_along_the_normal(
    logged_in_client: Client, shared_dicom: Path
) -> None:
    files = sorted((shared_dicom / "ct-series").glob("*.dcm"))
    for path in files[:20]:
        store(path)
    study_uid = Instance.objects.first().series.study.study_instance_uid  # type: ignore[union-attr]
    body = logged_in_client.get(f"/api/studies/{study_uid}").json()
    (series,) = body["series"]
    z = [i["image_position_patient"][2] for i in series["instances"]]
    assert z == sorted(z) and len(z) == 20
    first = series["instances"][0]
    assert first["pixel_spacing"]["attribute"] == "PixelSpacing"
    assert [p["explanation"] for p in first["presets"]] == ["WINDOW1", "WINDOW2"]
    assert "{frame}" in first["urls"]["rendered"]


def test_tiles_of_an_image_without_a_window_share_the_whole_frames_default(
    logged_in_client: Client, shared_dicom: Path
) -> None:
    """No header VOI: the default window is the full frame's range, for every tile alike
    (a tile windowed on its own range would not match the full render)."""
    dental = store(shared_dicom / "presets" / "CR_dental_ModalityLUTSequence_MONO1.dcm")
    full = image_of(logged_in_client.get(f"{base(dental)}/rendered", {"accept": "image/png"}))
    for column, row in ((0, 0), (3, 2), (7, 6)):
        tile = logged_in_client.get(
            f"{base(dental)}/frames/1/tiles/0/{column}/{row}", {"accept": "image/png"}
        )
        region = full[row * 256 : (row + 1) * 256, column * 256 : (column + 1) * 256]
        assert np.array_equal(image_of(tile), region), (column, row)


def test_rendered_bytes_in_local_memory_are_bounded_by_their_size(
    logged_in_client: Client, ct: Instance, monkeypatch: Any
) -> None:
    bound = 300_000
    monkeypatch.setattr(rendering, "local_rendered", Lru(max_weight=bound, weight=len))
    sizes = []
    for width in range(400, 420):  # twenty renders never asked before
        response = logged_in_client.get(
            f"{base(ct)}/rendered", {"window": f"40,{width}"}, HTTP_ACCEPT="image/png"
        )
        assert response.status_code == 200
        sizes.append(len(response.content))
        assert rendering.local_rendered is not None
        assert rendering.local_rendered.used <= bound
    assert sum(sizes) > 2 * bound  # more was rendered than the cache may hold
    last = rendering.RenderRequest(
        media_type="image/png", greyscale=px.GreyscaleRequest(window=px.Window(40.0, 419.0))
    ).key(ct)
    cached = rendering.local_rendered
    assert cached is not None and cached.get(last) is not None


@pytest.mark.parametrize(
    ("suffix", "query", "named"),
    [
        ("frames/1/tiles/0/0/0", {"annotation": "patient"}, "annotation"),
        ("frames/1/rendered", {"iccprofile": "srgb"}, "iccprofile"),
        ("rendered", {"windw": "40,400"}, "windw"),  # a typo is not taken for no window
        ("frames/1/tiles/0/0/0", {"viewport": "64,64"}, "viewport"),
        ("thumbnail", {"window": "40,400"}, "window"),
    ],
)
def test_a_parameter_the_resource_does_not_answer_is_refused_by_name(
    logged_in_client: Client, ct: Instance, suffix: str, query: dict[str, str], named: str
) -> None:
    response = logged_in_client.get(f"{base(ct)}/{suffix}", query)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "unsupported_parameter" and named in body["message"]
    assert logged_in_client.get(f"{base(ct)}/{suffix}").status_code == 200
