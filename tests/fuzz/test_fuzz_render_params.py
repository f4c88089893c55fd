"""The parameters of the rendered resources (PS3.18 §8.3.5.1), tiles and thumbnails, on
arbitrary text: the parsers refuse with a ViewerError, and over HTTP no request of a
stored CT slice is answered with a 500."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import corpus
from tests.fuzz.conftest import Figures, budget
from tests.fuzz.mutations import NUMBER_TEXTS
from viewer.dicom import render
from viewer.dicomweb import params
from viewer.errors import ViewerError
from viewer.models import Instance
from viewer.services import ingest, rendering


def refused_or_parsed(fuzz: Figures, call: Callable[[], object]) -> None:
    with fuzz.one_input():
        try:
            call()
        except ViewerError as error:
            fuzz.tried(error.code)
            return
    fuzz.tried("accepted")


NUMBERS = st.lists(NUMBER_TEXTS, min_size=0, max_size=7).map(",".join)
PARAMETER_TEXT = st.one_of(
    st.text(max_size=60),
    NUMBERS,
    st.tuples(NUMBERS, st.sampled_from(["linear", "LINEAR-EXACT", "sigmoid", "x", ""])).map(
        ",".join
    ),
)
MEDIA = st.one_of(
    st.text(max_size=60),
    st.lists(
        st.tuples(
            st.sampled_from(
                ["image/png", "image/jpeg", "image/webp", "*/*", "image/*", "text/html"]
            ),
            st.sampled_from(["", ";q=0", ";q=0.5", ";q=1e400", ";q=nan", ";q=-1", ";q=", ";x=y"]),
        ).map("".join),
        max_size=5,
    ).map(",".join),
)
GREYSCALE_PARAMS = st.dictionaries(
    st.sampled_from(["window", "preset", "voilut", "quality", "other"]), PARAMETER_TEXT, max_size=4
)


@budget(3000)
@given(query=GREYSCALE_PARAMS)
def test_greyscale_and_quality_parameters_refuse_or_parse_any_text(
    fuzz: Figures, query: dict[str, str]
) -> None:
    refused_or_parsed(fuzz, lambda: (params.parse_greyscale(query), params.parse_quality(query)))


@budget(3000)
@given(accept_param=st.none() | MEDIA, accept_header=st.none() | MEDIA)
def test_media_type_choice_refuses_or_chooses_for_any_text(
    fuzz: Figures, accept_param: str | None, accept_header: str | None
) -> None:
    refused_or_parsed(fuzz, lambda: params.choose_media_type(accept_param, accept_header))


@budget(3000)
@given(text=PARAMETER_TEXT)
def test_viewport_parser_refuses_or_parses_any_text(fuzz: Figures, text: str) -> None:
    refused_or_parsed(fuzz, lambda: render.parse_viewport(text))


@pytest.fixture
def ct(shared_dicom: Path) -> Instance:
    result = ingest.ingest_file(corpus.CT_SLICES[0])
    assert result.ok, result
    return Instance.objects.select_related("series__study").get(
        sop_instance_uid=result.sop_instance_uid
    )


BIG = st.one_of(st.integers(0, 40), st.sampled_from([2**31, 2**63, 10**30, 10**100]))
QUERIES = st.dictionaries(
    st.sampled_from(["window", "preset", "voilut", "quality", "accept", "viewport", "junk"]),
    PARAMETER_TEXT | MEDIA,
    max_size=5,
)


@pytest.mark.django_db
@budget(800)
@given(choice=st.data())
def test_rendered_tile_and_thumbnail_requests_with_any_parameters_are_below_500(
    logged_in_client: Client, ct: Instance, fuzz: Figures, choice: st.DataObject
) -> None:
    series = ct.series
    study = series.study
    base = (
        f"/dicom-web/studies/{study.study_instance_uid}/series/{series.series_instance_uid}"
        f"/instances/{ct.sop_instance_uid}"
    )
    path = choice.draw(
        st.one_of(
            st.just(f"{base}/rendered"),
            BIG.map(lambda f: f"{base}/frames/{f}/rendered"),
            st.tuples(BIG, BIG, BIG, BIG).map(
                lambda t: f"{base}/frames/{t[0]}/tiles/{t[1]}/{t[2]}/{t[3]}"
            ),
            st.just(f"{base}/thumbnail"),
            st.just(f"/dicom-web/studies/{study.study_instance_uid}/thumbnail"),
        ),
        label="path",
    )
    query: dict[str, Any] = choice.draw(QUERIES, label="query")
    headers: dict[str, Any] = {}
    if choice.draw(st.booleans(), label="accept header"):
        headers["HTTP_ACCEPT"] = choice.draw(MEDIA, label="accept")
    raw = choice.draw(st.none() | st.text(max_size=80), label="raw query")
    with fuzz.one_input():
        rendering.frame_cache.clear()
        if raw is not None:
            # As a WSGI server passes it: the request's bytes, read as latin-1 (PEP 3333).
            wsgi_query = raw.encode("utf-8", "surrogatepass").decode("latin-1")
            response = logged_in_client.get(path, QUERY_STRING=wsgi_query, **headers)
        else:
            response = logged_in_client.get(path, query, **headers)
    fuzz.tried(str(response.status_code))
    assert response.status_code < 500, (path, query, response.content[:300])
    if response.status_code >= 400:
        assert response.json()["message"]
