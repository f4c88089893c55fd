"""QIDO-RS query parameters (PS3.18 §8.3.4) on arbitrary names and values: a search
over HTTP is answered 200 with DICOM JSON or refused with 400/406 and a message naming
the problem, never a 500 (a value is turned into a regular expression, a date or time
range, a number or a UID list; none may reach the database unescaped)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import client_for
from tests.factories import corpus_files, store_files
from tests.fuzz.conftest import Figures, budget
from viewer.dicomweb.dicomjson import ATTRIBUTES

pytestmark = pytest.mark.django_db

NAMES = st.one_of(
    st.sampled_from([a.keyword for a in ATTRIBUTES] + [a.tag for a in ATTRIBUTES]),
    st.sampled_from(
        [
            "includefield",
            "limit",
            "offset",
            "fuzzymatching",
            "accept",
            "RequestAttributeSequence.RequestedProcedureID",
            "00400275.00401001",
            "InstitutionName",
            "7FE00010",
        ]
    ),
    st.text(max_size=20),
)
PIECES = st.sampled_from(
    ["*", "?", "^", "=", "-", ",", "\\", ".", "(", "[", "]", "{2}", "|", "$", "%", "_", "'"]
)
VALUES = st.one_of(
    st.text(max_size=40),
    st.lists(st.one_of(PIECES, st.text(alphabet="0123456789", max_size=8)), max_size=8).map(
        "".join
    ),
    st.lists(st.text(alphabet="0123456789.", max_size=20), max_size=3).map("\\".join),
)


@pytest.fixture
def searcher(radiologist: Any, shared_dicom: Path) -> Client:
    store_files(corpus_files(shared_dicom, "ct-prior-pair-mini"))
    return client_for(radiologist)


@budget(400)
@given(
    route=st.sampled_from(["studies", "series", "instances", "studies/1.2.3/instances"]),
    query=st.lists(st.tuples(NAMES, VALUES), max_size=4),
    accept=st.sampled_from([None, "application/dicom+json", "text/html;q=0.5, */*;q=0"]),
)
def test_any_query_is_answered_or_refused_never_a_500(
    fuzz: Figures,
    searcher: Client,
    route: str,
    query: list[tuple[str, str]],
    accept: str | None,
) -> None:
    headers = {"Accept": accept} if accept else None
    with fuzz.one_input():
        response = searcher.get(f"/dicom-web/{route}", query, headers=headers)
    assert response.status_code in (200, 400, 406), (query, response.content[:300])
    if response.status_code == 200:
        assert isinstance(response.json(), list)
        fuzz.tried("ok")
    else:
        body = response.json()
        assert body["message"], body
        fuzz.tried(body["code"])
