"""The pixel pipeline on hostile objects that ingest accepts: decode (through the decoder
processes), frame view, Modality LUT, VOI LUT or window, Presentation LUT, palette
colour, viewport and pyramid reduction, encoding. The only failures allowed are
ViewerError subclasses (UnrenderableFrame, UndecodableFrame: 422), and over HTTP no
answer is a 500: every 4xx carries a JSON message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st
from pydicom.uid import UID

from tests.fuzz import corpus, mutations
from tests.fuzz.conftest import Figures, budget
from viewer.dicom import pixels, render
from viewer.dicom.decoder_pool import DecoderPool
from viewer.dicom.index import index_fields
from viewer.dicom.io import open_stored, read_object
from viewer.errors import ViewerError
from viewer.models import Instance
from viewer.services import ingest, rendering

WINDOWS = st.builds(
    pixels.Window,
    center=st.floats(-1e6, 1e6),
    width=st.floats(1, 1e6),
    function=st.sampled_from(["LINEAR", "LINEAR_EXACT", "SIGMOID"]),
)
GREYSCALE_REQUESTS = st.one_of(
    st.just(pixels.GreyscaleRequest()),
    st.builds(pixels.GreyscaleRequest, window=WINDOWS),
    st.builds(pixels.GreyscaleRequest, preset=st.integers(0, 3)),
    st.builds(pixels.GreyscaleRequest, voi_lut=st.integers(0, 3)),
)
VIEWPORTS = st.one_of(
    st.none(),
    st.builds(render.Viewport, width=st.integers(1, 600), height=st.integers(1, 600)),
    st.builds(
        render.Viewport,
        width=st.integers(1, 300),
        height=st.integers(1, 300),
        sx=st.floats(-100, 3000),
        sy=st.floats(-100, 3000),
        sw=st.floats(-3000, 3000),
        sh=st.floats(-3000, 3000),
    ),
)


def _accepted(data: bytes, fuzz: Figures) -> int | None:
    """The frame count where ingest would store ``data`` (parse, validate, index), else
    None with the refusal counted."""
    try:
        parsed = read_object(
            data,
            max_bytes=django_settings.LOUPE_MAX_INSTANCE_BYTES,
            max_frame_bytes=django_settings.LOUPE_MAX_FRAME_BYTES,
        )
        index_fields(
            parsed.dataset,
            number_of_frames=parsed.number_of_frames,
            transfer_syntax_uid=parsed.transfer_syntax_uid,
        )
    except ViewerError as error:
        fuzz.tried(f"refused at ingest: {error.code}")
        return None
    except ingest.UNREADABLE_VALUE as error:
        fuzz.tried(f"refused at ingest: {type(error).__name__}")
        return None
    return parsed.number_of_frames


def render_frame(
    data: bytes,
    frame: int,
    request: pixels.GreyscaleRequest,
    level: int,
    viewport: render.Viewport | None,
    media_type: str,
    decoders: DecoderPool,
) -> bytes:
    """What ``rendering.render_instance`` does for a stored object, without the caches."""
    dataset = open_stored(data)
    values: Any = pixels.decode_frame(
        dataset, frame, max_frame_bytes=django_settings.LOUPE_MAX_FRAME_BYTES, decoders=decoders
    )
    view = pixels.frame_view(dataset, frame)
    greyscale = pixels.is_greyscale(view)
    if not greyscale:
        values = pixels.colour_to_display(values, view, dataset)
    full = rendering.DecodedFrame(np.ascontiguousarray(values), view, greyscale)
    asked = full.voi(request) if greyscale else request
    reduced = (
        rendering.DecodedFrame(render.reduce_by(full.values, 2**level), view, greyscale)
        if level
        else full
    )
    if greyscale:
        image, _ = pixels.greyscale_to_display(reduced.values, view, asked, full.value_range)
    else:
        image = np.asarray(reduced.values, dtype=np.uint8)
    if viewport is not None:
        image = render.apply_viewport(image, viewport)
    return render.encode(image, media_type, 80)


@budget(1600)
@given(
    data=mutations.hostile_object(corpus.PIXEL_SEEDS, pixel_only=True),
    choice=st.data(),
)
def test_pixel_pipeline_fails_only_with_a_viewer_error(
    shared_dicom: Path, decoders: DecoderPool, fuzz: Figures, data: bytes, choice: st.DataObject
) -> None:
    with fuzz.one_input():
        frames = _accepted(data, fuzz)
        if frames is None:
            return
        frame = choice.draw(
            st.integers(0, 9).flatmap(
                lambda n: st.just(frames) if n == 0 else st.integers(0, max(frames - 1, 0))
            ),
            label="frame",
        )
        request = choice.draw(GREYSCALE_REQUESTS, label="greyscale")
        level = choice.draw(st.sampled_from([0, 0, 0, 1, 3]), label="level")
        viewport = choice.draw(VIEWPORTS, label="viewport")
        media_type = choice.draw(
            st.sampled_from([render.PNG, render.PNG, render.JPEG, render.WEBP]), label="media"
        )
        try:
            render_frame(data, frame, request, level, viewport, media_type, decoders)
        except ViewerError as error:
            fuzz.tried(error.code)
            return
    fuzz.tried("rendered")


@budget(500)
@given(data=mutations.edited_object(corpus.PIXEL_SEEDS, edits=["pixel_data"], max_edits=2))
def test_every_transfer_syntax_survives_a_corrupt_codestream(
    shared_dicom: Path, decoders: DecoderPool, fuzz: Figures, data: bytes
) -> None:
    """The codestream of a frame, flipped, cut, spliced or fragmented, for every
    transfer syntax of the seeds, decoded by the decoder processes."""
    with fuzz.one_input():
        if _accepted(data, fuzz) is None:
            return
        try:
            syntax = UID(str(open_stored(data).file_meta.TransferSyntaxUID))
            render_frame(data, 0, pixels.GreyscaleRequest(), 0, None, render.PNG, decoders)
        except ViewerError as error:
            fuzz.tried(error.code)
            return
    fuzz.tried(f"rendered ({syntax.name})")


def _instance_urls(instance: Instance) -> st.SearchStrategy[str]:
    series = instance.series
    study = series.study
    base = (
        f"/dicom-web/studies/{study.study_instance_uid}/series/{series.series_instance_uid}"
        f"/instances/{instance.sop_instance_uid}"
    )
    frames = max(instance.number_of_frames, 1)
    frame = st.integers(1, frames)
    return st.one_of(
        st.just(f"{base}/rendered"),
        frame.map(lambda f: f"{base}/frames/{f}/rendered"),
        st.tuples(frame, st.integers(0, 4), st.integers(0, 8), st.integers(0, 8)).map(
            lambda t: f"{base}/frames/{t[0]}/tiles/{t[1]}/{t[2]}/{t[3]}"
        ),
        st.just(f"{base}/thumbnail"),
        st.just(
            f"/dicom-web/studies/{study.study_instance_uid}/series/"
            f"{series.series_instance_uid}/thumbnail"
        ),
        st.just(f"/dicom-web/studies/{study.study_instance_uid}/thumbnail"),
    )


QUERIES = st.fixed_dictionaries(
    {},
    optional={
        "window": st.sampled_from(["40,400", "-600,1500,linear-exact", "0,1,sigmoid"]),
        "preset": st.sampled_from(["1", "2", "3"]),
        "voilut": st.sampled_from(["1", "2"]),
        "accept": st.sampled_from([render.PNG, render.JPEG, render.WEBP]),
        "viewport": st.sampled_from(["64,64", "512,256,10,10,100,-100"]),
    },
)


@pytest.fixture
def undecoded_storage(settings: Any) -> None:
    """Objects are stored without the decode check, so that what does not decode is
    stored and then asked for (set once per test: the ``settings`` fixture stacks an
    override on every assignment)."""
    settings.LOUPE_INGEST_DECODE_CHECK = "off"


@pytest.mark.django_db
@budget(400)
@given(data=mutations.hostile_object(corpus.PIXEL_SEEDS, pixel_only=True), choice=st.data())
def test_rendered_tiles_and_thumbnails_of_hostile_objects_are_never_a_server_error(
    shared_dicom: Path,
    logged_in_client: Client,
    undecoded_storage: None,
    fuzz: Figures,
    data: bytes,
    choice: st.DataObject,
) -> None:
    with fuzz.one_input(), transaction.atomic():
        cache.clear()
        rendering.frame_cache.clear()
        result = ingest.ingest_bytes(data, source="fuzz.dcm")
        if not result.ok:
            transaction.set_rollback(True)
            fuzz.tried(f"refused at ingest: {result.code}")
            return
        instance = Instance.objects.select_related("series__study").get(
            sop_instance_uid=result.sop_instance_uid
        )
        url = choice.draw(_instance_urls(instance), label="url")
        response = logged_in_client.get(url, choice.draw(QUERIES, label="query"))
        transaction.set_rollback(True)
    fuzz.tried(str(response.status_code))
    assert response.status_code < 500, (url, response.content[:300])
    if response.status_code >= 400:
        assert response.json()["message"], url
