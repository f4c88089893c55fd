"""GET /api/studies/<uid>/hanging-protocols[?compare=…]: every enabled protocol applied to
the study, the chosen one first; the gate (404 alike for unknown and not visible, for the
study and each compared one), a bad compare a 400 naming it; real files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from tests.conftest import client_for
from tests.factories import corpus_files, store_files
from tests.viewer.services.test_hanging import store_phantom, store_prior_pair
from viewer.models import HangingProtocol, Series

pytestmark = pytest.mark.django_db


def url(study: str) -> str:
    return reverse("api-study-hanging-protocols", args=[study])


def series_uid(description: str) -> str:
    return Series.objects.get(series_description=description).series_instance_uid


def test_ct_prior_pair(radiologist: Any, shared_dicom: Path) -> None:
    prior, current = store_prior_pair(shared_dicom)
    response = client_for(radiologist).get(url(current.study))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["chosen"] == "CT with prior"
    first = body["protocols"][0]
    assert first == {
        "name": "CT with prior",
        "description": first["description"],
        "matches": True,
        "score": first["score"],
        "layout": "1x2",
        "sync": {"scroll": True, "window": True, "zoom": True},
        "viewports": [
            {
                "index": 0,
                "study_instance_uid": current.study,
                "series_instance_uid": series_uid("STEREOTAXIS"),
                "preset": None,
                "cine": False,
                "role": "current",
            },
            {
                "index": 1,
                "study_instance_uid": prior.study,
                "series_instance_uid": series_uid("STD BRAIN 5MM"),
                "preset": None,
                "cine": False,
                "role": "prior 1",
            },
        ],
    }
    assert isinstance(first["score"], int) and first["score"] >= 3
    names = [p["name"] for p in body["protocols"]]
    assert sorted(names) == sorted(HangingProtocol.objects.values_list("name", flat=True))
    by_name = {p["name"]: p for p in body["protocols"]}
    assert by_name["Default"]["matches"] and not by_name["MR brain"]["matches"]
    # a protocol that does not match is still resolved as far as the study allows
    assert by_name["CT chest with prior"]["viewports"][1]["study_instance_uid"] == prior.study


def test_phantom_hangs_ct_chest_with_prior_in_soft_tissue(radiologist: Any, tmp_path: Path) -> None:
    current, prior = store_phantom(tmp_path)
    body = client_for(radiologist).get(url(current)).json()
    assert body["chosen"] == "CT chest with prior"
    viewports = body["protocols"][0]["viewports"]
    assert [v["study_instance_uid"] for v in viewports] == [current, prior]
    assert [v["preset"] for v in viewports] == ["Soft tissue", "Soft tissue"]
    assert all(v["series_instance_uid"] for v in viewports)


def test_ultrasound_cine(radiologist: Any, shared_dicom: Path) -> None:
    stored = store_files([shared_dicom / "us-rgb-multiframe/Issue16_US_34frames_jpeg.dcm"])
    body = client_for(radiologist).get(url(stored.study)).json()
    assert body["chosen"] == "Ultrasound cine"
    (viewport,) = body["protocols"][0]["viewports"]
    assert viewport["cine"] is True and viewport["series_instance_uid"] == stored.series


def test_compare_fills_the_prior_slot_first(radiologist: Any, shared_dicom: Path) -> None:
    prior, current = store_prior_pair(shared_dicom)
    response = client_for(radiologist).get(url(prior.study), {"compare": current.study})
    body = response.json()
    assert body["chosen"] == "CT with prior"
    right = body["protocols"][0]["viewports"][1]
    assert right["role"] == "prior 1" and right["study_instance_uid"] == current.study
    assert right["series_instance_uid"] == series_uid("STEREOTAXIS")


def test_bad_compare_is_a_400_naming_it(radiologist: Any, patient_a: Any) -> None:
    response = client_for(radiologist).get(url(patient_a.study), {"compare": "1.2.abc"})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "bad_compare" and "1.2.abc" in body["message"]


def test_unknown_and_invisible_studies_are_the_same_404(
    clinician_for_patient_a: Any, patient_a: Any, patient_b: Any
) -> None:
    client = clinician_for_patient_a
    assert client.get(url(patient_a.study)).status_code == 200
    unknown = client.get(url("1.2.3.4.5"))
    invisible = client.get(url(patient_b.study))
    assert unknown.status_code == invisible.status_code == 404
    assert unknown.json() == invisible.json()
    compared = client.get(url(patient_a.study), {"compare": patient_b.study})
    assert compared.status_code == 404 and compared.json() == unknown.json()


def test_outsider_and_anonymous(client: Any, outsider: Any, patient_b: Any) -> None:
    assert client.get(url(patient_b.study)).status_code == 401
    assert client_for(outsider).get(url(patient_b.study)).status_code == 404


def test_mr_and_chest_radiograph(radiologist: Any, shared_dicom: Path) -> None:
    mr = store_files(corpus_files(shared_dicom, "mr-series", 1))
    chest = store_files([shared_dicom / "cr-monochrome1/966_fixed.dcm"])
    client = client_for(radiologist)
    mr_body = client.get(url(mr.study)).json()
    assert mr_body["chosen"] == "MR brain"
    assert [v["series_instance_uid"] for v in mr_body["protocols"][0]["viewports"]] == [
        mr.series,
        None,
        None,
    ]
    chest_body = client.get(url(chest.study)).json()
    assert chest_body["chosen"] == "Two-view chest radiograph"
    assert [v["series_instance_uid"] for v in chest_body["protocols"][0]["viewports"]] == [
        chest.series,
        None,
    ]
