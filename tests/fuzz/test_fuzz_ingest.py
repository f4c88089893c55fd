"""Ingest of hostile objects: Part 10 parse, validation, index fields and the decode check
refuse what they cannot take with a ViewerError (or a value pydicom cannot convert, which
ingest maps to 400), and never raise anything else or hang."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import transaction
from hypothesis import given

from tests.fuzz import corpus, mutations
from tests.fuzz.conftest import Figures, budget
from viewer.errors import ViewerError
from viewer.services import ingest


def read_and_index(data: bytes, fuzz: Figures) -> None:
    """``ingest.read_and_index`` on one input, its outcome counted."""
    with fuzz.one_input():
        try:
            ingest.read_and_index(data)
        except ViewerError as error:
            fuzz.tried(error.code)
            return
        except ingest.UNREADABLE_VALUE as error:
            fuzz.tried(f"unreadable value ({type(error).__name__})")
            return
    fuzz.tried("ok")


@budget(1500)
@given(data=mutations.mutated_bytes(corpus.ALL_SEEDS))
def test_read_and_index_refuses_byte_mutations_with_a_viewer_error(
    shared_dicom: Path, fuzz: Figures, data: bytes
) -> None:
    read_and_index(data, fuzz)


@budget(1200)
@given(data=mutations.edited_object(corpus.PARSEABLE))
def test_read_and_index_refuses_data_set_edits_with_a_viewer_error(
    shared_dicom: Path, fuzz: Figures, data: bytes
) -> None:
    read_and_index(data, fuzz)


@pytest.mark.django_db
@budget(300)
@given(data=mutations.hostile_object(corpus.ALL_SEEDS))
def test_ingest_bytes_answers_every_hostile_object_below_500(
    shared_dicom: Path, fuzz: Figures, data: bytes
) -> None:
    with fuzz.one_input(), transaction.atomic():
        result = ingest.ingest_bytes(data, source="fuzz.dcm")
        transaction.set_rollback(True)  # every input meets an empty archive
    fuzz.tried(result.code or result.status)
    if not result.ok:
        assert 400 <= result.http_status < 500, result
        assert result.reason
