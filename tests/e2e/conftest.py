"""Data the viewer's browser tests open: the 99-slice CT of the shared corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.viewer_pages import PASSWORD
from viewer.dicom.geometry import slice_order
from viewer.models import Instance
from viewer.services import ingest


@pytest.fixture
def ct_study(shared_dicom: Path, django_user_model: Any) -> list[Instance]:
    """The 99-slice chest CT, stored; its instances in slice order."""
    django_user_model.objects.create_user("radiologist", password=PASSWORD)
    for path in sorted((shared_dicom / "ct-series").glob("*.dcm")):
        assert ingest.ingest_file(path).status == "stored"
    return slice_order(list(Instance.objects.select_related("series__study")))
